/**
 * The Kysely storage adapter: a full {@link StoragePort} over PostgreSQL (pg), PGlite, SQLite
 * (better-sqlite3) and MySQL/MariaDB (mysql2).
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { CompiledQuery, type Kysely, type QueryCreator, type RawBuilder, sql } from 'kysely'
import { normalizeEmail } from '../model/email.js'
import type { JsonObject } from '../model/identity.js'
import type {
  AuditEntry,
  AuthIdentity,
  AuthProvider,
  InviteStatus,
  Member,
  MemberFlags,
  Organization,
  User,
  UserEmail,
} from '../model/records.js'
import { type Clock, systemClock } from '../ports/clock.js'
import type {
  AuthIdentityPatch,
  LinkedIdentity,
  MemberPatch,
  MemberRecipient,
  NewRows,
  OneTimeTokenRecord,
  OneTimeTokenStore,
  PendingWork,
  PendingWorkStore,
  PipelineStateStore,
  SignUpRead,
  StateSwap,
  StoragePort,
  StorageReader,
  StorageSeedData,
  StorageSnapshot,
  StorageTx,
  StoredPipelineState,
  UserEmailMatch,
} from '../ports/storage.js'
import { type ConflictCandidate, toConflict } from './conflicts.js'
import { allDomains, domainReads, domainWrites } from './domains.js'
import { type KyselySchemaOptions, MEMBER_DEFAULT_COLUMNS, type MemberColumn, resolveSchema, type SqlDialect } from './schema.js'

// biome-ignore lint/suspicious/noExplicitAny: table names are dynamic (prefix, host mapping)
type Db = Kysely<any>
type Row = Record<string, unknown>

/**
 * Options of {@link createKyselyStorage}.
 * @group Kysely
 */
export interface KyselyStorageOptions extends KyselySchemaOptions {
  /** Clock for pipeline-state and token expiry. Use the engine's clock. @defaultValue system clock */
  readonly clock?: Clock | undefined
  /** MySQL only: seconds to wait for an identity lock (`GET_LOCK`). @defaultValue 10 */
  readonly lockTimeoutSeconds?: number | undefined
}

/**
 * Rows to insert directly (tests, fixtures, imports). Same shape as the memory adapter's seed.
 * @group Kysely
 */
export type KyselySeedData = StorageSeedData

/**
 * Every table's rows, sorted by a stable key, for before/after comparisons in tests.
 * @group Kysely
 */
export type KyselySnapshot = StorageSnapshot

/**
 * The Kysely storage: a {@link StoragePort} plus seeding and snapshot helpers.
 * @group Kysely
 */
export interface KyselyStorage extends StoragePort {
  readonly dialect: SqlDialect
  /**
   * Inserts rows in one transaction (throws `StorageConflictError` on a unique violation). Each
   * seeded user also gets its primary verified address row unless `userEmails` has a row for
   * that user and address.
   */
  seed(data: KyselySeedData): Promise<void>
  /** Reads every table (not host tables' foreign rows: all of them, sorted by id). */
  snapshot(): Promise<KyselySnapshot>
}

const EMAIL_COLS = {
  userId: 'user_id',
  email: 'email',
  emailNormalized: 'email_normalized',
  isVerified: 'is_verified',
  isPrimary: 'is_primary',
}
const PROVIDER_COLS = {
  id: 'id',
  organizationId: 'organization_id',
  providerKey: 'provider_key',
  config: 'config',
  allowUnlinked: 'allow_unlinked',
  scimEnabled: 'scim_enabled',
  createdAt: 'created_at',
}
const IDENTITY_COLS = {
  id: 'id',
  authProviderId: 'auth_provider_id',
  userId: 'user_id',
  ident: 'ident',
  data: 'data',
  lastVerified: 'last_verified',
  lastSynced: 'last_synced',
  createdAt: 'created_at',
}
/** The member fields in a fixed order; flags by field name. */
const MEMBER_FIELDS = Object.keys(MEMBER_DEFAULT_COLUMNS) as MemberColumn[]
const FLAG_FIELDS: readonly (keyof MemberFlags & MemberColumn)[] = [
  'ssoLinked',
  'ssoInvalid',
  'memberLimitRestricted',
  'idpProvisioned',
  'idpRoleRestricted',
]
const AUDIT_COLS = {
  id: 'id',
  event: 'event',
  actorUserId: 'actor_user_id',
  organizationId: 'organization_id',
  targetId: 'target_id',
  targetUserId: 'target_user_id',
  ip: 'ip',
  data: 'data',
  createdAt: 'created_at',
}

/** `alias.column as out+field` for every field. */
function cols(alias: string, map: Readonly<Record<string, string>>, out: string): string[] {
  return Object.entries(map).map(([f, c]) => `${alias}.${c} as ${out}${f}`)
}

function toBool(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 't' || v === 1n
}
function toDate(v: unknown): Date {
  if (v instanceof Date) return new Date(v.getTime())
  return new Date(Number(v))
}
function toDateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : toDate(v)
}
function toStr(v: unknown): string {
  return typeof v === 'string' ? v : String(v)
}
function toStrOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : toStr(v)
}
function toJson(v: unknown): JsonObject {
  if (typeof v === 'string') return JSON.parse(v) as JsonObject
  if (v instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(v)) as JsonObject
  return v as JsonObject
}

/** compareAndSet's argument check (a programmer error: the engine always passes a matching row). */
function checkSwap(id: string, expectedVersion: number, next: StoredPipelineState): void {
  if (next.id !== id || next.version !== expectedVersion + 1) {
    throw new TypeError('compareAndSet: next must have the same id and version expectedVersion + 1')
  }
}

/**
 * A 64-bit FNV-1a hash of the UTF-8 bytes of `text`, as a signed decimal (PostgreSQL advisory
 * lock key) and as hex (MySQL lock name). Collisions only serialize unrelated logins.
 */
function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte)
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return h
}

/**
 * Creates the Kysely storage. Run {@link ssoflowMigrations} (or `migrateSsoflow`) with the same
 * naming options first. `db` is the host's Kysely instance; ssoflow never closes it.
 *
 * - Transactions: `db.transaction()` (MySQL: `READ COMMITTED`, on one reserved connection).
 * - `lockIdentity` / `lockEmail`: PostgreSQL/PGlite `pg_advisory_xact_lock` on a 64-bit hash of
 *   (provider, external id) or of the normalized address, released at transaction end; MySQL
 *   `GET_LOCK` on the same hash, released right after commit or rollback; SQLite no lock (Kysely's
 *   SQLite driver runs one connection behind a mutex, so transactions are already serial; across
 *   processes SQLite serializes writing transactions itself: a stale writer gets `SQLITE_BUSY`).
 *   `lockIdentity` also reads the provider row held shared: PostgreSQL in the same statement
 *   (`FOR KEY SHARE` in a lateral join), MySQL `LOCK IN SHARE MODE` after `GET_LOCK`, SQLite a
 *   plain read.
 * - `lockAuthProvider`: the provider row `FOR KEY SHARE` / `FOR UPDATE` (PostgreSQL),
 *   `LOCK IN SHARE MODE` / `FOR UPDATE` (MySQL), a plain read (SQLite).
 * - Unique violations become `StorageConflictError` with the port's constraint name.
 * - Connection failures are thrown unchanged (the engine reports `STORAGE_UNAVAILABLE`).
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely'
 * import pg from 'pg'
 * import { createKyselyStorage, migrateSsoflow } from 'ssoflow/kysely'
 *
 * const db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) })
 * await migrateSsoflow(db, { dialect: 'postgres' })
 * const storage = createKyselyStorage(db, { dialect: 'postgres' })
 * ```
 * @group Kysely
 */
