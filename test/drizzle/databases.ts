/**
 * Drizzle databases for the tests, on the same servers as the Kysely tests: PGlite and SQLite
 * always, PostgreSQL (DATABASE_URL) and MySQL/MariaDB (MYSQL_URL) when set. ssoflow's tables are
 * created from `ssoflowSchemaSql` (the DDL `ssoflow/kysely` migrates), with a unique prefix.
 */
import { PGlite } from '@electric-sql/pglite'
import Database from 'better-sqlite3'
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3'
import { drizzle as drizzleMysql } from 'drizzle-orm/mysql2'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { createPool } from 'mysql2'
import pg from 'pg'
import { createDrizzleStorage, type DrizzleDialect, type DrizzleStorage, type DrizzleStorageOptions } from '../../src/drizzle/index.js'
import { type KyselySchemaOptions, ssoflowSchemaSql } from '../../src/kysely/index.js'
import { DATABASE_URL, MYSQL_URL, uniqueName } from '../helpers/databases.js'

/** One opened database with a Drizzle instance and a raw statement runner. */
export interface DrizzleTestDatabase {
  readonly name: string
  readonly dialect: DrizzleDialect
  // biome-ignore lint/suspicious/noExplicitAny: one of the dialects' databases
  readonly db: any
  exec(text: string): Promise<void>
  close(): Promise<void>
}

async function openPglite(): Promise<DrizzleTestDatabase> {
  const client = new PGlite()
  await client.query('select 1')
  return {
    name: 'pglite',
    dialect: 'postgres',
    db: drizzlePglite(client),
    exec: async (text) => {
      await client.exec(text)
    },
    close: () => client.close(),
  }
}

async function openSqlite(): Promise<DrizzleTestDatabase> {
  const client = new Database(':memory:')
  return {
    name: 'sqlite',
    dialect: 'sqlite',
    db: drizzleSqlite(client),
    exec: async (text) => {
      client.exec(text)
    },
    close: async () => {
      client.close()
    },
  }
}

async function openPostgres(): Promise<DrizzleTestDatabase> {
  const schema = uniqueName('ssoflow_d_')
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  const pool = new pg.Pool({ connectionString: DATABASE_URL, options: `-c search_path=${schema}`, max: 10 })
  return {
    name: 'postgres',
    dialect: 'postgres',
    db: drizzlePg(pool),
    exec: async (text) => {
      await pool.query(text)
    },
    async close() {
      await pool.end()
      await admin.query(`drop schema if exists ${schema} cascade`)
      await admin.end()
    },
  }
}

async function openMysql(): Promise<DrizzleTestDatabase> {
  const database = uniqueName('ssoflow_d_')
  const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
  await admin.promise().query(`create database ${database} character set utf8mb4`)
  const url = new URL(MYSQL_URL)
  url.pathname = `/${database}`
  const pool = createPool({ uri: url.toString(), connectionLimit: 10, multipleStatements: true })
  return {
    name: 'mysql',
    dialect: 'mysql',
    db: drizzleMysql(pool),
    exec: async (text) => {
      await pool.promise().query(text)
    },
    async close() {
      await pool.promise().end()
      await admin.promise().query(`drop database if exists ${database}`)
      await admin.promise().end()
    },
  }
}

export const DRIZZLE_DATABASES: readonly { name: string; open: () => Promise<DrizzleTestDatabase>; enabled: boolean; variable?: string }[] =
  [
    { name: 'pglite', open: openPglite, enabled: true },
    { name: 'sqlite', open: openSqlite, enabled: true },
    { name: 'postgres', open: openPostgres, enabled: DATABASE_URL !== '', variable: 'DATABASE_URL' },
    { name: 'mysql', open: openMysql, enabled: MYSQL_URL !== '', variable: 'MYSQL_URL' },
  ]

/** Creates ssoflow's tables with a fresh prefix and returns a storage on them. */
export async function freshDrizzleStorage(
  database: DrizzleTestDatabase,
  extra: Partial<DrizzleStorageOptions> = {},
  /** The same mapping for the DDL (host tables are not created; a side table is, when asked). */
  schemaTables?: KyselySchemaOptions['tables'],
  /** The table prefix, when the caller made host tables with it. */
  tablePrefix?: string,
): Promise<{ storage: DrizzleStorage; prefix: string; drop(): Promise<void> }> {
  const prefix = tablePrefix ?? `${uniqueName('d')}_`
  const mysqlFlavor = database.dialect === 'mysql' ? await mysqlFlavorOf(database) : undefined
  const statements = await ssoflowSchemaSql({ dialect: database.dialect, tablePrefix: prefix, mysqlFlavor, tables: schemaTables })
  for (const statement of statements) await database.exec(statement)
  const storage = createDrizzleStorage(database.db, { dialect: database.dialect, tablePrefix: prefix, ...extra })
  const tables = [
    'users',
    'organizations',
    'user_emails',
    'auth_providers',
    'auth_identities',
    'members',
    'audit_log',
    'pipeline_states',
    'one_time_tokens',
    'pending_work',
    'member_flags',
  ]
  return {
    storage,
    prefix,
    async drop() {
      for (const t of tables) await database.exec(`drop table if exists ${prefix}${t}`)
    },
  }
}

export async function mysqlFlavorOf(database: DrizzleTestDatabase): Promise<'mysql' | 'mariadb'> {
  const [rows] = (await database.db.execute('select version() as v')) as [{ v: string }[]]
  return /mariadb/i.test(String(rows[0]?.v)) ? 'mariadb' : 'mysql'
}
