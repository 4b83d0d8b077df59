/**
 * Helpers shared by the login deciders. PURE.
 * @module
 */
import { type AuthErrorCode, authError } from '../../errors.js'
import { normalizeEmail } from '../../model/email.js'
import type { User } from '../../model/records.js'
import type { TraceEntry } from '../effects.js'
import type { MembershipFacts } from '../membership.js'
import type { LoginFacts, LoginPlan } from './facts.js'

/**
 * Normalized addresses of `user` known verified: stored verified rows, plus the identity's own
 * address when the trust policy counts it as verified and lets it match an invite.
 */
export function verifiedEmailsFor(facts: LoginFacts, user: Pick<User, 'id' | 'email'>, isNew = false): string[] {
  const out = new Set<string>()
  for (const m of facts.emailMatches) if (m.user.id === user.id && m.email.isVerified) out.add(m.email.emailNormalized)
  for (const e of facts.verifiedAddresses.get(user.id) ?? []) out.add(e)
  if (
    facts.identity.emailVerified &&
    (facts.trust?.inviteMatch ?? true) &&
    (isNew || out.has(facts.identity.emailNormalized) || normalizeEmail(user.email) === facts.identity.emailNormalized)
  ) {
    out.add(facts.identity.emailNormalized)
  }
  return [...out].sort()
}

/** Membership facts of `user` in the pipeline's organization. */
export function membershipFactsFor(facts: LoginFacts, user: Pick<User, 'id' | 'email'>, isNew = false): MembershipFacts {
  return {
    organization: facts.organization,
    user,
    member: isNew ? null : (facts.members.get(user.id) ?? null),
    sessionInvite: facts.sessionInvite,
    emailInvite: facts.invitesByEmail.get(normalizeEmail(user.email)) ?? null,
    verifiedEmails: verifiedEmailsFor(facts, user, isNew),
    identityEmailNormalized: facts.identity.emailNormalized,
    trustPolicy: facts.trust?.policy,
    memberLimitReached: facts.memberLimitReached,
    now: facts.now,
    ip: facts.session.ip,
  }
}

/** A rejection plan (no effects). */
export function rejectPlan(code: AuthErrorCode, keepState: boolean, trace: TraceEntry[], details?: Record<string, unknown>): LoginPlan {
  return {
    decision: { kind: 'reject', error: authError(code, { redirect: 'orgLogin', details }), keepState },
    txEffects: [],
    afterCommit: [],
    trace,
  }
}

/** A two-factor plan (no effects). */
export function twoFactorPlan(userId: string, trace: TraceEntry[]): LoginPlan {
  trace.push({ rule: 'two-factor.required', detail: `user ${userId} has a second factor this session has not passed: nothing is written` })
  return { decision: { kind: 'twoFactor', userId }, txEffects: [], afterCommit: [], trace }
}

/**
 * True when `user` must pass a second factor first: they have one and the session's passed
 * factor is not theirs (a factor passed by another user never counts, threat 63).
 */
export function needsTwoFactor(facts: LoginFacts, user: User): boolean {
  return user.has2fa && facts.session.twoFactorUserId !== user.id
}
