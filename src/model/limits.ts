/**
 * Size limits applied to every untrusted field at the boundary, and the widths of ssoflow's
 * string columns ({@link COLUMN_LIMITS}), from the same constants: the zod schemas of the entry
 * points and the Kysely migrations both read them, so a value the boundary accepts always fits
 * its column, and a longer one is `INPUT_INVALID` before anything is written (issue 16).
 *
 * @group Model
 */
export const LIMITS = {
  /** Maximum length of any identifier (external id, user id, org id, provider key). */
  id: 255,
  /** Maximum length of an email address (RFC 5321 path limit rounded up). */
  email: 320,
  /** Maximum length of a display name. Longer names are truncated for new users. */
  name: 200,
  /** Maximum size, in bytes of JSON, of provider data stored on an identity. */
  dataBytes: 64 * 1024,
  /** Maximum nesting depth of provider data. */
  dataDepth: 16,
  /** Maximum length of a `next` redirect path. */
  next: 2048,
  /** Maximum length of a role name (an organization's `defaultRole`, a member's `role`). */
  role: 64,
  /**
   * Maximum length of one client address as stored in the audit log (`session.ip` after
   * normalization: the first address of an `X-Forwarded-For`-like chain). Room for the longest
   * IPv6 text form (45 characters) with a zone id (`fe80::1%eth0`).
   */
  ip: 64,
  /**
   * Maximum length of `session.ip` as the host passes it, before normalization: a proxy's whole
   * `X-Forwarded-For` chain fits (only its first address is kept).
   */
  ipChain: 4096,
  /** Maximum length of a hashed token (hex SHA-256 is 64 characters). */
  tokenHash: 128,
  /** Maximum length of a one-time token's purpose, an audit event name. */
  tag: 64,
  /** Maximum length of a normalized domain (a DNS host name: 253 characters). */
  domain: 253,
  /** Maximum length of a member's invite status. */
  inviteStatus: 32,
} as const

/**
 * Width of every string column ssoflow's migrations create, by table (the default physical
 * column names, before any host mapping). The migrations read this table; the schema test
 * (test/kysely/limits.test.ts) checks that the created columns match it and that the boundary
 * refuses any value longer than its column. JSON columns (`config`, `data`, `body`, `payload`)
 * are text and bounded by {@link LIMITS.dataBytes} and the codec instead.
 *
 * @group Model
 */
export const COLUMN_LIMITS = {
  organizations: { id: LIMITS.id, slug: LIMITS.id, name: LIMITS.id, default_role: LIMITS.role },
  users: { id: LIMITS.id, username: LIMITS.id, email: LIMITS.email, name: LIMITS.id },
  user_emails: { user_id: LIMITS.id, email: LIMITS.email, email_normalized: LIMITS.email },
  auth_providers: { id: LIMITS.id, organization_id: LIMITS.id, provider_key: LIMITS.id },
  auth_identities: { id: LIMITS.id, auth_provider_id: LIMITS.id, user_id: LIMITS.id, ident: LIMITS.id },
  members: {
    id: LIMITS.id,
    organization_id: LIMITS.id,
    user_id: LIMITS.id,
    email: LIMITS.email,
    email_normalized: LIMITS.email,
    role: LIMITS.role,
    invite_token_hash: LIMITS.tokenHash,
    invite_status: LIMITS.inviteStatus,
  },
  audit_log: {
    id: LIMITS.id,
    event: LIMITS.tag,
    actor_user_id: LIMITS.id,
    organization_id: LIMITS.id,
    target_id: LIMITS.id,
    target_user_id: LIMITS.id,
    ip: LIMITS.ip,
  },
  organization_domains: {
    id: LIMITS.id,
    organization_id: LIMITS.id,
    domain: LIMITS.domain,
    verified_domain: LIMITS.domain,
    verification_token: LIMITS.tag,
  },
  pipeline_states: { id: LIMITS.id },
  one_time_tokens: { hash: LIMITS.tokenHash, purpose: LIMITS.tag },
  pending_work: {
    id: LIMITS.id,
    kind: LIMITS.tag,
    organization_id: LIMITS.id,
    // `<kind>:<provider id>`
    work_key: LIMITS.tag + 1 + LIMITS.id,
    after_id: LIMITS.id,
    claim_token: LIMITS.tag,
  },
} as const satisfies Readonly<Record<string, Readonly<Record<string, number>>>>
