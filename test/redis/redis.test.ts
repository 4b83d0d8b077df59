/**
 * `ssoflow/redis` against the Redis at REDIS_URL (skipped, visibly, when unset). Every run uses
 * its own key prefix and deletes its keys at the end.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { StorageConflictError, type StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRedisStateStore, type RedisLike } from '../../src/redis/index.js'
import {
  type ContractStorage,
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  makeOrganization,
  makeProvider,
  registerSuite,
  storageContract,
} from '../../src/testing/index.js'

const REDIS_URL = process.env.REDIS_URL ?? ''
if (!REDIS_URL) console.warn('[ssoflow] redis tests SKIPPED: REDIS_URL is not set (CI sets it; e.g. REDIS_URL=redis://127.0.0.1:6379)')

describe.skipIf(!REDIS_URL)('ssoflow/redis', () => {
  const runPrefix = `ssoflow-test:${randomBytes(6).toString('hex')}:`
  let redis: Redis
  let other: Redis
  let caseNo = 0
  beforeAll(() => {
    redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 })
    other = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 })
  })
  afterAll(async () => {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
    expect(await redis.keys(`${runPrefix}*`)).toEqual([])
    redis.disconnect()
    other.disconnect()
  })
  const newPrefix = () => `${runPrefix}${++caseNo}:`

  // The shared contract's pipeline-state and one-time-token cases, with Redis as the state store
  // (the rest of the StoragePort is the memory adapter, which these cases do not touch).
  const clock = fixedClock()
  const suite = storageContract({
    name: 'redis state store',
    clock,
    createStorage(): ContractStorage {
      const memory = createMemoryStorage({ clock })
      const memoryTransaction = memory.transaction.bind(memory)
      const { pipelineStates, oneTimeTokens } = createRedisStateStore(redis, { prefix: newPrefix(), clock })
      return Object.assign(memory, {
        pipelineStates,
        oneTimeTokens,
        // The tokens and states are Redis's, not the memory store's: its transactions must not
        // offer theirs.
        transaction: <T>(fn: (tx: StorageTx) => Promise<T>) =>
          memoryTransaction((tx) => fn({ ...tx, oneTimeTokens: undefined, pipelineStates: undefined })),
        seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => memory.seed(data),
      })
    },
  })
  const stateCases = suite.cases.filter((c) => /pipeline state|one-time token|pipeline_state\.id/.test(c.name))
  it('the contract has pipeline-state and token cases to reuse', () => {
    expect(stateCases.length).toBeGreaterThanOrEqual(6)
  })
  registerSuite({ name: 'contract cases', cases: stateCases }, { describe, it })

  it('sets a native TTL equal to the time left (relative to the injected clock)', async () => {
    const prefix = newPrefix()
    const c = fixedClock('2020-01-01T00:00:00.000Z')
    const store = createRedisStateStore(redis, { prefix, clock: c })
    await store.pipelineStates.create({ id: 's', version: 1, body: 'b', expiresAt: new Date(c.now().getTime() + 60_000) })
    const pttl = await redis.pttl(`${prefix}ps:s`)
    expect(pttl).toBeGreaterThan(50_000)
    expect(pttl).toBeLessThanOrEqual(60_000)
    await store.oneTimeTokens.create({ hash: 'h', purpose: 'verify', payload: '{}', expiresAt: new Date(c.now().getTime() + 10_000) })
    const tokenTtl = await redis.pttl(`${prefix}ott:h`)
    expect(tokenTtl).toBeGreaterThan(5_000)
    expect(tokenTtl).toBeLessThanOrEqual(10_000)
    // A CAS refreshes the TTL to the new expiry.
    expect(
      await store.pipelineStates.compareAndSet('s', 1, {
        id: 's',
        version: 2,
        body: 'b2',
        expiresAt: new Date(c.now().getTime() + 120_000),
      }),
    ).toBe(true)
    expect(await redis.pttl(`${prefix}ps:s`)).toBeGreaterThan(100_000)
    // Redis really expires the key.
    await store.pipelineStates.create({ id: 'short', version: 1, body: 'b', expiresAt: new Date(c.now().getTime() + 30) })
    await new Promise((r) => setTimeout(r, 80))
    expect(await redis.exists(`${prefix}ps:short`)).toBe(0)
  })

  it('create conflicts on an existing id or hash and leaves the first value', async () => {
    const store = createRedisStateStore(redis, { prefix: newPrefix(), clock })
    const expiresAt = new Date(clock.now().getTime() + 60_000)
    await store.pipelineStates.create({ id: 's', version: 1, body: 'first', expiresAt })
    await expect(store.pipelineStates.create({ id: 's', version: 1, body: 'second', expiresAt })).rejects.toBeInstanceOf(
      StorageConflictError,
    )
    expect((await store.pipelineStates.load('s'))?.body).toBe('first')
    await store.oneTimeTokens.create({ hash: 'h', purpose: 'p', payload: 'first', expiresAt })
    await expect(store.oneTimeTokens.create({ hash: 'h', purpose: 'p', payload: 'second', expiresAt })).rejects.toMatchObject({
      constraint: 'one_time_token.hash',
    })
    expect((await store.oneTimeTokens.peek('h', 'p', clock.now()))?.payload).toBe('first')
  })

  it('50 concurrent CAS / consumes over two connections: exactly one wins', async () => {
    const prefix = newPrefix()
    const a = createRedisStateStore(redis, { prefix, clock })
    const b = createRedisStateStore(other, { prefix, clock })
    const expiresAt = new Date(clock.now().getTime() + 60_000)
    await a.pipelineStates.create({ id: 's', version: 1, body: 'v1', expiresAt })
    const swaps = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? a : b).pipelineStates.compareAndSet('s', 1, { id: 's', version: 2, body: `winner-${i}`, expiresAt }),
      ),
    )
    expect(swaps.filter(Boolean)).toHaveLength(1)
    const winner = swaps.indexOf(true)
    expect(await a.pipelineStates.load('s')).toEqual({ id: 's', version: 2, body: `winner-${winner}`, expiresAt })
    await a.oneTimeTokens.create({ hash: 't', purpose: 'verify', payload: 'once', expiresAt })
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).oneTimeTokens.consume('t', 'verify', clock.now())))
    expect(got.filter((r) => r !== null)).toEqual([{ hash: 't', purpose: 'verify', payload: 'once', expiresAt }])
    expect(await redis.exists(`${prefix}ott:t`)).toBe(0)
  })

  it('prefixes isolate stores; deleteExpired only sweeps its own expired states (glob characters escaped)', async () => {
    const base = newPrefix()
    const c = fixedClock()
    const one = createRedisStateStore(redis, { prefix: `${base}a*[x]?:`, clock: c })
    const two = createRedisStateStore(redis, { prefix: `${base}a`, clock: c })
    // Redis expires keys on its own clock: "soon" must outlive a slow, loaded run (30 s), while
    // the injected clock jumps past it.
    const soon = new Date(c.now().getTime() + 30_000)
    const later = new Date(c.now().getTime() + 600_000)
    await one.pipelineStates.create({ id: 'x', version: 1, body: 'one', expiresAt: soon })
    await one.pipelineStates.create({ id: 'y', version: 1, body: 'one', expiresAt: later })
    await two.pipelineStates.create({ id: 'x', version: 1, body: 'two', expiresAt: soon })
    expect((await one.pipelineStates.load('x'))?.body).toBe('one')
    expect((await two.pipelineStates.load('x'))?.body).toBe('two')
    c.advance(60_000)
    expect(await one.pipelineStates.load('x')).toBeNull()
    expect(await one.pipelineStates.deleteExpired(c.now())).toBe(1)
    expect(await redis.exists(`${base}a*[x]?:ps:y`)).toBe(1)
    expect(await redis.exists(`${base}aps:x`)).toBe(1)
    expect(await two.pipelineStates.deleteExpired(c.now())).toBe(1)
  })

  it('drives the engine: one pipeline finished 20 times concurrently yields one decision', async () => {
    const c = fixedClock('2026-03-01T12:00:00.000Z')
    const storage = createMemoryStorage({ clock: c })
    storage.seed({
      organizations: [makeOrganization({ id: 'org1', slug: 'acme' })],
      providers: [makeProvider({ id: 'ap1', organizationId: 'org1', providerKey: 'dummy' })],
    })
    const { pipelineStates, oneTimeTokens } = createRedisStateStore(redis, { prefix: newPrefix(), clock: c })
    const base = 'https://app.example.com'
    const sso = createAuthPipeline({
      storage,
      states: pipelineStates,
      tokens: oneTimeTokens,
      mailer: createRecordingMailer(),
      signals: createRecordingSignals(),
      providers: { dummy: dummyProvider() },
      secret: 'redis engine test secret, thirty-two bytes or more',
      clock: c,
      urls: {
        baseUrl: base,
        orgLogin: () => '/login/',
        authSettings: () => '/settings/',
        providerSettings: () => '/settings/provider/',
        afterLogin: () => '/home/',
        pipelineCallback: () => `${base}/auth/sso/`,
        verifyAccount: (token) => `${base}/verify/${token}/`,
      },
    })
    const session = { id: 'redis-sess' }
    const begun = (await sso.beginLogin({ organizationId: 'org1', session }))._unsafeUnwrap()
    if (!('handle' in begun) || typeof begun.handle !== 'string') throw new Error('no handle')
    const page = (
      await sso.advance({
        handle: begun.handle,
        request: { method: 'POST', query: {}, form: { id: 'ext-r', email: 'r@corp.example', email_verified: 'on' } },
        session,
      })
    )._unsafeUnwrap()
    expect(page.kind).toBe('confirmationRequired')
    const handle = begun.handle
    const results = await Promise.all(Array.from({ length: 20 }, () => sso.finishLogin({ handle, session, op: 'newuser' })))
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    for (const r of results) if (r.isErr()) expect(['STATE_CONFLICT', 'STATE_CONSUMED']).toContain(r.error.code)
    expect(storage.snapshot().users).toHaveLength(1)
    expect(storage.snapshot().pipelineStates).toEqual([])
  })

  it('works through the minimal RedisLike interface (no ioredis-specific calls)', async () => {
    const calls: string[] = []
    const minimal: RedisLike = {
      eval: (script, n, ...args) => {
        calls.push('eval')
        return redis.eval(script, n, ...args)
      },
      scan: (cursor, match, pattern, count, n) => {
        calls.push('scan')
        return redis.scan(cursor, match, pattern, count, n)
      },
    }
    const store = createRedisStateStore(minimal, { prefix: newPrefix(), clock })
    await store.pipelineStates.create({ id: 's', version: 1, body: '', expiresAt: new Date(clock.now().getTime() + 60_000) })
    expect(await store.pipelineStates.load('s')).toMatchObject({ id: 's', version: 1, body: '' })
    await store.pipelineStates.delete('s')
    expect(await store.pipelineStates.load('s')).toBeNull()
    expect(await store.pipelineStates.deleteExpired(clock.now())).toBe(0)
    expect(calls).toContain('scan')
    expect(calls.every((c) => c === 'eval' || c === 'scan')).toBe(true)
  })
})
