import type { Member, User } from '../../model/records.js'
import type { MemberRecipient } from '../../ports/storage.js'
import type { AfterCommitEffect } from '../effects.js'
import { mailText } from '../mail.js'

/**
 * Length of the window in which a resent link request is deduplicated (one hour): resending
 * twice within the same window, or retrying a resend, mails each member at most once.
 * @group Core
 */
export const RESEND_WINDOW_MS = 60 * 60 * 1000

/**
 * Idempotency key of the link request sent after setup. Stable for one provider lifetime: a
 * retried setup (or a second run of the post-commit mailing) never mails a member twice.
 * A re-created provider has a new id, so its members are asked again.
 * @group Core
 */
export function linkRequestKey(authProviderId: string, memberId: string): string {
  return `sso-link-request:${authProviderId}:${memberId}`
}

/**
 * Idempotency key of a resent link request: bucketed by {@link RESEND_WINDOW_MS}, so repeated
 * resends within one window (double clicks, retried requests) mail each member once, and a
 * resend in a later window mails again.
 * @group Core
 */
export function resendLinkRequestKey(authProviderId: string, memberId: string, now: Date): string {
  return `sso-link-request:${authProviderId}:${memberId}:resend:${Math.floor(now.getTime() / RESEND_WINDOW_MS)}`
}

/**
 * Idempotency key of the "SSO was disabled" notice: one per member per provider lifetime.
 * @group Core
 */
export function unlinkNoticeKey(authProviderId: string, memberId: string): string {
  return `sso-unlinked:${authProviderId}:${memberId}`
}

export type { MemberRecipient }

/**
 * Whether a member gets a link request: an accepted membership (not an invite) without
 * `ssoLinked`, whose user exists and is active. Pure.
 * @group Core
 */
export function needsLinkRequest(recipient: MemberRecipient): recipient is { member: Member; user: User } {
  const { member, user } = recipient
  if (member.userId === null || member.flags.ssoLinked || !user) return false
  return user.isActive && user.id === member.userId
}

/**
 * Plans the "Action Required for {org}" mails for one page of members. Members that are
 * linked, pending invites, or whose user is missing or inactive are skipped.
 * @group Core
 */
export function planLinkRequests(input: {
  readonly recipients: readonly MemberRecipient[]
  readonly authProviderId: string
  readonly organizationName: string
  readonly providerName: string
  readonly loginUrl: string
  /** `setup` for the mailing after setup; `resend` with the current time for reminders. */
  readonly reason: { readonly kind: 'setup' } | { readonly kind: 'resend'; readonly now: Date }
}): AfterCommitEffect[] {
  const effects: AfterCommitEffect[] = []
  for (const recipient of input.recipients) {
    if (!needsLinkRequest(recipient)) continue
    const memberId = recipient.member.id
    effects.push({
      type: 'mail.send',
      message: {
        template: 'ssoLinkRequest',
        to: recipient.user.email,
        data: { organizationName: mailText(input.organizationName), providerName: mailText(input.providerName), loginUrl: input.loginUrl },
        idempotencyKey:
          input.reason.kind === 'setup'
            ? linkRequestKey(input.authProviderId, memberId)
            : resendLinkRequestKey(input.authProviderId, memberId, input.reason.now),
      },
    })
  }
  return effects
}

/**
 * Plans the "SSO was disabled" notices for one page of members: every accepted member whose
 * user exists and is active.
 * @group Core
 */
export function planUnlinkNotices(input: {
  readonly recipients: readonly MemberRecipient[]
  readonly authProviderId: string
  readonly organizationName: string
  readonly providerName: string
}): AfterCommitEffect[] {
  const effects: AfterCommitEffect[] = []
  for (const { member, user } of input.recipients) {
    if (member.userId === null || user === null || !user.isActive || user.id !== member.userId) continue
    effects.push({
      type: 'mail.send',
      message: {
        template: 'ssoUnlinked',
        to: user.email,
        data: { organizationName: mailText(input.organizationName), providerName: mailText(input.providerName) },
        idempotencyKey: unlinkNoticeKey(input.authProviderId, member.id),
      },
    })
  }
  return effects
}
