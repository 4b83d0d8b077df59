// Section 3 of the threat catalog: linking and ownership proof (entries 16-29).
import type { Result, ResultAsync } from 'neverthrow'
import { describe, expect, it } from 'vitest'
import {
  type AuthError,
  type AuthPipelineOptions,
  createAuthPipeline,
  type MailerPort,
  type RateLimitRequest,
  type SessionInfo,
  type Step,
} from '../../src/index.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { StorageSeedData } from '../../src/ports/storage.js'
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
} from '../../src/testing/index.js'

const ACME = makeOrganization({ id: 'org-acme', slug: 'acme', name: 'Acme' })
const OTHER = makeOrganization({ id: 'org-other', slug: 'other', name: 'Other' })
const AP = makeProvider({ id: 'ap-acme', organizationId: ACME.id, providerKey: 'dummy' })
const AP_OTHER = makeProvider({ id: 'ap-other', organizationId: OTHER.id, providerKey: 'dummy' })
const ADDRESS = 'v@corp.example'
const FORM = { id: 'ext-visitor', email: ADDRESS, name: 'Visitor' }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

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
