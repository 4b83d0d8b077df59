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
 *
 * @example
 * ```ts
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { makeOrganization } from 'ssoflow/testing'
 *
 * const acme = makeOrganization({ id: 'org-acme', slug: 'acme', name: 'Acme' }) // defaultRole 'member', require2fa false
 * const storage = createMemoryStorage()
 * storage.seed({ organizations: [acme] })
 * ```
 * @group Testing
 */
export function makeOrganization(partial: Partial<Organization> & { id: string }): Organization {
  return { slug: partial.id, name: `Org ${partial.id}`, defaultRole: 'member', require2fa: false, ...partial }
}

/**
 * @example
 * ```ts
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { makeUser } from 'ssoflow/testing'
 *
 * const ada = makeUser({ id: 'u-ada', email: 'ada@acme.example' }) // active, not suspended, no 2FA, username 'u-ada'
 * const suspended = makeUser({ id: 'u-eve', isSuspended: true }) // email 'u-eve@example.com'
 * createMemoryStorage().seed({ users: [ada, suspended] }) // seeding adds each user's primary address row
 * ```
 * @group Testing
 */
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

/**
 * The primary, verified address row of a user.
 *
 * @example
 * ```ts
 * import { makeUser, primaryEmailOf } from 'ssoflow/testing'
 *
 * const ada = makeUser({ id: 'u-ada', email: 'Ada@Acme.example' })
 * primaryEmailOf(ada) // { userId: 'u-ada', email: 'Ada@Acme.example', emailNormalized: 'ada@acme.example', isVerified: true, isPrimary: true }
 * primaryEmailOf(ada, { isVerified: false }) // the same address, unverified
 * ```
 * @group Testing
 */
export function primaryEmailOf(user: User, partial: Partial<UserEmail> = {}): UserEmail {
  return { userId: user.id, email: user.email, emailNormalized: normalizeEmail(user.email), isVerified: true, isPrimary: true, ...partial }
}

/**
 * @example
 * ```ts
 * import { makeMember } from 'ssoflow/testing'
 *
 * const owner = makeMember({ id: 'm-ada', organizationId: 'org-acme', userId: 'u-ada', role: 'owner' })
 * const invited = makeMember({ id: 'm-bob', organizationId: 'org-acme', email: 'Bob@Acme.example' }) // no user yet; emailNormalized 'bob@acme.example'
 * ```
 * @group Testing
 */
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

/**
 * @example
 * ```ts
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { makeOrganization, makeProvider } from 'ssoflow/testing'
 *
 * // An org whose SSO is already set up (providerKey 'dummy', config {}, allowUnlinked false).
 * const provider = makeProvider({ id: 'ap-acme', organizationId: 'org-acme' })
 * createMemoryStorage().seed({ organizations: [makeOrganization({ id: 'org-acme' })], providers: [provider] })
 * ```
 * @group Testing
 */
export function makeProvider(partial: Partial<AuthProvider> & { id: string; organizationId: string }): AuthProvider {
  return { providerKey: 'dummy', config: {}, allowUnlinked: false, scimEnabled: false, createdAt: EPOCH, ...partial }
}

/**
 * @example
 * ```ts
 * import { makeIdentity } from 'ssoflow/testing'
 *
 * // Ada signed in through the org's provider before: her next login with `idp-ada` is a returning one.
 * const identity = makeIdentity({ id: 'ai-ada', authProviderId: 'ap-acme', userId: 'u-ada', ident: 'idp-ada' })
 * identity.lastVerified // 2026-01-01T00:00:00.000Z, like every date of the builders
 * ```
 * @group Testing
 */
export function makeIdentity(partial: Partial<AuthIdentity> & { id: string; authProviderId: string; userId: string }): AuthIdentity {
  return { ident: `ext-${partial.userId}`, data: {}, lastVerified: EPOCH, lastSynced: EPOCH, createdAt: EPOCH, ...partial }
}

/**
 * URL functions laid out like Sentry's routes (spec 0.3): org login `/auth/login/{slug}/`, auth
 * settings `/settings/{slug}/auth/`, provider settings under it, landing
 * `/organizations/{slug}/issues/`, the pipeline route `{baseUrl}/auth/sso/` and the verification
 * link `{baseUrl}/auth/verify/{token}/`. For tests and examples.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { makeOrganization, sentryStyleUrls } from 'ssoflow/testing'
 *
 * const urls = sentryStyleUrls('https://app.example')
 * urls.afterLogin(makeOrganization({ id: 'org-acme', slug: 'acme' })) // '/organizations/acme/issues/'
 * urls.pipelineCallback(makeOrganization({ id: 'org-acme' })) // 'https://app.example/auth/sso/'
 * const sso = createAuthPipeline({ ...ports, providers: {}, secret, urls })
 * ```
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
