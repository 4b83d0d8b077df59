// Spec 3.2-3.3: existing identity (legacy id, refresh, membership, inactive owner, suspended, 2FA).
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, expectNoWrites, finishErr, finishOk, ident, ORG, PROVIDER, session, start, testProvider, world } from './harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({
  id: 'ai-alice',
  authProviderId: PROVIDER.id,
  userId: 'alice',
  ident: 'ext-alice',
  data: { access_token: 'old', refresh_token: 'r1' },
})
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })

describe('existing identity (spec 3.3)', () => {
  it('a refresh and a membership fix in one login: both are written (the lock-free guarded refresh takes a plan that writes the identity alone)', async () => {
    const stale = makeMember({
      id: 'm-alice',
      organizationId: ORG.id,
      userId: 'alice',
      flags: { ...NO_FLAGS, ssoLinked: false, ssoInvalid: true },
    })
    const w = world({ users: [alice], identities: [aliceIdentity], members: [stale] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-alice', email: 'alice@corp.example', data: { access_token: 'new' } }),
    })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice', memberId: 'm-alice' })
    const after = w.storage.snapshot()
    expect(after.members.find((m) => m.id === 'm-alice')?.flags).toMatchObject({ ssoLinked: true, ssoInvalid: false })
    expect(after.identities.find((i) => i.id === 'ai-alice')?.data).toEqual({ access_token: 'new', refresh_token: 'r1' })
  })

  it('signs in, refreshes data keeping the refresh token, and writes nothing else', async () => {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w, { next: '/projects/1' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-alice', email: 'alice@corp.example', data: { access_token: 'new' } }),
    })
    expect(out.kind).toBe('signedIn')
    if (out.kind !== 'signedIn') return
    expect(out.userId).toBe('alice')
    expect(out.memberId).toBe('m-alice')
    expect(out.redirect).toBe('/projects/1')
    expect(out.created).toEqual({ user: false, identity: false, member: false })
    expect(out.linked).toBe(false)
    expect(out.session).toEqual([
      { type: 'login', userId: 'alice' },
      { type: 'rotate' },
      { type: 'markSsoComplete', organizationId: ORG.id, at: '2026-03-01T12:00:00.000Z' },
      { type: 'activeOrg', organizationId: ORG.id, slug: ORG.slug },
      { type: 'clearInvite' },
      { type: 'clearPipeline' },
    ])
    const now = new Date('2026-03-01T12:00:00.000Z')
    expect(diff(before, w.storage.snapshot())).toEqual({
      identities: {
        added: [],
        removed: [],
        changed: [
          {
            before: aliceIdentity,
            after: { ...aliceIdentity, data: { access_token: 'new', refresh_token: 'r1' }, lastVerified: now, lastSynced: now },
          },
        ],
      },
    })
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
    // the user row never changes from claims (threat 4)
    expect(w.storage.snapshot().users).toEqual(before.users)
  })

  it('uses the provider updateIdentity when it has one', async () => {
    const w = world({
      users: [alice],
      identities: [aliceIdentity],
      members: [aliceMember],
      provider: testProvider('dummy', { updateIdentity: (next) => ({ merged: true, ...next }) }),
    })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', data: { a: 1 } }) })
    expect(w.storage.snapshot().identities[0]?.data).toEqual({ merged: true, a: 1 })
  })

  it('finds the identity by its legacy id and rewrites the ident', async () => {
    const legacy = { ...aliceIdentity, ident: 'alice@corp.example' }
    const w = world({ users: [alice], identities: [legacy], members: [aliceMember] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: { id: 'sub-123', legacyId: 'alice@corp.example' } }),
    })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    const rows = w.storage.snapshot().identities
    expect(rows).toHaveLength(1)
    expect(rows[0]?.ident).toBe('sub-123')
    expect(rows[0]?.userId).toBe('alice')
  })

  it('an identity found by its current id is kept when the legacy id names no row (no legacy lookup)', async () => {
    const w = world({ users: [alice], identities: [{ ...aliceIdentity, ident: 'sub-123' }], members: [aliceMember] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: { id: 'sub-123', legacyId: 'alice@corp.example' } }),
    })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    expect(out.trace.map((t) => t.rule)).toContain('login.existing-identity')
    expect(w.storage.snapshot().users).toEqual([alice])
  })

  it('a missing membership is re-created (member.add audit) for a returning user', async () => {
    const w = world({ users: [alice], identities: [aliceIdentity] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.created.member).toBe(true)
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities', 'members'])
    expect(d.members?.added).toEqual([
      expect.objectContaining({ organizationId: ORG.id, userId: 'alice', role: 'member', flags: { ...NO_FLAGS, ssoLinked: true } }),
    ])
    expect(d.audit?.added).toEqual([
      expect.objectContaining({ event: 'member.add', actorUserId: 'alice', targetUserId: 'alice', ip: '203.0.113.7' }),
    ])
  })

  it('link fix-up: ssoLinked on, ssoInvalid off, SCIM flags kept', async () => {
    const m = { ...aliceMember, flags: { ...NO_FLAGS, ssoInvalid: true, idpProvisioned: true, idpRoleRestricted: true } }
    const w = world({ users: [alice], identities: [aliceIdentity], members: [m] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(w.storage.snapshot().members[0]?.flags).toEqual({
      ...NO_FLAGS,
      ssoLinked: true,
      ssoInvalid: false,
      idpProvisioned: true,
      idpRoleRestricted: true,
    })
  })

  it('no member write when the flags are already right', async () => {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(w.storage.snapshot().members).toEqual(before.members)
  })

  it('suspended user: USER_SUSPENDED, no writes, pipeline ended', async () => {
    const w = world({ users: [{ ...alice, isSuspended: true }], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e.code).toBe('USER_SUSPENDED')
    expect(e.redirect).toBe('orgLogin')
    expectNoWrites(w, before)
    expect((await finishErr(w, { handle, session: session() })).code).toBe('STATE_CONSUMED')
  })

  it('inactive owner (N8): treated as unknown, the identity stays with the inactive user', async () => {
    const w = world({ users: [{ ...alice, isActive: false }], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out.kind).toBe('confirmationRequired')
    expect(out.trace.map((t) => t.rule)).toContain('login.inactive-owner')
    expectNoWrites(w, before)
  })

  it('inactive owner + signed-in session user: confirm-link; identity untouched until confirmed', async () => {
    const bob = makeUser({ id: 'bob', email: 'bob@corp.example' })
    const w = world({ users: [{ ...alice, isActive: false }, bob], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w, { initiatorUserId: 'bob' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 'bob' }),
      identity: ident({ id: 'ext-alice', email: 'alice@corp.example', emailVerified: true }),
    })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-link')
    expectNoWrites(w, before)
  })

  it('2FA pending: twoFactorRequired, nothing written, resumes after 2FA with the same handle', async () => {
    const w = world({ users: [{ ...alice, has2fa: true }], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(out).toEqual({
      kind: 'twoFactorRequired',
      userId: 'alice',
      resumeHandle: handle,
      session: [{ type: 'pendingTwoFactor', userId: 'alice', organizationId: ORG.id, resumeHandle: handle }],
      trace: expect.any(Array),
    })
    expectNoWrites(w, before)
    const again = await finishOk(w, { handle, session: session({ twoFactorUserId: 'alice' }) })
    expect(again.kind === 'signedIn' && again.userId).toBe('alice')
  })

  it('finishing twice: the second finish is STATE_CONSUMED (one state, one decision)', async () => {
    const w = world({ users: [alice], identities: [aliceIdentity], members: [aliceMember] })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    const before = w.storage.snapshot()
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('STATE_CONSUMED')
    expect(w.storage.snapshot()).toEqual(before)
  })
})

describe('identity refresh window (policy.identityRefreshSeconds, issue 10)', () => {
  const now = new Date('2026-03-01T12:00:00.000Z')
  const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000)
  const fresh = (secondsAgo: number, data = { access_token: 'same' }) =>
    makeIdentity({ ...aliceIdentity, data, lastVerified: at(secondsAgo), lastSynced: at(secondsAgo) })
  const login = async (
    identity: ReturnType<typeof makeIdentity>,
    data: Record<string, string>,
    policy?: { identityRefreshSeconds: number },
  ) => {
    const w = world({ users: [alice], identities: [identity], members: [aliceMember], policy })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example', data }) })
    expect(out.kind).toBe('signedIn')
    return { changes: diff(before, w.storage.snapshot()), trace: out.trace.map((t) => t.rule) }
  }

  it('unchanged data, verified a minute ago: nothing is written (trace existing.fresh)', async () => {
    const r = await login(fresh(60), { access_token: 'same' })
    expect(r.changes).toEqual({})
    expect(r.trace).toContain('existing.fresh')
    expect(r.trace).not.toContain('existing.refresh')
  })

  it('verified an hour ago (the default window): refreshed', async () => {
    const r = await login(fresh(3600), { access_token: 'same' })
    expect(r.changes.identities?.changed[0]?.after).toMatchObject({ lastVerified: now, lastSynced: now })
    expect(r.trace).toContain('existing.refresh')
  })

  it('changed data within the window: refreshed with the merged data', async () => {
    const r = await login(fresh(60), { access_token: 'rotated' })
    expect(r.changes.identities?.changed[0]?.after).toMatchObject({ data: { access_token: 'rotated' }, lastVerified: now })
  })

  it('a window of 0 rewrites on every login (Sentry)', async () => {
    const r = await login(fresh(1), { access_token: 'same' }, { identityRefreshSeconds: 0 })
    expect(r.changes.identities?.changed[0]?.after).toMatchObject({ lastVerified: now, lastSynced: now })
  })

  it('a lastVerified in the future (clock skew) is rewritten', async () => {
    const r = await login(fresh(-600), { access_token: 'same' })
    expect(r.changes.identities?.changed[0]?.after).toMatchObject({ lastVerified: now })
  })
})
