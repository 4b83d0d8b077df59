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
  ])
  const hostUsername = options.tables?.users?.uniqueIndexes?.username
  if (hostUsername) constraintByIndex.set(hostUsername, 'user.username')
  const hostEmail = options.tables?.users?.uniqueIndexes?.email
  if (hostEmail) constraintByIndex.set(hostEmail, 'user.email')
  return {
    dialect: options.dialect,
    prefix,
    users,
    organizations,
    userEmails: `${prefix}user_emails`,
    authProviders: `${prefix}auth_providers`,
    authIdentities: `${prefix}auth_identities`,
    members: `${prefix}members`,
    auditLog: `${prefix}audit_log`,
    pipelineStates: `${prefix}pipeline_states`,
    oneTimeTokens: `${prefix}one_time_tokens`,
    pendingWork: `${prefix}pending_work`,
    organizationDomains: `${prefix}organization_domains`,
    constraintByIndex,
    index,
  }
}
