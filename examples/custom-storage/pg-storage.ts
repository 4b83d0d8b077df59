/**
 * A complete StoragePort over plain `pg` (node-postgres): the worked example of
 * docs/custom-storage.md. It follows every rule of the guide and passes the storage contract
 * suite from `ssoflow/testing` (test/examples/pg-storage.test.ts, on PostgreSQL when DATABASE_URL
 * is set, on PGlite otherwise). Copy it and adapt the SQL to your tables.
 *
 * What it shows, rule by rule:
 * - one connection per transaction, and every call made from inside `transaction(fn)` (through
 *   the handle OR through the storage itself) runs on it (`AsyncLocalStorage`);
 * - unique violations become `StorageConflictError` by constraint name (`CONSTRAINTS`), the host's
 *   own unique index on the users' address included (`user.email`);
 * - a write that failed inside a transaction fails the transaction (PostgreSQL would turn its
 *   COMMIT into a silent ROLLBACK);
 * - the identity lock is an advisory transaction lock; the provider row is read `FOR KEY SHARE`
 *   / `FOR UPDATE`; the email lock is another advisory lock;
 * - exact comparisons (`collate "C"`), millisecond dates, JSON in `jsonb` (the engine never sends
 *   U+0000 or lone surrogates: they are refused at the boundary).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import {
  type AuthIdentity,
  type AuthProvider,
  type Clock,
  type Member,
  type MemberFlags,
  type OneTimeTokenStore,
  type Organization,
  type PipelineStateStore,
  StorageConflictError,
  type StoragePort,
  type StorageReader,
  type StorageTx,
  systemClock,
  type UniqueConstraint,
  type User,
  type UserEmail,
} from '../../src/ports/index.js'

/** What the adapter needs of a `pg.PoolClient` (PGlite can be wrapped to fit, see the test). */
export interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>
}
/** What the adapter needs of a `pg.Pool`: plain queries, and a dedicated client per transaction. */
export interface PgPool extends PgClient {
  connect(): Promise<PgClient & { release(): void }>
}

/** The tables, in the current schema. Run once (or put it in your migrations). */
export const PG_STORAGE_SCHEMA = `
create table users (
  id text collate "C" primary key, username text not null constraint users_username_key unique, email text not null,
  name text not null, is_active boolean not null, is_suspended boolean not null, has_usable_password boolean not null,
  has_2fa boolean not null, created_at timestamptz(3) not null);
create table user_emails (
  user_id text collate "C" not null, email text not null, email_normalized text collate "C" not null,
  is_verified boolean not null, is_primary boolean not null, constraint user_emails_pkey primary key (user_id, email_normalized));
create index user_emails_normalized on user_emails (email_normalized);
create table organizations (
  id text collate "C" primary key, slug text not null, name text not null, default_role text not null, require_2fa boolean not null);
create table auth_providers (
  id text collate "C" primary key, organization_id text collate "C" not null constraint auth_providers_org_key unique,
  provider_key text not null, config jsonb not null, allow_unlinked boolean not null, scim_enabled boolean not null,
  created_at timestamptz(3) not null);
create table auth_identities (
  id text collate "C" primary key, auth_provider_id text collate "C" not null, user_id text collate "C" not null,
  ident text collate "C" not null, data jsonb not null, last_verified timestamptz(3) not null,
  last_synced timestamptz(3) not null, created_at timestamptz(3) not null,
  constraint auth_identities_ident_key unique (auth_provider_id, ident),
  constraint auth_identities_user_key unique (auth_provider_id, user_id));
create index auth_identities_user on auth_identities (user_id);
create table members (
  id text collate "C" primary key, organization_id text collate "C" not null, user_id text collate "C",
  email text, email_normalized text collate "C", role text not null,
  sso_linked boolean not null, sso_invalid boolean not null, member_limit_restricted boolean not null,
  idp_provisioned boolean not null, idp_role_restricted boolean not null,
  invite_token_hash text collate "C" constraint members_token_key unique, invite_expires_at timestamptz(3),
  invite_status text not null, created_at timestamptz(3) not null,
  constraint members_org_user_key unique (organization_id, user_id),
  constraint members_org_email_key unique (organization_id, email_normalized));
create table audit_log (
  id text primary key, event text not null, actor_user_id text, organization_id text, target_id text,
  target_user_id text, ip text, data jsonb not null, created_at timestamptz(3) not null);
create table pipeline_states (
  id text collate "C" constraint pipeline_states_pkey primary key, version integer not null, body text not null,
  expires_at timestamptz(3) not null);
create table one_time_tokens (
  hash text collate "C" constraint one_time_tokens_pkey primary key, purpose text not null, payload text not null,
  expires_at timestamptz(3) not null);
`

