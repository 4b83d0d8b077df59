/**
 * Kysely-adapter behaviour beyond the shared contract: constraint mapping for every dialect
 * (including primary keys), hostile values, migrations and host-table mapping, statement counts
 * of the hot reads, and driver faults mid-transaction.
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inTransaction, ok } from '../../src/engine/transaction.js'
import { createKyselyStorage, migrateSsoflow, rollbackSsoflow, ssoflowMigrations, ssoflowSchemaSql } from '../../src/kysely/index.js'
import { isStorageConflict, StorageConflictError, type StoragePort } from '../../src/ports/storage.js'
import { fixedClock, makeIdentity, makeMember, makeOrganization, makeProvider, makeUser, primaryEmailOf } from '../../src/testing/index.js'
import {
  DATABASES,
  freshStorage,
  hookDialect,
  listTables,
  rawExec,
  reportSkip,
  statementCounter,
  type TestDatabase,
  uniqueName,
} from '../helpers/databases.js'

async function conflictOf(promise: Promise<unknown>): Promise<StorageConflictError> {
  try {
    await promise
  } catch (error) {
    if (isStorageConflict(error)) return error as StorageConflictError
    throw error
  }
  throw new Error('expected a StorageConflictError, but the write succeeded')
}

const HOSTILE = [
  "'; drop table users; --",
  "x' or '1'='1",
  '" or ""="',
  'back\\slash\\',
  '%',
  '_',
  'a%b_c',
  '$1',
  '?',
  ':name',
  '`tick`',
  'semi;colon',
  '-- comment',
  '/* c */',
  'Ünïcødé ☃ 😀',
  'CaseSensitive',
  'casesensitive',
  'trailing ',
  'trailing',
  ' leading',
  'tab\there',
  'newline\nhere',
]

