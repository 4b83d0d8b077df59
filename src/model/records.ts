import type { JsonObject } from './identity.js'

/**
 * A user account as the host knows it. Users may be host-owned; the storage port maps them.
 * @group Model
 */
export interface User {
  readonly id: string
  /** Unique. SSO-created users get a random 32-hex-character username. */
  readonly username: string
  /** Primary email as entered. */
  readonly email: string
  /** Display name, at most 200 characters. */
  readonly name: string
  /** Inactive users are invisible to email resolution; their identities count as unknown. */
  readonly isActive: boolean
  /** Suspended users can never complete a login (USER_SUSPENDED). */
  readonly isSuspended: boolean
  /** False for accounts created by SSO (no password): they prove ownership by email link. */
  readonly hasUsablePassword: boolean
  /** Whether the user has a second factor enrolled. */
  readonly has2fa: boolean
  readonly createdAt: Date
}

/**
 * An email address of a user (primary or secondary).
 * @group Model
 */
export interface UserEmail {
  readonly userId: string
  readonly email: string
  /** {@link normalizeEmail} of `email`; lookups use this column. */
  readonly emailNormalized: string
  readonly isVerified: boolean
  /** True when this row is the user's primary address. */
  readonly isPrimary: boolean
}

/**
 * A tenant.
 * @group Model
 */
export interface Organization {
  readonly id: string
  readonly slug: string
  readonly name: string
  /** Role given to new SSO memberships. */
  readonly defaultRole: string
  /** Org requires 2FA; setup turns it off (SSO and required 2FA are exclusive). */
  readonly require2fa: boolean
}

/**
 * An organization's SSO configuration. At most one per organization.
 * @group Model
 */
export interface AuthProvider {
  readonly id: string
  /** Unique: an organization has at most one provider. */
  readonly organizationId: string
  /** The provider key, e.g. `dummy`, `oidc`, `okta`. */
  readonly providerKey: string
  /** Provider configuration built by `buildConfig`. May contain secrets: never log it raw. */
  readonly config: JsonObject
  /** "Grant access to members who have not linked SSO accounts" (the inverse of Require SSO). */
  readonly allowUnlinked: boolean
  readonly scimEnabled: boolean
  readonly createdAt: Date
}

/**
 * A link from one IdP subject to one user, per provider.
 * Unique on (authProviderId, ident) and on (authProviderId, userId).
 * @group Model
 */
export interface AuthIdentity {
  readonly id: string
  readonly authProviderId: string
  readonly userId: string
  /** The IdP's stable id for the subject. */
  readonly ident: string
  /** Provider data (tokens). Treat as secret. */
  readonly data: JsonObject
  readonly lastVerified: Date
  readonly lastSynced: Date
  readonly createdAt: Date
}

/**
 * Member flags. Linking touches only `ssoLinked` and `ssoInvalid`; the others are preserved.
 * Names map to Sentry's: `sso:linked`, `sso:invalid`, `member-limit:restricted`,
 * `idp:provisioned`, `idp:role-restricted`.
 * @group Model
 */
export interface MemberFlags {
  readonly ssoLinked: boolean
  readonly ssoInvalid: boolean
  readonly memberLimitRestricted: boolean
  readonly idpProvisioned: boolean
  readonly idpRoleRestricted: boolean
}

/** All flags off. */
export const NO_FLAGS: MemberFlags = Object.freeze({
  ssoLinked: false,
  ssoInvalid: false,
  memberLimitRestricted: false,
  idpProvisioned: false,
  idpRoleRestricted: false,
})

/**
 * Invite status: an approved invite, or a request (to be invited / to join) awaiting approval.
 * @group Model
 */
export type InviteStatus = 'approved' | 'requested_to_be_invited' | 'requested_to_join'

/**
 * A membership, or a pending invite when `userId` is null.
 * Unique on (organizationId, userId), (organizationId, emailNormalized), inviteTokenHash.
 * @group Model
 */
export interface Member {
  readonly id: string
  readonly organizationId: string
  /** Null for a pending invite or an invite request. */
  readonly userId: string | null
  /** Invite address (pending invites); null once accepted or for direct memberships. */
  readonly email: string | null
  /** {@link normalizeEmail} of `email`. */
  readonly emailNormalized: string | null
  readonly role: string
  readonly flags: MemberFlags
  /** SHA-256 (hex) of the invite token. The token itself is never stored. */
  readonly inviteTokenHash: string | null
  readonly inviteExpiresAt: Date | null
  readonly inviteStatus: InviteStatus
  readonly createdAt: Date
}

/**
 * A domain an organization claims (issue 13), for home-realm discovery: `beginLogin({ email })`
 * finds the one organization that has the address's domain VERIFIED. An organization claims a
 * domain once (unique on organization + domain); several organizations may claim one domain,
 * but at most one may have it verified (unique on the domain among verified rows).
 * @group Model
 */
export interface OrganizationDomain {
  readonly id: string
  readonly organizationId: string
  /** Normalized with {@link normalizeDomain}: lowercase A-labels, no trailing dot. */
  readonly domain: string
  /**
   * A random value generated by ssoflow when the domain is added, which the host asks the
   * domain's owner to publish (a DNS TXT record) before it marks the domain verified. Not a
   * secret (it is published), so it is stored as is and shown again in the admin's list.
   */
  readonly verificationToken: string
  /** When the host marked the domain verified; null while it is only claimed. */
  readonly verifiedAt: Date | null
  readonly createdAt: Date
}

/**
 * An audit entry. Written inside the storage transaction.
 * @group Model
 */
export interface AuditEntry {
  readonly id: string
  readonly event: AuditEvent
  readonly actorUserId: string | null
  readonly organizationId: string
  readonly targetId: string | null
  readonly targetUserId: string | null
  readonly ip: string | null
  readonly data: JsonObject
  readonly createdAt: Date
}

/**
 * Audit event names (Sentry's audit registry names).
 * @group Model
 */
export type AuditEvent =
  | 'member.add'
  | 'member.accept-invite'
  | 'sso-identity.link'
  /** An anonymous pipeline proved an existing account (threats 2, 3); lists the identities left or removed. */
  | 'sso-identity.claim'
  | 'sso.enable'
  | 'sso.disable'
  | 'sso.edit'
  | 'org.edit'
  /** A domain was claimed, verified or removed (issue 13); `data.domain` names it. */
  | 'domain.add'
  | 'domain.verify'
  | 'domain.remove'
