/**
 * The storage port over Drizzle ORM, on ssoflow's tables (see `tables.ts`) and, optionally, the
 * host's own users and organizations tables.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { type AnyColumn, getTableColumns, getTableName, type SQL, sql, type Table } from 'drizzle-orm'
import { normalizeEmail } from '../model/email.js'
import type {
  AuditEntry,
  AuthIdentity,
  AuthProvider,
  Member,
  MemberFlags,
  Organization,
  OrganizationDomain,
  User,
  UserEmail,
} from '../model/records.js'
import { type Clock, systemClock } from '../ports/clock.js'
import {
  type MemberPage,
  type MemberPatch,
  type OneTimeTokenRecord,
  type OneTimeTokenStore,
  type PendingWork,
  type PendingWorkStore,
  type PipelineStateStore,
  StorageConflictError,
  type StoragePort,
  type StorageReader,
  type StorageSeedData,
  type StorageSnapshot,
  type StorageTx,
  type UniqueConstraint,
} from '../ports/storage.js'

/**
 * The SQL dialect of the Drizzle database. PGlite is `'postgres'`.
 * @group Drizzle
 */
export type DrizzleDialect = 'postgres' | 'sqlite' | 'mysql'

/** Fields of the users table ssoflow reads. */
export type DrizzleUserField =
  | 'id'
  | 'username'
  | 'email'
  | 'name'
  | 'isActive'
  | 'isSuspended'
  | 'hasUsablePassword'
  | 'has2fa'
  | 'createdAt'
/** Fields of the organizations table ssoflow reads. */
export type DrizzleOrganizationField = 'id' | 'slug' | 'name' | 'defaultRole' | 'require2fa'

/**
 * Maps one of ssoflow's logical tables onto a host table. Each field is a column of `table` (read
 * and written), or an SQL expression over its columns (read only, e.g. `sql\`${users.suspendedAt}
 * is not null\`` for `isSuspended`): ssoflow inserts SSO-created users with the column-mapped
 * fields only, so the host's defaults must give what ssoflow creates (active, not suspended).
 * `id` must be a column (ssoflow joins on it).
 * @group Drizzle
 */
export interface DrizzleHostTable<F extends string> {
  readonly table: Table
  readonly fields: { readonly [K in F]: AnyColumn | SQL }
  /**
   * How dates are stored: `'epochMs'` (integer milliseconds) or `'native'` (a timestamp column,
   * read as `Date`, string or number). @defaultValue 'native'
   */
  readonly dates?: 'epochMs' | 'native' | undefined
  /** Names of the host's unique indexes: `username` → `user.username`, `email` → `user.email`. */
  readonly uniqueIndexes?: { readonly username?: string | undefined; readonly email?: string | undefined } | undefined
}

/** Fields of a membership ({@link Member}, one field per flag). */
export type DrizzleMemberField = 'id' | 'organizationId' | 'userId' | 'role' | 'createdAt' | DrizzleMemberSideField
/** The member fields that may be left out of a host memberships table (then kept in ssoflow's side table). */
export type DrizzleMemberSideField =
  | 'email'
  | 'emailNormalized'
  | 'ssoLinked'
  | 'ssoInvalid'
  | 'memberLimitRestricted'
  | 'idpProvisioned'
  | 'idpRoleRestricted'
  | 'inviteTokenHash'
  | 'inviteExpiresAt'
  | 'inviteStatus'

/**
 * Maps ssoflow's memberships (roles, flags, invites) onto the host's own memberships table: the
 * host's rows are the one source of truth. `id`, `organizationId`, `userId`, `role` and
 * `createdAt` are columns of `table`. Each other field is a column (read and written), an SQL
 * expression over the table's columns (read only: allowed for the flags ssoflow only preserves,
 * `memberLimitRestricted`, `idpProvisioned`, `idpRoleRestricted`), or left out: ssoflow then
 * keeps it in its side table `<prefix>member_flags` (one row per membership, keyed by its id;
 * add `ssoflowPgMemberFlags(prefix)` & co to your drizzle-kit schema).
 *
 * @example
 * ```ts
 * import { sql } from 'drizzle-orm'
 * import { bigint, pgTable, varchar } from 'drizzle-orm/pg-core'
 * import type { DrizzleMemberTable } from 'ssoflow/drizzle'
 *
 * const memberships = pgTable('memberships', {
 *   id: varchar('id', { length: 255 }).primaryKey(),
 *   orgId: varchar('org_id', { length: 255 }).notNull(),
 *   accountId: varchar('account_id', { length: 255 }),
 *   role: varchar('role', { length: 64 }).notNull(),
 *   provisionedBy: varchar('provisioned_by', { length: 64 }),
 *   joinedAt: bigint('joined_at', { mode: 'number' }).notNull(),
 * })
 * // The flags and invite fields not listed live in ssoflow's side table.
 * const members: DrizzleMemberTable = {
 *   table: memberships,
 *   dates: 'epochMs',
 *   fields: {
 *     id: memberships.id,
 *     organizationId: memberships.orgId,
 *     userId: memberships.accountId,
 *     role: memberships.role,
 *     createdAt: memberships.joinedAt,
 *     idpProvisioned: sql`${memberships.provisionedBy} is not null`,
 *   },
 *   uniqueIndexes: { organizationUser: 'memberships_org_account_key' },
 * }
 * ```
 * @group Drizzle
 */
export interface DrizzleMemberTable {
  readonly table: Table
  readonly fields: { readonly [K in 'id' | 'organizationId' | 'userId' | 'role' | 'createdAt']: AnyColumn } & {
    readonly [K in DrizzleMemberSideField]?: AnyColumn | SQL | undefined
  }
  /** How `createdAt` and `inviteExpiresAt` are stored on the host table. @defaultValue 'native' */
  readonly dates?: 'epochMs' | 'native' | undefined
  /**
   * Names of the host's unique indexes: `organizationUser` -> `member.organization_user`,
   * `organizationEmail` -> `member.organization_email`, `inviteToken` -> `member.invite_token`.
   */
  readonly uniqueIndexes?:
    | {
        readonly organizationUser?: string | undefined
        readonly organizationEmail?: string | undefined
        readonly inviteToken?: string | undefined
      }
    | undefined
}

/**
 * Options of {@link createDrizzleStorage}.
 * @group Drizzle
 */
export interface DrizzleStorageOptions {
  readonly dialect: DrizzleDialect
  /** Prefix of ssoflow's own tables (as given to `ssoflowPgTables` & co). @defaultValue 'ssoflow_' */
  readonly tablePrefix?: string | undefined
  /** The host's own users and organizations tables, instead of ssoflow's. */
  readonly tables?:
    | {
        readonly users?: DrizzleHostTable<DrizzleUserField> | undefined
        readonly organizations?: DrizzleHostTable<DrizzleOrganizationField> | undefined
        /** The host's own memberships table: see {@link DrizzleMemberTable}. */
        readonly members?: DrizzleMemberTable | undefined
      }
    | undefined
  /** The engine's clock (pipeline-state expiry). Default: the system clock. */
  readonly clock?: Clock | undefined
  /** MySQL: seconds to wait for an identity or email lock. @defaultValue 10 */
  readonly lockTimeoutSeconds?: number | undefined
}

/**
 * A Drizzle database of any dialect: what the adapter calls on it. `drizzle(pool)` of
 * `drizzle-orm/node-postgres`, `drizzle-orm/pglite`, `drizzle-orm/mysql2` and
 * `drizzle-orm/better-sqlite3` all fit.
 * @group Drizzle
 */
export interface DrizzleDatabaseLike {
  readonly $client?: unknown
}

/**
 * The Drizzle storage: a {@link StoragePort} plus the seeding hook tests and imports use.
 * @group Drizzle
 */
export interface DrizzleStorage extends StoragePort {
  /** Inserts host-owned rows (organizations, extra user addresses) directly. */
  seedHostData(data: { organizations?: readonly Organization[] | undefined; userEmails?: readonly UserEmail[] | undefined }): Promise<void>
  /**
   * Inserts rows in one transaction (tests, imports). Each seeded user also gets its primary
   * verified address row unless `userEmails` has a row for that user and address.
   */
  seed(data: StorageSeedData): Promise<void>
  /** Every table's rows (the host tables' too, when mapped), sorted by a stable key, for tests. */
  snapshot(): Promise<StorageSnapshot>
}

type Row = Record<string, unknown>
interface Exec {
  rows(query: SQL): Promise<Row[]>
  run(query: SQL): Promise<number>
}
interface Active {
  readonly exec: Exec
  failed: { readonly error: unknown } | null
  readonly locks: string[]
}

