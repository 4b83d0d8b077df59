/**
 * Membership planning (spec 3.9): the link fix-up, invite acceptance and new memberships.
 *
 * PURE: no I/O, no clock, no randomness. Ids, `now` and the SHA-256 of a session invite token
 * arrive in the facts. Shared by the login pipeline and the setup pipeline (`finishSetup`).
 *
 * Deliberate differences from Sentry (documented in docs/login-flow.md):
 * - accepting an invite sets `ssoLinked` (Sentry leaves it to the next login);
 * - accepting an invite writes `member.accept-invite` only, not also `member.add`;
 * - an invite matched by email is accepted only when the address is known verified (stored
 *   verified address, or the IdP's strict-boolean `emailVerified` for that exact address);
 * - an invalid session invite is ignored (trace entry), never an error that blocks login;
 * - only the user's OWN invite requests (same address) are deleted, never someone else's row.
 *
 * @module
 */
import { normalizeEmail } from '../model/email.js'
import type { JsonObject } from '../model/identity.js'
import { type AuditEntry, type AuditEvent, type Member, NO_FLAGS, type Organization, type User } from '../model/records.js'
import type { MemberPatch } from '../ports/storage.js'
import { timingSafeEqual } from '../state/crypto.js'
import type { AfterCommitEffect, TraceEntry, TxEffect } from './effects.js'

/**
 * A cursor over pre-allocated ids. Decisions take ids from it in a fixed order, so identical
 * facts (including the id list) give identical plans.
 * @group Core
 */
export interface PlanIds {
  /** The next id. Throws (a programmer error) when the pre-allocated list is exhausted. */
  next(): string
}

/**
 * Creates a {@link PlanIds} cursor over `ids`.
 * @group Core
 */
export function planIds(ids: readonly string[]): PlanIds {
  let i = 0
  return {
    next() {
      const id = ids[i++]
      if (id === undefined) throw new Error(`planIds: ${ids.length} pre-allocated ids were not enough`)
      return id
    },
  }
}

/**
 * Sentry's `_set_linked_flag`: when the member has `ssoInvalid` set or `ssoLinked` unset, set
 * `ssoLinked` on and `ssoInvalid` off; other flags (SCIM `idpProvisioned`...) are kept.
 *
 * @returns the patch to write, or null when the flags are already right (no write).
 * @group Core
 */
export function linkFixup(member: Member): MemberPatch | null {
  if (!member.flags.ssoInvalid && member.flags.ssoLinked) return null
  return { flags: { ...member.flags, ssoLinked: true, ssoInvalid: false } }
}

/**
 * Member audit metadata (Sentry's `get_audit_log_data`), with the user's email.
 * @group Core
 */
export function memberAuditData(member: Member, userEmail: string): JsonObject {
  return {
    memberId: member.id,
    email: userEmail,
    userId: member.userId,
    role: member.role,
    inviteStatus: member.inviteStatus,
  }
}

/**
 * Builds an audit entry.
 * @group Core
 */
export function auditEntry(input: {
  id: string
  event: AuditEvent
  actorUserId: string | null
  organizationId: string
  targetId: string | null
  targetUserId: string | null
  ip: string | null
  data: JsonObject
  now: Date
}): AuditEntry {
  return {
    id: input.id,
    event: input.event,
    actorUserId: input.actorUserId,
    organizationId: input.organizationId,
    targetId: input.targetId,
    targetUserId: input.targetUserId,
    ip: input.ip,
    data: input.data,
    createdAt: input.now,
  }
}

/**
 * The invite carried by the session, as loaded by the shell.
 * @group Core
 */
export interface SessionInviteFacts {
  /** The organization the session says the invite belongs to. */
  readonly organizationId: string
  /** SHA-256 (hex) of the session's invite token, computed by the shell. */
  readonly tokenHash: string
  /** `getMemberById(session.invite.memberId)`, or null when absent. */
  readonly member: Member | null
}

/**
 * Everything {@link planMembership} needs.
 * @group Core
 */
