// Section 3 of the threat catalog: linking and ownership proof (entries 16-29).
//
// Here: 29 (one answer for every account situation), 28 and 7 (verification-mail flooding, per
// target user across pipelines; was threat-28-verification-flood.test.ts), 19 (a spent proof
// survives a failed transaction; was proof-rollback.test.ts), 22, 23, 24, 25.
// Named by number elsewhere: 16, 17 in test/login/pipeline.test.ts; 18, 20, 21, 27 in
// test/login/verification.test.ts; 26 in test/login/unknown.test.ts and test/login/properties.test.ts.
import type { Result, ResultAsync } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AuthError,
  type AuthPipelineOptions,
  createAuthPipeline,
  type MailerPort,
  type MailMessage,
  type RateLimitRequest,
  renderPlainText,
  type SessionInfo,
  type Step,
} from '../../src/index.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { OneTimeTokenStore, StorageSeedData } from '../../src/ports/storage.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  dummyProvider,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  sentryStyleUrls,
  sequentialIds,
  validatingStorage,
} from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import {
  expectNoWrites,
  finishOk,
  ident,
  ORG,
  OTHER_ORG,
  OTHER_PROVIDER,
  PROVIDER,
  session,
  sha256Hex,
  start,
  type World,
  world,
} from '../login/harness.js'
import { failFirst, faultyStorage, InjectedFault } from './faults.js'
import { BACKENDS, engineOn, handleOf, newClock, post, RACERS, type RaceStorage, unwrap } from './race.js'

const ACME = makeOrganization({ id: 'org-acme', slug: 'acme', name: 'Acme' })
const OTHER = makeOrganization({ id: 'org-other', slug: 'other', name: 'Other' })
const AP = makeProvider({ id: 'ap-acme', organizationId: ACME.id, providerKey: 'dummy' })
const AP_OTHER = makeProvider({ id: 'ap-other', organizationId: OTHER.id, providerKey: 'dummy' })
const ADDRESS = 'v@corp.example'
const FORM = { id: 'ext-visitor', email: ADDRESS, name: 'Visitor' }

/** One public engine over a fresh memory store seeded with `seed`. */
function engine(seed: StorageSeedData, extra: Partial<AuthPipelineOptions> = {}) {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage: MemoryStorage = createMemoryStorage({ clock })
  storage.seed({
    organizations: [ACME, OTHER],
    providers: [AP, AP_OTHER],
    ...seed,
  })
  const mailer = createRecordingMailer()
  const options: AuthPipelineOptions = {
    storage,
    mailer,
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 'threat catalog section 3 secret, 32 bytes+',
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
    ids: sequentialIds('t'),
    ...extra,
  }
  const sso = createAuthPipeline(options)
  return { sso, storage, mailer, clock, options }
}

async function ok<T>(r: ResultAsync<T, AuthError> | Result<T, AuthError>): Promise<T> {
  const result = await r
  if (result.isErr()) throw new Error(`expected ok, got ${result.error.code}`)
  return result.value
}

/** The visitor's IdP callback: beginLogin, then the dummy form posted. */
async function visit(e: ReturnType<typeof engine>, session: SessionInfo, form: Record<string, string> = FORM) {
  const begun = await ok<Step>(e.sso.beginLogin({ organizationId: ACME.id, session }))
  if (!('handle' in begun)) throw new Error('no handle')
  const handle = begun.handle
  return { handle, result: await e.sso.advance({ handle, session, request: post(form) }) }
}

/** What the visitor's browser is told: everything but the host-side trace and warnings and the pipeline handle. */
function visitorView(step: Step) {
  if (step.kind !== 'confirmationRequired') return { kind: step.kind }
  return { kind: step.kind, confirmation: step.confirmation, allowedOps: step.allowedOps, session: step.session }
}

const visitor: SessionInfo = { id: 'visitor-session', ip: '198.51.100.9' }
const passwordless = (over: Partial<ReturnType<typeof makeUser>> = {}) =>
  makeUser({ id: 'v', email: ADDRESS, name: 'Victim', hasUsablePassword: false, ...over })

