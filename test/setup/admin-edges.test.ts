// The SSO administration calls' edges (src/engine/setup.ts: disableProvider, resendLinkRequests,
// updateSettings, refreshIdentity; issue 12 item 4): their own input guards (on the engine
// directly: createAuthPipeline's boundary checks every input first), the engine's copy of the
// organization after each write, failed reads, a provider without the hooks a refresh needs, and
// what changes between a refresh's reads and its transaction (a disable, a moved identity, a new
// membership) while the IdP is asked.
import { errAsync, type Result } from 'neverthrow'
import { describe, expect, it, vi } from 'vitest'
import { REDACTED } from '../../src/core/setup/redact.js'
import { createSetupApi, type SetupApi } from '../../src/engine/setup.js'
import { type AuthError, authError } from '../../src/errors.js'
import { LIMITS } from '../../src/model/limits.js'
import type { AuthIdentity } from '../../src/model/records.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider, RefreshResult } from '../../src/providers/types.js'
import { makeIdentity, makeMember, makeProvider } from '../../src/testing/fixtures.js'
import { dataOf, defaultRows, expectCode, makeWorld, POST_FORM, session, type World } from './harness.js'

const LINKED = { ssoLinked: true, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false }

function direct(w: World): SetupApi {
  return createSetupApi(w.ctx, { finishLogin: () => errAsync(authError('FLOW_MISMATCH')) })
}

/** org-1 with provider ap-1 (key `corp`, a secret in its config), admin and manager linked. */
function configured(extra: Parameters<typeof makeWorld>[0] = {}, providerKey = 'corp', adminData = {}): World {
  const rows = defaultRows()
  const members = rows.members.map((m) => (m.id === 'm-admin' || m.id === 'm-manager' ? { ...m, flags: LINKED } : m))
  const w = makeWorld({ ...extra, members })
  w.storage.seed({
    providers: [
      makeProvider({
        id: 'ap-1',
        organizationId: 'org-1',
        providerKey,
        config: { clientId: 'c', clientSecret: 'top-secret-value' },
      }),
    ],
    identities: [
      makeIdentity({ id: 'ai-admin', authProviderId: 'ap-1', userId: 'admin', ident: 'ext-admin', data: adminData }),
      makeIdentity({ id: 'ai-manager', authProviderId: 'ap-1', userId: 'manager', ident: 'ext-manager' }),
    ],
  })
  return w
}

/** A login start (keeps the engine's copy of org-1 and its provider row). */
async function startLogin(w: World, sessionId: string) {
  return w.sso.beginLogin({ organizationId: 'org-1', session: session(null, sessionId) })
}

describe("the administration calls' own guards", () => {
  const calls = ['disableProvider', 'resendLinkRequests', 'updateSettings'] as const

  it('a non-object input, a bad organization id or a malformed session is INPUT_INVALID naming it; nothing written', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    const good = { organizationId: 'org-1', session: session('admin'), settings: { scimEnabled: true } }
    const cases: [unknown, string][] = [
      [null, 'input'],
      ['org-1', 'input'],
      [{ ...good, organizationId: '' }, 'organizationId'],
      [{ ...good, organizationId: 7 }, 'organizationId'],
      [{ ...good, organizationId: 'o'.repeat(LIMITS.id + 1) }, 'organizationId'],
      [{ ...good, session: null }, 'session'],
      [{ ...good, session: { id: '', userId: 'admin' } }, 'session'],
    ]
    for (const name of calls) {
      for (const [input, field] of cases) {
        const result: Result<unknown, AuthError> = await direct(w)[name](input as never)
        const error = expectCode(result, 'INPUT_INVALID')
        expect(error.details, `${name} ${JSON.stringify(input)}`).toEqual({ field })
        expect(error.redirect).toBe('authSettings')
      }
    }
    for (const settings of [null, 'requireSso']) {
      const error = expectCode(await direct(w).updateSettings({ ...good, settings } as never), 'INPUT_INVALID')
      expect(error.details).toEqual({ field: 'settings' })
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.mailer.sent).toEqual([])
  })

  it('an organization id of exactly the id limit passes the guards (and names no organization)', async () => {
    const w = configured()
    for (const name of calls) {
      const result = await direct(w)[name]({
        organizationId: 'o'.repeat(LIMITS.id),
        session: session('admin'),
        settings: { scimEnabled: true },
      } as never)
      expect(result._unsafeUnwrapErr().code, name).not.toBe('INPUT_INVALID')
    }
  })

  it('refreshIdentity: a non-object input or a bad identity id is INPUT_INVALID on identityId', async () => {
    const w = configured()
    const notAnObject = Object.assign(() => undefined, { identityId: 'ai-admin' })
    for (const input of [null, 'ai-admin', notAnObject, { identityId: '' }, { identityId: 7 }, { identityId: 'i'.repeat(LIMITS.id + 1) }]) {
      const error = expectCode(await direct(w).refreshIdentity(input as never), 'INPUT_INVALID')
      expect(error.details).toEqual({ field: 'identityId' })
      expect(error.redirect).toBe('authSettings')
    }
    const long = expectCode(await direct(w).refreshIdentity({ identityId: 'i'.repeat(LIMITS.id) }), 'INPUT_INVALID')
    expect(long.details).toEqual({ field: 'identityId', reason: 'identity-not-found' })
  })
})

