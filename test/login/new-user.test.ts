// Spec 3.8 + threats 5, 50, 53: new user.
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, finishErr, finishOk, ident, ORG, PROVIDER, session, start, world } from './harness.js'

const NOW = new Date('2026-03-01T12:00:00.000Z')

describe('new user (spec 3.8)', () => {
  it('op=newuser creates user, identity, membership; mails and signals after commit; nothing else', async () => {
    const w = world()
    const handle = await start(w, { referrer: 'landing' })
    const first = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-1', email: 'New@Corp.example', name: 'N'.repeat(250), data: { role: 'owner' } }),
    })
    expect(first.kind === 'confirmationRequired' && first.allowedOps).toEqual(['newuser'])
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), op: 'newuser' })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.created).toEqual({ user: true, identity: true, member: true })
    expect(out.linked).toBe(true)
    expect(out.redirect).toBe('/organizations/acme/issues/')
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities', 'members', 'userEmails', 'users'])
    const user = d.users?.added[0] as {
      id: string
      username: string
      name: string
      email: string
      hasUsablePassword: boolean
      isActive: boolean
    }
    expect(user).toMatchObject({
      id: out.userId,
      email: 'New@Corp.example',
      hasUsablePassword: false,
      isActive: true,
      isSuspended: false,
      has2fa: false,
      createdAt: NOW,
    })
    expect(user.username).toMatch(/^[0-9a-f]{32}$/)
    expect(user.name).toBe('N'.repeat(200))
    // an IdP claim never marks the stored address verified (threat 5)
    expect(d.userEmails?.added).toEqual([
      { userId: out.userId, email: 'New@Corp.example', emailNormalized: 'new@corp.example', isVerified: false, isPrimary: true },
    ])
    expect(d.identities?.added).toEqual([
      {
        id: expect.any(String),
        authProviderId: PROVIDER.id,
        userId: out.userId,
        ident: 'ext-1',
        data: { role: 'owner' },
        lastVerified: NOW,
        lastSynced: NOW,
        createdAt: NOW,
      },
    ])
    // role from the org default, never from IdP data (threat 50)
    expect(d.members?.added).toEqual([
      expect.objectContaining({ userId: out.userId, role: 'member', flags: { ...NO_FLAGS, ssoLinked: true } }),
    ])
    expect((d.audit?.added ?? []).map((a) => (a as { event: string }).event)).toEqual(['member.add'])
    expect(w.mailer.sent).toEqual([
      {
        template: 'newUserConfirmation',
        to: 'New@Corp.example',
        // names in mail data are bounded plain text (threat 57): 99 characters and an ellipsis
        data: { userName: `${'N'.repeat(99)}\u2026`, organizationName: ORG.name, providerName: 'IdP dummy' },
        idempotencyKey: `new-user-confirmation:${out.userId}`,
      },
    ])
    expect(w.signals.emitted).toEqual([
      { name: 'user_signup', payload: { userId: out.userId, source: 'sso', provider: 'dummy', referrer: 'landing' } },
    ])
  })

  it('referrer defaults to in-app; member-limit hook restricts the new member', async () => {
    const w = world({ hooks: { isMemberLimitReached: () => true } })
    const handle = await start(w)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'n@corp.example' }), op: 'newuser' })
    expect(w.signals.emitted[0]).toMatchObject({ payload: { referrer: 'in-app' } })
    expect(w.storage.snapshot().members[0]?.flags).toEqual({ ...NO_FLAGS, ssoLinked: true, memberLimitRestricted: true })
  })

  it('newuser claims an identity whose owner is inactive (explicitly, N8), the inactive user is untouched', async () => {
    const ghost = makeUser({ id: 'ghost', email: 'ghost@corp.example', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'ext-1' })
    const w = world({ users: [ghost], identities: [row] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'n@corp.example' }), op: 'newuser' })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.created).toEqual({ user: true, identity: false, member: true })
    const after = w.storage.snapshot()
    expect(after.identities).toEqual([expect.objectContaining({ id: 'ai-ghost', userId: out.userId })])
    expect(after.users.find((u) => u.id === 'ghost')).toEqual(before.users.find((u) => u.id === 'ghost'))
  })

  it('newuser when the session user owns the email → IDENTITY_CONFLICT, nothing created', async () => {
    const s = makeUser({ id: 's', email: 'n@corp.example' })
    const w = world({ users: [s], members: [makeMember({ id: 'm-s', organizationId: ORG.id, userId: 's' })] })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const e = await finishErr(w, {
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-1', email: 'n@corp.example' }),
      op: 'newuser',
    })
    expect(e.code).toBe('IDENTITY_CONFLICT')
    expect(w.storage.snapshot().users).toEqual(before.users)
    expect(w.storage.snapshot().identities).toEqual([])
  })

  it('threat 53: newuser for an identity already linked to an active user is an existing login, never a steal', async () => {
    const v = makeUser({ id: 'v', email: 'v@corp.example' })
    const row = makeIdentity({ id: 'ai-v', authProviderId: PROVIDER.id, userId: 'v', ident: 'ext-v' })
    const w = world({
      users: [v],
      identities: [row],
      members: [makeMember({ id: 'm-v', organizationId: ORG.id, userId: 'v', flags: { ...NO_FLAGS, ssoLinked: true } })],
    })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-v', email: 'other@corp.example' }),
      op: 'newuser',
    })
    expect(out.kind === 'signedIn' && out.userId).toBe('v')
    expect(w.storage.snapshot().users).toHaveLength(1)
    expect(w.storage.snapshot().identities).toEqual([expect.objectContaining({ id: 'ai-v', userId: 'v' })])
  })
})

