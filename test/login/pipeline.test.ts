// finishLogin's boundary: state checks (threats 16, 17, 30-32), identity validation (threat 55),
// stored identity on follow-ups, redirects (threat 37), explain(), after-commit failures.
import { describe, expect, it } from 'vitest'
import { ACCOUNT_VERIFICATION_PURPOSE, type LoginHandoff, VERIFICATION_SENDS_PURPOSE } from '../../src/engine/login.js'
import { openState } from '../../src/engine/pipeline-state.js'
import { LIMITS } from '../../src/model/limits.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { StorageTx } from '../../src/ports/storage.js'
import type { Provider } from '../../src/providers/types.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import {
  expectNoWrites,
  finishErr,
  finishOk,
  ident,
  ORG,
  OTHER_PROVIDER,
  PROVIDER,
  session,
  sha256Hex,
  start,
  testProvider,
  world,
} from './harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
const seeded = () => world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })

describe('state checks', () => {
  it('threat 16: a handle finished from another browser session → STATE_SESSION_MISMATCH, state not consumed', async () => {
    const w = seeded()
    const handle = await start(w, { sessionId: 'sess-1' })
    const before = w.storage.snapshot()
    expect((await finishErr(w, { handle, session: session({ id: 'sess-2' }), identity: ident({ id: 'ext-alice' }) })).code).toBe(
      'STATE_SESSION_MISMATCH',
    )
    expect(w.storage.snapshot()).toEqual(before)
    expect((await finishOk(w, { handle, session: session({ id: 'sess-1' }), identity: ident({ id: 'ext-alice' }) })).kind).toBe('signedIn')
  })

  it('threat 17: started signed in as A, finished as B or anonymous → STATE_SESSION_MISMATCH; A proceeds', async () => {
    const w = seeded()
    const handle = await start(w, { initiatorUserId: 'alice' })
    for (const userId of ['bob', null]) {
      const before = w.storage.snapshot()
      expect((await finishErr(w, { handle, session: session({ userId }), identity: ident({ id: 'ext-alice' }) })).code).toBe(
        'STATE_SESSION_MISMATCH',
      )
      expect(w.storage.snapshot()).toEqual(before)
    }
    expect((await finishOk(w, { handle, session: session({ userId: 'alice' }), identity: ident({ id: 'ext-alice' }) })).kind).toBe(
      'signedIn',
    )
  })

  it('a forged or truncated handle → STATE_INVALID; an expired state → STATE_EXPIRED', async () => {
    const w = seeded()
    const handle = await start(w)
    expect((await finishErr(w, { handle: `${handle}x`, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe(
      'STATE_INVALID',
    )
    expect((await finishErr(w, { handle: handle.slice(0, 20), session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe(
      'STATE_INVALID',
    )
    w.clock.advance(3601_000)
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(['STATE_EXPIRED', 'STATE_NOT_FOUND']).toContain(e.code)
  })

  it("N6/N7: the org's provider changed since begin → PROVIDER_MISMATCH; another org's provider row → PROVIDER_MISMATCH", async () => {
    const w = seeded()
    const handle = await start(w, { provider: { ...PROVIDER, id: 'ap-old' } })
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('PROVIDER_MISMATCH')
    const h2 = await start(w, { provider: OTHER_PROVIDER })
    expect((await finishErr(w, { handle: h2, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('PROVIDER_MISMATCH')
  })

  it('threat 31: finishing before the provider steps ran → STATE_INVALID, nothing written', async () => {
    const w = seeded()
    const handle = await start(w, { stepsDone: false })
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e).toMatchObject({ code: 'STATE_INVALID', details: { reason: 'steps-incomplete' } })
    expect(w.storage.snapshot()).toEqual(before)
  })

  it("the provider's steps changed since begin → STATE_FINGERPRINT", async () => {
    const w = seeded()
    const handle = await start(w)
    const changed = testProvider('dummy', { loginSteps: () => [{ id: 'other', handle: async () => ({ type: 'next' }) }] })
    ;(w.ctx.providers as Map<string, typeof changed>).set('dummy', changed)
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('STATE_FINGERPRINT')
  })
})

describe('identity at the boundary', () => {
  it('an invalid identity → IDENTITY_INVALID with field paths, nothing written, state still open', async () => {
    const w = seeded()
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: { id: 'x'.repeat(300), email: 'not an email' } })
    expect(e.code).toBe('IDENTITY_INVALID')
    expect(e.details).toEqual({
      issues: expect.arrayContaining([expect.objectContaining({ path: 'id' }), expect.objectContaining({ path: 'email' })]),
    })
    expect(w.storage.snapshot()).toEqual(before)
    expectNoWrites(w, before)
  })

  it('"true" as a string is not a verified email (0.3)', async () => {
    const m = makeMember({ id: 'm-u', organizationId: ORG.id, userId: 'u', flags: { ...NO_FLAGS, ssoLinked: true } })
    const u = makeUser({ id: 'u', email: 'u@corp.example' })
    const w = world({ users: [u], members: [m] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 'u' }),
      identity: { id: 'ext-u', email: 'u@corp.example', emailVerified: 'true' },
    })
    expect(out.kind).toBe('confirmationRequired')
  })

  it('a follow-up uses the STORED identity; re-supplying a different one is rejected', async () => {
    const w = world()
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'one@corp.example' }) })
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-2', email: 'one@corp.example' }), op: 'newuser' })
    expect(e.code).toBe('IDENTITY_INVALID')
    expectNoWrites(w, before)
    const same = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-1', email: 'one@corp.example' }),
      op: 'newuser',
    })
    if (same.kind !== 'signedIn') throw new Error(same.kind)
    expect(w.storage.snapshot().identities).toEqual([expect.objectContaining({ ident: 'ext-1' })])
  })

  it('a first finish without an identity → IDENTITY_INVALID', async () => {
    const w = seeded()
    const handle = await start(w)
    expect((await finishErr(w, { handle, session: session() })).code).toBe('IDENTITY_INVALID')
  })
})

describe('redirects (threat 37) and explain()', () => {
  it('the validated next is honoured; a hostile one falls back to urls.afterLogin', async () => {
    for (const [next, expected] of [
      ['/settings/', '/settings/'],
      ['//evil.example/x', '/organizations/acme/issues/'],
      ['/\\evil.example', '/organizations/acme/issues/'],
      ['javascript:alert(1)', '/organizations/acme/issues/'],
      ['/%2F%2Fevil.example', '/organizations/acme/issues/'],
    ] as const) {
      const w = seeded()
      const handle = await start(w, { next })
      const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
      expect(out.kind === 'signedIn' && out.redirect).toBe(expected)
    }
  })

  it('explain(): same decision, trace and effects, with no writes and no claim', async () => {
    const w = world()
    const handle = await start(w)
    const before = w.storage.snapshot()
    const r = await w.login.explain({
      handle,
      session: session(),
      identity: ident({ id: 'ext-1', email: 'n@corp.example' }),
      op: 'newuser',
    })
    const x = r._unsafeUnwrap()
    expect(x.decision).toBe('signIn:newUser')
    expect(x.effects).toEqual(['user.create', 'identity.create', 'member.create', 'audit.record', 'mail.send', 'signal.emit'])
    expect(x.trace.map((t) => t.rule)).toEqual([
      'login.unknown-identity',
      'trust.email',
      'target.email-none',
      'newuser.create',
      'membership.new',
    ])
    expect(w.storage.snapshot()).toEqual(before)
    expect(w.mailer.sent).toEqual([])
    // the state was not claimed: finishing still works
    expect(
      (await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'n@corp.example' }), op: 'newuser' })).kind,
    ).toBe('signedIn')
  })
})

