/**
 * Target-user resolution (spec 3.4, N1). PURE.
 * @module
 */
import type { Member, User } from '../../model/records.js'
import type { UserEmailMatch } from '../../ports/storage.js'
import type { TraceEntry } from '../effects.js'

/**
 * The resolved target user U.
 * @group Core
 */
export interface TargetResolution {
  /** U, or null when anonymous and the email matched nobody (or was ambiguous). */
  readonly user: User | null
  readonly via: 'session' | 'email' | 'none' | 'ambiguous'
  /** Candidate user ids (sorted) when the email matched several users that could not be narrowed. */
  readonly candidates: readonly string[]
  readonly trace: readonly TraceEntry[]
}

/**
 * Resolves U (N1):
 * - an authenticated, active session user always wins (U = S), whatever the IdP email says;
 * - otherwise the identity's email is resolved among ACTIVE users (the storage returns only
 *   those): none → no target; one → that user; several → narrowed step by step to verified
 *   addresses, then members of this organization, then primary addresses (a step that keeps
 *   one user decides; a step that removes everyone is ignored). Still several → ambiguous: no
 *   target (never "the first one", threat 10), candidates reported in the trace.
 *
 * The result never depends on the order of `matches` (candidates are sorted by id).
 * @group Core
 */
export function resolveTarget(input: {
  readonly sessionUser: User | null
  readonly emailMatches: readonly UserEmailMatch[]
  readonly members: ReadonlyMap<string, Member | null>
}): TargetResolution {
  const s = input.sessionUser
  if (s?.isActive) {
    return {
      user: s,
      via: 'session',
      candidates: [],
      trace: [{ rule: 'target.session-user', detail: `the signed-in user ${s.id} is the target (N1)` }],
    }
  }
  const trace: TraceEntry[] = []
  if (s && !s.isActive) trace.push({ rule: 'target.session-user-inactive', detail: 'the session user is inactive: treated as anonymous' })
  const byUser = new Map<string, { user: User; rows: UserEmailMatch[] }>()
  for (const m of input.emailMatches) {
    if (!m.user.isActive) continue
    const entry = byUser.get(m.user.id)
    if (entry) entry.rows.push(m)
    else byUser.set(m.user.id, { user: m.user, rows: [m] })
  }
  let candidates = [...byUser.values()].sort((a, b) => (a.user.id < b.user.id ? -1 : a.user.id > b.user.id ? 1 : 0))
  if (candidates.length === 0) {
    trace.push({ rule: 'target.email-none', detail: 'no active user has this email' })
    return { user: null, via: 'none', candidates: [], trace }
  }
  const steps: [string, (c: { user: User; rows: UserEmailMatch[] }) => boolean][] = [
    ['verified', (c) => c.rows.some((r) => r.email.isVerified)],
    ['org-member', (c) => (input.members.get(c.user.id) ?? null) !== null],
    ['primary', (c) => c.rows.some((r) => r.email.isPrimary)],
  ]
  if (candidates.length > 1) {
    for (const [name, keep] of steps) {
      const narrowed = candidates.filter(keep)
      if (narrowed.length > 0) candidates = narrowed
      if (candidates.length === 1) {
        trace.push({ rule: `target.email-narrowed.${name}`, detail: `several users have this email; narrowed by ${name}` })
        break
      }
    }
  }
  const only = candidates[0]
  if (candidates.length === 1 && only) {
    trace.push({ rule: 'target.email-match', detail: `the email resolves to user ${only.user.id}` })
    return { user: only.user, via: 'email', candidates: [], trace }
  }
  const ids = candidates.map((c) => c.user.id)
  trace.push({ rule: 'target.email-ambiguous', detail: `the email matches several users (${ids.join(', ')}): no target is chosen` })
  return { user: null, via: 'ambiguous', candidates: ids, trace }
}
