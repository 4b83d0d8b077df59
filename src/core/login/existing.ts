/**
 * Existing identity (spec 3.2-3.3). PURE.
 * @module
 */
import type { MergeIdentityData } from '../attach.js'
import type { TraceEntry, TxEffect } from '../effects.js'
import { type PlanIds, planMembership } from '../membership.js'
import { membershipFactsFor, needsTwoFactor, rejectPlan, twoFactorPlan } from './common.js'
import type { LinkedFacts, LoginFacts, LoginPlan } from './facts.js'

/** Deep equality of two JSON values (object key order ignored). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]))
  const ka = Object.keys(a)
  const rb = b as Record<string, unknown>
  const ra = a as Record<string, unknown>
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.hasOwn(rb, k) && sameJson(ra[k], rb[k]))
}

/**
 * Decides a login through an identity linked to an ACTIVE user:
 * suspended → USER_SUSPENDED (pipeline ends, no writes); no membership, no invite and
 * `policy.rejoinOnLogin` false → NOT_A_MEMBER (pipeline ends, no writes; threat 51); second factor pending →
 * twoFactor (no writes); else refresh the identity (legacy id rewritten to the new id, data
 * merged, lastVerified / lastSynced = now) unless it is fresh (data unchanged, verified within
 * `policy.identityRefreshSeconds`: no write, trace `existing.fresh`) and plan the membership (link fix-up, or a new
 * membership when the user has none). No audit entry of its own (Sentry writes none here).
 * @group Core
 */
export function decideExisting(
  facts: LoginFacts,
  linked: LinkedFacts,
  ids: PlanIds,
  merge: MergeIdentityData,
  trace: TraceEntry[],
): LoginPlan {
  const user = linked.user
  if (user.isSuspended) {
    trace.push({ rule: 'existing.suspended', detail: `user ${user.id} is suspended (N5)` })
    return rejectPlan('USER_SUSPENDED', false, trace)
  }
  // The membership is planned first (pure; it takes the same ids as it did after the 2FA check):
  // a removed member refused by policy is refused before being asked for a second factor.
  const membership = planMembership(membershipFactsFor(facts, user), ids)
  if (membership.created && membership.acceptedInviteId === null && facts.policy.rejoinOnLogin === false) {
    trace.push({
      rule: 'existing.rejoin-refused',
      detail: `user ${user.id} has no membership (removed earlier) and policy.rejoinOnLogin is false: refused (threat 51)`,
    })
    return rejectPlan('NOT_A_MEMBER', false, trace)
  }
  if (needsTwoFactor(facts, user)) return twoFactorPlan(user.id, trace)
  const txEffects: TxEffect[] = []
  const data = merge(facts.identity.data, linked.identity.data)
  const refreshMs = (facts.policy.identityRefreshSeconds ?? 0) * 1000
  const now = facts.now.getTime()
  const fresh =
    linked.via === 'ident' &&
    refreshMs > 0 &&
    now - linked.identity.lastVerified.getTime() < refreshMs &&
    now - linked.identity.lastSynced.getTime() < refreshMs &&
    linked.identity.lastVerified.getTime() <= now &&
    sameJson(data, linked.identity.data)
  if (fresh) {
    trace.push({
      rule: 'existing.fresh',
      detail: `identity ${linked.identity.id} unchanged and verified less than ${refreshMs / 1000} s ago: not rewritten`,
    })
  } else {
    const patch = {
      ...(linked.via === 'legacy' ? { ident: facts.identity.id } : {}),
      data,
      lastVerified: facts.now,
      lastSynced: facts.now,
    }
    txEffects.push({ type: 'identity.update', id: linked.identity.id, patch })
    trace.push({
      rule: linked.via === 'legacy' ? 'existing.legacy-id-rewritten' : 'existing.refresh',
      detail:
        linked.via === 'legacy'
          ? `identity ${linked.identity.id} found by its legacy id: ident rewritten to the new id, data refreshed`
          : `identity ${linked.identity.id} refreshed (data, lastVerified, lastSynced)`,
    })
  }
  if (membership.created)
    trace.push({ rule: 'existing.rejoin', detail: 'the user has no membership (removed earlier): a new one is created' })
  trace.push(...membership.trace)
  return {
    decision: {
      kind: 'signIn',
      path: 'existing',
      userId: user.id,
      memberId: membership.member.id,
      created: { user: false, identity: false, member: membership.created },
      linked: false,
      acceptedInviteId: membership.acceptedInviteId,
      consumesVerification: false,
      claim: null,
    },
    txEffects: [...txEffects, ...membership.txEffects],
    afterCommit: [...membership.afterCommit],
    trace,
  }
}