/** Account situations an attacker-run IdP could probe with ADDRESS. */
const SITUATIONS: { name: string; seed: StorageSeedData; policy?: AuthPipelineOptions['policy']; before?: 'visit-once' }[] = [
  { name: 'no account has the address', seed: {} },
  {
    name: 'a password account, member of the org',
    seed: {
      users: [makeUser({ id: 'v', email: ADDRESS, name: 'Victim' })],
      members: [makeMember({ id: 'm-v', organizationId: ACME.id, userId: 'v' })],
    },
  },
  { name: 'a password account, not a member', seed: { users: [makeUser({ id: 'v', email: ADDRESS, name: 'Victim' })] } },
  { name: 'a passwordless account with the address verified (a link is mailed)', seed: { users: [passwordless()] } },
  { name: 'a passwordless account with 2FA (a link is mailed)', seed: { users: [passwordless({ has2fa: true })] } },
  {
    name: 'a passwordless account with the address unverified',
    seed: {
      users: [passwordless({ email: 'primary@corp.example' })],
      userEmails: [{ userId: 'v', email: ADDRESS, emailNormalized: ADDRESS, isVerified: false, isPrimary: false }],
    },
  },
  {
    name: 'two accounts share the address',
    seed: { users: [makeUser({ id: 'v1', email: ADDRESS }), makeUser({ id: 'v2', email: ADDRESS })] },
  },
  { name: 'an inactive account', seed: { users: [passwordless({ isActive: false })] } },
  { name: 'a suspended account', seed: { users: [passwordless({ isSuspended: true })] } },
  {
    name: 'a passwordless account linked elsewhere',
    seed: {
      users: [passwordless()],
      identities: [makeIdentity({ id: 'ai-v', authProviderId: AP_OTHER.id, userId: 'v', ident: 'v-other' })],
    },
  },
  { name: 'a passwordless account mailed a link a minute ago', seed: { users: [passwordless()] }, before: 'visit-once' },
  {
    name: 'a passwordless account over its daily cap of links',
    seed: { users: [passwordless()] },
    policy: { verificationDailyLimit: 1, verificationResendSeconds: 1 },
    before: 'visit-once',
  },
]

async function prepare(s: (typeof SITUATIONS)[number], extra: Partial<AuthPipelineOptions> = {}) {
  const e = engine(s.seed, { policy: s.policy, ...extra })
  if (s.before === 'visit-once') {
    await visit(e, { id: 'earlier-visitor' }, { id: 'ext-earlier', email: ADDRESS })
    e.clock.advance(60_000)
  }
  return e
}

