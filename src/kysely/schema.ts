/**
 * Table and column naming for the Kysely adapter: the table prefix, the host-table mapping
 * layer, and the names of the unique indexes (which is how driver errors are mapped back to
 * {@link UniqueConstraint}s).
 *
 * @module
 */
import type { UniqueConstraint } from '../ports/storage.js'

/**
 * The SQL dialect the adapter generates for. PGlite uses `'postgres'`.
 * @group Kysely
 */
export type SqlDialect = 'postgres' | 'sqlite' | 'mysql'

/** Canonical fields of the host-ownable `users` table. */
export type UserColumn = 'id' | 'username' | 'email' | 'name' | 'isActive' | 'isSuspended' | 'hasUsablePassword' | 'has2fa' | 'createdAt'

/** Canonical fields of the host-ownable `organizations` table. */
export type OrganizationColumn = 'id' | 'slug' | 'name' | 'defaultRole' | 'require2fa'

/**
 * Canonical fields of the host-ownable memberships table: a `Member`'s fields, its five
 * flags one field each.
 */
export type MemberColumn =
  | 'id'
  | 'organizationId'
  | 'userId'
  | 'email'
  | 'emailNormalized'
  | 'role'
  | 'ssoLinked'
  | 'ssoInvalid'
  | 'memberLimitRestricted'
  | 'idpProvisioned'
  | 'idpRoleRestricted'
  | 'inviteTokenHash'
  | 'inviteExpiresAt'
  | 'inviteStatus'
  | 'createdAt'

/**
 * Member fields that may live in ssoflow's side table (`<prefix>member_flags`) when the host's
 * memberships table has no column for them: the flags and the invite fields.
 */
export type MemberSideField = Exclude<MemberColumn, 'id' | 'organizationId' | 'userId' | 'role' | 'createdAt'>

/**
 * Flags the host may derive itself (a generated column, a flag its own code maintains): ssoflow
 * reads them and never writes them. `ssoLinked` and `ssoInvalid` are ssoflow's to write.
 */
export type MemberReadOnlyField = 'memberLimitRestricted' | 'idpProvisioned' | 'idpRoleRestricted'

/**
 * Maps ssoflow's memberships (roles, flags, invites) onto the host's own memberships table. The
 * host's rows are the one source of truth: ssoflow reads and writes the mapped columns of
 * `table`; the fields listed in `sideTable` live in ssoflow's side table `<prefix>member_flags`
 * (one row per membership, keyed by the membership id, created by the migrations only when
 * this list is not empty); the fields listed in `readOnly` are read and never written.
 * `id`, `organizationId`, `userId`, `role` and `createdAt` must be columns of `table`.
 *
 * @example
 * ```ts
 * import type { MemberTableMapping } from 'ssoflow/kysely'
 *
 * const members: MemberTableMapping = {
 *   table: 'app_members',
 *   columns: { id: 'member_id', organizationId: 'org_id', userId: 'account_id', role: 'member_role', createdAt: 'joined_at' },
 *   // No room for ssoflow's flags and invite fields in app_members: keep them in sso_member_flags.
 *   sideTable: ['ssoLinked', 'ssoInvalid', 'memberLimitRestricted', 'idpProvisioned', 'idpRoleRestricted',
 *               'email', 'emailNormalized', 'inviteTokenHash', 'inviteExpiresAt', 'inviteStatus'],
 *   uniqueIndexes: { organizationUser: 'app_members_org_account_key' },
 * }
 * ```
 * @group Kysely
 */
export interface MemberTableMapping extends Omit<HostTableMapping<MemberColumn>, 'uniqueIndexes'> {
  /** Fields the host table has no column for, kept in `<prefix>member_flags`. @defaultValue [] */
  readonly sideTable?: readonly MemberSideField[] | undefined
  /** Columns ssoflow reads but never writes (flags the host derives). @defaultValue [] */
  readonly readOnly?: readonly MemberReadOnlyField[] | undefined
  /**
   * Names of the host's unique indexes on the table, so that a violation maps to the port's
   * constraint: `organizationUser` (organization, user) -> `member.organization_user`,
   * `organizationEmail` (organization, normalized invite address) ->
   * `member.organization_email`, `inviteToken` -> `member.invite_token`. Indexes on fields kept in
   * the side table are ssoflow's own and need no name here.
   */
  readonly uniqueIndexes?: Partial<Record<'organizationUser' | 'organizationEmail' | 'inviteToken', string>> | undefined
}

/**
 * Maps one of ssoflow's logical tables onto a table the host owns. ssoflow reads (and, for
 * users, inserts SSO-created rows into) the given columns only; other columns of the host table
 * need defaults. The migrations do not create a mapped table.
 * @group Kysely
 */
