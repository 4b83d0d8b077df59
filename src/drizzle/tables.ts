/**
 * ssoflow's tables as Drizzle table definitions, one set per dialect, for the host's drizzle-kit
 * migrations. They are the tables `ssoflow/kysely` migrates (same names, types and index names),
 * so either adapter can run on them.
 *
 * @module
 */
import {
  bigint as myBigint,
  boolean as myBoolean,
  index as myIndex,
  int as myInt,
  primaryKey as myPrimaryKey,
  mysqlTable,
  text as myText,
  uniqueIndex as myUnique,
  varchar as myVarchar,
} from 'drizzle-orm/mysql-core'
import { bigint, boolean, index, integer, pgTable, primaryKey, text, uniqueIndex, varchar } from 'drizzle-orm/pg-core'
import {
  index as liteIndex,
  integer as liteInteger,
  primaryKey as litePrimaryKey,
  text as liteText,
  uniqueIndex as liteUnique,
  sqliteTable,
} from 'drizzle-orm/sqlite-core'

/** The table prefix rule shared with `ssoflow/kysely`. */
const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,23}$/

function checkPrefix(prefix: string): void {
  if (!PREFIX.test(prefix)) throw new TypeError('tablePrefix must be letters, digits or _ (at most 24 characters)')
}

/**
 * ssoflow's tables for PostgreSQL (node-postgres, PGlite, any Drizzle PostgreSQL driver):
 * `varchar … collate "C"` is declared by the migrations of `ssoflow/kysely`; with drizzle-kit,
 * add `COLLATE "C"` to the id, ident and email_normalized columns in the generated SQL (exact,
 * code-point comparisons and ordering).
 *
 * @example
 * ```ts
 * // src/db/schema.ts: drizzle-kit reads the schema file's top-level exports, so export each table.
 * import { ssoflowPgTables } from 'ssoflow/drizzle'
 *
 * export const {
 *   users,
 *   organizations,
 *   userEmails,
 *   authProviders,
 *   authIdentities,
 *   members,
 *   auditLog,
 *   pipelineStates,
 *   oneTimeTokens,
 *   pendingWork,
 * } = ssoflowPgTables('sso_') // tables sso_users, sso_organizations, ...
 * ```
 * @group Drizzle
 */
