/**
 * Schema migrations for the Kysely adapter (up and down, table-prefix aware).
 *
 * Column types per dialect:
 *
 * | logical | PostgreSQL / PGlite | SQLite | MySQL / MariaDB |
 * | --- | --- | --- | --- |
 * | ids, short strings | `varchar(n) collate "C"` | `varchar(n)` (binary) | `varchar(n)`, `utf8mb4` no-pad binary collation |
 * | dates | `bigint` UTC ms | `integer` UTC ms | `bigint` UTC ms |
 * | booleans | `boolean` | `integer` 0/1 | `boolean` (tinyint) |
 * | JSON | `text` | `text` | `mediumtext` |
 *
 * Binary, no-pad collations make `ident` and every id compare exactly (case and trailing
 * spaces included), as the memory adapter does. JSON is stored as text, not `jsonb`, so data
 * round-trips exactly (`jsonb` rejects `\u0000` and reorders keys).
 *
 * @module
 */
import {
  type CompiledQuery,
  type CreateIndexBuilder,
  type DatabaseConnection,
  type Driver,
  type Expression,
  Kysely,
  type Migration,
  MysqlAdapter,
  MysqlIntrospector,
  MysqlQueryCompiler,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type RawBuilder,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely'
import { COLUMN_LIMITS } from '../model/limits.js'
import { type KyselySchemaOptions, type ResolvedSchema, resolveSchema } from './schema.js'

// biome-ignore lint/suspicious/noExplicitAny: migrations work on any host database type
type AnyDb = Kysely<any>

interface Types {
  str(length: number): RawBuilder<unknown>
  bool: RawBuilder<unknown>
  ms: RawBuilder<unknown>
  int: RawBuilder<unknown>
  text: RawBuilder<unknown>
  tableEnd: Expression<unknown> | null
}

async function typesFor(db: AnyDb, schema: ResolvedSchema): Promise<Types> {
  switch (schema.dialect) {
    case 'postgres':
      return {
        str: (n) => sql.raw(`varchar(${n}) collate "C"`),
        bool: sql.raw('boolean'),
        ms: sql.raw('bigint'),
        int: sql.raw('integer'),
        text: sql.raw('text'),
        tableEnd: null,
      }
    case 'sqlite':
      return {
        str: (n) => sql.raw(`varchar(${n})`),
        bool: sql.raw('integer'),
        ms: sql.raw('integer'),
        int: sql.raw('integer'),
        text: sql.raw('text'),
        tableEnd: null,
      }
    case 'mysql': {
      const { rows } = await sql<{ v: string }>`select version() as v`.execute(db)
      const collation = String(rows[0]?.v ?? '').includes('MariaDB') ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin'
      return {
        str: (n) => sql.raw(`varchar(${n})`),
        bool: sql.raw('boolean'),
        ms: sql.raw('bigint'),
        int: sql.raw('integer'),
        text: sql.raw('mediumtext'),
        tableEnd: sql.raw(`engine=InnoDB default character set utf8mb4 collate ${collation}`),
      }
    }
  }
}

/**
 * Creates an index unless it exists: `create index if not exists` on PostgreSQL and SQLite; on
 * MySQL (which has no `if not exists` for indexes; MariaDB has, MySQL 8 has not) a catalog check
 * first, unless `catalog` is false (plain SQL output, nothing executed).
 */
async function createIndexOnce(
  db: AnyDb,
  s: ResolvedSchema,
  catalog: boolean,
  name: string,
  table: string,
  build: (b: CreateIndexBuilder) => { execute(): Promise<void> },
): Promise<void> {
  if (s.dialect !== 'mysql') {
    await build(db.schema.createIndex(name).ifNotExists().on(table)).execute()
    return
  }
  if (catalog) {
    const { rows } = await sql<{ n: unknown }>`select count(*) as n from information_schema.statistics
      where table_schema = database() and table_name = ${table} and index_name = ${name}`.execute(db)
    if (Number(rows[0]?.n) > 0) return
  }
  await build(db.schema.createIndex(name).on(table)).execute()
}

async function up(db: AnyDb, s: ResolvedSchema, options: { readonly catalog: boolean } = { catalog: true }): Promise<void> {
  const t = await typesFor(db, s)
  const index = (name: string, table: string, build: (b: CreateIndexBuilder) => { execute(): Promise<void> }) =>
    createIndexOnce(db, s, options.catalog, name, table, build)
  const end = <B extends { modifyEnd(e: Expression<unknown>): B }>(b: B): B => (t.tableEnd ? b.modifyEnd(t.tableEnd) : b)
  const i = s.index
  const w = COLUMN_LIMITS

  if (!s.organizations.hostOwned) {
    await end(
      db.schema
        .createTable(s.organizations.table)
        .ifNotExists()
        .addColumn('id', t.str(w.organizations.id), (c) => c.notNull())
        .addColumn('slug', t.str(w.organizations.slug), (c) => c.notNull())
        .addColumn('name', t.str(w.organizations.name), (c) => c.notNull())
        .addColumn('default_role', t.str(w.organizations.default_role), (c) => c.notNull())
        .addColumn('require_2fa', t.bool, (c) => c.notNull())
        .addPrimaryKeyConstraint(i.organizationsPk, ['id']),
    ).execute()
  }
  if (!s.users.hostOwned) {
    await end(
      db.schema
        .createTable(s.users.table)
        .ifNotExists()
        .addColumn('id', t.str(w.users.id), (c) => c.notNull())
        .addColumn('username', t.str(w.users.username), (c) => c.notNull())
        .addColumn('email', t.str(w.users.email), (c) => c.notNull())
        .addColumn('name', t.str(w.users.name), (c) => c.notNull())
        .addColumn('is_active', t.bool, (c) => c.notNull())
        .addColumn('is_suspended', t.bool, (c) => c.notNull())
        .addColumn('has_usable_password', t.bool, (c) => c.notNull())
        .addColumn('has_2fa', t.bool, (c) => c.notNull())
        .addColumn('created_at', t.ms, (c) => c.notNull())
        .addPrimaryKeyConstraint(i.usersPk, ['id']),
    ).execute()
    await index(i.usersUsername, s.users.table, (b) => b.columns(['username']).unique())
  }
  await end(
    db.schema
      .createTable(s.userEmails)
      .ifNotExists()
      .addColumn('user_id', t.str(w.user_emails.user_id), (c) => c.notNull())
      .addColumn('email', t.str(w.user_emails.email), (c) => c.notNull())
      .addColumn('email_normalized', t.str(w.user_emails.email_normalized), (c) => c.notNull())
      .addColumn('is_verified', t.bool, (c) => c.notNull())
      .addColumn('is_primary', t.bool, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.userEmailsPk, ['user_id', 'email_normalized']),
  ).execute()
  await index(i.userEmailsEmail, s.userEmails, (b) => b.columns(['email_normalized']))

  await end(
    db.schema
      .createTable(s.authProviders)
      .ifNotExists()
      .addColumn('id', t.str(w.auth_providers.id), (c) => c.notNull())
      .addColumn('organization_id', t.str(w.auth_providers.organization_id), (c) => c.notNull())
      .addColumn('provider_key', t.str(w.auth_providers.provider_key), (c) => c.notNull())
      .addColumn('config', t.text, (c) => c.notNull())
      .addColumn('allow_unlinked', t.bool, (c) => c.notNull())
      .addColumn('scim_enabled', t.bool, (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.authProvidersPk, ['id']),
  ).execute()
  await index(i.authProvidersOrg, s.authProviders, (b) => b.columns(['organization_id']).unique())

  await end(
    db.schema
      .createTable(s.authIdentities)
      .ifNotExists()
      .addColumn('id', t.str(w.auth_identities.id), (c) => c.notNull())
      .addColumn('auth_provider_id', t.str(w.auth_identities.auth_provider_id), (c) => c.notNull())
      .addColumn('user_id', t.str(w.auth_identities.user_id), (c) => c.notNull())
      .addColumn('ident', t.str(w.auth_identities.ident), (c) => c.notNull())
      .addColumn('data', t.text, (c) => c.notNull())
      .addColumn('last_verified', t.ms, (c) => c.notNull())
      .addColumn('last_synced', t.ms, (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.authIdentitiesPk, ['id']),
  ).execute()
  await index(i.authIdentitiesIdent, s.authIdentities, (b) => b.columns(['auth_provider_id', 'ident']).unique())
  await index(i.authIdentitiesUser, s.authIdentities, (b) => b.columns(['auth_provider_id', 'user_id']).unique())
  await index(i.authIdentitiesUserId, s.authIdentities, (b) => b.columns(['user_id']))

  // A host-owned memberships table (tables.members) is the host's: not created here.
  if (!s.member.hostOwned) {
    await end(
      db.schema
        .createTable(s.members)
        .ifNotExists()
        .addColumn('id', t.str(w.members.id), (c) => c.notNull())
        .addColumn('organization_id', t.str(w.members.organization_id), (c) => c.notNull())
        .addColumn('user_id', t.str(w.members.user_id))
        .addColumn('email', t.str(w.members.email))
        .addColumn('email_normalized', t.str(w.members.email_normalized))
        .addColumn('role', t.str(w.members.role), (c) => c.notNull())
        .addColumn('flag_sso_linked', t.bool, (c) => c.notNull())
        .addColumn('flag_sso_invalid', t.bool, (c) => c.notNull())
        .addColumn('flag_member_limit_restricted', t.bool, (c) => c.notNull())
        .addColumn('flag_idp_provisioned', t.bool, (c) => c.notNull())
        .addColumn('flag_idp_role_restricted', t.bool, (c) => c.notNull())
        .addColumn('invite_token_hash', t.str(w.members.invite_token_hash))
        .addColumn('invite_expires_at', t.ms)
        .addColumn('invite_status', t.str(w.members.invite_status), (c) => c.notNull())
        .addColumn('created_at', t.ms, (c) => c.notNull())
        .addPrimaryKeyConstraint(i.membersPk, ['id']),
    ).execute()
    await index(i.membersOrgUser, s.members, (b) => b.columns(['organization_id', 'user_id']).unique())
    await index(i.membersOrgEmail, s.members, (b) => b.columns(['organization_id', 'email_normalized']).unique())
    await index(i.membersToken, s.members, (b) => b.columns(['invite_token_hash']).unique())
    await index(i.membersUser, s.members, (b) => b.columns(['user_id']))
  }

  await end(
    db.schema
      .createTable(s.auditLog)
      .ifNotExists()
      .addColumn('id', t.str(w.audit_log.id), (c) => c.notNull())
      .addColumn('event', t.str(w.audit_log.event), (c) => c.notNull())
      .addColumn('actor_user_id', t.str(w.audit_log.actor_user_id))
      .addColumn('organization_id', t.str(w.audit_log.organization_id), (c) => c.notNull())
      .addColumn('target_id', t.str(w.audit_log.target_id))
      .addColumn('target_user_id', t.str(w.audit_log.target_user_id))
      .addColumn('ip', t.str(w.audit_log.ip))
      .addColumn('data', t.text, (c) => c.notNull())
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.auditPk, ['id']),
  ).execute()
  await index(i.auditOrg, s.auditLog, (b) => b.columns(['organization_id', 'created_at']))

  await end(
    db.schema
      .createTable(s.pipelineStates)
      .ifNotExists()
      .addColumn('id', t.str(w.pipeline_states.id), (c) => c.notNull())
      .addColumn('version', t.int, (c) => c.notNull())
      .addColumn('body', t.text, (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.pipelineStatesPk, ['id']),
  ).execute()
  await index(i.pipelineStatesExpires, s.pipelineStates, (b) => b.columns(['expires_at']))

  await end(
    db.schema
      .createTable(s.oneTimeTokens)
      .ifNotExists()
      .addColumn('hash', t.str(w.one_time_tokens.hash), (c) => c.notNull())
      .addColumn('purpose', t.str(w.one_time_tokens.purpose), (c) => c.notNull())
      .addColumn('payload', t.text, (c) => c.notNull())
      .addColumn('expires_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.oneTimeTokensPk, ['hash']),
  ).execute()
  await index(i.oneTimeTokensExpires, s.oneTimeTokens, (b) => b.columns(['expires_at']))
}

/**
 * Step 2 (issue 16): the outbox of background work (`<prefix>pending_work`), and an index on
 * members (organization_id, id) for the drain's keyset pages (`where organization_id = ? and
 * id > ? order by id limit n` walks the index instead of sorting the whole org per page).
 * Idempotent like step 1: a run cut half-way completes on the next boot.
 */
async function upPendingWork(db: AnyDb, s: ResolvedSchema, options: { readonly catalog: boolean } = { catalog: true }): Promise<void> {
  const t = await typesFor(db, s)
  const end = <B extends { modifyEnd(e: Expression<unknown>): B }>(b: B): B => (t.tableEnd ? b.modifyEnd(t.tableEnd) : b)
  const i = s.index
  const w = COLUMN_LIMITS.pending_work
  await end(
    db.schema
      .createTable(s.pendingWork)
      .ifNotExists()
      .addColumn('id', t.str(w.id), (c) => c.notNull())
      .addColumn('kind', t.str(w.kind), (c) => c.notNull())
      .addColumn('organization_id', t.str(w.organization_id), (c) => c.notNull())
      .addColumn('work_key', t.str(w.work_key), (c) => c.notNull())
      .addColumn('payload', t.text, (c) => c.notNull())
      .addColumn('after_id', t.str(w.after_id))
      .addColumn('attempts', t.int, (c) => c.notNull())
      .addColumn('available_at', t.ms, (c) => c.notNull())
      .addColumn('claim_token', t.str(w.claim_token))
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.pendingWorkPk, ['id']),
  ).execute()
  await createIndexOnce(db, s, options.catalog, i.pendingWorkKey, s.pendingWork, (b) => b.columns(['work_key']).unique())
  await createIndexOnce(db, s, options.catalog, i.pendingWorkAvailable, s.pendingWork, (b) => b.columns(['available_at', 'id']))
  // (On a host-owned memberships table, the host keeps its own (organization, id) index.)
  if (!s.member.hostOwned) {
    await createIndexOnce(db, s, options.catalog, i.membersOrgId, s.members, (b) => b.columns(['organization_id', 'id']))
  }
}

async function downPendingWork(db: AnyDb, s: ResolvedSchema): Promise<void> {
  await db.schema.dropTable(s.pendingWork).ifExists().execute()
  if (s.member.hostOwned) return
  if (s.dialect === 'mysql') {
    const { rows } = await sql<{ n: unknown }>`select count(*) as n from information_schema.statistics
      where table_schema = database() and table_name = ${s.members} and index_name = ${s.index.membersOrgId}`.execute(db)
    if (Number(rows[0]?.n) > 0) await db.schema.dropIndex(s.index.membersOrgId).on(s.members).execute()
  } else await db.schema.dropIndex(s.index.membersOrgId).ifExists().execute()
}

/**
 * Step 3 (issue 13): the domains organizations claim (`<prefix>organization_domains`), for
 * home-realm discovery. `verified_domain` is the domain while the row is verified and NULL
 * otherwise; its unique index is "at most one organization has a domain verified" on every
 * dialect (MySQL / MariaDB have no partial indexes; NULLs never collide in a unique index).
 * Idempotent like the other steps.
 */
async function upDomains(db: AnyDb, s: ResolvedSchema, options: { readonly catalog: boolean } = { catalog: true }): Promise<void> {
  const t = await typesFor(db, s)
  const end = <B extends { modifyEnd(e: Expression<unknown>): B }>(b: B): B => (t.tableEnd ? b.modifyEnd(t.tableEnd) : b)
  const i = s.index
  const w = COLUMN_LIMITS.organization_domains
  await end(
    db.schema
      .createTable(s.organizationDomains)
      .ifNotExists()
      .addColumn('id', t.str(w.id), (c) => c.notNull())
      .addColumn('organization_id', t.str(w.organization_id), (c) => c.notNull())
      .addColumn('domain', t.str(w.domain), (c) => c.notNull())
      .addColumn('verified_domain', t.str(w.verified_domain))
      .addColumn('verification_token', t.str(w.verification_token), (c) => c.notNull())
      .addColumn('verified_at', t.ms)
      .addColumn('created_at', t.ms, (c) => c.notNull())
      .addPrimaryKeyConstraint(i.domainsPk, ['id']),
  ).execute()
  await createIndexOnce(db, s, options.catalog, i.domainsOrgDomain, s.organizationDomains, (b) =>
    b.columns(['organization_id', 'domain']).unique(),
  )
  await createIndexOnce(db, s, options.catalog, i.domainsVerified, s.organizationDomains, (b) => b.columns(['verified_domain']).unique())
}

async function downDomains(db: AnyDb, s: ResolvedSchema): Promise<void> {
  await db.schema.dropTable(s.organizationDomains).ifExists().execute()
}

async function down(db: AnyDb, s: ResolvedSchema): Promise<void> {
  const tables = [s.oneTimeTokens, s.pipelineStates, s.auditLog, s.authIdentities, s.authProviders, s.userEmails]
  if (!s.member.hostOwned) tables.push(s.members)
  if (!s.users.hostOwned) tables.push(s.users.table)
  if (!s.organizations.hostOwned) tables.push(s.organizations.table)
  for (const table of tables) await db.schema.dropTable(table).ifExists().execute()
}

/**
 * Step 4 (issue 19), only when `tables.members.sideTable` lists fields: the side table
 * `<prefix>member_flags` for the member fields the host's memberships table has no column for,
 * one row per membership keyed by its id (every field column nullable: a membership the host
 * created has no row until ssoflow writes one, and reads as flags off, no invite). Its unique
 * indexes enforce `member.organization_email` and `member.invite_token` for the fields kept
 * there. Idempotent like the other steps. (Step 3 belongs to another table.)
 */
async function upMemberFlags(db: AnyDb, s: ResolvedSchema, options: { readonly catalog: boolean } = { catalog: true }): Promise<void> {
  const t = await typesFor(db, s)
  const end = <B extends { modifyEnd(e: Expression<unknown>): B }>(b: B): B => (t.tableEnd ? b.modifyEnd(t.tableEnd) : b)
  const i = s.index
  const w = COLUMN_LIMITS.members
  await end(
    db.schema
      .createTable(s.member.sideTable)
      .ifNotExists()
      .addColumn('member_id', t.str(w.id), (c) => c.notNull())
      .addColumn('organization_id', t.str(w.organization_id), (c) => c.notNull())
      .addColumn('email', t.str(w.email))
      .addColumn('email_normalized', t.str(w.email_normalized))
      .addColumn('flag_sso_linked', t.bool)
      .addColumn('flag_sso_invalid', t.bool)
      .addColumn('flag_member_limit_restricted', t.bool)
      .addColumn('flag_idp_provisioned', t.bool)
      .addColumn('flag_idp_role_restricted', t.bool)
      .addColumn('invite_token_hash', t.str(w.invite_token_hash))
      .addColumn('invite_expires_at', t.ms)
      .addColumn('invite_status', t.str(w.invite_status))
      .addPrimaryKeyConstraint(i.memberFlagsPk, ['member_id']),
  ).execute()
  await createIndexOnce(db, s, options.catalog, i.memberFlagsOrgEmail, s.member.sideTable, (b) =>
    b.columns(['organization_id', 'email_normalized']).unique(),
  )
  await createIndexOnce(db, s, options.catalog, i.memberFlagsToken, s.member.sideTable, (b) => b.columns(['invite_token_hash']).unique())
}

/**
 * The adapter's migrations as Kysely `Migration` objects, keyed by name (sorted order is
 * apply order). Host-owned tables (`options.tables`) are not created or dropped.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator, PostgresDialect } from 'kysely'
 * import pg from 'pg'
 * import { ssoflowMigrations } from 'ssoflow/kysely'
 *
 * const db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) })
 * const migrator = new Migrator({ db, provider: { getMigrations: async () => ssoflowMigrations({ dialect: 'postgres' }) } })
 * await migrator.migrateToLatest()
 * ```
 * @group Kysely
 */
export function ssoflowMigrations(options: KyselySchemaOptions): Record<string, Migration> {
  const schema = resolveSchema(options)
  return {
    '0001_ssoflow_init': {
      up: (db: AnyDb) => up(db, schema),
      down: (db: AnyDb) => down(db, schema),
    },
    '0002_ssoflow_pending_work': {
      up: (db: AnyDb) => upPendingWork(db, schema),
      down: (db: AnyDb) => downPendingWork(db, schema),
    },
    '0003_ssoflow_domains': {
      up: (db: AnyDb) => upDomains(db, schema),
      down: (db: AnyDb) => downDomains(db, schema),
    },
    // Only when the host's memberships table keeps some fields in ssoflow's side table.
    ...(schema.member.side.size > 0
      ? {
          '0004_ssoflow_member_flags': {
            up: (db: AnyDb) => upMemberFlags(db, schema),
            down: async (db: AnyDb) => {
              await db.schema.dropTable(schema.member.sideTable).ifExists().execute()
            },
          },
        }
      : {}),
  }
}

/**
 * What {@link migrateSsoflow} / {@link rollbackSsoflow} did.
 * @group Kysely
 */
export interface SsoflowMigrationResult {
  /** Names of the migrations applied (up) or reverted (down), in order. */
  readonly executed: readonly string[]
}

/** A 63-bit lock key for the migration run of one prefix. */
function migrationLockKey(prefix: string): string {
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(`ssoflow-migrations:${prefix}`)) {
    h ^= BigInt(byte)
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return BigInt.asIntN(64, h).toString()
}

/** How long a SQLite migration waits for another process's write lock. */
const SQLITE_BUSY_TIMEOUT_MS = 30_000

/**
 * Applies or reverts the migrations under a lock, recording them in `<prefix>migrations`
 * (name, executed_at). A small runner instead of Kysely's `Migrator`, whose table-existence
 * check introspects every table of the database (on PostgreSQL it fails when another session
 * drops a table at the same moment).
 *
 * Always finishes (issue 16):
 * - the lock is taken before anything is read, and the bookkeeping table is created under it;
 * - PostgreSQL: one transaction at an explicit `read committed` level whose first statement is
 *   the advisory lock, so a waiter's later statements see what the previous holder committed
 *   whatever `default_transaction_isolation` says (at `repeatable read` the snapshot would
 *   otherwise predate the wait);
 * - SQLite: one `begin immediate` transaction (the write lock up front, never a lock upgrade
 *   that fails at once with "database is locked") with a busy timeout of at least 30 s;
 * - MySQL / MariaDB: DDL commits statement by statement, so every step is idempotent (`create
 *   table if not exists`, indexes created only when the catalog lacks them) and a run cut
 *   between two steps completes on the next boot.
 */
async function run(db: AnyDb, options: KyselySchemaOptions, direction: 'up' | 'down'): Promise<SsoflowMigrationResult> {
  const schema = resolveSchema(options)
  const table = `${schema.prefix}migrations`
  const migrations = Object.entries(ssoflowMigrations(options)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const step = async (q: AnyDb): Promise<string[]> => {
    await q.schema
      .createTable(table)
      .ifNotExists()
      .addColumn('name', sql.raw('varchar(255)'), (c) => c.notNull().primaryKey())
      .addColumn('executed_at', sql.raw(schema.dialect === 'sqlite' ? 'integer' : 'bigint'), (c) => c.notNull())
      .execute()
    const done = new Set((await q.selectFrom(table).select('name').execute()).map((r) => String((r as { name: unknown }).name)))
    const executed: string[] = []
    if (direction === 'up') {
      for (const [name, migration] of migrations) {
        if (done.has(name)) continue
        await migration.up(q)
        await q.insertInto(table).values({ name, executed_at: Date.now() }).execute()
        executed.push(name)
      }
    } else {
      for (const [name, migration] of [...migrations].reverse()) {
        if (!done.has(name)) continue
        if (!migration.down) throw new Error(`migration ${name} has no down`)
        await migration.down(q)
        await q.deleteFrom(table).where('name', '=', name).execute()
        executed.push(name)
      }
    }
    return executed
  }
  switch (schema.dialect) {
    case 'postgres':
      // Transactional DDL: all or nothing, serialized per prefix by an advisory lock taken first.
      return {
        executed: await db
          .transaction()
          .setIsolationLevel('read committed')
          .execute(async (trx) => {
            await sql`select pg_advisory_xact_lock(cast(${migrationLockKey(schema.prefix)} as bigint))`.execute(trx)
            return step(trx)
          }),
      }
    case 'sqlite':
      return {
        executed: await db.connection().execute(async (conn) => {
          const { rows } = await sql<{ timeout: number }>`pragma busy_timeout`.execute(conn)
          const previous = Number(rows[0]?.timeout ?? 0)
          if (previous < SQLITE_BUSY_TIMEOUT_MS) await sql.raw(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).execute(conn)
          try {
            await sql`begin immediate`.execute(conn)
            try {
              const executed = await step(conn)
              await sql`commit`.execute(conn)
              return executed
            } catch (error) {
              await sql`rollback`.execute(conn).catch(() => {})
              throw error
            }
          } finally {
            if (previous < SQLITE_BUSY_TIMEOUT_MS) await sql.raw(`pragma busy_timeout = ${Math.max(0, Math.floor(previous))}`).execute(conn)
          }
        }),
      }
    case 'mysql':
      // MySQL DDL commits implicitly: serialize with a session lock; every step is idempotent.
      return {
        executed: await db.connection().execute(async (conn) => {
          const name = `${schema.prefix}migrate`
          const { rows } = await sql<{ got: unknown }>`select get_lock(${name}, 60) as got`.execute(conn)
          if (Number(rows[0]?.got) !== 1) throw new Error('ssoflow: timed out waiting for the migration lock')
          try {
            return await step(conn)
          } finally {
            await sql`select release_lock(${name})`.execute(conn)
          }
        }),
      }
  }
}

/**
 * Applies every pending {@link ssoflowMigrations} migration, recording applied ones in
 * `<prefix>migrations`; concurrent runs (several app instances starting) are serialized by a
 * lock. On PostgreSQL and SQLite the run is one transaction. Throws when a migration fails.
 * (Hosts with their own Kysely `Migrator` can pass `ssoflowMigrations(options)` to it instead.)
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely'
 * import pg from 'pg'
 * import { createKyselyStorage, migrateSsoflow } from 'ssoflow/kysely'
 *
 * // At boot, before serving: safe when several instances start at once (a lock serializes them).
 * const db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) })
 * const { executed } = await migrateSsoflow(db, { dialect: 'postgres' })
 * console.log(executed) // e.g. ['0001_ssoflow_init', '0002_ssoflow_pending_work'] on a new database, [] afterwards
 * const storage = createKyselyStorage(db, { dialect: 'postgres' })
 * ```
 * @group Kysely
 */
export function migrateSsoflow<DB>(db: Kysely<DB>, options: KyselySchemaOptions): Promise<SsoflowMigrationResult> {
  return run(db as unknown as AnyDb, options, 'up')
}

/**
 * Reverts every applied ssoflow migration (drops ssoflow's tables, never host-owned ones). The
 * bookkeeping table `<prefix>migrations` stays (empty). Throws when a migration fails.
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely'
 * import pg from 'pg'
 * import { rollbackSsoflow } from 'ssoflow/kysely'
 *
 * // Removing ssoflow (or resetting a test database): drops ssoflow's tables, never the host's.
 * const db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) })
 * const { executed } = await rollbackSsoflow(db, { dialect: 'postgres' })
 * console.log(executed) // newest first, e.g. ['0002_ssoflow_pending_work', '0001_ssoflow_init']
 * ```
 * @group Kysely
 */
export function rollbackSsoflow<DB>(db: Kysely<DB>, options: KyselySchemaOptions): Promise<SsoflowMigrationResult> {
  return run(db as unknown as AnyDb, options, 'down')
}

/**
 * Options of {@link ssoflowSchemaSql}.
 * @group Kysely
 */
export interface SchemaSqlOptions extends KyselySchemaOptions {
  /** MySQL only: which server the SQL is for (picks the no-pad binary collation). @defaultValue 'mysql' */
  readonly mysqlFlavor?: 'mysql' | 'mariadb' | undefined
}

/**
 * The SQL of the `up` migration as plain statements, for hosts that run their own migration
 * tools (Flyway, Prisma migrate, plain psql...). Same tables, types and index names as
 * {@link ssoflowMigrations}; nothing is executed.
 *
 * @example
 * ```ts
 * import { ssoflowSchemaSql } from 'ssoflow/kysely'
 * console.log((await ssoflowSchemaSql({ dialect: 'postgres', tablePrefix: 'sso_' })).join(';\n') + ';')
 * ```
 * @group Kysely
 */
export async function ssoflowSchemaSql(options: SchemaSqlOptions): Promise<string[]> {
  const schema = resolveSchema(options)
  const statements: string[] = []
  const version = options.mysqlFlavor === 'mariadb' ? '10.11.0-MariaDB' : '8.0.0'
  const connection: DatabaseConnection = {
    async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
      if (/^select version\(\)/i.test(compiled.sql)) return { rows: [{ v: version } as R] }
      statements.push(compiled.sql)
      return { rows: [] }
    },
    // biome-ignore lint/correctness/useYield: nothing to stream
    async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
      throw new Error('not supported')
    },
  }
  const driver: Driver = {
    init: async () => {},
    acquireConnection: async () => connection,
    beginTransaction: async () => {},
    commitTransaction: async () => {},
    rollbackTransaction: async () => {},
    releaseConnection: async () => {},
    destroy: async () => {},
  }
  const parts =
    schema.dialect === 'postgres'
      ? { adapter: new PostgresAdapter(), compiler: new PostgresQueryCompiler(), introspector: (db: AnyDb) => new PostgresIntrospector(db) }
      : schema.dialect === 'sqlite'
        ? { adapter: new SqliteAdapter(), compiler: new SqliteQueryCompiler(), introspector: (db: AnyDb) => new SqliteIntrospector(db) }
        : { adapter: new MysqlAdapter(), compiler: new MysqlQueryCompiler(), introspector: (db: AnyDb) => new MysqlIntrospector(db) }
  const db: AnyDb = new Kysely({
    dialect: {
      createAdapter: () => parts.adapter,
      createDriver: () => driver,
      createQueryCompiler: () => parts.compiler,
      createIntrospector: parts.introspector,
    },
  })
  await up(db, schema, { catalog: false })
  await upPendingWork(db, schema, { catalog: false })
  await upDomains(db, schema, { catalog: false })
  if (schema.member.side.size > 0) await upMemberFlags(db, schema, { catalog: false })
  await db.destroy()
  return statements
}
