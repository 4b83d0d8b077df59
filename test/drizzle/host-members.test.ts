/**
 * Issue 19 item 2 on `ssoflow/drizzle`: the host's own users, organizations and memberships
 * tables (Drizzle table definitions), with a column for every member field or with no room for
 * ssoflow's flags and invite fields (the side table), pass the storage contract suite and the
 * engine scenarios; the host's rows are the one source of truth; a flag mapped to an SQL
 * expression is read, never written. PGlite and SQLite always, PostgreSQL and MySQL/MariaDB when
 * their URLs are set.
 */
import { sql } from 'drizzle-orm'
import { bigint as myBigint, boolean as myBoolean, mysqlTable, varchar as myVarchar } from 'drizzle-orm/mysql-core'
import { bigint as pgBigint, boolean as pgBoolean, pgTable, varchar as pgVarchar } from 'drizzle-orm/pg-core'
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DrizzleStorageOptions } from '../../src/drizzle/index.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { SessionInfo } from '../../src/engine/types.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { Clock } from '../../src/ports/clock.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  type ContractStorage,
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  makeIdentity,
  makeMember,
  makeUser,
  registerSuite,
  storageContract,
  validatingStorage,
} from '../../src/testing/index.js'
import { reportSkip, uniqueName } from '../helpers/databases.js'
import { engineSuite, handleOf, ORG, PROVIDER, post, unwrap, urls } from '../helpers/engine-suite.js'
import { createHostTables, dropHostTables, type HostNames, type HostVariant, kyselyHostMapping } from '../helpers/host-members.js'
import { DRIZZLE_DATABASES, type DrizzleTestDatabase, freshDrizzleStorage, mysqlFlavorOf } from './databases.js'