describe('threat 29: an anonymous visitor cannot tell whether an account exists', () => {
  it('threat 29: one response for every account situation: same page, same choices, no session change', async () => {
    const views: { name: string; view: unknown }[] = []
    for (const s of SITUATIONS) {
      const e = await prepare(s)
      const { result } = await visit(e, visitor)
      const step = await ok<Step>(result)
      views.push({ name: s.name, view: visitorView(step) })
    }
    const reference = views[0]?.view
    expect(reference).toMatchObject({ kind: 'confirmationRequired', allowedOps: ['newuser'], session: [] })
    for (const v of views) expect({ name: v.name, view: v.view }).toEqual({ name: v.name, view: reference })
    // and the page names nothing but what the IdP asserted
    expect(JSON.stringify(reference)).not.toContain('Victim')
  })

  it('threat 29: the only difference is the mail, to the account’s own address', async () => {
    const mailed: string[] = []
    for (const s of SITUATIONS) {
      const e = await prepare(s)
      e.mailer.clear()
      await visit(e, visitor)
      if (e.mailer.sent.length > 0) mailed.push(s.name)
      for (const m of e.mailer.sent) expect(m.to).toBe(ADDRESS)
    }
    expect(mailed).toEqual([
      'a passwordless account with the address verified (a link is mailed)',
      'a passwordless account with 2FA (a link is mailed)',
      'a suspended account',
      'a passwordless account linked elsewhere',
    ])
  })

  it('threat 29: the follow-up choices answer alike: confirm without proof is MERGE_FAILED in every situation', async () => {
    for (const s of SITUATIONS) {
      const e = await prepare(s)
      const { handle, result } = await visit(e, visitor)
      await ok<Step>(result)
      const confirm = await e.sso.finishLogin({ handle, session: visitor, op: 'confirm' })
      expect({ name: s.name, code: confirm.isErr() ? confirm.error.code : confirm.value.kind }).toEqual({
        name: s.name,
        code: 'MERGE_FAILED',
      })
    }
  })

  it('threat 29: the host rate limiter is asked for every anonymous page, and its refusal reads the same everywhere', async () => {
    const answers: { name: string; code: string; mails: number; asked: RateLimitRequest[] }[] = []
    for (const s of SITUATIONS) {
      const asked: RateLimitRequest[] = []
      const e = await prepare(s, {
        hooks: {
          isRateLimited: (r) => {
            if (r.sessionId === visitor.id) asked.push(r)
            return r.sessionId === visitor.id
          },
        },
      })
      e.mailer.clear()
      const { result } = await visit(e, visitor)
      const r = await result
      answers.push({ name: s.name, code: r.isErr() ? r.error.code : r.value.kind, mails: e.mailer.sent.length, asked })
    }
    for (const a of answers) {
      expect({ name: a.name, code: a.code, mails: a.mails }).toEqual({ name: a.name, code: 'RATE_LIMITED', mails: 0 })
      expect(a.asked).toHaveLength(1)
      expect(a.asked[0]).toMatchObject({
        action: 'accountVerificationMail',
        sessionId: visitor.id,
        ip: visitor.ip,
        organizationId: ACME.id,
      })
    }
  })

  it('threat 29: same timing class: the response never waits for the mailer', async () => {
    // A mailer that never answers: every situation still gets its page (a mail in flight is the
    // host's to finish; the visitor's response does not wait for it).
    for (const s of SITUATIONS) {
      let calls = 0
      const hanging: MailerPort = {
        send: () => {
          calls++
          return new Promise<void>(() => {})
        },
      }
      const e = await prepare(s)
      const late = createAuthPipeline({ ...e.options, mailer: hanging })
      const begun = await ok<Step>(late.beginLogin({ organizationId: ACME.id, session: visitor }))
      if (!('handle' in begun)) throw new Error('no handle')
      const step = await ok<Step>(late.advance({ handle: begun.handle, session: visitor, request: post(FORM) }))
      expect({ name: s.name, kind: step.kind }).toEqual({ name: s.name, kind: 'confirmationRequired' })
      void calls
    }
  })

  it('threat 29: a signed-in visitor’s choices do not depend on other accounts either', async () => {
    const me = makeUser({ id: 'me', email: 'me@corp.example' })
    const views: unknown[] = []
    for (const others of [[], [makeUser({ id: 'v', email: ADDRESS })], [passwordless()]]) {
      const e = engine({ users: [me, ...others] })
      const session = { id: 'me-session', userId: 'me' }
      const { result } = await visit(e, session)
      views.push(visitorView(await ok<Step>(result)))
    }
    expect(views[0]).toMatchObject({ kind: 'confirmationRequired', allowedOps: ['confirm', 'newuser'] })
    expect(views[1]).toEqual(views[0])
    expect(views[2]).toEqual(views[0])
  })
})

describe('threats 28, 7: verification-mail flooding (per target user, across pipelines)', () => {
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
})

