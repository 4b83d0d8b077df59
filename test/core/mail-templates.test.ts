// Every mail template is rendered by the default plain-text renderer, with names as plain text,
// and every template is one the engine really sends (issue 18, item 4: `inviteAccepted` was
// declared and never sent, and `renderPlainText` was promised before it existed).
import { describe, expect, it } from 'vitest'
import { type MailTemplate, type MailTemplates, renderPlainText } from '../../src/index.js'
import { makeUser } from '../../src/testing/index.js'
import { ACME, harness, POST } from '../errors/harness.js'

const HOSTILE = 'Evil\r\nCorp <b>Visit</b> https://evil.example/now \u202Egnp.exe'
const OUR_LINK = 'https://app.example.com/auth/verify/t0k3n/'

/** One sample per template: a new template fails to compile here until it has one. */
const SAMPLES: { readonly [K in MailTemplate]: MailTemplates[K] } = {
  accountVerification: {
    userName: HOSTILE,
    organizationName: HOSTILE,
    providerName: HOSTILE,
    url: OUR_LINK,
    expiresAt: '2026-03-01T12:10:00.000Z',
  },
  newUserConfirmation: { userName: HOSTILE, organizationName: HOSTILE, providerName: HOSTILE },
  ssoLinkRequest: { organizationName: HOSTILE, providerName: HOSTILE, loginUrl: OUR_LINK },
  ssoUnlinked: { organizationName: HOSTILE, providerName: HOSTILE },
}
const TEMPLATES = Object.keys(SAMPLES) as MailTemplate[]

describe('renderPlainText', () => {
  it.each(TEMPLATES)('%s: one-line subject, names as plain text, only our own link', (template) => {
    const message = { template, to: 'someone@corp.example', idempotencyKey: 'k', data: SAMPLES[template] } as Parameters<
      typeof renderPlainText
    >[0]
    const { subject, text } = renderPlainText(message)
    expect(subject.length).toBeGreaterThan(0)
    expect(subject).not.toMatch(/[\r\n\u202E]/)
    expect(text).not.toMatch(/[\r\u202E<>]/)
    expect(`${subject}\n${text}`).not.toContain('evil.example')
    const links = text.match(/https?:\/\/\S+/g) ?? []
    expect(links.every((l) => l === OUR_LINK)).toBe(true)
    if ('url' in SAMPLES[template] || 'loginUrl' in SAMPLES[template]) expect(links).toEqual([OUR_LINK])
  })
})

describe('every template is sent by a flow, and the engine sends no other', () => {
  it('setup (link request), new user, account verification, disable (unlinked)', async () => {
    const h = harness()
    // accountVerification: an anonymous login whose email belongs to a passwordless account.
    h.storage.seed({ users: [makeUser({ id: 'pat', email: 'pat@corp.example', hasUsablePassword: false })] })
    await h.login({ id: 'ext-pat', email: 'pat@corp.example' })
    // newUserConfirmation: a new user created by SSO.
    const { handle } = await h.login({ id: 'ext-new', email: 'new@corp.example' })
    ;(await h.sso.finishLogin({ handle, session: h.session(), op: 'newuser' }))._unsafeUnwrap()
    // ssoUnlinked: SSO disabled at acme; ssoLinkRequest: SSO set up again at acme.
    ;(await h.sso.disableProvider({ organizationId: ACME, session: h.session('owner') }))._unsafeUnwrap()
    // Link and unlink mails are background work (issue 16): the drain sends them.
    ;(await h.sso.runPendingWork())._unsafeUnwrap()
    const form = await h.beginSetup('owner', ACME)
    ;(
      await h.sso.advance({ handle: form, session: h.session('owner'), request: POST({ id: 'ext-owner', email: 'owner@example.com' }) })
    )._unsafeUnwrap()
    ;(await h.sso.runPendingWork())._unsafeUnwrap()
    const sent = new Set(h.mailer.sent.map((m) => m.template))
    expect([...sent].sort()).toEqual([...TEMPLATES].sort())
  })
})