describe('after commit', () => {
  it('a failing mailer or signal bus is a warning on the outcome, never a rollback', async () => {
    const w = world()
    const handle = await start(w)
    w.mailer.failNext(1)
    w.signals.failNext(1)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'n@corp.example' }), op: 'newuser' })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.warnings.map((x) => x.code)).toEqual(['MAILER_FAILED', 'SIGNAL_FAILED'])
    expect(w.storage.snapshot().users).toHaveLength(1)
  })

  it('storage failing inside the transaction → STORAGE_UNAVAILABLE, nothing written, state reopened', async () => {
    const w = world()
    const handle = await start(w)
    const before = w.storage.snapshot()
    const original = w.storage.transaction.bind(w.storage)
    let fail = true
    ;(w.storage as { transaction: typeof original }).transaction = (fn) =>
      original(async (tx) => {
        const r = await fn(tx)
        if (fail) {
          fail = false
          throw new Error('disk on fire')
        }
        return r
      })
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'n@corp.example' }), op: 'newuser' })
    expect(e.code).toBe('STORAGE_UNAVAILABLE')
    expect(e.retryable).toBe(true)
    expectNoWrites(w, before)
    expect((await finishOk(w, { handle, session: session(), op: 'newuser' })).kind).toBe('signedIn')
  })
})

