import { describe, expect, it, vi } from 'vitest'
import { linkRequestKey } from '../../src/core/setup/link-requests.js'
import type { AuditEntry } from '../../src/model/records.js'
import type { AuditPort } from '../../src/ports/audit.js'
import type { StorageTx } from '../../src/ports/storage.js'
import { makeMember, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { dataOf, defaultRows, expectCode, makeWorld, POST_FORM, readySetup, session, unwrapStep } from './harness.js'

/** An audit port that writes through the transaction, and throws for the events in `failOn`. */
function failingAudit(failOn: Set<string>): AuditPort {
  return {
    async record(entry: AuditEntry, tx: StorageTx) {
      if (failOn.has(entry.event)) throw new Error(`audit ${entry.event} failed (injected)`)
      await tx.appendAudit(entry)
    },
  }
}

describe('finishSetup: the happy path (spec 3.11 with N9)', () => {
  it('threat 59: creates the provider, links the admin, turns require-2FA off (reported in policyChanges, audited as org.edit), audits, signals and mails unlinked members', async () => {
    const w = makeWorld()
    const sess = session('admin')
    const begun = (await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'dummy', session: sess }))._unsafeUnwrap()
    expect(begun.kind).toBe('render')
    if (begun.kind !== 'render') return
    const before = w.storage.snapshot()
    const step = await w.sso.advance({
      handle: begun.handle,
      request: POST_FORM({ id: 'ext-admin', email: 'admin@example.com' }),
      session: sess,
    })
    const outcome = unwrapStep(step._unsafeUnwrap())
    const after = w.storage.snapshot()

    // Outcome
    const provider = after.providers.find((p) => p.organizationId === 'org-1')
    expect(provider).toBeDefined()
    if (!provider) return
    expect(outcome).toMatchObject({
      kind: 'setupComplete',
      organizationId: 'org-1',
      authProviderId: provider.id,
      providerKey: 'dummy',
      redirect: '/settings/acme/auth/provider/',
      linkRequestsQueued: true,
      warnings: [],
      policyChanges: [{ setting: 'require2fa', from: true, to: false }],
    })
    expect(outcome.session).toContainEqual({ type: 'markSsoComplete', organizationId: 'org-1', at: '2026-03-01T10:00:00.000Z' })
    expect(outcome.trace.map((t) => t.rule)).toContain('setup.target.admin')

    // What must change
    expect(after.providers).toHaveLength(1)
    expect(provider).toMatchObject({ providerKey: 'dummy', config: {}, allowUnlinked: false, scimEnabled: false })
    expect(after.identities).toEqual([
      expect.objectContaining({ authProviderId: provider.id, userId: 'admin', ident: 'ext-admin', data: {} }),
    ])
    const adminMember = after.members.find((m) => m.id === 'm-admin')
    expect(adminMember?.flags).toEqual({
      ssoLinked: true,
      ssoInvalid: false,
      memberLimitRestricted: false,
      idpProvisioned: true,
      idpRoleRestricted: false,
    })
    expect(after.organizations.find((o) => o.id === 'org-1')?.require2fa).toBe(false)
    expect(after.audit.map((a) => a.event)).toEqual(['org.edit', 'sso-identity.link', 'sso.enable'])
    const [orgEdit, link, enable] = after.audit
    expect(orgEdit).toMatchObject({
      actorUserId: 'admin',
      targetId: 'org-1',
      ip: '203.0.113.7',
      data: { require2fa: 'to false when enabling SSO' },
    })
    expect(link).toMatchObject({ actorUserId: 'admin', targetUserId: 'admin', targetId: after.identities[0]?.id })
    expect(enable).toMatchObject({
      actorUserId: 'admin',
      organizationId: 'org-1',
      targetId: provider.id,
      ip: '203.0.113.7',
      data: { provider: 'dummy', config: {} },
    })

    // What must not change: every other member, user and org row.
    expect(after.members.filter((m) => m.id !== 'm-admin')).toEqual(before.members.filter((m) => m.id !== 'm-admin'))
    expect(after.users).toEqual(before.users)
    expect(after.organizations).toEqual(before.organizations.map((o) => (o.id === 'org-1' ? { ...o, require2fa: false } : o)))
    expect(after.userEmails).toEqual(before.userEmails)
    expect(after.oneTimeTokens).toEqual(before.oneTimeTokens)

    // After commit: the signal; the link requests are background work recorded in the setup's
    // transaction (no mail in the request), sent by the drain.
    expect(w.signals.emitted).toEqual([{ name: 'sso_enabled', payload: { organizationId: 'org-1', userId: 'admin', provider: 'dummy' } }])
    expect(w.mailer.sent).toEqual([])
    expect(after.pendingWork.map((x) => x.key)).toEqual([`link-requests:${provider.id}`])
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ mailsSent: 3, completed: 1 })
    expect(w.mailer.sent.map((m) => m.to).sort()).toEqual(['manager@example.com', 'plain@example.com', 'victim@corp.example'])
    for (const mail of w.mailer.sent) {
      expect(mail.template).toBe('ssoLinkRequest')
      expect(mail.data).toEqual({ organizationName: 'Acme', providerName: 'Dummy', loginUrl: '/auth/login/acme/' })
    }
    expect(w.mailer.sent.map((m) => m.idempotencyKey).sort()).toEqual(
      ['m-manager', 'm-plain', 'm-victim'].map((id) => linkRequestKey(provider.id, id)),
    )

    // The state is consumed: finishing again is refused and writes nothing.
    const replay = await w.sso.advance({ handle: begun.handle, request: POST_FORM({ email: 'admin@example.com' }), session: sess })
    expectCode(replay, 'STATE_CONSUMED')
    expect(w.storage.snapshot().providers).toHaveLength(1)
  })

  it('leaves require-2FA alone (no org.edit, no policy change) when it was off', async () => {
    const rows = defaultRows()
    const w = makeWorld({ organizations: rows.organizations.map((o) => ({ ...o, require2fa: false })) })
    const outcome = (await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap()
    expect(outcome.policyChanges).toEqual([])
    expect(w.storage.snapshot().audit.map((a) => a.event)).toEqual(['sso-identity.link', 'sso.enable'])
  })

  it("links the admin even when the IdP asserts another user's email (threat 8, N9)", async () => {
    const w = makeWorld()
    const input = await readySetup(w, { form: { id: 'ext-x', email: 'victim@corp.example', email_verified: 'on' } })
    const victimBefore = w.storage.snapshot()
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    const after = w.storage.snapshot()
    expect(after.identities).toHaveLength(1)
    expect(after.identities[0]).toMatchObject({ userId: 'admin', ident: 'ext-x', authProviderId: outcome.authProviderId })
    expect(after.users.find((u) => u.id === 'victim')).toEqual(victimBefore.users.find((u) => u.id === 'victim'))
    // The victim is still unlinked and gets the ordinary link request.
    expect(after.members.find((m) => m.id === 'm-victim')).toEqual(victimBefore.members.find((m) => m.id === 'm-victim'))
  })

  it('redacts secrets from the sso.enable audit entry but stores the full config', async () => {
    for (const key of ['corp', 'tidy']) {
      const w = makeWorld()
      const outcome = (await w.sso.finishSetup(await readySetup(w, { providerKey: key })))._unsafeUnwrap()
      const snap = w.storage.snapshot()
      const enable = snap.audit.find((a) => a.event === 'sso.enable')
      const text = JSON.stringify(enable)
      expect(text).not.toContain('top-secret-value')
      expect(text).not.toContain('PRIVATE KEY')
      expect(enable?.data).toMatchObject({ provider: key, config: { clientId: 'client-123', signing: { algorithm: 'RS256' } } })
      expect(snap.providers.find((p) => p.id === outcome.authProviderId)?.config).toMatchObject({ clientSecret: 'top-secret-value' })
    }
  })

  it('reports mail and signal failures as warnings; the setup stays committed', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    w.signals.failNext(1)
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(outcome.warnings.map((x) => x.code).sort()).toEqual(['SIGNAL_FAILED'])
    expect(outcome.linkRequestsQueued).toBe(true)
    expect(w.storage.snapshot().providers).toHaveLength(1)
    // A mailer failure in the drain: the page is retried later; the keys keep the sent ones single.
    w.mailer.failNext(1)
    const first = (await w.sso.runPendingWork())._unsafeUnwrap()
    expect(first).toMatchObject({ mailsSent: 2, mailsFailed: 1, completed: 0, more: true })
    expect(first.warnings.map((x) => x.code)).toEqual(['MAILER_FAILED'])
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0 })
    w.clock.advance(60_000)
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ mailsSent: 3, mailsFailed: 0, completed: 1 })
    expect(w.mailer.sent.map((m) => m.to).sort()).toEqual(['manager@example.com', 'plain@example.com', 'victim@corp.example'])
    expect(w.storage.snapshot().pendingWork).toEqual([])
  })
})