describe('disableProvider: edges', () => {
  it('a provider row whose key is no longer registered is disabled; its audit entry carries the default redaction', async () => {
    const w = configured({}, 'retired')
    expect((await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') }))._unsafeUnwrap()).toEqual({
      kind: 'providerDisabled',
      unlinkMailsQueued: true,
    })
    const snap = w.storage.snapshot()
    expect(snap.providers).toEqual([])
    expect(snap.audit.find((a) => a.event === 'sso.disable')?.data).toMatchObject({
      config: { clientId: 'c', clientSecret: REDACTED },
    })
  })

  it('a session without an address is audited with a null ip', async () => {
    const w = configured()
    await w.sso.disableProvider({ organizationId: 'org-1', session: { id: 'sess-x', userId: 'admin' } })
    const entry = w.storage.snapshot().audit.find((a) => a.event === 'sso.disable')
    expect(entry?.actorUserId).toBe('admin')
    expect(entry?.ip).toBeNull()
  })

  it("drops the engine's copy of the organization: a login started after it finds no provider", async () => {
    const w = configured({ configCacheMs: 60_000 })
    expect((await startLogin(w, 'sess-a'))._unsafeUnwrap().kind).toBe('render')
    expect((await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') })).isOk()).toBe(true)
    expectCode(await startLogin(w, 'sess-b'), 'PROVIDER_NOT_CONFIGURED')
  })

  it('a failed write is STORAGE_UNAVAILABLE to the settings page, nothing written', async () => {
    const w = configured()
    const before = dataOf(w.storage.snapshot())
    const spy = vi.spyOn(w.storage, 'transaction').mockRejectedValueOnce(new Error('connection reset (injected)'))
    const error = expectCode(await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') }), 'STORAGE_UNAVAILABLE')
    spy.mockRestore()
    expect(error.redirect).toBe('authSettings')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })
})

describe('resendLinkRequests and updateSettings: edges', () => {
  it('resend: a failed write is STORAGE_UNAVAILABLE to the settings page; an org without SSO is PROVIDER_NOT_CONFIGURED there', async () => {
    const w = configured()
    const spy = vi.spyOn(w.storage, 'transaction').mockRejectedValueOnce(new Error('connection reset (injected)'))
    const error = expectCode(await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') }), 'STORAGE_UNAVAILABLE')
    spy.mockRestore()
    expect(error.redirect).toBe('authSettings')
    const none = expectCode(
      await w.sso.resendLinkRequests({ organizationId: 'org-2', session: session('admin2') }),
      'PROVIDER_NOT_CONFIGURED',
    )
    expect(none.redirect).toBe('authSettings')
    expect(w.storage.snapshot().pendingWork).toEqual([])
  })

  it('settings: each field of the patch is applied, and the audit entry names the actor and a null ip', async () => {
    const w = configured()
    const result = await w.sso.updateSettings({
      organizationId: 'org-1',
      session: { id: 'sess-x', userId: 'admin' },
      settings: { requireSso: true, scimEnabled: true, defaultRole: 'manager' },
    })
    expect(result._unsafeUnwrap().kind).toBe('settingsUpdated')
    expect(result._unsafeUnwrap().changed).toEqual(['scimEnabled', 'defaultRole'])
    expect(w.storage.snapshot().providers[0]).toMatchObject({ scimEnabled: true })
    expect(w.storage.snapshot().organizations.find((o) => o.id === 'org-1')?.defaultRole).toBe('manager')
    const entry = w.storage.snapshot().audit.find((a) => a.event === 'sso.edit')
    expect(entry).toMatchObject({ actorUserId: 'admin', ip: null })
  })

  it("settings: drops the engine's copy of the organization, so the next login reads the new row", async () => {
    const w = configured({ configCacheMs: 60_000 })
    expect((await startLogin(w, 'sess-a'))._unsafeUnwrap().kind).toBe('render')
    const readsBefore = vi.spyOn(w.storage, 'getOrganizationWithProvider')
    expect(
      (await w.sso.updateSettings({ organizationId: 'org-1', session: session('admin'), settings: { scimEnabled: true } })).isOk(),
    ).toBe(true)
    expect((await startLogin(w, 'sess-b'))._unsafeUnwrap().kind).toBe('render')
    expect(readsBefore).toHaveBeenCalledWith('org-1')
    readsBefore.mockRestore()
  })
})

describe('the provider row lock each call takes (the memory store serializes; SQL stores lock)', () => {
  /** Records the transaction's provider and identity locks at the port. */
  function recordLocks(w: World): string[] {
    const locks: string[] = []
    const realTransaction = w.storage.transaction.bind(w.storage)
    vi.spyOn(w.storage, 'transaction').mockImplementation((fn) =>
      realTransaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop, receiver) {
              const value = Reflect.get(target, prop, receiver)
              if (prop !== 'lockAuthProvider' && prop !== 'lockIdentity') return value
              return (...args: unknown[]) => {
                locks.push(`${prop}(${args.map((a) => JSON.stringify(a)).join(', ')})`)
                return (value as (...a: unknown[]) => unknown).apply(target, args)
              }
            },
          }),
        ),
      ),
    )
    return locks
  }

  it('disable and settings hold the provider row exclusively; resend shares it; refresh locks the identity under its provider', async () => {
    const w = configured()
    const locks = recordLocks(w)
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: session('admin') })
    await w.sso.updateSettings({ organizationId: 'org-1', session: session('admin'), settings: { scimEnabled: true } })
    await w.sso.refreshIdentity({ identityId: 'ai-admin' })
    await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') })
    expect(locks).toEqual([
      'lockAuthProvider("org-1", "share")',
      'lockAuthProvider("org-1", "update")',
      'lockIdentity("ap-1", "ext-admin")',
      'lockAuthProvider("org-1", "update")',
    ])
  })
})

