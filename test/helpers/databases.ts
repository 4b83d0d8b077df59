/**
 * Shared database fixtures for tests: embedded PGlite and SQLite (always available), and the
 * real PostgreSQL / MySQL servers when DATABASE_URL / MYSQL_URL are set. Every server fixture
 * works in its own schema/database, named uniquely per run and dropped by `close()`.
 */
import { randomBytes } from 'node:crypto'
import { PGlite } from '@electric-sql/pglite'
import Database from 'better-sqlite3'
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  MysqlDialect,
  PostgresDialect,
  SqliteDialect,
  sql,
} from 'kysely'
import { createPool } from 'mysql2'
import pg from 'pg'
import {
  createKyselyStorage,
  createPGliteDialect,
  type KyselyStorage,
  type KyselyStorageOptions,
  migrateSsoflow,
  rollbackSsoflow,
} from '../../src/kysely/index.js'
import type { SqlDialect } from '../../src/kysely/schema.js'
import type { Clock } from '../../src/ports/clock.js'
import type { ContractStorage, HostSeedData } from '../../src/testing/index.js'

// biome-ignore lint/suspicious/noExplicitAny: test databases have dynamic tables
export type AnyKysely = Kysely<any>

/** One opened test database. */
export interface TestDatabase {
  readonly kind: 'pglite' | 'sqlite' | 'postgres' | 'mysql'
  readonly dialect: SqlDialect
  readonly db: AnyKysely
  /** Opens a second Kysely on the same database, with a different dialect wrapper (counting, faults). */
  reopen(wrap: (dialect: Dialect) => Dialect): AnyKysely
  /** Drops what this fixture created and closes its connections. */
  close(): Promise<void>
}

export const DATABASE_URL = process.env.DATABASE_URL ?? ''
export const MYSQL_URL = process.env.MYSQL_URL ?? ''

/** A unique lowercase name for schemas, databases and table prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`
}

/** Prints why a server suite is skipped (the one allowed skip: CI sets the URLs). */
export function reportSkip(name: string, variable: string): void {
  console.warn(`[ssoflow] ${name} tests SKIPPED: ${variable} is not set (CI sets it; e.g. ${variable}=${exampleUrl(variable)})`)
}

function exampleUrl(variable: string): string {
  return variable === 'DATABASE_URL' ? 'postgres://postgres@127.0.0.1:5432/test' : 'mysql://root@127.0.0.1:3306/test'
}

export async function openPGlite(): Promise<TestDatabase> {
  const pglite = new PGlite()
  // PGlite instantiates its WASM on the first query (seconds under load): do it here, in the
  // hook that opens the database, not in the first test.
  await pglite.query('select 1')
  const make = (wrap: (d: Dialect) => Dialect) => new Kysely({ dialect: wrap(createPGliteDialect(pglite)) })
  const db = make((d) => d)
  return {
    kind: 'pglite',
    dialect: 'postgres',
    db,
    reopen: make,
    async close() {
      await db.destroy()
      await pglite.close()
    },
  }
}

export async function openSqlite(): Promise<TestDatabase> {
  const database = new Database(':memory:')
  const make = (wrap: (d: Dialect) => Dialect) => new Kysely({ dialect: wrap(new SqliteDialect({ database })) })
  const db = make((d) => d)
  return {
    kind: 'sqlite',
    dialect: 'sqlite',
    db,
    reopen: make,
    async close() {
      await db.destroy()
    },
  }
}

/** A fresh schema on the DATABASE_URL server; `close()` drops it. */
export async function openPostgres(options: { max?: number; applicationName?: string } = {}): Promise<TestDatabase> {
  const schema = uniqueName('ssoflow_t_')
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  const pools: pg.Pool[] = []
  const make = (wrap: (d: Dialect) => Dialect) => {
    const pool = new pg.Pool({
      connectionString: DATABASE_URL,
      max: options.max ?? 10,
      options: `-c search_path=${schema}`,
      application_name: options.applicationName ?? schema,
    })
    // A terminated backend (fault tests) must not crash the run: errors reach the query instead.
    pool.on('error', () => {})
    pool.on('connect', (client) => client.on('error', () => {}))
    pools.push(pool)
    return new Kysely({ dialect: wrap(new PostgresDialect({ pool })) })
  }
  const db = make((d) => d)
  return {
    kind: 'postgres',
    dialect: 'postgres',
    db,
    reopen: make,
    async close() {
      await db.destroy().catch(() => {})
      for (const pool of pools) await pool.end().catch(() => {})
      await admin.query(`drop schema if exists ${schema} cascade`)
      await admin.end()
    },
  }
}

/** A fresh database on the MYSQL_URL server; `close()` drops it. */
export async function openMysql(options: { connectionLimit?: number } = {}): Promise<TestDatabase> {
  const database = uniqueName('ssoflow_t_')
  const url = new URL(MYSQL_URL)
  const adminPool = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
  await adminPool.promise().query(`create database ${database} character set utf8mb4`)
  url.pathname = `/${database}`
  const pools: ReturnType<typeof createPool>[] = []
  const make = (wrap: (d: Dialect) => Dialect) => {
    const pool = createPool({ uri: url.toString(), connectionLimit: options.connectionLimit ?? 10 })
    pools.push(pool)
    return new Kysely({ dialect: wrap(new MysqlDialect({ pool })) })
  }
  const db = make((d) => d)
  return {
    kind: 'mysql',
    dialect: 'mysql',
    db,
    reopen: make,
    async close() {
      await db.destroy().catch(() => {})
      for (const pool of pools)
        await pool
          .promise()
          .end()
          .catch(() => {})
      await adminPool.promise().query(`drop database if exists ${database}`)
      await adminPool.promise().end()
    },
  }
}