/** The host tables as Drizzle table definitions, and the storage's `tables` option. */
function drizzleMapping(dialect: DrizzleTestDatabase['dialect'], n: HostNames, variant: HostVariant): DrizzleStorageOptions['tables'] {
  // biome-ignore lint/suspicious/noExplicitAny: one builder set per dialect, used alike
  const k: { table: any; str: (c: string, l: number) => any; bool: (c: string) => any; big: (c: string) => any } =
    dialect === 'postgres'
      ? {
          table: pgTable,
          str: (c, l) => pgVarchar(c, { length: l }),
          bool: (c) => pgBoolean(c),
          big: (c) => pgBigint(c, { mode: 'number' }),
        }
      : dialect === 'mysql'
        ? {
            table: mysqlTable,
            str: (c, l) => myVarchar(c, { length: l }),
            bool: (c) => myBoolean(c),
            big: (c) => myBigint(c, { mode: 'number' }),
          }
        : { table: sqliteTable, str: (c) => text(c), bool: (c) => integer(c, { mode: 'boolean' }), big: (c) => integer(c) }
  const users = k.table(n.users, {
    uid: k.str('uid', 255).primaryKey(),
    login: k.str('login', 255).notNull(),
    mail: k.str('mail', 320).notNull(),
    displayName: k.str('display_name', 255).notNull(),
    active: k.bool('active').notNull(),
    suspended: k.bool('suspended').notNull(),
    hasPassword: k.bool('has_password').notNull(),
    mfa: k.bool('mfa').notNull(),
    joined: k.big('joined').notNull(),
  })
  const orgs = k.table(n.orgs, {
    oid: k.str('oid', 255).primaryKey(),
    handle: k.str('handle', 255).notNull(),
    title: k.str('title', 255).notNull(),
    roleDefault: k.str('role_default', 64).notNull(),
    mfaRequired: k.bool('mfa_required').notNull(),
  })
  const base = {
    memberId: k.str('member_id', 255).primaryKey(),
    orgId: k.str('org_id', 255).notNull(),
    accountId: k.str('account_id', 255),
    memberRole: k.str('member_role', 64).notNull(),
    joinedAt: k.big('joined_at').notNull(),
  }
  const members = k.table(
    n.members,
    variant === 'side'
      ? base
      : {
          ...base,
          inviteEmail: k.str('invite_email', 320),
          inviteEmailNorm: k.str('invite_email_norm', 320),
          ssoLinked: k.bool('sso_linked').notNull(),
          ssoInvalid: k.bool('sso_invalid').notNull(),
          limitRestricted: k.bool('limit_restricted').notNull(),
          ...(variant === 'derived'
            ? { provisionedBy: k.str('provisioned_by', 255) }
            : { idpProvisioned: k.bool('idp_provisioned').notNull() }),
          roleRestricted: k.bool('role_restricted').notNull(),
          tokenHash: k.str('token_hash', 128),
          tokenExpires: k.big('token_expires'),
          inviteState: k.str('invite_state', 32).notNull(),
        },
  )
  const baseFields = {
    id: members.memberId,
    organizationId: members.orgId,
    userId: members.accountId,
    role: members.memberRole,
    createdAt: members.joinedAt,
  }
  return {
    users: {
      table: users,
      dates: 'epochMs',
      fields: {
        id: users.uid,
        username: users.login,
        email: users.mail,
        name: users.displayName,
        isActive: users.active,
        isSuspended: users.suspended,
        hasUsablePassword: users.hasPassword,
        has2fa: users.mfa,
        createdAt: users.joined,
      },
      uniqueIndexes: { username: n.usersLoginKey, email: n.usersMailKey },
    },
    organizations: {
      table: orgs,
      fields: { id: orgs.oid, slug: orgs.handle, name: orgs.title, defaultRole: orgs.roleDefault, require2fa: orgs.mfaRequired },
    },
    members:
      variant === 'side'
        ? { table: members, dates: 'epochMs', fields: baseFields, uniqueIndexes: { organizationUser: n.membersOrgAccountKey } }
        : {
            table: members,
            dates: 'epochMs',
            fields: {
              ...baseFields,
              email: members.inviteEmail,
              emailNormalized: members.inviteEmailNorm,
              ssoLinked: members.ssoLinked,
              ssoInvalid: members.ssoInvalid,
              memberLimitRestricted: members.limitRestricted,
              idpProvisioned: variant === 'derived' ? sql`${members.provisionedBy} is not null` : members.idpProvisioned,
              idpRoleRestricted: members.roleRestricted,
              inviteTokenHash: members.tokenHash,
              inviteExpiresAt: members.tokenExpires,
              inviteStatus: members.inviteState,
            },
            uniqueIndexes: {
              organizationUser: n.membersOrgAccountKey,
              organizationEmail: n.membersOrgEmailKey,
              inviteToken: n.membersTokenKey,
            },
          },
  }
}

