/**
 * Issue 16 item 3: migrations that always finish.
 *
 * - A migration cut after any one of its steps (a crash or a lost connection between two DDL
 *   statements; on MySQL / MariaDB every DDL statement commits at once) completes on the next
 *   boot, on every dialect.
 * - 8 instances booting at once on PostgreSQL at each isolation level (`default_transaction_
 *   isolation` read committed, repeatable read, serializable) and on MariaDB, and 6 processes on
 *   one SQLite file: every instance succeeds and the migration runs once.
 */
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKyselyStorage, migrateSsoflow, rollbackSsoflow, ssoflowMigrations } from '../../src/kysely/index.js'
import { fixedClock, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import {
  type AnyKysely,
  DATABASE_URL,
  DATABASES,
  hookDialect,
  listTables,
  MYSQL_URL,
  reportSkip,
  type TestDatabase,
  uniqueName,
} from '../helpers/databases.js'

const TABLES = [
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
]

/** A DDL statement: what a cut can fall between. */
const isDdl = (text: string) => /^\s*(create|alter|drop)\s/i.test(text)

/** Every migration's name: what a completed run has recorded. */
const ALL = Object.keys(ssoflowMigrations({ dialect: 'postgres' })).sort()

/** The schema is complete and usable: every table, and a storage that writes and reads. */
async function expectComplete(database: TestDatabase, db: AnyKysely, prefix: string): Promise<void> {
  expect(await listTables(database, prefix)).toEqual(TABLES.map((t) => `${prefix}${t}`).sort())
  const done = await db.selectFrom(`${prefix}migrations`).select('name').execute()
  expect(done.map((r) => String((r as { name: unknown }).name)).sort()).toEqual(ALL)
  const storage = createKyselyStorage(db, { dialect: database.dialect, tablePrefix: prefix, clock: fixedClock() })
  await storage.seed({ organizations: [makeOrganization({ id: 'o1' })], users: [makeUser({ id: 'u1' })] })
  await storage.transaction((tx) => tx.createAuthProvider(makeProvider({ id: 'p1', organizationId: 'o1' })))
  // The unique indexes are there: a second provider for the org is a conflict.
  await expect(storage.transaction((tx) => tx.createAuthProvider(makeProvider({ id: 'p2', organizationId: 'o1' })))).rejects.toMatchObject({
    constraint: 'auth_provider.organization',
  })
  // Migration 0003's unique indexes: one claim per (org, domain), one verified org per domain.
  const t0 = new Date('2026-01-01T00:00:00.000Z')
  const claim = (id: string, organizationId: string) => ({
    id,
    organizationId,
    domain: 'acme.test',
    verificationToken: `tok-${id}`,
    verifiedAt: null,
    createdAt: t0,
  })
  await storage.seed({ organizations: [makeOrganization({ id: 'o2' })] })
  await storage.transaction(async (tx) => {
    await tx.createOrganizationDomain?.(claim('d1', 'o1'))
    await tx.createOrganizationDomain?.(claim('d2', 'o2'))
    await tx.verifyOrganizationDomain?.('d1', t0)
  })
  await expect(storage.transaction(async (tx) => tx.createOrganizationDomain?.(claim('d3', 'o1')))).rejects.toMatchObject({
    constraint: 'organization_domain.organization_domain',
  })
  await expect(storage.transaction(async (tx) => tx.verifyOrganizationDomain?.('d2', t0))).rejects.toMatchObject({
    constraint: 'organization_domain.verified',
  })
}

async function dropAll(db: AnyKysely, dialect: TestDatabase['dialect'], prefix: string): Promise<void> {
  await rollbackSsoflow(db, { dialect, tablePrefix: prefix }).catch(() => {})
  for (const t of TABLES) await db.schema.dropTable(`${prefix}${t}`).ifExists().execute()
}

for (const target of DATABASES) {
  if (!target.enabled) {
    reportSkip(`migrations (cut) on ${target.name}`, target.variable ?? '')
    continue
  }
  describe(`migrations cut after each step on ${target.name}`, { timeout: 600_000 }, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    it('a migration cut after any step completes on the next boot', async () => {
      // How many DDL steps a full run has.
      const probe = uniqueName('mc')
      let steps = 0
      const counting = database.reopen((d) =>
        hookDialect(d, {
          before(text) {
            if (isDdl(text)) steps++
          },
        }),
      )
      await migrateSsoflow(counting, { dialect: database.dialect, tablePrefix: `${probe}_` })
      await dropAll(database.db, database.dialect, `${probe}_`)
      expect(steps).toBeGreaterThan(10)

      const failures: string[] = []
      for (let cut = 1; cut <= steps; cut++) {
        const prefix = `${uniqueName('mc')}_`
        let seen = 0
        // The run dies right after its `cut`-th DDL step (before its next statement). What it had
        // not committed is rolled back, as the server does for a lost connection (the ROLLBACK
        // goes through: on the embedded databases the connection outlives the cut).
        let dead = false
        const cutting = database.reopen((d) =>
          hookDialect(d, {
            before(text) {
              if (dead && !/^\s*rollback/i.test(text)) {
                throw Object.assign(new Error('Connection terminated unexpectedly (cut)'), { code: 'ECONNRESET' })
              }
              if (isDdl(text) && ++seen === cut) dead = true
            },
          }),
        )
        const first = await migrateSsoflow(cutting, { dialect: database.dialect, tablePrefix: prefix }).then(
          () => 'completed',
          (e: unknown) => String(e),
        )
        if (target.name === 'postgres' || target.name === 'mysql') await cutting.destroy()
        try {
          // The next boot finishes the job.
          await migrateSsoflow(database.db, { dialect: database.dialect, tablePrefix: prefix })
          await expectComplete(database, database.db, prefix)
        } catch (error) {
          failures.push(`cut after step ${cut} (${first}): ${String(error)}`)
        }
        // (Each cut has its own prefix; the fixture drops the whole schema / database at the end.)
      }
      expect(failures).toEqual([])
    })
  })
}

