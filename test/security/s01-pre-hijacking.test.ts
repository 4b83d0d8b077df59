// Section 1 of the threat catalog: account pre-hijacking (entries 1-5).
//
// A claim is the moment an anonymous pipeline proves ownership of an EXISTING account: by the
// emailed one-time link (the mailbox) or by signing in to the account during the pipeline (the
// host's login is the re-authentication). Threat 2: whoever held a session on the account before
// the claim must lose it (a session effect the host applies). Threat 3: identities of other
// providers already on the account (a trojan identifier the squatter linked) are reported, and a
// policy removes them in the claim's transaction.
import { describe, expect, it } from 'vitest'
import type { LoginOutcome, SessionEffect } from '../../src/engine/types.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import {
  diff,
  finishOk,
  ident,
  ORG,
  OTHER_PROVIDER,
  PROVIDER,
  session,
  start,
  type World,
  type WorldOptions,
  world,
} from '../login/harness.js'

// A passwordless account (the kind a squatter makes through some IdP) whose address is verified.
const owner = makeUser({ id: 'u', email: 'u@corp.example', name: 'Owner', hasUsablePassword: false })
// The same account with a password: the victim knows it (re-authentication path).
const withPassword = makeUser({ id: 'u', email: 'u@corp.example', name: 'Owner' })
const X = ident({ id: 'ext-new', email: 'u@corp.example' })
// A trojan identifier: the account is already linked through another org's provider.
const trojan = makeIdentity({
  id: 'ai-trojan',
  authProviderId: OTHER_PROVIDER.id,
  userId: 'u',
  ident: 'attacker-subject',
  createdAt: new Date('2026-02-01T00:00:00.000Z'),
})

function linkToken(w: World): string {
  const mail = w.mailer.sent.find((m) => m.template === 'accountVerification')
  if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
  const m = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)
  if (!m?.[1]) throw new Error('no token in url')
  return m[1]
}

/** Anonymous visitor: confirmation page, then the emailed link, then the claim. */
async function claimByLink(w: World): Promise<LoginOutcome> {
  const handle = await start(w)
  const page = await finishOk(w, { handle, session: session(), identity: X })
  expect(page.kind).toBe('confirmationRequired')
  const token = linkToken(w)
  expect((await w.login.verifyAccountLink({ token, session: session({ id: 'mail-browser' }) })).isOk()).toBe(true)
  return finishOk(w, { handle, session: session({ verificationToken: token }) })
}

/** Anonymous visitor: confirmation page, then signs in to the account (host login), then confirms. */
async function claimBySignIn(w: World): Promise<LoginOutcome> {
  const handle = await start(w)
  const page = await finishOk(w, { handle, session: session(), identity: X })
  expect(page.kind).toBe('confirmationRequired')
  return finishOk(w, { handle, session: session({ userId: 'u' }), op: 'confirm' })
}

const revokes = (effects: readonly SessionEffect[]) => effects.filter((e) => e.type === 'revokeOtherSessions')