describe('finishSetup: rejections write nothing and send nothing', () => {
  async function rejected(
    mutate: (
      w: ReturnType<typeof makeWorld>,
      input: Awaited<ReturnType<typeof readySetup>>,
    ) => Promise<Awaited<ReturnType<typeof readySetup>>> | Awaited<ReturnType<typeof readySetup>>,
    code: string,
    worldOptions: Parameters<typeof makeWorld>[0] = {},
  ) {
    const w = makeWorld(worldOptions)
    const input = await readySetup(w)
    const changed = await mutate(w, input)
    const before = dataOf(w.storage.snapshot())
    const result = await w.sso.finishSetup(changed)
    const error = expectCode(result, code)
    // A forged handle names no organization: the root (docs/errors.md); all else the settings page.
    expect(error.redirect).toBe(code === 'STATE_INVALID' && error.details?.reason === 'handle-signature' ? 'root' : 'authSettings')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.storage.snapshot().providers).toEqual([])
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
    return { w, input, error }
  }

  it('anonymous session -> NOT_AUTHENTICATED', async () => {
    await rejected((_w, input) => ({ ...input, session: { ...input.session, userId: null } }), 'NOT_AUTHENTICATED')
  })

  it('session user differs from the initiator -> UID_MISMATCH', async () => {
    await rejected((_w, input) => ({ ...input, session: { ...input.session, userId: 'manager' } }), 'UID_MISMATCH')
  })

  it('another browser session -> STATE_SESSION_MISMATCH', async () => {
    await rejected((_w, input) => ({ ...input, session: { ...input.session, id: 'stolen-session' } }), 'STATE_SESSION_MISMATCH')
  })

  it('the admin left the org between begin and finish -> UID_MISMATCH', async () => {
    await rejected(async (w, input) => {
      await w.storage.transaction((tx) => tx.deleteMember('m-admin'))
      return input
    }, 'UID_MISMATCH')
  })

  it('the admin was demoted between begin and finish -> NOT_AUTHORIZED (threat 58)', async () => {
    await rejected(async (w, input) => {
      await w.storage.transaction((tx) => tx.updateMember('m-admin', { role: 'member' }))
      return input
    }, 'NOT_AUTHORIZED')
  })

  it('the host authorize hook says no at finish time -> NOT_AUTHORIZED (threat 58)', async () => {
    let allowed = true
    await rejected(
      (_w, input) => {
        allowed = false
        return input
      },
      'NOT_AUTHORIZED',
      { hooks: { authorize: () => allowed } },
    )
  })

  it('authorization is re-checked inside the transaction: a demotion after the pre-check still rejects', async () => {
    let authorizeCalls = 0
    const w = makeWorld({ hooks: { authorize: ({ user }) => user.id !== 'admin' || authorizeCalls++ < 2 } })
    const input = await readySetup(w) // beginSetup used call 1
    authorizeCalls = 1
    const before = dataOf(w.storage.snapshot())
    // Call 2 (the pre-check before claiming) allows; call 3 (inside the transaction) refuses.
    expectCode(await w.sso.finishSetup(input), 'NOT_AUTHORIZED')
    expect(authorizeCalls).toBe(3)
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
  })

  it('a provider appeared between begin and finish -> PROVIDER_EXISTS, the existing one untouched (threat 54)', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    await w.storage.transaction((tx) =>
      tx.createAuthProvider(makeProvider({ id: 'ap-old', organizationId: 'org-1', providerKey: 'corp', config: { a: 1 } })),
    )
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.finishSetup(input), 'PROVIDER_EXISTS')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
  })

  it('an invalid identity -> IDENTITY_INVALID and the state stays open for a valid one', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.finishSetup({ ...input, identity: { id: 'x', email: 'not an email' } }), 'IDENTITY_INVALID')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect((await w.sso.finishSetup(input)).isOk()).toBe(true)
  })

  it('a handle whose steps did not run -> STATE_INVALID (no step skipping)', async () => {
    const w = makeWorld()
    const sess = session('admin')
    const begun = (await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'dummy', session: sess }))._unsafeUnwrap()
    if (begun.kind !== 'render') throw new Error('expected the form')
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(
      await w.sso.finishSetup({ handle: begun.handle, identity: { id: 'x', email: 'admin@example.com' }, session: sess }),
      'STATE_INVALID',
    )
    expect(error.details).toEqual({ reason: 'steps-incomplete' })
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('a login pipeline handle -> FLOW_MISMATCH', async () => {
    const w = makeWorld()
    await w.storage.transaction((tx) => tx.createAuthProvider(makeProvider({ id: 'ap-2', organizationId: 'org-2' })))
    const sess = session('admin2')
    const begun = (await w.sso.beginLogin({ organizationId: 'org-2', session: sess }))._unsafeUnwrap()
    if (begun.kind !== 'render') throw new Error('expected the form')
    const before = dataOf(w.storage.snapshot())
    expectCode(
      await w.sso.finishSetup({ handle: begun.handle, identity: { id: 'x', email: 'admin2@example.com' }, session: sess }),
      'FLOW_MISMATCH',
    )
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('a forged handle -> STATE_INVALID', async () => {
    await rejected((_w, input) => ({ ...input, handle: `${input.handle.slice(0, -2)}AA` }), 'STATE_INVALID')
  })
})

