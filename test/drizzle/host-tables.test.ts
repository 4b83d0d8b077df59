/**
 * `ssoflow/drizzle` on the host's own users and organizations tables, with fields mapped to SQL
 * expressions (`suspended_at is not null`, `password_hash is not null`) and a unique index on the
 * users' address; and ssoflow's exported table definitions against the tables the migrations
 * create. PGlite and SQLite always, PostgreSQL and MySQL/MariaDB when their URLs are set.
 */

import { sql } from 'drizzle-orm'
import { boolean, bigint as myBigint, getTableConfig as mysqlConfig, mysqlTable, varchar as myVarchar } from 'drizzle-orm/mysql-core'
import { bigint as pgBigint, boolean as pgBoolean, getTableConfig as pgConfig, pgTable, varchar as pgVarchar } from 'drizzle-orm/pg-core'
import { integer, getTableConfig as sqliteConfig, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ssoflowMysqlTables, ssoflowPgTables, ssoflowSqliteTables } from '../../src/drizzle/index.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { SessionInfo } from '../../src/engine/types.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  primaryEmailOf,
  validatingStorage,
} from '../../src/testing/index.js'
import { reportSkip, uniqueName } from '../helpers/databases.js'
import { handleOf, post, unwrap, urls } from '../helpers/engine-suite.js'
import { DRIZZLE_DATABASES, type DrizzleTestDatabase, freshDrizzleStorage, mysqlFlavorOf } from './databases.js'

function hostTables(dialect: DrizzleTestDatabase['dialect'], host: string) {
  if (dialect === 'postgres') {
    const accounts = pgTable(`${host}_accounts`, {
      uid: pgVarchar('uid', { length: 255 }).primaryKey(),
      login: pgVarchar('login', { length: 255 }).notNull(),
      mail: pgVarchar('mail', { length: 320 }).notNull(),
      displayName: pgVarchar('display_name', { length: 255 }).notNull(),
      active: pgBoolean('active').notNull(),
      suspendedAt: pgBigint('suspended_at', { mode: 'number' }),
      passwordHash: pgVarchar('password_hash', { length: 255 }),
      mfa: pgBoolean('mfa').notNull(),
      joined: pgBigint('joined', { mode: 'number' }).notNull(),
    })
    const orgs = pgTable(`${host}_orgs`, {
      oid: pgVarchar('oid', { length: 255 }).primaryKey(),
      handle: pgVarchar('handle', { length: 255 }).notNull(),
      title: pgVarchar('title', { length: 255 }).notNull(),
      roleDefault: pgVarchar('role_default', { length: 64 }).notNull(),
      mfaRequired: pgBoolean('mfa_required').notNull(),
    })
    return { accounts, orgs }
  }
  if (dialect === 'mysql') {
    const accounts = mysqlTable(`${host}_accounts`, {
      uid: myVarchar('uid', { length: 255 }).primaryKey(),
      login: myVarchar('login', { length: 255 }).notNull(),
      mail: myVarchar('mail', { length: 320 }).notNull(),
      displayName: myVarchar('display_name', { length: 255 }).notNull(),
      active: boolean('active').notNull(),
      suspendedAt: myBigint('suspended_at', { mode: 'number' }),
      passwordHash: myVarchar('password_hash', { length: 255 }),
      mfa: boolean('mfa').notNull(),
      joined: myBigint('joined', { mode: 'number' }).notNull(),
    })
    const orgs = mysqlTable(`${host}_orgs`, {
      oid: myVarchar('oid', { length: 255 }).primaryKey(),
      handle: myVarchar('handle', { length: 255 }).notNull(),
      title: myVarchar('title', { length: 255 }).notNull(),
      roleDefault: myVarchar('role_default', { length: 64 }).notNull(),
      mfaRequired: boolean('mfa_required').notNull(),
    })
    return { accounts, orgs }
  }
  const accounts = sqliteTable(`${host}_accounts`, {
    uid: text('uid').primaryKey(),
    login: text('login').notNull(),
    mail: text('mail').notNull(),
    displayName: text('display_name').notNull(),
    active: integer('active', { mode: 'boolean' }).notNull(),
    suspendedAt: integer('suspended_at'),
    passwordHash: text('password_hash'),
    mfa: integer('mfa', { mode: 'boolean' }).notNull(),
    joined: integer('joined').notNull(),
  })
  const orgs = sqliteTable(`${host}_orgs`, {
    oid: text('oid').primaryKey(),
    handle: text('handle').notNull(),
    title: text('title').notNull(),
    roleDefault: text('role_default').notNull(),
    mfaRequired: integer('mfa_required', { mode: 'boolean' }).notNull(),
  })
  return { accounts, orgs }
}

