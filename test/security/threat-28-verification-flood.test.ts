// Threats 28 and 7: verification-mail flooding. The limit was per pipeline, so N anonymous
// pipelines (new browser sessions, different subjects, even through another org's IdP) mailed N
// links to one address and left N live tokens. Now, per target user across all pipelines: at most
// one mail per user and provider in the resend window, one live token (a new mint revokes the
// previous one), a daily cap, and the host's optional rate-limit hook (RATE_LIMITED), keyed by the
// target user and the visitor. What stays legitimate: a user who is not a member yet may still
// prove the mailbox and join through the org's SSO. The org name in the mail is plain text,
// bounded, and carries no link.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RateLimitRequest, SessionInfo } from '../../src/engine/types.js'
import { type MailMessage, renderPlainText } from '../../src/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { ident, ORG, OTHER_ORG, OTHER_PROVIDER, session, start, type World, world } from '../login/harness.js'
import { BACKENDS, engineOn, handleOf, newClock, post, RACERS, unwrap } from './race.js'

// A passwordless account whose primary address is verified: the IdP-asserted address matches, so
// an anonymous login mails it the one-time link (the page itself is the same for everyone, threat 29).
const victim = makeUser({ id: 'v', email: 'Victim@Corp.example', name: 'Victim', hasUsablePassword: false })
const RESEND_MS = 600_000
const DAY_MS = 24 * 3_600_000

function tokenOf(mail: MailMessage | undefined): string {
  if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
  const m = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)
  if (!m?.[1]) throw new Error('no token in url')
  return m[1]
}

const verificationMails = (w: { mailer: { sent: MailMessage[] } }) => w.mailer.sent.filter((m) => m.template === 'accountVerification')

/** A new anonymous visitor (own browser session, own subject) reaching the confirmation page. */
async function visit(w: World, n: number, options: { org?: 'own' | 'other'; sessionId?: string } = {}) {
  const other = options.org === 'other'
  const sessionId = options.sessionId ?? `visitor-${n}`
  const handle = await start(w, {
    sessionId,
    ...(other ? { organization: OTHER_ORG, provider: OTHER_PROVIDER } : {}),
  })
  return w.login.finishLogin({
    handle,
    session: session({ id: sessionId }),
    identity: ident({ id: `ext-${n}`, email: 'victim@corp.example' }),
  })
}