// The guards of src/engine/login.ts's own code before the decision (issue 12 item 4: mutants of
// lines 1-321 that no test told apart). finishLogin through the internal login API, as the step
// machine and createAuthPipeline's boundary call it.
describe("finishLogin's own guards", () => {
  const warningsOf = () => {
    const warnings: { message: string; fields: unknown }[] = []
    return { warnings, logger: { warn: (message: string, fields?: unknown) => warnings.push({ message, fields }) } }
  }

  it('a session without an id, or an op that does not exist → INPUT_INVALID naming what, nothing read', async () => {
    const w = seeded()
    const handle = await start(w)
    for (const bad of [undefined, { id: '' }, { id: 5 }]) {
      const e = await finishErr(w, { handle, session: bad as never, identity: ident({ id: 'ext-alice' }) })
      expect(e).toMatchObject({ code: 'INPUT_INVALID', redirect: 'orgLogin', details: { reason: 'session' } })
    }
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }), op: 'bogus' as never })
    expect(e).toMatchObject({ code: 'INPUT_INVALID', redirect: 'orgLogin', details: { field: 'op' } })
    expect((await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).kind).toBe('signedIn')
  })

  it('a follow-up re-supplying an identity that differs in any field → IDENTITY_INVALID (identity-mismatch); the same one passes', async () => {
    const first = { id: { id: 'ext-1', legacyId: 'old-1' }, email: 'one@corp.example', emailVerified: true, name: 'One', data: { a: 1 } }
    const w = world()
    const handle = await start(w)
    const page = await finishOk(w, { handle, session: session(), identity: first })
    expect(page.kind).toBe('confirmationRequired')
    for (const other of [
      { ...first, id: { id: 'ext-1', legacyId: 'old-2' } },
      { ...first, email: 'two@corp.example' },
      { ...first, emailVerified: false },
      { ...first, name: 'Two' },
      { ...first, data: { a: 2 } },
    ]) {
      const e = await finishErr(w, { handle, session: session(), identity: other, op: 'newuser' })
      expect(e).toMatchObject({ code: 'IDENTITY_INVALID', redirect: 'orgLogin', details: { reason: 'identity-mismatch' } })
    }
    expect((await finishOk(w, { handle, session: session(), identity: first, op: 'newuser' })).kind).toBe('signedIn')
  })

  it('a first finish without an identity names the reason', async () => {
    const w = seeded()
    const handle = await start(w)
    expect(await finishErr(w, { handle, session: session() })).toMatchObject({
      code: 'IDENTITY_INVALID',
      redirect: 'orgLogin',
      details: { reason: 'missing' },
    })
  })

  it('the provider implementation gone from the engine → PROVIDER_UNKNOWN; the org gone → ORGANIZATION_NOT_FOUND', async () => {
    const w = seeded()
    const handle = await start(w)
    ;(w.ctx.providers as Map<string, unknown>).delete('dummy')
    expect(await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).toMatchObject({
      code: 'PROVIDER_UNKNOWN',
      redirect: 'orgLogin',
    })
    const w2 = seeded()
    const h2 = await start(w2)
    w2.ctx.configCache.drop(ORG.id)
    ;(w2.storage as { getOrganizationWithProvider: unknown }).getOrganizationWithProvider = async () => null
    expect(await finishErr(w2, { handle: h2, session: session(), identity: ident({ id: 'ext-alice' }) })).toMatchObject({
      code: 'ORGANIZATION_NOT_FOUND',
      redirect: 'orgLogin',
    })
  })

  it('the org and provider read failing → STORAGE_UNAVAILABLE to the org login page', async () => {
    const w = seeded()
    const handle = await start(w)
    w.ctx.configCache.drop(ORG.id)
    ;(w.storage as { getOrganizationWithProvider: unknown }).getOrganizationWithProvider = async () => {
      throw new Error('down')
    }
    expect(await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      redirect: 'orgLogin',
    })
  })

  it("the engine's copy of the org's provider is not used for a state of another row or key: read again", async () => {
    const replaced = { ...PROVIDER, id: 'ap3' }
    const w = seeded()
    await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })
    // The copy holds ap1; the org's provider is replaced (new row) behind the engine.
    await w.storage.transaction(async (tx) => {
      await tx.deleteAuthProvider(PROVIDER.id)
      await tx.createAuthProvider(replaced)
    })
    const out = await finishOk(w, {
      handle: await start(w, { provider: replaced }),
      session: session(),
      identity: ident({ id: 'ext-new' }),
    })
    expect(out.kind).toBe('confirmationRequired')
    // Same row, new provider key.
    const w2 = world({ provider: testProvider('dummy') })
    ;(w2.ctx.providers as Map<string, Provider>).set('other', testProvider('other'))
    await finishOk(w2, { handle: await start(w2), session: session(), identity: ident({ id: 'ext-1', email: 'a@corp.example' }) })
    const rekeyed = { ...PROVIDER, providerKey: 'other' }
    await w2.storage.transaction(async (tx) => {
      await tx.deleteAuthProvider(PROVIDER.id)
      await tx.createAuthProvider(rekeyed)
    })
    const out2 = await finishOk(w2, {
      handle: await start(w2, { provider: rekeyed }),
      session: session(),
      identity: ident({ id: 'ext-2' }),
    })
    expect(out2.kind).toBe('confirmationRequired')
  })

  it("the step machine's handoff is checked like a loaded state: another flow, org or provider key is refused", async () => {
    const w = seeded()
    const handle = await start(w)
    const opened = (await openState(w.ctx, handle, 'sess-1', { flow: 'login' }))._unsafeUnwrap()
    const input = { handle, session: session(), identity: ident({ id: 'ext-alice' }) }
    const before = w.storage.snapshot()
    const refused = async (handoff: LoginHandoff) => (await w.login.finishAfterSteps(input, handoff))._unsafeUnwrapErr()
    expect(
      await refused({ opened: { ...opened, state: { ...opened.state, flow: 'setup' } }, organization: ORG, providerRow: PROVIDER }),
    ).toMatchObject({ code: 'FLOW_MISMATCH', redirect: 'orgLogin' })
    expect(await refused({ opened, organization: ORG, providerRow: { ...PROVIDER, organizationId: 'org2' } })).toMatchObject({
      code: 'PROVIDER_MISMATCH',
    })
    expect(await refused({ opened, organization: ORG, providerRow: { ...PROVIDER, providerKey: 'other' } })).toMatchObject({
      code: 'PROVIDER_MISMATCH',
    })
    expect(w.storage.snapshot()).toEqual(before)
    expect((await w.login.finishAfterSteps(input, { opened, organization: ORG, providerRow: PROVIDER }))._unsafeUnwrap().kind).toBe(
      'signedIn',
    )
  })

  it('a provider trust policy that throws → PROVIDER_ERROR to the org login page', async () => {
    const w = world({
      users: [alice],
      identities: [aliceIdentity],
      members: [aliceMember],
      provider: testProvider('dummy', {
        trustPolicy: () => {
          throw new Error('bad config')
        },
      }),
    })
    const handle = await start(w)
    expect(await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).toMatchObject({
      code: 'PROVIDER_ERROR',
      redirect: 'orgLogin',
      details: { stage: 'trustPolicy' },
    })
  })

  it('the member-limit hook throwing → STORAGE_UNAVAILABLE naming the hook, to the org login page', async () => {
    const boom = new Error('limit service down')
    const w = world({
      hooks: {
        isMemberLimitReached: () => {
          throw boom
        },
      },
    })
    const handle = await start(w)
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-1' }), op: 'newuser' })
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin', details: { hook: 'isMemberLimitReached' } })
    expect(e.cause).toBe(boom)
    expect(w.storage.snapshot().users).toEqual([])
  })

  it('the verification-link read failing → STORAGE_UNAVAILABLE to the org login page', async () => {
    const w = seeded()
    const handle = await start(w)
    ;(w.ctx.tokens as { peek: unknown }).peek = async () => {
      throw new Error('down')
    }
    expect(
      await finishErr(w, { handle, session: session({ verificationToken: 'a'.repeat(43) }), identity: ident({ id: 'ext-alice' }) }),
    ).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
  })

  it('a verification-link row whose payload is not JSON is no link: the page as without one', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    const token = 'b'.repeat(43)
    const w = world({ users: [owner] })
    await w.ctx.tokens.create({
      hash: sha256Hex(token),
      purpose: ACCOUNT_VERIFICATION_PURPOSE,
      payload: '{not json',
      expiresAt: new Date('2026-03-01T13:00:00.000Z'),
    })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session({ verificationToken: token }),
      identity: ident({ id: 'ext-u', email: 'u@corp.example' }),
    })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(out.trace.map((t) => t.rule)).not.toContain('unknown.verification-ignored')
  })

  it("a user's unreadable verification-sends record is ignored with a warning; none when there is no record", async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    const X = ident({ id: 'ext-u', email: 'u@corp.example' })
    const clean = warningsOf()
    const w0 = world({ users: [owner], logger: clean.logger })
    await finishOk(w0, { handle: await start(w0), session: session(), identity: X })
    expect(w0.mailer.sent).toHaveLength(1)
    expect(clean.warnings).toEqual([])
    for (const payload of ['{not json', JSON.stringify({ windowStart: 0, count: -1, lastByProvider: {}, tokenHash: null })]) {
      const log = warningsOf()
      const w = world({ users: [owner], logger: log.logger })
      await w.ctx.tokens.create({
        hash: sha256Hex('ssoflow:verification-sends:u'),
        purpose: VERIFICATION_SENDS_PURPOSE,
        payload,
        expiresAt: new Date('2026-03-02T12:00:00.000Z'),
      })
      await finishOk(w, { handle: await start(w), session: session(), identity: X })
      expect(log.warnings).toEqual([{ message: 'ssoflow: unreadable verification-sends record ignored', fields: { userId: 'u' } }])
      expect(w.mailer.sent).toHaveLength(1)
    }
  })

  it('an unreadable verification-sends record with no logger configured: still ignored, the link mailed', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    const w = world({ users: [owner] })
    await w.ctx.tokens.create({
      hash: sha256Hex('ssoflow:verification-sends:u'),
      purpose: VERIFICATION_SENDS_PURPOSE,
      payload: '{not json',
      expiresAt: new Date('2026-03-02T12:00:00.000Z'),
    })
    const out = await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-u', email: 'u@corp.example' }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(w.mailer.sent.map((m) => m.template)).toEqual(['accountVerification'])
  })

  it('a verification-sends record names at most 1,000 providers: one more is unreadable', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    for (const [providers, warned] of [
      [1000, false],
      [1001, true],
    ] as const) {
      const log = warningsOf()
      const w = world({ users: [owner], logger: log.logger })
      const lastByProvider = Object.fromEntries(Array.from({ length: providers }, (_, i) => [`p${i}`, 0]))
      await w.ctx.tokens.create({
        hash: sha256Hex('ssoflow:verification-sends:u'),
        purpose: VERIFICATION_SENDS_PURPOSE,
        payload: JSON.stringify({ windowStart: 0, count: 0, lastByProvider, tokenHash: null }),
        expiresAt: new Date('2026-03-02T12:00:00.000Z'),
      })
      await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-u', email: 'u@corp.example' }) })
      expect(log.warnings.length > 0).toBe(warned)
    }
  })

  it('a second factor passed by a user whose id is LIMITS.id characters long counts', async () => {
    const id = 'u'.repeat(LIMITS.id)
    const w = world({
      users: [makeUser({ id, email: 'long@corp.example', has2fa: true })],
      identities: [makeIdentity({ id: 'ai-long', authProviderId: PROVIDER.id, userId: id, ident: 'ext-long' })],
      members: [makeMember({ id: 'm-long', organizationId: ORG.id, userId: id, flags: { ...NO_FLAGS, ssoLinked: true } })],
    })
    const out = await finishOk(w, {
      handle: await start(w),
      session: session({ twoFactorUserId: id }),
      identity: ident({ id: 'ext-long' }),
    })
    expect(out.kind === 'signedIn' && out.userId).toBe(id)
    const again = await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-long' }) })
    expect(again.kind).toBe('twoFactorRequired')
  })

  it("the engine's copy of the org and provider serves a second login within policy.configCacheMs (one read)", async () => {
    const w = seeded()
    let reads = 0
    const original = w.storage.getOrganizationWithProvider
    if (!original) throw new Error('the memory storage reads an org with its provider')
    const read = original.bind(w.storage)
    ;(w.storage as { getOrganizationWithProvider: unknown }).getOrganizationWithProvider = (id: string) => {
      reads++
      return read(id)
    }
    for (let i = 0; i < 2; i++) {
      expect((await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })).kind).toBe(
        'signedIn',
      )
    }
    expect(reads).toBe(1)
  })
})

