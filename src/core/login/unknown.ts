/**
 * Unknown identity (spec 3.4-3.6, 3.12, Appendix A with the N column). PURE.
 * @module
 */
import type { AuthIdentity, User } from '../../model/records.js'
import { timingSafeEqual } from '../../state/crypto.js'
import { type MergeIdentityData, planAttach } from '../attach.js'
import type { AfterCommitEffect, TraceEntry, TxEffect } from '../effects.js'
import { mailText } from '../mail.js'
import { auditEntry, type PlanIds, planMembership } from '../membership.js'
import { membershipFactsFor, needsTwoFactor, rejectPlan, twoFactorPlan } from './common.js'
import type {
  AccountClaim,
  ClaimedAccountIdentity,
  ConfirmationPageModel,
  LoginChoice,
  LoginFacts,
  LoginPlan,
  VerificationIssue,
} from './facts.js'
import { decideNewUser } from './new-user.js'
import { resolveTarget } from './target.js'
import { planVerificationSend } from './verification-limit.js'

/**
 * V (spec 3.5 step A, threat 18): the session's verification token is bound to exactly this
 * user (and the address it was mailed to), organization, provider, external id and pipeline.
 * @group Core
 */
export function verificationMatches(facts: LoginFacts, target: User | null): boolean {
  const v = facts.verification
  if (!v || !target) return false
  const checks: [string, string][] = [
    [v.userId, target.id],
    [v.email, target.email],
    [v.organizationId, facts.organization.id],
    [v.authProviderId, facts.provider.id],
    [v.ident, facts.identity.id],
    [v.pipelineId, facts.pipeline.id],
  ]
  let ok = true
  for (const [a, b] of checks) ok = timingSafeEqual(a, b) && ok
  return ok
}

function pageBase(facts: LoginFacts) {
  return {
    organization: { name: facts.organization.name, slug: facts.organization.slug },
    provider: facts.provider.displayName || ' ',
    identityDisplayName: facts.identity.name || facts.identity.email,
    identityIdentifier: facts.identity.email || facts.identity.id,
  }
}

function confirmPlan(
  page: ConfirmationPageModel,
  allowedOps: LoginChoice[],
  trace: TraceEntry[],
  verification: VerificationIssue | null = null,
  afterCommit: AfterCommitEffect[] = [],
): LoginPlan {
  trace.push({ rule: `confirm.${page.page}`, detail: `confirmation page ${page.page}; allowed ops: ${allowedOps.join(', ') || 'none'}` })
  return { decision: { kind: 'confirm', page, allowedOps, verification }, txEffects: [], afterCommit, trace }
}

/** Attach the identity to `target` and sign in (confirm by the session user, auto-link, or V). */
function attachAndSignIn(
  facts: LoginFacts,
  target: User,
  via: 'session' | 'verification',
  ids: PlanIds,
  merge: MergeIdentityData,
  trace: TraceEntry[],
): LoginPlan {
  if (target.isSuspended) {
    trace.push({ rule: 'attach.suspended', detail: `user ${target.id} is suspended` })
    return rejectPlan('USER_SUSPENDED', false, trace)
  }
  if (needsTwoFactor(facts, target)) return twoFactorPlan(target.id, trace)
  const byIdent = facts.linked?.identity ?? null
  const previousOwnerId = byIdent && byIdent.userId !== target.id ? byIdent.userId : null
  const attached = planAttach(
    {
      authProviderId: facts.provider.id,
      organizationId: facts.organization.id,
      identity: facts.identity,
      target,
      sessionUserId: facts.sessionUser?.isActive ? facts.sessionUser.id : null,
      byIdent,
      byUser: facts.identitiesByUser.get(target.id) ?? null,
      previousOwnerMember: previousOwnerId ? (facts.members.get(previousOwnerId) ?? null) : null,
      allowRekey: via === 'session',
      now: facts.now,
      ip: facts.session.ip,
    },
    ids,
    merge,
  )
  if (attached.isErr()) {
    trace.push({ rule: 'attach.rejected', detail: attached.error.code })
    return rejectPlan(attached.error.code, true, trace, attached.error.details as Record<string, unknown> | undefined)
  }
  trace.push(...attached.value.trace)
  const membership = planMembership(membershipFactsFor(facts, target), ids)
  trace.push(...membership.trace)
  const claimed = planClaim(facts, target, via, attached.value.identity.id, ids, trace)
  return {
    decision: {
      kind: 'signIn',
      path: 'attach',
      userId: target.id,
      memberId: membership.member.id,
      created: { user: false, identity: attached.value.isNew, member: membership.created },
      linked: true,
      acceptedInviteId: membership.acceptedInviteId,
      consumesVerification: via === 'verification',
      claim: claimed?.claim ?? null,
    },
    txEffects: [...attached.value.txEffects, ...membership.txEffects, ...(claimed?.txEffects ?? [])],
    afterCommit: [...membership.afterCommit],
    trace,
  }
}