describe('finishSetup: atomicity and races', () => {
  it('a failure at the last write (sso.enable audit) rolls everything back: require-2FA stays on, no mail, no signal', async () => {
    const failOn = new Set(['sso.enable'])
    const w = makeWorld({ audit: failingAudit(failOn) })
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.finishSetup(input), 'STORAGE_UNAVAILABLE')
    expect(error.retryable).toBe(true)
    const after = w.storage.snapshot()
    expect(dataOf(after)).toEqual(before)
    expect(after.organizations.find((o) => o.id === 'org-1')?.require2fa).toBe(true)
    expect(after.providers).toEqual([])
    expect(after.identities).toEqual([])
    expect(after.audit).toEqual([])
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
    // A retryable failure releases the state: the same finish succeeds once the port recovers.
    expect(after.pendingWork).toEqual([])
    failOn.clear()
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(outcome.linkRequestsQueued).toBe(true)
    expect(w.storage.snapshot().providers).toHaveLength(1)
  })

  it('a storage failure at the identity write rolls the provider back too', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const realTransaction = w.storage.transaction.bind(w.storage)
    const spy = vi.spyOn(w.storage, 'transaction').mockImplementation((fn) =>
      realTransaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop, receiver) {
              if (prop === 'createIdentity') return async () => Promise.reject(new Error('disk full (injected)'))
              return Reflect.get(target, prop, receiver)
            },
          }),
        ),
      ),
    )
    expectCode(await w.sso.finishSetup(input), 'STORAGE_UNAVAILABLE')
    spy.mockRestore()
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.signals.emitted).toEqual([])
  })

  it('five admins finishing concurrently: exactly one provider, one admin identity, one sso.enable, one signal (threat 54)', async () => {
    const rows = defaultRows()
    const owners = ['o1', 'o2', 'o3', 'o4', 'o5']
    const w = makeWorld({
      yieldOnRead: true,
      users: [...rows.users, ...owners.map((id) => makeUser({ id }))],
      members: [...rows.members, ...owners.map((id) => makeMember({ id: `m-${id}`, organizationId: 'org-1', userId: id, role: 'owner' }))],
    })
    const inputs = []
    for (const id of owners) inputs.push(await readySetup(w, { user: id, form: { id: `ext-${id}`, email: `${id}@example.com` } }))
    const results = await Promise.all(inputs.map((input) => w.sso.finishSetup(input)))
    const winners = results.filter((r) => r.isOk())
    expect(winners).toHaveLength(1)
    for (const r of results.filter((x) => x.isErr())) expect(r._unsafeUnwrapErr().code).toBe('PROVIDER_EXISTS')
    const snap = w.storage.snapshot()
    expect(snap.providers).toHaveLength(1)
    expect(snap.identities).toHaveLength(1)
    expect(snap.audit.filter((a) => a.event === 'sso.enable')).toHaveLength(1)
    expect(snap.audit.filter((a) => a.event === 'org.edit')).toHaveLength(1)
    expect(w.signals.emitted).toHaveLength(1)
    const winner = winners[0]?._unsafeUnwrap()
    expect(snap.identities[0]?.userId).toBe(w.signals.emitted[0]?.payload.userId)
    expect(winner?.linkRequestsQueued).toBe(true)
    expect(snap.pendingWork).toHaveLength(1)
    await w.sso.runPendingWork()
    expect(new Set(w.mailer.sent.map((m) => m.to)).size).toBe(w.mailer.sent.length)
    expect(w.mailer.sent).toHaveLength(3 + owners.length)
  })

  it('the same state finished twice concurrently: one setup, the other STATE_CONFLICT', async () => {
    const w = makeWorld({ yieldOnRead: true })
    const input = await readySetup(w)
    const results = await Promise.all([w.sso.finishSetup(input), w.sso.finishSetup(input)])
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    const loser = results.find((r) => r.isErr())
    expect(['STATE_CONFLICT', 'STATE_CONSUMED']).toContain(loser?._unsafeUnwrapErr().code)
    expect(w.storage.snapshot().providers).toHaveLength(1)
    expect(w.signals.emitted).toHaveLength(1)
    expect(w.mailer.duplicates).toEqual([])
  })

  it('a unique conflict on the provider row (a store without serialised reads) maps to PROVIDER_EXISTS', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const realTransaction = w.storage.transaction.bind(w.storage)
    // Hide the provider another setup committed from this transaction's reads, as a database
    // under READ COMMITTED could: the insert then hits the unique constraint.
    await w.storage.transaction((tx) => tx.createAuthProvider(makeProvider({ id: 'ap-race', organizationId: 'org-1' })))
    const before = dataOf(w.storage.snapshot())
    const getAuthProvider = w.storage.getAuthProvider.bind(w.storage)
    const spyRead = vi
      .spyOn(w.storage, 'getAuthProvider')
      .mockImplementation(async (orgId) => (orgId === 'org-1' ? null : getAuthProvider(orgId)))
    const spy = vi.spyOn(w.storage, 'transaction').mockImplementation((fn) =>
      realTransaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop, receiver) {
              if (prop === 'getAuthProvider') return async () => null
              return Reflect.get(target, prop, receiver)
            },
          }),
        ),
      ),
    )
    expectCode(await w.sso.finishSetup(input), 'PROVIDER_EXISTS')
    spy.mockRestore()
    spyRead.mockRestore()
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.signals.emitted).toEqual([])
  })
})