describe('threat 2: other sessions do not survive a claim of the account', () => {
  it('threat 2: a claim by the emailed link revokes the account’s other sessions (and rotates this one)', async () => {
    const w = world({ users: [owner] })
    const out = await claimByLink(w)
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.userId).toBe('u')
    expect(revokes(out.session)).toEqual([{ type: 'revokeOtherSessions', userId: 'u', reason: 'accountClaimed' }])
    expect(out.session).toContainEqual({ type: 'rotate' })
    expect(out.claim).toMatchObject({ proof: 'emailLink' })
    // audited with the proof
    const claims = w.storage.snapshot().audit.filter((a) => a.event === 'sso-identity.claim')
    expect(claims).toEqual([expect.objectContaining({ actorUserId: 'u', targetUserId: 'u', organizationId: ORG.id })])
    expect(claims[0]?.data).toMatchObject({ proof: 'emailLink' })
  })

  it('threat 2: a claim by signing in during an anonymous pipeline (re-authentication) revokes them too', async () => {
    const w = world({ users: [withPassword] })
    const out = await claimBySignIn(w)
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(revokes(out.session)).toEqual([{ type: 'revokeOtherSessions', userId: 'u', reason: 'accountClaimed' }])
    expect(out.claim).toMatchObject({ proof: 'signIn' })
  })

  it('threat 2: a second factor pending defers everything; the resumed claim revokes', async () => {
    const w = world({ users: [{ ...owner, has2fa: true }] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = linkToken(w)
    const pending = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    expect(pending.kind).toBe('twoFactorRequired')
    expect(revokes(pending.session)).toEqual([])
    const out = await finishOk(w, { handle, session: session({ verificationToken: token, twoFactorUserId: 'u' }) })
    expect(out.kind === 'signedIn' && revokes(out.session)).toEqual([
      { type: 'revokeOtherSessions', userId: 'u', reason: 'accountClaimed' },
    ])
  })

  const noClaim: { name: string; world: WorldOptions; run(w: World): Promise<LoginOutcome> }[] = [
    {
      name: 'a returning login through a linked identity',
      world: {
        users: [withPassword],
        identities: [makeIdentity({ id: 'ai-u', authProviderId: PROVIDER.id, userId: 'u', ident: 'ext-new' })],
        members: [makeMember({ id: 'm-u', organizationId: ORG.id, userId: 'u', flags: { ...NO_FLAGS, ssoLinked: true } })],
      },
      run: async (w) => finishOk(w, { handle: await start(w), session: session(), identity: X }),
    },
    {
      name: 'a new account',
      world: {},
      run: async (w) => finishOk(w, { handle: await start(w), session: session(), identity: X, op: 'newuser' }),
    },
    {
      name: 'a link by a user signed in when the pipeline began',
      world: { users: [withPassword] },
      run: async (w) =>
        finishOk(w, { handle: await start(w, { initiatorUserId: 'u' }), session: session({ userId: 'u' }), identity: X, op: 'confirm' }),
    },
  ]
  for (const c of noClaim) {
    it(`threat 2: no spurious logout on ${c.name}`, async () => {
      const w = world(c.world)
      const out = await c.run(w)
      if (out.kind !== 'signedIn') throw new Error(out.kind)
      expect(revokes(out.session)).toEqual([])
      expect(out.claim).toBeNull()
      expect(w.storage.snapshot().audit.filter((a) => a.event === 'sso-identity.claim')).toEqual([])
    })
  }
})

describe('threat 3: identities left on a claimed account', () => {
  it('threat 3: a claim by the emailed link reports the other providers’ identities on the account, and the audit lists them', async () => {
    const w = world({ users: [owner], identities: [trojan] })
    const out = await claimByLink(w)
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.claim).toEqual({
      proof: 'emailLink',
      identitiesKept: [
        { id: 'ai-trojan', authProviderId: OTHER_PROVIDER.id, ident: 'attacker-subject', createdAt: '2026-02-01T00:00:00.000Z' },
      ],
      identitiesRemoved: [],
    })
    // kept (the default policy), never silently: the claim audit names it
    expect(w.storage.snapshot().identities.map((i) => i.id)).toContain('ai-trojan')
    const claim = w.storage.snapshot().audit.find((a) => a.event === 'sso-identity.claim')
    expect(claim?.data).toEqual({ proof: 'emailLink', identitiesKept: ['ai-trojan'], identitiesRemoved: [] })
  })

  it('threat 3: the same on a claim by signing in', async () => {
    const w = world({ users: [withPassword], identities: [trojan] })
    const out = await claimBySignIn(w)
    expect(out.kind === 'signedIn' && out.claim?.identitiesKept.map((i) => i.id)).toEqual(['ai-trojan'])
  })

  it('threat 3: policy identitiesOnClaim "remove" deletes them in the claim’s transaction; nothing else changes', async () => {
    const bystander = makeUser({ id: 'b', email: 'b@corp.example' })
    const bystanderIdentity = makeIdentity({ id: 'ai-b', authProviderId: OTHER_PROVIDER.id, userId: 'b', ident: 'b-subject' })
    const w = world({ users: [owner, bystander], identities: [trojan, bystanderIdentity], policy: { identitiesOnClaim: 'remove' } })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = linkToken(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.claim).toEqual({
      proof: 'emailLink',
      identitiesKept: [],
      identitiesRemoved: [
        { id: 'ai-trojan', authProviderId: OTHER_PROVIDER.id, ident: 'attacker-subject', createdAt: '2026-02-01T00:00:00.000Z' },
      ],
    })
    const d = diff(before, w.storage.snapshot())
    expect(d.identities?.removed).toEqual([trojan])
    expect(d.identities?.added).toEqual([expect.objectContaining({ userId: 'u', authProviderId: PROVIDER.id, ident: 'ext-new' })])
    expect(d.identities?.changed).toEqual([])
    expect(w.storage.snapshot().identities.find((i) => i.id === 'ai-b')).toEqual(bystanderIdentity)
    expect(d.users).toBeUndefined()
    const claim = w.storage.snapshot().audit.find((a) => a.event === 'sso-identity.claim')
    expect(claim?.data).toEqual({ proof: 'emailLink', identitiesKept: [], identitiesRemoved: ['ai-trojan'] })
  })

  it('threat 3: a link by a user signed in from the start reports nothing and removes nothing', async () => {
    const w = world({ users: [withPassword], identities: [trojan], policy: { identitiesOnClaim: 'remove' } })
    const out = await finishOk(w, {
      handle: await start(w, { initiatorUserId: 'u' }),
      session: session({ userId: 'u' }),
      identity: X,
      op: 'confirm',
    })
    expect(out.kind === 'signedIn' && out.claim).toBeNull()
    expect(w.storage.snapshot().identities.map((i) => i.id)).toContain('ai-trojan')
  })
})

