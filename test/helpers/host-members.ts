/**
 * A host's own users, organizations and memberships tables (issue 19 item 2), with column names
 * unlike ssoflow's, for the Kysely and Drizzle adapters' tests. Variants of the memberships table:
 *
 * - `columns`: a column for every member field (flags and invite fields included);
 * - `side`: only id, organization, user, role and join date: ssoflow keeps the flags and invite
 *   fields in its side table `<prefix>member_flags`;
 * - `derived`: as `columns`, but `idp_provisioned` is a generated column the host derives from
 *   `provisioned_by` (ssoflow reads it and never writes it).
 */
import type { SqlDialect } from '../../src/kysely/schema.js'

export type HostVariant = 'columns' | 'side' | 'derived'

/** The host tables' names (all prefixed) and unique index names. */
export interface HostNames {
  readonly users: string
  readonly orgs: string
  readonly members: string
  readonly usersLoginKey: string
  readonly usersMailKey: string
  readonly membersOrgAccountKey: string
  readonly membersOrgEmailKey: string
  readonly membersTokenKey: string
}

export function hostNames(p: string): HostNames {
  return {
    users: `${p}app_users`,
    orgs: `${p}app_orgs`,
    members: `${p}app_members`,
    usersLoginKey: `${p}app_users_login_key`,
    usersMailKey: `${p}app_users_mail_key`,
    membersOrgAccountKey: `${p}app_members_org_account_key`,
    membersOrgEmailKey: `${p}app_members_org_email_key`,
    membersTokenKey: `${p}app_members_token_key`,
  }
}

/** Every member field the side variant keeps in ssoflow's side table. */
export const SIDE_FIELDS = [
  'ssoLinked',
  'ssoInvalid',
  'memberLimitRestricted',
  'idpProvisioned',
  'idpRoleRestricted',
  'email',
  'emailNormalized',
  'inviteTokenHash',
  'inviteExpiresAt',
  'inviteStatus',
] as const

/**
 * Creates the host's tables. `mysqlCollation`: the no-pad binary collation of ssoflow's tables
 * (the host's join columns need a compatible one on MySQL / MariaDB).
 */
export async function createHostTables(
  exec: (text: string) => Promise<void>,
  dialect: SqlDialect,
  mysqlCollation: string | null,
  p: string,
  variant: HostVariant,
): Promise<HostNames> {
  const n = hostNames(p)
  const b = dialect === 'postgres' ? 'boolean' : 'integer'
  const bool = dialect === 'mysql' ? 'boolean' : b
  const str = (len: number) => `varchar(${len})`
  const end = dialect === 'mysql' ? ` engine=InnoDB default character set utf8mb4 collate ${mysqlCollation ?? 'utf8mb4_bin'}` : ''
  await exec(
    `create table ${n.users} (uid ${str(255)} primary key, login ${str(255)} not null, mail ${str(320)} not null,
      display_name ${str(255)} not null, active ${bool} not null, suspended ${bool} not null, has_password ${bool} not null,
      mfa ${bool} not null, joined bigint not null)${end}`,
  )
  await exec(`create unique index ${n.usersLoginKey} on ${n.users} (login)`)
  await exec(`create unique index ${n.usersMailKey} on ${n.users} (mail)`)
  await exec(
    `create table ${n.orgs} (oid ${str(255)} primary key, handle ${str(255)} not null, title ${str(255)} not null,
      role_default ${str(64)} not null, mfa_required ${bool} not null)${end}`,
  )
  if (variant === 'side') {
    await exec(
      `create table ${n.members} (member_id ${str(255)} primary key, org_id ${str(255)} not null, account_id ${str(255)},
        member_role ${str(64)} not null, joined_at bigint not null)${end}`,
    )
    await exec(`create unique index ${n.membersOrgAccountKey} on ${n.members} (org_id, account_id)`)
    return n
  }
  const derived =
    variant !== 'derived'
      ? `idp_provisioned ${bool} not null`
      : dialect === 'postgres'
        ? `provisioned_by ${str(255)}, idp_provisioned boolean generated always as (provisioned_by is not null) stored`
        : dialect === 'sqlite'
          ? `provisioned_by ${str(255)}, idp_provisioned integer generated always as (provisioned_by is not null) virtual`
          : `provisioned_by ${str(255)}, idp_provisioned boolean generated always as (provisioned_by is not null) virtual`
  await exec(
    `create table ${n.members} (member_id ${str(255)} primary key, org_id ${str(255)} not null, account_id ${str(255)},
      invite_email ${str(320)}, invite_email_norm ${str(320)}, member_role ${str(64)} not null,
      sso_linked ${bool} not null, sso_invalid ${bool} not null, limit_restricted ${bool} not null, ${derived},
      role_restricted ${bool} not null, token_hash ${str(128)}, token_expires bigint, invite_state ${str(32)} not null,
      joined_at bigint not null)${end}`,
  )
  await exec(`create unique index ${n.membersOrgAccountKey} on ${n.members} (org_id, account_id)`)
  await exec(`create unique index ${n.membersOrgEmailKey} on ${n.members} (org_id, invite_email_norm)`)
  await exec(`create unique index ${n.membersTokenKey} on ${n.members} (token_hash)`)
  return n
}

export async function dropHostTables(exec: (text: string) => Promise<void>, n: HostNames): Promise<void> {
  for (const t of [n.members, n.orgs, n.users]) await exec(`drop table if exists ${t}`)
}

/** The Kysely mapping of the host tables (`tables` of `createKyselyStorage` / `migrateSsoflow`). */
export function kyselyHostMapping(n: HostNames, variant: HostVariant) {
  const users = {
    table: n.users,
    columns: {
      id: 'uid',
      username: 'login',
      email: 'mail',
      name: 'display_name',
      isActive: 'active',
      isSuspended: 'suspended',
      hasUsablePassword: 'has_password',
      has2fa: 'mfa',
      createdAt: 'joined',
    },
    uniqueIndexes: { username: n.usersLoginKey, email: n.usersMailKey },
  }
  const organizations = {
    table: n.orgs,
    columns: { id: 'oid', slug: 'handle', name: 'title', defaultRole: 'role_default', require2fa: 'mfa_required' },
  }
  const base = { id: 'member_id', organizationId: 'org_id', userId: 'account_id', role: 'member_role', createdAt: 'joined_at' }
  const members =
    variant === 'side'
      ? { table: n.members, columns: base, sideTable: SIDE_FIELDS, uniqueIndexes: { organizationUser: n.membersOrgAccountKey } }
      : {
          table: n.members,
          columns: {
            ...base,
            email: 'invite_email',
            emailNormalized: 'invite_email_norm',
            ssoLinked: 'sso_linked',
            ssoInvalid: 'sso_invalid',
            memberLimitRestricted: 'limit_restricted',
            idpProvisioned: 'idp_provisioned',
            idpRoleRestricted: 'role_restricted',
            inviteTokenHash: 'token_hash',
            inviteExpiresAt: 'token_expires',
            inviteStatus: 'invite_state',
          },
          readOnly: variant === 'derived' ? (['idpProvisioned'] as const) : undefined,
          uniqueIndexes: {
            organizationUser: n.membersOrgAccountKey,
            organizationEmail: n.membersOrgEmailKey,
            inviteToken: n.membersTokenKey,
          },
        }
  return { users, organizations, members }
}