const FLAG_FIELDS: readonly (keyof MemberFlags & DrizzleMemberField)[] = [
  'ssoLinked',
  'ssoInvalid',
  'memberLimitRestricted',
  'idpProvisioned',
  'idpRoleRestricted',
]
/** ssoflow's member columns (its own table and the side table). */
const DEFAULT_MEMBER_COLUMNS: Readonly<Record<DrizzleMemberField, string>> = {
  id: 'id',
  organizationId: 'organization_id',
  userId: 'user_id',
  email: 'email',
  emailNormalized: 'email_normalized',
  role: 'role',
  ssoLinked: 'flag_sso_linked',
  ssoInvalid: 'flag_sso_invalid',
  memberLimitRestricted: 'flag_member_limit_restricted',
  idpProvisioned: 'flag_idp_provisioned',
  idpRoleRestricted: 'flag_idp_role_restricted',
  inviteTokenHash: 'invite_token_hash',
  inviteExpiresAt: 'invite_expires_at',
  inviteStatus: 'invite_status',
  createdAt: 'created_at',
}
const MEMBER_FIELDS = Object.keys(DEFAULT_MEMBER_COLUMNS) as DrizzleMemberField[]
const REQUIRED_MEMBER_FIELDS: readonly DrizzleMemberField[] = ['id', 'organizationId', 'userId', 'role', 'createdAt']
const DERIVABLE_FLAGS: readonly DrizzleMemberField[] = ['memberLimitRestricted', 'idpProvisioned', 'idpRoleRestricted']
const USER_FIELDS: readonly DrizzleUserField[] = [
  'id',
  'username',
  'email',
  'name',
  'isActive',
  'isSuspended',
  'hasUsablePassword',
  'has2fa',
  'createdAt',
]
const ORG_FIELDS: readonly DrizzleOrganizationField[] = ['id', 'slug', 'name', 'defaultRole', 'require2fa']
const DEFAULT_USER_COLUMNS: Record<DrizzleUserField, string> = {
  id: 'id',
  username: 'username',
  email: 'email',
  name: 'name',
  isActive: 'is_active',
  isSuspended: 'is_suspended',
  hasUsablePassword: 'has_usable_password',
  has2fa: 'has_2fa',
  createdAt: 'created_at',
}
const DEFAULT_ORG_COLUMNS: Record<DrizzleOrganizationField, string> = {
  id: 'id',
  slug: 'slug',
  name: 'name',
  defaultRole: 'default_role',
  require2fa: 'require_2fa',
}

const toBool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't' || v === 'true' || v === 1n
const toStr = (v: unknown): string => (typeof v === 'string' ? v : v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v))
const toMs = (v: unknown): number =>
  v instanceof Date ? v.getTime() : typeof v === 'string' && !/^-?\d+$/.test(v) ? new Date(v).getTime() : Number(v)
const toDate = (v: unknown): Date => new Date(toMs(v))
const orNull = <T>(v: unknown, f: (x: unknown) => T): T | null => (v === null || v === undefined ? null : f(v))
const json = <T>(v: unknown): T => JSON.parse(toStr(v)) as T

function causeChain(error: unknown): Row[] {
  const out: Row[] = []
  let e: unknown = error
  for (let i = 0; i < 4 && typeof e === 'object' && e !== null; i++) {
    out.push(e as Row)
    e = (e as { cause?: unknown }).cause
  }
  return out
}

/**
 * Creates the storage over a Drizzle database. Transactions run on one connection each (a
 * `db.transaction()` on PostgreSQL and MySQL, `BEGIN IMMEDIATE` behind a mutex on SQLite);
 * calls on the storage itself from inside a transaction join it (`AsyncLocalStorage`); a write
 * that failed inside a transaction fails it. Locks: PostgreSQL advisory transaction locks and
 * `FOR KEY SHARE` / `FOR UPDATE`; MySQL `GET_LOCK` on the transaction's connection (released
 * after commit); SQLite none (transactions are serial).
 *
 * @example
 * ```ts
 * import { drizzle } from 'drizzle-orm/node-postgres'
 * import pg from 'pg'
 * import { createDrizzleStorage } from 'ssoflow/drizzle'
 *
 * const db = drizzle(new pg.Pool({ connectionString: process.env.DATABASE_URL }))
 * const storage = createDrizzleStorage(db, { dialect: 'postgres' })
 * ```
 * @group Drizzle
 */
