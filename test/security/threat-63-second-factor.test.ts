// Threat 63 (and invariant 13): a second factor passed by someone else. The session says WHOSE
// factor it passed (`twoFactorUserId`); it counts for that user only. Signing in as anyone else
// with 2FA on is `twoFactorRequired` for that user, and nothing is committed until the resume.
// Shown for the existing-identity, attach (signed in and by emailed link), new-user and invite
// paths, plus a property over random worlds.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { LoginOutcome, SessionInfo } from '../../src/engine/types.js'
import { type Member, NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import {
  dataOf,
  diff,
  expectNoWrites,
  finishErr,
  finishOk,
  ident,
  ORG,
  PROVIDER,
  session,
  sha256Hex,
  start,
  type World,
  world,
} from '../login/harness.js'

const FUTURE = new Date('2026-06-01T00:00:00.000Z')

// A: the attacker, signed in to their own account with their own second factor passed.
const attacker = makeUser({ id: 'a', email: 'a@corp.example', has2fa: true })
const attackerMember = makeMember({ id: 'm-a', organizationId: ORG.id, userId: 'a', flags: { ...NO_FLAGS, ssoLinked: true } })
// B: the victim, with 2FA on; the attacker holds B's IdP session.
const victim = makeUser({ id: 'b', email: 'b@corp.example', has2fa: true, hasUsablePassword: false })
const victimIdentity = makeIdentity({ id: 'ai-b', authProviderId: PROVIDER.id, userId: 'b', ident: 'ext-b' })
const victimMember = makeMember({ id: 'm-b', organizationId: ORG.id, userId: 'b', flags: { ...NO_FLAGS, ssoLinked: true } })

/**
 * The session of `userId` whose second factor `passedBy` passed. It also carries the removed
 * `twoFactorPassed: true` flag, as a host (or a plain-JS caller) that has not migrated yet would
 * send it: that flag must count for nobody.
 */
function passed(passedBy: string, partial: Partial<SessionInfo> = {}): SessionInfo {
  const legacy = { twoFactorPassed: true } as Partial<SessionInfo>
  return session({ ...legacy, twoFactorUserId: passedBy, ...partial })
}

function expectTwoFactorFor(out: LoginOutcome, userId: string, handle: string): void {
  expect(out).toMatchObject({
    kind: 'twoFactorRequired',
    userId,
    resumeHandle: handle,
    session: [{ type: 'pendingTwoFactor', userId, organizationId: ORG.id, resumeHandle: handle }],
  })
}

describe('threat 63: a second factor counts only for the user who passed it', () => {
  it('existing identity: A (2FA passed) finishing with B’s identity gets twoFactorRequired for B, nothing written; B’s own factor resumes it', async () => {
    const w = world({ users: [attacker, victim], identities: [victimIdentity], members: [attackerMember, victimMember] })
    const handle = await start(w, { initiatorUserId: 'a' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: passed('a', { userId: 'a' }),
      identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
    })
    expectTwoFactorFor(out, 'b', handle)
    expectNoWrites(w, before)
    // The same pipeline, resumed after B's second factor passed: signed in as B.
    const done = await finishOk(w, { handle, session: passed('b', { userId: 'a' }) })
    expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', memberId: 'm-b' })
  })

  it('a plain-JS caller still sending the removed twoFactorPassed flag gets no pass for anyone (and a warning)', async () => {
    const warnings: string[] = []
    const w = world({ users: [victim], identities: [victimIdentity], members: [victimMember], logger: { warn: (m) => warnings.push(m) } })
    const handle = await start(w)
    const before = w.storage.snapshot()
    for (const legacy of [{ twoFactorPassed: true }, { twoFactorUserId: true }, { twoFactorUserId: 1 }, { twoFactorUserId: ['b'] }]) {
      const out = await finishOk(w, {
        handle,
        session: session(legacy as unknown as Partial<SessionInfo>),
        identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
      })
      expectTwoFactorFor(out, 'b', handle)
    }
    expectNoWrites(w, before)
    expect(warnings.filter((m) => m.includes('twoFactorPassed is no longer read'))).toHaveLength(1)
  })

  it('attach by the signed-in user: a factor passed by another user does not count for the session user', async () => {
    const w = world({ users: [attacker], members: [attackerMember] })
    const handle = await start(w, { initiatorUserId: 'a' })
    const before = w.storage.snapshot()
    const X = ident({ id: 'ext-a', email: 'a@corp.example' })
    const out = await finishOk(w, { handle, session: passed('someone-else', { userId: 'a' }), identity: X, op: 'confirm' })
    expectTwoFactorFor(out, 'a', handle)
    expectNoWrites(w, before)
    const done = await finishOk(w, { handle, session: passed('a', { userId: 'a' }), op: 'confirm' })
    expect(done).toMatchObject({ kind: 'signedIn', userId: 'a', linked: true, created: { identity: true } })
  })

  it('attach by the emailed link (V): a stale factor of A in the session does not let the link sign in as B; the token is kept for the resume', async () => {
    const w = world({ users: [victim], members: [victimMember] })
    const X = ident({ id: 'ext-new', email: 'b@corp.example' })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: X })
    const mail = w.mailer.sent[0]
    if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
    const token = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] ?? ''
    w.mailer.clear()
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: passed('a', { verificationToken: token }) })
    expectTwoFactorFor(out, 'b', handle)
    expectNoWrites(w, before)
    expect(w.storage.snapshot().oneTimeTokens).toEqual(before.oneTimeTokens)
    const done = await finishOk(w, { handle, session: passed('b', { verificationToken: token }) })
    expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', linked: true })
  })

  it('new user: A’s factor is neither needed nor carried over; B’s address is never signed in as B', async () => {
    const w = world({ users: [attacker, victim], members: [attackerMember, victimMember] })
    // op=newuser with the victim's address: IDENTITY_CONFLICT, nothing created (not a sign-in as B).
    const h1 = await start(w, { initiatorUserId: 'a' })
    const before = w.storage.snapshot()
    const conflict = await finishErr(w, {
      handle: h1,
      session: passed('a', { userId: 'a' }),
      identity: ident({ id: 'ext-x', email: 'b@corp.example' }),
      op: 'newuser',
    })
    expect(conflict.code).toBe('IDENTITY_CONFLICT')
    expectNoWrites(w, before)
    // op=newuser with a fresh address: a new account, which has no second factor to ask for.
    const h2 = await start(w, { initiatorUserId: 'a' })
    const out = await finishOk(w, {
      handle: h2,
      session: passed('a', { userId: 'a' }),
      identity: ident({ id: 'ext-fresh', email: 'fresh@corp.example' }),
      op: 'newuser',
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
    if (out.kind !== 'signedIn') return
    expect(['a', 'b']).not.toContain(out.userId)
    const created = w.storage.snapshot().users.find((u) => u.id === out.userId)
    expect(created?.has2fa).toBe(false)
  })

  it('invite: B’s login with A’s factor does not accept the invite the session carries until B’s own factor passed', async () => {
    const inviteRow: Member = makeMember({
      id: 'inv',
      organizationId: ORG.id,
      email: 'b@corp.example',
      inviteTokenHash: await sha256Hex('invite-token'),
      inviteExpiresAt: FUTURE,
    })
    const w = world({ users: [attacker, victim], identities: [victimIdentity], members: [attackerMember, inviteRow] })
    const invite = { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }
    const handle = await start(w, { initiatorUserId: 'a' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: passed('a', { userId: 'a', invite }),
      identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
    })
    expectTwoFactorFor(out, 'b', handle)
    expectNoWrites(w, before)
    expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(inviteRow)
    const done = await finishOk(w, { handle, session: passed('b', { userId: 'a', invite }) })
    expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', memberId: 'inv', acceptedInviteId: 'inv' })
    const d = diff(before, w.storage.snapshot())
    expect(d.members?.changed.map((c) => (c.after as Member).userId)).toEqual(['b'])
  })
})

