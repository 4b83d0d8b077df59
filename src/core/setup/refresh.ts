import type { JsonObject } from '../../model/identity.js'
import type { AuthIdentity, Member, MemberFlags } from '../../model/records.js'
import type { TraceEntry, TxEffect } from '../effects.js'

/**
 * What the provider said about one identity (`Provider.refreshIdentity`), with fresh data
 * already merged over the stored data on success. A thrown provider call counts as `error`.
 * @group Core
 */
export type RefreshCheck =
  | { readonly kind: 'ok'; readonly data: JsonObject }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string }

/** Facts of a periodic identity check. @group Core */
export interface RefreshFacts {
  readonly now: Date
  readonly identity: AuthIdentity
  /** The identity's user's membership in the provider's organization, or null. */
  readonly member: Member | null
  /** The provider's answer; ignored when there is no membership. */
  readonly check: RefreshCheck
}

/** The outcome kind of a refresh and what it writes. @group Core */
export interface RefreshPlan {
  readonly outcome:
    | { readonly kind: 'identityDeleted' }
    | { readonly kind: 'valid' }
    | { readonly kind: 'invalid'; readonly reason: string }
    | { readonly kind: 'error'; readonly reason: string }
  readonly txEffects: readonly TxEffect[]
  readonly trace: readonly TraceEntry[]
}

function flagsPatch(member: Member, wanted: Partial<Pick<MemberFlags, 'ssoLinked' | 'ssoInvalid'>>): TxEffect[] {
  const changes =
    (wanted.ssoLinked !== undefined && member.flags.ssoLinked !== wanted.ssoLinked) ||
    (wanted.ssoInvalid !== undefined && member.flags.ssoInvalid !== wanted.ssoInvalid)
  if (!changes) return []
  return [{ type: 'member.update', id: member.id, patch: { flags: { ...member.flags, ...wanted } } }]
}

/**
 * The periodic identity check (spec 3.13, Sentry's `check_auth`):
 * - no membership: delete the identity (nothing else);
 * - `invalid`: `ssoLinked` off, `ssoInvalid` on;
 * - `error`: `ssoInvalid` on, `ssoLinked` left as it is (Sentry also forces `ssoLinked` on;
 *   we do not let a transient IdP error re-link a member);
 * - `ok`: `ssoLinked` on, `ssoInvalid` off, identity data replaced by the merged data.
 * Except on deletion, `lastVerified` and `lastSynced` are stamped with `now`. Member flags are
 * written only when they change; other flags are preserved.
 * @group Core
 */
export function decideRefresh(facts: RefreshFacts): RefreshPlan {
  const { identity, member, check, now } = facts
  if (!member || member.userId !== identity.userId) {
    return {
      outcome: { kind: 'identityDeleted' },
      txEffects: [{ type: 'identity.delete', id: identity.id }],
      trace: [{ rule: 'refresh.no-membership', detail: 'the identity user is not a member of the org: identity deleted' }],
    }
  }
  const stamp: TxEffect = { type: 'identity.update', id: identity.id, patch: { lastVerified: now, lastSynced: now } }
  switch (check.kind) {
    case 'invalid':
      return {
        outcome: { kind: 'invalid', reason: check.reason },
        txEffects: [...flagsPatch(member, { ssoLinked: false, ssoInvalid: true }), stamp],
        trace: [{ rule: 'refresh.invalid', detail: 'the provider rejected the identity: member unlinked and marked invalid' }],
      }
    case 'error':
      return {
        outcome: { kind: 'error', reason: check.reason },
        txEffects: [...flagsPatch(member, { ssoInvalid: true }), stamp],
        trace: [{ rule: 'refresh.error', detail: 'the provider check failed: member marked invalid, link flag kept' }],
      }
    case 'ok':
      return {
        outcome: { kind: 'valid' },
        txEffects: [
          ...flagsPatch(member, { ssoLinked: true, ssoInvalid: false }),
          { type: 'identity.update', id: identity.id, patch: { data: check.data, lastVerified: now, lastSynced: now } },
        ],
        trace: [{ rule: 'refresh.ok', detail: 'the provider confirmed the identity: member linked and valid' }],
      }
    default: {
      const never: never = check
      throw new Error(`unknown refresh check ${JSON.stringify(never)}`)
    }
  }
}
