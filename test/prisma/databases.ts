/**
 * Prisma 7 clients for the tests, generated from ssoflow's schema files (test/prisma/generate.ts)
 * and constructed with a driver adapter: SQLite (`@prisma/adapter-better-sqlite3`, in memory)
 * always, PostgreSQL (`@prisma/adapter-pg`, a fresh schema on DATABASE_URL) and MySQL/MariaDB
 * (`@prisma/adapter-mariadb`, a fresh database on MYSQL_URL) when set. Each storage gets its own
 * migrated tables (unique prefix), dropped afterwards.
 */
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { PrismaMariaDb } from '@prisma/adapter-mariadb'
import { PrismaPg } from '@prisma/adapter-pg'
import { createPool } from 'mysql2'
import pg from 'pg'
import { migrateSsoflow, rollbackSsoflow, type SqlDialect } from '../../src/kysely/index.js'
import type { Clock } from '../../src/ports/clock.js'
import { createPrismaStorage, type PrismaClientLike, type PrismaStorage, type PrismaStorageOptions } from '../../src/prisma/index.js'
import type { ContractStorage, HostSeedData } from '../../src/testing/index.js'
import { DATABASE_URL, MYSQL_URL, uniqueName } from '../helpers/databases.js'
import { ensurePrismaClient, type PrismaProvider } from './generate.js'

/** A generated client, as the tests use it (the generated types are not part of the typecheck). */
export type TestPrismaClient = PrismaClientLike & { $disconnect(): Promise<void> } & Record<string, unknown>

/** One opened database and a Prisma client on it. */
export interface PrismaTestDatabase {
  readonly name: string
  readonly dialect: SqlDialect
  readonly client: TestPrismaClient
  close(): Promise<void>
}

async function loadClient(provider: PrismaProvider): Promise<new (options: { adapter: unknown }) => TestPrismaClient> {
  const module = (await import(await ensurePrismaClient(provider))) as {
    PrismaClient: new (options: { adapter: unknown }) => TestPrismaClient
  }
  return module.PrismaClient
}

async function openSqlite(): Promise<PrismaTestDatabase> {
  const PrismaClient = await loadClient('sqlite')
  const client = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: ':memory:' }) })
  return { name: 'sqlite', dialect: 'sqlite', client, close: () => client.$disconnect() }
}

async function openPostgres(): Promise<PrismaTestDatabase> {
  const PrismaClient = await loadClient('postgresql')
  const schema = uniqueName('ssoflow_p_')
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  const client = new PrismaClient({
    adapter: new PrismaPg({ connectionString: DATABASE_URL, options: `-c search_path=${schema}`, max: 10 }, { schema }),
  })
  return {
    name: 'postgres',
    dialect: 'postgres',
    client,
    async close() {
      await client.$disconnect()
      await admin.query(`drop schema if exists ${schema} cascade`)
      await admin.end()
    },
  }
}

async function openMysql(): Promise<PrismaTestDatabase> {
  const PrismaClient = await loadClient('mysql')
  const database = uniqueName('ssoflow_p_')
  const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
  await admin.promise().query(`create database ${database} character set utf8mb4`)
  const url = new URL(MYSQL_URL)
  url.pathname = `/${database}`
  const client = new PrismaClient({
    adapter: new PrismaMariaDb({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database,
      connectionLimit: 10,
    }),
  })
  return {
    name: 'mysql',
    dialect: 'mysql',
    client,
    async close() {
      await client.$disconnect()
      await admin.promise().query(`drop database if exists ${database}`)
      await admin.promise().end()
    },
  }
}

/** The databases to test: SQLite always, servers when their URL is set. */
export const PRISMA_DATABASES: readonly {
  readonly name: string
  readonly open: () => Promise<PrismaTestDatabase>
  readonly enabled: boolean
  readonly variable?: string
}[] = [
  { name: 'sqlite', open: openSqlite, enabled: true },
  { name: 'postgres', open: openPostgres, enabled: DATABASE_URL !== '', variable: 'DATABASE_URL' },
  { name: 'mysql', open: openMysql, enabled: MYSQL_URL !== '', variable: 'MYSQL_URL' },
]

/**
 * Migrates a fresh set of tables (unique prefix) through the Prisma client and returns a storage
 * on them, with the contract suite's `seedHostData` hook. `drop()` reverts the migration.
 */
export async function freshPrismaStorage(
  database: PrismaTestDatabase,
  options: { clock?: Clock; extra?: Partial<PrismaStorageOptions> } = {},
): Promise<{ storage: PrismaStorage & ContractStorage; prefix: string; drop(): Promise<void> }> {
  const prefix = uniqueName('t')
  const naming = { dialect: database.dialect, tablePrefix: `${prefix}_`, ...options.extra }
  const storage = createPrismaStorage(database.client, { ...naming, clock: options.clock })
  await migrateSsoflow(storage.kysely, naming)
  const contract = Object.assign(storage, {
    seedHostData: (data: HostSeedData) => storage.seed({ organizations: data.organizations, userEmails: data.userEmails }),
  })
  return {
    storage: contract,
    prefix,
    async drop() {
      await rollbackSsoflow(storage.kysely, naming)
      await storage.kysely.schema.dropTable(`${prefix}_migrations`).ifExists().execute()
    },
  }
}