describe('threats 28, 7: verification mails are limited per target user across pipelines', () => {
  it('new pipelines within the resend window mail nothing more; after it, a new mail revokes the previous link', async () => {
    const w = world({ users: [victim] })
    for (let i = 0; i < 5; i++) {
      const out = (await visit(w, i))._unsafeUnwrap()
      // The same page whether or not a mail went out (threat 29).
      expect(out.kind === 'confirmationRequired' && out.confirmation).toMatchObject({ page: 'confirm-identity' })
      expect(verificationMails(w)).toHaveLength(1)
    }
    const first = tokenOf(verificationMails(w)[0])
    w.clock.advance(RESEND_MS)
    const out = (await visit(w, 99))._unsafeUnwrap()
    expect(out.kind === 'confirmationRequired' && out.confirmation).toMatchObject({ page: 'confirm-identity' })
    expect(verificationMails(w)).toHaveLength(2)
    const second = tokenOf(verificationMails(w)[1])
    // One live token per user: only the newest link works.
    expect((await w.login.verifyAccountLink({ token: first, session: session() }))._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
    expect((await w.login.verifyAccountLink({ token: second, session: session() })).isOk()).toBe(true)
    expect(w.storage.snapshot().oneTimeTokens.filter((t) => t.purpose === 'account-verification')).toHaveLength(1)
  })

  it('one mail per user AND provider in the window: another org’s IdP gets its own, the user still one live link', async () => {
    const w = world({ users: [victim], members: [makeMember({ id: 'm-v', organizationId: ORG.id, userId: 'v', flags: NO_FLAGS })] })
    ;(await visit(w, 1))._unsafeUnwrap()
    ;(await visit(w, 2, { org: 'other' }))._unsafeUnwrap()
    ;(await visit(w, 3, { org: 'other' }))._unsafeUnwrap()
    expect(verificationMails(w).map((m) => m.data.organizationName)).toEqual([ORG.name, OTHER_ORG.name])
    expect(w.storage.snapshot().oneTimeTokens.filter((t) => t.purpose === 'account-verification')).toHaveLength(1)
    const [own, other] = verificationMails(w)
    expect((await w.login.verifyAccountLink({ token: tokenOf(own), session: session() })).isOk()).toBe(false)
    expect((await w.login.verifyAccountLink({ token: tokenOf(other), session: session() })).isOk()).toBe(true)
  })

  it('a daily cap per user: the page without a mail (no error: it would tell an account exists, threat 29), nothing written; the next day mails again', async () => {
    const w = world({ users: [victim] })
    const cap = w.ctx.policy.verificationDailyLimit
    for (let i = 0; i < cap; i++) {
      ;(await visit(w, i))._unsafeUnwrap()
      w.clock.advance(RESEND_MS)
    }
    expect(verificationMails(w)).toHaveLength(cap)
    const before = w.storage.snapshot()
    const handle = await start(w, { sessionId: 'late' })
    const capped = await w.login.finishLogin({
      handle,
      session: session({ id: 'late' }),
      identity: ident({ id: 'ext-late', email: 'victim@corp.example' }),
    })
    expect(capped._unsafeUnwrap()).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-identity' } })
    expect(capped._unsafeUnwrap().trace).toContainEqual(expect.objectContaining({ rule: 'verification.daily-limit' }))
    expect(verificationMails(w)).toHaveLength(cap)
    const after = w.storage.snapshot()
    expect(after.oneTimeTokens).toEqual(before.oneTimeTokens)
    expect(after.users).toEqual(before.users)
    // Finishing it again within the window mails nothing either.
    ;(await w.login.finishLogin({ handle, session: session({ id: 'late' }) }))._unsafeUnwrap()
    expect(verificationMails(w)).toHaveLength(cap)
    // A day after the first mail of the window, a new pipeline mails again.
    w.clock.advance(DAY_MS - cap * RESEND_MS)
    ;(await visit(w, 1000))._unsafeUnwrap()
    expect(verificationMails(w)).toHaveLength(cap + 1)
  })

  it('the host hook is asked once per anonymous page, keyed by target user (when a mail is due) and visitor; true refuses with RATE_LIMITED and writes nothing', async () => {
    const asked: RateLimitRequest[] = []
    let refuse = true
    const w = world({
      users: [victim],
      hooks: {
        isRateLimited: (request) => {
          asked.push(request)
          return refuse
        },
      },
    })
    const before = w.storage.snapshot()
    const handle = await start(w, { sessionId: 'visitor-x' })
    const r = await w.login.finishLogin({
      handle,
      session: session({ id: 'visitor-x', ip: '198.51.100.9' }),
      identity: ident({ id: 'ext-x', email: 'victim@corp.example' }),
    })
    expect(r._unsafeUnwrapErr().code).toBe('RATE_LIMITED')
    expect(asked).toEqual([
      {
        action: 'accountVerificationMail',
        organizationId: ORG.id,
        authProviderId: expect.any(String),
        targetUserId: 'v',
        sessionId: 'visitor-x',
        ip: '198.51.100.9',
      },
    ])
    expect(w.mailer.sent).toEqual([])
    expect(w.storage.snapshot().oneTimeTokens).toEqual(before.oneTimeTokens)
    // Allowed: the mail goes out; a page render in the window that mails nothing is asked about
    // too (with no target), so that the hook's answer cannot depend on whether an account exists.
    refuse = false
    ;(await w.login.finishLogin({ handle, session: session({ id: 'visitor-x', ip: '198.51.100.9' }) }))._unsafeUnwrap()
    expect(verificationMails(w)).toHaveLength(1)
    ;(await w.login.finishLogin({ handle, session: session({ id: 'visitor-x', ip: '198.51.100.9' }) }))._unsafeUnwrap()
    expect(asked).toHaveLength(3)
    expect(asked[2]).toMatchObject({ targetUserId: null, sessionId: 'visitor-x' })
  })

  it('still legitimate: a user who is not a member proves the mailbox through the org’s SSO and joins', async () => {
    const w = world({ users: [victim] })
    const handle = await start(w)
    const X = ident({ id: 'ext-join', email: 'victim@corp.example' })
    ;(await w.login.finishLogin({ handle, session: session(), identity: X }))._unsafeUnwrap()
    const token = tokenOf(verificationMails(w)[0])
    ;(await w.login.verifyAccountLink({ token, session: session() }))._unsafeUnwrap()
    const out = (await w.login.finishLogin({ handle, session: session({ verificationToken: token }) }))._unsafeUnwrap()
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'v', linked: true, created: { member: true } })
  })

  it('threat 7 / 57: an attacker-chosen org name reaches the mail as bounded plain text without a link', async () => {
    const hostile =
      'Acme\r\nURGENT: your account is locked. Claim it at https://evil.example/claim or www.evil.example, mail help@evil.example \u202Egnp.exe <a href="https://evil.example">here</a> ' +
      'x'.repeat(300)
    const w = world({ users: [victim] })
    const org = makeOrganization({ id: 'org-evil', slug: 'evil', name: hostile })
    const provider = makeProvider({ id: 'ap-evil', organizationId: org.id, providerKey: 'dummy' })
    w.storage.seed({ organizations: [org], providers: [provider] })
    const handle = await start(w, { organization: org, provider })
    ;(
      await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-e', email: 'victim@corp.example' }) })
    )._unsafeUnwrap()
    const mail = verificationMails(w)[0]
    if (mail?.template !== 'accountVerification') throw new Error('no mail')
    const name = mail.data.organizationName
    expect([...name].length).toBeLessThanOrEqual(100)
    expect(name).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u)
    expect(name).not.toContain('://')
    expect(name).not.toMatch(/[<>]/)
    expect(name).not.toMatch(/\w\.\w/)
    expect(name.startsWith('Acme URGENT: your account is locked.')).toBe(true)
    // Rendered by the default plain-text renderer: the only link in the mail is ours.
    const rendered = renderPlainText(mail)
    expect(rendered.subject).not.toMatch(/[\r\n]/)
    const links = rendered.text.match(/\b(?:https?:\/\/|www\.)\S+|\b[\w.+-]+@[\w-]+\.\w+|\b[\w-]+\.(?:example|com|net|org)\b/g) ?? []
    expect(links).toEqual([mail.data.url])
  })
})