describe('threat 19: a spent proof survives a failed transaction', () => {
  const ORG = makeOrganization({ id: 'org-a', slug: 'a', name: 'Org A' })
  const PROVIDER = makeProvider({ id: 'ap-a', organizationId: ORG.id, providerKey: 'dummy' })
  const owner = makeUser({ id: 'u', email: 'u@corp.example', name: 'Owner', hasUsablePassword: false })
  const FORM = { id: 'ext-u', email: 'u@corp.example' }

  /** The proof's consume, wherever the engine makes it (inside the transaction). */
  const isLinkConsume = (args: readonly unknown[]) => args[1] === 'account-verification'

  async function scenario(raw: RaceStorage, clock: ReturnType<typeof newClock>, separateTokens: boolean) {
    await raw.seed({ organizations: [ORG], providers: [PROVIDER], users: [owner] })
    const storage = faultyStorage(validatingStorage(raw))
    const mailer = createRecordingMailer()
    // A separate token store (a copy of the object: the engine cannot use tx.oneTimeTokens for it).
    const tokens: OneTimeTokenStore | undefined = separateTokens ? { ...storage.oneTimeTokens } : undefined
    const options: AuthPipelineOptions = {
      storage,
      tokens,
      mailer,
      signals: createRecordingSignals(),
      providers: { dummy: dummyProvider() },
      secret: 'proof rollback test secret, thirty-two bytes+',
      urls: sentryStyleUrls('https://app.example.com'),
      clock,
    }
    const sso = createAuthPipeline(options)
    const visitor: SessionInfo = { id: 'visitor' }
    const handle = handleOf(await unwrap(sso.beginLogin({ organizationId: ORG.id, session: visitor })))
    const page = await unwrap(sso.advance({ handle, session: visitor, request: post(FORM) }))
    expect(page.kind).toBe('confirmationRequired')
    const mail = mailer.sent.find((m) => m.template === 'accountVerification')
    const token = mail?.template === 'accountVerification' ? /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] : undefined
    if (!token) throw new Error('no link mailed')
    await unwrap(sso.verifyAccountLink({ token, session: { id: 'mail-browser' } }))
    return { sso, storage, token, handle, session: { ...visitor, verificationToken: token } satisfies SessionInfo }
  }

  type Kill = { name: string; plan: () => ReturnType<typeof failFirst> }
  const KILLS: Kill[] = [
    { name: 'the consume itself fails after it happened', plan: () => failFirst(/oneTimeTokens\.consume$/, 'after', isLinkConsume) },
    // An adapter with tx.createRows or tx.createRowsAndSettle (Kysely on PostgreSQL) writes the identity, membership and
    // audit rows in one call: that call is the identity insert and the last write.
    {
      name: 'the identity insert after the consume fails',
      plan: () => failFirst(/^tx\.(createIdentity|createRows|createRowsAndSettle)$/, 'before'),
    },
    {
      name: 'the last write (the membership audit) fails',
      plan: () => failFirst(/^tx\.(appendAudit|createRows|createRowsAndSettle)$/, 'before'),
    },
    { name: 'the commit fails', plan: () => failFirst('transaction', 'after') },
  ]

  type Open = (clock: ReturnType<typeof newClock>) => Promise<{ raw: RaceStorage; drop(): Promise<void> }>
  const runOn = (label: string, open: Open, separateTokens: boolean) => {
    for (const kill of KILLS) {
      // A commit reported failed after it happened keeps the link: only the other kills roll back.
      const committed = kill.name === 'the commit fails'
      // A separate, non-transactional store that consumed the token but lost the answer: the engine
      // cannot know it happened, so the link is spent (fail closed; the visitor asks for a new one).
      if (separateTokens && kill.name === 'the consume itself fails after it happened') {
        it(`${label}: ${kill.name}: nothing is linked; the link is spent (fail closed)`, async () => {
          const clock = newClock()
          const { raw, drop } = await open(clock)
          try {
            const s = await scenario(raw, clock, separateTokens)
            const before = await raw.snapshot()
            s.storage.faults.plan = kill.plan()
            expect((await s.sso.finishLogin({ handle: s.handle, session: s.session }))._unsafeUnwrapErr().code).toBe('STORAGE_UNAVAILABLE')
            s.storage.faults.plan = null
            const after = await raw.snapshot()
            expect(after.identities).toEqual(before.identities)
            expect(after.members).toEqual(before.members)
            expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'x' } }))._unsafeUnwrapErr().code).toBe(
              'VERIFICATION_INVALID',
            )
            const again = await unwrap(s.sso.finishLogin({ handle: s.handle, session: s.session }))
            expect(again.kind).toBe('confirmationRequired')
            expect((await raw.snapshot()).identities).toEqual(before.identities)
          } finally {
            await drop()
          }
        })
        continue
      }
      it(`${label}: ${kill.name}: ${committed ? 'the login committed with its state; a new login signs in' : 'nothing is linked, the link is live again and works once'}`, async () => {
        const clock = newClock()
        const { raw, drop } = await open(clock)
        try {
          const s = await scenario(raw, clock, separateTokens)
          const before = await raw.snapshot()
          s.storage.faults.plan = kill.plan()
          const failed = await s.sso.finishLogin({ handle: s.handle, session: s.session })
          expect(failed._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true })
          expect(s.storage.faults.injected).toHaveLength(1)
          expect(s.storage.faults.injected[0]).toBeInstanceOf(InjectedFault)
          s.storage.faults.plan = null
          const after = await raw.snapshot()
          if (!committed) {
            // Nothing happened: no identity, no membership, the token row is back unchanged.
            expect(after.identities).toEqual(before.identities)
            expect(after.members).toEqual(before.members)
            expect(after.audit).toEqual(before.audit)
            expect(after.oneTimeTokens).toEqual(before.oneTimeTokens)
            expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'mail-browser' } })).isOk()).toBe(true)
          }
          let retried: unknown
          if (committed) {
            // The decision committed with its state (settled in the same transaction): the same
            // handle is spent, one final decision per state...
            expect((await s.sso.finishLogin({ handle: s.handle, session: s.session }))._unsafeUnwrapErr().code).toBe('STATE_CONSUMED')
            // ...and a new login signs in through the identity the committed one linked.
            const again: SessionInfo = { id: 'visitor-again' }
            const begun = handleOf(await unwrap(s.sso.beginLogin({ organizationId: ORG.id, session: again })))
            const step = await unwrap(s.sso.advance({ handle: begun, session: again, request: post(FORM) }))
            if (step.kind !== 'signedIn') throw new Error(`expected signedIn, got ${step.kind}`)
            retried = step
          } else {
            // The same request again: signed in, linked (once).
            retried = await unwrap(s.sso.finishLogin({ handle: s.handle, session: s.session }))
          }
          expect(retried).toMatchObject({ kind: 'signedIn', userId: 'u', linked: !committed })
          const linked = await raw.snapshot()
          expect(linked.identities).toEqual([expect.objectContaining({ userId: 'u', ident: 'ext-u', authProviderId: PROVIDER.id })])
          // Spent now: the link does not work a second time.
          if (!committed)
            expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'x' } }))._unsafeUnwrapErr().code).toBe(
              'VERIFICATION_INVALID',
            )
        } finally {
          await drop()
        }
      })
    }
  }

  describe('a spent proof survives a failed transaction (issue 12 item 2, threat 19)', () => {
    const memory = BACKENDS.find((b) => b.name === 'memory')
    const postgres = BACKENDS.find((b) => b.name === 'postgres')
    if (!memory || !postgres) throw new Error('backends')
    const viaMemory: Open = async (clock) => {
      const o = await memory.open()
      const f = await o.fresh(clock)
      return { raw: f.storage, drop: f.drop }
    }
    describe('memory storage (tx.oneTimeTokens)', () => runOn('memory', viaMemory, false))
    describe('a separate token store (the engine restores it)', () => runOn('separate store', viaMemory, true))

    if (!postgres.enabled) reportSkip('proof rollback (postgres)', postgres.variable ?? '')
    describe.skipIf(!postgres.enabled)('PostgreSQL', () => {
      let opened: Awaited<ReturnType<typeof postgres.open>>
      beforeAll(async () => {
        opened = await postgres.open()
      })
      afterAll(async () => {
        await opened?.close()
      })
      runOn(
        'postgres',
        async (clock) => {
          const f = await opened.fresh(clock)
          return { raw: f.storage, drop: f.drop }
        },
        false,
      )
    })
  })
})

