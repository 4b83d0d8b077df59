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