export function createKyselyStorage<DB>(database: Kysely<DB>, options: KyselyStorageOptions): KyselyStorage {
  const s = resolveSchema(options)
  const db = database as unknown as Db
  const clock = options.clock ?? systemClock
  const lockTimeout = options.lockTimeoutSeconds ?? 10
  if (!Number.isInteger(lockTimeout) || lockTimeout < 0) throw new TypeError('lockTimeoutSeconds must be a non-negative integer')
  const dialect = s.dialect
  // The transaction whose callback is running, if any. Calls made on the storage itself (reads,
  // pipelineStates, oneTimeTokens) from inside a transaction callback run IN that transaction:
  // on single-connection drivers (SQLite, PGlite) anything else would wait for the connection
  // the transaction holds, forever; on pools it makes such calls atomic with the transaction.
  const active = new AsyncLocalStorage<Db>()
  const cur = (): Db => active.getStore() ?? db
  const U = s.users.columns
  const O = s.organizations.columns
  // Memberships: ssoflow's table, or the host's with some fields in the side table (`mf`).
  const MT = s.member
  const MC = MT.columns
  const hasSide = MT.side.size > 0
  const inSide = (f: MemberColumn): boolean => MT.side.has(f)
  /** Where a member field is read: `m.<host column>` or `mf.<side column>`. */
  const mref = (f: MemberColumn): string => (inSide(f) ? `mf.${MEMBER_DEFAULT_COLUMNS[f]}` : `m.${MC[f]}`)
  /** Every member field as `<where> as <out><field>`. */
  const memberCols = (out: string): string[] => MEMBER_FIELDS.map((f) => `${mref(f)} as ${out}${f}`)
  /** Adds the side table's left join to a query over `<members> as m`. */
  // biome-ignore lint/suspicious/noExplicitAny: the query builder's type does not matter here
  const withSide = <Q>(qb: Q): Q => (hasSide ? (qb as any).leftJoin(`${MT.sideTable} as mf`, 'mf.member_id', `m.${MC.id}`) : qb)

  const bool = (v: boolean): boolean | number => (dialect === 'postgres' ? v : v ? 1 : 0)
  const ms = (d: Date): number => d.getTime()
  const userDate = (d: Date): Date | number => (s.users.nativeDates ? new Date(d.getTime()) : d.getTime())

  const conflicts = {
    users: [
      { constraint: 'user.username', columns: [U.username] },
      // A host's unique index on the address (SQLite names the columns; the others the index).
      ...(s.users.hostOwned ? [{ constraint: 'user.email', columns: [U.email] }] : []),
    ] as ConflictCandidate[],
    userEmails: [{ constraint: 'user_email.user_email', columns: ['user_id', 'email_normalized'], primary: true }] as ConflictCandidate[],
    providers: [{ constraint: 'auth_provider.organization', columns: ['organization_id'] }] as ConflictCandidate[],
    identities: [
      { constraint: 'auth_identity.provider_ident', columns: ['auth_provider_id', 'ident'] },
      { constraint: 'auth_identity.provider_user', columns: ['auth_provider_id', 'user_id'] },
    ] as ConflictCandidate[],
    members: [
      { constraint: 'member.organization_user', columns: [MC.organizationId, MC.userId] },
      ...(inSide('emailNormalized') ? [] : [{ constraint: 'member.organization_email', columns: [MC.organizationId, MC.emailNormalized] }]),
      ...(inSide('inviteTokenHash') ? [] : [{ constraint: 'member.invite_token', columns: [MC.inviteTokenHash] }]),
    ] as ConflictCandidate[],
    memberSide: [
      { constraint: 'member.organization_email', columns: ['organization_id', 'email_normalized'] },
      { constraint: 'member.invite_token', columns: ['invite_token_hash'] },
    ] as ConflictCandidate[],
    states: [{ constraint: 'pipeline_state.id', columns: ['id'], primary: true }] as ConflictCandidate[],
    newRows: [] as ConflictCandidate[],
    tokens: [{ constraint: 'one_time_token.hash', columns: ['hash'], primary: true }] as ConflictCandidate[],
    none: [] as ConflictCandidate[],
  }

  conflicts.newRows = [...conflicts.users, ...conflicts.userEmails, ...conflicts.identities, ...conflicts.members, ...conflicts.memberSide]

  // The first write that failed in each open transaction. PostgreSQL aborts a transaction on any
  // failed statement and answers its COMMIT with a silent ROLLBACK: a callback that caught the
  // conflict and returned would "succeed" with nothing written. So a transaction whose write
  // failed fails, with that error, even when the callback caught it (on every dialect, alike).
  const failedWrites = new WeakMap<object, { readonly error: unknown }>()

  async function write<T>(candidates: readonly ConflictCandidate[], run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      const conflict = toConflict(s, error, candidates)
      const thrown = conflict ?? error
      const trx = active.getStore()
      if (trx !== undefined && !failedWrites.has(trx)) failedWrites.set(trx, { error: thrown })
      throw thrown
    }
  }

  // The hot path's raw statements (the lock-free read, the sign-up's locks and its read): their
  // SQL text depends on this storage's schema only, so each is built and compiled once, with marker
  // arguments, and later sent again with the call's arguments in the compiled order. Building and
  // compiling a 40-70 column select costs Kysely more client time than the round trip's own work.
  const prepared = new Map<string, { readonly sql: string; readonly slots: readonly (number | { readonly value: unknown })[] }>()
  async function runPrepared(
    q: Db,
    key: string,
    args: readonly string[],
    build: (...args: string[]) => RawBuilder<unknown>,
  ): Promise<Row[]> {
    let compiled = prepared.get(key)
    if (compiled === undefined) {
      const markers = args.map((_, i) => `\u0000ssoflow-argument-${i}\u0000`)
      const c = build(...markers).compile(q)
      const slots = c.parameters.map((value) => {
        const i = markers.indexOf(value as string)
        return i >= 0 ? i : { value }
      })
      if (c.sql.includes('\u0000') || markers.some((_, i) => !slots.includes(i))) {
        throw new Error(`ssoflow: the prepared statement ${key} must take each argument as a parameter`)
      }
      compiled = { sql: c.sql, slots }
      prepared.set(key, compiled)
    }
    const parameters = compiled.slots.map((slot) => (typeof slot === 'number' ? args[slot] : slot.value))
    const result = await q.executeQuery<Row>(CompiledQuery.raw(compiled.sql, parameters))
    return result.rows as Row[]
  }

  /** Runs the callback in `trx`; a write that failed inside fails the transaction (see `failedWrites`). */
  async function inside<T>(trx: Db, fn: () => Promise<T>): Promise<T> {
    const value = await active.run(trx, fn)
    const failed = failedWrites.get(trx)
    if (failed !== undefined) throw failed.error
    return value
  }

  // ---- row decoders (rows selected with `cols(alias, map, prefix)`) ----
  const orgFrom = (r: Row, p: string): Organization => ({
    id: toStr(r[`${p}id`]),
    slug: toStr(r[`${p}slug`]),
    name: toStr(r[`${p}name`]),
    defaultRole: toStr(r[`${p}defaultRole`]),
    require2fa: toBool(r[`${p}require2fa`]),
  })
  const userFrom = (r: Row, p: string): User => ({
    id: toStr(r[`${p}id`]),
    username: toStr(r[`${p}username`]),
    email: toStr(r[`${p}email`]),
    name: toStr(r[`${p}name`]),
    isActive: toBool(r[`${p}isActive`]),
    isSuspended: toBool(r[`${p}isSuspended`]),
    hasUsablePassword: toBool(r[`${p}hasUsablePassword`]),
    has2fa: toBool(r[`${p}has2fa`]),
    createdAt: toDate(r[`${p}createdAt`]),
  })
  const emailFrom = (r: Row, p: string): UserEmail => ({
    userId: toStr(r[`${p}userId`]),
    email: toStr(r[`${p}email`]),
    emailNormalized: toStr(r[`${p}emailNormalized`]),
    isVerified: toBool(r[`${p}isVerified`]),
    isPrimary: toBool(r[`${p}isPrimary`]),
  })
  const providerFrom = (r: Row, p: string): AuthProvider => ({
    id: toStr(r[`${p}id`]),
    organizationId: toStr(r[`${p}organizationId`]),
    providerKey: toStr(r[`${p}providerKey`]),
    config: toJson(r[`${p}config`]),
    allowUnlinked: toBool(r[`${p}allowUnlinked`]),
    scimEnabled: toBool(r[`${p}scimEnabled`]),
    createdAt: toDate(r[`${p}createdAt`]),
  })
  const identityFrom = (r: Row, p: string): AuthIdentity => ({
    id: toStr(r[`${p}id`]),
    authProviderId: toStr(r[`${p}authProviderId`]),
    userId: toStr(r[`${p}userId`]),
    ident: toStr(r[`${p}ident`]),
    data: toJson(r[`${p}data`]),
    lastVerified: toDate(r[`${p}lastVerified`]),
    lastSynced: toDate(r[`${p}lastSynced`]),
    createdAt: toDate(r[`${p}createdAt`]),
  })
  const memberFrom = (r: Row, p: string): Member => ({
    id: toStr(r[`${p}id`]),
    organizationId: toStr(r[`${p}organizationId`]),
    userId: toStrOrNull(r[`${p}userId`]),
    email: toStrOrNull(r[`${p}email`]),
    emailNormalized: toStrOrNull(r[`${p}emailNormalized`]),
    role: toStr(r[`${p}role`]),
    // A side-table field of a membership the host created itself has no side row yet: null.
    flags: {
      ssoLinked: toBool(r[`${p}ssoLinked`]),
      ssoInvalid: toBool(r[`${p}ssoInvalid`]),
      memberLimitRestricted: toBool(r[`${p}memberLimitRestricted`]),
      idpProvisioned: toBool(r[`${p}idpProvisioned`]),
      idpRoleRestricted: toBool(r[`${p}idpRoleRestricted`]),
    },
    inviteTokenHash: toStrOrNull(r[`${p}inviteTokenHash`]),
    inviteExpiresAt: toDateOrNull(r[`${p}inviteExpiresAt`]),
    inviteStatus: (toStrOrNull(r[`${p}inviteStatus`]) ?? 'approved') as InviteStatus,
    createdAt: toDate(r[`${p}createdAt`]),
  })
  const auditFrom = (r: Row, p: string): AuditEntry => ({
    id: toStr(r[`${p}id`]),
    event: toStr(r[`${p}event`]) as AuditEntry['event'],
    actorUserId: toStrOrNull(r[`${p}actorUserId`]),
    organizationId: toStr(r[`${p}organizationId`]),
    targetId: toStrOrNull(r[`${p}targetId`]),
    targetUserId: toStrOrNull(r[`${p}targetUserId`]),
    ip: toStrOrNull(r[`${p}ip`]),
    data: toJson(r[`${p}data`]),
    createdAt: toDate(r[`${p}createdAt`]),
  })

  // ---- row encoders (physical column -> value) ----
  const orgRow = (o: Organization): Row => ({
    [O.id]: o.id,
    [O.slug]: o.slug,
    [O.name]: o.name,
    [O.defaultRole]: o.defaultRole,
    [O.require2fa]: bool(o.require2fa),
  })
  const userRow = (u: User): Row => ({
    [U.id]: u.id,
    [U.username]: u.username,
    [U.email]: u.email,
    [U.name]: u.name,
    [U.isActive]: bool(u.isActive),
    [U.isSuspended]: bool(u.isSuspended),
    [U.hasUsablePassword]: bool(u.hasUsablePassword),
    [U.has2fa]: bool(u.has2fa),
    [U.createdAt]: userDate(u.createdAt),
  })
  const emailRow = (e: UserEmail): Row => ({
    user_id: e.userId,
    email: e.email,
    email_normalized: e.emailNormalized,
    is_verified: bool(e.isVerified),
    is_primary: bool(e.isPrimary),
  })
  const providerRow = (p: AuthProvider): Row => ({
    id: p.id,
    organization_id: p.organizationId,
    provider_key: p.providerKey,
    config: JSON.stringify(p.config),
    allow_unlinked: bool(p.allowUnlinked),
    scim_enabled: bool(p.scimEnabled),
    created_at: ms(p.createdAt),
  })
  const identityRow = (i: AuthIdentity): Row => ({
    id: i.id,
    auth_provider_id: i.authProviderId,
    user_id: i.userId,
    ident: i.ident,
    data: JSON.stringify(i.data),
    last_verified: ms(i.lastVerified),
    last_synced: ms(i.lastSynced),
    created_at: ms(i.createdAt),
  })
  const identityPatchRow = (patch: AuthIdentityPatch): Row => {
    const set: Row = {}
    if (patch.userId !== undefined) set.user_id = patch.userId
    if (patch.ident !== undefined) set.ident = patch.ident
    if (patch.data !== undefined) set.data = JSON.stringify(patch.data)
    if (patch.lastVerified !== undefined) set.last_verified = ms(patch.lastVerified)
    if (patch.lastSynced !== undefined) set.last_synced = ms(patch.lastSynced)
    return set
  }
  /** A member field's value as stored in the host table (`'host'`) or the side table. */
  const memberValue = (v: unknown, where: 'host' | 'side'): unknown => {
    if (typeof v === 'boolean') return bool(v)
    if (v instanceof Date) return where === 'host' && MT.nativeDates ? new Date(v.getTime()) : v.getTime()
    return v
  }
  const memberFieldsOf = (m: Member): [MemberColumn, unknown][] =>
    MEMBER_FIELDS.map((f) => [f, FLAG_FIELDS.includes(f as keyof MemberFlags) ? m.flags[f as keyof MemberFlags] : m[f as keyof Member]])
  const patchFieldsOf = (patch: MemberPatch): [MemberColumn, unknown][] => {
    const out: [MemberColumn, unknown][] = []
    for (const f of ['userId', 'email', 'emailNormalized', 'role', 'inviteTokenHash', 'inviteExpiresAt', 'inviteStatus'] as const) {
      if (patch[f] !== undefined) out.push([f, patch[f]])
    }
    for (const f of FLAG_FIELDS) if (patch.flags?.[f] !== undefined) out.push([f, patch.flags[f]])
    return out
  }
  /** Splits member fields into the host row and the side row (read-only fields dropped). */
  const splitMember = (fields: readonly [MemberColumn, unknown][]): { host: Row; side: Row } => {
    const host: Row = {}
    const side: Row = {}
    for (const [f, v] of fields) {
      if (MT.readOnly.has(f)) continue
      if (inSide(f)) side[MEMBER_DEFAULT_COLUMNS[f]] = memberValue(v, 'side')
      else host[MC[f]] = memberValue(v, 'host')
    }
    return { host, side }
  }
  const workRow = (w: PendingWork): Row => ({
    id: w.id,
    kind: w.kind,
    organization_id: w.organizationId,
    work_key: w.key,
    payload: w.payload,
    after_id: w.cursor,
    attempts: w.attempts,
    available_at: ms(w.availableAt),
    claim_token: w.claimToken,
    created_at: ms(w.createdAt),
  })
  const auditRow = (a: AuditEntry): Row => ({
    id: a.id,
    event: a.event,
    actor_user_id: a.actorUserId,
    organization_id: a.organizationId,
    target_id: a.targetId,
    target_user_id: a.targetUserId,
    ip: a.ip,
    data: JSON.stringify(a.data),
    created_at: ms(a.createdAt),
  })

  /** Accepted members whose `ssoLinked` is off (a side table's missing row counts as off). */
  // biome-ignore lint/suspicious/noExplicitAny: any select over `<members> as m`
  const unlinked = <Q extends { where: (...a: any[]) => any }>(query: Q): Q =>
    query
      .where(`m.${MC.userId}`, 'is not', null)
      // biome-ignore lint/suspicious/noExplicitAny: expression builder of a dynamic table
      .where((eb: any) =>
        inSide('ssoLinked')
          ? eb.or([eb(mref('ssoLinked'), 'is', null), eb(mref('ssoLinked'), '=', bool(false))])
          : eb(mref('ssoLinked'), '=', bool(false)),
      )

  // ---- reads, on the storage or on a transaction ----
  function reader(q: Db): StorageReader {
    const selectMembers = () => withSide(q.selectFrom(`${s.members} as m`)).select(memberCols('m_'))
    const selectIdentities = () => q.selectFrom(`${s.authIdentities} as i`).select(cols('i', IDENTITY_COLS, 'i_'))
    const selectProviders = () => q.selectFrom(`${s.authProviders} as p`).select(cols('p', PROVIDER_COLS, 'p_'))
    const one = async <T>(rows: Promise<Row | undefined>, map: (r: Row) => T): Promise<T | null> => {
      const r = await rows
      return r ? map(r) : null
    }
    return {
      ...domainReads(s, q),
      getOrganization: (id) =>
        one(
          q
            .selectFrom(`${s.organizations.table} as o`)
            .select(cols('o', O, 'o_'))
            .where(`o.${O.id}`, '=', id)
            .executeTakeFirst(),
          (r) => orgFrom(r, 'o_'),
        ),
      async getOrganizationWithProvider(organizationId) {
        const row = (await q
          .selectFrom(`${s.organizations.table} as o`)
          .leftJoin(`${s.authProviders} as p`, 'p.organization_id', `o.${O.id}`)
          .select([...cols('o', O, 'o_'), ...cols('p', PROVIDER_COLS, 'p_')])
          .where(`o.${O.id}`, '=', organizationId)
          .executeTakeFirst()) as Row | undefined
        if (!row) return null
        return { organization: orgFrom(row, 'o_'), provider: row.p_id === null || row.p_id === undefined ? null : providerFrom(row, 'p_') }
      },
      getAuthProvider: (organizationId) =>
        one(selectProviders().where('p.organization_id', '=', organizationId).executeTakeFirst(), (r) => providerFrom(r, 'p_')),
      getAuthProviderById: (id) => one(selectProviders().where('p.id', '=', id).executeTakeFirst(), (r) => providerFrom(r, 'p_')),
      getIdentity: (authProviderId, ident) =>
        one(selectIdentities().where('i.auth_provider_id', '=', authProviderId).where('i.ident', '=', ident).executeTakeFirst(), (r) =>
          identityFrom(r, 'i_'),
        ),
      getIdentityById: (id) => one(selectIdentities().where('i.id', '=', id).executeTakeFirst(), (r) => identityFrom(r, 'i_')),
      getIdentityForUser: (authProviderId, userId) =>
        one(selectIdentities().where('i.auth_provider_id', '=', authProviderId).where('i.user_id', '=', userId).executeTakeFirst(), (r) =>
          identityFrom(r, 'i_'),
        ),
      async listIdentitiesForUser(userId) {
        const rows = (await selectIdentities().where('i.user_id', '=', userId).orderBy('i.id').execute()) as Row[]
        return rows.map((r) => identityFrom(r, 'i_'))
      },
      async getLinkedIdentity(authProviderId, ident, organizationId): Promise<LinkedIdentity | null> {
        const row = (await q
          .selectFrom(`${s.authIdentities} as i`)
          .innerJoin(`${s.users.table} as u`, `u.${U.id}`, 'i.user_id')
          .leftJoin(`${s.members} as m`, (join) =>
            join.onRef(`m.${MC.userId}`, '=', 'i.user_id').on(`m.${MC.organizationId}`, '=', organizationId),
          )
          .$call(withSide)
          .select([...cols('i', IDENTITY_COLS, 'i_'), ...cols('u', U, 'u_'), ...memberCols('m_')])
          .where('i.auth_provider_id', '=', authProviderId)
          .where('i.ident', '=', ident)
          .executeTakeFirst()) as Row | undefined
        if (!row) return null
        return {
          identity: identityFrom(row, 'i_'),
          user: userFrom(row, 'u_'),
          member: row.m_id === null || row.m_id === undefined ? null : memberFrom(row, 'm_'),
        }
      },
      getUser: (id) =>
        one(
          q
            .selectFrom(`${s.users.table} as u`)
            .select(cols('u', U, 'u_'))
            .where(`u.${U.id}`, '=', id)
            .executeTakeFirst(),
          (r) => userFrom(r, 'u_'),
        ),
      async findUsersByEmail(emailNormalized): Promise<readonly UserEmailMatch[]> {
        const rows = (await q
          .selectFrom(`${s.userEmails} as e`)
          .innerJoin(`${s.users.table} as u`, `u.${U.id}`, 'e.user_id')
          .select([...cols('u', U, 'u_'), ...cols('e', EMAIL_COLS, 'e_')])
          .where('e.email_normalized', '=', emailNormalized)
          .where(`u.${U.isActive}`, '=', bool(true))
          .orderBy(`u.${U.id}`)
          .execute()) as Row[]
        return rows.map((r) => ({ user: userFrom(r, 'u_'), email: emailFrom(r, 'e_') }))
      },
      getMember: (organizationId, userId) =>
        one(
          selectMembers().where(`m.${MC.organizationId}`, '=', organizationId).where(`m.${MC.userId}`, '=', userId).executeTakeFirst(),
          (r) => memberFrom(r, 'm_'),
        ),
      getMemberById: (id) => one(selectMembers().where(`m.${MC.id}`, '=', id).executeTakeFirst(), (r) => memberFrom(r, 'm_')),
      getInviteByEmail: (organizationId, emailNormalized) =>
        one(
          selectMembers()
            .where(`m.${MC.organizationId}`, '=', organizationId)
            .where(mref('emailNormalized'), '=', emailNormalized)
            .where(`m.${MC.userId}`, 'is', null)
            .executeTakeFirst(),
          (r) => memberFrom(r, 'm_'),
        ),
      async listMembers(organizationId, page) {
        let query = selectMembers().where(`m.${MC.organizationId}`, '=', organizationId)
        if (page.after !== null && page.after !== undefined) query = query.where(`m.${MC.id}`, '>', page.after)
        if (page.unlinkedOnly) query = unlinked(query)
        const rows = (await query
          .orderBy(`m.${MC.id}`)
          .limit(Math.max(0, Math.floor(page.limit)))
          .execute()) as Row[]
        return rows.map((r) => memberFrom(r, 'm_'))
      },
      async listMemberRecipients(organizationId, page): Promise<readonly MemberRecipient[]> {
        // One query per page: the members and their users (a left join; null for invites).
        let query = withSide(q.selectFrom(`${s.members} as m`).leftJoin(`${s.users.table} as u`, `u.${U.id}`, `m.${MC.userId}`))
          .select([...memberCols('m_'), ...cols('u', U, 'u_')])
          .where(`m.${MC.organizationId}`, '=', organizationId)
        if (page.after !== null && page.after !== undefined) query = query.where(`m.${MC.id}`, '>', page.after)
        if (page.unlinkedOnly) query = unlinked(query)
        const rows = (await query
          .orderBy(`m.${MC.id}`)
          .limit(Math.max(0, Math.floor(page.limit)))
          .execute()) as Row[]
        return rows.map((r) => ({
          member: memberFrom(r, 'm_'),
          user: r.u_id === null || r.u_id === undefined ? null : userFrom(r, 'u_'),
        }))
      },
      async listIdentities(authProviderId, page) {
        let query = selectIdentities().where('i.auth_provider_id', '=', authProviderId)
        if (page.after !== null && page.after !== undefined) query = query.where('i.id', '>', page.after)
        const rows = (await query
          .orderBy('i.id')
          .limit(Math.max(0, Math.floor(page.limit)))
          .execute()) as Row[]
        return rows.map((r) => identityFrom(r, 'i_'))
      },
    }
  }

  const exists = async (q: Db, table: string, idColumn: string, id: string): Promise<boolean> =>
    (await q.selectFrom(table).select(sql<number>`1`.as('x')).where(idColumn, '=', id).executeTakeFirst()) !== undefined

  async function update(
    q: Db,
    table: string,
    idColumn: string,
    id: string,
    set: Row,
    candidates: readonly ConflictCandidate[],
  ): Promise<boolean> {
    if (Object.keys(set).length === 0) return exists(q, table, idColumn, id)
    const result = await write(candidates, () => q.updateTable(table).set(set).where(idColumn, '=', id).executeTakeFirst())
    return Number(result.numUpdatedRows) > 0
  }

  async function remove(q: Db, table: string, idColumn: string, id: string): Promise<boolean> {
    const result = await q.deleteFrom(table).where(idColumn, '=', id).executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }

  /**
   * Reads one provider row with a row lock: PostgreSQL `FOR KEY SHARE` / `FOR UPDATE`, MySQL
   * `LOCK IN SHARE MODE` / `FOR UPDATE` (MariaDB has no `FOR SHARE`); SQLite a plain read (one
   * writer at a time).
   */
  async function lockProvider(q: Db, column: string, value: string, mode: 'share' | 'update'): Promise<AuthProvider | null> {
    let query = q
      .selectFrom(`${s.authProviders} as p`)
      .select(cols('p', PROVIDER_COLS, 'p_'))
      .where(column, '=', value)
    if (dialect === 'postgres') query = mode === 'update' ? query.forUpdate() : query.forKeyShare()
    else if (dialect === 'mysql') query = mode === 'update' ? query.forUpdate() : query.modifyEnd(sql`lock in share mode`)
    const row = (await query.executeTakeFirst()) as Row | undefined
    return row ? providerFrom(row, 'p_') : null
  }

  // ---- writes, inside a transaction ----
  function txFor(q: Db, locks: string[]): StorageTx {
    /**
     * Writes `side` (side-table columns) for the memberships the `filter`ed select over
     * `<members> as m` finds: `insert … select` from the host rows, updating the side rows that
     * exist (one statement; nothing is written for a membership the host table lacks). Returns
     * the driver's count of inserted or updated rows.
     */
    // biome-ignore lint/suspicious/noExplicitAny: a select over the dynamic members table
    async function upsertSide(side: Row, filter: (select: any) => any): Promise<number> {
      const columns = Object.keys(side)
      // PostgreSQL types an untyped parameter in a select list as text: cast to the column's type.
      const typed = (column: string, value: unknown) => {
        if (dialect !== 'postgres') return sql`${value}`
        const type = column.startsWith('flag_') ? 'boolean' : column === 'invite_expires_at' ? 'bigint' : 'varchar'
        return sql`cast(${value} as ${sql.raw(type)})`
      }
      const select = filter(
        q
          .selectFrom(`${s.members} as m`)
          .select([
            sql.ref(`m.${MC.id}`).as('member_id'),
            sql.ref(`m.${MC.organizationId}`).as('organization_id'),
            ...columns.map((c) => typed(c, side[c]).as(c)),
          ]),
      )
      const insert = q
        .insertInto(MT.sideTable)
        .columns(['member_id', 'organization_id', ...columns])
        .expression(select)
      const upsert =
        dialect === 'mysql' ? insert.onDuplicateKeyUpdate(side) : insert.onConflict((oc) => oc.column('member_id').doUpdateSet(side))
      const result = await write(conflicts.memberSide, () => upsert.executeTakeFirst())
      return Number(result.numInsertedOrUpdatedRows ?? 0)
    }

    /** A transaction-scoped lock on a 64-bit hash of `text` (see `lockIdentity` / `lockEmail`). */
    async function lockHash(text: string, what: string): Promise<void> {
      const key = fnv1a64(text)
      if (dialect === 'postgres') {
        const signed = BigInt.asIntN(64, key).toString()
        await sql`select pg_advisory_xact_lock(cast(${signed} as bigint))`.execute(q)
      } else if (dialect === 'mysql') {
        const name = `${s.prefix}${key.toString(16).padStart(16, '0')}`
        if (locks.includes(name)) return
        const { rows } = await sql<{ got: unknown }>`select get_lock(${name}, ${lockTimeout}) as got`.execute(q)
        if (Number(rows[0]?.got) !== 1) throw new Error(`ssoflow: timed out waiting for the ${what} lock`)
        locks.push(name)
      }
      // sqlite: transactions are serialized by the driver's single connection.
    }
    /** MySQL: `GET_LOCK` on several hashes in one statement, in order (each released after commit). */
    async function mysqlLocks(texts: readonly string[]): Promise<void> {
      const names = texts
        .map((text) => `${s.prefix}${fnv1a64(text).toString(16).padStart(16, '0')}`)
        .filter((name, i, all) => !locks.includes(name) && all.indexOf(name) === i)
      if (names.length === 0) return
      const got = sql.join(names.map((name, i) => sql`get_lock(${name}, ${lockTimeout}) as ${sql.ref(`got${i}`)}`))
      const { rows } = await sql<Row>`select ${got}`.execute(q)
      const row = rows[0] ?? {}
      let timedOut = false
      names.forEach((name, i) => {
        if (Number(row[`got${i}`]) === 1) locks.push(name)
        else timedOut = true
      })
      if (timedOut) throw new Error('ssoflow: timed out waiting for the identity or email lock')
    }
    const identityLockText = (authProviderId: string, ident: string) => `${s.prefix}${authProviderId.length}:${authProviderId}:${ident}`
    // Another key space than identities ("email:" never starts with a digit).
    const emailLockText = (emailNormalized: string) => `${s.prefix}email:${emailNormalized}`
    /**
     * PostgreSQL, one round trip: the advisory locks on `texts`, in order, and the provider row
     * under FOR KEY SHARE (a disable's FOR UPDATE and DELETE wait for it; a settings UPDATE does
     * not). The lateral join keeps the locks taken when the provider row does not exist.
     */
    async function pgLockWithProvider(texts: readonly string[], authProviderId: string): Promise<AuthProvider | null> {
      const keys = texts.map((text) => BigInt.asIntN(64, fnv1a64(text)).toString())
      const rows = await runPrepared(q, `lockWithProvider${keys.length}`, [...keys, authProviderId], (...args) => {
        const locks = sql.join(keys.map((_, i) => sql`pg_advisory_xact_lock(cast(${args[i]} as bigint)) as ${sql.ref(`locked${i}`)}`))
        const columns = sql.join(Object.entries(PROVIDER_COLS).map(([f, c]) => sql`p.${sql.ref(c)} as ${sql.ref(`p_${f}`)}`))
        return sql`select ${locks}, ${columns}
            from (values (1)) as one left join lateral (
              select * from ${sql.table(s.authProviders)} where id = ${args[keys.length]} for key share
            ) as p on true`
      })
      const row = rows[0]
      return row && row.p_id !== null && row.p_id !== undefined ? providerFrom(row, 'p_') : null
    }
    const ref = (alias: string, map: Readonly<Record<string, string>>, out: string) =>
      Object.entries(map).map(([f, c]) => sql`${sql.ref(`${alias}.${c}`)} as ${sql.ref(`${out}${f}`)}`)
    const present = (v: unknown) => v !== null && v !== undefined
    async function readSignUp(authProviderId: string, ident: string, organizationId: string, emailNormalized: string): Promise<SignUpRead> {
      // One statement: the identity + user + membership join, the active users with this
      // address (one row each), and the organization's pending invite for it.
      const rows = await runPrepared(
        q,
        'readSignUp',
        [authProviderId, ident, organizationId, emailNormalized],
        (provider, id, org, email) => {
          const columns = sql.join([
            ...ref('i', IDENTITY_COLS, 'i_'),
            ...ref('u', U, 'u_'),
            ...MEMBER_FIELDS.map((f) => sql`${sql.ref(`m.${MC[f]}`)} as ${sql.ref(`m_${f}`)}`),
            ...ref('eu', U, 'eu_'),
            ...ref('e', EMAIL_COLS, 'e_'),
            ...MEMBER_FIELDS.map((f) => sql`${sql.ref(`v.${MC[f]}`)} as ${sql.ref(`v_${f}`)}`),
          ])
          const from = dialect === 'postgres' ? sql`from (values (1)) as one` : sql`from (select 1 as one) as one`
          return sql`select ${columns}
        ${from}
        left join (${sql.table(s.authIdentities)} as i inner join ${sql.table(s.users.table)} as u on ${sql.ref(`u.${U.id}`)} = i.user_id)
          on i.auth_provider_id = ${provider} and i.ident = ${id}
        left join ${sql.table(s.members)} as m on ${sql.ref(`m.${MC.userId}`)} = i.user_id and ${sql.ref(`m.${MC.organizationId}`)} = ${org}
        left join (${sql.table(s.userEmails)} as e inner join ${sql.table(s.users.table)} as eu on ${sql.ref(`eu.${U.id}`)} = e.user_id)
          on e.email_normalized = ${email} and ${sql.ref(`eu.${U.isActive}`)} = ${bool(true)}
        left join ${sql.table(s.members)} as v
          on ${sql.ref(`v.${MC.organizationId}`)} = ${org} and ${sql.ref(`v.${MC.emailNormalized}`)} = ${email}
          and ${sql.ref(`v.${MC.userId}`)} is null
        order by ${sql.ref(`eu.${U.id}`)}`
        },
      )
      const first = rows[0]
      return {
        linked:
          first && present(first.i_id)
            ? {
                identity: identityFrom(first, 'i_'),
                user: userFrom(first, 'u_'),
                member: present(first.m_id) ? memberFrom(first, 'm_') : null,
              }
            : null,
        emailMatches: rows.filter((r) => present(r.eu_id)).map((r) => ({ user: userFrom(r, 'eu_'), email: emailFrom(r, 'e_') })),
        invite: first && present(first.v_id) ? memberFrom(first, 'v_') : null,
      }
    }
    /** createRows / createRowsAndSettle on PostgreSQL: see there. Returns whether the state swapped (true without one). */
    async function createRowsPg(rows: NewRows, swap: StateSwap | null): Promise<boolean> {
      if (swap) checkSwap(swap.id, swap.expectedVersion, swap.next)
      const inserts: [string, Row[]][] = [
        [s.users.table, rows.users.map((r) => userRow(r.user))],
        [s.userEmails, rows.users.map((r) => emailRow(r.email))],
        [s.authIdentities, rows.identities.map(identityRow)],
        [s.members, rows.members.map((m) => splitMember(memberFieldsOf(m)).host)],
        [
          MT.sideTable,
          hasSide
            ? rows.members.map((m) => ({
                member_id: m.id,
                organization_id: m.organizationId,
                ...splitMember(memberFieldsOf(m)).side,
              }))
            : [],
        ],
        [s.auditLog, rows.audit.map(auditRow)],
      ]
      const parts = inserts.filter(([, values]) => values.length > 0)
      const last = swap ? undefined : parts.pop()
      if (!swap && !last) return true
      // biome-ignore lint/suspicious/noExplicitAny: table names are dynamic (prefix, host mapping)
      let creator: QueryCreator<any> = q
      parts.forEach(([table, values], i) => {
        creator = creator.with(`w${i}`, (c) => c.insertInto(table).values(values))
      })
      if (last) {
        await write(conflicts.newRows, () => creator.insertInto(last[0]).values(last[1]).execute())
        return true
      }
      const next = (swap as StateSwap).next
      const settled = creator.with('settled', (c) =>
        c
          .updateTable(s.pipelineStates)
          .set({ version: next.version, body: next.body, expires_at: ms(next.expiresAt) })
          .where('id', '=', next.id)
          .where('version', '=', (swap as StateSwap).expectedVersion)
          .where('expires_at', '>', ms(clock.now()))
          .returning('id'),
      )
      const row = (await write(conflicts.newRows, () =>
        settled.selectFrom('settled').select(sql<string>`count(*)`.as('n')).executeTakeFirst(),
      )) as { n: unknown } | undefined
      return Number(row?.n) === 1
    }
    return {
      ...reader(q),
      ...domainWrites(s, q, write),
      async lockIdentity(authProviderId, ident) {
        const text = identityLockText(authProviderId, ident)
        if (dialect === 'postgres') return pgLockWithProvider([text], authProviderId)
        await lockHash(text, 'identity')
        // MySQL: a second statement; SQLite: transactions are serial, a read suffices.
        return lockProvider(q, 'p.id', authProviderId, 'share')
      },
      async lockIdentityAndEmail(authProviderId, ident, emailNormalized) {
        const texts = [identityLockText(authProviderId, ident), emailLockText(emailNormalized)]
        if (dialect === 'postgres') return pgLockWithProvider(texts, authProviderId)
        if (dialect === 'mysql') await mysqlLocks(texts)
        // MySQL: the provider row's locking read after the locks; SQLite: transactions are
        // serial, a read suffices.
        return lockProvider(q, 'p.id', authProviderId, 'share')
      },
      // Not with a host membership table that keeps fields in the side table (the engine then reads
      // the identity, the address and the invite apart).
      ...(hasSide ? {} : { readSignUp }),
      async readLinkedIdentity(authProviderId, ident, organizationId) {
        if (dialect === 'mysql') {
          // The provider row's locking read, then the join (a disable waits for the shared row
          // lock before it deletes identities).
          const provider = await lockProvider(q, 'p.id', authProviderId, 'share')
          return { provider, linked: await reader(q).getLinkedIdentity(authProviderId, ident, organizationId) }
        }
        // One statement: the provider row (PostgreSQL: under FOR KEY SHARE, as lockIdentity holds
        // it, without the advisory lock; SQLite: transactions are serial, a read suffices) and
        // the identity + user + membership join.
        const rows = await runPrepared(q, 'readLinkedIdentity', [authProviderId, ident, organizationId], (provider, id, org) => {
          const columns = sql.join([
            ...ref('p', PROVIDER_COLS, 'p_'),
            ...ref('i', IDENTITY_COLS, 'i_'),
            ...ref('u', U, 'u_'),
            ...MEMBER_FIELDS.map((f) => sql`${sql.ref(mref(f))} as ${sql.ref(`m_${f}`)}`),
          ])
          const providerJoin =
            dialect === 'postgres'
              ? sql`from (values (1)) as one
          left join lateral (
            select * from ${sql.table(s.authProviders)} where id = ${provider} for key share
          ) as p on true`
              : sql`from (select 1 as one) as one
          left join ${sql.table(s.authProviders)} as p on p.id = ${provider}`
          return sql`select ${columns}
          ${providerJoin}
          left join (${sql.table(s.authIdentities)} as i inner join ${sql.table(s.users.table)} as u on ${sql.ref(`u.${U.id}`)} = i.user_id)
            on i.auth_provider_id = ${provider} and i.ident = ${id}
          left join ${sql.table(s.members)} as m on ${sql.ref(`m.${MC.userId}`)} = i.user_id and ${sql.ref(`m.${MC.organizationId}`)} = ${org}
          ${hasSide ? sql`left join ${sql.table(MT.sideTable)} as mf on mf.member_id = ${sql.ref(`m.${MC.id}`)}` : sql``}`
        })
        const row = rows[0]
        if (!row) return { provider: null, linked: null }
        return {
          provider: present(row.p_id) ? providerFrom(row, 'p_') : null,
          linked: present(row.i_id)
            ? { identity: identityFrom(row, 'i_'), user: userFrom(row, 'u_'), member: present(row.m_id) ? memberFrom(row, 'm_') : null }
            : null,
        }
      },
      lockAuthProvider: (organizationId, mode) => lockProvider(q, 'p.organization_id', organizationId, mode),
      lockEmail: (emailNormalized) => lockHash(emailLockText(emailNormalized), 'email'),
      async createUser(user, primaryEmail) {
        await write(conflicts.users, () => q.insertInto(s.users.table).values(userRow(user)).execute())
        await write(conflicts.userEmails, () => q.insertInto(s.userEmails).values(emailRow(primaryEmail)).execute())
      },
      async createIdentity(identity) {
        await write(conflicts.identities, () => q.insertInto(s.authIdentities).values(identityRow(identity)).execute())
      },
      // PostgreSQL: one statement, every insert but the last in a data-modifying CTE (no foreign
      // keys between these tables; a unique violation anywhere fails the whole statement). With a
      // state to settle, every insert is a CTE and the statement's own part is the state's
      // compare-and-set (an update guarded as pipelineStates.compareAndSet's), counted.
      ...(dialect === 'postgres'
        ? {
            createRows: async (rows: NewRows) => {
              await createRowsPg(rows, null)
            },
            createRowsAndSettle: (rows: NewRows, swap: StateSwap) => createRowsPg(rows, swap),
          }
        : {}),
      updateIdentity(id, patch) {
        return update(q, s.authIdentities, 'id', id, identityPatchRow(patch), conflicts.identities)
      },
      async updateIdentityIfUnchanged(expected, patch) {
        const set = identityPatchRow(patch)
        if (Object.keys(set).length === 0) return false
        // One guarded statement: a concurrent writer holds the row until it commits, then the
        // condition is checked against its committed row (MySQL counts changed rows: a patch
        // that changes nothing reports false, and the engine takes the locked path).
        const result = await write(conflicts.identities, () =>
          q
            .updateTable(s.authIdentities)
            .set(set)
            .where('id', '=', expected.id)
            .where('user_id', '=', expected.userId)
            .where('ident', '=', expected.ident)
            .where('data', '=', JSON.stringify(expected.data))
            .where('last_verified', '=', ms(expected.lastVerified))
            .where('last_synced', '=', ms(expected.lastSynced))
            .executeTakeFirst(),
        )
        return Number(result.numUpdatedRows) === 1
      },
      deleteIdentity: (id) => remove(q, s.authIdentities, 'id', id),
      async deleteIdentitiesForUser(authProviderId, userId, exceptId) {
        let query = q.deleteFrom(s.authIdentities).where('auth_provider_id', '=', authProviderId).where('user_id', '=', userId)
        if (exceptId !== null) query = query.where('id', '<>', exceptId)
        return Number((await query.executeTakeFirst()).numDeletedRows)
      },
      async deleteIdentitiesForProvider(authProviderId) {
        return Number(
          (await q.deleteFrom(s.authIdentities).where('auth_provider_id', '=', authProviderId).executeTakeFirst()).numDeletedRows,
        )
      },
      async createMember(member) {
        const { host, side } = splitMember(memberFieldsOf(member))
        await write(conflicts.members, () => q.insertInto(s.members).values(host).execute())
        if (hasSide) {
          const row = { member_id: member.id, organization_id: member.organizationId, ...side }
          await write(conflicts.memberSide, () => q.insertInto(MT.sideTable).values(row).execute())
        }
      },
      async updateMember(id, patch) {
        const { host, side } = splitMember(patchFieldsOf(patch))
        const toSide = Object.keys(side).length > 0
        if (Object.keys(host).length === 0 && !toSide) return exists(q, s.members, MC.id, id)
        if (Object.keys(host).length > 0) {
          if (!(await update(q, s.members, MC.id, id, host, conflicts.members))) return false
          if (toSide) await upsertSide(side, (select) => select.where(`m.${MC.id}`, '=', id))
          return true
        }
        // Side fields only (a link fix-up): one statement, inserted from the host row.
        const written = await upsertSide(side, (select) => select.where(`m.${MC.id}`, '=', id))
        return written > 0 || (dialect === 'mysql' && (await exists(q, s.members, MC.id, id)))
      },
      async acceptInvite(id, acceptance) {
        const { host, side } = splitMember([
          ['userId', acceptance.userId],
          ['email', null],
          ['emailNormalized', null],
          ['inviteTokenHash', null],
          ['inviteExpiresAt', null],
          ...FLAG_FIELDS.map((f): [MemberColumn, unknown] => [f, acceptance.flags[f]]),
        ])
        // One guarded statement (threat 49): a concurrent acceptance blocks on the row lock, then
        // re-checks the condition against the committed row and updates nothing. With the invite
        // status in the side table the guard reads it there (a missing row is 'approved').
        const result = await write(conflicts.members, () =>
          q
            .updateTable(s.members)
            .set(host)
            .where(MC.id, '=', id)
            .where(MC.userId, 'is', null)
            .where((eb) =>
              inSide('inviteStatus')
                ? eb.not(
                    eb.exists(
                      eb
                        .selectFrom(`${MT.sideTable} as mf`)
                        .select(sql<number>`1`.as('x'))
                        .whereRef('mf.member_id', '=', `${s.members}.${MC.id}`)
                        .where('mf.invite_status', '<>', 'approved'),
                    ),
                  )
                : eb(MC.inviteStatus, '=', 'approved'),
            )
            .executeTakeFirst(),
        )
        const accepted = Number(result.numUpdatedRows) === 1
        if (accepted && Object.keys(side).length > 0) await upsertSide(side, (select) => select.where(`m.${MC.id}`, '=', id))
        return accepted
      },
      async deleteMember(id) {
        const removed = await remove(q, s.members, MC.id, id)
        if (removed && hasSide) await q.deleteFrom(MT.sideTable).where('member_id', '=', id).execute()
        return removed
      },
      async setFlagsForOrganization(organizationId, flags) {
        const given = FLAG_FIELDS.filter((f) => flags[f] !== undefined && !MT.readOnly.has(f))
        if (given.length === 0) return 0
        const value = (f: keyof MemberFlags) => bool(flags[f] === true)
        const hostFlags = given.filter((f) => !inSide(f))
        const sideFlags = given.filter((f) => inSide(f))
        const hostSet: Row = {}
        for (const f of hostFlags) hostSet[MC[f]] = value(f)
        if (sideFlags.length === 0) {
          const result = await q
            .updateTable(s.members)
            .set(hostSet)
            .where(MC.organizationId, '=', organizationId)
            .where((eb) => eb.or(hostFlags.map((f) => eb(MC[f], '<>', value(f)))))
            .executeTakeFirst()
          return Number(result.numUpdatedRows)
        }
        // Flags in the side table: count the members whose flags differ (a missing side row reads
        // as all off), then write the host's columns and upsert the side rows of those members.
        // biome-ignore lint/suspicious/noExplicitAny: expression builder of a dynamic table
        const differs = (fields: readonly (keyof MemberFlags)[]) => (eb: any) =>
          eb.or(
            fields.map((f) => (inSide(f) ? eb(eb.fn.coalesce(mref(f), eb.val(bool(false))), '<>', value(f)) : eb(mref(f), '<>', value(f)))),
          )
        const counted = (await withSide(q.selectFrom(`${s.members} as m`))
          .select(sql<number>`count(*)`.as('n'))
          .where(`m.${MC.organizationId}`, '=', organizationId)
          .where(differs(given))
          .executeTakeFirst()) as Row | undefined
        const changed = Number(counted?.n ?? 0)
        if (changed === 0) return 0
        if (hostFlags.length > 0) {
          await q
            .updateTable(s.members)
            .set(hostSet)
            .where(MC.organizationId, '=', organizationId)
            .where((eb) => eb.or(hostFlags.map((f) => eb(MC[f], '<>', value(f)))))
            .execute()
        }
        const side: Row = {}
        for (const f of sideFlags) side[MEMBER_DEFAULT_COLUMNS[f]] = value(f)
        await upsertSide(side, (select) => withSide(select).where(`m.${MC.organizationId}`, '=', organizationId).where(differs(sideFlags)))
        return changed
      },
      async createAuthProvider(provider) {
        await write(conflicts.providers, () => q.insertInto(s.authProviders).values(providerRow(provider)).execute())
      },
      updateAuthProvider(id, patch) {
        const set: Row = {}
        if (patch.config !== undefined) set.config = JSON.stringify(patch.config)
        if (patch.allowUnlinked !== undefined) set.allow_unlinked = bool(patch.allowUnlinked)
        if (patch.scimEnabled !== undefined) set.scim_enabled = bool(patch.scimEnabled)
        return update(q, s.authProviders, 'id', id, set, conflicts.providers)
      },
      deleteAuthProvider: (id) => remove(q, s.authProviders, 'id', id),
      updateOrganization(id, patch) {
        const set: Row = {}
        if (patch.require2fa !== undefined) set[O.require2fa] = bool(patch.require2fa)
        if (patch.defaultRole !== undefined) set[O.defaultRole] = patch.defaultRole
        return update(q, s.organizations.table, O.id, id, set, conflicts.none)
      },
      async appendAudit(entry) {
        await q.insertInto(s.auditLog).values(auditRow(entry)).execute()
      },
      async enqueueWork(work) {
        const insert = q.insertInto(s.pendingWork).values(workRow(work))
        if (dialect !== 'mysql') {
          // A concurrent transaction inserting the same key makes this one wait, then do nothing.
          const result = await insert.onConflict((oc) => oc.column('work_key').doNothing()).executeTakeFirst()
          return Number(result.numInsertedOrUpdatedRows ?? 0) > 0
        }
        // MySQL: a duplicate key fails the statement only (the transaction goes on).
        try {
          await insert.execute()
          return true
        } catch (error) {
          if ((error as { errno?: unknown }).errno === 1062) return false
          throw error
        }
      },
      // The token and state stores run in the active transaction (see `cur`): atomic with it.
      oneTimeTokens,
      pipelineStates,
    }
  }

  async function runTransaction<T>(fn: (q: Db, locks: string[]) => Promise<T>): Promise<T> {
    if (dialect !== 'mysql') return db.transaction().execute((trx) => inside(trx, () => fn(trx, [])))
    // MySQL: GET_LOCK is held by the session, so the transaction runs on one reserved connection
    // and its locks are released on that connection right after commit or rollback.
    return db.connection().execute(async (conn) => {
      const locks: string[] = []
      try {
        return await conn
          .transaction()
          .setIsolationLevel('read committed')
          .execute((trx) => inside(trx, () => fn(trx, locks)))
      } finally {
        if (locks.length > 0) {
          try {
            // One statement for all of them.
            await sql`select ${sql.join(locks.map((name) => sql`release_lock(${name})`))}`.execute(conn)
          } catch {
            // The connection is gone: the server released the session's locks.
          }
        }
      }
    })
  }

  const transaction = <T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> => runTransaction((q, locks) => fn(txFor(q, locks)))

  // ---- pipeline states and one-time tokens ----
  const stateFrom = (r: Row): StoredPipelineState => ({
    id: toStr(r.id),
    version: Number(r.version),
    body: toStr(r.body),
    expiresAt: toDate(r.expires_at),
  })
  const tokenFrom = (r: Row): OneTimeTokenRecord => ({
    hash: toStr(r.hash),
    purpose: toStr(r.purpose),
    payload: toStr(r.payload),
    expiresAt: toDate(r.expires_at),
  })

  /**
   * Deletes at most `limit` rows whose `expires_at <= now`, oldest first, in one statement:
   * `delete … order by expires_at limit n` on MySQL, `delete … where key in (select key … limit n)`
   * elsewhere (both use the `expires_at` index).
   */
  async function deleteExpiredBatch(table: string, key: string, now: Date, limit: number): Promise<number> {
    const n = Math.max(0, Math.floor(limit))
    if (n === 0) return 0
    const q = cur()
    if (dialect === 'mysql') {
      const result = await q.deleteFrom(table).where('expires_at', '<=', ms(now)).orderBy('expires_at').limit(n).executeTakeFirst()
      return Number(result.numDeletedRows)
    }
    const doomed = q.selectFrom(table).select(key).where('expires_at', '<=', ms(now)).orderBy('expires_at').limit(n)
    const result = await q.deleteFrom(table).where(key, 'in', doomed).executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  const pipelineStates: PipelineStateStore = {
    async create(state) {
      await write(conflicts.states, () =>
        cur()
          .insertInto(s.pipelineStates)
          .values({ id: state.id, version: state.version, body: state.body, expires_at: ms(state.expiresAt) })
          .execute(),
      )
    },
    async load(id) {
      const row = (await cur()
        .selectFrom(s.pipelineStates)
        .select(['id', 'version', 'body', 'expires_at'])
        .where('id', '=', id)
        .where('expires_at', '>', ms(clock.now()))
        .executeTakeFirst()) as Row | undefined
      return row ? stateFrom(row) : null
    },
    async compareAndSet(id, expectedVersion, next) {
      checkSwap(id, expectedVersion, next)
      const result = await cur()
        .updateTable(s.pipelineStates)
        .set({ version: next.version, body: next.body, expires_at: ms(next.expiresAt) })
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .where('expires_at', '>', ms(clock.now()))
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
    async delete(id) {
      await cur().deleteFrom(s.pipelineStates).where('id', '=', id).execute()
    },
    async deleteExpired(now, limit) {
      if (limit === undefined) {
        const result = await cur().deleteFrom(s.pipelineStates).where('expires_at', '<=', ms(now)).executeTakeFirst()
        return Number(result.numDeletedRows)
      }
      return deleteExpiredBatch(s.pipelineStates, 'id', now, limit)
    },
  }

  const oneTimeTokens: OneTimeTokenStore = {
    async create(token) {
      await write(conflicts.tokens, () =>
        cur()
          .insertInto(s.oneTimeTokens)
          .values({ hash: token.hash, purpose: token.purpose, payload: token.payload, expires_at: ms(token.expiresAt) })
          .execute(),
      )
    },
    async consume(hash, purpose, now) {
      const live = (q: Db) =>
        q.deleteFrom(s.oneTimeTokens).where('hash', '=', hash).where('purpose', '=', purpose).where('expires_at', '>', ms(now))
      if (dialect !== 'mysql') {
        const row = (await live(cur()).returning(['hash', 'purpose', 'payload', 'expires_at']).executeTakeFirst()) as Row | undefined
        return row ? tokenFrom(row) : null
      }
      // MySQL has no DELETE ... RETURNING: read, then delete conditionally; only the caller whose
      // DELETE removed the row gets it.
      const row = await oneTimeTokens.peek(hash, purpose, now)
      if (!row) return null
      const result = await live(cur()).executeTakeFirst()
      return Number(result.numDeletedRows) === 1 ? row : null
    },
    deleteExpired: (now, limit) => deleteExpiredBatch(s.oneTimeTokens, 'hash', now, limit),
    async peek(hash, purpose, now) {
      const row = (await cur()
        .selectFrom(s.oneTimeTokens)
        .select(['hash', 'purpose', 'payload', 'expires_at'])
        .where('hash', '=', hash)
        .where('purpose', '=', purpose)
        .where('expires_at', '>', ms(now))
        .executeTakeFirst()) as Row | undefined
      return row ? tokenFrom(row) : null
    },
  }

  // ---- the outbox's worker side ----
  const WORK_COLUMNS = [
    'id',
    'kind',
    'organization_id',
    'work_key',
    'payload',
    'after_id',
    'attempts',
    'available_at',
    'claim_token',
    'created_at',
  ] as const
  const workFrom = (r: Row): PendingWork => ({
    id: toStr(r.id),
    kind: toStr(r.kind),
    organizationId: toStr(r.organization_id),
    key: toStr(r.work_key),
    payload: toStr(r.payload),
    cursor: r.after_id === null || r.after_id === undefined ? null : toStr(r.after_id),
    attempts: Number(r.attempts),
    availableAt: toDate(r.available_at),
    claimToken: r.claim_token === null || r.claim_token === undefined ? null : toStr(r.claim_token),
    createdAt: toDate(r.created_at),
  })

  const pendingWork: PendingWorkStore = {
    async claim(now, leaseUntil, claimToken) {
      // One short transaction: the oldest available row, skipping rows another worker is
      // claiming this instant (FOR UPDATE SKIP LOCKED on PostgreSQL and MariaDB / MySQL 8;
      // SQLite and PGlite run one transaction at a time), then the lease written on it.
      return runTransaction(async (q) => {
        let query = q
          .selectFrom(s.pendingWork)
          .select([...WORK_COLUMNS])
          .where('available_at', '<=', ms(now))
          .orderBy('available_at')
          .orderBy('id')
          .limit(1)
        if (dialect !== 'sqlite') query = query.forUpdate().skipLocked()
        const row = (await query.executeTakeFirst()) as Row | undefined
        if (!row) return null
        await q
          .updateTable(s.pendingWork)
          .set({ claim_token: claimToken, available_at: ms(leaseUntil) })
          .where('id', '=', row.id as string)
          .execute()
        return workFrom({ ...row, claim_token: claimToken, available_at: ms(leaseUntil) })
      })
    },
    async advance(id, claimToken, progress) {
      const result = await db
        .updateTable(s.pendingWork)
        .set({ after_id: progress.cursor, attempts: progress.attempts, available_at: ms(progress.availableAt) })
        .where('id', '=', id)
        .where('claim_token', '=', claimToken)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },
    async complete(id, claimToken) {
      const result = await db.deleteFrom(s.pendingWork).where('id', '=', id).where('claim_token', '=', claimToken).executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }

  // ---- seeding and snapshots (tests, fixtures) ----
  async function seed(data: KyselySeedData): Promise<void> {
    await runTransaction(async (q, locks) => {
      const tx = txFor(q, locks)
      for (const o of data.organizations ?? []) await q.insertInto(s.organizations.table).values(orgRow(o)).execute()
      const emails = [...(data.userEmails ?? [])]
      for (const u of data.users ?? []) {
        await write(conflicts.users, () => q.insertInto(s.users.table).values(userRow(u)).execute())
        const normalized = normalizeEmail(u.email)
        if (!emails.some((e) => e.userId === u.id && e.emailNormalized === normalized)) {
          emails.unshift({ userId: u.id, email: u.email, emailNormalized: normalized, isVerified: true, isPrimary: true })
        }
      }
      for (const e of emails) await write(conflicts.userEmails, () => q.insertInto(s.userEmails).values(emailRow(e)).execute())
      for (const p of data.providers ?? []) await tx.createAuthProvider(p)
      for (const i of data.identities ?? []) await tx.createIdentity(i)
      for (const m of data.members ?? []) await tx.createMember(m)
      for (const d of data.domains ?? []) await tx.createOrganizationDomain?.(d)
    })
  }

  async function snapshot(): Promise<KyselySnapshot> {
    const all = async (table: string, alias: string, map: Readonly<Record<string, string>>): Promise<Row[]> =>
      (await db
        .selectFrom(`${table} as ${alias}`)
        .select(cols(alias, map, `${alias}_`))
        .execute()) as Row[]
    const byKey =
      <T>(key: (t: T) => string) =>
      (a: T, b: T) =>
        key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0
    const [orgs, users, emails, members, providers, identities, audit, states, tokens, work, domains] = await Promise.all([
      all(s.organizations.table, 'o', O),
      all(s.users.table, 'u', U),
      all(s.userEmails, 'e', EMAIL_COLS),
      withSide(db.selectFrom(`${s.members} as m`))
        .select(memberCols('m_'))
        .execute() as Promise<Row[]>,
      all(s.authProviders, 'p', PROVIDER_COLS),
      all(s.authIdentities, 'i', IDENTITY_COLS),
      all(s.auditLog, 'a', AUDIT_COLS),
      db.selectFrom(s.pipelineStates).select(['id', 'version', 'body', 'expires_at']).execute() as Promise<Row[]>,
      db.selectFrom(s.oneTimeTokens).select(['hash', 'purpose', 'payload', 'expires_at']).execute() as Promise<Row[]>,
      db
        .selectFrom(s.pendingWork)
        .select([...WORK_COLUMNS])
        .execute() as Promise<Row[]>,
      allDomains(s, db),
    ])
    const id = (x: { id: string }) => x.id
    return {
      organizations: orgs.map((r) => orgFrom(r, 'o_')).sort(byKey(id)),
      users: users.map((r) => userFrom(r, 'u_')).sort(byKey(id)),
      userEmails: emails.map((r) => emailFrom(r, 'e_')).sort(byKey((e) => `${e.userId}\u0000${e.emailNormalized}`)),
      members: members.map((r) => memberFrom(r, 'm_')).sort(byKey(id)),
      providers: providers.map((r) => providerFrom(r, 'p_')).sort(byKey(id)),
      identities: identities.map((r) => identityFrom(r, 'i_')).sort(byKey(id)),
      audit: audit.map((r) => auditFrom(r, 'a_')).sort(byKey(id)),
      pipelineStates: states.map(stateFrom).sort(byKey(id)),
      oneTimeTokens: tokens.map(tokenFrom).sort(byKey((t) => t.hash)),
      pendingWork: work.map(workFrom).sort(byKey(id)),
      domains,
    }
  }

  // Top-level reads run in the caller's transaction when called from inside one (see `cur`).
  const base = {} as Record<keyof StorageReader, (...args: never[]) => unknown>
  for (const key of Object.keys(reader(db)) as (keyof StorageReader)[]) {
    base[key] = (...args: never[]) => (reader(cur())[key] as (...a: never[]) => unknown)(...args)
  }
  return {
    ...(base as unknown as StorageReader),
    dialect,
    transaction,
    pipelineStates,
    oneTimeTokens,
    pendingWork,
    seed,
    snapshot,
  }
}
