// Pure login facts for the decider tests of test/core (no storage, no pipeline): one active
// organization and provider, an anonymous visitor, an identity for ada@corp.example.
import type { LoginFacts } from '../../src/core/login/facts.js'
import { parseIdentity } from '../../src/model/identity.js'
import type { TrustJudgement } from '../../src/model/trust.js'
import { ident, ORG, PROVIDER } from '../login/harness.js'

export const NOW = new Date('2026-03-01T12:00:00.000Z')

export const identity = (email = 'ada@corp.example', emailVerified = true, extra: Partial<Parameters<typeof ident>[0]> = {}) =>
  parseIdentity(ident({ id: 'ext-ada', email, emailVerified, ...extra }))._unsafeUnwrap()

export function facts(partial: Partial<LoginFacts> = {}): LoginFacts {
  return {
    now: NOW,
    ids: ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8'],
    newUsername: '0'.repeat(32),
    organization: ORG,
    provider: { id: PROVIDER.id, key: 'dummy', displayName: 'IdP' },
    pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: null },
    identity: identity(),
    op: null,
    session: { userId: null, twoFactorUserId: null, ip: null },
    sessionUser: null,
    linked: null,
    emailMatches: [],
    members: new Map(),
    identitiesByUser: new Map(),
    identitiesOfUser: new Map(),
    invitesByEmail: new Map(),
    verifiedAddresses: new Map(),
    sessionInvite: null,
    verification: null,
    memberLimitReached: false,
    loginUrl: '/login',
    newVerification: { tokenHash: 'h'.repeat(64), url: 'https://app/verify' },
    verificationSends: null,
    policy: {
      verificationTtlSeconds: 600,
      verificationResendSeconds: 600,
      verificationDailyLimit: 5,
      newUser: 'confirm',
      identitiesOnClaim: 'keep',
    },
    ...partial,
  }
}

export const trust = (over: Partial<TrustJudgement> = {}): TrustJudgement => ({
  policy: 'strict',
  emailVerified: true,
  inviteMatch: true,
  reason: 'the IdP says so',
  ...over,
})