const claimedIdentity = (i: AuthIdentity): ClaimedAccountIdentity => ({
  id: i.id,
  authProviderId: i.authProviderId,
  ident: i.ident,
  createdAt: i.createdAt.toISOString(),
})

/**
 * Threats 2 and 3: an ANONYMOUS pipeline that attaches to an existing account proved it, by the
 * emailed link or by signing in to it during the pipeline. Whoever held a session on it before
 * must lose it (the shell returns `revokeOtherSessions`), and the identities of other providers
 * already on it (a squatter's trojan identifier) are reported, or removed when the policy says
 * so, in the same transaction; one `sso-identity.claim` audit entry lists them. A user signed in
 * when the pipeline began claims nothing: linking their own account proves nothing new.
 */
function planClaim(
  facts: LoginFacts,
  target: User,
  via: 'session' | 'verification',
  identityId: string,
  ids: PlanIds,
  trace: TraceEntry[],
): { claim: AccountClaim; txEffects: TxEffect[] } | null {
  if (facts.pipeline.initiatorUserId !== null) return null
  const proof = via === 'verification' ? 'emailLink' : 'signIn'
  const others = (facts.identitiesOfUser.get(target.id) ?? [])
    .filter((i) => i.userId === target.id && i.authProviderId !== facts.provider.id)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const remove = facts.policy.identitiesOnClaim === 'remove'
  const kept = remove ? [] : others
  const removed = remove ? others : []
  const txEffects: TxEffect[] = removed.map((i) => ({ type: 'identity.delete', id: i.id }))
  txEffects.push({
    type: 'audit.record',
    entry: auditEntry({
      id: ids.next(),
      event: 'sso-identity.claim',
      actorUserId: target.id,
      organizationId: facts.organization.id,
      targetId: identityId,
      targetUserId: target.id,
      ip: facts.session.ip,
      data: { proof, identitiesKept: kept.map((i) => i.id), identitiesRemoved: removed.map((i) => i.id) },
      now: facts.now,
    }),
  })
  trace.push({
    rule: `claim.${proof}`,
    detail: `an anonymous pipeline proved user ${target.id} (${proof}): the account's other sessions are to be revoked; ${
      others.length === 0
        ? 'no other identity on it'
        : `${others.length} other identit${others.length === 1 ? 'y' : 'ies'} ${remove ? 'removed' : 'kept and reported'}`
    }`,
  })
  return {
    claim: { proof, identitiesKept: kept.map(claimedIdentity), identitiesRemoved: removed.map(claimedIdentity) },
    txEffects,
  }
}

/**
 * Just-in-time creation (`policy.newUser: 'create'`): only for a choice-less request of nobody
 * (no op, no session user at all, not even an inactive one) whose identity has no row, not even
 * one of an inactive owner; the caller checks that the email matches no account. Every other
 * unknown identity gets its page.
 * @group Core
 */
export function mayCreateAtOnce(facts: {
  readonly policy: Pick<LoginFacts['policy'], 'newUser'>
  readonly op: LoginFacts['op']
  readonly session: Pick<LoginFacts['session'], 'userId'>
  readonly sessionUser: LoginFacts['sessionUser']
  readonly linked: unknown
}): boolean {
  return (
    facts.policy.newUser === 'create' &&
    facts.op === null &&
    facts.session.userId === null &&
    facts.sessionUser === null &&
    facts.linked === null
  )
}