// The race: RACERS visitors at once, half through the victim's org's IdP and half through
// another org's, each in its own browser session with its own subject.
for (const backend of BACKENDS) {
  if (!backend.enabled) reportSkip(`threat 28 (${backend.name})`, backend.variable ?? '')
  describe.skipIf(!backend.enabled)(`threat 28 on ${backend.name}`, () => {
    let opened: Awaited<ReturnType<typeof backend.open>>
    beforeAll(async () => {
      opened = await backend.open()
    })
    afterAll(async () => {
      await opened?.close()
    })

    it(`${RACERS} anonymous pipelines at once through two orgs' IdPs: one mail per provider, one live link`, async () => {
      const clock = newClock()
      const { storage: raw, drop } = await opened.fresh(clock)
      try {
        const orgA = makeOrganization({ id: 'org-a', slug: 'a', name: 'Org A' })
        const orgB = makeOrganization({ id: 'org-b', slug: 'b', name: 'Org B' })
        const provA = makeProvider({ id: 'ap-a', organizationId: orgA.id, providerKey: 'dummy' })
        const provB = makeProvider({ id: 'ap-b', organizationId: orgB.id, providerKey: 'dummy' })
        await raw.seed({
          organizations: [orgA, orgB],
          providers: [provA, provB],
          users: [victim],
          members: [makeMember({ id: 'm-v', organizationId: orgA.id, userId: victim.id, flags: NO_FLAGS })],
        })
        const e = engineOn(raw, backend, clock, { at: 'tx-start' })
        const visitors = Array.from({ length: RACERS }, (_, i) => ({
          session: { id: `visitor-${i}`, ip: `203.0.113.${i}` } satisfies SessionInfo,
          org: i % 2 === 0 ? orgA : orgB,
        }))
        const handles: string[] = []
        for (const v of visitors) handles.push(handleOf(await unwrap(e.sso.beginLogin({ organizationId: v.org.id, session: v.session }))))

        e.storage.arm()
        const results = await Promise.all(
          visitors.map((v, i) =>
            e.sso.advance({
              handle: handles[i] as string,
              request: post({ id: `ext-${i}`, email: 'victim@corp.example', email_verified: 'on' }),
              session: v.session,
            }),
          ),
        )
        for (const r of results)
          expect(r._unsafeUnwrap()).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-identity' } })
        const mails = verificationMails(e)
        expect(mails.map((m) => m.data.organizationName).sort()).toEqual(['Org A', 'Org B'])
        const after = await e.snapshot()
        const live = after.oneTimeTokens.filter((t) => t.purpose === 'account-verification')
        expect(live).toHaveLength(1)
        // The live token is the one of the last mail sent.
        const tokens = mails.map(tokenOf)
        const verified = await Promise.all(tokens.map((token) => e.sso.verifyAccountLink({ token, session: { id: 'mail-browser' } })))
        expect(verified.filter((r) => r.isOk())).toHaveLength(1)
        expect(after.users).toEqual([victim])
        expect(after.identities).toEqual([])
        // A day later the record of these mails has expired (and no sweep removed it): the next
        // mail still goes out and replaces it.
        clock.advance(25 * 3_600_000)
        const late = { id: 'visitor-late' }
        const begun = await unwrap(e.sso.beginLogin({ organizationId: orgA.id, session: late }))
        const page = await unwrap(
          e.sso.advance({ handle: handleOf(begun), request: post({ id: 'ext-late', email: 'victim@corp.example' }), session: late }),
        )
        expect(page).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-identity' } })
        expect(verificationMails(e)).toHaveLength(3)
      } finally {
        await drop()
      }
    })
  })
}