describe("just-in-time new users (policy.newUser: 'create')", () => {
  const jit = { newUser: 'create' } as const

  it('an unknown identity whose email matches no account is signed up in the callback itself: no page, same rows as op=newuser', async () => {
    const asked = world()
    const created = world({ policy: jit })
    const identity = ident({ id: 'ext-1', email: 'New@Corp.example', name: 'New' })
    // 'confirm' (the default): the page, then the POST.
    const h1 = await start(asked)
    const page = await finishOk(asked, { handle: h1, session: session(), identity })
    expect(page).toMatchObject({ kind: 'confirmationRequired', allowedOps: ['newuser'] })
    const chosen = await finishOk(asked, { handle: h1, session: session(), op: 'newuser' })
    // 'create': one request.
    const h2 = await start(created)
    const before = created.storage.snapshot()
    const out = await finishOk(created, { handle: h2, session: session(), identity })
    if (out.kind !== 'signedIn' || chosen.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.created).toEqual({ user: true, identity: true, member: true })
    expect(out.trace.map((t) => t.rule)).toContain('unknown.jit')
    expect(out.trace.find((t) => t.rule === 'unknown.jit')?.detail).toContain("policy.newUser is 'create'")
    const d = diff(before, created.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities', 'members', 'userEmails', 'users'])
    // The same rows, mails and signals as choosing "create a new account" on the page (record
    // ids and the random username aside).
    const shape = (w: typeof created) => {
      const s = w.storage.snapshot()
      const ids = new Map<string, string>()
      const alias = (v: string) => {
        const known = ids.get(v)
        if (known !== undefined) return known
        const fresh = `id${ids.size}`
        ids.set(v, fresh)
        return fresh
      }
      const known = new Set([...s.users, ...s.identities, ...s.members, ...s.audit].map((r) => r.id))
      return JSON.parse(
        JSON.stringify({ ...s, pipelineStates: [], oneTimeTokens: [], mail: w.mailer.sent, signals: w.signals.emitted }, (k, v) =>
          k === 'username'
            ? 'random'
            : typeof v === 'string' && known.has(v.replace(/^new-user-confirmation:/, ''))
              ? alias(v.replace(/^new-user-confirmation:/, ''))
              : v,
        ),
      )
    }
    expect(shape(created)).toEqual(shape(asked))
    // The pipeline is over.
    expect((await created.login.finishLogin({ handle: h2, session: session(), identity }))._unsafeUnwrapErr().code).toBe('STATE_CONSUMED')
  })

  it('an email that matches an account still asks (confirm-identity, nothing written), even when the IdP says it is verified', async () => {
    const owner = makeUser({ id: 'owner', email: 'taken@corp.example' })
    const w = world({ users: [owner], policy: jit })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-1', email: 'TAKEN@corp.example', emailVerified: true }),
    })
    expect(out).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-identity' } })
    expect(out.trace.map((t) => t.rule)).toContain('target.email-match')
    expect(out.trace.map((t) => t.rule)).not.toContain('unknown.jit')
    expect(dataOfNoTokens(w.storage.snapshot())).toEqual(dataOfNoTokens(before))
    expect(w.signals.emitted).toEqual([])
  })

  it('a signed-in user still gets confirm-link; nothing is created for them', async () => {
    const s = makeUser({ id: 's', email: 's@corp.example' })
    const w = world({ users: [s], members: [makeMember({ id: 'm-s', organizationId: ORG.id, userId: 's' })], policy: jit })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-1', email: 'fresh@corp.example' }),
    })
    expect(out).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-link' }, allowedOps: ['confirm', 'newuser'] })
    expect(dataOfNoTokens(w.storage.snapshot())).toEqual(dataOfNoTokens(before))
  })

  it('an identity whose owner is inactive still asks; the inactive owner and the row are untouched', async () => {
    const ghost = makeUser({ id: 'ghost', email: 'ghost@corp.example', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'ext-1' })
    const w = world({ users: [ghost], identities: [row], policy: jit })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-1', email: 'fresh@corp.example' }) })
    expect(out).toMatchObject({ kind: 'confirmationRequired', allowedOps: ['newuser'] })
    expect(dataOfNoTokens(w.storage.snapshot())).toEqual(dataOfNoTokens(before))
  })

  it('a session whose user is unknown or inactive is not "nobody": it asks', async () => {
    const ghost = makeUser({ id: 'ghost', email: 'ghost@corp.example', isActive: false })
    const w = world({ users: [ghost], policy: jit })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 'ghost' }),
      identity: ident({ id: 'ext-1', email: 'fresh@corp.example' }),
    })
    expect(out.kind).toBe('confirmationRequired')
    expect(w.storage.snapshot().users).toHaveLength(1)
  })

  it('explain names the policy in the trace and writes nothing', async () => {
    const w = world({ policy: jit })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const r = await w.login.explain({ handle, session: session(), identity: ident({ id: 'ext-1', email: 'fresh@corp.example' }) })
    const x = r._unsafeUnwrap()
    expect(x.decision).toBe('signIn:newUser')
    expect(x.trace.map((t) => t.rule)).toContain('unknown.jit')
    expect(w.storage.snapshot()).toEqual(before)
  })
})

/** The snapshot without pipeline states and one-time tokens. */
function dataOfNoTokens(s: ReturnType<ReturnType<typeof world>['storage']['snapshot']>) {
  const { pipelineStates: _p, oneTimeTokens: _t, ...rest } = s
  return rest
}
