// Spec 3.12 + threats 18-21, 27, 28: the emailed one-time account-verification link.
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, finishOk, ident, ORG, PROVIDER, session, sha256Hex, start, type World, world } from './harness.js'

// A passwordless account (created by an earlier IdP) whose primary address is the IdP's.
const owner = makeUser({ id: 'u', email: 'U@Corp.example', name: 'Owner', hasUsablePassword: false })
const X = ident({ id: 'ext-new', email: 'u@corp.example' })

function tokenOf(w: World, index = 0): string {
  const mail = w.mailer.sent[index]
  if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
  const m = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)
  if (!m?.[1]) throw new Error('no token in url')
  return m[1]
}

describe('account verification link (spec 3.12)', () => {
  it('mails a link to the account address, stores only the hash, bound to user/email/org/provider/ident/pipeline', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: X })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(w.mailer.sent).toHaveLength(1)
    const mail = w.mailer.sent[0]
    expect(mail).toMatchObject({
      template: 'accountVerification',
      to: 'U@Corp.example',
      data: { userName: 'Owner', organizationName: ORG.name, providerName: 'IdP dummy', expiresAt: '2026-03-01T12:10:00.000Z' },
    })
    const token = tokenOf(w)
    expect(token.length).toBeGreaterThanOrEqual(43)
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d)).toEqual(['oneTimeTokens'])
    // The link, and the record of the mails this user got (threat 28): nothing else.
    const added = (d.oneTimeTokens?.added ?? []) as { hash: string; purpose: string; payload: string; expiresAt: Date }[]
    expect(added.map((t) => t.purpose).sort()).toEqual(['account-verification', 'account-verification-sends'])
    const row = added.find((t) => t.purpose === 'account-verification') as (typeof added)[number]
    expect(row.hash).toBe(await sha256Hex(token))
    expect(row.purpose).toBe('account-verification')
    expect(row.expiresAt).toEqual(new Date('2026-03-01T12:10:00.000Z'))
    const pipelineId = handle.split('.')[0]
    expect(JSON.parse(row.payload)).toEqual({
      userId: 'u',
      email: 'U@Corp.example',
      organizationId: ORG.id,
      authProviderId: PROVIDER.id,
      ident: 'ext-new',
      pipelineId,
    })
    // the raw token is stored nowhere (threat 20)
    expect(JSON.stringify(w.storage.snapshot())).not.toContain(token)
  })

  it('at most one mail per pipeline per 10 minutes however often the page renders (threat 28)', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    for (let i = 0; i < 5; i++) {
      w.clock.advance(60_000)
      const out = await finishOk(w, { handle, session: session() })
      expect(out.kind === 'confirmationRequired' && out.confirmation).toMatchObject({ page: 'confirm-identity' })
    }
    expect(w.mailer.sent).toHaveLength(1)
    expect(w.storage.snapshot().oneTimeTokens.filter((t) => t.purpose === 'account-verification')).toHaveLength(1)
    w.clock.advance(5 * 60_000)
    await finishOk(w, { handle, session: session() })
    expect(w.mailer.sent).toHaveLength(2)
  })

  it('the verified link links the identity (V), creates the membership, and is single use (N11)', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = tokenOf(w)
    const verified = await w.login.verifyAccountLink({ token, session: session({ id: 'mail-browser' }) })
    expect(verified._unsafeUnwrap()).toEqual({ kind: 'accountVerified', organizationId: ORG.id, token })
    w.mailer.clear()
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out).toMatchObject({ userId: 'u', linked: true, created: { user: false, identity: true, member: true } })
    expect(out.session).toContainEqual({ type: 'clearVerification' })
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities', 'members', 'oneTimeTokens'])
    expect(d.oneTimeTokens?.removed).toHaveLength(1)
    expect(d.identities?.added).toEqual([expect.objectContaining({ userId: 'u', ident: 'ext-new' })])
    expect(w.mailer.sent).toEqual([])
    expect((await w.login.verifyAccountLink({ token, session: session() }))._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
  })

  it('a token bound to another pipeline or identity is not V and is not consumed (threat 18, 21)', async () => {
    const w = world({ users: [owner] })
    const h1 = await start(w)
    await finishOk(w, { handle: h1, session: session(), identity: X })
    const token = tokenOf(w)
    // another pipeline (same session, same identity) cannot use it
    const h2 = await start(w)
    const out = await finishOk(w, { handle: h2, session: session({ verificationToken: token }), identity: X })
    expect(out.kind).toBe('confirmationRequired')
    expect(out.trace.map((t) => t.rule)).toContain('unknown.verification-ignored')
    // another external id in a new pipeline cannot use it either
    const h3 = await start(w)
    const out3 = await finishOk(w, {
      handle: h3,
      session: session({ verificationToken: token }),
      identity: ident({ id: 'ext-attacker', email: 'u@corp.example' }),
    })
    expect(out3.kind).toBe('confirmationRequired')
    expect(w.storage.snapshot().identities).toEqual([])
    expect(w.storage.snapshot().oneTimeTokens.some((t) => t.purpose === 'account-verification')).toBe(true)
  })

  it('an expired link is not V; verifyAccountLink rejects it', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = tokenOf(w)
    w.clock.advance(601_000)
    expect((await w.login.verifyAccountLink({ token, session: session() }))._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
    const out = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    expect(out.kind).toBe('confirmationRequired')
    expect(w.storage.snapshot().identities).toEqual([])
  })

  it('a pipeline handle is not a verification token (threat 27)', async () => {
    const w = world({ users: [owner] })
    const handle = await start(w)
    expect((await w.login.verifyAccountLink({ token: handle, session: session() }))._unsafeUnwrapErr().code).toBe('VERIFICATION_INVALID')
  })

  it('V with 2FA: twoFactorRequired, nothing written and the token is kept for the resume', async () => {
    const w = world({
      users: [{ ...owner, has2fa: true }],
      members: [makeMember({ id: 'm-u', organizationId: ORG.id, userId: 'u', flags: NO_FLAGS })],
    })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = tokenOf(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ verificationToken: token }) })
    expect(out.kind).toBe('twoFactorRequired')
    expect(w.storage.snapshot().identities).toEqual(before.identities)
    expect(w.storage.snapshot().oneTimeTokens).toEqual(before.oneTimeTokens)
    const done = await finishOk(w, { handle, session: session({ verificationToken: token, twoFactorUserId: 'u' }) })
    expect(done.kind === 'signedIn' && done.userId).toBe('u')
    expect(w.storage.snapshot().members[0]?.flags.ssoLinked).toBe(true)
  })

  it("threat 13: a verified link never re-keys the user's existing identity for this provider", async () => {
    const old = makeIdentity({ id: 'ai-old', authProviderId: PROVIDER.id, userId: 'u', ident: 'ext-old' })
    // the existing identity is linked, so logging in with ext-old would be an existing login;
    // here the IdP presents a NEW subject for the same email.
    const w = world({ users: [owner], identities: [old] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const token = tokenOf(w)
    const before = w.storage.snapshot()
    const r = await w.login.finishLogin({ handle, session: session({ verificationToken: token }) })
    expect(r._unsafeUnwrapErr().code).toBe('IDENTITY_CONFLICT')
    const after = w.storage.snapshot()
    expect(after.identities).toEqual(before.identities)
    expect(after.oneTimeTokens).toEqual(before.oneTimeTokens)
  })
})
