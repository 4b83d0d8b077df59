/**
 * Attaching an identity to a user (spec 3.7, N2). PURE.
 *
 * Shared by the login pipeline (confirm / verified-link paths) and the setup pipeline, which
 * links the admin. The caller plans the membership separately ({@link planMembership}, or the
 * {@link linkFixup} of a member it already has).
 *
 * @module
 */
import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError, type ErrorRedirectHint } from '../errors.js'
import type { Identity, JsonObject } from '../model/identity.js'
import type { AuthIdentity, Member, User } from '../model/records.js'
import type { TraceEntry, TxEffect } from './effects.js'
import { auditEntry, type PlanIds } from './membership.js'

/**
 * Merges fresh provider data over stored data (a provider's `updateIdentity`).
 * @group Core
 */
export type MergeIdentityData = (next: JsonObject, current: JsonObject) => JsonObject

const REFRESH_KEYS = ['refresh_token', 'refreshToken'] as const

/**
 * The default merge: the new data replaces the old, except that a refresh token present in the
 * stored data and absent from the new data is kept (OAuth refreshes often omit it).
 * @group Core
 */
export function defaultMergeIdentityData(next: JsonObject, current: JsonObject): JsonObject {
  const out: JsonObject = { ...next }
  for (const key of REFRESH_KEYS) {
    const kept = current[key]
    if (!(key in next) && kept !== undefined) out[key] = kept
  }
  return out
}

/**
 * Everything {@link planAttach} needs, loaded by the shell.
 * @group Core
 */
export interface AttachFacts {
  readonly authProviderId: string
  readonly organizationId: string
  /** The validated identity from the IdP. */
  readonly identity: Identity
  /** U: the user who gets the identity. */
  readonly target: User
  /** The authenticated session user, or null. When set it must equal the target (N2). */
  readonly sessionUserId: string | null
  /** Identity by (provider, identity.id). */
  readonly byIdent: AuthIdentity | null
  /** Identity by (provider, target.id). */
  readonly byUser: AuthIdentity | null
  /** Membership in this org of `byIdent`'s owner when that owner is not the target (for the wipe). */
  readonly previousOwnerMember: Member | null
  /**
   * May the target's existing identity for this provider be re-keyed to `identity.id` (the IdP
   * changed the subject id)? Only when the target proved themselves by being signed in; an
   * email proof alone does not re-key (threat 13): the plan is IDENTITY_CONFLICT instead.
   */
  readonly allowRekey: boolean
  readonly now: Date
  readonly ip: string | null
  /** Error redirect hint (login: orgLogin, setup: authSettings). @defaultValue 'orgLogin' */
  readonly redirect?: ErrorRedirectHint | undefined
}

/**
 * What {@link planAttach} decided.
 * @group Core
 */
export interface AttachPlan {
  /** The identity as it will be after the effects. */
  readonly identity: AuthIdentity
  /** True when a new identity row is created (only then is `sso-identity.link` audited). */
  readonly isNew: boolean
  /** The previous owner when the identity was re-pointed from another user, else null. */
  readonly previousOwnerId: string | null
  /** True when the target's identity got a new external id. */
  readonly rekeyed: boolean
  readonly txEffects: readonly TxEffect[]
  readonly trace: readonly TraceEntry[]
}

/**
 * Plans attaching `facts.identity` to `facts.target` (Sentry's `handle_attach_identity`):
 * - session user set and different from the target: SESSION_USER_MISMATCH, no effects (N2);
 * - the (provider, external id) row exists: re-point / refresh it. When it belonged to another
 *   user, first delete the target's other identities for this provider and mark the previous
 *   owner's membership `ssoInvalid` on / `ssoLinked` off (the wipe);
 * - else the target's row for this provider is re-keyed (only when `allowRekey`, otherwise
 *   IDENTITY_CONFLICT);
 * - else a new row is created and `sso-identity.link` is audited (the only audited case).
 *
 * Refreshes set `data` through `merge`, and `lastVerified` / `lastSynced` to now. The audit data
 * holds the user id and external id, never the provider data (tokens).
 *
 * Ids are taken from `ids` in this order (new link only): identity id, audit id.
 * @group Core
 */
