// Threats 7, 57: names in mail data are one bounded line of plain text without links or markup.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAIL_NAME_MAX, mailText, renderPlainText } from '../../src/core/mail.js'

const hostile = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc
    .array(
      fc.constantFrom(
        'https://evil.example/x',
        'www.evil.example',
        'a@b.example',
        '\r\n',
        '\u202E',
        '\u200B',
        '<a href=x>',
        ' ',
        'Acme',
        '.',
        ':',
        '//',
      ),
      { maxLength: 40 },
    )
    .map((parts) => parts.join('')),
)

describe('mailText', () => {
  it('is one bounded line with no control/format characters, no scheme://, no dotted host and no angle brackets; idempotent', () => {
    fc.assert(
      fc.property(hostile, (value) => {
        const out = mailText(value)
        expect([...out].length).toBeLessThanOrEqual(MAIL_NAME_MAX)
        expect(out).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u)
        expect(out).not.toMatch(/:\/\//)
        expect(out).not.toMatch(/\S\.\S/)
        expect(out).not.toMatch(/[<>]/)
        expect(out).toBe(out.trim())
        expect(mailText(out)).toBe(out)
      }),
      { numRuns: 500 },
    )
  })

  it('keeps ordinary names as they are', () => {
    expect(mailText('Acme Inc.')).toBe('Acme Inc.')
    expect(mailText('  Zoë   &  Co  ')).toBe('Zoë & Co')
    expect(mailText('Sentry.io')).toBe('Sentry\u2024io')
  })

  it('the default renderer: names sanitized again, single-line subjects, our link kept', () => {
    const rendered = renderPlainText({
      template: 'accountVerification',
      to: 'v@corp.example',
      idempotencyKey: 'k',
      data: {
        userName: 'V',
        organizationName: 'Evil\nVisit https://evil.example now',
        providerName: 'IdP',
        url: 'https://app.example.com/auth/verify/t0k3n/',
        expiresAt: '2026-03-01T12:10:00.000Z',
      },
    })
    expect(rendered.subject).toBe('Confirm your account for Evil Visit https: //evil\u2024example now')
    expect(rendered.text).toContain('\nhttps://app.example.com/auth/verify/t0k3n/\n')
    expect(rendered.text.match(/https?:\/\//g)).toHaveLength(1)
  })
})