export interface HostTableMapping<C extends string> {
  /** The host's table name, used as is (no prefix). */
  readonly table: string
  /** Physical column per canonical field. Unmapped fields use the snake_case default name. */
  readonly columns?: Partial<Record<C, string>> | undefined
  /**
   * How `createdAt` is stored: `'epochMs'` (integer milliseconds, the ssoflow default) or
   * `'native'` (a timestamp column; the driver reads and writes `Date` values).
   * @defaultValue 'epochMs'
   */
  readonly dates?: 'epochMs' | 'native' | undefined
  /**
   * Names of the host's unique indexes, so that a violation maps to the right constraint
   * (users: `{ username: 'users_username_key', email: 'users_email_key' }`). A unique index on
   * the address must be named here (PostgreSQL, MySQL; SQLite recognises a plain index on the
   * email column by itself): it is reported as `user.email`, which the engine answers with a
   * non-retryable `IDENTITY_CONFLICT`. An unnamed unique violation on an insert into this table
   * is reported as `user.username` (retried: right for a username clash, wrong for an address).
   */
  readonly uniqueIndexes?: Partial<Record<'username' | 'email', string>> | undefined
}

/**
 * Naming options shared by {@link createKyselyStorage} and {@link ssoflowMigrations}.
 * Pass the same values to both.
 * @group Kysely
 */
export interface KyselySchemaOptions {
  readonly dialect: SqlDialect
  /**
   * Prefix of every ssoflow-owned table and index: letters, digits and `_`, at most 24
   * characters. @defaultValue 'ssoflow_'
   */
  readonly tablePrefix?: string | undefined
  /** Use host-owned tables instead of ssoflow's own `users` / `organizations`. */
  readonly tables?:
    | {
        readonly users?: HostTableMapping<UserColumn> | undefined
        readonly organizations?: HostTableMapping<OrganizationColumn> | undefined
        /** The host's own memberships table: see {@link MemberTableMapping}. */
        readonly members?: MemberTableMapping | undefined
      }
    | undefined
}

const DEFAULT_COLUMNS = {
  users: {
    id: 'id',
    username: 'username',
    email: 'email',
    name: 'name',
    isActive: 'is_active',
    isSuspended: 'is_suspended',
    hasUsablePassword: 'has_usable_password',
    has2fa: 'has_2fa',
    createdAt: 'created_at',
  } satisfies Record<UserColumn, string>,
  organizations: {
    id: 'id',
    slug: 'slug',
    name: 'name',
    defaultRole: 'default_role',
    require2fa: 'require_2fa',
  } satisfies Record<OrganizationColumn, string>,
  members: {
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
  } satisfies Record<MemberColumn, string>,
}

/** Default (ssoflow) column names of the member fields; the side table uses them too. Internal. */
export const MEMBER_DEFAULT_COLUMNS: Readonly<Record<MemberColumn, string>> = DEFAULT_COLUMNS.members

const SIDE_FIELDS: readonly MemberSideField[] = [
  'email',
  'emailNormalized',
  'ssoLinked',
  'ssoInvalid',
  'memberLimitRestricted',
  'idpProvisioned',
  'idpRoleRestricted',
  'inviteTokenHash',
  'inviteExpiresAt',
  'inviteStatus',
]
const READ_ONLY_FIELDS: readonly MemberReadOnlyField[] = ['memberLimitRestricted', 'idpProvisioned', 'idpRoleRestricted']

/** The resolved memberships table (ssoflow's or the host's) and its side table. Internal. */
export interface ResolvedMembers extends ResolvedTable<MemberColumn> {
  /** Fields kept in the side table (empty: no side table). */
  readonly side: ReadonlySet<MemberColumn>
  /** Fields never written. */
  readonly readOnly: ReadonlySet<MemberColumn>
  /** `<prefix>member_flags`. */
  readonly sideTable: string
}

/** A resolved logical table: physical name and columns. Internal. */
export interface ResolvedTable<C extends string> {
  readonly table: string
  readonly columns: Readonly<Record<C, string>>
  readonly nativeDates: boolean
  readonly hostOwned: boolean
}

/** Every name the adapter and the migrations use. Internal. */
export interface ResolvedSchema {
  readonly dialect: SqlDialect
  readonly prefix: string
  readonly users: ResolvedTable<UserColumn>
  readonly organizations: ResolvedTable<OrganizationColumn>
  /** The memberships table, resolved (host mapping, side table). */
  readonly member: ResolvedMembers
  readonly userEmails: string
  readonly authProviders: string
  readonly authIdentities: string
  readonly members: string
  readonly auditLog: string
  readonly pipelineStates: string
  readonly oneTimeTokens: string
  readonly pendingWork: string
  /** Claimed domains (issue 13, migration 0003). */
  readonly organizationDomains: string
  /** Index/constraint name -> the port's constraint. */
  readonly constraintByIndex: ReadonlyMap<string, UniqueConstraint>
  /** Index names by role (used by the migrations). */
  readonly index: Readonly<Record<IndexRole, string>>
}