export type Opener = () => Promise<TestDatabase>

/** `SSOFLOW_TEST_MEMORY_ONLY=1` (the mutation runs, `vitest.stryker.config.ts`): no SQL backend. */
const MEMORY_ONLY = process.env.SSOFLOW_TEST_MEMORY_ONLY === '1'

/** The databases to test: embedded always, servers when their URL is set. */
export const DATABASES: readonly { readonly name: string; readonly open: Opener; readonly enabled: boolean; readonly variable?: string }[] =
  [
    { name: 'pglite', open: openPGlite, enabled: !MEMORY_ONLY },
    { name: 'sqlite', open: openSqlite, enabled: !MEMORY_ONLY },
    { name: 'postgres', open: () => openPostgres(), enabled: DATABASE_URL !== '', variable: 'DATABASE_URL' },
    { name: 'mysql', open: () => openMysql(), enabled: MYSQL_URL !== '', variable: 'MYSQL_URL' },
  ]

/**
 * Migrates a fresh set of tables (unique prefix) in `database` and returns a storage on them,
 * with the contract suite's `seedHostData` hook. `drop()` reverts the migration.
 */
export async function freshStorage(
  database: TestDatabase,
  options: { clock?: Clock; prefix?: string; extra?: Partial<KyselyStorageOptions>; db?: AnyKysely } = {},
): Promise<{ storage: KyselyStorage & ContractStorage; prefix: string; drop(): Promise<void> }> {
  const prefix = options.prefix ?? uniqueName('t')
  const naming = { dialect: database.dialect, tablePrefix: `${prefix}_`, ...options.extra }
  await migrateSsoflow(database.db, naming)
  const storage = createKyselyStorage(options.db ?? database.db, { ...naming, clock: options.clock })
  const contract = Object.assign(storage, {
    seedHostData: (data: HostSeedData) => storage.seed({ organizations: data.organizations, userEmails: data.userEmails }),
  })
  return {
    storage: contract,
    prefix,
    async drop() {
      await rollbackSsoflow(database.db, naming)
      for (const table of [`${prefix}_migrations`]) {
        await database.db.schema.dropTable(table).ifExists().execute()
      }
    },
  }
}

/** Runs raw SQL (test setup only). */
export async function rawExec(db: AnyKysely, text: string): Promise<void> {
  await sql.raw(text).execute(db)
}

/** What a dialect wrapper sees of each statement. */
export interface StatementHook {
  /** Called before each statement (BEGIN/COMMIT/ROLLBACK included); throw to simulate a fault. */
  before(sqlText: string): void
}

/**
 * Wraps a dialect so that every statement sent on a connection (including the driver's own
 * BEGIN / COMMIT / ROLLBACK) goes through `hook.before` first: counting round trips, or
 * failing a chosen statement like a dropped connection would.
 */
export function hookDialect(inner: Dialect, hook: StatementHook): Dialect {
  return {
    createAdapter: () => inner.createAdapter(),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createDriver: () => {
      const driver = inner.createDriver()
      const innerOf = new WeakMap<object, DatabaseConnection>()
      const wrap = (conn: DatabaseConnection): DatabaseConnection => {
        const proxy = new Proxy(conn, {
          get(target, prop) {
            if (prop === 'executeQuery') {
              return (compiled: CompiledQuery) => {
                hook.before(compiled.sql)
                return target.executeQuery(compiled)
              }
            }
            const value = Reflect.get(target, prop, target)
            return typeof value === 'function' ? value.bind(target) : value
          },
        })
        innerOf.set(proxy, conn)
        return proxy
      }
      const unwrap = (conn: DatabaseConnection): DatabaseConnection => innerOf.get(conn) ?? conn
      const wrapped: Driver = {
        init: () => driver.init(),
        acquireConnection: async () => wrap(await driver.acquireConnection()),
        beginTransaction: (c, s) => driver.beginTransaction(c, s),
        commitTransaction: (c) => driver.commitTransaction(c),
        rollbackTransaction: (c) => driver.rollbackTransaction(c),
        releaseConnection: (c) => driver.releaseConnection(unwrap(c)),
        destroy: () => driver.destroy(),
      }
      if (driver.savepoint) wrapped.savepoint = driver.savepoint.bind(driver)
      if (driver.rollbackToSavepoint) wrapped.rollbackToSavepoint = driver.rollbackToSavepoint.bind(driver)
      if (driver.releaseSavepoint) wrapped.releaseSavepoint = driver.releaseSavepoint.bind(driver)
      return wrapped
    },
  }
}

/** A statement log: `hookDialect(d, counter)`; `take()` returns and clears the statements seen. */
export function statementCounter(): StatementHook & { readonly statements: string[]; take(): string[] } {
  const statements: string[] = []
  return {
    statements,
    before(sqlText) {
      statements.push(sqlText)
    },
    take() {
      return statements.splice(0, statements.length)
    },
  }
}

/**
 * Names of the tables whose name starts with `prefix`, from the catalog of the database's own
 * schema (no Kysely introspection: on PostgreSQL it scans every schema and fails when another
 * test drops a table at the same moment).
 */
export async function listTables(database: TestDatabase, prefix: string): Promise<string[]> {
  const like = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
  const query =
    database.dialect === 'sqlite'
      ? sql<{ name: string }>`select name from sqlite_master where type = 'table' and name like ${like} escape '\\'`
      : database.dialect === 'postgres'
        ? sql<{
            name: string
          }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_name like ${like} escape '\\'`
        : sql<{
            name: string
          }>`select table_name as name from information_schema.tables where table_schema = database() and table_name like ${like} escape '\\\\'`
  const { rows } = await query.execute(database.db)
  return rows.map((r) => String(r.name)).sort()
}
