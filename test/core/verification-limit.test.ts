// planVerificationSend at its boundaries (threats 7, 28): the resend wait, the daily cap and its
// window, what the next record keeps, and how long it is kept. Issue 12 item 4 (mutation testing).
import { describe, expect, it } from 'vitest'
import { planVerificationSend, VERIFICATION_WINDOW_MS, type VerificationSends } from '../../src/core/login/verification-limit.js'

const RESEND = 60_000
const input = (now: number, over: Partial<Parameters<typeof planVerificationSend>[1]> = {}) => ({
  now,
  authProviderId: 'ap1',
  tokenHash: 'new',
  tokenExpiresAt: now + 600_000,
  resendMs: RESEND,
  dailyLimit: 3,
  ...over,
})
const record = (over: Partial<VerificationSends> = {}): VerificationSends => ({
  windowStart: 0,
  count: 1,
  lastByProvider: { ap1: 0 },
  tokenHash: 'old',
  ...over,
})

describe('planVerificationSend', () => {
  it('a first mail opens the window and keeps the record until the latest of window end, resend window and link expiry', () => {
    expect(planVerificationSend(null, input(1_000))).toEqual({
      kind: 'send',
      next: { windowStart: 1_000, count: 1, lastByProvider: { ap1: 1_000 }, tokenHash: 'new' },
      revokeTokenHash: null,
      keepUntil: 1_000 + VERIFICATION_WINDOW_MS,
    })
    const late = planVerificationSend(null, input(0, { tokenExpiresAt: VERIFICATION_WINDOW_MS + 5 }))
    expect(late.kind === 'send' && late.keepUntil).toBe(VERIFICATION_WINDOW_MS + 5)
    const longResend = planVerificationSend(null, input(0, { resendMs: VERIFICATION_WINDOW_MS + 7 }))
    expect(longResend.kind === 'send' && longResend.keepUntil).toBe(VERIFICATION_WINDOW_MS + 7)
  })

  it('through the same provider: wait until exactly resendMs has passed', () => {
    expect(planVerificationSend(record(), input(RESEND - 1))).toEqual({ kind: 'wait' })
    const sent = planVerificationSend(record(), input(RESEND))
    expect(sent).toEqual({
      kind: 'send',
      next: { windowStart: 0, count: 2, lastByProvider: { ap1: RESEND }, tokenHash: 'new' },
      revokeTokenHash: 'old',
      keepUntil: VERIFICATION_WINDOW_MS,
    })
  })

  it('another provider does not wait, and keeps only the providers still inside their resend window', () => {
    const current = record({ lastByProvider: { ap1: 0, ap2: 50_000, ap3: 10_000 } })
    const sent = planVerificationSend(current, input(RESEND + 10_000, { authProviderId: 'ap4' }))
    expect(sent.kind === 'send' && sent.next.lastByProvider).toEqual({ ap2: 50_000, ap4: RESEND + 10_000 })
  })

  it('the daily cap counts every provider within the window; the retry time is the window end, rounded up to a second', () => {
    const full = record({ count: 3, lastByProvider: {} })
    expect(planVerificationSend(full, input(1_000_500))).toEqual({
      kind: 'capped',
      retryAfterSeconds: Math.ceil((VERIFICATION_WINDOW_MS - 1_000_500) / 1000),
    })
    expect(planVerificationSend(record({ count: 2, lastByProvider: {} }), input(1_000)).kind).toBe('send')
  })

  it('once the window has passed (exactly 24 hours), counting starts again', () => {
    const full = record({ count: 3, lastByProvider: {} })
    expect(planVerificationSend(full, input(VERIFICATION_WINDOW_MS - 1)).kind).toBe('capped')
    const again = planVerificationSend(full, input(VERIFICATION_WINDOW_MS))
    expect(again.kind === 'send' && again.next).toEqual({
      windowStart: VERIFICATION_WINDOW_MS,
      count: 1,
      lastByProvider: { ap1: VERIFICATION_WINDOW_MS },
      tokenHash: 'new',
    })
  })
})

describe('planVerificationSend: times measured from the record, not from zero', () => {
  const T = 5_000_000
  it('the resend wait counts from the last mail', () => {
    const current = record({ windowStart: T, lastByProvider: { ap1: T } })
    expect(planVerificationSend(current, input(T + RESEND - 1))).toEqual({ kind: 'wait' })
    expect(planVerificationSend(current, input(T + RESEND)).kind).toBe('send')
  })

  it('the cap window counts from its start', () => {
    const full = record({ windowStart: T, count: 3, lastByProvider: {} })
    expect(planVerificationSend(full, input(T + VERIFICATION_WINDOW_MS - 1)).kind).toBe('capped')
    expect(planVerificationSend(full, input(T + VERIFICATION_WINDOW_MS)).kind).toBe('send')
  })
})
