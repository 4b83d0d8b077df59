/**
 * Issue 19 item 2 on `ssoflow/kysely`: a host with its own users, organizations and memberships
 * tables writes only the mapping. The memberships table with a column for every field, or with
 * no room for ssoflow's flags and invite fields (the side table `<prefix>member_flags`), passes
 * the storage contract suite and the engine scenarios; the host's rows are the one source of
 * truth (a role the host changes is what the engine sees; ssoflow has no members table of its
 * own); a flag the host derives is read, never written; statement counts of the returning login
 * do not grow. PGlite and SQLite always, PostgreSQL and MySQL/MariaDB when their URLs are set.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { SessionInfo } from '../../src/engine/types.js'
import { createKyselyStorage, type KyselyStorageOptions, migrateSsoflow, rollbackSsoflow } from '../../src/kysely/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { Clock } from '../../src/ports/clock.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  type ContractStorage,
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  type HostSeedData,
  makeIdentity,
  makeMember,
  makeUser,
  registerSuite,
  storageContract,
  validatingStorage,
} from '../../src/testing/index.js'
import {
  type AnyKysely,
  DATABASES,
  hookDialect,
  listTables,
  rawExec,
  reportSkip,
  statementCounter,
  type TestDatabase,
  uniqueName,
} from '../helpers/databases.js'
import { engineSuite, handleOf, ORG, PROVIDER, post, unwrap, urls } from '../helpers/engine-suite.js'
import { createHostTables, dropHostTables, type HostVariant, kyselyHostMapping } from '../helpers/host-members.js'

async function mysqlCollation(database: TestDatabase): Promise<string | null> {
  if (database.dialect !== 'mysql') return null
  const { rows } = await sql<{ v: string }>`select version() as v`.execute(database.db)
  return /mariadb/i.test(String(rows[0]?.v)) ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin'
}

/** Host tables + ssoflow's migrated tables (unique prefix) + a storage on them. */
async function freshHost(database: TestDatabase, variant: HostVariant, options: { clock?: Clock; db?: AnyKysely } = {}) {
  const prefix = `${uniqueName('t')}_`
  const exec = (text: string) => rawExec(database.db, text)
  const names = await createHostTables(exec, database.dialect, await mysqlCollation(database), prefix, variant)
  const naming: KyselyStorageOptions = { dialect: database.dialect, tablePrefix: prefix, tables: kyselyHostMapping(names, variant) }
  const migrated = await migrateSsoflow(database.db, naming)
  const storage = createKyselyStorage(options.db ?? database.db, { ...naming, clock: options.clock })
  const contract = Object.assign(storage, {
    seedHostData: (data: HostSeedData) => storage.seed({ organizations: data.organizations, userEmails: data.userEmails }),
  })
  return {
    storage: contract,
    prefix,
    names,
    migrated,
    async drop() {
      await rollbackSsoflow(database.db, naming)
      await database.db.schema.dropTable(`${prefix}migrations`).ifExists().execute()
      await dropHostTables(exec, names)
    },
  }
}

const VARIANTS = ['columns', 'side'] as const

for (const variant of VARIANTS) {
  for (const target of DATABASES) {
    if (!target.enabled) reportSkip(`kysely host members contract (${target.name})`, target.variable ?? '')
    describe.skipIf(!target.enabled)(`kysely contract on host tables (${variant}), ${target.name}`, () => {
      let database: TestDatabase | undefined
      const drops = new WeakMap<object, () => Promise<void>>()
      beforeAll(async () => {
        database = await target.open()
      })
      afterAll(async () => {
        await database?.close()
      })
      const clock = fixedClock()
      registerSuite(
        storageContract({
          name: `kysely-host-${variant}/${target.name}`,
          clock,
          async createStorage(): Promise<ContractStorage> {
            if (!database) throw new Error('database not open')
            const fresh = await freshHost(database, variant, { clock })
            drops.set(fresh.storage, fresh.drop)
            return fresh.storage
          },
          async destroy(storage) {
            await drops.get(storage)?.()
          },
        }),
        { describe, it },
      )
    })
  }

  engineSuite({
    name: `kysely-host-${variant}`,
    targets: DATABASES.map((target) => ({
      ...target,
      async open() {
        const database = await target.open()
        return {
          fresh: ({ clock }: { clock: Clock }) => freshHost(database, variant, { clock }),
          close: () => database.close(),
        }
      },
    })),
  })
}