export interface MembershipFacts {
  readonly organization: Organization
  /** The user who gets the membership (the identity's user). */
  readonly user: Pick<User, 'id' | 'email'>
  /** The user's current membership in the organization, or null. */
  readonly member: Member | null
  /** The session's invite, or null. */
  readonly sessionInvite: SessionInviteFacts | null
  /** `getInviteByEmail(org, normalizeEmail(user.email))`, or null. */
  readonly emailInvite: Member | null
  /**
   * Normalized addresses known to belong to the user AND be verified: stored verified address
   * rows, plus the identity's address when the IdP returned `emailVerified === true`.
   */
  readonly verifiedEmails: readonly string[]
  /** The trust policy that judged the identity's address (named in the trace), if any. */
  readonly trustPolicy?: string | undefined
  /** Normalized identity email (a session invite may be addressed to it). */
  readonly identityEmailNormalized: string | null
  /** Host hook result: the org is over its member limit (new members get `memberLimitRestricted`). */
  readonly memberLimitReached: boolean
  readonly now: Date
  readonly ip: string | null
}

/**
 * What {@link planMembership} decided.
 * @group Core
 */
export interface MembershipPlan {
  /** The membership as it will be after the effects are applied. */
  readonly member: Member
  readonly created: boolean
  readonly acceptedInviteId: string | null
  readonly txEffects: readonly TxEffect[]
  readonly afterCommit: readonly AfterCommitEffect[]
  readonly trace: readonly TraceEntry[]
}

type InviteCheck = { readonly ok: true; readonly invite: Member } | { readonly ok: false; readonly reason: string }

function inviteUsable(invite: Member, organizationId: string, now: Date): string | null {
  if (invite.organizationId !== organizationId) return 'other-org'
  if (invite.userId !== null) return 'already-accepted'
  if (invite.inviteStatus !== 'approved') return 'not-approved'
  if (invite.inviteExpiresAt !== null && invite.inviteExpiresAt.getTime() <= now.getTime()) return 'expired'
  return null
}

function checkSessionInvite(facts: MembershipFacts): InviteCheck {
  const si = facts.sessionInvite
  if (!si) return { ok: false, reason: 'none' }
  if (si.organizationId !== facts.organization.id) return { ok: false, reason: 'other-org' }
  const invite = si.member
  if (!invite) return { ok: false, reason: 'not-found' }
  const unusable = inviteUsable(invite, facts.organization.id, facts.now)
  if (unusable) return { ok: false, reason: unusable }
  if (invite.inviteTokenHash === null || !timingSafeEqual(invite.inviteTokenHash, si.tokenHash)) return { ok: false, reason: 'token' }
  const addressed = invite.emailNormalized
  const userEmail = normalizeEmail(facts.user.email)
  if (addressed === null || (addressed !== userEmail && addressed !== facts.identityEmailNormalized)) {
    return { ok: false, reason: 'addressed-to-someone-else' }
  }
  return { ok: true, invite }
}

/**
 * Plans the membership of `facts.user` in the organization (spec 3.9):
 * 1. an existing membership gets the {@link linkFixup} (no write when already right);
 * 2. else a valid session invite (same org, pending, approved, unexpired, token hash equal in
 *    constant time, addressed to the user's or the identity's email) is accepted;
 * 3. else an approved, unexpired invite addressed to the user's email is accepted when that
 *    address is verified; the user's own unapproved request for that address is deleted;
 * 4. else a new membership with the org's default role, `ssoLinked`, and
 *    `memberLimitRestricted` when the host says the org is over its limit; audit `member.add`.
 *
 * Accepting sets userId, clears the address and token fields, sets `ssoLinked`, audits
 * `member.accept-invite` and emits `member_joined` after commit. Roles are never taken from IdP
 * data: only the org default or the invite's own role.
 *
 * Ids are taken from `ids` in this order: member id (new membership only), audit id.
 * @group Core
 */