/**
 * Decides an unknown identity (no link, or a link to an inactive user, N8).
 *
 * Signed in (U = S, N1):
 * - `newuser` → new user (IDENTITY_CONFLICT when an active account has the email);
 * - `confirm` → attach to S;
 * - no op, the IdP email is S's own address, the IdP says it is verified and S is a member →
 *   auto-link to S (Appendix A row "auth (= U), E, M");
 * - otherwise → confirm-link (`newuser` offered unless the address is S's own).
 * An attach by a session user who signed in DURING an anonymous pipeline is a claim (below).
 *
 * Anonymous:
 * - V (valid emailed link bound to U, this identity, org, provider and pipeline) → attach to U,
 *   a claim: the shell revokes U's other sessions and the identities of other providers on U are
 *   reported or removed (threats 2, 3);
 * - `newuser` → new user (IDENTITY_CONFLICT when an active account has the email);
 * - `confirm` → MERGE_FAILED (sign in first, N4);
 * - no op, no match, no row for the identity and `policy.newUser` is `'create'` → new user at
 *   once (just-in-time, trace `unknown.jit`: the one anonymous answer that differs when the
 *   address has no account; the host opted in);
 * - otherwise ONE page, confirm-identity with `newuser` offered, whatever accounts exist (threat
 *   29). When the address resolves to a passwordless account whose matching address is verified,
 *   a verification link is also mailed to the account's own address: at most one per user and
 *   provider per `verificationResendSeconds` across pipelines, at most `verificationDailyLimit`
 *   per user a day (over a limit: the same page, no mail), the new link revoking the previous one
 *   (threat 28). The IdP's `emailVerified` never links an anonymous request (N3).
 * @group Core
 */