export function ssoflowPgTables(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const ms = (name: string) => bigint(name, { mode: 'number' })
  return {
    users: pgTable(
      `${p}users`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        username: varchar('username', { length: 255 }).notNull(),
        email: varchar('email', { length: 320 }).notNull(),
        name: varchar('name', { length: 255 }).notNull(),
        isActive: boolean('is_active').notNull(),
        isSuspended: boolean('is_suspended').notNull(),
        hasUsablePassword: boolean('has_usable_password').notNull(),
        has2fa: boolean('has_2fa').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [uniqueIndex(`${p}users_username_uq`).on(t.username)],
    ),
    organizations: pgTable(`${p}organizations`, {
      id: varchar('id', { length: 255 }).primaryKey(),
      slug: varchar('slug', { length: 255 }).notNull(),
      name: varchar('name', { length: 255 }).notNull(),
      defaultRole: varchar('default_role', { length: 64 }).notNull(),
      require2fa: boolean('require_2fa').notNull(),
    }),
    userEmails: pgTable(
      `${p}user_emails`,
      {
        userId: varchar('user_id', { length: 255 }).notNull(),
        email: varchar('email', { length: 320 }).notNull(),
        emailNormalized: varchar('email_normalized', { length: 320 }).notNull(),
        isVerified: boolean('is_verified').notNull(),
        isPrimary: boolean('is_primary').notNull(),
      },
      (t) => [
        primaryKey({ name: `${p}user_emails_pk`, columns: [t.userId, t.emailNormalized] }),
        index(`${p}user_emails_email_ix`).on(t.emailNormalized),
      ],
    ),
    authProviders: pgTable(
      `${p}auth_providers`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        organizationId: varchar('organization_id', { length: 255 }).notNull(),
        providerKey: varchar('provider_key', { length: 255 }).notNull(),
        config: text('config').notNull(),
        allowUnlinked: boolean('allow_unlinked').notNull(),
        scimEnabled: boolean('scim_enabled').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [uniqueIndex(`${p}auth_providers_org_uq`).on(t.organizationId)],
    ),
    authIdentities: pgTable(
      `${p}auth_identities`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        authProviderId: varchar('auth_provider_id', { length: 255 }).notNull(),
        userId: varchar('user_id', { length: 255 }).notNull(),
        ident: varchar('ident', { length: 255 }).notNull(),
        data: text('data').notNull(),
        lastVerified: ms('last_verified').notNull(),
        lastSynced: ms('last_synced').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        uniqueIndex(`${p}auth_identities_ident_uq`).on(t.authProviderId, t.ident),
        uniqueIndex(`${p}auth_identities_user_uq`).on(t.authProviderId, t.userId),
        index(`${p}auth_identities_user_ix`).on(t.userId),
      ],
    ),
    members: pgTable(
      `${p}members`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        organizationId: varchar('organization_id', { length: 255 }).notNull(),
        userId: varchar('user_id', { length: 255 }),
        email: varchar('email', { length: 320 }),
        emailNormalized: varchar('email_normalized', { length: 320 }),
        role: varchar('role', { length: 64 }).notNull(),
        flagSsoLinked: boolean('flag_sso_linked').notNull(),
        flagSsoInvalid: boolean('flag_sso_invalid').notNull(),
        flagMemberLimitRestricted: boolean('flag_member_limit_restricted').notNull(),
        flagIdpProvisioned: boolean('flag_idp_provisioned').notNull(),
        flagIdpRoleRestricted: boolean('flag_idp_role_restricted').notNull(),
        inviteTokenHash: varchar('invite_token_hash', { length: 128 }),
        inviteExpiresAt: ms('invite_expires_at'),
        inviteStatus: varchar('invite_status', { length: 32 }).notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        uniqueIndex(`${p}members_org_user_uq`).on(t.organizationId, t.userId),
        uniqueIndex(`${p}members_org_email_uq`).on(t.organizationId, t.emailNormalized),
        uniqueIndex(`${p}members_token_uq`).on(t.inviteTokenHash),
        index(`${p}members_user_ix`).on(t.userId),
        index(`${p}members_org_id_ix`).on(t.organizationId, t.id),
      ],
    ),
    auditLog: pgTable(
      `${p}audit_log`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        event: varchar('event', { length: 64 }).notNull(),
        actorUserId: varchar('actor_user_id', { length: 255 }),
        organizationId: varchar('organization_id', { length: 255 }).notNull(),
        targetId: varchar('target_id', { length: 255 }),
        targetUserId: varchar('target_user_id', { length: 255 }),
        ip: varchar('ip', { length: 64 }),
        data: text('data').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [index(`${p}audit_log_org_ix`).on(t.organizationId, t.createdAt)],
    ),
    pipelineStates: pgTable(
      `${p}pipeline_states`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        version: integer('version').notNull(),
        body: text('body').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [index(`${p}pipeline_states_exp_ix`).on(t.expiresAt)],
    ),
    oneTimeTokens: pgTable(
      `${p}one_time_tokens`,
      {
        hash: varchar('hash', { length: 128 }).primaryKey(),
        purpose: varchar('purpose', { length: 64 }).notNull(),
        payload: text('payload').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [index(`${p}one_time_tokens_exp_ix`).on(t.expiresAt)],
    ),
    // Verified domains (issue 13; `ssoflow/kysely` migration 0003): `verified_domain` is the
    // domain while verified, NULL otherwise; its unique index = one verified org per domain.
    organizationDomains: pgTable(
      `${p}organization_domains`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        organizationId: varchar('organization_id', { length: 255 }).notNull(),
        domain: varchar('domain', { length: 253 }).notNull(),
        verifiedDomain: varchar('verified_domain', { length: 253 }),
        verificationToken: varchar('verification_token', { length: 64 }).notNull(),
        verifiedAt: ms('verified_at'),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        uniqueIndex(`${p}org_domains_org_domain_uq`).on(t.organizationId, t.domain),
        uniqueIndex(`${p}org_domains_verified_uq`).on(t.verifiedDomain),
      ],
    ),
    pendingWork: pgTable(
      `${p}pending_work`,
      {
        id: varchar('id', { length: 255 }).primaryKey(),
        kind: varchar('kind', { length: 64 }).notNull(),
        organizationId: varchar('organization_id', { length: 255 }).notNull(),
        workKey: varchar('work_key', { length: 320 }).notNull(),
        payload: text('payload').notNull(),
        afterId: varchar('after_id', { length: 255 }),
        attempts: integer('attempts').notNull(),
        availableAt: ms('available_at').notNull(),
        claimToken: varchar('claim_token', { length: 64 }),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [uniqueIndex(`${p}pending_work_key_uq`).on(t.workKey), index(`${p}pending_work_avail_ix`).on(t.availableAt, t.id)],
    ),
  }
}