async function freshHost(database: DrizzleTestDatabase, variant: HostVariant, options: { clock?: Clock } = {}) {
  const prefix = `${uniqueName('d')}_`
  const collation =
    database.dialect === 'mysql' ? ((await mysqlFlavorOf(database)) === 'mariadb' ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin') : null
  const names = await createHostTables(database.exec, database.dialect, collation, prefix, variant)
  // The DDL of ssoflow's own tables: the same mapping by name (no users/orgs/members table; the
  // side table when fields are left out).
  const schemaTables = kyselyHostMapping(names, variant === 'derived' ? 'columns' : variant)
  const fresh = await freshDrizzleStorage(
    database,
    { clock: options.clock, tables: drizzleMapping(database.dialect, names, variant) },
    schemaTables,
    prefix,
  )
  return {
    ...fresh,
    names,
    async drop() {
      await fresh.drop()
      await dropHostTables(database.exec, names)
    },
  }
}

const VARIANTS = ['columns', 'side'] as const

for (const variant of VARIANTS) {
  for (const target of DRIZZLE_DATABASES) {
    if (!target.enabled) reportSkip(`drizzle host members contract (${target.name})`, target.variable ?? '')
    describe.skipIf(!target.enabled)(`drizzle contract on host tables (${variant}), ${target.name}`, () => {
      let database: DrizzleTestDatabase | undefined
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
          name: `drizzle-host-${variant}/${target.name}`,
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
    name: `drizzle-host-${variant}`,
    targets: DRIZZLE_DATABASES.map((target) => ({
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

for (const target of DRIZZLE_DATABASES) {
  if (!target.enabled) reportSkip(`drizzle host members (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`drizzle on the host's memberships table, ${target.name}`, () => {
    let database: DrizzleTestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    for (const variant of VARIANTS) {
      it(`${variant}: the host's rows are the one source of truth (a role the host changes, a membership it adds)`, async () => {
        const clock = fixedClock('2026-03-01T12:00:00.000Z')
        const fresh = await freshHost(database, variant, { clock })
        const n = fresh.names
        try {
          const ann = makeUser({ id: 'u-ann', email: 'ann@corp.example' })
          await fresh.storage.seed({
            organizations: [ORG],
            users: [ann],
            identities: [makeIdentity({ id: 'i-ann', authProviderId: PROVIDER.id, userId: ann.id, ident: 'ext-ann' })],
          })
          const f = (v: boolean) => (database.dialect === 'postgres' ? String(v) : v ? '1' : '0')
          const extra =
            variant === 'side'
              ? ''
              : ', invite_email, invite_email_norm, sso_linked, sso_invalid, limit_restricted, idp_provisioned, role_restricted, token_hash, token_expires, invite_state'
          const extraValues =
            variant === 'side'
              ? ''
              : `, null, null, ${f(false)}, ${f(false)}, ${f(false)}, ${f(false)}, ${f(false)}, null, null, 'approved'`
          // The host adds the membership itself (no side row).
          await database.exec(
            `insert into ${n.members} (member_id, org_id, account_id, member_role, joined_at${extra})
              values ('m-ann', '${ORG.id}', 'u-ann', 'member', 1700000000000${extraValues})`,
          )
          const sso = createAuthPipeline({
            storage: validatingStorage(fresh.storage),
            mailer: createRecordingMailer(),
            signals: createRecordingSignals(),
            providers: { dummy: dummyProvider() },
            secret: 'drizzle host members secret, thirty-two bytes or more',
            urls,
            clock,
          })
          const session: SessionInfo = { id: 'ann-1', userId: ann.id }
          expect((await sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session }))._unsafeUnwrapErr().code).toBe(
            'NOT_AUTHORIZED',
          )
          await database.exec(`update ${n.members} set member_role = 'owner' where member_id = 'm-ann'`)
          expect((await sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session })).isOk()).toBe(true)
          await fresh.storage.seed({ providers: [PROVIDER] })
          const anon: SessionInfo = { id: 'ann-2' }
          const begun = await unwrap(sso.beginLogin({ organizationId: ORG.id, session: anon }))
          const out = await unwrap(
            sso.advance({ handle: handleOf(begun), request: post({ id: 'ext-ann', email: ann.email }), session: anon }),
          )
          expect(out).toMatchObject({ kind: 'signedIn', userId: ann.id, memberId: 'm-ann', created: { member: false } })
          expect(await fresh.storage.getMember(ORG.id, ann.id)).toMatchObject({ role: 'owner', flags: { ...NO_FLAGS, ssoLinked: true } })
          expect((await fresh.storage.snapshot()).members.map((m) => m.id)).toEqual(['m-ann'])
        } finally {
          await fresh.drop()
        }
      })
    }

    it('derived: a flag mapped to an SQL expression is read, never written', async () => {
      const fresh = await freshHost(database, 'derived')
      try {
        await fresh.storage.seed({ organizations: [ORG], users: [makeUser({ id: 'u1' })] })
        await fresh.storage.transaction(async (tx) => {
          await tx.createMember(
            makeMember({ id: 'm1', organizationId: ORG.id, userId: 'u1', flags: { ...NO_FLAGS, idpProvisioned: true } }),
          )
          expect(await tx.updateMember('m1', { flags: { ...NO_FLAGS, ssoLinked: true, idpProvisioned: true } })).toBe(true)
        })
        expect((await fresh.storage.getMemberById('m1'))?.flags).toEqual({ ...NO_FLAGS, ssoLinked: true })
        await database.exec(`update ${fresh.names.members} set provisioned_by = 'scim' where member_id = 'm1'`)
        expect((await fresh.storage.getMemberById('m1'))?.flags).toEqual({ ...NO_FLAGS, ssoLinked: true, idpProvisioned: true })
      } finally {
        await fresh.drop()
      }
    })
  })
}
