// finishLogin's boundary: state checks (threats 16, 17, 30-32), identity validation (threat 55),
// stored identity on follow-ups, redirects (threat 37), explain(), after-commit failures.
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
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