/**
 * ssoflow's tables for SQLite (better-sqlite3, libsql). Booleans are integers 0/1, dates integer
 * epoch milliseconds, JSON text.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { desc, eq } from 'drizzle-orm'
 * import { drizzle } from 'drizzle-orm/better-sqlite3'
 * import { ssoflowSqliteTables } from 'ssoflow/drizzle'
 *
 * // The org's SSO audit trail, newest first, with Drizzle's typed query builder.
 * const sso = ssoflowSqliteTables() // ssoflow_audit_log, ...
 * const db = drizzle(new Database('app.db'))
 * const entries = db.select().from(sso.auditLog).where(eq(sso.auditLog.organizationId, 'org-acme')).orderBy(desc(sso.auditLog.createdAt)).limit(20).all()
 * ```
 * @group Drizzle
 */
export function ssoflowSqliteTables(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const bool = (name: string) => liteInteger(name, { mode: 'boolean' })
  const ms = (name: string) => liteInteger(name)
  return {
    users: sqliteTable(
      `${p}users`,
      {
        id: liteText('id').primaryKey(),
        username: liteText('username').notNull(),
        email: liteText('email').notNull(),
        name: liteText('name').notNull(),
        isActive: bool('is_active').notNull(),
        isSuspended: bool('is_suspended').notNull(),
        hasUsablePassword: bool('has_usable_password').notNull(),
        has2fa: bool('has_2fa').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [liteUnique(`${p}users_username_uq`).on(t.username)],
    ),
    organizations: sqliteTable(`${p}organizations`, {
      id: liteText('id').primaryKey(),
      slug: liteText('slug').notNull(),
      name: liteText('name').notNull(),
      defaultRole: liteText('default_role').notNull(),
      require2fa: bool('require_2fa').notNull(),
    }),
    userEmails: sqliteTable(
      `${p}user_emails`,
      {
        userId: liteText('user_id').notNull(),
        email: liteText('email').notNull(),
        emailNormalized: liteText('email_normalized').notNull(),
        isVerified: bool('is_verified').notNull(),
        isPrimary: bool('is_primary').notNull(),
      },
      (t) => [
        litePrimaryKey({ name: `${p}user_emails_pk`, columns: [t.userId, t.emailNormalized] }),
        liteIndex(`${p}user_emails_email_ix`).on(t.emailNormalized),
      ],
    ),
    authProviders: sqliteTable(
      `${p}auth_providers`,
      {
        id: liteText('id').primaryKey(),
        organizationId: liteText('organization_id').notNull(),
        providerKey: liteText('provider_key').notNull(),
        config: liteText('config').notNull(),
        allowUnlinked: bool('allow_unlinked').notNull(),
        scimEnabled: bool('scim_enabled').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [liteUnique(`${p}auth_providers_org_uq`).on(t.organizationId)],
    ),
    authIdentities: sqliteTable(
      `${p}auth_identities`,
      {
        id: liteText('id').primaryKey(),
        authProviderId: liteText('auth_provider_id').notNull(),
        userId: liteText('user_id').notNull(),
        ident: liteText('ident').notNull(),
        data: liteText('data').notNull(),
        lastVerified: ms('last_verified').notNull(),
        lastSynced: ms('last_synced').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        liteUnique(`${p}auth_identities_ident_uq`).on(t.authProviderId, t.ident),
        liteUnique(`${p}auth_identities_user_uq`).on(t.authProviderId, t.userId),
        liteIndex(`${p}auth_identities_user_ix`).on(t.userId),
      ],
    ),
    members: sqliteTable(
      `${p}members`,
      {
        id: liteText('id').primaryKey(),
        organizationId: liteText('organization_id').notNull(),
        userId: liteText('user_id'),
        email: liteText('email'),
        emailNormalized: liteText('email_normalized'),
        role: liteText('role').notNull(),
        flagSsoLinked: bool('flag_sso_linked').notNull(),
        flagSsoInvalid: bool('flag_sso_invalid').notNull(),
        flagMemberLimitRestricted: bool('flag_member_limit_restricted').notNull(),
        flagIdpProvisioned: bool('flag_idp_provisioned').notNull(),
        flagIdpRoleRestricted: bool('flag_idp_role_restricted').notNull(),
        inviteTokenHash: liteText('invite_token_hash'),
        inviteExpiresAt: ms('invite_expires_at'),
        inviteStatus: liteText('invite_status').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        liteUnique(`${p}members_org_user_uq`).on(t.organizationId, t.userId),
        liteUnique(`${p}members_org_email_uq`).on(t.organizationId, t.emailNormalized),
        liteUnique(`${p}members_token_uq`).on(t.inviteTokenHash),
        liteIndex(`${p}members_user_ix`).on(t.userId),
        liteIndex(`${p}members_org_id_ix`).on(t.organizationId, t.id),
      ],
    ),
    auditLog: sqliteTable(
      `${p}audit_log`,
      {
        id: liteText('id').primaryKey(),
        event: liteText('event').notNull(),
        actorUserId: liteText('actor_user_id'),
        organizationId: liteText('organization_id').notNull(),
        targetId: liteText('target_id'),
        targetUserId: liteText('target_user_id'),
        ip: liteText('ip'),
        data: liteText('data').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [liteIndex(`${p}audit_log_org_ix`).on(t.organizationId, t.createdAt)],
    ),
    pipelineStates: sqliteTable(
      `${p}pipeline_states`,
      {
        id: liteText('id').primaryKey(),
        version: liteInteger('version').notNull(),
        body: liteText('body').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [liteIndex(`${p}pipeline_states_exp_ix`).on(t.expiresAt)],
    ),
    oneTimeTokens: sqliteTable(
      `${p}one_time_tokens`,
      {
        hash: liteText('hash').primaryKey(),
        purpose: liteText('purpose').notNull(),
        payload: liteText('payload').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [liteIndex(`${p}one_time_tokens_exp_ix`).on(t.expiresAt)],
    ),
    organizationDomains: sqliteTable(
      `${p}organization_domains`,
      {
        id: liteText('id').primaryKey(),
        organizationId: liteText('organization_id').notNull(),
        domain: liteText('domain').notNull(),
        verifiedDomain: liteText('verified_domain'),
        verificationToken: liteText('verification_token').notNull(),
        verifiedAt: ms('verified_at'),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        liteUnique(`${p}org_domains_org_domain_uq`).on(t.organizationId, t.domain),
        liteUnique(`${p}org_domains_verified_uq`).on(t.verifiedDomain),
      ],
    ),
    pendingWork: sqliteTable(
      `${p}pending_work`,
      {
        id: liteText('id').primaryKey(),
        kind: liteText('kind').notNull(),
        organizationId: liteText('organization_id').notNull(),
        workKey: liteText('work_key').notNull(),
        payload: liteText('payload').notNull(),
        afterId: liteText('after_id'),
        attempts: liteInteger('attempts').notNull(),
        availableAt: ms('available_at').notNull(),
        claimToken: liteText('claim_token'),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [liteUnique(`${p}pending_work_key_uq`).on(t.workKey), liteIndex(`${p}pending_work_avail_ix`).on(t.availableAt, t.id)],
    ),
  }
}

/**
 * ssoflow's tables for MySQL / MariaDB (mysql2). Create them with a no-pad binary collation
 * (`utf8mb4_0900_bin` on MySQL, `utf8mb4_nopad_bin` on MariaDB): exact comparisons.
 *
 * @example
 * ```ts
 * import { count, eq } from 'drizzle-orm'
 * import { drizzle } from 'drizzle-orm/mysql2'
 * import mysql from 'mysql2/promise'
 * import { ssoflowMysqlTables } from 'ssoflow/drizzle'
 *
 * // How many members of an org have linked their identity (an admin dashboard).
 * const sso = ssoflowMysqlTables('sso_')
 * const db = drizzle(mysql.createPool({ uri: connectionString }))
 * const [row] = await db
 *   .select({ linked: count() })
 *   .from(sso.authIdentities)
 *   .innerJoin(sso.authProviders, eq(sso.authIdentities.authProviderId, sso.authProviders.id))
 *   .where(eq(sso.authProviders.organizationId, 'org-acme'))
 * ```
 * @group Drizzle
 */
export function ssoflowMysqlTables(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const str = (name: string, length: number) => myVarchar(name, { length })
  const ms = (name: string) => myBigint(name, { mode: 'number' })
  return {
    users: mysqlTable(
      `${p}users`,
      {
        id: str('id', 255).primaryKey(),
        username: str('username', 255).notNull(),
        email: str('email', 320).notNull(),
        name: str('name', 255).notNull(),
        isActive: myBoolean('is_active').notNull(),
        isSuspended: myBoolean('is_suspended').notNull(),
        hasUsablePassword: myBoolean('has_usable_password').notNull(),
        has2fa: myBoolean('has_2fa').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [myUnique(`${p}users_username_uq`).on(t.username)],
    ),
    organizations: mysqlTable(`${p}organizations`, {
      id: str('id', 255).primaryKey(),
      slug: str('slug', 255).notNull(),
      name: str('name', 255).notNull(),
      defaultRole: str('default_role', 64).notNull(),
      require2fa: myBoolean('require_2fa').notNull(),
    }),
    userEmails: mysqlTable(
      `${p}user_emails`,
      {
        userId: str('user_id', 255).notNull(),
        email: str('email', 320).notNull(),
        emailNormalized: str('email_normalized', 320).notNull(),
        isVerified: myBoolean('is_verified').notNull(),
        isPrimary: myBoolean('is_primary').notNull(),
      },
      (t) => [
        myPrimaryKey({ name: `${p}user_emails_pk`, columns: [t.userId, t.emailNormalized] }),
        myIndex(`${p}user_emails_email_ix`).on(t.emailNormalized),
      ],
    ),
    authProviders: mysqlTable(
      `${p}auth_providers`,
      {
        id: str('id', 255).primaryKey(),
        organizationId: str('organization_id', 255).notNull(),
        providerKey: str('provider_key', 255).notNull(),
        config: myText('config').notNull(),
        allowUnlinked: myBoolean('allow_unlinked').notNull(),
        scimEnabled: myBoolean('scim_enabled').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [myUnique(`${p}auth_providers_org_uq`).on(t.organizationId)],
    ),
    authIdentities: mysqlTable(
      `${p}auth_identities`,
      {
        id: str('id', 255).primaryKey(),
        authProviderId: str('auth_provider_id', 255).notNull(),
        userId: str('user_id', 255).notNull(),
        ident: str('ident', 255).notNull(),
        data: myText('data').notNull(),
        lastVerified: ms('last_verified').notNull(),
        lastSynced: ms('last_synced').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        myUnique(`${p}auth_identities_ident_uq`).on(t.authProviderId, t.ident),
        myUnique(`${p}auth_identities_user_uq`).on(t.authProviderId, t.userId),
        myIndex(`${p}auth_identities_user_ix`).on(t.userId),
      ],
    ),
    members: mysqlTable(
      `${p}members`,
      {
        id: str('id', 255).primaryKey(),
        organizationId: str('organization_id', 255).notNull(),
        userId: str('user_id', 255),
        email: str('email', 320),
        emailNormalized: str('email_normalized', 320),
        role: str('role', 64).notNull(),
        flagSsoLinked: myBoolean('flag_sso_linked').notNull(),
        flagSsoInvalid: myBoolean('flag_sso_invalid').notNull(),
        flagMemberLimitRestricted: myBoolean('flag_member_limit_restricted').notNull(),
        flagIdpProvisioned: myBoolean('flag_idp_provisioned').notNull(),
        flagIdpRoleRestricted: myBoolean('flag_idp_role_restricted').notNull(),
        inviteTokenHash: str('invite_token_hash', 128),
        inviteExpiresAt: ms('invite_expires_at'),
        inviteStatus: str('invite_status', 32).notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        myUnique(`${p}members_org_user_uq`).on(t.organizationId, t.userId),
        myUnique(`${p}members_org_email_uq`).on(t.organizationId, t.emailNormalized),
        myUnique(`${p}members_token_uq`).on(t.inviteTokenHash),
        myIndex(`${p}members_user_ix`).on(t.userId),
        myIndex(`${p}members_org_id_ix`).on(t.organizationId, t.id),
      ],
    ),
    auditLog: mysqlTable(
      `${p}audit_log`,
      {
        id: str('id', 255).primaryKey(),
        event: str('event', 64).notNull(),
        actorUserId: str('actor_user_id', 255),
        organizationId: str('organization_id', 255).notNull(),
        targetId: str('target_id', 255),
        targetUserId: str('target_user_id', 255),
        ip: str('ip', 64),
        data: myText('data').notNull(),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [myIndex(`${p}audit_log_org_ix`).on(t.organizationId, t.createdAt)],
    ),
    pipelineStates: mysqlTable(
      `${p}pipeline_states`,
      {
        id: str('id', 255).primaryKey(),
        version: myInt('version').notNull(),
        body: myText('body').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [myIndex(`${p}pipeline_states_exp_ix`).on(t.expiresAt)],
    ),
    oneTimeTokens: mysqlTable(
      `${p}one_time_tokens`,
      {
        hash: str('hash', 128).primaryKey(),
        purpose: str('purpose', 64).notNull(),
        payload: myText('payload').notNull(),
        expiresAt: ms('expires_at').notNull(),
      },
      (t) => [myIndex(`${p}one_time_tokens_exp_ix`).on(t.expiresAt)],
    ),
    organizationDomains: mysqlTable(
      `${p}organization_domains`,
      {
        id: str('id', 255).primaryKey(),
        organizationId: str('organization_id', 255).notNull(),
        domain: str('domain', 253).notNull(),
        verifiedDomain: str('verified_domain', 253),
        verificationToken: str('verification_token', 64).notNull(),
        verifiedAt: ms('verified_at'),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [
        myUnique(`${p}org_domains_org_domain_uq`).on(t.organizationId, t.domain),
        myUnique(`${p}org_domains_verified_uq`).on(t.verifiedDomain),
      ],
    ),
    pendingWork: mysqlTable(
      `${p}pending_work`,
      {
        id: str('id', 255).primaryKey(),
        kind: str('kind', 64).notNull(),
        organizationId: str('organization_id', 255).notNull(),
        workKey: str('work_key', 320).notNull(),
        payload: myText('payload').notNull(),
        afterId: str('after_id', 255),
        attempts: myInt('attempts').notNull(),
        availableAt: ms('available_at').notNull(),
        claimToken: str('claim_token', 64),
        createdAt: ms('created_at').notNull(),
      },
      (t) => [myUnique(`${p}pending_work_key_uq`).on(t.workKey), myIndex(`${p}pending_work_avail_ix`).on(t.availableAt, t.id)],
    ),
  }
}

/**
 * ssoflow's side table for PostgreSQL, `<prefix>member_flags`: the member fields a host's own
 * memberships table (`tables.members`) has no column for, one row per membership keyed by its
 * id. Add it to your drizzle-kit schema only when you map memberships and leave fields out.
 *
 * @example
 * ```ts
 * // src/db/schema.ts: the host's own memberships table replaces ssoflow's; the side table joins.
 * import { ssoflowPgMemberFlags, ssoflowPgTables } from 'ssoflow/drizzle'
 *
 * const { members: _ownTable, ...sso } = ssoflowPgTables('sso_')
 * export const { users, organizations, userEmails, authProviders, authIdentities, auditLog, pipelineStates, oneTimeTokens, pendingWork } = sso
 * export const memberFlags = ssoflowPgMemberFlags('sso_') // sso_member_flags
 * ```
 * @group Drizzle
 */
export function ssoflowPgMemberFlags(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const ms = (name: string) => bigint(name, { mode: 'number' })
  return pgTable(
    `${p}member_flags`,
    {
      memberId: varchar('member_id', { length: 255 }).primaryKey(),
      organizationId: varchar('organization_id', { length: 255 }).notNull(),
      email: varchar('email', { length: 320 }),
      emailNormalized: varchar('email_normalized', { length: 320 }),
      flagSsoLinked: boolean('flag_sso_linked'),
      flagSsoInvalid: boolean('flag_sso_invalid'),
      flagMemberLimitRestricted: boolean('flag_member_limit_restricted'),
      flagIdpProvisioned: boolean('flag_idp_provisioned'),
      flagIdpRoleRestricted: boolean('flag_idp_role_restricted'),
      inviteTokenHash: varchar('invite_token_hash', { length: 128 }),
      inviteExpiresAt: ms('invite_expires_at'),
      inviteStatus: varchar('invite_status', { length: 32 }),
    },
    (t) => [
      uniqueIndex(`${p}member_flags_org_email_uq`).on(t.organizationId, t.emailNormalized),
      uniqueIndex(`${p}member_flags_token_uq`).on(t.inviteTokenHash),
    ],
  )
}

/**
 * ssoflow's side table `<prefix>member_flags` for SQLite (see {@link ssoflowPgMemberFlags}).
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { eq } from 'drizzle-orm'
 * import { drizzle } from 'drizzle-orm/better-sqlite3'
 * import { ssoflowSqliteMemberFlags } from 'ssoflow/drizzle'
 *
 * // Which memberships of an org have linked SSO (a host report over the side table).
 * const memberFlags = ssoflowSqliteMemberFlags('sso_')
 * const db = drizzle(new Database('app.db'))
 * const linked = db.select({ id: memberFlags.memberId }).from(memberFlags).where(eq(memberFlags.flagSsoLinked, true)).all()
 * console.log(linked.length)
 * ```
 * @group Drizzle
 */
export function ssoflowSqliteMemberFlags(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const bool = (name: string) => liteInteger(name, { mode: 'boolean' })
  return sqliteTable(
    `${p}member_flags`,
    {
      memberId: liteText('member_id').primaryKey(),
      organizationId: liteText('organization_id').notNull(),
      email: liteText('email'),
      emailNormalized: liteText('email_normalized'),
      flagSsoLinked: bool('flag_sso_linked'),
      flagSsoInvalid: bool('flag_sso_invalid'),
      flagMemberLimitRestricted: bool('flag_member_limit_restricted'),
      flagIdpProvisioned: bool('flag_idp_provisioned'),
      flagIdpRoleRestricted: bool('flag_idp_role_restricted'),
      inviteTokenHash: liteText('invite_token_hash'),
      inviteExpiresAt: liteInteger('invite_expires_at'),
      inviteStatus: liteText('invite_status'),
    },
    (t) => [
      liteUnique(`${p}member_flags_org_email_uq`).on(t.organizationId, t.emailNormalized),
      liteUnique(`${p}member_flags_token_uq`).on(t.inviteTokenHash),
    ],
  )
}

/**
 * ssoflow's side table `<prefix>member_flags` for MySQL / MariaDB (see {@link ssoflowPgMemberFlags}).
 *
 * @example
 * ```ts
 * import { eq } from 'drizzle-orm'
 * import { drizzle } from 'drizzle-orm/mysql2'
 * import mysql from 'mysql2/promise'
 * import { ssoflowMysqlMemberFlags } from 'ssoflow/drizzle'
 *
 * // When the host deletes a membership, it deletes its side row in the same transaction.
 * const memberFlags = ssoflowMysqlMemberFlags('sso_')
 * const db = drizzle(mysql.createPool({ uri: connectionString }))
 * await db.delete(memberFlags).where(eq(memberFlags.memberId, 'member-42'))
 * ```
 * @group Drizzle
 */
export function ssoflowMysqlMemberFlags(tablePrefix = 'ssoflow_') {
  checkPrefix(tablePrefix)
  const p = tablePrefix
  const str = (name: string, length: number) => myVarchar(name, { length })
  return mysqlTable(
    `${p}member_flags`,
    {
      memberId: str('member_id', 255).primaryKey(),
      organizationId: str('organization_id', 255).notNull(),
      email: str('email', 320),
      emailNormalized: str('email_normalized', 320),
      flagSsoLinked: myBoolean('flag_sso_linked'),
      flagSsoInvalid: myBoolean('flag_sso_invalid'),
      flagMemberLimitRestricted: myBoolean('flag_member_limit_restricted'),
      flagIdpProvisioned: myBoolean('flag_idp_provisioned'),
      flagIdpRoleRestricted: myBoolean('flag_idp_role_restricted'),
      inviteTokenHash: str('invite_token_hash', 128),
      inviteExpiresAt: myBigint('invite_expires_at', { mode: 'number' }),
      inviteStatus: str('invite_status', 32),
    },
    (t) => [
      myUnique(`${p}member_flags_org_email_uq`).on(t.organizationId, t.emailNormalized),
      myUnique(`${p}member_flags_token_uq`).on(t.inviteTokenHash),
    ],
  )
}