for (const target of DATABASES) {
  if (!target.enabled) reportSkip(`kysely adapter (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`kysely adapter on ${target.name}`, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    async function withStorage(body: (storage: Awaited<ReturnType<typeof freshStorage>>['storage']) => Promise<void>): Promise<void> {
      const fresh = await freshStorage(database, { clock: fixedClock() })
      try {
        await body(fresh.storage)
      } finally {
        await fresh.drop()
      }
    }

    async function seedBase(storage: StoragePort & { seed: (d: object) => Promise<void> }) {
      const users = [makeUser({ id: 'u1' }), makeUser({ id: 'u2' })]
      await storage.seed({
        organizations: [makeOrganization({ id: 'org' })],
        users,
        providers: [makeProvider({ id: 'prov', organizationId: 'org' })],
      })
      return users
    }

    it('maps every unique violation, primary keys included, to the port constraint', async () => {
      await withStorage(async (storage) => {
        const [u1, u2] = await seedBase(storage)
        if (!u1 || !u2) throw new Error('seed')
        await storage.transaction(async (tx) => {
          await tx.createIdentity(makeIdentity({ id: 'i1', authProviderId: 'prov', userId: 'u1', ident: 'ext-1' }))
          await tx.createMember(makeMember({ id: 'm1', organizationId: 'org', userId: 'u1', inviteTokenHash: 'h1' }))
          await tx.createMember(makeMember({ id: 'm2', organizationId: 'org', email: 'inv@example.com' }))
        })
        const tx = <T>(fn: Parameters<StoragePort['transaction']>[0]) => storage.transaction(fn) as Promise<T>
        const cases: [() => Promise<unknown>, string][] = [
          [() => tx((t) => t.createUser(makeUser({ id: 'u3', username: 'u1' }), primaryEmailOf(makeUser({ id: 'u3' })))), 'user.username'],
          [() => storage.seed({ userEmails: [primaryEmailOf(u1)] }), 'user_email.user_email'],
          [() => tx((t) => t.createAuthProvider(makeProvider({ id: 'prov2', organizationId: 'org' }))), 'auth_provider.organization'],
          [
            () => tx((t) => t.createIdentity(makeIdentity({ id: 'i2', authProviderId: 'prov', userId: 'u2', ident: 'ext-1' }))),
            'auth_identity.provider_ident',
          ],
          [
            () => tx((t) => t.createIdentity(makeIdentity({ id: 'i3', authProviderId: 'prov', userId: 'u1', ident: 'ext-3' }))),
            'auth_identity.provider_user',
          ],
          [() => tx((t) => t.createMember(makeMember({ id: 'm3', organizationId: 'org', userId: 'u1' }))), 'member.organization_user'],
          [
            () => tx((t) => t.createMember(makeMember({ id: 'm4', organizationId: 'org', email: 'INV@example.com' }))),
            'member.organization_email',
          ],
          [
            () => tx((t) => t.createMember(makeMember({ id: 'm5', organizationId: 'org', userId: 'u2', inviteTokenHash: 'h1' }))),
            'member.invite_token',
          ],
          [() => tx((t) => t.updateMember('m2', { userId: 'u1' })), 'member.organization_user'],
        ]
        for (const [write, constraint] of cases) {
          const conflict = await conflictOf(write())
          expect(conflict).toBeInstanceOf(StorageConflictError)
          expect(conflict.constraint).toBe(constraint)
          expect(conflict.cause).toBeDefined()
        }
        const expires = new Date(fixedClock().now().getTime() + 60_000)
        await storage.pipelineStates.create({ id: 's1', version: 1, body: 'b', expiresAt: expires })
        expect(
          (await conflictOf(storage.pipelineStates.create({ id: 's1', version: 1, body: 'other', expiresAt: expires }))).constraint,
        ).toBe('pipeline_state.id')
        await storage.oneTimeTokens.create({ hash: 'th', purpose: 'p', payload: '{}', expiresAt: expires })
        expect(
          (await conflictOf(storage.oneTimeTokens.create({ hash: 'th', purpose: 'q', payload: '{}', expiresAt: expires }))).constraint,
        ).toBe('one_time_token.hash')
        // Nothing of the failed writes is visible; the originals are intact.
        expect((await storage.pipelineStates.load('s1'))?.body).toBe('b')
        expect((await storage.getMemberById('m2'))?.userId).toBeNull()
        expect(await storage.getUser('u3')).toBeNull()
        expect(await storage.getAuthProviderById('prov2')).toBeNull()
      })
    })

    it('round-trips hostile identity fields exactly, as parameters (no injection, no collation folding)', async () => {
      await withStorage(async (storage) => {
        await storage.seed({
          organizations: [makeOrganization({ id: "org'; --" })],
          providers: [makeProvider({ id: 'p"x', organizationId: "org'; --" })],
        })
        await storage.transaction(async (tx) => {
          for (const [n, ident] of HOSTILE.entries()) {
            const user = makeUser({ id: `u-${n}`, name: ident, email: `h${n}@example.com` })
            await tx.createUser(user, primaryEmailOf(user))
            await tx.createIdentity(
              makeIdentity({ id: `i-${n}`, authProviderId: 'p"x', userId: user.id, ident, data: { raw: ident, nul: 'a\u0000b' } }),
            )
          }
        })
        for (const [n, ident] of HOSTILE.entries()) {
          const found = await storage.getIdentity('p"x', ident)
          expect(found?.id).toBe(`i-${n}`)
          expect(found?.ident).toBe(ident)
          expect(found?.data).toEqual({ raw: ident, nul: 'a\u0000b' })
          expect((await storage.getUser(`u-${n}`))?.name).toBe(ident)
          const linked = await storage.getLinkedIdentity('p"x', ident, "org'; --")
          expect(linked?.user.id).toBe(`u-${n}`)
        }
        expect(await storage.getIdentity('p"x', 'TRAILING')).toBeNull()
        expect(await storage.getIdentity('p"x', 'a%')).toBeNull()
        expect(await storage.getIdentity('p"x', "' or 1=1 --")).toBeNull()
        const all = await storage.listIdentities('p"x', { limit: 100 })
        expect(all).toHaveLength(HOSTILE.length)
        expect((await storage.snapshot()).users).toHaveLength(HOSTILE.length)
      })
    })

    it('property: any external id (no NUL) round-trips and finds only itself', async () => {
      await withStorage(async (storage) => {
        await seedBase(storage)
        let n = 0
        await fc.assert(
          fc.asyncProperty(
            fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\u0000')),
            async (ident) => {
              n++
              const user = makeUser({ id: `pu-${n}` })
              await storage.transaction(async (tx) => {
                await tx.createUser(user, primaryEmailOf(user))
                await tx.createIdentity(makeIdentity({ id: `pi-${n}`, authProviderId: 'prov', userId: user.id, ident: `${n}|${ident}` }))
              })
              const found = await storage.getIdentity('prov', `${n}|${ident}`)
              expect(found?.id).toBe(`pi-${n}`)
              expect(found?.ident).toBe(`${n}|${ident}`)
            },
          ),
          { numRuns: 25 },
        )
      })
    })

    it('getLinkedIdentity and findUsersByEmail are one statement each; lockIdentity (with the provider row) one statement', async () => {
      const counter = statementCounter()
      const counted = database.reopen((d) => hookDialect(d, counter))
      const fresh = await freshStorage(database, { clock: fixedClock(), db: counted })
      try {
        const storage = fresh.storage
        await seedBase(storage)
        await storage.transaction(async (tx) => {
          await tx.createIdentity(makeIdentity({ id: 'i1', authProviderId: 'prov', userId: 'u1', ident: 'ext-1' }))
          await tx.createMember(makeMember({ id: 'm1', organizationId: 'org', userId: 'u1' }))
        })
        counter.take()
        const linked = await storage.getLinkedIdentity('prov', 'ext-1', 'org')
        expect(linked?.member?.id).toBe('m1')
        expect(counter.take()).toHaveLength(1)
        expect(await storage.findUsersByEmail('u1@example.com')).toHaveLength(1)
        expect(counter.take()).toHaveLength(1)
        const held = await storage.transaction((tx) => tx.lockIdentity('prov', 'ext-1'))
        expect(held?.id).toBe('prov')
        const statements = counter.take()
        // begin + lock (identity lock and the provider row in one statement) + commit. MySQL adds
        // the isolation level, a second statement for the provider row and the lock release;
        // SQLite takes no identity lock and reads the provider row.
        expect(statements.length).toBe(target.name === 'mysql' ? 6 : 3)
      } finally {
        await fresh.drop()
        if (target.name !== 'pglite' && target.name !== 'sqlite') await counted.destroy()
      }
    })

    it('a failing statement mid-transaction gives STORAGE_UNAVAILABLE through the engine and writes nothing', async () => {
      let failOn: RegExp | null = null
      const faulty = database.reopen((d) =>
        hookDialect(d, {
          before(text) {
            if (failOn?.test(text)) {
              failOn = null
              throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
            }
          },
        }),
      )
      const fresh = await freshStorage(database, { clock: fixedClock(), db: faulty })
      try {
        const storage = fresh.storage
        await seedBase(storage)
        const before = await storage.snapshot()
        failOn = /insert into .*members/i
        const user = makeUser({ id: 'new-user' })
        const result = await inTransaction(storage, async (tx) => {
          await tx.createUser(user, primaryEmailOf(user))
          await tx.createIdentity(makeIdentity({ id: 'new-ident', authProviderId: 'prov', userId: user.id, ident: 'ext-new' }))
          await tx.createMember(makeMember({ id: 'new-member', organizationId: 'org', userId: user.id }))
          return ok('done')
        })
        expect(result.isErr()).toBe(true)
        const error = result._unsafeUnwrapErr()
        expect(error.code).toBe('STORAGE_UNAVAILABLE')
        expect(error.retryable).toBe(true)
        expect(JSON.stringify(error)).not.toContain('Connection terminated')
        expect(await storage.snapshot()).toEqual(before)
        // The store works again afterwards.
        await storage.transaction((tx) => tx.createUser(user, primaryEmailOf(user)))
        expect((await storage.getUser('new-user'))?.id).toBe('new-user')
      } finally {
        await fresh.drop()
        if (target.name !== 'pglite' && target.name !== 'sqlite') await faulty.destroy()
      }
    })

    if (target.name === 'postgres') {
      it('pg_terminate_backend mid-transaction -> STORAGE_UNAVAILABLE, nothing half-written', async () => {
        const { openPostgres } = await import('../helpers/databases.js')
        const appName = uniqueName('killme_')
        const victim = await openPostgres({ max: 1, applicationName: appName })
        try {
          await migrateSsoflow(victim.db, { dialect: 'postgres', tablePrefix: 'k_' })
          const storage = createKyselyStorage(victim.db, { dialect: 'postgres', tablePrefix: 'k_', clock: fixedClock() })
          await storage.seed({
            organizations: [makeOrganization({ id: 'org' })],
            providers: [makeProvider({ id: 'prov', organizationId: 'org' })],
          })
          const killer = victim.reopen((d) => d)
          const user = makeUser({ id: 'half' })
          const result = await inTransaction(storage, async (tx) => {
            await tx.createUser(user, primaryEmailOf(user))
            await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${appName} and state = 'idle in transaction'`.execute(
              killer,
            )
            await tx.createIdentity(makeIdentity({ id: 'half-i', authProviderId: 'prov', userId: 'half', ident: 'x' }))
            return ok(1)
          })
          expect(result._unsafeUnwrapErr().code).toBe('STORAGE_UNAVAILABLE')
          const check = createKyselyStorage(killer, { dialect: 'postgres', tablePrefix: 'k_' })
          expect(await check.getUser('half')).toBeNull()
          expect((await check.snapshot()).identities).toEqual([])
        } finally {
          await victim.close()
        }
      })
    }

    if (target.name === 'pglite' || target.name === 'postgres') {
      it('email lookup and identity lookup use their indexes', async () => {
        const fresh = await freshStorage(database, { clock: fixedClock() })
        try {
          await database.db.transaction().execute(async (trx) => {
            await sql`set local enable_seqscan = off`.execute(trx)
            const plan = await sql.raw(`explain select * from ${fresh.prefix}_user_emails where email_normalized = 'a@b.c'`).execute(trx)
            expect(JSON.stringify(plan.rows)).toContain(`${fresh.prefix}_user_emails_email_ix`)
            const plan2 = await sql
              .raw(`explain select * from ${fresh.prefix}_auth_identities where auth_provider_id = 'p' and ident = 'x'`)
              .execute(trx)
            expect(JSON.stringify(plan2.rows)).toMatch(/Index (Only )?Scan using \w+_auth_identities_\w+/)
            expect(JSON.stringify(plan2.rows)).not.toContain('Seq Scan')
          })
        } finally {
          await fresh.drop()
        }
      })
    }

    it('storage calls made inside a transaction callback join that transaction (no single-connection deadlock)', async () => {
      await withStorage(async (storage) => {
        await seedBase(storage)
        const now = fixedClock().now()
        const expiresAt = new Date(now.getTime() + 60_000)
        const marker = new Error('roll back')
        await expect(
          storage.transaction(async (tx) => {
            await tx.createMember(makeMember({ id: 'm-rolled', organizationId: 'org', userId: 'u1' }))
            await storage.oneTimeTokens.create({ hash: 'inside', purpose: 'verify', payload: '{}', expiresAt })
            expect((await storage.getMemberById('m-rolled'))?.id).toBe('m-rolled')
            throw marker
          }),
        ).rejects.toBe(marker)
        expect(await storage.oneTimeTokens.peek('inside', 'verify', now)).toBeNull()
        expect(await storage.getMemberById('m-rolled')).toBeNull()
        await storage.oneTimeTokens.create({ hash: 'tok', purpose: 'verify', payload: 'p', expiresAt })
        const got = await storage.transaction(async (tx) => {
          await tx.lockIdentity('prov', 'x')
          return storage.oneTimeTokens.consume('tok', 'verify', now)
        })
        expect(got?.payload).toBe('p')
        expect(await storage.oneTimeTokens.peek('tok', 'verify', now)).toBeNull()
      })
    })

    it('migrations: up creates prefixed tables, down drops exactly them; reruns are no-ops', async () => {
      const prefix = `${uniqueName('m')}_`
      const naming = { dialect: database.dialect, tablePrefix: prefix }
      expect(await listTables(database, prefix)).toEqual([])
      expect((await migrateSsoflow(database.db, naming)).executed).toEqual([
        '0001_ssoflow_init',
        '0002_ssoflow_pending_work',
        '0003_ssoflow_domains',
      ])
      expect((await migrateSsoflow(database.db, naming)).executed).toEqual([])
      expect(await listTables(database, prefix)).toEqual(
        [
          'audit_log',
          'auth_identities',
          'auth_providers',
          'members',
          'migrations',
          'one_time_tokens',
          'organization_domains',
          'organizations',
          'pending_work',
          'pipeline_states',
          'user_emails',
          'users',
        ].map((t) => `${prefix}${t}`),
      )
      expect((await rollbackSsoflow(database.db, naming)).executed).toEqual([
        '0003_ssoflow_domains',
        '0002_ssoflow_pending_work',
        '0001_ssoflow_init',
      ])
      expect(await listTables(database, prefix)).toEqual([`${prefix}migrations`])
      // Concurrent runs (several app instances starting) apply the migration exactly once.
      const runs = await Promise.all(Array.from({ length: 4 }, () => migrateSsoflow(database.db, naming)))
      expect(runs.flatMap((r) => r.executed)).toEqual(['0001_ssoflow_init', '0002_ssoflow_pending_work', '0003_ssoflow_domains'])
      await rollbackSsoflow(database.db, naming)
      await database.db.schema.dropTable(`${prefix}migrations`).execute()
      expect(await listTables(database, prefix)).toEqual([])
      expect(Object.keys(ssoflowMigrations({ dialect: database.dialect }))).toEqual([
        '0001_ssoflow_init',
        '0002_ssoflow_pending_work',
        '0003_ssoflow_domains',
      ])
    })

    if (target.name === 'pglite' || target.name === 'postgres') {
      it("host users table with native timestamptz dates (dates: 'native') round-trips milliseconds", async () => {
        const host = uniqueName('n')
        await rawExec(
          database.db,
          `create table ${host}_users (id varchar(255) primary key, username varchar(255) not null unique, email varchar(320) not null,
            name varchar(255) not null, is_active boolean not null, is_suspended boolean not null, has_usable_password boolean not null,
            has_2fa boolean not null, created_at timestamptz not null)`,
        )
        const naming = {
          dialect: 'postgres' as const,
          tablePrefix: `${host}_sso_`,
          tables: { users: { table: `${host}_users`, dates: 'native' as const } },
        }
        await migrateSsoflow(database.db, naming)
        try {
          const storage = createKyselyStorage(database.db, naming)
          const user = makeUser({ id: 'nu', createdAt: new Date('2026-07-08T09:10:11.987Z') })
          await storage.transaction((tx) => tx.createUser(user, primaryEmailOf(user)))
          expect(await storage.getUser('nu')).toEqual(user)
          const raw = await sql.raw(`select created_at from ${host}_users`).execute(database.db)
          expect((raw.rows[0] as { created_at: unknown }).created_at).toBeInstanceOf(Date)
        } finally {
          await rollbackSsoflow(database.db, naming)
          for (const t of [`${host}_sso_migrations`, `${host}_users`]) {
            await database.db.schema.dropTable(t).ifExists().execute()
          }
        }
      })
    }

    it('ssoflowSchemaSql gives the same schema as the migrations, runnable by hand', async () => {
      const prefix = `${uniqueName('q')}_`
      const naming = { dialect: database.dialect, tablePrefix: prefix }
      const flavor =
        target.name === 'mysql' ? ((await sql<{ v: string }>`select version() as v`.execute(database.db)).rows[0]?.v ?? '') : ''
      const statements = await ssoflowSchemaSql({ ...naming, mysqlFlavor: flavor.includes('MariaDB') ? 'mariadb' : 'mysql' })
      expect(statements.length).toBeGreaterThan(9)
      for (const statement of statements) await rawExec(database.db, statement)
      try {
        const storage = createKyselyStorage(database.db, { ...naming, clock: fixedClock() })
        await seedBase(storage)
        await storage.transaction((tx) => tx.createIdentity(makeIdentity({ id: 'i1', authProviderId: 'prov', userId: 'u1', ident: 'Ext' })))
        expect((await storage.getLinkedIdentity('prov', 'Ext', 'org'))?.user.id).toBe('u1')
        expect(await storage.getIdentity('prov', 'ext')).toBeNull()
        const conflict = await conflictOf(
          storage.transaction((tx) => tx.createIdentity(makeIdentity({ id: 'i2', authProviderId: 'prov', userId: 'u2', ident: 'Ext' }))),
        )
        expect(conflict.constraint).toBe('auth_identity.provider_ident')
      } finally {
        await rollbackSsoflow(database.db, naming).catch(() => {})
        for (const t of [
          'organization_domains',
          'pending_work',
          'one_time_tokens',
          'pipeline_states',
          'audit_log',
          'members',
          'auth_identities',
          'auth_providers',
          'user_emails',
          'users',
          'organizations',
          'migrations',
        ]) {
          await database.db.schema.dropTable(`${prefix}${t}`).ifExists().execute()
        }
      }
    })

    it('maps onto host-owned users and organizations tables', async () => {
      const host = uniqueName('h')
      const b = database.dialect === 'postgres' ? 'boolean' : 'integer'
      await rawExec(
        database.db,
        `create table ${host}_accounts (uid varchar(255) primary key, login varchar(255) not null, mail varchar(320) not null,
          display_name varchar(255) not null, active ${b} not null, suspended ${b} not null, pw ${b} not null, mfa ${b} not null,
          joined bigint not null, extra varchar(50) default 'x')`,
      )
      await rawExec(database.db, `create unique index ${host}_login_key on ${host}_accounts (login)`)
      await rawExec(
        database.db,
        `create table ${host}_orgs (oid varchar(255) primary key, handle varchar(255) not null, title varchar(255) not null,
          role_default varchar(64) not null, mfa_required ${b} not null)`,
      )
      const tables = {
        users: {
          table: `${host}_accounts`,
          columns: {
            id: 'uid',
            username: 'login',
            email: 'mail',
            name: 'display_name',
            isActive: 'active',
            isSuspended: 'suspended',
            hasUsablePassword: 'pw',
            has2fa: 'mfa',
            createdAt: 'joined',
          },
          uniqueIndexes: { username: `${host}_login_key` },
        },
        organizations: {
          table: `${host}_orgs`,
          columns: { id: 'oid', slug: 'handle', name: 'title', defaultRole: 'role_default', require2fa: 'mfa_required' },
        },
      } as const
      const naming = { dialect: database.dialect, tablePrefix: `${host}_sso_`, tables }
      await migrateSsoflow(database.db, naming)
      try {
        const names = await listTables(database, host)
        expect(names).not.toContain(`${host}_sso_users`)
        expect(names).not.toContain(`${host}_sso_organizations`)
        const storage = createKyselyStorage(database.db, { ...naming, clock: fixedClock() })
        const org = makeOrganization({ id: 'o1', require2fa: true })
        await storage.seed({ organizations: [org], providers: [makeProvider({ id: 'p1', organizationId: 'o1' })] })
        expect(await storage.getOrganization('o1')).toEqual(org)
        const user = makeUser({ id: 'hu1', email: 'Host@Example.com', has2fa: true, createdAt: new Date('2026-05-06T07:08:09.123Z') })
        await storage.transaction(async (tx) => {
          await tx.createUser(user, primaryEmailOf(user))
          await tx.createIdentity(makeIdentity({ id: 'hi1', authProviderId: 'p1', userId: 'hu1', ident: 'sub-1' }))
          await tx.createMember(makeMember({ id: 'hm1', organizationId: 'o1', userId: 'hu1' }))
          expect(await tx.updateOrganization('o1', { require2fa: false })).toBe(true)
        })
        expect(await storage.getUser('hu1')).toEqual(user)
        expect((await storage.findUsersByEmail('host@example.com')).map((m) => m.user)).toEqual([user])
        const linked = await storage.getLinkedIdentity('p1', 'sub-1', 'o1')
        expect(linked?.user).toEqual(user)
        expect(linked?.member?.id).toBe('hm1')
        expect((await storage.getOrganization('o1'))?.require2fa).toBe(false)
        const other = makeUser({ id: 'hu2', username: user.username })
        const conflict = await conflictOf(storage.transaction((tx) => tx.createUser(other, primaryEmailOf(other))))
        expect(conflict.constraint).toBe('user.username')
        const rows = await sql.raw(`select extra from ${host}_accounts`).execute(database.db)
        expect(rows.rows).toEqual([{ extra: 'x' }])
        await rollbackSsoflow(database.db, naming)
        const left = await listTables(database, host)
        expect(left).toContain(`${host}_accounts`)
        expect(left).toContain(`${host}_orgs`)
      } finally {
        for (const t of [`${host}_sso_migrations`, `${host}_accounts`, `${host}_orgs`]) {
          await database.db.schema.dropTable(t).ifExists().execute()
        }
      }
    })
  })
}
