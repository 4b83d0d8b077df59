/**
 * ssoflow's Prisma models (prisma/ssoflow.<provider>.prisma) against the tables the storage
 * uses: the committed files are what scripts/prisma-schema.ts derives from `ssoflowSchemaSql`
 * (a new table or column fails here until the script is re-run), and a client generated from
 * them reads, through its model delegates, every row the storage writes (table, column and type
 * mapping), on SQLite always and on PostgreSQL and MySQL/MariaDB when set.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prismaSchemaFiles } from '../../scripts/prisma-schema.js'
import { migrateSsoflow } from '../../src/kysely/index.js'
import { createPrismaStorage } from '../../src/prisma/index.js'
import { fixedClock, makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { PRISMA_DATABASES, type PrismaTestDatabase } from './databases.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

it('the committed schema files are the ones scripts/prisma-schema.ts derives from ssoflowSchemaSql', async () => {
  for (const [path, text] of Object.entries(await prismaSchemaFiles())) {
    expect(readFileSync(join(ROOT, path), 'utf8'), `${path} is stale: run npx tsx scripts/prisma-schema.ts`).toBe(text)
  }
})

const BOOLEAN_FIELDS = new Set([
  'require2fa',
  'isActive',
  'isSuspended',
  'hasUsablePassword',
  'has2fa',
  'isVerified',
  'isPrimary',
  'allowUnlinked',
  'scimEnabled',
  'flagSsoLinked',
  'flagSsoInvalid',
  'flagMemberLimitRestricted',
  'flagIdpProvisioned',
  'flagIdpRoleRestricted',
])

type Delegate = { findMany(): Promise<Record<string, unknown>[]> }

for (const target of PRISMA_DATABASES) {
  if (!target.enabled) reportSkip(`prisma schema (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`prisma models on ${target.name}`, () => {
    let database: PrismaTestDatabase | undefined
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    it('the generated client reads every row the storage writes, with the default table names', async () => {
      if (!database) throw new Error('database not open')
      const naming = { dialect: database.dialect }
      const clock = fixedClock('2026-03-01T12:00:00.000Z')
      const storage = createPrismaStorage(database.client, { ...naming, clock })
      await migrateSsoflow(storage.kysely, naming)
      const org = makeOrganization({ id: 'org1', slug: 'acme' })
      const user = makeUser({ id: 'u1', username: 'alice', email: 'Alice@Example.com' })
      await storage.seed({
        organizations: [org],
        users: [user],
        providers: [makeProvider({ id: 'ap1', organizationId: org.id })],
        identities: [makeIdentity({ id: 'i1', authProviderId: 'ap1', userId: user.id, data: { nul: 'a\u0000b' } })],
        members: [makeMember({ id: 'm1', organizationId: org.id, userId: user.id })],
      })
      await storage.transaction(async (tx) => {
        await tx.appendAudit({
          id: 'a1',
          event: 'sso-identity.link',
          actorUserId: user.id,
          organizationId: org.id,
          targetId: null,
          targetUserId: user.id,
          ip: null,
          data: {},
          createdAt: clock.now(),
        })
        if (!tx.enqueueWork || !tx.createOrganizationDomain) throw new Error('enqueueWork or createOrganizationDomain missing')
        await tx.createOrganizationDomain({
          id: 'd1',
          organizationId: org.id,
          domain: 'example.com',
          verificationToken: 't1',
          verifiedAt: null,
          createdAt: clock.now(),
        })
        await tx.enqueueWork({
          id: 'w1',
          kind: 'mail',
          organizationId: org.id,
          key: 'k1',
          payload: '{}',
          cursor: null,
          attempts: 0,
          availableAt: clock.now(),
          claimToken: null,
          createdAt: clock.now(),
        })
      })
      await storage.pipelineStates.create({ id: 's1', version: 1, body: 'x', expiresAt: new Date(clock.now().getTime() + 60_000) })
      await storage.oneTimeTokens.create({ hash: 'h1', purpose: 'p', payload: 'y', expiresAt: new Date(clock.now().getTime() + 60_000) })
      const client = database.client as unknown as Record<string, Delegate>
      const read = async (model: string) => {
        const delegate = client[model]
        if (!delegate) throw new Error(`no model ${model}`)
        const rows = await delegate.findMany()
        // SQLite: ssoflowSchemaSql declares booleans `integer` (prisma migrate: `BOOLEAN`), which
        // Prisma's model reads return as 0/1 (and `integer` timestamps as numbers); the storage reads both.
        if (database?.dialect !== 'sqlite') return rows
        return rows.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, BOOLEAN_FIELDS.has(k) ? v === 1 || v === true : v])),
        )
      }
      expect(await read('ssoflowOrganization')).toEqual([
        { id: 'org1', slug: 'acme', name: org.name, defaultRole: org.defaultRole, require2fa: org.require2fa },
      ])
      const [u] = await read('ssoflowUser')
      expect(u).toMatchObject({ id: 'u1', username: 'alice', isActive: true })
      // BigInt through the model (SQLite with ssoflowSchemaSql's `integer`: a number).
      expect(Number(u?.createdAt)).toBe(user.createdAt.getTime())
      expect(await read('ssoflowUserEmail')).toEqual([
        { userId: 'u1', email: 'Alice@Example.com', emailNormalized: 'alice@example.com', isVerified: true, isPrimary: true },
      ])
      expect(await read('ssoflowAuthProvider')).toMatchObject([{ id: 'ap1', organizationId: 'org1' }])
      const [identity] = await read('ssoflowAuthIdentity')
      expect(JSON.parse(String(identity?.data))).toEqual({ nul: 'a\u0000b' })
      expect(await read('ssoflowMember')).toMatchObject([{ id: 'm1', organizationId: 'org1', userId: 'u1', flagSsoLinked: false }])
      expect(await read('ssoflowAuditLog')).toMatchObject([{ id: 'a1', event: 'sso-identity.link' }])
      expect(await read('ssoflowPendingWork')).toMatchObject([{ id: 'w1', workKey: 'k1', attempts: 0 }])
      expect(await read('ssoflowOrganizationDomain')).toMatchObject([
        { id: 'd1', organizationId: 'org1', domain: 'example.com', verifiedAt: null },
      ])
      expect(await read('ssoflowPipelineState')).toMatchObject([{ id: 's1', version: 1 }])
      expect(await read('ssoflowOneTimeToken')).toMatchObject([{ hash: 'h1', purpose: 'p' }])
    })
  })
}