/** Every index the migrations create. */
export type IndexRole =
  | 'usersPk'
  | 'usersUsername'
  | 'organizationsPk'
  | 'userEmailsPk'
  | 'userEmailsEmail'
  | 'authProvidersPk'
  | 'authProvidersOrg'
  | 'authIdentitiesPk'
  | 'authIdentitiesIdent'
  | 'authIdentitiesUser'
  | 'authIdentitiesUserId'
  | 'membersPk'
  | 'membersOrgUser'
  | 'membersOrgEmail'
  | 'membersToken'
  | 'membersUser'
  | 'auditPk'
  | 'auditOrg'
  | 'pipelineStatesPk'
  | 'pipelineStatesExpires'
  | 'oneTimeTokensPk'
  | 'oneTimeTokensExpires'
  | 'pendingWorkPk'
  | 'pendingWorkKey'
  | 'pendingWorkAvailable'
  | 'membersOrgId'
  | 'domainsPk'
  | 'domainsOrgDomain'
  | 'domainsVerified'
  | 'memberFlagsPk'
  | 'memberFlagsOrgEmail'
  | 'memberFlagsToken'

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,23}$/
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/

function resolveHost<C extends string>(
  kind: string,
  defaults: Record<C, string>,
  mapping: HostTableMapping<C> | undefined,
  ownName: string,
): ResolvedTable<C> {
  if (!mapping) return { table: ownName, columns: defaults, nativeDates: false, hostOwned: false }
  if (!IDENTIFIER.test(mapping.table)) throw new TypeError(`tables.${kind}.table is not a plain SQL identifier`)
  const columns = { ...defaults } as Record<C, string>
  for (const [field, column] of Object.entries(mapping.columns ?? {}) as [C, string | undefined][]) {
    if (!(field in defaults)) throw new TypeError(`tables.${kind}.columns.${field} is not a known field`)
    if (column === undefined) continue
    if (!IDENTIFIER.test(column)) throw new TypeError(`tables.${kind}.columns.${field} is not a plain SQL identifier`)
    columns[field] = column
  }
  return { table: mapping.table, columns, nativeDates: mapping.dates === 'native', hostOwned: true }
}

function resolveMembers(mapping: MemberTableMapping | undefined, prefix: string): ResolvedMembers {
  const base = resolveHost(
    'members',
    DEFAULT_COLUMNS.members,
    mapping && { table: mapping.table, columns: mapping.columns, dates: mapping.dates },
    `${prefix}members`,
  )
  const side = new Set<MemberColumn>()
  const readOnly = new Set<MemberColumn>()
  for (const field of mapping?.sideTable ?? []) {
    if (!SIDE_FIELDS.includes(field)) throw new TypeError(`tables.members.sideTable: ${String(field)} cannot live in the side table`)
    if (mapping?.columns?.[field] !== undefined) throw new TypeError(`tables.members: ${field} is both a column and in sideTable`)
    side.add(field)
  }
  for (const field of mapping?.readOnly ?? []) {
    if (!READ_ONLY_FIELDS.includes(field)) throw new TypeError(`tables.members.readOnly: ${String(field)} cannot be read only`)
    if (side.has(field)) throw new TypeError(`tables.members: ${field} is both in sideTable and readOnly`)
    readOnly.add(field)
  }
  if (side.has('email') !== side.has('emailNormalized')) {
    throw new TypeError('tables.members: email and emailNormalized live together (both columns or both in sideTable)')
  }
  return { ...base, side, readOnly, sideTable: `${prefix}member_flags` }
}

/**
 * Resolves names once. Throws `TypeError` (a programmer error) on invalid options.
 * Internal, shared by the storage and the migrations.
 */
