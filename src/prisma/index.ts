/**
 * `ssoflow/prisma`: the storage port over a Prisma 7 client (driver adapters, no query engine)
 * for PostgreSQL, MySQL/MariaDB and SQLite. ssoflow's tables ship as Prisma models
 * (`ssoflow/prisma/ssoflow.<provider>.prisma`) to merge into the host's schema and migrate with
 * `prisma migrate`.
 *
 * @module ssoflow/prisma
 */
export {
  createPrismaDialect,
  type PrismaClientLike,
  type PrismaDialectOptions,
  type PrismaIsolationLevel,
  type PrismaTransactionLike,
} from './dialect.js'
export { createPrismaStorage, type PrismaStorage, type PrismaStorageOptions } from './storage.js'