describe('threat 1: classic-federated merge', () => {
  it('threat 1: an account whose address was never verified is never a link target by email: every op, both claims, no proof mail', async () => {
    // the squatter registered the victim's address with a password, never verifying it
    for (const hasUsablePassword of [true, false]) {
      const squat = makeUser({ id: 'sq', email: 'sq-primary@corp.example', hasUsablePassword })
      const seedEmail = { userId: 'sq', email: 'u@corp.example', emailNormalized: 'u@corp.example', isVerified: false, isPrimary: false }
      for (const emailVerified of [false, true]) {
        for (const op of [undefined, 'confirm', 'newuser'] as const) {
          const w = world({ users: [squat], userEmails: [seedEmail] })
          const handle = await start(w)
          const r = await w.login.finishLogin({
            handle,
            session: session(),
            identity: ident({ id: 'ext-v', email: 'u@corp.example', emailVerified }),
            op,
          })
          const label = JSON.stringify({ hasUsablePassword, emailVerified, op })
          expect(
            w.storage.snapshot().identities.filter((i) => i.userId === 'sq'),
            label,
          ).toEqual([])
          expect(
            w.mailer.sent.filter((m) => m.template === 'accountVerification'),
            label,
          ).toEqual([])
          if (r.isOk() && r.value.kind === 'signedIn') expect(r.value.userId, label).not.toBe('sq')
          expect(
            w.storage.snapshot().users.find((u) => u.id === 'sq'),
            label,
          ).toEqual(squat)
        }
      }
    }
  })
})

/**
 * The host changes a user's primary address (memory storage has no port for it: user rows are the
 * host's). Reads outside and inside transactions see the new address; the old one stays a
 * verified secondary address, so the account is still what the old address resolves to.
 */