/** Constraint (index) name -> the port's name. Add your own unique indexes here. */
const CONSTRAINTS: Readonly<Record<string, UniqueConstraint>> = {
  users_username_key: 'user.username',
  users_email_key: 'user.email', // a host's unique index on the address, if it has one
  user_emails_pkey: 'user_email.user_email',
  auth_providers_org_key: 'auth_provider.organization',
  auth_identities_ident_key: 'auth_identity.provider_ident',
  auth_identities_user_key: 'auth_identity.provider_user',
  members_org_user_key: 'member.organization_user',
  members_org_email_key: 'member.organization_email',
  members_token_key: 'member.invite_token',
  pipeline_states_pkey: 'pipeline_state.id',
  one_time_tokens_pkey: 'one_time_token.hash',
}

type Row = Record<string, unknown>

const FLAG_COLUMNS: Readonly<Record<keyof MemberFlags, string>> = {
  ssoLinked: 'sso_linked',
  ssoInvalid: 'sso_invalid',
  memberLimitRestricted: 'member_limit_restricted',
  idpProvisioned: 'idp_provisioned',
  idpRoleRestricted: 'idp_role_restricted',
}

const date = (v: unknown): Date => (v instanceof Date ? new Date(v.getTime()) : new Date(String(v)))
const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (structuredClone(v) as T))

const user = (r: Row, p = ''): User => ({
  id: String(r[`${p}id`]),
  username: String(r[`${p}username`]),
  email: String(r[`${p}email`]),
  name: String(r[`${p}name`]),
  isActive: r[`${p}is_active`] === true,
  isSuspended: r[`${p}is_suspended`] === true,
  hasUsablePassword: r[`${p}has_usable_password`] === true,
  has2fa: r[`${p}has_2fa`] === true,
  createdAt: date(r[`${p}created_at`]),
})
const organization = (r: Row): Organization => ({
  id: String(r.id),
  slug: String(r.slug),
  name: String(r.name),
  defaultRole: String(r.default_role),
  require2fa: r.require_2fa === true,
})
const provider = (r: Row): AuthProvider => ({
  id: String(r.id),
  organizationId: String(r.organization_id),
  providerKey: String(r.provider_key),
  config: json(r.config),
  allowUnlinked: r.allow_unlinked === true,
  scimEnabled: r.scim_enabled === true,
  createdAt: date(r.created_at),
})
const identity = (r: Row, p = ''): AuthIdentity => ({
  id: String(r[`${p}id`]),
  authProviderId: String(r[`${p}auth_provider_id`]),
  userId: String(r[`${p}user_id`]),
  ident: String(r[`${p}ident`]),
  data: json(r[`${p}data`]),
  lastVerified: date(r[`${p}last_verified`]),
  lastSynced: date(r[`${p}last_synced`]),
  createdAt: date(r[`${p}created_at`]),
})
const member = (r: Row, p = ''): Member => ({
  id: String(r[`${p}id`]),
  organizationId: String(r[`${p}organization_id`]),
  userId: r[`${p}user_id`] === null ? null : String(r[`${p}user_id`]),
  email: r[`${p}email`] === null ? null : String(r[`${p}email`]),
  emailNormalized: r[`${p}email_normalized`] === null ? null : String(r[`${p}email_normalized`]),
  role: String(r[`${p}role`]),
  flags: {
    ssoLinked: r[`${p}sso_linked`] === true,
    ssoInvalid: r[`${p}sso_invalid`] === true,
    memberLimitRestricted: r[`${p}member_limit_restricted`] === true,
    idpProvisioned: r[`${p}idp_provisioned`] === true,
    idpRoleRestricted: r[`${p}idp_role_restricted`] === true,
  },
  inviteTokenHash: r[`${p}invite_token_hash`] === null ? null : String(r[`${p}invite_token_hash`]),
  inviteExpiresAt: r[`${p}invite_expires_at`] === null ? null : date(r[`${p}invite_expires_at`]),
  inviteStatus: String(r[`${p}invite_status`]) as Member['inviteStatus'],
  createdAt: date(r[`${p}created_at`]),
})
const email = (r: Row, p = ''): UserEmail => ({
  userId: String(r[`${p}user_id`]),
  email: String(r[`${p}email`]),
  emailNormalized: String(r[`${p}email_normalized`]),
  isVerified: r[`${p}is_verified`] === true,
  isPrimary: r[`${p}is_primary`] === true,
})