/** `n` separate Kysely instances ("app instances"), each with its own pool, connected. */
async function instances(n: number, make: () => AnyKysely): Promise<AnyKysely[]> {
  const list = Array.from({ length: n }, make)
  // Connected before the race starts, so that all of them boot at the same moment.
  await Promise.all(list.map((db) => sql`select 1`.execute(db)))
  return list
}

const BOOTS = 8

describe.skipIf(DATABASE_URL === '')('8 instances booting at once on PostgreSQL', { timeout: 300_000 }, () => {
  if (DATABASE_URL === '') reportSkip('concurrent migrations (postgres)', 'DATABASE_URL')
  const schema = uniqueName('ssoflow_t_')
  let admin: pg.Client
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    await admin.query(`create schema ${schema}`)
  })
  afterAll(async () => {
    await admin?.query(`drop schema if exists ${schema} cascade`)
    await admin?.end()
  })

  for (const level of ['read committed', 'repeatable read', 'serializable']) {
    it(`default_transaction_isolation = ${level}: every instance boots, the migration runs once`, async () => {
      const prefix = `${uniqueName('mb')}_`
      const pools: pg.Pool[] = []
      const dbs = await instances(BOOTS, () => {
        const pool = new pg.Pool({
          connectionString: DATABASE_URL,
          max: 2,
          options: `-c search_path=${schema} -c default_transaction_isolation=${level.replace(' ', '\\ ')}`,
        })
        pools.push(pool)
        return new Kysely({ dialect: new PostgresDialect({ pool }) })
      })
      try {
        const { rows } = await sql<{ default_transaction_isolation: string }>`show default_transaction_isolation`.execute(
          dbs[0] as AnyKysely,
        )
        expect(rows[0]?.default_transaction_isolation).toBe(level)
        const results = await Promise.allSettled(dbs.map((db) => migrateSsoflow(db, { dialect: 'postgres', tablePrefix: prefix })))
        const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
        expect(failed).toEqual([])
        const executed = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.executed : []))
        expect(executed.sort()).toEqual(ALL)
      } finally {
        await Promise.all(dbs.map((db) => db.destroy()))
        for (const t of TABLES) await admin.query(`drop table if exists ${schema}.${prefix}${t}`)
      }
    })
  }
})

describe.skipIf(MYSQL_URL === '')('8 instances booting at once on MySQL / MariaDB', { timeout: 300_000 }, () => {
  if (MYSQL_URL === '') reportSkip('concurrent migrations (mysql)', 'MYSQL_URL')
  const database = uniqueName('ssoflow_t_')
  let adminPool: ReturnType<typeof createPool>
  beforeAll(async () => {
    adminPool = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
    await adminPool.promise().query(`create database ${database} character set utf8mb4`)
  })
  afterAll(async () => {
    await adminPool?.promise().query(`drop database if exists ${database}`)
    await adminPool?.promise().end()
  })

  it('every instance boots, the migration runs once', async () => {
    const url = new URL(MYSQL_URL)
    url.pathname = `/${database}`
    const prefix = `${uniqueName('mb')}_`
    const dbs = await instances(
      BOOTS,
      () => new Kysely({ dialect: new MysqlDialect({ pool: createPool({ uri: url.toString(), connectionLimit: 2 }) }) }),
    )
    try {
      const results = await Promise.allSettled(dbs.map((db) => migrateSsoflow(db, { dialect: 'mysql', tablePrefix: prefix })))
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
      expect(failed).toEqual([])
      const executed = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.executed : []))
      expect(executed.sort()).toEqual(ALL)
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()))
    }
  })
})

describe('6 processes booting at once on one SQLite file', { timeout: 300_000 }, () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssoflow-sqlite-'))
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('every process boots, the migration runs once', async () => {
    const file = join(dir, `${uniqueName('boot')}.db`)
    const prefix = `${uniqueName('mb')}_`
    const child = join(import.meta.dirname, 'fixtures', 'sqlite-migrate-child.ts')
    const procs = Array.from({ length: 6 }, () => fork(child, [file, prefix], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }))
    type Outcome = { ok: true; executed: string[] } | { ok: false; error: string }
    const outcomes = procs.map(
      (p) =>
        new Promise<Outcome>((resolve, reject) => {
          p.on('message', (m) => {
            if (m !== 'ready') resolve(m as Outcome)
          })
          p.on('exit', (code) => reject(new Error(`child exited with ${code} before reporting`)))
        }),
    )
    // Barrier: every process has opened the file; then all of them start at once.
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => p.on('message', (m) => m === 'ready' && resolve()))))
    for (const p of procs) p.send('go')
    const results = await Promise.all(outcomes)
    const failed = results.filter((r) => !r.ok)
    expect(failed).toEqual([])
    expect(results.flatMap((r) => (r.ok ? r.executed : [])).sort()).toEqual(ALL)
    const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(file) }) })
    try {
      const fake: TestDatabase = { kind: 'sqlite', dialect: 'sqlite', db, reopen: () => db, close: async () => {} }
      await expectComplete(fake, db, prefix)
    } finally {
      await db.destroy()
    }
  })
})