function hostChangesEmail(w: World, userId: string, email: string): void {
  type Reads = Record<string, (...args: unknown[]) => Promise<unknown>>
  const patch = <T extends object>(target: T): T => {
    const reads = target as unknown as Reads
    const getUser = reads.getUser?.bind(target)
    const find = reads.findUsersByEmail?.bind(target)
    if (!getUser || !find) throw new Error('storage shape changed')
    const moved = (u: unknown) => (u !== null && (u as { id: string }).id === userId ? { ...(u as object), email } : u)
    return new Proxy(target, {
      get(t, prop, receiver) {
        if (prop === 'getUser') return async (...args: unknown[]) => moved(await getUser(...args))
        if (prop === 'findUsersByEmail')
          return async (...args: unknown[]) => ((await find(...args)) as { user: unknown }[]).map((m) => ({ ...m, user: moved(m.user) }))
        const v: unknown = Reflect.get(t, prop, receiver)
        return typeof v === 'function' ? v.bind(t) : v
      },
    })
  }
  const storage = w.storage as unknown as Reads & { transaction: (fn: (tx: object) => Promise<unknown>) => Promise<unknown> }
  const transaction = storage.transaction.bind(w.storage)
  const reads = patch(w.storage) as unknown as Reads
  storage.getUser = reads.getUser as never
  storage.findUsersByEmail = reads.findUsersByEmail as never
  storage.transaction = (fn) => transaction((tx) => fn(patch(tx)))
}

describe('threat 4: unexpired email change, stale proof, IdP-driven email change', () => {
  it('threat 4: logins with a changing asserted address never rewrite the user row or its addresses', async () => {
    const linked = makeIdentity({ id: 'ai-u', authProviderId: PROVIDER.id, userId: 'u', ident: 'ext-u' })
    const member = makeMember({ id: 'm-u', organizationId: ORG.id, userId: 'u', flags: { ...NO_FLAGS, ssoLinked: true } })
    const w = world({ users: [withPassword], identities: [linked], members: [member] })
    const before = w.storage.snapshot()
    for (const email of ['victim@corp.example', 'U@CORP.EXAMPLE', 'attacker@evil.example']) {
      const out = await finishOk(w, {
        handle: await start(w),
        session: session(),
        identity: ident({ id: 'ext-u', email, emailVerified: true, name: 'Renamed' }),
      })
      expect(out.kind === 'signedIn' && out.userId).toBe('u')
      expect(w.storage.snapshot().users).toEqual(before.users)
      expect(w.storage.snapshot().userEmails).toEqual(before.userEmails)
    }
  })

  it('threat 4: a link mailed before the account’s address changed is not a proof any more', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = linkToken(w)
    hostChangesEmail(w, 'u', 'secured@corp.example')
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    expect(out.kind).not.toBe('signedIn')
    expect(w.storage.snapshot().identities).toEqual(before.identities)
    expect(w.storage.snapshot().members).toEqual(before.members)
  })
})

describe('threat 5: a non-verifying IdP creates a squatted account', () => {
  it('threat 5: a new account never has its address marked verified from the claim, and is then never a link target by email', async () => {
    const w = world()
    const made = await finishOk(w, {
      handle: await start(w, { sessionId: 'attacker' }),
      session: session({ id: 'attacker' }),
      identity: ident({ id: 'ext-att', email: 'v@corp.example', emailVerified: true }),
      op: 'newuser',
    })
    if (made.kind !== 'signedIn') throw new Error(made.kind)
    const squatter = made.userId
    expect(
      w.storage
        .snapshot()
        .userEmails.filter((e) => e.userId === squatter)
        .map((e) => e.isVerified),
    ).toEqual([false])
    // the victim arrives through the org's IdP with the same address
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle: await start(w, { sessionId: 'victim' }),
      session: session({ id: 'victim' }),
      identity: ident({ id: 'ext-victim', email: 'v@corp.example', emailVerified: true }),
    })
    expect(out.kind).toBe('confirmationRequired')
    expect(w.mailer.sent.filter((m) => m.template === 'accountVerification')).toEqual([])
    expect(w.storage.snapshot().identities).toEqual(before.identities)
  })
})