describe('threat 63, property: whoever signs in with 2FA on is the user whose factor the session passed', () => {
  const userArb = (id: string) =>
    fc
      .record({ has2fa: fc.boolean(), member: fc.boolean(), linked: fc.boolean(), hasUsablePassword: fc.boolean() })
      .map((r) => ({ id, ...r }))

  it('signedIn as U with has2fa implies session.twoFactorUserId === U; twoFactorRequired writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(userArb('a'), userArb('b')),
        fc.option(fc.constantFrom('a', 'b'), { nil: null }),
        fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
        fc.constantFrom('ext-a', 'ext-b', 'ext-new'),
        fc.constantFrom('a@corp.example', 'b@corp.example', 'new@corp.example'),
        fc.constantFrom(null, 'confirm' as const, 'newuser' as const),
        fc.boolean(),
        async (users, sessionUser, factorOf, identId, email, op, legacyFlag) => {
          const w: World = world({
            users: users.map((u) =>
              makeUser({ id: u.id, email: `${u.id}@corp.example`, has2fa: u.has2fa, hasUsablePassword: u.hasUsablePassword }),
            ),
            identities: users
              .filter((u) => u.linked)
              .map((u) => makeIdentity({ id: `ai-${u.id}`, authProviderId: PROVIDER.id, userId: u.id, ident: `ext-${u.id}` })),
            members: users
              .filter((u) => u.member)
              .map((u) => makeMember({ id: `m-${u.id}`, organizationId: ORG.id, userId: u.id, flags: { ...NO_FLAGS, ssoLinked: true } })),
          })
          const handle = await start(w, { initiatorUserId: sessionUser })
          const before = w.storage.snapshot()
          const extra = legacyFlag ? ({ twoFactorPassed: true } as Partial<SessionInfo>) : {}
          const r = await w.login.finishLogin({
            handle,
            session: session({ ...extra, userId: sessionUser, twoFactorUserId: factorOf }),
            identity: ident({ id: identId, email, emailVerified: true }),
            op,
          })
          if (r.isErr()) return
          const after = w.storage.snapshot()
          if (r.value.kind === 'signedIn') {
            const u = after.users.find((x) => x.id === (r.value.kind === 'signedIn' ? r.value.userId : ''))
            if (u?.has2fa) expect(factorOf).toBe(u.id)
          }
          if (r.value.kind === 'twoFactorRequired') {
            expect(r.value.userId).not.toBe(factorOf)
            expect(dataOf(after)).toEqual(dataOf(before))
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})