export function createDrizzleStorage(database: DrizzleDatabaseLike, options: DrizzleStorageOptions): DrizzleStorage {
  // biome-ignore lint/suspicious/noExplicitAny: the three dialects' databases share these methods at run time
  const db = database as any
  const dialect = options.dialect
  if (dialect !== 'postgres' && dialect !== 'sqlite' && dialect !== 'mysql')
    throw new TypeError("dialect must be 'postgres', 'sqlite' or 'mysql'")
  const prefix = options.tablePrefix ?? 'ssoflow_'
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,23}$/.test(prefix)) throw new TypeError('tablePrefix must be letters, digits or _ (at most 24 characters)')
  const clock = options.clock ?? systemClock
  const lockTimeout = options.lockTimeoutSeconds ?? 10
  const id = (name: string): SQL => sql`${sql.identifier(name)}`
  const T = {
    userEmails: id(`${prefix}user_emails`),
    providers: id(`${prefix}auth_providers`),
    identities: id(`${prefix}auth_identities`),
    members: id(`${prefix}members`),
    audit: id(`${prefix}audit_log`),
    states: id(`${prefix}pipeline_states`),
    tokens: id(`${prefix}one_time_tokens`),
    domains: id(`${prefix}organization_domains`),
    work: id(`${prefix}pending_work`),
  }

  // ---- the users and organizations tables: ssoflow's, or the host's ----
  function host<F extends string>(
    mapping: DrizzleHostTable<F> | undefined,
    own: string,
    defaults: Record<F, string>,
    fields: readonly F[],
  ) {
    if (!mapping) {
      const table = id(own)
      const expr = Object.fromEntries(fields.map((f) => [f, sql`${table}.${id(defaults[f])}`])) as Record<F, SQL>
      const column = Object.fromEntries(fields.map((f) => [f, defaults[f]])) as Record<F, string | null>
      return { table, name: own, expr, column, nativeDates: false, indexes: {} as { username?: string; email?: string } }
    }
    const name = getTableName(mapping.table)
    const owned = new Set(Object.values(getTableColumns(mapping.table)))
    const expr = {} as Record<F, SQL>
    const column = {} as Record<F, string | null>
    for (const f of fields) {
      const m = mapping.fields[f]
      if (m === undefined) throw new TypeError(`tables: field ${f} is not mapped`)
      if (owned.has(m as AnyColumn)) {
        column[f] = (m as AnyColumn).name
        expr[f] = sql`${id(name)}.${id((m as AnyColumn).name)}`
      } else {
        column[f] = null
        expr[f] = sql`(${m as SQL})`
      }
    }
    if (column[fields[0] as F] === null) throw new TypeError('tables: the id field must be a column of the table')
    return { table: id(name), name, expr, column, nativeDates: mapping.dates !== 'epochMs', indexes: { ...mapping.uniqueIndexes } }
  }
  const U = host(options.tables?.users, `${prefix}users`, DEFAULT_USER_COLUMNS, USER_FIELDS)
  const O = host(options.tables?.organizations, `${prefix}organizations`, DEFAULT_ORG_COLUMNS, ORG_FIELDS)

  // ---- the memberships table: ssoflow's, or the host's plus the side table for what it lacks ----
  const sideName = `${prefix}member_flags`
  const M = (() => {
    const mapping = options.tables?.members
    const side = new Set<DrizzleMemberField>()
    const readOnly = new Set<DrizzleMemberField>()
    if (!mapping) {
      const table = id(`${prefix}members`)
      const expr = Object.fromEntries(MEMBER_FIELDS.map((f) => [f, sql`${table}.${id(DEFAULT_MEMBER_COLUMNS[f])}`])) as Record<
        DrizzleMemberField,
        SQL
      >
      return { table, expr, column: { ...DEFAULT_MEMBER_COLUMNS } as Record<DrizzleMemberField, string>, side, readOnly, native: false }
    }
    const name = getTableName(mapping.table)
    const owned = new Set(Object.values(getTableColumns(mapping.table)))
    const expr = {} as Record<DrizzleMemberField, SQL>
    const column = {} as Record<DrizzleMemberField, string>
    const fields = mapping.fields as Partial<Record<DrizzleMemberField, AnyColumn | SQL>>
    for (const f of MEMBER_FIELDS) {
      const m = fields[f]
      if (m === undefined) {
        if (REQUIRED_MEMBER_FIELDS.includes(f)) throw new TypeError(`tables.members: field ${f} is not mapped`)
        side.add(f)
        expr[f] = sql`${id(sideName)}.${id(DEFAULT_MEMBER_COLUMNS[f])}`
      } else if (owned.has(m as AnyColumn)) {
        column[f] = (m as AnyColumn).name
        expr[f] = sql`${id(name)}.${id((m as AnyColumn).name)}`
      } else {
        if (!DERIVABLE_FLAGS.includes(f)) throw new TypeError(`tables.members: ${f} must be a column of the table (ssoflow writes it)`)
        readOnly.add(f)
        expr[f] = sql`(${m as SQL})`
      }
    }
    if (side.has('email') !== side.has('emailNormalized')) {
      throw new TypeError('tables.members: email and emailNormalized live together (both columns or both left out)')
    }
    return { table: id(name), expr, column, side, readOnly, native: mapping.dates !== 'epochMs' }
  })()
  const hasSide = M.side.size > 0
  const SIDE = id(sideName)

  // ---- unique violations -> the port's constraints ----
  const byIndex = new Map<string, UniqueConstraint>([
    [`${prefix}users_username_uq`, 'user.username'],
    [`${prefix}user_emails_pk`, 'user_email.user_email'],
    [`${prefix}auth_providers_org_uq`, 'auth_provider.organization'],
    [`${prefix}auth_identities_ident_uq`, 'auth_identity.provider_ident'],
    [`${prefix}auth_identities_user_uq`, 'auth_identity.provider_user'],
    [`${prefix}members_org_user_uq`, 'member.organization_user'],
    [`${prefix}members_org_email_uq`, 'member.organization_email'],
    [`${prefix}members_token_uq`, 'member.invite_token'],
    [`${prefix}pipeline_states_pk`, 'pipeline_state.id'],
    [`${prefix}one_time_tokens_pk`, 'one_time_token.hash'],
    [`${prefix}org_domains_org_domain_uq`, 'organization_domain.organization_domain'],
    [`${prefix}org_domains_verified_uq`, 'organization_domain.verified'],
  ])
  if (U.indexes.username) byIndex.set(U.indexes.username, 'user.username')
  if (U.indexes.email) byIndex.set(U.indexes.email, 'user.email')
  byIndex.set(`${prefix}member_flags_org_email_uq`, 'member.organization_email')
  byIndex.set(`${prefix}member_flags_token_uq`, 'member.invite_token')
  const memberIndexes = options.tables?.members?.uniqueIndexes ?? {}
  if (memberIndexes.organizationUser) byIndex.set(memberIndexes.organizationUser, 'member.organization_user')
  if (memberIndexes.organizationEmail) byIndex.set(memberIndexes.organizationEmail, 'member.organization_email')
  if (memberIndexes.inviteToken) byIndex.set(memberIndexes.inviteToken, 'member.invite_token')
  type Candidate = { constraint: UniqueConstraint; columns: string[]; primary?: boolean }
  const C = {
    users: [
      { constraint: 'user.username', columns: [U.column.username ?? 'username'] },
      ...(options.tables?.users ? [{ constraint: 'user.email' as const, columns: [U.column.email ?? 'email'] }] : []),
    ] as Candidate[],
    userEmails: [{ constraint: 'user_email.user_email', columns: ['user_id', 'email_normalized'], primary: true }] as Candidate[],
    providers: [{ constraint: 'auth_provider.organization', columns: ['organization_id'] }] as Candidate[],
    identities: [
      { constraint: 'auth_identity.provider_ident', columns: ['auth_provider_id', 'ident'] },
      { constraint: 'auth_identity.provider_user', columns: ['auth_provider_id', 'user_id'] },
    ] as Candidate[],
    members: [
      { constraint: 'member.organization_user', columns: [M.column.organizationId, M.column.userId] },
      ...(M.side.has('emailNormalized')
        ? []
        : [{ constraint: 'member.organization_email' as const, columns: [M.column.organizationId, M.column.emailNormalized] }]),
      ...(M.side.has('inviteTokenHash') ? [] : [{ constraint: 'member.invite_token' as const, columns: [M.column.inviteTokenHash] }]),
    ] as Candidate[],
    memberSide: [
      { constraint: 'member.organization_email', columns: ['organization_id', 'email_normalized'] },
      { constraint: 'member.invite_token', columns: ['invite_token_hash'] },
    ] as Candidate[],
    states: [{ constraint: 'pipeline_state.id', columns: ['id'], primary: true }] as Candidate[],
    tokens: [{ constraint: 'one_time_token.hash', columns: ['hash'], primary: true }] as Candidate[],
    domains: [
      { constraint: 'organization_domain.organization_domain', columns: ['organization_id', 'domain'] },
      { constraint: 'organization_domain.verified', columns: ['verified_domain'] },
    ] as Candidate[],
    none: [] as Candidate[],
  }
  function conflictOf(error: unknown, candidates: readonly Candidate[]): StorageConflictError | null {
    const fallback = candidates[0]
    if (!fallback) return null
    for (const e of causeChain(error)) {
      const message = String(e.message ?? '')
      if (dialect === 'postgres' && e.code === '23505') {
        const found = typeof e.constraint === 'string' ? byIndex.get(e.constraint) : undefined
        return new StorageConflictError(found ?? fallback.constraint, { cause: error })
      }
      if (dialect === 'sqlite' && (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')) {
        const at = message.indexOf('failed: ')
        const columns =
          at < 0
            ? []
            : message
                .slice(at + 8)
                .split(',')
                .map((c) => c.trim().split('.').pop() ?? '')
        const found = candidates.find((c) => c.columns.length === columns.length && c.columns.every((x) => columns.includes(x)))
        return new StorageConflictError(found?.constraint ?? fallback.constraint, { cause: error })
      }
      if (dialect === 'mysql' && (e.errno === 1062 || e.code === 'ER_DUP_ENTRY')) {
        const key = /for key '([^']+)'/.exec(message)?.[1]?.split('.').pop()
        const found = key === 'PRIMARY' ? candidates.find((c) => c.primary)?.constraint : key ? byIndex.get(key) : undefined
        return new StorageConflictError(found ?? fallback.constraint, { cause: error })
      }
    }
    return null
  }

  // ---- execution: on the active transaction's connection, or the database ----
  const direct = (d: typeof db): Exec => {
    if (dialect === 'sqlite') {
      return {
        rows: async (q) => d.all(q) as Row[],
        run: async (q) => Number((d.run(q) as { changes?: number }).changes ?? 0),
      }
    }
    if (dialect === 'mysql') {
      return {
        rows: async (q) => ((await d.execute(q)) as [Row[]])[0],
        run: async (q) => Number(((await d.execute(q)) as [{ affectedRows?: number }])[0].affectedRows ?? 0),
      }
    }
    return {
      rows: async (q) => ((await d.execute(q)) as { rows: Row[] }).rows,
      run: async (q) => {
        const r = (await d.execute(q)) as { rowCount?: number | null; affectedRows?: number }
        return Number(r.rowCount ?? r.affectedRows ?? 0)
      },
    }
  }
  const root = direct(db)
  const active = new AsyncLocalStorage<Active>()
  // SQLite: one connection; transactions (and plain calls outside them) take turns.
  let sqliteTail: Promise<void> = Promise.resolve()
  const sqliteTurn = async (): Promise<() => void> => {
    const previous = sqliteTail
    let release: () => void = () => {}
    sqliteTail = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    return release
  }
  async function exec<R>(f: (e: Exec) => Promise<R>, candidates: readonly Candidate[] = C.none): Promise<R> {
    const tx = active.getStore()
    try {
      if (tx) return await f(tx.exec)
      if (dialect !== 'sqlite') return await f(root)
      const release = await sqliteTurn()
      try {
        return await f(root)
      } finally {
        release()
      }
    } catch (error) {
      const mapped = conflictOf(error, candidates) ?? error
      // PostgreSQL aborts the transaction on a failed statement and turns COMMIT into ROLLBACK.
      if (tx && tx.failed === null) tx.failed = { error: mapped }
      throw mapped
    }
  }
  const rows = (q: SQL, candidates?: readonly Candidate[]) => exec((e) => e.rows(q), candidates)
  const run = (q: SQL, candidates?: readonly Candidate[]) => exec((e) => e.run(q), candidates)
  const first = async <T>(q: SQL, map: (r: Row) => T): Promise<T | null> => {
    const r = (await rows(q))[0]
    return r === undefined ? null : map(r)
  }

  const bool = (v: boolean): SQL => (dialect === 'postgres' ? sql`${v}` : sql`${v ? 1 : 0}`)
  const list = (items: SQL[]) => sql.join(items, sql`, `)
  const as = (e: SQL, alias: string) => sql`${e} as ${id(alias)}`

  // ---- decoders ----
  const userSelect = list(USER_FIELDS.map((f) => as(U.expr[f], `u_${f}`)))
  const userFrom = (r: Row): User => ({
    id: toStr(r.u_id),
    username: toStr(r.u_username),
    email: toStr(r.u_email),
    name: toStr(r.u_name),
    isActive: toBool(r.u_isActive),
    isSuspended: toBool(r.u_isSuspended),
    hasUsablePassword: toBool(r.u_hasUsablePassword),
    has2fa: toBool(r.u_has2fa),
    createdAt: toDate(r.u_createdAt),
  })
  const orgSelect = list(ORG_FIELDS.map((f) => as(O.expr[f], `o_${f}`)))
  const orgFrom = (r: Row): Organization => ({
    id: toStr(r.o_id),
    slug: toStr(r.o_slug),
    name: toStr(r.o_name),
    defaultRole: toStr(r.o_defaultRole),
    require2fa: toBool(r.o_require2fa),
  })
  const providerFrom = (r: Row, p = ''): AuthProvider => ({
    id: toStr(r[`${p}id`]),
    organizationId: toStr(r[`${p}organization_id`]),
    providerKey: toStr(r[`${p}provider_key`]),
    config: json(r[`${p}config`]),
    allowUnlinked: toBool(r[`${p}allow_unlinked`]),
    scimEnabled: toBool(r[`${p}scim_enabled`]),
    createdAt: toDate(r[`${p}created_at`]),
  })
  const PROVIDER_COLS = ['id', 'organization_id', 'provider_key', 'config', 'allow_unlinked', 'scim_enabled', 'created_at']
  const IDENTITY_COLS = ['id', 'auth_provider_id', 'user_id', 'ident', 'data', 'last_verified', 'last_synced', 'created_at']
  const identityFrom = (r: Row, p = ''): AuthIdentity => ({
    id: toStr(r[`${p}id`]),
    authProviderId: toStr(r[`${p}auth_provider_id`]),
    userId: toStr(r[`${p}user_id`]),
    ident: toStr(r[`${p}ident`]),
    data: json(r[`${p}data`]),
    lastVerified: toDate(r[`${p}last_verified`]),
    lastSynced: toDate(r[`${p}last_synced`]),
    createdAt: toDate(r[`${p}created_at`]),
  })
  const memberSelect = list(MEMBER_FIELDS.map((f) => as(M.expr[f], `m_${f}`)))
  /** `<members> [left join <side> on member_id = id]`: what member reads select from. */
  const memberSource = hasSide ? sql`${M.table} left join ${SIDE} on ${SIDE}.member_id = ${M.expr.id}` : M.table
  const memberFrom = (r: Row): Member => ({
    id: toStr(r.m_id),
    organizationId: toStr(r.m_organizationId),
    userId: orNull(r.m_userId, toStr),
    email: orNull(r.m_email, toStr),
    emailNormalized: orNull(r.m_emailNormalized, toStr),
    role: toStr(r.m_role),
    // A field in the side table of a membership the host created itself has no row yet: null.
    flags: {
      ssoLinked: toBool(r.m_ssoLinked),
      ssoInvalid: toBool(r.m_ssoInvalid),
      memberLimitRestricted: toBool(r.m_memberLimitRestricted),
      idpProvisioned: toBool(r.m_idpProvisioned),
      idpRoleRestricted: toBool(r.m_idpRoleRestricted),
    },
    inviteTokenHash: orNull(r.m_inviteTokenHash, toStr),
    inviteExpiresAt: orNull(r.m_inviteExpiresAt, toDate),
    inviteStatus: (orNull(r.m_inviteStatus, toStr) ?? 'approved') as Member['inviteStatus'],
    createdAt: toDate(r.m_createdAt),
  })
  const emailFrom = (r: Row): UserEmail => ({
    userId: toStr(r.e_user_id),
    email: toStr(r.e_email),
    emailNormalized: toStr(r.e_email_normalized),
    isVerified: toBool(r.e_is_verified),
    isPrimary: toBool(r.e_is_primary),
  })
  const cols = (alias: string, names: readonly string[]) => list(names.map((c) => sql`${id(alias)}.${id(c)} as ${id(`${alias}_${c}`)}`))
  const tokenFrom = (r: Row): OneTimeTokenRecord => ({
    hash: toStr(r.hash),
    purpose: toStr(r.purpose),
    payload: toStr(r.payload),
    expiresAt: toDate(r.expires_at),
  })
  const page = (after: string | null | undefined) => (after == null ? sql`` : sql` and ${id('id')} > ${after}`)

  const domainFrom = (r: Row): OrganizationDomain => ({
    id: toStr(r.id),
    organizationId: toStr(r.organization_id),
    domain: toStr(r.domain),
    verificationToken: toStr(r.verification_token),
    verifiedAt: orNull(r.verified_at, toDate),
    createdAt: toDate(r.created_at),
  })
  const DOMAIN_COLS = sql`id, organization_id, domain, verification_token, verified_at, created_at`

  /** `where … order by … limit …` of one page of an organization's members. */
  const memberPage = (orgId: string, p: MemberPage): SQL => {
    const linkedOff = M.side.has('ssoLinked')
      ? sql`coalesce(${M.expr.ssoLinked}, ${bool(false)}) = ${bool(false)}`
      : sql`${M.expr.ssoLinked} = ${bool(false)}`
    const unlinked = p.unlinkedOnly === true ? sql` and ${M.expr.userId} is not null and ${linkedOff}` : sql``
    const after = p.after == null ? sql`` : sql` and ${M.expr.id} > ${p.after}`
    return sql`where ${M.expr.organizationId} = ${orgId}${after}${unlinked} order by ${M.expr.id} limit ${Math.max(0, Math.floor(p.limit))}`
  }
  const reader: StorageReader = {
    async listOrganizationDomains(orgId) {
      return (await rows(sql`select ${DOMAIN_COLS} from ${T.domains} where organization_id = ${orgId} order by domain`)).map(domainFrom)
    },
    async findVerifiedDomains(domain) {
      return (await rows(sql`select ${DOMAIN_COLS} from ${T.domains} where verified_domain = ${domain} order by organization_id`)).map(
        domainFrom,
      )
    },
    getOrganization: (orgId) => first(sql`select ${orgSelect} from ${O.table} where ${O.expr.id} = ${orgId}`, orgFrom),
    // One statement: the organization left-joined to its provider (the engine's configuration read).
    async getOrganizationWithProvider(orgId) {
      const r = (
        await rows(
          sql`select ${orgSelect}, ${cols('p', PROVIDER_COLS)} from ${O.table}
            left join ${T.providers} p on p.organization_id = ${O.expr.id} where ${O.expr.id} = ${orgId}`,
        )
      )[0]
      if (!r) return null
      return { organization: orgFrom(r), provider: r.p_id === null || r.p_id === undefined ? null : providerFrom(r, 'p_') }
    },
    getAuthProvider: (orgId) => first(sql`select * from ${T.providers} where organization_id = ${orgId}`, providerFrom),
    getAuthProviderById: (pid) => first(sql`select * from ${T.providers} where id = ${pid}`, providerFrom),
    getIdentity: (pid, ident) =>
      first(sql`select * from ${T.identities} where auth_provider_id = ${pid} and ident = ${ident}`, (r) => identityFrom(r)),
    getIdentityById: (iid) => first(sql`select * from ${T.identities} where id = ${iid}`, (r) => identityFrom(r)),
    getIdentityForUser: (pid, uid) =>
      first(sql`select * from ${T.identities} where auth_provider_id = ${pid} and user_id = ${uid}`, (r) => identityFrom(r)),
    async listIdentitiesForUser(uid) {
      return (await rows(sql`select * from ${T.identities} where user_id = ${uid} order by id`)).map((r) => identityFrom(r))
    },
    getLinkedIdentity: (pid, ident, orgId) =>
      first(
        sql`select ${cols('i', IDENTITY_COLS)}, ${userSelect}, ${memberSelect}
          from ${T.identities} i join ${U.table} on ${U.expr.id} = i.user_id
          left join ${M.table} on ${M.expr.userId} = i.user_id and ${M.expr.organizationId} = ${orgId}
          ${hasSide ? sql`left join ${SIDE} on ${SIDE}.member_id = ${M.expr.id}` : sql``}
          where i.auth_provider_id = ${pid} and i.ident = ${ident}`,
        (r) => ({
          identity: identityFrom(r, 'i_'),
          user: userFrom(r),
          member: r.m_id === null || r.m_id === undefined ? null : memberFrom(r),
        }),
      ),
    getUser: (uid) => first(sql`select ${userSelect} from ${U.table} where ${U.expr.id} = ${uid}`, userFrom),
    async findUsersByEmail(normalized) {
      const found = await rows(
        sql`select ${userSelect}, ${cols('e', ['user_id', 'email', 'email_normalized', 'is_verified', 'is_primary'])}
          from ${T.userEmails} e join ${U.table} on ${U.expr.id} = e.user_id
          where e.email_normalized = ${normalized} and ${U.expr.isActive} = ${bool(true)} order by ${U.expr.id}`,
      )
      return found.map((r) => ({ user: userFrom(r), email: emailFrom(r) }))
    },
    getMember: (orgId, uid) =>
      first(
        sql`select ${memberSelect} from ${memberSource} where ${M.expr.organizationId} = ${orgId} and ${M.expr.userId} = ${uid}`,
        memberFrom,
      ),
    getMemberById: (mid) => first(sql`select ${memberSelect} from ${memberSource} where ${M.expr.id} = ${mid}`, memberFrom),
    getInviteByEmail: (orgId, normalized) =>
      first(
        sql`select ${memberSelect} from ${memberSource}
          where ${M.expr.organizationId} = ${orgId} and ${M.expr.emailNormalized} = ${normalized} and ${M.expr.userId} is null`,
        memberFrom,
      ),
    async listMembers(orgId, p) {
      return (await rows(sql`select ${memberSelect} from ${memberSource} ${memberPage(orgId, p)}`)).map(memberFrom)
    },
    async listMemberRecipients(orgId, p) {
      // One query per page: the members and their users (a left join; null for invites).
      const found = await rows(
        sql`select ${memberSelect}, ${userSelect} from ${memberSource} left join ${U.table} on ${U.expr.id} = ${M.expr.userId}
          ${memberPage(orgId, p)}`,
      )
      return found.map((r) => ({ member: memberFrom(r), user: r.u_id === null || r.u_id === undefined ? null : userFrom(r) }))
    },
    async listIdentities(pid, p) {
      const found = await rows(
        sql`select * from ${T.identities} where auth_provider_id = ${pid}${page(p.after)} order by id limit ${Math.max(0, p.limit)}`,
      )
      return found.map((r) => identityFrom(r))
    },
  }

  /** `update <table> set … where <key> = ?`; true when the row exists. */
  async function update(table: SQL, key: SQL, value: string, set: [string, unknown][], candidates: readonly Candidate[]): Promise<boolean> {
    const given = set.filter(([, v]) => v !== undefined)
    if (given.length === 0) return (await rows(sql`select 1 as x from ${table} where ${key} = ${value}`)).length > 0
    const assignments = list(given.map(([c, v]) => sql`${id(c)} = ${v as SQL}`))
    const changed = await run(sql`update ${table} set ${assignments} where ${key} = ${value}`, candidates)
    if (changed > 0 || dialect !== 'mysql') return changed > 0
    // MySQL counts changed rows only (unless CLIENT_FOUND_ROWS): an update to equal values is 0.
    return (await rows(sql`select 1 as x from ${table} where ${key} = ${value}`)).length > 0
  }
  const b = (v: boolean | undefined) => (v === undefined ? undefined : dialect === 'postgres' ? v : v ? 1 : 0)
  const ms = (d: Date | null | undefined) => (d === undefined ? undefined : d === null ? null : d.getTime())
  const userDate = (d: Date) => (U.nativeDates && options.tables?.users ? (dialect === 'sqlite' ? d.getTime() : d) : d.getTime())

  async function lockKey(text: string, what: string): Promise<void> {
    if (dialect === 'postgres') {
      await rows(sql`select pg_advisory_xact_lock(hashtextextended(${text}, 0)) as locked`)
      return
    }
    if (dialect === 'mysql') {
      const tx = active.getStore()
      const name = `${prefix}${fnv(text)}`
      if (!tx || tx.locks.includes(name)) return
      const got = await rows(sql`select get_lock(${name}, ${lockTimeout}) as got`)
      if (Number(got[0]?.got) !== 1) throw new Error(`ssoflow: timed out waiting for the ${what} lock`)
      tx.locks.push(name)
    }
    // SQLite: transactions are serial.
  }
  const providerLocked = (column: string, value: string, mode: 'share' | 'update') => {
    const lock =
      dialect === 'postgres'
        ? mode === 'share'
          ? sql` for key share`
          : sql` for update`
        : dialect === 'mysql'
          ? mode === 'share'
            ? sql` lock in share mode`
            : sql` for update`
          : sql``
    return first(sql`select * from ${T.providers} where ${id(column)} = ${value}${lock}`, providerFrom)
  }

  const oneTimeTokens: OneTimeTokenStore = {
    async create(t) {
      await run(
        sql`insert into ${T.tokens} (hash, purpose, payload, expires_at) values (${t.hash}, ${t.purpose}, ${t.payload}, ${t.expiresAt.getTime()})`,
        C.tokens,
      )
    },
    async consume(hash, purpose, now) {
      const live = sql`hash = ${hash} and purpose = ${purpose} and expires_at > ${now.getTime()}`
      if (dialect !== 'mysql') return first(sql`delete from ${T.tokens} where ${live} returning *`, tokenFrom)
      const found = await first(sql`select * from ${T.tokens} where ${live}`, tokenFrom)
      if (found === null) return null
      return (await run(sql`delete from ${T.tokens} where ${live}`)) === 1 ? found : null
    },
    peek: (hash, purpose, now) =>
      first(sql`select * from ${T.tokens} where hash = ${hash} and purpose = ${purpose} and expires_at > ${now.getTime()}`, tokenFrom),
    deleteExpired(now, limit) {
      const n = sql.raw(String(Math.max(0, Math.floor(limit))))
      return dialect === 'mysql'
        ? run(sql`delete from ${T.tokens} where expires_at <= ${now.getTime()} order by expires_at limit ${n}`)
        : run(
            sql`delete from ${T.tokens} where hash in (select hash from ${T.tokens} where expires_at <= ${now.getTime()} order by expires_at limit ${n})`,
          )
    },
  }

  // ---- the outbox (`<prefix>pending_work`): recorded in transactions, drained by workers ----
  const WORK_COLUMNS = sql.raw('id, kind, organization_id, work_key, payload, after_id, attempts, available_at, claim_token, created_at')
  const workFrom = (r: Row): PendingWork => ({
    id: toStr(r.id),
    kind: toStr(r.kind),
    organizationId: toStr(r.organization_id),
    key: toStr(r.work_key),
    payload: toStr(r.payload),
    cursor: orNull(r.after_id, toStr),
    attempts: Number(r.attempts),
    availableAt: toDate(r.available_at),
    claimToken: orNull(r.claim_token, toStr),
    createdAt: toDate(r.created_at),
  })
  async function enqueueWork(w: PendingWork): Promise<boolean> {
    const insert = sql`insert into ${T.work} (${WORK_COLUMNS}) values (${w.id}, ${w.kind}, ${w.organizationId}, ${w.key}, ${w.payload},
      ${w.cursor}, ${w.attempts}, ${w.availableAt.getTime()}, ${w.claimToken}, ${w.createdAt.getTime()})`
    // A concurrent transaction inserting the same key makes this one wait, then do nothing.
    if (dialect !== 'mysql') return (await run(sql`${insert} on conflict (work_key) do nothing`)) > 0
    // MySQL: a duplicate key fails the statement only (the transaction goes on).
    return exec(async (e) => {
      try {
        await e.run(insert)
        return true
      } catch (error) {
        if (causeChain(error).some((c) => c.errno === 1062 || c.code === 'ER_DUP_ENTRY')) return false
        throw error
      }
    })
  }
  const pendingWork: PendingWorkStore = {
    claim: (now, leaseUntil, claimToken) =>
      // One short transaction: the oldest available row, skipping rows another worker is claiming
      // this instant (FOR UPDATE SKIP LOCKED on PostgreSQL and MariaDB / MySQL 8; SQLite runs one
      // transaction at a time), then the lease written on it.
      transaction(async () => {
        const lock = dialect === 'sqlite' ? sql`` : sql` for update skip locked`
        const found = await rows(
          sql`select ${WORK_COLUMNS} from ${T.work} where available_at <= ${now.getTime()} order by available_at, id limit 1${lock}`,
        )
        const row = found[0]
        if (row === undefined) return null
        await run(sql`update ${T.work} set claim_token = ${claimToken}, available_at = ${leaseUntil.getTime()} where id = ${toStr(row.id)}`)
        return workFrom({ ...row, claim_token: claimToken, available_at: leaseUntil.getTime() })
      }),
    async advance(wid, claimToken, progress) {
      const changed = await run(
        sql`update ${T.work} set after_id = ${progress.cursor}, attempts = ${progress.attempts}, available_at = ${progress.availableAt.getTime()}
          where id = ${wid} and claim_token = ${claimToken}`,
      )
      if (changed > 0 || dialect !== 'mysql') return changed > 0
      // MySQL counts changed rows only (unless CLIENT_FOUND_ROWS): an update to equal values is 0.
      return (await rows(sql`select 1 as x from ${T.work} where id = ${wid} and claim_token = ${claimToken}`)).length > 0
    },
    async complete(wid, claimToken) {
      return (await run(sql`delete from ${T.work} where id = ${wid} and claim_token = ${claimToken}`)) > 0
    },
  }

  const insertUser = (u: User) => {
    const values: [string, unknown][] = []
    const v: Record<DrizzleUserField, unknown> = {
      id: u.id,
      username: u.username,
      email: u.email,
      name: u.name,
      isActive: b(u.isActive),
      isSuspended: b(u.isSuspended),
      hasUsablePassword: b(u.hasUsablePassword),
      has2fa: b(u.has2fa),
      createdAt: userDate(u.createdAt),
    }
    for (const f of USER_FIELDS) {
      const column = U.column[f]
      if (column !== null) values.push([column, v[f]])
    }
    return sql`insert into ${U.table} (${list(values.map(([c]) => id(c)))}) values (${list(values.map(([, x]) => sql`${x}`))})`
  }
  const insertEmail = (e: UserEmail) =>
    sql`insert into ${T.userEmails} (user_id, email, email_normalized, is_verified, is_primary)
      values (${e.userId}, ${e.email}, ${e.emailNormalized}, ${bool(e.isVerified)}, ${bool(e.isPrimary)})`
  /** A member field's value as stored on the host table or in the side table. */
  const memberValue = (v: unknown, where: 'host' | 'side'): unknown => {
    if (typeof v === 'boolean') return b(v)
    if (v instanceof Date) return where === 'host' && M.native && options.tables?.members && dialect !== 'sqlite' ? v : v.getTime()
    return v
  }
  const memberFieldsOf = (m: Member): [DrizzleMemberField, unknown][] =>
    MEMBER_FIELDS.map((f) => [f, FLAG_FIELDS.includes(f as keyof MemberFlags) ? m.flags[f as keyof MemberFlags] : m[f as keyof Member]])
  const patchFieldsOf = (patch: MemberPatch): [DrizzleMemberField, unknown][] => {
    const out: [DrizzleMemberField, unknown][] = []
    for (const f of ['userId', 'email', 'emailNormalized', 'role', 'inviteTokenHash', 'inviteExpiresAt', 'inviteStatus'] as const) {
      if (patch[f] !== undefined) out.push([f, patch[f]])
    }
    for (const f of FLAG_FIELDS) if (patch.flags?.[f] !== undefined) out.push([f, patch.flags[f]])
    return out
  }
  /** Host columns and side-table columns of some member fields (read-only fields dropped). */
  const splitMember = (fields: readonly [DrizzleMemberField, unknown][]) => {
    const host: [string, unknown][] = []
    const side: [string, unknown][] = []
    for (const [f, v] of fields) {
      if (M.readOnly.has(f)) continue
      if (M.side.has(f)) side.push([DEFAULT_MEMBER_COLUMNS[f], memberValue(v, 'side')])
      else host.push([M.column[f], memberValue(v, 'host')])
    }
    return { host, side }
  }
  /**
   * Writes side-table columns for the memberships the `where` clause finds in the host table:
   * `insert … select` from the host rows (nothing for a membership the host table lacks),
   * updating existing side rows. One statement; returns the driver's row count.
   */
  async function upsertSide(side: readonly [string, unknown][], where: SQL, joinSide = false): Promise<number> {
    // PostgreSQL types an untyped parameter in a select list as text: cast to the column's type.
    const typed = (column: string, value: unknown) => {
      if (dialect !== 'postgres') return sql`${value}`
      const type = column.startsWith('flag_') ? 'boolean' : column === 'invite_expires_at' ? 'bigint' : 'varchar'
      return sql`cast(${value} as ${sql.raw(type)})`
    }
    const source = joinSide ? memberSource : M.table
    const insert = sql`insert into ${SIDE} (member_id, organization_id, ${list(side.map(([c]) => id(c)))})
      select ${M.expr.id}, ${M.expr.organizationId}, ${list(side.map(([c, v]) => typed(c, v)))} from ${source} where ${where}`
    const set = list(side.map(([c, v]) => sql`${id(c)} = ${v}`))
    return run(
      dialect === 'mysql' ? sql`${insert} on duplicate key update ${set}` : sql`${insert} on conflict (member_id) do update set ${set}`,
      C.memberSide,
    )
  }
  const memberExists = async (mid: string) => (await rows(sql`select 1 as x from ${M.table} where ${M.expr.id} = ${mid}`)).length > 0

  const pipelineStates: PipelineStateStore = {
    async create(s) {
      await run(
        sql`insert into ${T.states} (id, version, body, expires_at) values (${s.id}, ${s.version}, ${s.body}, ${s.expiresAt.getTime()})`,
        C.states,
      )
    },
    load: (sid) =>
      first(sql`select * from ${T.states} where id = ${sid} and expires_at > ${clock.now().getTime()}`, (r) => ({
        id: toStr(r.id),
        version: Number(r.version),
        body: toStr(r.body),
        expiresAt: toDate(r.expires_at),
      })),
    async compareAndSet(sid, expected, next) {
      if (next.id !== sid || next.version !== expected + 1)
        throw new TypeError('compareAndSet: next must have the same id and version expectedVersion + 1')
      const changed = await run(
        sql`update ${T.states} set version = ${next.version}, body = ${next.body}, expires_at = ${next.expiresAt.getTime()}
          where id = ${sid} and version = ${expected} and expires_at > ${clock.now().getTime()}`,
      )
      return changed === 1
    },
    async delete(sid) {
      await run(sql`delete from ${T.states} where id = ${sid}`)
    },
    deleteExpired: (now, limit) => {
      if (limit === undefined) return run(sql`delete from ${T.states} where expires_at <= ${now.getTime()}`)
      const n = Math.max(0, Math.floor(limit))
      // Bounded (the housekeeping drain sweeps in batches): MySQL has DELETE … LIMIT; the others a
      // key subquery (MySQL refuses LIMIT inside IN).
      return dialect === 'mysql'
        ? run(sql`delete from ${T.states} where expires_at <= ${now.getTime()} order by expires_at limit ${sql.raw(String(n))}`)
        : run(
            sql`delete from ${T.states} where id in (select id from ${T.states} where expires_at <= ${now.getTime()} order by expires_at limit ${sql.raw(String(n))})`,
          )
    },
  }

  const tx: StorageTx = {
    ...reader,
    async lockIdentity(pid, ident) {
      await lockKey(`${prefix}${pid.length}:${pid}:${ident}`, 'identity')
      return providerLocked('id', pid, 'share')
    },
    lockAuthProvider: (orgId, mode) => providerLocked('organization_id', orgId, mode),
    lockEmail: (normalized) => lockKey(`${prefix}email:${normalized}`, 'email'),
    async createUser(u, primary) {
      await run(insertUser(u), C.users)
      await run(insertEmail(primary), C.userEmails)
    },
    async createIdentity(i) {
      await run(
        sql`insert into ${T.identities} (id, auth_provider_id, user_id, ident, data, last_verified, last_synced, created_at)
          values (${i.id}, ${i.authProviderId}, ${i.userId}, ${i.ident}, ${JSON.stringify(i.data)}, ${i.lastVerified.getTime()},
            ${i.lastSynced.getTime()}, ${i.createdAt.getTime()})`,
        C.identities,
      )
    },
    updateIdentity: (iid, p) =>
      update(
        T.identities,
        sql`id`,
        iid,
        [
          ['user_id', p.userId],
          ['ident', p.ident],
          ['data', p.data === undefined ? undefined : JSON.stringify(p.data)],
          ['last_verified', ms(p.lastVerified)],
          ['last_synced', ms(p.lastSynced)],
        ],
        C.identities,
      ),
    async updateIdentityIfUnchanged(expected, patch) {
      const set = (
        [
          ['user_id', patch.userId],
          ['ident', patch.ident],
          ['data', patch.data === undefined ? undefined : JSON.stringify(patch.data)],
          ['last_verified', ms(patch.lastVerified)],
          ['last_synced', ms(patch.lastSynced)],
        ] as [string, unknown][]
      ).filter(([, v]) => v !== undefined)
      if (set.length === 0) return false
      // One guarded statement over the row as read (a concurrent writer holds the row until it
      // commits; the condition is then checked against its committed row). MySQL counts changed
      // rows: a patch that changes nothing reports false and the engine takes the locked path.
      const changed = await run(
        sql`update ${T.identities} set ${list(set.map(([c, v]) => sql`${id(c)} = ${v}`))}
          where id = ${expected.id} and user_id = ${expected.userId} and ident = ${expected.ident}
          and data = ${JSON.stringify(expected.data)} and last_verified = ${expected.lastVerified.getTime()}
          and last_synced = ${expected.lastSynced.getTime()}`,
        C.identities,
      )
      return changed === 1
    },
    async readLinkedIdentity(pid, ident, orgId) {
      if (dialect === 'mysql') {
        // The provider row's locking read, then the join (a disable waits for the shared row
        // lock before it deletes identities).
        const provider = await providerLocked('id', pid, 'share')
        return { provider, linked: await reader.getLinkedIdentity(pid, ident, orgId) }
      }
      // One statement: the provider row (PostgreSQL: FOR KEY SHARE, as lockIdentity holds it,
      // without the advisory lock; SQLite: transactions are serial, a read suffices) and the
      // identity + user + membership join.
      const provider =
        dialect === 'postgres'
          ? sql`from (values (1)) as one left join lateral (select * from ${T.providers} where id = ${pid} for key share) as p on true`
          : sql`from (select 1 as one) as one left join ${T.providers} p on p.id = ${pid}`
      const found = await rows(
        sql`select ${cols('p', PROVIDER_COLS)}, ${cols('i', IDENTITY_COLS)}, ${userSelect}, ${memberSelect}
          ${provider}
          left join (${T.identities} i join ${U.table} on ${U.expr.id} = i.user_id) on i.auth_provider_id = ${pid} and i.ident = ${ident}
          left join ${M.table} on ${M.expr.userId} = i.user_id and ${M.expr.organizationId} = ${orgId}
          ${hasSide ? sql`left join ${SIDE} on ${SIDE}.member_id = ${M.expr.id}` : sql``}`,
      )
      const r = found[0]
      const present = (v: unknown) => v !== null && v !== undefined
      if (!r) return { provider: null, linked: null }
      return {
        provider: present(r.p_id) ? providerFrom(r, 'p_') : null,
        linked: present(r.i_id)
          ? { identity: identityFrom(r, 'i_'), user: userFrom(r), member: present(r.m_id) ? memberFrom(r) : null }
          : null,
      }
    },
    deleteIdentity: async (iid) => (await run(sql`delete from ${T.identities} where id = ${iid}`)) > 0,
    deleteIdentitiesForUser: (pid, uid, exceptId) =>
      run(
        sql`delete from ${T.identities} where auth_provider_id = ${pid} and user_id = ${uid}${exceptId === null ? sql`` : sql` and id <> ${exceptId}`}`,
      ),
    deleteIdentitiesForProvider: (pid) => run(sql`delete from ${T.identities} where auth_provider_id = ${pid}`),
    async createMember(m) {
      const { host, side } = splitMember(memberFieldsOf(m))
      await run(sql`insert into ${M.table} (${list(host.map(([c]) => id(c)))}) values (${list(host.map(([, v]) => sql`${v}`))})`, C.members)
      if (hasSide) {
        const all: [string, unknown][] = [['member_id', m.id], ['organization_id', m.organizationId], ...side]
        await run(sql`insert into ${SIDE} (${list(all.map(([c]) => id(c)))}) values (${list(all.map(([, v]) => sql`${v}`))})`, C.memberSide)
      }
    },
    async updateMember(mid, p) {
      const { host, side } = splitMember(patchFieldsOf(p))
      if (host.length === 0 && side.length === 0) return memberExists(mid)
      if (host.length > 0) {
        if (!(await update(M.table, M.expr.id, mid, host, C.members))) return false
        if (side.length > 0) await upsertSide(side, sql`${M.expr.id} = ${mid}`)
        return true
      }
      // Side fields only (a link fix-up): one statement, inserted from the host row.
      if ((await upsertSide(side, sql`${M.expr.id} = ${mid}`)) > 0) return true
      return dialect === 'mysql' && (await memberExists(mid))
    },
    async acceptInvite(mid, a) {
      const { host, side } = splitMember([
        ['userId', a.userId],
        ['email', null],
        ['emailNormalized', null],
        ['inviteTokenHash', null],
        ['inviteExpiresAt', null],
        ...FLAG_FIELDS.map((f): [DrizzleMemberField, unknown] => [f, a.flags[f]]),
      ])
      // One guarded statement (threat 49); with the invite status in the side table the guard
      // reads it there (a missing row is 'approved').
      const approved = M.side.has('inviteStatus')
        ? sql`not exists (select 1 from ${SIDE} where ${SIDE}.member_id = ${M.expr.id} and ${SIDE}.invite_status <> 'approved')`
        : sql`${M.expr.inviteStatus} = 'approved'`
      const changed = await run(
        sql`update ${M.table} set ${list(host.map(([c, v]) => sql`${id(c)} = ${v}`))}
          where ${M.expr.id} = ${mid} and ${M.expr.userId} is null and ${approved}`,
        C.members,
      )
      if (changed > 0 && side.length > 0) await upsertSide(side, sql`${M.expr.id} = ${mid}`)
      return changed > 0
    },
    async deleteMember(mid) {
      const removed = (await run(sql`delete from ${M.table} where ${M.expr.id} = ${mid}`)) > 0
      if (removed && hasSide) await run(sql`delete from ${SIDE} where member_id = ${mid}`)
      return removed
    },
    async setFlagsForOrganization(orgId, flags) {
      const given = FLAG_FIELDS.filter((f) => flags[f] !== undefined && !M.readOnly.has(f))
      if (given.length === 0) return 0
      const value = (f: keyof MemberFlags) => bool(flags[f] === true)
      const hostFlags = given.filter((f) => !M.side.has(f))
      const sideFlags = given.filter((f) => M.side.has(f))
      const differs = (fields: readonly (keyof MemberFlags)[]) =>
        sql.join(
          fields.map((f) =>
            M.side.has(f) ? sql`coalesce(${M.expr[f]}, ${bool(false)}) <> ${value(f)}` : sql`${M.expr[f]} <> ${value(f)}`,
          ),
          sql` or `,
        )
      const hostUpdate = () =>
        run(
          sql`update ${M.table} set ${list(hostFlags.map((f) => sql`${id(M.column[f])} = ${value(f)}`))}
            where ${M.expr.organizationId} = ${orgId} and (${differs(hostFlags)})`,
        )
      if (sideFlags.length === 0) return hostUpdate()
      // Flags in the side table: count the members whose flags differ (a missing side row reads
      // as all off), then write the host's columns and upsert those members' side rows.
      const counted = await rows(
        sql`select count(*) as n from ${memberSource} where ${M.expr.organizationId} = ${orgId} and (${differs(given)})`,
      )
      const changed = Number(counted[0]?.n ?? 0)
      if (changed === 0) return 0
      if (hostFlags.length > 0) await hostUpdate()
      await upsertSide(
        sideFlags.map((f) => [DEFAULT_MEMBER_COLUMNS[f], b(flags[f] === true)]),
        sql`${M.expr.organizationId} = ${orgId} and (${differs(sideFlags)})`,
        true,
      )
      return changed
    },
    async createAuthProvider(p) {
      await run(
        sql`insert into ${T.providers} (id, organization_id, provider_key, config, allow_unlinked, scim_enabled, created_at)
          values (${p.id}, ${p.organizationId}, ${p.providerKey}, ${JSON.stringify(p.config)}, ${bool(p.allowUnlinked)},
            ${bool(p.scimEnabled)}, ${p.createdAt.getTime()})`,
        C.providers,
      )
    },
    updateAuthProvider: (pid, p) =>
      update(
        T.providers,
        sql`id`,
        pid,
        [
          ['config', p.config === undefined ? undefined : JSON.stringify(p.config)],
          ['allow_unlinked', b(p.allowUnlinked)],
          ['scim_enabled', b(p.scimEnabled)],
        ],
        C.providers,
      ),
    deleteAuthProvider: async (pid) => (await run(sql`delete from ${T.providers} where id = ${pid}`)) > 0,
    updateOrganization: (orgId, p) => {
      const set: [string, unknown][] = []
      if (p.require2fa !== undefined) {
        if (O.column.require2fa === null) throw new TypeError('tables.organizations: require2fa is an expression, it cannot be written')
        set.push([O.column.require2fa, b(p.require2fa)])
      }
      if (p.defaultRole !== undefined) {
        if (O.column.defaultRole === null) throw new TypeError('tables.organizations: defaultRole is an expression, it cannot be written')
        set.push([O.column.defaultRole, p.defaultRole])
      }
      return update(O.table, O.expr.id, orgId, set, C.none)
    },
    async appendAudit(e) {
      await run(
        sql`insert into ${T.audit} (id, event, actor_user_id, organization_id, target_id, target_user_id, ip, data, created_at)
          values (${e.id}, ${e.event}, ${e.actorUserId}, ${e.organizationId}, ${e.targetId}, ${e.targetUserId}, ${e.ip},
            ${JSON.stringify(e.data)}, ${e.createdAt.getTime()})`,
      )
    },
    async createOrganizationDomain(d) {
      const verified = d.verifiedAt === null ? null : d.domain
      await run(
        sql`insert into ${T.domains} (id, organization_id, domain, verified_domain, verification_token, verified_at, created_at)
          values (${d.id}, ${d.organizationId}, ${d.domain}, ${verified}, ${d.verificationToken}, ${ms(d.verifiedAt) ?? null},
            ${d.createdAt.getTime()})`,
        C.domains,
      )
    },
    async verifyOrganizationDomain(domainId, verifiedAt) {
      // `verified_domain = domain` in the same statement: the unique index decides races.
      const changed = await run(
        sql`update ${T.domains} set verified_at = ${verifiedAt.getTime()}, verified_domain = domain where id = ${domainId}`,
        C.domains,
      )
      if (changed > 0 || dialect !== 'mysql') return changed > 0
      return (await rows(sql`select 1 as x from ${T.domains} where id = ${domainId}`)).length > 0
    },
    async deleteOrganizationDomain(domainId) {
      return (await run(sql`delete from ${T.domains} where id = ${domainId}`)) > 0
    },
    enqueueWork,
    // Token calls run on the transaction's connection (see `exec`): atomic with it.
    oneTimeTokens,
    // Pipeline states too: the engine settles the state inside the login transaction.
    pipelineStates,
  }

  async function inside<R>(state: Active, fn: (tx: StorageTx) => Promise<R>): Promise<R> {
    const value = await active.run(state, () => fn(tx))
    if (state.failed !== null) throw state.failed.error
    return value
  }

  async function transaction<R>(fn: (tx: StorageTx) => Promise<R>): Promise<R> {
    if (dialect === 'sqlite') {
      const release = await sqliteTurn()
      const state: Active = { exec: root, failed: null, locks: [] }
      try {
        await root.run(sql`begin immediate`)
        try {
          const value = await inside(state, fn)
          await root.run(sql`commit`)
          return value
        } catch (error) {
          await root.run(sql`rollback`).catch(() => {})
          throw error
        }
      } finally {
        release()
      }
    }
    if (dialect === 'postgres') {
      return db.transaction((t: unknown) => inside({ exec: direct(t), failed: null, locks: [] }, fn))
    }
    // MySQL: GET_LOCK belongs to the session, so the transaction runs on one reserved connection
    // whose locks are released right after commit or rollback.
    const pool = db.$client as { getConnection?: (...a: unknown[]) => unknown; promise?: () => unknown }
    const promisePool = (typeof pool.promise === 'function' ? pool.promise() : pool) as {
      getConnection(): Promise<{ query(text: string, values?: unknown[]): Promise<unknown>; release(): void }>
    }
    const conn = await promisePool.getConnection()
    const { drizzle } = (await import('drizzle-orm/mysql2')) as { drizzle: (client: unknown) => unknown }
    // biome-ignore lint/suspicious/noExplicitAny: a Drizzle database over the reserved connection
    const onConn = drizzle(conn) as any
    const state: Active = { exec: direct(onConn), failed: null, locks: [] }
    try {
      return await onConn.transaction(() => inside(state, fn), { isolationLevel: 'read committed' })
    } finally {
      for (const name of state.locks) await conn.query('select release_lock(?)', [name]).catch(() => {})
      conn.release()
    }
  }

  async function seedHostData(data: {
    organizations?: readonly Organization[] | undefined
    userEmails?: readonly UserEmail[] | undefined
  }) {
    await transaction(async () => {
      for (const o of data.organizations ?? []) {
        const v: Record<DrizzleOrganizationField, unknown> = {
          id: o.id,
          slug: o.slug,
          name: o.name,
          defaultRole: o.defaultRole,
          require2fa: b(o.require2fa),
        }
        const values = ORG_FIELDS.filter((f) => O.column[f] !== null).map((f) => [O.column[f] as string, v[f]] as const)
        await run(sql`insert into ${O.table} (${list(values.map(([c]) => id(c)))}) values (${list(values.map(([, x]) => sql`${x}`))})`)
      }
      for (const e of data.userEmails ?? []) await run(insertEmail(e), C.userEmails)
    })
  }

  const byKey =
    <R>(key: (r: R) => string) =>
    (x: R, y: R) =>
      key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0
  const byId = byKey((r: { id: string }) => r.id)

  return {
    ...reader,
    pipelineStates,
    oneTimeTokens,
    pendingWork,
    transaction,
    seedHostData,
    async seed(data) {
      await seedHostData({ organizations: data.organizations })
      await transaction(async (t) => {
        const emails = [...(data.userEmails ?? [])]
        for (const u of data.users ?? []) {
          await run(insertUser(u), C.users)
          const normalized = normalizeEmail(u.email)
          if (!emails.some((e) => e.userId === u.id && e.emailNormalized === normalized)) {
            emails.unshift({ userId: u.id, email: u.email, emailNormalized: normalized, isVerified: true, isPrimary: true })
          }
        }
        for (const e of emails) await run(insertEmail(e), C.userEmails)
        for (const p of data.providers ?? []) await t.createAuthProvider(p)
        for (const i of data.identities ?? []) await t.createIdentity(i)
        for (const m of data.members ?? []) await t.createMember(m)
        for (const d of data.domains ?? []) await t.createOrganizationDomain?.(d)
      })
    },
    async snapshot() {
      const emails = await rows(
        sql`select ${cols('e', ['user_id', 'email', 'email_normalized', 'is_verified', 'is_primary'])} from ${T.userEmails} e`,
      )
      const audit = await rows(sql`select * from ${T.audit}`)
      return {
        organizations: (await rows(sql`select ${orgSelect} from ${O.table}`)).map(orgFrom).sort(byId),
        users: (await rows(sql`select ${userSelect} from ${U.table}`)).map(userFrom).sort(byId),
        userEmails: emails.map(emailFrom).sort(byKey((e) => `${e.userId}\u0000${e.emailNormalized}`)),
        members: (await rows(sql`select ${memberSelect} from ${memberSource}`)).map(memberFrom).sort(byId),
        providers: (await rows(sql`select * from ${T.providers}`)).map((r) => providerFrom(r)).sort(byId),
        identities: (await rows(sql`select * from ${T.identities}`)).map((r) => identityFrom(r)).sort(byId),
        audit: audit
          .map(
            (r): AuditEntry => ({
              id: toStr(r.id),
              event: toStr(r.event) as AuditEntry['event'],
              actorUserId: orNull(r.actor_user_id, toStr),
              organizationId: toStr(r.organization_id),
              targetId: orNull(r.target_id, toStr),
              targetUserId: orNull(r.target_user_id, toStr),
              ip: orNull(r.ip, toStr),
              data: json(r.data),
              createdAt: toDate(r.created_at),
            }),
          )
          .sort(byId),
        pipelineStates: (await rows(sql`select * from ${T.states}`))
          .map((r) => ({ id: toStr(r.id), version: Number(r.version), body: toStr(r.body), expiresAt: toDate(r.expires_at) }))
          .sort(byId),
        oneTimeTokens: (await rows(sql`select * from ${T.tokens}`)).map(tokenFrom).sort(byKey((t) => t.hash)),
        pendingWork: (await rows(sql`select ${WORK_COLUMNS} from ${T.work}`)).map(workFrom).sort(byId),
        domains: (await rows(sql`select ${DOMAIN_COLS} from ${T.domains}`)).map(domainFrom).sort(byId),
      }
    },
  }
}

/** 64-bit FNV-1a of `text`, hex: a short lock name. */
function fnv(text: string): string {
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte)
    h = BigInt.asUintN(64, h * 0x100000001b3n)
  }
  return h.toString(16).padStart(16, '0')
}
