import { describe, expect, it } from 'vitest'
import { RESEND_WINDOW_MS, resendLinkRequestKey, unlinkNoticeKey } from '../../src/core/setup/link-requests.js'
import type { AuthIdentity } from '../../src/model/records.js'
import type { Provider, RefreshResult } from '../../src/providers/types.js'
import { makeIdentity, makeMember, makeProvider } from '../../src/testing/fixtures.js'
import { dataOf, defaultRows, expectCode, makeWorld, secretiveProvider, session, type World } from './harness.js'

const LINKED = { ssoLinked: true, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false }

/** org-1 with a configured provider ap-1, admin and manager linked with identities. */
function configured(extra: Parameters<typeof makeWorld>[0] = {}): World {
  const rows = defaultRows()
  const members = rows.members.map((m) =>
    m.id === 'm-admin'
      ? { ...m, flags: { ...LINKED, idpProvisioned: true } }
      : m.id === 'm-manager'
        ? { ...m, flags: { ...LINKED, ssoInvalid: true } }
        : m,
  )
  const w = makeWorld({ ...extra, members })
  w.storage.seed({
    providers: [
      makeProvider({
        id: 'ap-1',
        organizationId: 'org-1',
        providerKey: 'corp',
        config: { clientId: 'c', clientSecret: 'top-secret-value' },
      }),
    ],
    identities: [
      makeIdentity({ id: 'ai-admin', authProviderId: 'ap-1', userId: 'admin' }),
      makeIdentity({ id: 'ai-manager', authProviderId: 'ap-1', userId: 'manager' }),
    ],
  })
  return w
}

describe('disableProvider (spec 3.13)', () => {
  it('audits sso.disable, clears both link flags on every member, deletes identities and provider, then mails notices', async () => {
    const w = configured()
    const before = w.storage.snapshot()
    const result = (await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') }))._unsafeUnwrap()
    // Nothing is mailed in the request: the notices are background work, recorded with the disable.
    expect(w.mailer.sent).toEqual([])
    const after = w.storage.snapshot()
    expect(after.pendingWork.map((x) => [x.kind, x.key])).toEqual([['unlink-notices', 'unlink-notices:ap-1']])
    expect(after.providers).toEqual([])
    expect(after.identities).toEqual([])
    for (const m of after.members.filter((x) => x.organizationId === 'org-1')) {
      const old = before.members.find((x) => x.id === m.id)
      expect(m.flags).toEqual({ ...old?.flags, ssoLinked: false, ssoInvalid: false })
      expect({ ...m, flags: null }).toEqual({ ...old, flags: null })
    }
    // Other orgs untouched.
    expect(after.members.filter((m) => m.organizationId !== 'org-1')).toEqual(before.members.filter((m) => m.organizationId !== 'org-1'))
    expect(after.audit).toHaveLength(1)
    expect(after.audit[0]).toMatchObject({
      event: 'sso.disable',
      actorUserId: 'admin',
      targetId: 'ap-1',
      ip: '203.0.113.7',
      data: { provider: 'corp' },
    })
    expect(JSON.stringify(after.audit)).not.toContain('top-secret-value')
    // Notices: every active accepted member (admin, manager, plain, victim), not the invite or the inactive user.
    expect(result).toEqual({ kind: 'providerDisabled', unlinkMailsQueued: true })
    const drained = (await w.sso.runPendingWork())._unsafeUnwrap()
    expect(drained).toMatchObject({ mailsSent: 4, mailsFailed: 0, completed: 1, pages: 1 })
    expect(w.storage.snapshot().pendingWork).toEqual([])
    expect(w.mailer.sent.map((m) => m.to).sort()).toEqual([
      'admin@example.com',
      'manager@example.com',
      'plain@example.com',
      'victim@corp.example',
    ])
    expect(w.mailer.sent.every((m) => m.template === 'ssoUnlinked')).toBe(true)
    expect(w.mailer.sent.map((m) => m.idempotencyKey)).toContain(unlinkNoticeKey('ap-1', 'm-plain'))
    expect(w.signals.emitted).toEqual([])
  })

  it('refuses non-admins, anonymous users and orgs without SSO, writing nothing', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.disableProvider({ organizationId: 'org-1', session: session('plain') }), 'NOT_AUTHORIZED')
    expectCode(await w.sso.disableProvider({ organizationId: 'org-1', session: session(null) }), 'NOT_AUTHENTICATED')
    expectCode(await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin2') }), 'NOT_A_MEMBER')
    expectCode(await w.sso.disableProvider({ organizationId: 'org-2', session: session('admin2') }), 'PROVIDER_NOT_CONFIGURED')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.mailer.sent).toEqual([])
  })

  it('is one transaction: a failing write rolls back everything and mails nothing', async () => {
    const w = configured({
      audit: {
        async record() {
          throw new Error('audit down (injected)')
        },
      },
    })
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') }), 'STORAGE_UNAVAILABLE')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    // The rolled-back decision left no work behind: a drain mails nothing.
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ mailsSent: 0, pages: 0 })
    expect(w.mailer.sent).toEqual([])
  })
})

