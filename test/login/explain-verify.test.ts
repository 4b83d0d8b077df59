// Issue 12 item 4 (src/engine/login.ts: explainLogin, verifyLink, createLoginApi): what explain()
// answers for each kind of decision and each failure, and verifyAccountLink's own guards, called
// on the engine directly (createSso's boundary checks first, so its suites never reach them).
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { finishOk, ident, ORG, PROVIDER, session, start, testProvider, type World, world } from './harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({ id: 'ai-alice', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })

function tokenOf(w: World): string {
  const mail = w.mailer.sent[0]
  if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
  const m = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)
  if (!m?.[1]) throw new Error('no token in url')
  return m[1]
}

/** Counts the engine's reads of the one-time token store. */
function countPeeks(w: World): { n: number } {
  const count = { n: 0 }
  const tokens = w.ctx.tokens
  const peek = tokens.peek.bind(tokens)
  ;(tokens as { peek: typeof peek }).peek = (...args) => {
    count.n++
    return peek(...args)
  }
  return count
}

describe('explain()', () => {
  it('a returning member: signIn:existing, the refresh effect, nothing written', async () => {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const x = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    )._unsafeUnwrap()
    expect(x.decision).toBe('signIn:existing')
    expect(x.effects).toEqual(['identity.update'])
    expect(x.trace.length).toBeGreaterThan(0)
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('an unknown identity under the confirm policy: confirm:<page> (the page named), no mail when no account has the address', async () => {
    const w = world()
    const handle = await start(w)
    const x = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })
    )._unsafeUnwrap()
    expect(x.decision).toBe('confirm:confirm-identity')
    expect(x.effects).toEqual([])
  })

  it('a passwordless account with the address: confirm:confirm-identity and the link mail as an effect, nothing mailed or stored', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const x = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    )._unsafeUnwrap()
    expect(x.decision).toBe('confirm:confirm-identity')
    expect(x.effects).toEqual(['mail.send'])
    expect(w.storage.snapshot()).toEqual(before)
    expect(w.mailer.sent).toEqual([])
  })

  it('a refusal: reject:<code>', async () => {
    const w = world({ users: [{ ...alice, isSuspended: true }], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const x = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    )._unsafeUnwrap()
    expect(x.decision).toBe('reject:USER_SUSPENDED')
    const finished = await w.login.finishLogin({
      handle,
      session: session(),
      identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }),
    })
    expect(x.decision).toBe(`reject:${finished._unsafeUnwrapErr().code}`)
  })

  it('an unsolicited pipeline that would not sign a linked member in: reject:UNSOLICITED_RESPONSE, no effects (threat 39)', async () => {
    const w = world({ policy: { newUser: 'create' } })
    const handle = await start(w, { unsolicited: true })
    const x = (
      await w.login.explain({
        handle,
        session: session(),
        identity: ident({ id: 'ext-new', email: 'new@corp.example', emailVerified: true }),
      })
    )._unsafeUnwrap()
    expect(x).toMatchObject({ decision: 'reject:UNSOLICITED_RESPONSE', effects: [] })
    expect(x.trace.length).toBeGreaterThan(0)
  })

  it('a storage read failing while gathering: STORAGE_UNAVAILABLE back to the organization login', async () => {
    const w = world()
    const handle = await start(w)
    const original = w.storage.getLinkedIdentity.bind(w.storage)
    ;(w.storage as { getLinkedIdentity: typeof original }).getLinkedIdentity = async () => {
      throw new Error('db down')
    }
    const e = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })
    )._unsafeUnwrapErr()
    expect(e.code).toBe('STORAGE_UNAVAILABLE')
    expect(e.redirect).toBe('orgLogin')
    // The storage's own error is the cause (not a later failure on facts never read).
    expect((e.cause as Error).message).toBe('db down')
    ;(w.storage as { getLinkedIdentity: typeof original }).getLinkedIdentity = original
    expect(
      (await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })).isOk(),
    ).toBe(true)
  })

  it("the host's member-limit hook failing: STORAGE_UNAVAILABLE naming the hook", async () => {
    const w = world({
      hooks: {
        isMemberLimitReached: async () => {
          throw new Error('hook down')
        },
      },
    })
    const handle = await start(w)
    const e = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin', details: { hook: 'isMemberLimitReached' } })
  })

  it('a user with a second factor: twoFactor', async () => {
    const w = world({ users: [{ ...alice, has2fa: true }], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const x = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    )._unsafeUnwrap()
    expect(x.decision).toBe('twoFactor')
  })

  it("a provider's updateIdentity that throws while deciding: STORAGE_UNAVAILABLE to the organization login, not a rejected promise", async () => {
    const w = world({
      users: [alice],
      identities: [aliceIdentity],
      members: [aliceMember],
      provider: testProvider('dummy', {
        updateIdentity: () => {
          throw new Error('merge failed')
        },
      }),
    })
    const handle = await start(w)
    const e = (
      await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
  })

  it("finishLogin: a host's urls.afterLogin that throws is STORAGE_UNAVAILABLE to the organization login, not a rejected promise", async () => {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    // ctx.urls may be the harness's shared object: put the function back whatever happens.
    const urls = w.ctx.urls as { afterLogin: unknown }
    const afterLogin = urls.afterLogin
    urls.afterLogin = () => {
      throw new Error('host bug')
    }
    try {
      const handle = await start(w)
      const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
      expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    } finally {
      urls.afterLogin = afterLogin
    }
  })

  it('a bad handle: the error of prepare', async () => {
    const w = world()
    const e = (await w.login.explain({ handle: 'nope', session: session(), identity: ident({ id: 'ext-new' }) }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STATE_INVALID', redirect: 'root' })
  })
})

describe('verifyAccountLink (the engine, without the boundary)', () => {
  it('a valid link: accountVerified with its organization and the token, read once, nothing consumed', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    const token = tokenOf(w)
    const peeks = countPeeks(w)
    const before = w.storage.snapshot()
    const r = await w.login.verifyAccountLink({ token, session: session({ id: 'mail-browser' }) })
    expect(r._unsafeUnwrap()).toEqual({ kind: 'accountVerified', organizationId: ORG.id, token })
    expect(peeks.n).toBe(1)
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('tokens that are not a non-empty string of at most 256 characters are refused without a read', async () => {
    const w = world()
    const peeks = countPeeks(w)
    for (const token of ['', 'x'.repeat(257), 42, null, undefined, ['x']]) {
      const r = await w.login.verifyAccountLink({ token: token as string, session: session() })
      expect(r._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
    }
    expect(peeks.n).toBe(0)
    // 1 and 256 characters are read (and unknown).
    for (const token of ['x', 'x'.repeat(256)]) {
      expect((await w.login.verifyAccountLink({ token, session: session() }))._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
    }
    expect(peeks.n).toBe(2)
  })

  it('the token store failing: STORAGE_UNAVAILABLE to the root (the organization is not known yet)', async () => {
    const w = world()
    const tokens = w.ctx.tokens
    ;(tokens as { peek: typeof tokens.peek }).peek = async () => {
      throw new Error('db down')
    }
    const e = (await w.login.verifyAccountLink({ token: 'x'.repeat(43), session: session() }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'root' })
  })

  it('a record whose payload is not a binding: VERIFICATION_INVALID', async () => {
    const w = world()
    const tokens = w.ctx.tokens
    ;(tokens as { peek: typeof tokens.peek }).peek = async () =>
      ({ payload: '{"userId":1}', expiresAt: new Date('2026-03-01T12:10:00.000Z') }) as unknown as Awaited<ReturnType<typeof tokens.peek>>
    const e = (await w.login.verifyAccountLink({ token: 'x'.repeat(43), session: session() }))._unsafeUnwrapErr()
    expect(e.code).toBe('VERIFICATION_INVALID')
  })
})

describe("the identity the decider sees carries the trust policy's verdict (issue 13)", () => {
  it("emailVerified 'never': a new user's address is stored unverified although the IdP claims it verified", async () => {
    const w = world({
      provider: testProvider('dummy', { trustPolicy: () => ({ name: 'distrust', emailVerified: 'never', inviteMatch: false }) }),
    })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'new@corp.example', emailVerified: true }),
      op: 'newuser',
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true } })
    expect(w.storage.snapshot().userEmails.map((e) => [e.emailNormalized, e.isVerified])).toEqual([['new@corp.example', false]])
  })
  it("emailVerified 'never': a signed-in member's own address from the IdP does not link without asking (it does under the default policy)", async () => {
    for (const distrust of [false, true]) {
      const w = world({
        users: [alice],
        members: [aliceMember],
        ...(distrust
          ? { provider: testProvider('dummy', { trustPolicy: () => ({ name: 'distrust', emailVerified: 'never', inviteMatch: false }) }) }
          : {}),
      })
      const handle = await start(w, { initiatorUserId: null })
      const out = await finishOk(w, {
        handle,
        session: session({ userId: 'alice' }),
        identity: ident({ id: 'ext-alice-2', email: 'alice@corp.example', emailVerified: true }),
      })
      expect(out.kind).toBe(distrust ? 'confirmationRequired' : 'signedIn')
      expect(w.storage.snapshot().identities).toHaveLength(distrust ? 0 : 1)
    }
  })
})

describe('gather reads at most 50 accounts with the address (bounded work per login)', () => {
  it('51 accounts share the address: the memberships of the first 50 only are read', async () => {
    const users = Array.from({ length: 51 }, (_, i) => makeUser({ id: `u${String(i).padStart(2, '0')}`, email: 'shared@corp.example' }))
    const w = world({ users })
    const handle = await start(w)
    const read = new Set<string>()
    const getMember = w.storage.getMember.bind(w.storage)
    ;(w.storage as { getMember: typeof getMember }).getMember = (organizationId, userId) => {
      read.add(userId)
      return getMember(organizationId, userId)
    }
    const x = await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'shared@corp.example' }) })
    expect(x.isOk()).toBe(true)
    expect([...read].sort()).toEqual(users.slice(0, 50).map((u) => u.id))
  })
})