export function planAttach(
  facts: AttachFacts,
  ids: PlanIds,
  merge: MergeIdentityData = defaultMergeIdentityData,
): Result<AttachPlan, AuthError> {
  const redirect = facts.redirect ?? 'orgLogin'
  const target = facts.target
  const trace: TraceEntry[] = []
  if (facts.sessionUserId !== null && facts.sessionUserId !== target.id) {
    return err(authError('SESSION_USER_MISMATCH', { redirect }))
  }
  const txEffects: TxEffect[] = []
  const { identity, now } = facts
  const byIdent = facts.byIdent

  if (byIdent) {
    let previousOwnerId: string | null = null
    if (byIdent.userId !== target.id) {
      previousOwnerId = byIdent.userId
      txEffects.push({ type: 'identity.deleteForUser', authProviderId: facts.authProviderId, userId: target.id, exceptId: byIdent.id })
      const prev = facts.previousOwnerMember
      if (prev && prev.userId === previousOwnerId && (prev.flags.ssoLinked || !prev.flags.ssoInvalid)) {
        txEffects.push({ type: 'member.update', id: prev.id, patch: { flags: { ...prev.flags, ssoInvalid: true, ssoLinked: false } } })
      }
      trace.push({
        rule: 'attach.repoint',
        detail: `identity ${byIdent.id} moves from user ${previousOwnerId} to ${target.id}; the target's other identities for this provider are deleted and the previous owner's membership is marked ssoInvalid`,
      })
    } else {
      trace.push({ rule: 'attach.refresh', detail: `identity ${byIdent.id} already belongs to the target: refreshed` })
    }
    const patch = { userId: target.id, ident: identity.id, data: merge(identity.data, byIdent.data), lastVerified: now, lastSynced: now }
    txEffects.push({ type: 'identity.update', id: byIdent.id, patch })
    return ok({ identity: { ...byIdent, ...patch }, isNew: false, previousOwnerId, rekeyed: false, txEffects, trace })
  }

  if (facts.byUser) {
    if (!facts.allowRekey) {
      return err(authError('IDENTITY_CONFLICT', { redirect, details: { reason: 'rekey-requires-session' } }))
    }
    const patch = { ident: identity.id, data: merge(identity.data, facts.byUser.data), lastVerified: now, lastSynced: now }
    txEffects.push({ type: 'identity.update', id: facts.byUser.id, patch })
    trace.push({ rule: 'attach.rekey', detail: `the target's identity ${facts.byUser.id} gets the new external id (the IdP changed it)` })
    return ok({ identity: { ...facts.byUser, ...patch }, isNew: false, previousOwnerId: null, rekeyed: true, txEffects, trace })
  }

  const created = newIdentityRecord(ids.next(), facts.authProviderId, target.id, identity, now)
  txEffects.push({ type: 'identity.create', identity: created })
  txEffects.push({
    type: 'audit.record',
    entry: auditEntry({
      id: ids.next(),
      event: 'sso-identity.link',
      actorUserId: target.id,
      organizationId: facts.organizationId,
      targetId: created.id,
      targetUserId: target.id,
      ip: facts.ip,
      data: { userId: target.id, ident: identity.id },
      now,
    }),
  })
  trace.push({ rule: 'attach.new', detail: `new identity linked to user ${target.id}` })
  return ok({ identity: created, isNew: true, previousOwnerId: null, rekeyed: false, txEffects, trace })
}

/**
 * A new identity row linking `identity` to `userId`, verified and synced `now`.
 * @group Core
 */
export function newIdentityRecord(id: string, authProviderId: string, userId: string, identity: Identity, now: Date): AuthIdentity {
  return { id, authProviderId, userId, ident: identity.id, data: identity.data, lastVerified: now, lastSynced: now, createdAt: now }
}