// Threat 39 in finishLogin (issue 12 item 4: mutants of src/engine/login.ts lines 471-540; the
// SAML suites that also test it are not among the mutation suites).
describe('an unsolicited pipeline decides as anonymous and only signs in a linked member', () => {
  const bob = makeUser({ id: 'bob', email: 'bob@corp.example' })

  it('a linked member signs in; a second factor or a refusal stays as decided', async () => {
    const w = seeded()
    const out = await finishOk(w, {
      handle: await start(w, { unsolicited: true }),
      session: session(),
      identity: ident({ id: 'ext-alice' }),
    })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    const w2 = world({ users: [{ ...alice, has2fa: true }], identities: [aliceIdentity], members: [aliceMember] })
    const two = await finishOk(w2, {
      handle: await start(w2, { unsolicited: true }),
      session: session(),
      identity: ident({ id: 'ext-alice' }),
    })
    expect(two.kind).toBe('twoFactorRequired')
    // A refusal stays as decided.
    const w3 = world({ users: [{ ...alice, isSuspended: true }], identities: [aliceIdentity], members: [aliceMember] })
    const e = await finishErr(w3, {
      handle: await start(w3, { unsolicited: true }),
      session: session(),
      identity: ident({ id: 'ext-alice' }),
    })
    expect(e.code).toBe('USER_SUSPENDED')
  })

  it('an unknown identity → UNSOLICITED_RESPONSE (not-linked), the pipeline consumed, nothing written; also where policy.newUser creates', async () => {
    for (const policy of [undefined, { newUser: 'create' as const }]) {
      const w = world({ users: [bob], policy })
      const handle = await start(w, { unsolicited: true })
      const before = w.storage.snapshot()
      const e = await finishErr(w, {
        handle,
        session: session({ userId: 'bob' }),
        identity: ident({ id: 'ext-new', email: 'new@corp.example' }),
      })
      expect(e).toMatchObject({ code: 'UNSOLICITED_RESPONSE', redirect: 'orgLogin', details: { reason: 'not-linked' } })
      expectNoWrites(w, before)
      // consumed: it can never finish
      const again = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })
      expect(again.code).toBe('STATE_CONSUMED')
    }
  })

  it("a linked user who is not a member → UNSOLICITED_RESPONSE (not-a-member), the session's invite not read", async () => {
    const invite = makeMember({
      id: 'inv',
      organizationId: ORG.id,
      // to the IdP's address, not the account's: only the session's token could accept it
      email: 'alice.idp@corp.example',
      inviteTokenHash: sha256Hex('invite-token'),
    })
    const w = world({ users: [alice], identities: [aliceIdentity], members: [invite] })
    const handle = await start(w, { unsolicited: true })
    const before = w.storage.snapshot()
    const e = await finishErr(w, {
      handle,
      session: session({ userId: 'alice', invite: { memberId: 'inv', token: 'invite-token', organizationId: ORG.id } }),
      identity: ident({ id: 'ext-alice', email: 'alice.idp@corp.example' }),
    })
    expect(e).toMatchObject({ code: 'UNSOLICITED_RESPONSE', redirect: 'orgLogin', details: { reason: 'not-a-member' } })
    expectNoWrites(w, before)
  })
})