for (const target of DRIZZLE_DATABASES) {
  if (!target.enabled) reportSkip(`drizzle host tables (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`drizzle on host tables, ${target.name}`, () => {
    let database: DrizzleTestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    it('maps users and organizations onto host tables with SQL expressions; the host email index ends a sign-up in IDENTITY_CONFLICT', async () => {
      const host = uniqueName('h')
      const b = database.dialect === 'postgres' ? 'boolean' : 'integer'
      // MySQL: the host's columns that ssoflow joins on need ssoflow's no-pad binary collation.
      const collation =
        database.dialect === 'mysql' && (await mysqlFlavorOf(database)) === 'mariadb' ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin'
      const str = database.dialect === 'mysql' ? `varchar(255) collate ${collation}` : 'varchar(255)'
      await database.exec(
        `create table ${host}_accounts (uid ${str} primary key, login ${str} not null, mail ${str} not null,
          display_name ${str} not null, active ${b} not null, suspended_at bigint, password_hash ${str}, mfa ${b} not null,
          joined bigint not null)`,
      )
      await database.exec(`create unique index ${host}_accounts_login_key on ${host}_accounts (login)`)
      await database.exec(`create unique index ${host}_accounts_mail_key on ${host}_accounts (mail)`)
      await database.exec(
        `create table ${host}_orgs (oid ${str} primary key, handle ${str} not null, title ${str} not null,
          role_default varchar(64) not null, mfa_required ${b} not null)`,
      )
      const { accounts, orgs } = hostTables(database.dialect, host)
      const clock = fixedClock('2026-03-01T12:00:00.000Z')
      const fresh = await freshDrizzleStorage(database, {
        clock,
        tables: {
          users: {
            table: accounts,
            dates: 'epochMs',
            fields: {
              id: accounts.uid,
              username: accounts.login,
              email: accounts.mail,
              name: accounts.displayName,
              isActive: accounts.active,
              isSuspended: sql`${accounts.suspendedAt} is not null`,
              hasUsablePassword: sql`${accounts.passwordHash} is not null`,
              has2fa: accounts.mfa,
              createdAt: accounts.joined,
            },
            uniqueIndexes: { username: `${host}_accounts_login_key`, email: `${host}_accounts_mail_key` },
          },
          organizations: {
            table: orgs,
            fields: { id: orgs.oid, slug: orgs.handle, name: orgs.title, defaultRole: orgs.roleDefault, require2fa: orgs.mfaRequired },
          },
        },
      })
      const storage = fresh.storage
      try {
        const org = makeOrganization({ id: 'org1', slug: 'acme' })
        const provider = makeProvider({ id: 'ap1', organizationId: org.id, providerKey: 'dummy' })
        await storage.seedHostData({ organizations: [org] })
        expect(await storage.getOrganization('org1')).toEqual(org)
        // A user ssoflow creates: the expression fields come from the host's defaults (null).
        const created = makeUser({
          id: 'u1',
          email: 'Ann@Example.com',
          hasUsablePassword: false,
          createdAt: new Date('2026-01-02T03:04:05.678Z'),
        })
        await storage.transaction(async (tx) => {
          await tx.createAuthProvider(provider)
          await tx.createUser(created, primaryEmailOf(created))
          await tx.createIdentity(makeIdentity({ id: 'i1', authProviderId: provider.id, userId: 'u1', ident: 'sub-1' }))
          await tx.createMember(makeMember({ id: 'm1', organizationId: org.id, userId: 'u1' }))
          expect(await tx.updateOrganization(org.id, { require2fa: true })).toBe(true)
        })
        expect(await storage.getUser('u1')).toEqual(created)
        // The host suspends the account and sets a password in its own columns.
        await database.exec(`update ${host}_accounts set suspended_at = 1, password_hash = 'x' where uid = 'u1'`)
        const seen = await storage.getUser('u1')
        expect(seen).toEqual({ ...created, isSuspended: true, hasUsablePassword: true })
        expect((await storage.getLinkedIdentity(provider.id, 'sub-1', org.id))?.user).toEqual(seen)
        expect((await storage.findUsersByEmail('ann@example.com')).map((m) => m.user.id)).toEqual(['u1'])
        expect((await storage.getOrganization(org.id))?.require2fa).toBe(true)

        // An inactive host account holds an address; an SSO sign-up with it hits the host's index.
        await database.exec(
          `insert into ${host}_accounts (uid, login, mail, display_name, active, mfa, joined) values ('gone', 'gone', 'gone@corp.example', 'Gone', ${
            database.dialect === 'postgres' ? 'false' : '0'
          }, ${database.dialect === 'postgres' ? 'false' : '0'}, 0)`,
        )
        const sso = createAuthPipeline({
          storage: validatingStorage(storage),
          mailer: createRecordingMailer(),
          signals: createRecordingSignals(),
          providers: { dummy: dummyProvider() },
          secret: 'drizzle host tables secret, thirty-two bytes or more',
          urls,
          clock,
        })
        const session: SessionInfo = { id: 'gone-1' }
        const begun = await unwrap(sso.beginLogin({ organizationId: org.id, session }))
        const page = await unwrap(
          sso.advance({
            handle: handleOf(begun),
            request: post({ id: 'ext-gone', email: 'gone@corp.example', email_verified: 'on' }),
            session,
          }),
        )
        const before = await storage.snapshot()
        const failed = await sso.finishLogin({ handle: handleOf(page), session, op: 'newuser' })
        expect(failed._unsafeUnwrapErr()).toMatchObject({
          code: 'IDENTITY_CONFLICT',
          retryable: false,
          details: { constraint: 'user.email' },
        })
        const after = await storage.snapshot()
        expect({ ...after, pipelineStates: [] }).toEqual({ ...before, pipelineStates: [] })
      } finally {
        await fresh.drop()
        for (const t of [`${host}_accounts`, `${host}_orgs`]) await database.exec(`drop table if exists ${t}`)
      }
    })

    it('the exported Drizzle table definitions name the tables, columns and unique indexes the migrations create', async () => {
      const fresh = await freshDrizzleStorage(database)
      try {
        const prefix = fresh.prefix
        const tables =
          database.dialect === 'postgres'
            ? Object.values(ssoflowPgTables(prefix)).map((t) => pgConfig(t))
            : database.dialect === 'mysql'
              ? Object.values(ssoflowMysqlTables(prefix)).map((t) => mysqlConfig(t))
              : Object.values(ssoflowSqliteTables(prefix)).map((t) => sqliteConfig(t))
        for (const t of tables) {
          const columns = t.columns.map((c) => c.name).sort()
          const query =
            database.dialect === 'sqlite'
              ? sql`select name from pragma_table_info(${t.name})`
              : database.dialect === 'postgres'
                ? sql`select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ${t.name}`
                : sql`select column_name as name from information_schema.columns where table_schema = database() and table_name = ${t.name}`
          const rows =
            database.dialect === 'sqlite'
              ? (database.db.all(query) as { name: string }[])
              : database.dialect === 'mysql'
                ? ((await database.db.execute(query)) as [{ name: string }[]])[0]
                : ((await database.db.execute(query)) as { rows: { name: string }[] }).rows
          expect(rows.map((r) => String(r.name)).sort(), t.name).toEqual(columns)
        }
        const uniques = tables.flatMap((t) => t.indexes.filter((i) => i.config.unique).map((i) => i.config.name)).sort()
        expect(uniques).toEqual(
          [
            'users_username_uq',
            'auth_providers_org_uq',
            'auth_identities_ident_uq',
            'auth_identities_user_uq',
            'members_org_user_uq',
            'members_org_email_uq',
            'members_token_uq',
            'org_domains_org_domain_uq',
            'org_domains_verified_uq',
            'pending_work_key_uq',
          ]
            .map((n) => `${prefix}${n}`)
            .sort(),
        )
      } finally {
        await fresh.drop()
      }
    })
  })
}
