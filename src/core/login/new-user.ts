/**
 * New user (spec 3.8). PURE.
 * @module
 */
import type { User, UserEmail } from '../../model/records.js'
import { newIdentityRecord } from '../attach.js'
import type { AfterCommitEffect, TraceEntry, TxEffect } from '../effects.js'
import { mailText } from '../mail.js'
import { type PlanIds, planMembership } from '../membership.js'
import { membershipFactsFor, rejectPlan } from './common.js'
import type { LoginFacts, LoginPlan } from './facts.js'

/**
 * Creates a user (random 32-hex username, the identity's email and name, no password, not
 * verified: an IdP claim never marks a stored address verified), its identity and its
 * membership; mails `newUserConfirmation` and emits `user_signup` after commit.
 *
 * - An ACTIVE account already has this email → IDENTITY_CONFLICT, nothing created (N4); the
 *   pipeline stays open so the user can sign in and link instead.
 * - The identity row exists and belongs to an INACTIVE user (N8) → that row is re-pointed to
 *   the new user, explicitly. A uniqueness conflict at write time never re-points anything
 *   (threat 53): the transaction rolls back and the shell decides again.
 *
 * Ids are taken in this order: user id, identity id (when created), then membership ids.
 * @group Core
 */
export function decideNewUser(facts: LoginFacts, ids: PlanIds, trace: TraceEntry[]): LoginPlan {
  if (facts.emailMatches.length > 0) {
    trace.push({ rule: 'newuser.email-conflict', detail: 'an active account already has this email: sign in to link it instead (N4)' })
    return rejectPlan('IDENTITY_CONFLICT', true, trace)
  }
  const { identity, now } = facts
  const user: User = {
    id: ids.next(),
    username: facts.newUsername,
    email: identity.email,
    name: identity.name,
    isActive: true,
    isSuspended: false,
    hasUsablePassword: false,
    has2fa: false,
    createdAt: now,
  }
  const email: UserEmail = {
    userId: user.id,
    email: identity.email,
    emailNormalized: identity.emailNormalized,
    isVerified: false,
    isPrimary: true,
  }
  const txEffects: TxEffect[] = [{ type: 'user.create', user, email }]
  const existing = facts.linked
  if (existing && !existing.user.isActive) {
    txEffects.push({
      type: 'identity.update',
      id: existing.identity.id,
      patch: { userId: user.id, ident: identity.id, data: identity.data, lastVerified: now, lastSynced: now },
    })
    trace.push({
      rule: 'newuser.claims-inactive-identity',
      detail: `identity ${existing.identity.id} of inactive user ${existing.user.id} moves to the new user`,
    })
  } else {
    const created = newIdentityRecord(ids.next(), facts.provider.id, user.id, identity, now)
    txEffects.push({ type: 'identity.create', identity: created })
  }
  trace.push({ rule: 'newuser.create', detail: `new user ${user.id} without a password, linked to the identity` })
  const membership = planMembership(membershipFactsFor(facts, user, true), ids)
  trace.push(...membership.trace)
  const afterCommit: AfterCommitEffect[] = [
    {
      type: 'mail.send',
      message: {
        template: 'newUserConfirmation',
        to: user.email,
        data: {
          userName: mailText(user.name || user.email),
          organizationName: mailText(facts.organization.name),
          providerName: mailText(facts.provider.displayName),
        },
        idempotencyKey: `new-user-confirmation:${user.id}`,
      },
    },
    {
      type: 'signal.emit',
      signal: {
        name: 'user_signup',
        payload: { userId: user.id, source: 'sso', provider: facts.provider.key, referrer: facts.pipeline.referrer ?? 'in-app' },
      },
    },
    ...membership.afterCommit,
  ]
  return {
    decision: {
      kind: 'signIn',
      path: 'newUser',
      userId: user.id,
      memberId: membership.member.id,
      created: { user: true, identity: !(existing && !existing.user.isActive), member: membership.created },
      linked: true,
      acceptedInviteId: membership.acceptedInviteId,
      consumesVerification: false,
      claim: null,
    },
    txEffects: [...txEffects, ...membership.txEffects],
    afterCommit,
    trace,
  }
}