/** `users u` columns as `u_<column>`, and the same for identities and members. */
const prefixed = (alias: string, columns: readonly string[]) => columns.map((c) => `${alias}.${c} as ${alias}_${c}`).join(', ')
const USER_COLS = ['id', 'username', 'email', 'name', 'is_active', 'is_suspended', 'has_usable_password', 'has_2fa', 'created_at']
const IDENTITY_COLS = ['id', 'auth_provider_id', 'user_id', 'ident', 'data', 'last_verified', 'last_synced', 'created_at']
const MEMBER_COLS = [
  'id',
  'organization_id',
  'user_id',
  'email',
  'email_normalized',
  'role',
  ...Object.values(FLAG_COLUMNS),
  'invite_token_hash',
  'invite_expires_at',
  'invite_status',
  'created_at',
]
const EMAIL_COLS = ['user_id', 'email', 'email_normalized', 'is_verified', 'is_primary']

/** Options of {@link createPgStorage}. */
export interface PgStorageOptions {
  /** The engine's clock (pipeline-state expiry). */
  readonly clock?: Clock | undefined
}

/** The storage, plus the seeding hook for host-owned rows that tests and imports use. */
export interface PgStorage extends StoragePort {
  seedHostData(data: { organizations?: readonly Organization[] | undefined; userEmails?: readonly UserEmail[] | undefined }): Promise<void>
}