describe('threats 22-25: proofs, re-authentication, the decision table, re-pointing', () => {
  const stored = makeUser({ id: 'v', email: 'Val@Corp.example', name: 'Victim', hasUsablePassword: false })

  it('threat 22: a list, a quoted local part, a fullwidth @, CR/LF or a bidi mark in the asserted address is IDENTITY_INVALID; nothing mailed', async () => {
    for (const email of [
      'val@corp.example,attacker@evil.example',
      'val@corp.example;attacker@evil.example',
      '"attacker@evil.example"@corp.example',
      'val\uFF20corp.example',
      'val@corp.example\r\nBcc: attacker@evil.example',
      'val@corp.example attacker@evil.example',
      'val@corp.example\u202E',
      '<val@corp.example>',
    ]) {
      const w = world({ users: [stored] })
      const handle = await start(w)
      const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-a', email, emailVerified: true }) })
      if (r.isOk()) {
        // accepted as a different mailbox: then it matched nobody and nothing was mailed
        expect(r.value.trace, email).toContainEqual(expect.objectContaining({ rule: 'target.email-none' }))
      } else expect(r.error.code, email).toBe('IDENTITY_INVALID')
      expect(w.mailer.sent, email).toEqual([])
    }
  })

  it('threat 22: the proof goes to the stored spelling of the address, never to the asserted text', async () => {
    const w = world({ users: [stored] })
    await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-a', email: ' VAL@corp.EXAMPLE ' }) })
    expect(w.mailer.sent.map((m) => m.to)).toEqual(['Val@Corp.example'])
  })

  it('threat 23: signing in as someone other than the address’s owner links the IdP identity to the signed-in user only; the owner is untouched', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example' })
    const other = makeUser({ id: 'b', email: 'b@corp.example' })
    const w = world({ users: [owner, other] })
    const handle = await start(w)
    const page = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-x', email: 'u@corp.example', emailVerified: true }),
    })
    expect(page.kind).toBe('confirmationRequired')
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 'b' }), op: 'confirm' })
    expect(out.kind === 'signedIn' && out.userId).toBe('b')
    const after = w.storage.snapshot()
    expect(after.identities.map((i) => [i.userId, i.ident])).toEqual([['b', 'ext-x']])
    expect(after.users).toEqual(before.users)
    expect(after.members.filter((m) => m.userId === 'u')).toEqual(before.members.filter((m) => m.userId === 'u'))
  })

  it('threat 23: signed in as the owner with the second factor pending: nothing is linked until the owner’s own factor passed', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', has2fa: true })
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-x', email: 'u@corp.example' }) })
    const before = w.storage.snapshot()
    for (const twoFactorUserId of [undefined, null, 'someone-else']) {
      const out = await finishOk(w, { handle, session: session({ userId: 'u', twoFactorUserId }), op: 'confirm' })
      expect(out.kind).toBe('twoFactorRequired')
      expectNoWrites(w, before)
    }
    const done = await finishOk(w, { handle, session: session({ userId: 'u', twoFactorUserId: 'u' }), op: 'confirm' })
    expect(done.kind === 'signedIn' && done.userId).toBe('u')
  })

  // Threat 24: the decision over the whole table of (session, op, claim, target, proof), checked
  // against an oracle that knows only invariant 1: an identity is linked to an existing user only
  // when that user is the signed-in user; otherwise the only account that may gain it is one made
  // by this pipeline with op=newuser; a refusal or a page writes no user, identity or membership.
  it('threat 24: every cell of the unknown-identity table obeys the ownership oracle', async () => {
    const targets: Record<string, Parameters<typeof world>[0]> = {
      none: {},
      'password account': { users: [makeUser({ id: 't', email: 'x@corp.example' })] },
      'passwordless, verified': { users: [makeUser({ id: 't', email: 'x@corp.example', hasUsablePassword: false })] },
      'address unverified': {
        users: [makeUser({ id: 't', email: 'primary@corp.example', hasUsablePassword: false })],
        userEmails: [{ userId: 't', email: 'x@corp.example', emailNormalized: 'x@corp.example', isVerified: false, isPrimary: false }],
      },
      inactive: { users: [makeUser({ id: 't', email: 'x@corp.example', isActive: false })] },
      suspended: { users: [makeUser({ id: 't', email: 'x@corp.example', isSuspended: true })] },
      ambiguous: { users: [makeUser({ id: 't', email: 'x@corp.example' }), makeUser({ id: 't2', email: 'x@corp.example' })] },
      'member of another org only': {
        users: [makeUser({ id: 't', email: 'x@corp.example', hasUsablePassword: false })],
        members: [makeMember({ id: 'm-t', organizationId: OTHER_ORG.id, userId: 't' })],
      },
    }
    let cells = 0
    for (const [targetName, seed] of Object.entries(targets)) {
      for (const sessionUser of [null, 't', 's'] as const) {
        for (const op of [undefined, 'confirm', 'newuser'] as const) {
          for (const emailVerified of [false, true]) {
            for (const foreignProof of [false, true]) {
              for (const newUser of ['confirm', 'create'] as const) {
                const users = [...(seed?.users ?? []), makeUser({ id: 's', email: 's@corp.example' })]
                const w = world({ ...seed, users, policy: { newUser } })
                const label = JSON.stringify({ targetName, sessionUser, op, emailVerified, foreignProof, newUser })
                const before = w.storage.snapshot()
                const handle = await start(w, { initiatorUserId: sessionUser })
                const sess = session({ userId: sessionUser, verificationToken: foreignProof ? 'A'.repeat(43) : null })
                const identity = ident({ id: 'ext-x', email: 'x@corp.example', emailVerified })
                const r = await w.login.finishLogin({ handle, session: sess, identity, op })
                const after = w.storage.snapshot()
                const preexisting = new Set(before.users.map((u) => u.id))
                const newUsers = after.users.filter((u) => !preexisting.has(u.id))
                cells++
                if (r.isOk() && r.value.kind === 'signedIn') {
                  const who = r.value.userId
                  if (preexisting.has(who)) expect(who, label).toBe(sessionUser)
                  else {
                    expect(
                      newUsers.map((u) => u.id),
                      label,
                    ).toEqual([who])
                    expect(op === 'newuser' || newUser === 'create', label).toBe(true)
                  }
                  expect(
                    after.identities.filter((i) => i.ident === 'ext-x').map((i) => i.userId),
                    label,
                  ).toEqual([who])
                  // no pre-existing user other than the signed-in one changed
                  for (const u of before.users)
                    if (u.id !== who)
                      expect(
                        after.users.find((x) => x.id === u.id),
                        label,
                      ).toEqual(u)
                } else {
                  expect(after.users, label).toEqual(before.users)
                  expect(after.identities, label).toEqual(before.identities)
                  expect(after.members, label).toEqual(before.members)
                  expect(newUsers, label).toEqual([])
                }
                expect(w.signals.emitted.filter((s) => s.name === 'user_signup').length, label).toBe(newUsers.length)
              }
            }
          }
        }
      }
    }
    expect(cells).toBe(8 * 3 * 3 * 2 * 2 * 2)
  })

  it('threat 25: a signed-in user confirming an identity linked to an ACTIVE user never moves it: the owner signs in, nothing re-pointed', async () => {
    const old = makeUser({ id: 'old', email: 'old@corp.example' })
    const neu = makeUser({ id: 'new', email: 'new@corp.example' })
    const oldIdentity = makeIdentity({ id: 'ai-old', authProviderId: PROVIDER.id, userId: 'old', ident: 'X' })
    const w = world({ users: [old, neu], identities: [oldIdentity] })
    const handle = await start(w, { initiatorUserId: 'new' })
    const out = await w.login.finishLogin({
      handle,
      session: session({ userId: 'new' }),
      identity: ident({ id: 'X', email: 'old@corp.example' }),
      op: 'confirm',
    })
    if (out.isOk() && out.value.kind === 'signedIn') expect(out.value.userId).toBe('old')
    const rows = w.storage.snapshot().identities
    expect(rows.map((i) => [i.id, i.userId, i.ident])).toEqual([['ai-old', 'old', 'X']])
    expect([...w.storage.snapshot().users].sort((a, b) => a.id.localeCompare(b.id))).toEqual([neu, old])
  })

  it('threat 25: re-pointing from an INACTIVE owner leaves one row, traced, the old membership here marked ssoInvalid; the old owner’s other rows are unchanged', async () => {
    const old = makeUser({ id: 'old', email: 'old@corp.example', isActive: false })
    const neu = makeUser({ id: 'new', email: 'new@corp.example' })
    const oldIdentity = makeIdentity({ id: 'ai-old', authProviderId: PROVIDER.id, userId: 'old', ident: 'X' })
    const oldOther = makeIdentity({ id: 'ai-old-2', authProviderId: OTHER_PROVIDER.id, userId: 'old', ident: 'Y' })
    const oldMember = makeMember({ id: 'm-old', organizationId: OTHER_ORG.id, userId: 'old' })
    const oldHere = makeMember({ id: 'm-old-here', organizationId: ORG.id, userId: 'old', flags: { ...NO_FLAGS, ssoLinked: true } })
    const w = world({ users: [old, neu], identities: [oldIdentity, oldOther], members: [oldMember, oldHere] })
    const handle = await start(w, { initiatorUserId: 'new' })
    const page = await finishOk(w, { handle, session: session({ userId: 'new' }), identity: ident({ id: 'X', email: 'old@corp.example' }) })
    expect(page.kind).toBe('confirmationRequired')
    const out = await finishOk(w, { handle, session: session({ userId: 'new' }), op: 'confirm' })
    expect(out.kind === 'signedIn' && out.userId).toBe('new')
    const after = w.storage.snapshot()
    expect(after.identities.filter((i) => i.authProviderId === PROVIDER.id && i.ident === 'X').map((i) => i.userId)).toEqual(['new'])
    expect(after.identities.find((i) => i.id === 'ai-old-2')).toEqual(oldOther)
    expect(after.users.find((u) => u.id === 'old')).toEqual(old)
    expect(after.members.find((m) => m.id === 'm-old')).toEqual(oldMember)
    // the move is in the trace, and the previous owner's membership in this org is marked ssoInvalid
    expect(out.trace).toContainEqual(expect.objectContaining({ rule: 'attach.repoint' }))
    expect(after.members.find((m) => m.id === 'm-old-here')?.flags).toMatchObject({ ssoInvalid: true, ssoLinked: false })
  })
})