describe('refreshIdentity: edges', () => {
  function refreshing(
    check: (identity: AuthIdentity, w: World) => Promise<RefreshResult>,
    extra: Partial<Provider> = {},
    adminData: Record<string, number> = {},
  ) {
    let world: World | null = null
    const calls: AuthIdentity[] = []
    const corp: Provider = {
      ...dummyProvider({ key: 'corp', displayName: 'Corp' }),
      refreshIdentity: async (identity) => {
        calls.push(identity)
        if (!world) throw new Error('no world')
        return check(identity, world)
      },
      ...extra,
    }
    world = configured({ providers: { corp } }, 'corp', adminData)
    return { w: world, calls }
  }
  const ok = async (): Promise<RefreshResult> => ({ kind: 'ok', data: { fresh: true } })

  it('a provider whose key is no longer registered is PROVIDER_UNKNOWN; one without the refresh hook is INPUT_INVALID', async () => {
    const gone = configured({}, 'retired')
    const before = dataOf(gone.storage.snapshot())
    expect(expectCode(await gone.sso.refreshIdentity({ identityId: 'ai-admin' }), 'PROVIDER_UNKNOWN').redirect).toBe('authSettings')
    expect(dataOf(gone.storage.snapshot())).toEqual(before)
    const { refreshIdentity: _none, ...plain } = dummyProvider({ key: 'corp' })
    const w = configured({ providers: { corp: plain } })
    const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-admin' }), 'INPUT_INVALID')
    expect(error.details).toEqual({ field: 'identityId', reason: 'refresh-not-supported' })
  })

  it('the identity of a provider row that is gone is PROVIDER_NOT_CONFIGURED', async () => {
    const { w, calls } = refreshing(ok)
    w.storage.seed({ identities: [makeIdentity({ id: 'ai-orphan', authProviderId: 'ap-gone', userId: 'plain', ident: 'ext-plain' })] })
    expect(expectCode(await w.sso.refreshIdentity({ identityId: 'ai-orphan' }), 'PROVIDER_NOT_CONFIGURED').redirect).toBe('authSettings')
    expect(calls).toEqual([])
  })

  it('a failed read (identity, provider row or membership) is STORAGE_UNAVAILABLE to the settings page; the IdP is not asked', async () => {
    for (const method of ['getIdentityById', 'getAuthProviderById', 'getMember'] as const) {
      const { w, calls } = refreshing(ok)
      const before = dataOf(w.storage.snapshot())
      const spy = vi.spyOn(w.storage, method).mockRejectedValueOnce(new Error(`${method} failed (injected)`))
      const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-admin' }), 'STORAGE_UNAVAILABLE')
      spy.mockRestore()
      expect(error.redirect, method).toBe('authSettings')
      expect(calls, method).toEqual([])
      expect(dataOf(w.storage.snapshot())).toEqual(before)
    }
  })

  it('a throwing check is an error check named for it; the member is marked invalid', async () => {
    const { w } = refreshing(async () => {
      throw new Error('IdP down')
    })
    expect((await w.sso.refreshIdentity({ identityId: 'ai-admin' }))._unsafeUnwrap()).toEqual({
      kind: 'error',
      reason: 'provider check threw',
    })
    expect(w.storage.snapshot().members.find((m) => m.id === 'm-admin')?.flags.ssoInvalid).toBe(true)
  })

  it('the IdP is not asked about an identity whose user is no longer a member', async () => {
    const { w, calls } = refreshing(ok)
    await w.storage.transaction((tx) => tx.deleteMember('m-manager'))
    expect((await w.sso.refreshIdentity({ identityId: 'ai-manager' }))._unsafeUnwrap()).toEqual({ kind: 'identityDeleted' })
    expect(calls).toEqual([])
  })

  it("the IdP's data is stored as it is without updateIdentity, and when updateIdentity throws", async () => {
    for (const extra of [
      {},
      {
        updateIdentity: () => {
          throw new Error('merge bug')
        },
      },
    ] as Partial<Provider>[]) {
      const { w, calls } = refreshing(ok, extra, { old: 1 })
      expect((await w.sso.refreshIdentity({ identityId: 'ai-admin' }))._unsafeUnwrap()).toEqual({ kind: 'valid' })
      expect(calls).toHaveLength(1)
      expect(w.storage.snapshot().identities.find((i) => i.id === 'ai-admin')?.data).toEqual({ fresh: true })
    }
  })

  it("updateIdentity's merge of the IdP's data over the stored data is what is stored", async () => {
    const { w } = refreshing(ok, { updateIdentity: (next, current) => ({ ...current, ...next, merged: true }) }, { old: 1 })
    await w.sso.refreshIdentity({ identityId: 'ai-admin' })
    expect(w.storage.snapshot().identities.find((i) => i.id === 'ai-admin')?.data).toEqual({ old: 1, fresh: true, merged: true })
  })

  it('data over the limits is an error check: the member is marked invalid and the data kept', async () => {
    const { w } = refreshing(async () => ({ kind: 'ok', data: { blob: 'x'.repeat(LIMITS.dataBytes + 1) } }))
    const outcome = (await w.sso.refreshIdentity({ identityId: 'ai-admin' }))._unsafeUnwrap()
    expect(outcome).toEqual({ kind: 'error', reason: 'provider data too large' })
    const snap = w.storage.snapshot()
    expect(snap.members.find((m) => m.id === 'm-admin')?.flags.ssoInvalid).toBe(true)
    expect(snap.identities.find((i) => i.id === 'ai-admin')?.data).toEqual({})
  })

  it('a disable while the IdP is asked: PROVIDER_NOT_CONFIGURED, nothing re-linked', async () => {
    const { w } = refreshing(async (_identity, world) => {
      expect((await world.sso.disableProvider({ organizationId: 'org-1', session: session('admin') })).isOk()).toBe(true)
      return { kind: 'ok', data: {} }
    })
    const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-manager' }), 'PROVIDER_NOT_CONFIGURED')
    expect(error.redirect).toBe('authSettings')
    const snap = w.storage.snapshot()
    expect(snap.identities).toEqual([])
    expect(snap.members.find((m) => m.id === 'm-manager')?.flags.ssoLinked).toBe(false)
  })

  it('the identity moved to another user while the IdP is asked: STORAGE_CONFLICT identity-changed, nothing written', async () => {
    const { w } = refreshing(async (identity, world) => {
      await world.storage.transaction(async (tx) => {
        await tx.deleteIdentity(identity.id)
        await tx.createIdentity(makeIdentity({ ...identity, userId: 'plain' }))
      })
      return { kind: 'ok', data: { fresh: true } }
    })
    w.clock.advance(1000)
    const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-manager' }), 'STORAGE_CONFLICT')
    expect(error.details).toEqual({ reason: 'identity-changed' })
    expect(error.redirect).toBe('authSettings')
    expect(w.storage.snapshot().identities.find((i) => i.id === 'ai-manager')).toMatchObject({ userId: 'plain', data: {} })
  })

  it('the identity deleted, or moved to another provider row, while the IdP is asked: identity-changed', async () => {
    for (const change of ['delete', 'provider'] as const) {
      const { w } = refreshing(async (identity, world) => {
        await world.storage.transaction(async (tx) => {
          await tx.deleteIdentity(identity.id)
          if (change === 'provider') await tx.createIdentity(makeIdentity({ ...identity, authProviderId: 'ap-other' }))
        })
        return { kind: 'ok', data: {} }
      })
      const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-manager' }), 'STORAGE_CONFLICT')
      expect(error.details, change).toEqual({ reason: 'identity-changed' })
    }
  })

  it('a membership that appears after the read: STORAGE_CONFLICT membership-changed, the identity kept', async () => {
    const { w } = refreshing(ok)
    await w.storage.transaction((tx) => tx.deleteMember('m-manager'))
    const getMember = w.storage.getMember.bind(w.storage)
    const spy = vi.spyOn(w.storage, 'getMember').mockImplementationOnce(async (org, user) => {
      const found = await getMember(org, user)
      await w.storage.transaction((tx) => tx.createMember(makeMember({ id: 'm-manager-2', organizationId: 'org-1', userId: 'manager' })))
      return found
    })
    const error = expectCode(await w.sso.refreshIdentity({ identityId: 'ai-manager' }), 'STORAGE_CONFLICT')
    spy.mockRestore()
    expect(error.details).toEqual({ reason: 'membership-changed' })
    expect(
      w.storage
        .snapshot()
        .identities.map((i) => i.id)
        .sort(),
    ).toEqual(['ai-admin', 'ai-manager'])
  })
})

describe('disableProvider and a login in flight', () => {
  it('a login page that was opened before a disable does not finish after it', async () => {
    const w = configured({ configCacheMs: 60_000 })
    const sess = session('manager', 'sess-m')
    const begun = (await w.sso.beginLogin({ organizationId: 'org-1', session: sess }))._unsafeUnwrap()
    if (begun.kind !== 'render') throw new Error('expected the form')
    expect((await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') })).isOk()).toBe(true)
    const done = await w.sso.advance({
      handle: begun.handle,
      request: POST_FORM({ id: 'ext-manager', email: 'manager@example.com' }),
      session: sess,
    })
    expect(done.isErr()).toBe(true)
    expect(w.storage.snapshot().identities).toEqual([])
  })
})