for (const target of DATABASES) {
  if (!target.enabled) reportSkip(`kysely host members (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`kysely on the host's memberships table, ${target.name}`, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })
    const f = (v: boolean) => (database.dialect === 'postgres' ? String(v) : v ? '1' : '0')

    function engine(storage: Parameters<typeof validatingStorage>[0], clock: ReturnType<typeof fixedClock>) {
      return createAuthPipeline({
        storage: validatingStorage(storage),
        mailer: createRecordingMailer(),
        signals: createRecordingSignals(),
        providers: { dummy: dummyProvider() },
        secret: 'kysely host members secret, thirty-two bytes or more',
        urls,
        clock,
      })
    }

    for (const variant of VARIANTS) {
      it(`${variant}: the host's rows are the one source of truth (roles, memberships the host adds); ssoflow has no members table`, async () => {
        const clock = fixedClock('2026-03-01T12:00:00.000Z')
        const fresh = await freshHost(database, variant, { clock })
        const n = fresh.names
        try {
          // Only the side variant migrates a side table; no variant creates ssoflow's members table.
          expect(fresh.migrated.executed.includes('0004_ssoflow_member_flags')).toBe(variant === 'side')
          const tables = await listTables(database, fresh.prefix)
          expect(tables).not.toContain(`${fresh.prefix}members`)
          expect(tables.includes(`${fresh.prefix}member_flags`)).toBe(variant === 'side')

          const ann = makeUser({ id: 'u-ann', email: 'ann@corp.example' })
          const bob = makeUser({ id: 'u-bob', email: 'bob@corp.example' })
          await fresh.storage.seed({
            organizations: [ORG],
            users: [ann, bob],
            identities: [
              makeIdentity({ id: 'i-ann', authProviderId: PROVIDER.id, userId: ann.id, ident: 'ext-ann' }),
              makeIdentity({ id: 'i-bob', authProviderId: PROVIDER.id, userId: bob.id, ident: 'ext-bob' }),
            ],
            members: [
              makeMember({ id: 'm-ann', organizationId: ORG.id, userId: ann.id, role: 'member', flags: { ...NO_FLAGS, ssoLinked: true } }),
            ],
          })
          const sso = engine(fresh.storage, clock)
          const session: SessionInfo = { id: 'ann-1', userId: ann.id }
          // Role 'member' in the host's table: not allowed to configure SSO.
          const refused = await sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session })
          expect(refused._unsafeUnwrapErr().code).toBe('NOT_AUTHORIZED')
          // The host promotes her in its own table: the engine sees it at once.
          await rawExec(database.db, `update ${n.members} set member_role = 'owner' where member_id = 'm-ann'`)
          expect((await fresh.storage.getMember(ORG.id, ann.id))?.role).toBe('owner')
          expect((await sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session })).isOk()).toBe(true)
          await fresh.storage.seed({ providers: [PROVIDER] })

          // A membership the host adds itself (no side row): read with all flags off; Bob's first
          // SSO login links it (ssoLinked on) and keeps the host's role.
          const extra =
            variant === 'side'
              ? ''
              : `, invite_email, invite_email_norm, sso_linked, sso_invalid, limit_restricted, idp_provisioned, role_restricted, token_hash, token_expires, invite_state`
          const extraValues =
            variant === 'side'
              ? ''
              : `, null, null, ${f(false)}, ${f(false)}, ${f(false)}, ${f(false)}, ${f(false)}, null, null, 'approved'`
          await rawExec(
            database.db,
            `insert into ${n.members} (member_id, org_id, account_id, member_role, joined_at${extra})
              values ('m-bob', '${ORG.id}', 'u-bob', 'billing', 1700000000000${extraValues})`,
          )
          const hostMade = await fresh.storage.getMember(ORG.id, bob.id)
          expect(hostMade).toMatchObject({ id: 'm-bob', role: 'billing', flags: NO_FLAGS, inviteStatus: 'approved', email: null })
          const bobSession: SessionInfo = { id: 'bob-1' }
          const begun = await unwrap(sso.beginLogin({ organizationId: ORG.id, session: bobSession }))
          const out = await unwrap(
            sso.advance({ handle: handleOf(begun), request: post({ id: 'ext-bob', email: bob.email }), session: bobSession }),
          )
          expect(out).toMatchObject({ kind: 'signedIn', userId: bob.id, memberId: 'm-bob', created: { member: false } })
          const linked = await fresh.storage.getMember(ORG.id, bob.id)
          expect(linked).toMatchObject({ id: 'm-bob', role: 'billing', flags: { ...NO_FLAGS, ssoLinked: true } })
          const { rows } = await sql<{ n: unknown }>`select count(*) as n from ${sql.table(n.members)}`.execute(database.db)
          expect(Number(rows[0]?.n)).toBe(2)
          // The host deletes a membership: gone for ssoflow too.
          await rawExec(database.db, `delete from ${n.members} where member_id = 'm-bob'`)
          expect(await fresh.storage.getMember(ORG.id, bob.id)).toBeNull()
        } finally {
          await fresh.drop()
        }
      })
    }

    it('derived: a flag the host derives (a generated column) is read, never written', async () => {
      const fresh = await freshHost(database, 'derived')
      const n = fresh.names
      try {
        await fresh.storage.seed({ organizations: [ORG], users: [makeUser({ id: 'u1' }), makeUser({ id: 'u2' })] })
        await fresh.storage.transaction(async (tx) => {
          // ssoflow's idpProvisioned: true is not written: the host's derivation decides.
          await tx.createMember(
            makeMember({ id: 'm1', organizationId: ORG.id, userId: 'u1', flags: { ...NO_FLAGS, idpProvisioned: true } }),
          )
          await tx.createMember(makeMember({ id: 'm2', organizationId: ORG.id, userId: 'u2' }))
          expect(await tx.updateMember('m2', { flags: { ...NO_FLAGS, ssoLinked: true, idpProvisioned: true } })).toBe(true)
        })
        expect((await fresh.storage.getMemberById('m1'))?.flags.idpProvisioned).toBe(false)
        expect((await fresh.storage.getMemberById('m2'))?.flags).toEqual({ ...NO_FLAGS, ssoLinked: true })
        await rawExec(database.db, `update ${n.members} set provisioned_by = 'scim' where member_id = 'm1'`)
        expect((await fresh.storage.getMemberById('m1'))?.flags).toEqual({ ...NO_FLAGS, idpProvisioned: true })
        expect(
          await fresh.storage.transaction((tx) => tx.setFlagsForOrganization(ORG.id, { ssoLinked: false, idpProvisioned: false })),
        ).toBe(1)
        expect((await fresh.storage.getMemberById('m1'))?.flags.idpProvisioned).toBe(true)
      } finally {
        await fresh.drop()
      }
    })

    it('statement counts: the returning login costs the same on the host tables, side table or not', async () => {
      const counts: Record<string, number> = {}
      for (const variant of ['own', ...VARIANTS] as const) {
        const counter = statementCounter()
        const counted = database.reopen((d) => hookDialect(d, counter))
        const clock = fixedClock('2026-03-01T12:00:00.000Z')
        const fresh =
          variant === 'own'
            ? await (async () => {
                const prefix = `${uniqueName('t')}_`
                const naming = { dialect: database.dialect, tablePrefix: prefix }
                await migrateSsoflow(database.db, naming)
                return {
                  storage: createKyselyStorage(counted, { ...naming, clock }),
                  drop: async () => {
                    await rollbackSsoflow(database.db, naming)
                    await database.db.schema.dropTable(`${prefix}migrations`).ifExists().execute()
                  },
                }
              })()
            : await freshHost(database, variant, { clock, db: counted })
        try {
          const user = makeUser({ id: 'u-linked', email: 'linked@corp.example' })
          const aMinuteAgo = new Date(clock.now().getTime() - 60_000)
          await fresh.storage.seed({
            organizations: [ORG],
            providers: [PROVIDER],
            users: [user],
            identities: [
              makeIdentity({
                id: 'i-linked',
                authProviderId: PROVIDER.id,
                userId: user.id,
                ident: 'ext-linked',
                lastVerified: aMinuteAgo,
                lastSynced: aMinuteAgo,
              }),
            ],
            members: [makeMember({ id: 'm-linked', organizationId: ORG.id, userId: user.id, flags: { ...NO_FLAGS, ssoLinked: true } })],
          })
          const sso = engine(fresh.storage, clock)
          const session: SessionInfo = { id: `rt-${variant}` }
          counter.take()
          const begun = await unwrap(sso.beginLogin({ organizationId: ORG.id, session }))
          const out = await unwrap(
            sso.advance({ handle: handleOf(begun), request: post({ id: 'ext-linked', email: user.email }), session }),
          )
          expect(out.kind).toBe('signedIn')
          counts[variant] = counter.take().length
        } finally {
          await fresh.drop()
          if (target.name === 'postgres' || target.name === 'mysql') await counted.destroy()
        }
      }
      console.log(`[ssoflow] returning login (begin + callback) statements on ${target.name}: ${JSON.stringify(counts)}`)
      expect(counts.columns).toBe(counts.own)
      expect(counts.side).toBe(counts.own)
      expect(counts.own).toBeLessThanOrEqual(target.name === 'mysql' ? 10 : 8)
    })
  })
}