describe('resendLinkRequests', () => {
  it('mails only members still unlinked, deduplicated within the resend window', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    const first = (await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') }))._unsafeUnwrap()
    expect(first).toEqual({ kind: 'linkRequestsQueued', queued: true })
    expect(w.mailer.sent).toEqual([])
    // manager is ssoLinked (though invalid): not mailed; plain and victim are unlinked; inactive skipped.
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ mailsSent: 2, completed: 1 })
    expect(w.mailer.sent.map((m) => m.to).sort()).toEqual(['plain@example.com', 'victim@corp.example'])
    expect(w.mailer.sent[0]?.data).toMatchObject({ organizationName: 'Acme', loginUrl: '/auth/login/acme/', providerName: 'Corp corp' })
    expect(w.mailer.sent.map((m) => m.idempotencyKey)).toContain(resendLinkRequestKey('ap-1', 'm-plain', w.clock.now()))
    // A retry in the same window: the mailer drops every message as a duplicate.
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') })
    await w.sso.runPendingWork()
    expect(w.mailer.sent).toHaveLength(2)
    expect(w.mailer.duplicates).toHaveLength(2)
    // The next window mails again.
    w.clock.advance(RESEND_WINDOW_MS)
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') })
    await w.sso.runPendingWork()
    expect(w.mailer.sent).toHaveLength(4)
    // Resending writes nothing but the (drained) work.
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('refuses non-admins and orgs without SSO', async () => {
    const w = configured()
    expectCode(await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('plain') }), 'NOT_AUTHORIZED')
    expectCode(await w.sso.resendLinkRequests({ organizationId: 'org-2', session: session('admin2') }), 'PROVIDER_NOT_CONFIGURED')
    expect(w.storage.snapshot().pendingWork).toEqual([])
    expect(w.mailer.sent).toEqual([])
  })

  it('a second resend while one is pending joins it: the mails are not doubled, even in a later window', async () => {
    const w = configured()
    const again = () => w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') })
    expect((await again())._unsafeUnwrap()).toEqual({ kind: 'linkRequestsQueued', queued: true })
    expect((await again())._unsafeUnwrap()).toEqual({ kind: 'linkRequestsQueued', queued: false })
    w.clock.advance(RESEND_WINDOW_MS)
    expect((await again())._unsafeUnwrap()).toEqual({ kind: 'linkRequestsQueued', queued: false })
    expect(w.storage.snapshot().pendingWork).toHaveLength(1)
    await w.sso.runPendingWork()
    expect(w.mailer.sent.map((m) => m.to).sort()).toEqual(['plain@example.com', 'victim@corp.example'])
    expect(w.mailer.duplicates).toEqual([])
  })
})

describe('updateSettings', () => {
  it('writes only the changed fields and one sso.edit entry listing each change', async () => {
    const w = configured()
    const before = w.storage.snapshot()
    const result = (
      await w.sso.updateSettings({
        organizationId: 'org-1',
        session: session('manager'),
        settings: { requireSso: false, scimEnabled: false, defaultRole: 'admin' },
      })
    )._unsafeUnwrap()
    expect(result).toEqual({ kind: 'settingsUpdated', changed: ['requireSso', 'defaultRole'] })
    const after = w.storage.snapshot()
    expect(after.providers[0]).toEqual({ ...before.providers[0], allowUnlinked: true })
    expect(after.organizations.find((o) => o.id === 'org-1')).toEqual({
      ...before.organizations.find((o) => o.id === 'org-1'),
      defaultRole: 'admin',
    })
    expect(after.audit).toHaveLength(1)
    expect(after.audit[0]).toMatchObject({
      event: 'sso.edit',
      actorUserId: 'manager',
      targetId: 'ap-1',
      data: { requireSso: 'to false', defaultRole: 'to admin' },
    })
    expect(after.audit[0]?.data).not.toHaveProperty('scimEnabled')
    expect(after.members).toEqual(before.members)
  })

  it('writes nothing (no audit) when nothing changed', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    const result = (
      await w.sso.updateSettings({
        organizationId: 'org-1',
        session: session('admin'),
        settings: { requireSso: true, scimEnabled: false, defaultRole: 'member' },
      })
    )._unsafeUnwrap()
    expect(result.changed).toEqual([])
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('rejects invalid roles, non-admins and orgs without SSO, writing nothing', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    expectCode(
      await w.sso.updateSettings({ organizationId: 'org-1', session: session('admin'), settings: { defaultRole: '' } }),
      'INPUT_INVALID',
    )
    expectCode(
      await w.sso.updateSettings({ organizationId: 'org-1', session: session('admin'), settings: { defaultRole: 'own er\n' } }),
      'INPUT_INVALID',
    )
    expectCode(
      await w.sso.updateSettings({ organizationId: 'org-1', session: session('plain'), settings: { scimEnabled: true } }),
      'NOT_AUTHORIZED',
    )
    expectCode(
      await w.sso.updateSettings({ organizationId: 'org-2', session: session('admin2'), settings: { scimEnabled: true } }),
      'PROVIDER_NOT_CONFIGURED',
    )
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })
})

