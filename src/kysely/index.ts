/**
 * `ssoflow/kysely`: the storage port on Kysely 0.28 for PostgreSQL (pg), PGlite, SQLite
 * (better-sqlite3) and MySQL/MariaDB (mysql2), with prefix-aware migrations and a mapping layer
 * onto host-owned users, organizations and memberships tables.
 *
 * @module ssoflow/kysely
 */
export {
  type AddressVerified,
  type BackfillUserEmailsOptions,
  type BackfillUserEmailsResult,
  backfillUserEmails,
  syncUserEmail,
} from './emails.js'
export {
  migrateSsoflow,
  rollbackSsoflow,
  type SchemaSqlOptions,
  type SsoflowMigrationResult,
  ssoflowMigrations,
  ssoflowSchemaSql,
} from './migrations.js'
export { createPGliteDialect, type PGliteLike } from './pglite.js'
export type {
  HostTableMapping,
  KyselySchemaOptions,
  MemberColumn,
  MemberReadOnlyField,
  MemberSideField,
  MemberTableMapping,
  OrganizationColumn,
  SqlDialect,
  UserColumn,
} from './schema.js'
export {
  createKyselyStorage,
  type KyselySeedData,
  type KyselySnapshot,
  type KyselyStorage,
  type KyselyStorageOptions,
} from './storage.js'
