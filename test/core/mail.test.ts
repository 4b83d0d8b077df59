// Threats 7, 57: names in mail data are one bounded line of plain text without links or markup.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAIL_NAME_MAX, mailText, renderPlainText } from '../../src/core/mail.js'
import { runs } from '../helpers/runs.js'

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
      { numRuns: runs(500) },
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

// Mutation testing (issue 12 item 4): the exact cut, the exact replacements, and every template's
// exact text (what the recipient reads).
describe('mailText: exact output', () => {
  it('a name of exactly max code points is kept whole; one more is cut to max with an ellipsis', () => {
    expect(mailText('a'.repeat(MAIL_NAME_MAX))).toBe('a'.repeat(MAIL_NAME_MAX))
    expect(mailText('a'.repeat(MAIL_NAME_MAX + 1))).toBe(`${'a'.repeat(MAIL_NAME_MAX - 1)}\u2026`)
    expect(mailText('abcdef', 4)).toBe('abc\u2026')
    expect(mailText('abcdef', 1)).toBe('\u2026')
    // code points, not UTF-16 units
    expect(mailText('😀'.repeat(5), 5)).toBe('😀'.repeat(5))
  })

  it('no space is left before the ellipsis', () => {
    expect(mailText(`${'x'.repeat(MAIL_NAME_MAX - 2)} ${'y'.repeat(10)}`)).toBe(`${'x'.repeat(MAIL_NAME_MAX - 2)}\u2026`)
    expect(mailText('ab cdef', 4)).toBe('ab\u2026')
  })

  it('only a colon followed by slashes is defused; angle brackets become single guillemets', () => {
    expect(mailText('https://x')).toBe('https: //x')
    expect(mailText('https:   //x')).toBe('https: //x')
    expect(mailText('a:x//b')).toBe('a:x//b')
    expect(mailText('<b>')).toBe('\u2039b\u203A')
  })
})

describe('renderPlainText: every template, exactly', () => {
  it('accountVerification', () => {
    const r = renderPlainText({
      template: 'accountVerification',
      to: 'v@corp.example',
      idempotencyKey: 'k',
      data: { userName: 'Vi', organizationName: 'Acme', providerName: 'Okta', url: 'https://app.example/v/t', expiresAt: 'T' },
    })
    expect(r).toEqual({
      subject: 'Confirm your account for Acme',
      text: [
        'Hello Vi,',
        '',
        'Someone signed in to Acme through Okta with this address. If it was you, open this link to confirm that this account is yours:',
        '',
        'https://app.example/v/t',
        '',
        'The link works once and expires at T. If it was not you, ignore this mail: nothing changes.',
      ].join('\n'),
    })
  })

  it('newUserConfirmation', () => {
    const r = renderPlainText({
      template: 'newUserConfirmation',
      to: 'n@corp.example',
      idempotencyKey: 'k',
      data: { userName: 'Ny', organizationName: 'Acme', providerName: 'Okta' },
    })
    expect(r).toEqual({
      subject: 'Your new account for Acme',
      text: 'Hello Ny,\n\nAn account was created for you when you signed in to Acme through Okta.',
    })
  })

  it('ssoLinkRequest', () => {
    const r = renderPlainText({
      template: 'ssoLinkRequest',
      to: 'l@corp.example',
      idempotencyKey: 'k',
      data: { organizationName: 'Acme', providerName: 'Okta', loginUrl: 'https://app.example/login/acme/' },
    })
    expect(r).toEqual({
      subject: 'Action required for Acme',
      text: 'Acme now signs in through Okta. Link your account the next time you sign in:\n\nhttps://app.example/login/acme/',
    })
  })

  it('ssoUnlinked', () => {
    const r = renderPlainText({
      template: 'ssoUnlinked',
      to: 'u@corp.example',
      idempotencyKey: 'k',
      data: { organizationName: 'Acme', providerName: 'Okta' },
    })
    expect(r).toEqual({
      subject: 'Single sign-on was turned off for Acme',
      text: 'Acme no longer signs in through Okta. Sign in with your password instead.',
    })
  })

  it('names are sanitized in every template', () => {
    const name = 'Evil <x> https://e.example'
    const clean = 'Evil \u2039x\u203A https: //e\u2024example'
    const r = renderPlainText({
      template: 'newUserConfirmation',
      to: 'n@corp.example',
      idempotencyKey: 'k',
      data: { userName: name, organizationName: name, providerName: name },
    })
    expect(r.subject).toBe(`Your new account for ${clean}`)
    expect(r.text).toBe(`Hello ${clean},\n\nAn account was created for you when you signed in to ${clean} through ${clean}.`)
    const l = renderPlainText({
      template: 'ssoLinkRequest',
      to: 'x',
      idempotencyKey: 'k',
      data: { organizationName: name, providerName: name, loginUrl: 'u' },
    })
    expect(l.text.startsWith(`${clean} now signs in through ${clean}.`)).toBe(true)
    const u = renderPlainText({
      template: 'ssoUnlinked',
      to: 'x',
      idempotencyKey: 'k',
      data: { organizationName: name, providerName: name },
    })
    expect(u.text).toBe(`${clean} no longer signs in through ${clean}. Sign in with your password instead.`)
  })
})
