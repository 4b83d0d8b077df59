import type { UrlConfig } from '../engine/types.js'
import { normalizeEmail } from '../model/email.js'
import {
  type AuthIdentity,
  type AuthProvider,
  type Member,
  NO_FLAGS,
  type Organization,
  type User,
  type UserEmail,
} from '../model/records.js'

const EPOCH = new Date('2026-01-01T00:00:00.000Z')

/**
 * Record builders with sensible defaults, for tests and seeds.
 * @group Testing
 */
export function makeOrganization(partial: Partial<Organization> & { id: string }): Organization {
  return { slug: partial.id, name: `Org ${partial.id}`, defaultRole: 'member', require2fa: false, ...partial }
}

/** @group Testing */
export function makeUser(partial: Partial<User> & { id: string }): User {
  return {
    username: partial.id,
    email: `${partial.id}@example.com`,
    name: `User ${partial.id}`,
    isActive: true,
    isSuspended: false,
    hasUsablePassword: true,
    has2fa: false,
    createdAt: EPOCH,
    ...partial,
  }
}

/** The primary, verified address row of a user. @group Testing */
export function primaryEmailOf(user: User, partial: Partial<UserEmail> = {}): UserEmail {
  return { userId: user.id, email: user.email, emailNormalized: normalizeEmail(user.email), isVerified: true, isPrimary: true, ...partial }
}

/** @group Testing */
export function makeMember(partial: Partial<Member> & { id: string; organizationId: string }): Member {
  const email = partial.email ?? null
  return {
    userId: null,
    email,
    emailNormalized: email === null ? null : normalizeEmail(email),
    role: 'member',
    flags: NO_FLAGS,
    inviteTokenHash: null,
    inviteExpiresAt: null,
    inviteStatus: 'approved',
    createdAt: EPOCH,
    ...partial,
  }
}

/** @group Testing */
export function makeProvider(partial: Partial<AuthProvider> & { id: string; organizationId: string }): AuthProvider {
  return { providerKey: 'dummy', config: {}, allowUnlinked: false, scimEnabled: false, createdAt: EPOCH, ...partial }
}

/** @group Testing */
export function makeIdentity(partial: Partial<AuthIdentity> & { id: string; authProviderId: string; userId: string }): AuthIdentity {
  return { ident: `ext-${partial.userId}`, data: {}, lastVerified: EPOCH, lastSynced: EPOCH, createdAt: EPOCH, ...partial }
}

/**
 * URL functions laid out like Sentry's routes (spec 0.3): org login `/auth/login/{slug}/`, auth
 * settings `/settings/{slug}/auth/`, provider settings under it, landing
 * `/organizations/{slug}/issues/`, the pipeline route `{baseUrl}/auth/sso/` and the verification
 * link `{baseUrl}/auth/verify/{token}/`. For tests and examples.
 * @group Testing
 */
export function sentryStyleUrls(baseUrl: string): UrlConfig {
  return {
    baseUrl,
    orgLogin: (org) => `/auth/login/${org.slug}/`,
    authSettings: (org) => `/settings/${org.slug}/auth/`,
    providerSettings: (org) => `/settings/${org.slug}/auth/provider/`,
    afterLogin: (org) => `/organizations/${org.slug}/issues/`,
    pipelineCallback: () => `${baseUrl}/auth/sso/`,
    verifyAccount: (token) => `${baseUrl}/auth/verify/${token}/`,
  }
}