describe('refreshIdentity (periodic check, spec 3.13)', () => {
  function withRefresh(result: RefreshResult | Error, merge = false): World {
    const base = secretiveProvider('corp', false)
    const corp: Provider = {
      ...base,
      refreshIdentity: async () => {
        if (result instanceof Error) throw result
        return result
      },
      ...(merge ? { updateIdentity: (next, current) => ({ ...current, ...next }) } : {}),
    }
    return configured({ providers: { corp } })
  }

  const member = (w: World, id: string) => w.storage.snapshot().members.find((m) => m.id === id)
  const identity = (w: World, id: string): AuthIdentity | undefined => w.storage.snapshot().identities.find((i) => i.id === id)

  it('ok: linked on, invalid off, data updated, timestamps stamped; other flags kept', async () => {
    const w = withRefresh({ kind: 'ok', data: { token: 'new' } }, true)
    w.clock.advance(60_000)
    const before = w.storage.snapshot()
    expect((await w.sso.refreshIdentity({ identityId: 'ai-manager' }))._unsafeUnwrap()).toEqual({ kind: 'valid' })
    expect(member(w, 'm-manager')?.flags).toEqual(LINKED)
    expect(identity(w, 'ai-manager')).toMatchObject({ data: { token: 'new' }, lastVerified: w.clock.now(), lastSynced: w.clock.now() })
    const after = w.storage.snapshot()
    expect(after.members.filter((m) => m.id !== 'm-manager')).toEqual(before.members.filter((m) => m.id !== 'm-manager'))
    expect(after.identities.filter((i) => i.id !== 'ai-manager')).toEqual(before.identities.filter((i) => i.id !== 'ai-manager'))
  })

  it('ok for an already-valid member writes no member row (only the timestamps)', async () => {
    const w = withRefresh({ kind: 'ok', data: {} })
    const before = w.storage.snapshot()
    await w.sso.refreshIdentity({ identityId: 'ai-admin' })
    expect(w.storage.snapshot().members).toEqual(before.members)
  })

  it('invalid: linked off, invalid on, stamped; identity data unchanged', async () => {
    const w = withRefresh({ kind: 'invalid', reason: 'revoked at the IdP' })
    w.clock.advance(60_000)
    expect((await w.sso.refreshIdentity({ identityId: 'ai-admin' }))._unsafeUnwrap()).toEqual({
      kind: 'invalid',
      reason: 'revoked at the IdP',
    })
    expect(member(w, 'm-admin')?.flags).toEqual({ ...LINKED, ssoLinked: false, ssoInvalid: true, idpProvisioned: true })
    expect(identity(w, 'ai-admin')).toMatchObject({ data: {}, lastVerified: w.clock.now(), lastSynced: w.clock.now() })
  })

  it('error (returned or thrown): invalid on, the link flag kept, stamped', async () => {
    for (const result of [{ kind: 'error', reason: 'timeout' } as const, new Error('network down')]) {
      const w = withRefresh(result)
      w.clock.advance(60_000)
      const outcome = (await w.sso.refreshIdentity({ identityId: 'ai-admin' }))._unsafeUnwrap()
      expect(outcome.kind).toBe('error')
      expect(member(w, 'm-admin')?.flags).toEqual({ ...LINKED, ssoInvalid: true, idpProvisioned: true })
      expect(identity(w, 'ai-admin')?.lastVerified).toEqual(w.clock.now())
    }
  })

  it('no membership: the identity is deleted and nothing else changes', async () => {
    const w = withRefresh({ kind: 'ok', data: {} })
    await w.storage.transaction((tx) => tx.deleteMember('m-manager'))
    const before = w.storage.snapshot()
    expect((await w.sso.refreshIdentity({ identityId: 'ai-manager' }))._unsafeUnwrap()).toEqual({ kind: 'identityDeleted' })
    const after = w.storage.snapshot()
    expect(after.identities).toEqual(before.identities.filter((i) => i.id !== 'ai-manager'))
    expect(dataOf({ ...after, identities: [] })).toEqual(dataOf({ ...before, identities: [] }))
  })

  it('unknown identity id -> INPUT_INVALID, nothing written', async () => {
    const w = withRefresh({ kind: 'ok', data: {} })
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.refreshIdentity({ identityId: 'nope' }), 'INPUT_INVALID')
    expect(error.details).toMatchObject({ reason: 'identity-not-found' })
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('a member added to another org does not count: membership is per provider org', async () => {
    const w = withRefresh({ kind: 'ok', data: {} })
    await w.storage.transaction(async (tx) => {
      await tx.deleteMember('m-manager')
      await tx.createMember(makeMember({ id: 'm-manager-2', organizationId: 'org-2', userId: 'manager' }))
    })
    expect((await w.sso.refreshIdentity({ identityId: 'ai-manager' }))._unsafeUnwrap()).toEqual({ kind: 'identityDeleted' })
  })
})
