// policy.configCacheMs (src/engine/config-cache.ts): an engine reuses an organization's row and its
// provider row for a few seconds instead of reading them at every start and callback. These tests
// count the storage reads it saves and, above all, show that no stale copy ever decides a login:
// a provider the host removed, changed or replaced behind the engine's back is refused inside the
// login transaction (PROVIDER_MISMATCH), nothing is written, and the next request reads again.
import { describe, expect, it } from 'vitest'
import { createConfigCache } from '../../src/engine/config-cache.js'
import { createAuthPipeline } from '../../src/index.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { StoragePort } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, sequentialIds } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeProvider, makeUser, sentryStyleUrls } from '../../src/testing/fixtures.js'

const ORG = 'org1'
const anon = { id: 'sess-anon' }
const admin = { id: 'sess-admin', userId: 'admin' }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
const identityForm = (id: string) => post({ id, email: `${id}@acme.test`, email_verified: 'on', name: id })

/** Counts the calls that read an organization and its provider row. */
function counting(storage: MemoryStorage): { port: StoragePort; reads: () => number } {
  let n = 0
  const port = new Proxy(storage, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (prop === 'getOrganizationWithProvider' || prop === 'getOrganization') {
        return (...args: unknown[]) => {
          n++
          return (v as (...a: unknown[]) => unknown).apply(target, args)
        }
      }
      return typeof v === 'function' ? v.bind(target) : v
    },
  }) as StoragePort
  return { port, reads: () => n }
}

function world(configCacheMs?: number) {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage = createMemoryStorage({ clock })
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme' })],
    users: [makeUser({ id: 'admin', email: 'admin@acme.test' })],
    members: [makeMember({ id: 'm-admin', organizationId: ORG, userId: 'admin', role: 'owner' })],
    providers: [makeProvider({ id: 'ap1', organizationId: ORG, providerKey: 'dummy' })],
  })
  const { port, reads } = counting(storage)
  const sso = createAuthPipeline({
    storage: port,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 'config cache test secret, at least 32 bytes',
    clock,
    ids: sequentialIds('c'),
    urls: sentryStyleUrls('https://app.example.com'),
    policy: { newUser: 'create', ...(configCacheMs === undefined ? {} : { configCacheMs }) },
  })
  const login = async (id: string) => {
    const begun = await sso.beginLogin({ organizationId: ORG, session: anon })
    if (begun.isErr()) return begun
    return sso.advance({ handle: (begun.value as { handle: string }).handle, session: anon, request: identityForm(id) })
  }
  return { sso, storage, clock, reads, login }
}

describe('policy.configCacheMs', () => {
  it('two logins within the TTL read the org and provider once; after the TTL, again', async () => {
    const w = world()
    expect((await w.login('u1'))._unsafeUnwrap().kind).toBe('signedIn')
    expect(w.reads()).toBe(1)
    expect((await w.login('u2'))._unsafeUnwrap().kind).toBe('signedIn')
    expect(w.reads()).toBe(1)
    w.clock.advance(5001)
    expect((await w.login('u1'))._unsafeUnwrap().kind).toBe('signedIn')
    expect(w.reads()).toBe(2)
  })

  it('configCacheMs: 0 reads them at the start and at the callback of every login', async () => {
    const w = world(0)
    await w.login('u1')
    await w.login('u2')
    expect(w.reads()).toBe(4)
  })

  it('a provider the host deleted within the TTL: the callback is refused in the transaction, nothing written; the next start reads again', async () => {
    const w = world()
    await w.login('u1')
    const begun = (await w.sso.beginLogin({ organizationId: ORG, session: anon }))._unsafeUnwrap() as { handle: string }
    await w.storage.transaction((tx) => tx.deleteAuthProvider('ap1'))
    const before = w.storage.snapshot()
    const e = (await w.sso.advance({ handle: begun.handle, session: anon, request: identityForm('u9') }))._unsafeUnwrapErr()
    expect(e.code).toBe('PROVIDER_MISMATCH')
    expect(e.details).toMatchObject({ reason: 'provider-changed' })
    const after = w.storage.snapshot()
    expect(after.users).toEqual(before.users)
    expect(after.identities).toEqual(before.identities)
    expect(after.members).toEqual(before.members)
    // The copy was dropped: the next start sees the deletion at once.
    expect((await w.sso.beginLogin({ organizationId: ORG, session: anon }))._unsafeUnwrapErr().code).toBe('PROVIDER_NOT_CONFIGURED')
  })

  it('a provider the host changed within the TTL (configuration, allowUnlinked): refused once, then the new row is used', async () => {
    for (const patch of [{ config: { changed: true } }, { allowUnlinked: true }]) {
      const w = world()
      await w.login('u1')
      await w.storage.transaction((tx) => tx.updateAuthProvider('ap1', patch))
      const before = w.storage.snapshot()
      expect((await w.login('u2'))._unsafeUnwrapErr().code).toBe('PROVIDER_MISMATCH')
      expect(w.storage.snapshot().users).toEqual(before.users)
      expect((await w.login('u2'))._unsafeUnwrap().kind).toBe('signedIn')
    }
  })

  it('an org set up anew behind the engine (new provider row): a state of the new row is not judged by the old copy', async () => {
    const w = world()
    await w.login('u1')
    await w.storage.transaction(async (tx) => {
      await tx.deleteAuthProvider('ap1')
      await tx.createAuthProvider(makeProvider({ id: 'ap2', organizationId: ORG, providerKey: 'dummy' }))
    })
    // This engine's own start uses its copy (ap1): refused at the callback, then all is fresh.
    expect((await w.login('u2'))._unsafeUnwrapErr().code).toBe('PROVIDER_MISMATCH')
    const ok = await w.login('u2')
    expect(ok._unsafeUnwrap().kind).toBe('signedIn')
    expect(w.storage.snapshot().identities.find((i) => i.ident === 'u2')?.authProviderId).toBe('ap2')
  })

  it("the engine's own disable is seen at once (no wait for the TTL)", async () => {
    const w = world()
    await w.login('u1')
    const disabled = await w.sso.disableProvider({ organizationId: ORG, session: admin })
    expect(disabled.isOk()).toBe(true)
    expect((await w.sso.beginLogin({ organizationId: ORG, session: anon }))._unsafeUnwrapErr().code).toBe('PROVIDER_NOT_CONFIGURED')
  })

  it('an org without a provider is never kept: a setup is usable at once', async () => {
    const w = world()
    await w.sso.disableProvider({ organizationId: ORG, session: admin })
    expect((await w.sso.beginLogin({ organizationId: ORG, session: anon }))._unsafeUnwrapErr().code).toBe('PROVIDER_NOT_CONFIGURED')
    const step = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'dummy', session: admin }))._unsafeUnwrap() as {
      handle: string
    }
    const done = await w.sso.advance({
      handle: step.handle,
      session: admin,
      request: post({ id: 'admin-ext', email: 'admin@acme.test', email_verified: 'on' }),
    })
    expect(done._unsafeUnwrap().kind).toBe('setupComplete')
    expect((await w.login('u1'))._unsafeUnwrap().kind).toBe('signedIn')
  })

  it('is validated: an integer from 0 to one hour', () => {
    for (const bad of [-1, 1.5, 3_600_001]) {
      expect(() =>
        createAuthPipeline({
          storage: createMemoryStorage(),
          mailer: createRecordingMailer(),
          signals: createRecordingSignals(),
          providers: { dummy: dummyProvider() },
          secret: 'config cache test secret, at least 32 bytes',
          urls: sentryStyleUrls('https://app.example.com'),
          policy: { configCacheMs: bad },
        }),
      ).toThrow(/configCacheMs/)
    }
  })
})