describe('an unsolicited pipeline never accepts an invite', () => {
  it("a linked non-member with an invite to the identity's address → UNSOLICITED_RESPONSE (invite), nothing written", async () => {
    const invite = makeMember({ id: 'inv', organizationId: ORG.id, email: 'alice@corp.example' })
    const w = world({ users: [alice], identities: [aliceIdentity], members: [invite] })
    const handle = await start(w, { unsolicited: true })
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e).toMatchObject({ code: 'UNSOLICITED_RESPONSE', redirect: 'orgLogin', details: { reason: 'invite' } })
    expectNoWrites(w, before)
  })
})

// Threat 62 in finishLogin: the provider row read in the transaction is compared with the one the
// pipeline was checked against, by content (issue 12 item 4: sameProvider and stableJson).
describe('the provider row in the login transaction', () => {
  /** A login warms the engine's copy; `change` then rewrites the stored row behind it. */
  async function afterChange(config: Record<string, unknown>, change: (tx: StorageTx) => Promise<unknown>) {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    await w.storage.transaction((tx) => tx.updateAuthProvider(PROVIDER.id, { config: config as never }))
    await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })
    await w.storage.transaction(change)
    return w.login.finishLogin({ handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })
  }

  it('the same configuration (nulls included) with its keys in another order, at any depth, is the same provider', async () => {
    const r = await afterChange({ z: { y: 1, b: 2 }, c: 3, a: 4, n: null }, (tx) =>
      tx.updateAuthProvider(PROVIDER.id, { config: { a: 4, c: 3, n: null, z: { b: 2, y: 1 } } }),
    )
    expect(r._unsafeUnwrap().kind).toBe('signedIn')
  })

  it('a list turned into an object with the same keys, scimEnabled flipped, or the key or org changed under the same row id → PROVIDER_MISMATCH', async () => {
    const changes: ((tx: StorageTx) => Promise<unknown>)[] = [
      (tx) => tx.updateAuthProvider(PROVIDER.id, { config: { list: { 0: 'a', 1: 'b' } } }),
      (tx) => tx.updateAuthProvider(PROVIDER.id, { scimEnabled: !PROVIDER.scimEnabled }),
      async (tx) => {
        await tx.deleteAuthProvider(PROVIDER.id)
        await tx.createAuthProvider({ ...PROVIDER, config: { list: ['a', 'b'] }, providerKey: 'other' })
      },
      async (tx) => {
        await tx.deleteAuthProvider(PROVIDER.id)
        await tx.deleteAuthProvider(OTHER_PROVIDER.id)
        await tx.createAuthProvider({ ...PROVIDER, config: { list: ['a', 'b'] }, organizationId: 'org2' })
      },
    ]
    for (const change of changes) {
      const r = await afterChange({ list: ['a', 'b'] }, change)
      expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'PROVIDER_MISMATCH', details: { reason: 'provider-changed' } })
    }
  })
})