/** The example adapter. `pool` is a `pg.Pool` (or anything with its `query` and `connect`). */
export function createPgStorage(pool: PgPool, options: PgStorageOptions = {}): PgStorage {
  const clock = options.clock ?? systemClock
  // The open transaction's client, for calls made from inside `transaction(fn)`.
  const active = new AsyncLocalStorage<{ client: PgClient; failed: { error: unknown } | null }>()

  /** Runs one statement on the transaction's client (when inside one) or the pool. */
  async function q(text: string, values: unknown[] = []): Promise<{ rows: Row[]; rowCount: number }> {
    const tx = active.getStore()
    try {
      const result = await (tx?.client ?? pool).query(text, values)
      return { rows: result.rows, rowCount: result.rowCount ?? 0 }
    } catch (error) {
      const code = (error as { code?: unknown }).code
      const name = (error as { constraint?: unknown }).constraint
      const mapped =
        code === '23505' && typeof name === 'string' && CONSTRAINTS[name]
          ? new StorageConflictError(CONSTRAINTS[name], { cause: error })
          : error
      // Any failed statement aborts a PostgreSQL transaction: remember it (see `transaction`).
      if (tx && tx.failed === null) tx.failed = { error: mapped }
      throw mapped
    }
  }
  const one = async <T>(text: string, values: unknown[], map: (r: Row) => T): Promise<T | null> => {
    const { rows } = await q(text, values)
    return rows[0] === undefined ? null : map(rows[0])
  }

  const reader: StorageReader = {
    getOrganization: (id) => one('select * from organizations where id = $1', [id], organization),
    getAuthProvider: (organizationId) => one('select * from auth_providers where organization_id = $1', [organizationId], provider),
    getAuthProviderById: (id) => one('select * from auth_providers where id = $1', [id], provider),
    getIdentity: (providerId, ident) =>
      one('select * from auth_identities where auth_provider_id = $1 and ident = $2', [providerId, ident], (r) => identity(r)),
    getIdentityById: (id) => one('select * from auth_identities where id = $1', [id], (r) => identity(r)),
    getIdentityForUser: (providerId, userId) =>
      one('select * from auth_identities where auth_provider_id = $1 and user_id = $2', [providerId, userId], (r) => identity(r)),
    async listIdentitiesForUser(userId) {
      const { rows } = await q('select * from auth_identities where user_id = $1 order by id', [userId])
      return rows.map((r) => identity(r))
    },
    getLinkedIdentity: (providerId, ident, organizationId) =>
      one(
        `select ${prefixed('i', IDENTITY_COLS)}, ${prefixed('u', USER_COLS)}, ${prefixed('m', MEMBER_COLS)}
         from auth_identities i join users u on u.id = i.user_id
         left join members m on m.user_id = u.id and m.organization_id = $3
         where i.auth_provider_id = $1 and i.ident = $2`,
        [providerId, ident, organizationId],
        (r) => ({ identity: identity(r, 'i_'), user: user(r, 'u_'), member: r.m_id === null ? null : member(r, 'm_') }),
      ),
    getUser: (id) => one('select * from users where id = $1', [id], (r) => user(r)),
    async findUsersByEmail(emailNormalized) {
      const { rows } = await q(
        `select ${prefixed('u', USER_COLS)}, ${prefixed('e', EMAIL_COLS)} from user_emails e join users u on u.id = e.user_id
         where e.email_normalized = $1 and u.is_active order by u.id`,
        [emailNormalized],
      )
      return rows.map((r) => ({ user: user(r, 'u_'), email: email(r, 'e_') }))
    },
    getMember: (organizationId, userId) =>
      one('select * from members where organization_id = $1 and user_id = $2', [organizationId, userId], (r) => member(r)),
    getMemberById: (id) => one('select * from members where id = $1', [id], (r) => member(r)),
    getInviteByEmail: (organizationId, emailNormalized) =>
      one(
        'select * from members where organization_id = $1 and email_normalized = $2 and user_id is null',
        [organizationId, emailNormalized],
        (r) => member(r),
      ),
    async listMembers(organizationId, page) {
      const { rows } = await q(
        `select * from members where organization_id = $1 and ($2::text is null or id > $2)
           and (not $3 or (user_id is not null and not sso_linked)) order by id limit $4`,
        [organizationId, page.after ?? null, page.unlinkedOnly === true, Math.max(0, page.limit)],
      )
      return rows.map((r) => member(r))
    },
    async listIdentities(providerId, page) {
      const { rows } = await q(
        'select * from auth_identities where auth_provider_id = $1 and ($2::text is null or id > $2) order by id limit $3',
        [providerId, page.after ?? null, Math.max(0, page.limit)],
      )
      return rows.map((r) => identity(r))
    },
  }

  /** `update <table> set <columns> where id = $1`; true when the row exists. */
  async function update(table: string, id: string, set: Record<string, unknown>): Promise<boolean> {
    const entries = Object.entries(set).filter(([, v]) => v !== undefined)
    if (entries.length === 0) return (await q(`select 1 from ${table} where id = $1`, [id])).rowCount > 0
    const assignments = entries.map(([column], i) => `${column} = $${i + 2}`).join(', ')
    return (await q(`update ${table} set ${assignments} where id = $1`, [id, ...entries.map(([, v]) => v)])).rowCount > 0
  }
  const lockKey = (text: string) => q('select pg_advisory_xact_lock(hashtextextended($1, 0))', [text])
  const providerLocked = (where: string, value: string, mode: 'share' | 'update') =>
    one(`select * from auth_providers where ${where} = $1 for ${mode === 'share' ? 'key share' : 'update'}`, [value], provider)
  const jsonb = (value: unknown) => JSON.stringify(value)

  const oneTimeTokens: OneTimeTokenStore = {
    async create(token) {
      await q('insert into one_time_tokens (hash, purpose, payload, expires_at) values ($1, $2, $3, $4)', [
        token.hash,
        token.purpose,
        token.payload,
        token.expiresAt,
      ])
    },
    consume: (hash, purpose, now) =>
      one('delete from one_time_tokens where hash = $1 and purpose = $2 and expires_at > $3 returning *', [hash, purpose, now], (r) => ({
        hash: String(r.hash),
        purpose: String(r.purpose),
        payload: String(r.payload),
        expiresAt: date(r.expires_at),
      })),
    peek: (hash, purpose, now) =>
      one('select * from one_time_tokens where hash = $1 and purpose = $2 and expires_at > $3', [hash, purpose, now], (r) => ({
        hash: String(r.hash),
        purpose: String(r.purpose),
        payload: String(r.payload),
        expiresAt: date(r.expires_at),
      })),
  }

  const pipelineStates: PipelineStateStore = {
    async create(state) {
      await q('insert into pipeline_states (id, version, body, expires_at) values ($1, $2, $3, $4)', [
        state.id,
        state.version,
        state.body,
        state.expiresAt,
      ])
    },
    load: (id) =>
      one('select * from pipeline_states where id = $1 and expires_at > $2', [id, clock.now()], (r) => ({
        id: String(r.id),
        version: Number(r.version),
        body: String(r.body),
        expiresAt: date(r.expires_at),
      })),
    async compareAndSet(id, expectedVersion, next) {
      if (next.id !== id || next.version !== expectedVersion + 1) throw new TypeError('compareAndSet: next must be version + 1 of id')
      const { rowCount } = await q(
        'update pipeline_states set version = $3, body = $4, expires_at = $5 where id = $1 and version = $2 and expires_at > $6',
        [id, expectedVersion, next.version, next.body, next.expiresAt, clock.now()],
      )
      return rowCount === 1
    },
    async delete(id) {
      await q('delete from pipeline_states where id = $1', [id])
    },
    // `limit` bounds one sweep (the housekeeping drain calls again while a batch comes back full).
    deleteExpired: async (now, limit) =>
      (
        await q(
          'delete from pipeline_states where id in (select id from pipeline_states where expires_at <= $1 order by expires_at limit $2)',
          [now, limit ?? null],
        )
      ).rowCount,
  }

  const tx: StorageTx = {
    ...reader,
    async lockIdentity(providerId, ident) {
      await lockKey(`identity:${providerId.length}:${providerId}:${ident}`)
      return providerLocked('id', providerId, 'share')
    },
    lockAuthProvider: (organizationId, mode) => providerLocked('organization_id', organizationId, mode),
    async lockEmail(emailNormalized) {
      await lockKey(`email:${emailNormalized}`)
    },
    async createUser(u, primary) {
      await q(
        `insert into users (id, username, email, name, is_active, is_suspended, has_usable_password, has_2fa, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [u.id, u.username, u.email, u.name, u.isActive, u.isSuspended, u.hasUsablePassword, u.has2fa, u.createdAt],
      )
      await q('insert into user_emails (user_id, email, email_normalized, is_verified, is_primary) values ($1, $2, $3, $4, $5)', [
        primary.userId,
        primary.email,
        primary.emailNormalized,
        primary.isVerified,
        primary.isPrimary,
      ])
    },
    async createIdentity(i) {
      await q(
        `insert into auth_identities (id, auth_provider_id, user_id, ident, data, last_verified, last_synced, created_at)
         values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)`,
        [i.id, i.authProviderId, i.userId, i.ident, jsonb(i.data), i.lastVerified, i.lastSynced, i.createdAt],
      )
    },
    updateIdentity: (id, patch) =>
      update('auth_identities', id, {
        user_id: patch.userId,
        ident: patch.ident,
        data: patch.data === undefined ? undefined : jsonb(patch.data),
        last_verified: patch.lastVerified,
        last_synced: patch.lastSynced,
      }),
    deleteIdentity: async (id) => (await q('delete from auth_identities where id = $1', [id])).rowCount > 0,
    deleteIdentitiesForUser: async (providerId, userId, exceptId) =>
      (
        await q('delete from auth_identities where auth_provider_id = $1 and user_id = $2 and ($3::text is null or id <> $3)', [
          providerId,
          userId,
          exceptId,
        ])
      ).rowCount,
    deleteIdentitiesForProvider: async (providerId) =>
      (await q('delete from auth_identities where auth_provider_id = $1', [providerId])).rowCount,
    async createMember(m) {
      await q(
        `insert into members (id, organization_id, user_id, email, email_normalized, role, ${Object.values(FLAG_COLUMNS).join(', ')},
           invite_token_hash, invite_expires_at, invite_status, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [
          m.id,
          m.organizationId,
          m.userId,
          m.email,
          m.emailNormalized,
          m.role,
          m.flags.ssoLinked,
          m.flags.ssoInvalid,
          m.flags.memberLimitRestricted,
          m.flags.idpProvisioned,
          m.flags.idpRoleRestricted,
          m.inviteTokenHash,
          m.inviteExpiresAt,
          m.inviteStatus,
          m.createdAt,
        ],
      )
    },
    updateMember: (id, patch) =>
      update('members', id, {
        user_id: patch.userId,
        email: patch.email,
        email_normalized: patch.emailNormalized,
        role: patch.role,
        ...Object.fromEntries(Object.entries(FLAG_COLUMNS).map(([flag, column]) => [column, patch.flags?.[flag as keyof MemberFlags]])),
        invite_token_hash: patch.inviteTokenHash,
        invite_expires_at: patch.inviteExpiresAt,
        invite_status: patch.inviteStatus,
      }),
    async acceptInvite(id, acceptance) {
      const f = acceptance.flags
      const { rowCount } = await q(
        `update members set user_id = $2, email = null, email_normalized = null, invite_token_hash = null, invite_expires_at = null,
           sso_linked = $3, sso_invalid = $4, member_limit_restricted = $5, idp_provisioned = $6, idp_role_restricted = $7
         where id = $1 and user_id is null and invite_status = 'approved'`,
        [id, acceptance.userId, f.ssoLinked, f.ssoInvalid, f.memberLimitRestricted, f.idpProvisioned, f.idpRoleRestricted],
      )
      return rowCount > 0
    },
    deleteMember: async (id) => (await q('delete from members where id = $1', [id])).rowCount > 0,
    async setFlagsForOrganization(organizationId, flags) {
      const given = Object.entries(flags).filter(([, v]) => v !== undefined) as [keyof MemberFlags, boolean][]
      if (given.length === 0) return 0
      const set = given.map(([flag], i) => `${FLAG_COLUMNS[flag]} = $${i + 2}`).join(', ')
      const changed = given.map(([flag], i) => `${FLAG_COLUMNS[flag]} <> $${i + 2}`).join(' or ')
      const { rowCount } = await q(`update members set ${set} where organization_id = $1 and (${changed})`, [
        organizationId,
        ...given.map(([, v]) => v),
      ])
      return rowCount
    },
    async createAuthProvider(p) {
      await q(
        `insert into auth_providers (id, organization_id, provider_key, config, allow_unlinked, scim_enabled, created_at)
         values ($1, $2, $3, $4::jsonb, $5, $6, $7)`,
        [p.id, p.organizationId, p.providerKey, jsonb(p.config), p.allowUnlinked, p.scimEnabled, p.createdAt],
      )
    },
    updateAuthProvider: (id, patch) =>
      update('auth_providers', id, {
        config: patch.config === undefined ? undefined : jsonb(patch.config),
        allow_unlinked: patch.allowUnlinked,
        scim_enabled: patch.scimEnabled,
      }),
    deleteAuthProvider: async (id) => (await q('delete from auth_providers where id = $1', [id])).rowCount > 0,
    updateOrganization: (id, patch) => update('organizations', id, { require_2fa: patch.require2fa, default_role: patch.defaultRole }),
    async appendAudit(e) {
      await q(
        `insert into audit_log (id, event, actor_user_id, organization_id, target_id, target_user_id, ip, data, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)`,
        [e.id, e.event, e.actorUserId, e.organizationId, e.targetId, e.targetUserId, e.ip, jsonb(e.data), e.createdAt],
      )
    },
    // Token calls run on the transaction's client too (see `q`): atomic with it.
    oneTimeTokens,
    // Pipeline states too: the engine settles the state inside the login transaction.
    pipelineStates,
  }

  return {
    ...reader,
    pipelineStates,
    oneTimeTokens,
    async transaction(fn) {
      const client = await pool.connect()
      const state: { client: PgClient; failed: { error: unknown } | null } = { client, failed: null }
      try {
        await client.query('begin')
        const value = await active.run(state, () => fn(tx))
        // The callback caught a failed statement and went on: PostgreSQL would answer COMMIT
        // with a silent ROLLBACK. Fail instead.
        if (state.failed !== null) throw state.failed.error
        await client.query('commit')
        return value
      } catch (error) {
        await client.query('rollback').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    },
    async seedHostData(data) {
      for (const o of data.organizations ?? []) {
        await q('insert into organizations (id, slug, name, default_role, require_2fa) values ($1, $2, $3, $4, $5)', [
          o.id,
          o.slug,
          o.name,
          o.defaultRole,
          o.require2fa,
        ])
      }
      for (const e of data.userEmails ?? []) {
        await q('insert into user_emails (user_id, email, email_normalized, is_verified, is_primary) values ($1, $2, $3, $4, $5)', [
          e.userId,
          e.email,
          e.emailNormalized,
          e.isVerified,
          e.isPrimary,
        ])
      }
    },
  }
}
