/**
 * The login decision: one pure, total function of the facts. PURE.
 * @module
 */
import { defaultMergeIdentityData, type MergeIdentityData } from '../attach.js'
import type { TraceEntry } from '../effects.js'
import { planIds } from '../membership.js'
import { decideExisting } from './existing.js'
import type { LoginFacts, LoginPlan } from './facts.js'
import { decideUnknown } from './unknown.js'

/**
 * Decides a login (spec 3.2): a link to an active user → existing identity (3.3); no link, or
 * a link to an inactive user (N8) → unknown identity (3.5). Deterministic: identical facts
 * (and merge function) give identical plans. Never throws for valid facts; rejections and
 * confirmation pages carry no transaction effects.
 *
 * @param merge - the provider's `updateIdentity` (default: replace, keeping a refresh token)
 * @group Core
 */
export function decideLogin(facts: LoginFacts, merge: MergeIdentityData = defaultMergeIdentityData): LoginPlan {
  const ids = planIds(facts.ids)
  const trace: TraceEntry[] = []
  const linked = facts.linked
  // The trust policy is used by every decision that may match an invite or link a signed-in
  // member's own address: a new membership, or an unknown identity.
  const trustEntry = (): void => {
    const trust = facts.trust
    if (!trust) return
    trace.push({
      rule: 'trust.email',
      detail:
        `trust policy '${trust.policy}': the address ${trust.emailVerified ? 'counts' : 'does not count'} as verified (${trust.reason}); ` +
        `it ${trust.inviteMatch ? 'may' : 'may not'} match an invite sent to it`,
    })
  }
  if (linked?.user.isActive) {
    trace.push({
      rule: linked.via === 'legacy' ? 'login.existing-identity.legacy' : 'login.existing-identity',
      detail: `identity ${linked.identity.id} is linked to user ${linked.user.id}`,
    })
    if (!facts.members.get(linked.user.id)) trustEntry()
    return decideExisting(facts, linked, ids, merge, trace)
  }
  if (linked) {
    trace.push({
      rule: 'login.inactive-owner',
      detail: `identity ${linked.identity.id} belongs to inactive user ${linked.user.id}: treated as unknown (N8)`,
    })
  } else {
    trace.push({ rule: 'login.unknown-identity', detail: 'no identity is linked to this external id' })
  }
  trustEntry()
  return decideUnknown(facts, ids, merge, trace)
}