export function decideUnknown(facts: LoginFacts, ids: PlanIds, merge: MergeIdentityData, trace: TraceEntry[]): LoginPlan {
  const s = facts.sessionUser?.isActive ? facts.sessionUser : null
  if (s?.isSuspended) {
    trace.push({ rule: 'unknown.session-user-suspended', detail: `the session user ${s.id} is suspended` })
    return rejectPlan('USER_SUSPENDED', false, trace)
  }
  const target = resolveTarget({ sessionUser: facts.sessionUser, emailMatches: facts.emailMatches, members: facts.members })
  trace.push(...target.trace)
  const base = pageBase(facts)

  if (s) {
    if (facts.op === 'newuser') return decideNewUser(facts, ids, trace)
    if (facts.op === 'confirm') {
      trace.push({ rule: 'unknown.confirm', detail: `the signed-in user ${s.id} confirmed the link` })
      return attachAndSignIn(facts, s, 'session', ids, merge, trace)
    }
    const ownAddress = facts.emailMatches.some((m) => m.user.id === s.id)
    const member = facts.members.get(s.id) ?? null
    if (ownAddress && facts.identity.emailVerified && member) {
      trace.push({
        rule: 'unknown.auto-link.session',
        detail: `the IdP verified an address of the signed-in member${facts.trust ? ` (trust policy '${facts.trust.policy}')` : ''}: linked without asking`,
      })
      return attachAndSignIn(facts, s, 'session', ids, merge, trace)
    }
    // A new account is offered unless the address is the visitor's own: whether OTHER accounts
    // have it is not shown (threat 29; a `newuser` post answers IDENTITY_CONFLICT if one does).
    const ops: LoginChoice[] = ownAddress ? ['confirm'] : ['confirm', 'newuser']
    return confirmPlan({ page: 'confirm-link', ...base, currentUser: { id: s.id, email: s.email, name: s.name } }, ops, trace)
  }

  const u = target.user
  if (verificationMatches(facts, u) && u) {
    trace.push({ rule: 'unknown.verified-link', detail: `the emailed link proves ownership of user ${u.id} (V)` })
    return attachAndSignIn(facts, u, 'verification', ids, merge, trace)
  }
  if (facts.verification)
    trace.push({
      rule: 'unknown.verification-ignored',
      detail: 'the session verification token does not match this user, identity, org, provider and pipeline',
    })
  if (facts.op === 'newuser') return decideNewUser(facts, ids, trace)
  if (facts.op === 'confirm') {
    trace.push({ rule: 'unknown.confirm-anonymous', detail: 'confirm without a signed-in user or a verified link (N4)' })
    return rejectPlan('MERGE_FAILED', true, trace)
  }
  // Threat 29: one page for every anonymous visitor, whether or not an account has the address.
  const page: ConfirmationPageModel = { page: 'confirm-identity', ...base, loginUrl: facts.loginUrl }
  const anonymousPage = (verification: VerificationIssue | null = null, afterCommit: AfterCommitEffect[] = []) =>
    confirmPlan(page, ['newuser'], trace, verification, afterCommit)
  if (target.via === 'none') {
    if (mayCreateAtOnce(facts)) {
      trace.push({
        rule: 'unknown.jit',
        detail: "policy.newUser is 'create' and the email matches no account: the user is created without a confirmation page",
      })
      return decideNewUser(facts, ids, trace)
    }
    return anonymousPage()
  }
  const identityAddressVerified = u !== null && facts.emailMatches.some((m) => m.user.id === u.id && m.email.isVerified)
  if (u && !u.hasUsablePassword && identityAddressVerified) {
    const now = facts.now.getTime()
    const resendMs = facts.policy.verificationResendSeconds * 1000
    const expiresAt = new Date(now + facts.policy.verificationTtlSeconds * 1000)
    const sentAt = facts.pipeline.verificationSentAt
    // Limits per target user across pipelines (threat 28): one mail per user and provider in the
    // resend window, a daily cap, one live link (the new one revokes the previous). Over a limit
    // the page is the same, without the mail (threat 29: an error here would say the account exists).
    const limit = planVerificationSend(facts.verificationSends, {
      now,
      authProviderId: facts.provider.id,
      tokenHash: facts.newVerification.tokenHash,
      tokenExpiresAt: expiresAt.getTime(),
      resendMs,
      dailyLimit: facts.policy.verificationDailyLimit,
    })
    if ((sentAt !== null && now - sentAt < resendMs) || limit.kind === 'wait') {
      trace.push({
        rule: 'verification.rate-limited',
        detail: 'a link was mailed to this user through this provider recently (any pipeline): not sent again',
      })
      return anonymousPage()
    }
    if (limit.kind === 'capped') {
      trace.push({
        rule: 'verification.daily-limit',
        detail: `the user got the daily cap of verification mails: not sent (next in ${limit.retryAfterSeconds} s)`,
      })
      return anonymousPage()
    }
    const issue: VerificationIssue = {
      tokenHash: facts.newVerification.tokenHash,
      binding: {
        userId: u.id,
        email: u.email,
        organizationId: facts.organization.id,
        authProviderId: facts.provider.id,
        ident: facts.identity.id,
        pipelineId: facts.pipeline.id,
      },
      expiresAt,
      sentAt: now,
      revokeTokenHash: limit.revokeTokenHash,
      sends: limit.next,
      sendsKeepUntil: limit.keepUntil,
    }
    const mail: AfterCommitEffect = {
      type: 'mail.send',
      message: {
        template: 'accountVerification',
        to: u.email,
        data: {
          userName: mailText(u.name || u.email),
          organizationName: mailText(facts.organization.name),
          providerName: mailText(facts.provider.displayName),
          url: facts.newVerification.url,
          expiresAt: expiresAt.toISOString(),
        },
        idempotencyKey: `account-verification:${facts.pipeline.id}:${facts.now.getTime()}`,
      },
    }
    trace.push({ rule: 'verification.sent', detail: "a one-time link is mailed to the account's own address" })
    return anonymousPage(issue, [mail])
  }
  if (u && !u.hasUsablePassword) {
    trace.push({
      rule: 'verification.unverified-address',
      detail: 'the matching address is not verified on the account: no link is mailed (threat 1)',
    })
  }
  return anonymousPage()
}