export function resolveSchema(options: KyselySchemaOptions): ResolvedSchema {
  if (!options || (options.dialect !== 'postgres' && options.dialect !== 'sqlite' && options.dialect !== 'mysql')) {
    throw new TypeError("options.dialect must be 'postgres', 'sqlite' or 'mysql'")
  }
  const prefix = options.tablePrefix ?? 'ssoflow_'
  if (!PREFIX.test(prefix)) throw new TypeError('tablePrefix must be letters, digits or _ (at most 24 characters)')
  const users = resolveHost('users', DEFAULT_COLUMNS.users, options.tables?.users, `${prefix}users`)
  const organizations = resolveHost('organizations', DEFAULT_COLUMNS.organizations, options.tables?.organizations, `${prefix}organizations`)
  const index: Record<IndexRole, string> = {
    usersPk: `${prefix}users_pk`,
    usersUsername: `${prefix}users_username_uq`,
    organizationsPk: `${prefix}organizations_pk`,
    userEmailsPk: `${prefix}user_emails_pk`,
    userEmailsEmail: `${prefix}user_emails_email_ix`,
    authProvidersPk: `${prefix}auth_providers_pk`,
    authProvidersOrg: `${prefix}auth_providers_org_uq`,
    authIdentitiesPk: `${prefix}auth_identities_pk`,
    authIdentitiesIdent: `${prefix}auth_identities_ident_uq`,
    authIdentitiesUser: `${prefix}auth_identities_user_uq`,
    authIdentitiesUserId: `${prefix}auth_identities_user_ix`,
    membersPk: `${prefix}members_pk`,
    membersOrgUser: `${prefix}members_org_user_uq`,
    membersOrgEmail: `${prefix}members_org_email_uq`,
    membersToken: `${prefix}members_token_uq`,
    membersUser: `${prefix}members_user_ix`,
    auditPk: `${prefix}audit_log_pk`,
    auditOrg: `${prefix}audit_log_org_ix`,
    pipelineStatesPk: `${prefix}pipeline_states_pk`,
    pipelineStatesExpires: `${prefix}pipeline_states_exp_ix`,
    oneTimeTokensPk: `${prefix}one_time_tokens_pk`,
    oneTimeTokensExpires: `${prefix}one_time_tokens_exp_ix`,
    pendingWorkPk: `${prefix}pending_work_pk`,
    pendingWorkKey: `${prefix}pending_work_key_uq`,
    pendingWorkAvailable: `${prefix}pending_work_avail_ix`,
    membersOrgId: `${prefix}members_org_id_ix`,
    domainsPk: `${prefix}org_domains_pk`,
    domainsOrgDomain: `${prefix}org_domains_org_domain_uq`,
    domainsVerified: `${prefix}org_domains_verified_uq`,
    memberFlagsPk: `${prefix}member_flags_pk`,
    memberFlagsOrgEmail: `${prefix}member_flags_org_email_uq`,
    memberFlagsToken: `${prefix}member_flags_token_uq`,
  }
  const constraintByIndex = new Map<string, UniqueConstraint>([
    [index.usersUsername, 'user.username'],
    [index.userEmailsPk, 'user_email.user_email'],
    [index.authProvidersOrg, 'auth_provider.organization'],
    [index.authIdentitiesIdent, 'auth_identity.provider_ident'],
    [index.authIdentitiesUser, 'auth_identity.provider_user'],
    [index.membersOrgUser, 'member.organization_user'],
    [index.membersOrgEmail, 'member.organization_email'],
    [index.membersToken, 'member.invite_token'],
    [index.pipelineStatesPk, 'pipeline_state.id'],
    [index.oneTimeTokensPk, 'one_time_token.hash'],
    [index.domainsOrgDomain, 'organization_domain.organization_domain'],
    [index.domainsVerified, 'organization_domain.verified'],
    [index.memberFlagsOrgEmail, 'member.organization_email'],
    [index.memberFlagsToken, 'member.invite_token'],
  ])
  const hostUsername = options.tables?.users?.uniqueIndexes?.username
  if (hostUsername) constraintByIndex.set(hostUsername, 'user.username')
  const hostEmail = options.tables?.users?.uniqueIndexes?.email
  if (hostEmail) constraintByIndex.set(hostEmail, 'user.email')
  const memberMapping = options.tables?.members
  const member = resolveMembers(memberMapping, prefix)
  const memberIndexes = memberMapping?.uniqueIndexes ?? {}
  if (memberIndexes.organizationUser) constraintByIndex.set(memberIndexes.organizationUser, 'member.organization_user')
  if (memberIndexes.organizationEmail) constraintByIndex.set(memberIndexes.organizationEmail, 'member.organization_email')
  if (memberIndexes.inviteToken) constraintByIndex.set(memberIndexes.inviteToken, 'member.invite_token')
  return {
    dialect: options.dialect,
    prefix,
    users,
    organizations,
    userEmails: `${prefix}user_emails`,
    authProviders: `${prefix}auth_providers`,
    authIdentities: `${prefix}auth_identities`,
    member,
    members: member.table,
    auditLog: `${prefix}audit_log`,
    pipelineStates: `${prefix}pipeline_states`,
    oneTimeTokens: `${prefix}one_time_tokens`,
    pendingWork: `${prefix}pending_work`,
    organizationDomains: `${prefix}organization_domains`,
    constraintByIndex,
    index,
  }
}