describe('link requests at scale', () => {
  it('a 10,000-member org gets exactly one link request per unlinked member, paged', async () => {
    const users = [makeUser({ id: 'admin' })]
    const members = [makeMember({ id: 'm-admin', organizationId: 'org-1', userId: 'admin', role: 'owner' })]
    let unlinked = 0
    for (let i = 0; i < 10_000; i++) {
      const id = `u${String(i).padStart(5, '0')}`
      users.push(makeUser({ id }))
      const linked = i % 7 === 0
      if (!linked) unlinked++
      members.push(
        makeMember({
          id: `m-${id}`,
          organizationId: 'org-1',
          userId: id,
          flags: { ssoLinked: linked, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false },
        }),
      )
    }
    // A few invites (no user) that must not be mailed.
    for (let i = 0; i < 20; i++) members.push(makeMember({ id: `m-inv${i}`, organizationId: 'org-1', email: `inv${i}@example.com` }))
    const rows = defaultRows()
    const w = makeWorld({ organizations: rows.organizations, users, members, memberPageSize: 500 })
    const input = await readySetup(w)
    const limits: number[] = []
    const original = w.storage.listMemberRecipients
    if (!original) throw new Error('the memory store reads recipients in one call')
    const list = original.bind(w.storage)
    const spy = vi.spyOn(w.storage, 'listMemberRecipients').mockImplementation(async (org, page) => {
      limits.push(page.limit)
      return list(org, page)
    })
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(limits).toEqual([])
    expect((await w.sso.runPendingWork({ limit: 1000 }))._unsafeUnwrap()).toMatchObject({ mailsSent: unlinked, completed: 1 })
    spy.mockRestore()
    expect(outcome.linkRequestsQueued).toBe(true)
    expect(w.mailer.sent).toHaveLength(unlinked)
    expect(w.mailer.duplicates).toHaveLength(0)
    expect(new Set(w.mailer.sent.map((m) => m.to)).size).toBe(unlinked)
    expect(w.mailer.sent.some((m) => m.to === 'admin@example.com')).toBe(false)
    expect(limits.every((l) => l === 500)).toBe(true)
    expect(limits.length).toBeGreaterThanOrEqual(Math.ceil(unlinked / 500))
  })
})
