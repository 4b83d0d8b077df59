/**
 * `ssoflow/drizzle`: the storage port over Drizzle ORM for PostgreSQL (node-postgres, PGlite),
 * SQLite (better-sqlite3) and MySQL/MariaDB (mysql2), with ssoflow's tables as Drizzle table
 * definitions for drizzle-kit and a mapping onto the host's own users, organizations and
 * memberships tables (a field may be an SQL expression), and the outbox of background work.
 *
 * @module ssoflow/drizzle
 */
export {
  createDrizzleStorage,
  type DrizzleDatabaseLike,
  type DrizzleDialect,
  type DrizzleHostTable,
  type DrizzleMemberField,
  type DrizzleMemberSideField,
  type DrizzleMemberTable,
  type DrizzleOrganizationField,
  type DrizzleStorage,
  type DrizzleStorageOptions,
  type DrizzleUserField,
} from './storage.js'
export {
  ssoflowMysqlMemberFlags,
  ssoflowMysqlTables,
  ssoflowPgMemberFlags,
  ssoflowPgTables,
  ssoflowSqliteMemberFlags,
  ssoflowSqliteTables,
} from './tables.js'
