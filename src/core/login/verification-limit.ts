/**
 * Limits on account-verification mails per target user, across pipelines (threats 7, 28). PURE.
 * @module
 */

/**
 * The verification mails one user got, as the shell stores it (one record per user, read and
 * written under the lock of the user's address).
 * @group Core
 */
export interface VerificationSends {
  /** Start of the current 24-hour window (ms). */
  readonly windowStart: number
  /** Mails sent in the window. */
  readonly count: number
  /** When the last mail went out, by provider row id (ms); only entries younger than the resend window matter. */
  readonly lastByProvider: Readonly<Record<string, number>>
  /** SHA-256 of the newest link: the one live token of the user, revoked by the next mint. */
  readonly tokenHash: string | null
}

/** The window of the daily cap. */
export const VERIFICATION_WINDOW_MS = 24 * 3_600_000

/**
 * What {@link planVerificationSend} decided.
 * @group Core
 */
export type VerificationSendPlan =
  | {
      readonly kind: 'send'
      /** The record after this mail. */
      readonly next: VerificationSends
      /** The previous live link to revoke, if any. */
      readonly revokeTokenHash: string | null
      /** Until when the record must be kept (window end, resend windows, link expiry). */
      readonly keepUntil: number
    }
  /** A mail went to this user through this provider within the resend window. */
  | { readonly kind: 'wait' }
  /** The user got the daily cap of mails. */
  | { readonly kind: 'capped'; readonly retryAfterSeconds: number }

/**
 * Decides whether one more verification mail may go to a user through a provider: not within
 * `resendMs` of the last one through that provider; not beyond `dailyLimit` in the 24-hour window
 * (counted over every provider); a sent mail replaces the user's live link.
 * @group Core
 */
export function planVerificationSend(
  current: VerificationSends | null,
  input: {
    readonly now: number
    readonly authProviderId: string
    readonly tokenHash: string
    readonly tokenExpiresAt: number
    readonly resendMs: number
    readonly dailyLimit: number
  },
): VerificationSendPlan {
  const { now } = input
  const last = current?.lastByProvider[input.authProviderId]
  if (last !== undefined && now - last < input.resendMs) return { kind: 'wait' }
  const windowOpen = current !== null && now - current.windowStart < VERIFICATION_WINDOW_MS
  const count = windowOpen ? current.count : 0
  if (windowOpen && count >= input.dailyLimit) {
    return { kind: 'capped', retryAfterSeconds: Math.ceil((current.windowStart + VERIFICATION_WINDOW_MS - now) / 1000) }
  }
  const lastByProvider: Record<string, number> = {}
  for (const [provider, at] of Object.entries(current?.lastByProvider ?? {})) {
    if (now - at < input.resendMs) lastByProvider[provider] = at
  }
  lastByProvider[input.authProviderId] = now
  const windowStart = windowOpen ? current.windowStart : now
  return {
    kind: 'send',
    next: { windowStart, count: count + 1, lastByProvider, tokenHash: input.tokenHash },
    revokeTokenHash: current?.tokenHash ?? null,
    keepUntil: Math.max(windowStart + VERIFICATION_WINDOW_MS, now + input.resendMs, input.tokenExpiresAt),
  }
}