describe('threat 20: guessable or forgeable tokens', () => {
  it('threat 20: verification links are 256-bit random, distinct, stored only as a hash; handles carry 192 random bits', async () => {
    const users = Array.from({ length: 12 }, (_, i) => makeUser({ id: `p${i}`, email: `p${i}@corp.example`, hasUsablePassword: false }))
    const w = world({ users })
    const tokens: string[] = []
    const handles: string[] = []
    for (const [i] of users.entries()) {
      const handle = await start(w, { sessionId: `s${i}` })
      handles.push(handle)
      await finishOk(w, { handle, session: session({ id: `s${i}` }), identity: ident({ id: `ext-${i}`, email: `p${i}@corp.example` }) })
      const mail = w.mailer.sent.at(-1)
      const token = mail?.template === 'accountVerification' ? /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] : undefined
      if (!token) throw new Error('no link mailed')
      tokens.push(token)
    }
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{43,}$/)
    expect(new Set(tokens).size).toBe(tokens.length)
    // no shared prefix beyond chance (a counter or a timestamp would share one)
    const prefixes = new Set(tokens.map((t) => t.slice(0, 4)))
    expect(prefixes.size).toBe(tokens.length)
    const ids = handles.map((h) => h.split('.')[0] ?? '')
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(new Set(ids.map((id) => id.slice(0, 4))).size).toBe(ids.length)
    const stored = JSON.stringify(w.storage.snapshot())
    for (const token of tokens) {
      expect(stored).not.toContain(token)
      expect(stored).toContain(await sha256Hex(token))
    }
    // a token with one character changed is not a link
    const forged = `${tokens[0]?.slice(0, -1)}${tokens[0]?.endsWith('A') ? 'B' : 'A'}`
    expect((await w.login.verifyAccountLink({ token: forged, session: session({ id: 'mail' }) })).isErr()).toBe(true)
  })
})