describe('createConfigCache', () => {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const org = (id: string) => makeOrganization({ id, slug: id })

  function store(orgs: number, withProvider = true) {
    const storage = createMemoryStorage({ clock })
    storage.seed({
      organizations: Array.from({ length: orgs }, (_, i) => org(`o${i}`)),
      providers: withProvider
        ? Array.from({ length: orgs }, (_, i) => makeProvider({ id: `p${i}`, organizationId: `o${i}`, providerKey: 'dummy' }))
        : [],
    })
    return counting(storage)
  }

  it('keeps at most 1000 organizations, dropping the oldest first', async () => {
    const { port, reads } = store(1001)
    const cache = createConfigCache(port, clock, 60_000)
    for (let i = 0; i < 1001; i++) await cache.read(`o${i}`)
    expect(reads()).toBe(1001)
    await cache.read('o1000')
    await cache.read('o1')
    expect(reads()).toBe(1001)
    await cache.read('o0')
    expect(reads()).toBe(1002)
  })

  it('does not keep an absent org or an org without a provider', async () => {
    const { port, reads } = store(1, false)
    const cache = createConfigCache(port, clock, 60_000)
    expect((await cache.read('o0'))?.provider).toBeNull()
    expect(await cache.read('nope')).toBeNull()
    await cache.read('o0')
    await cache.read('nope')
    expect(reads()).toBe(4)
  })

  it('a copy that `accept` refuses is read again', async () => {
    const { port, reads } = store(1)
    const cache = createConfigCache(port, clock, 60_000)
    await cache.read('o0')
    await cache.read('o0', (v) => v.provider?.id === 'p0')
    expect(reads()).toBe(1)
    await cache.read('o0', (v) => v.provider?.id === 'other')
    expect(reads()).toBe(2)
  })

  // Issue 12 item 4, the mutation run of config-cache.ts: the copy's exact expiry, and a refused
  // copy forgotten even when the read that replaces it has nothing to keep.
  it('a copy is served before its expiry and read again at it', async () => {
    const { port, reads } = store(1)
    const local = fixedClock('2026-03-01T12:00:00.000Z')
    const cache = createConfigCache(port, local, 1000)
    await cache.read('o0')
    local.advance(999)
    await cache.read('o0')
    expect(reads()).toBe(1)
    local.advance(1)
    await cache.read('o0')
    expect(reads()).toBe(2)
  })

  it('a refused copy is forgotten even when the new read has no provider to keep', async () => {
    let provider: unknown = makeProvider({ id: 'p0', organizationId: 'o0', providerKey: 'dummy' })
    let n = 0
    const port = {
      getOrganization: async () => {
        n++
        return org('o0')
      },
      getAuthProvider: async () => provider,
    } as unknown as StoragePort
    const cache = createConfigCache(port, clock, 60_000)
    expect((await cache.read('o0'))?.provider).not.toBeNull()
    provider = null
    expect((await cache.read('o0', () => false))?.provider).toBeNull()
    // The copy with the removed provider is not served again.
    expect((await cache.read('o0'))?.provider).toBeNull()
    expect(n).toBe(3)
  })

  it('a read in flight when the org is dropped does not store what it read', async () => {
    const { port, reads } = store(1)
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => {
      release = r
    })
    const slow = new Proxy(port, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r)
        if (p === 'getOrganizationWithProvider')
          return async (...a: unknown[]) => {
            const out = await (v as (...x: unknown[]) => Promise<unknown>).apply(t, a)
            await gate
            return out
          }
        return v
      },
    }) as StoragePort
    const cache = createConfigCache(slow, clock, 60_000)
    const pending = cache.read('o0')
    cache.drop('o0')
    release()
    await pending
    await cache.read('o0')
    expect(reads()).toBe(2)
  })
})