export function planMembership(facts: MembershipFacts, ids: PlanIds): MembershipPlan {
  const trace: TraceEntry[] = []
  const txEffects: TxEffect[] = []
  const afterCommit: AfterCommitEffect[] = []
  const orgId = facts.organization.id

  if (facts.member) {
    const patch = linkFixup(facts.member)
    if (patch) {
      txEffects.push({ type: 'member.update', id: facts.member.id, patch })
      trace.push({ rule: 'membership.link-fixup', detail: 'existing membership: ssoLinked on, ssoInvalid off' })
    } else {
      trace.push({ rule: 'membership.already-linked', detail: 'existing membership already linked: no write' })
    }
    return {
      member: patch ? { ...facts.member, ...patch } : facts.member,
      created: false,
      acceptedInviteId: null,
      txEffects,
      afterCommit,
      trace,
    }
  }

  const accept = (invite: Member, via: string): MembershipPlan => {
    const flags = { ...invite.flags, ssoLinked: true, ssoInvalid: false }
    const patch: MemberPatch = {
      userId: facts.user.id,
      email: null,
      emailNormalized: null,
      inviteTokenHash: null,
      inviteExpiresAt: null,
      flags,
    }
    const member: Member = { ...invite, ...patch } as Member
    // A guarded write: it changes the row only while it is still pending (threat 49).
    txEffects.push({ type: 'member.acceptInvite', id: invite.id, acceptance: { userId: facts.user.id, flags } })
    txEffects.push({
      type: 'audit.record',
      entry: auditEntry({
        id: ids.next(),
        event: 'member.accept-invite',
        actorUserId: facts.user.id,
        organizationId: orgId,
        targetId: invite.id,
        targetUserId: facts.user.id,
        ip: facts.ip,
        data: memberAuditData(member, facts.user.email),
        now: facts.now,
      }),
    })
    afterCommit.push({
      type: 'signal.emit',
      signal: { name: 'member_joined', payload: { organizationId: orgId, userId: facts.user.id, memberId: invite.id } },
    })
    trace.push({
      rule: `membership.invite.accepted.${via}`,
      detail:
        `invite ${invite.id} accepted (${via}); role ${invite.role} from the invite` +
        (via === 'email' && facts.trustPolicy ? `; the address counted as verified under trust policy '${facts.trustPolicy}'` : ''),
    })
    return { member, created: false, acceptedInviteId: invite.id, txEffects, afterCommit, trace }
  }

  const fromSession = checkSessionInvite(facts)
  if (fromSession.ok) return accept(fromSession.invite, 'session')
  if (fromSession.reason !== 'none') {
    trace.push({ rule: 'membership.invite.session-ignored', detail: `session invite ignored: ${fromSession.reason}` })
  }

  const byEmail = facts.emailInvite
  const userEmail = normalizeEmail(facts.user.email)
  if (byEmail && byEmail.organizationId === orgId && byEmail.userId === null && byEmail.emailNormalized === userEmail) {
    if (byEmail.inviteStatus !== 'approved') {
      txEffects.push({ type: 'member.delete', id: byEmail.id })
      trace.push({
        rule: 'membership.invite.request-deleted',
        detail: `the user's own ${byEmail.inviteStatus} request ${byEmail.id} is deleted and replaced`,
      })
    } else {
      const unusable = inviteUsable(byEmail, orgId, facts.now)
      if (unusable) {
        trace.push({ rule: 'membership.invite.email-ignored', detail: `invite by email ignored: ${unusable}` })
      } else if (!facts.verifiedEmails.includes(userEmail)) {
        trace.push({
          rule: 'membership.invite.email-unverified',
          detail: `invite by email ignored: the address is not verified${facts.trustPolicy ? ` (trust policy '${facts.trustPolicy}')` : ''}`,
        })
      } else {
        return accept(byEmail, 'email')
      }
    }
  }

  const member: Member = {
    id: ids.next(),
    organizationId: orgId,
    userId: facts.user.id,
    email: null,
    emailNormalized: null,
    role: facts.organization.defaultRole,
    flags: { ...NO_FLAGS, ssoLinked: true, memberLimitRestricted: facts.memberLimitReached },
    inviteTokenHash: null,
    inviteExpiresAt: null,
    inviteStatus: 'approved',
    createdAt: facts.now,
  }
  txEffects.push({ type: 'member.create', member })
  txEffects.push({
    type: 'audit.record',
    entry: auditEntry({
      id: ids.next(),
      event: 'member.add',
      actorUserId: facts.user.id,
      organizationId: orgId,
      targetId: member.id,
      targetUserId: facts.user.id,
      ip: facts.ip,
      data: memberAuditData(member, facts.user.email),
      now: facts.now,
    }),
  })
  trace.push({
    rule: 'membership.new',
    detail: `new membership with the org default role ${member.role}${facts.memberLimitReached ? ', member limit reached: restricted' : ''}`,
  })
  return { member, created: true, acceptedInviteId: null, txEffects, afterCommit, trace }
}
