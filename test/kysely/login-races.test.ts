/**
 * The login hot path's guarantees under real concurrency, on PostgreSQL (DATABASE_URL) and
 * MySQL/MariaDB (MYSQL_URL), each race forced by a barrier: every caller's login transaction has
 * made its first read before any of them goes on (the interleaving a lost update needs).
 *
 * - concurrent logins of ONE identity whose data changes: every login's data survives (no lost
 *   update: the refresh is decided under the identity lock, on data read after it);
 * - concurrent finishes of ONE state: exactly one final decision, the state settled once, inside
 *   the winning transaction; the losers write nothing.
 *
 * PGlite and SQLite run one transaction at a time (a barrier inside one would wait forever): the
 * same races run there unforced in test/kysely/engine.test.ts and test/login/concurrency.test.ts.
 */

import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipelineOptions, SessionInfo } from '../../src/engine/types.js'
import type { JsonObject } from '../../src/model/identity.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { StoragePort, StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { decodeState } from '../../src/state/codec.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, makeIdentity, makeMember, makeUser } from '../../src/testing/index.js'
import { freshStorage, openMysql, openPostgres, reportSkip, type TestDatabase, uniqueName } from '../helpers/databases.js'
import { ORG, PROVIDER, stepsDone, urls } from '../helpers/engine-suite.js'

const TARGETS = [
  { name: 'postgres', open: () => openPostgres({ max: 8 }), enabled: Boolean(process.env.DATABASE_URL), variable: 'DATABASE_URL' },
  { name: 'mysql', open: () => openMysql({ connectionLimit: 8 }), enabled: Boolean(process.env.MYSQL_URL), variable: 'MYSQL_URL' },
] as const

const USER = makeUser({ id: 'u1', email: 'user@corp.example' })
const CALLERS = 4

/** A provider whose identity data accumulates: `seen` is the union of every login's `seen`. */
function accumulatingProvider() {
  const base = dummyProvider()
  return {
    ...base,
    updateIdentity(next: JsonObject, current: JsonObject): JsonObject {
      const seen = new Set<string>([...((current.seen as string[] | undefined) ?? []), ...((next.seen as string[] | undefined) ?? [])])
      return { seen: [...seen].sort() }
    },
  }
}

/** A login's kind, or its error code with the cause a failure carries (what CI prints). */
function outcome(r: Awaited<ReturnType<ReturnType<typeof createAuthPipeline>['finishLogin']>>): string {
  if (r.isOk()) return r.value.kind
  const cause = r.error.cause instanceof Error ? ` (cause: ${r.error.cause.message})` : ''
  return `${r.error.code}: ${r.error.message}${cause}`
}

/**
 * `count` parties meet; each waits until all arrived. A party that never comes makes the others
 * fail after `ms` (a barrier that deadlocks the database would otherwise hang the test).
 */
function barrier(count: number, ms = 20_000) {
  let arrived = 0
  let open: () => void = () => {}
  const all = new Promise<void>((resolve) => {
    open = resolve
  })
  return {
    get arrived() {
      return arrived
    },
    async wait(): Promise<void> {
      arrived++
      if (arrived >= count) open()
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`barrier: ${arrived} of ${count} arrived`)), ms)
      })
      try {
        await Promise.race([all, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
  }
}

/**
 * `storage` whose transactions hand `fn` the transaction with the members `wrap` returns in place
 * of its own (the rest inherited, the state and token stores kept).
 */
function wrapTransactions(storage: StoragePort, wrap: (tx: StorageTx) => Partial<StorageTx>): StoragePort {
  const transaction: StoragePort['transaction'] = (fn) =>
    storage.transaction((tx) => {
      const wrapped: StorageTx = Object.create(tx) as StorageTx
      Object.assign(wrapped, wrap(tx), { pipelineStates: tx.pipelineStates, oneTimeTokens: tx.oneTimeTokens })
      return fn(wrapped)
    })
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'transaction') return transaction
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** The pipeline options every race uses, on `storage`. */
function raceOptions(storage: StoragePort, clock: AuthPipelineOptions['clock']): AuthPipelineOptions {
  return {
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { dummy: accumulatingProvider() },
    secret: 'login races test secret, thirty-two bytes or more',
    urls,
    clock,
  }
}

/**
 * The storage, with every login transaction stopped at the barrier right after its first read
 * (the lock-free provider + identity read): all callers have read before any decides.
 */
function withBarrier(storage: StoragePort, gate: ReturnType<typeof barrier>, guarded: boolean[] = []): StoragePort {
  return wrapTransactions(storage, (tx) => {
    const read = tx.readLinkedIdentity?.bind(tx)
    const refresh = tx.updateIdentityIfUnchanged?.bind(tx)
    let first = true
    return {
      readLinkedIdentity: read
        ? async (p: string, ident: string, org: string) => {
            const out = await read(p, ident, org)
            if (first) {
              first = false
              await gate.wait()
            }
            return out
          }
        : undefined,
      // Records each guarded refresh's answer (true: written without the identity lock).
      updateIdentityIfUnchanged: refresh
        ? async (...args: Parameters<typeof refresh>) => {
            const written = await refresh(...args)
            guarded.push(written)
            return written
          }
        : undefined,
    }
  })
}

/** The one linked user every race starts from: identity due for its refresh (epoch), so every login rewrites it. */
async function seedLinkedUser(storage: Awaited<ReturnType<typeof freshStorage>>['storage']): Promise<void> {
  await storage.seed({
    organizations: [ORG],
    providers: [PROVIDER],
    users: [USER],
    identities: [makeIdentity({ id: 'i1', authProviderId: PROVIDER.id, userId: USER.id, ident: 'ext-1', data: { seen: ['seed'] } })],
    members: [makeMember({ id: 'm1', organizationId: ORG.id, userId: USER.id, flags: { ...NO_FLAGS, ssoLinked: true } })],
  })
}

for (const target of TARGETS) {
  if (!target.enabled) reportSkip(`login races (${target.name})`, target.variable)
  describe.skipIf(!target.enabled)(`login races on kysely/${target.name}, forced by a barrier`, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    async function setup() {
      const clock = fixedClock('2026-03-01T12:00:00.000Z')
      const fresh = await freshStorage(database, { clock })
      await seedLinkedUser(fresh.storage)
      const gate = barrier(CALLERS)
      const guarded: boolean[] = []
      const options = raceOptions(withBarrier(fresh.storage, gate, guarded), clock)
      return { ...fresh, gate, guarded, options, sso: createAuthPipeline(options) }
    }

    it(`${CALLERS} concurrent logins of one identity, each with new data: no update is lost`, async () => {
      const w = await setup()
      try {
        const sessions = Array.from({ length: CALLERS }, (_, i): SessionInfo => ({ id: `race-${i}` }))
        const handles = []
        for (const session of sessions) handles.push(await stepsDone(w.options, session))
        const results = await Promise.all(
          handles.map((handle, i) =>
            w.sso.finishLogin({
              handle,
              session: sessions[i] as SessionInfo,
              identity: { id: 'ext-1', email: USER.email, data: { seen: [`login-${i}`] } },
            }),
          ),
        )
        // Every caller reached the barrier: the race really happened.
        expect(w.gate.arrived).toBe(CALLERS)
        for (const r of results) expect(outcome(r)).toBe('signedIn')
        const snap = await w.storage.snapshot()
        // Each login merged its data into what the previous one wrote.
        expect(snap.identities).toHaveLength(1)
        expect(snap.identities[0]?.data).toEqual({ seen: ['login-0', 'login-1', 'login-2', 'login-3', 'seed'] })
        // What must not change: no other row.
        expect(snap.users).toHaveLength(1)
        expect(snap.members).toHaveLength(1)
      } finally {
        await w.drop()
      }
    })

    it(`${CALLERS} concurrent refreshes of one identity: one guarded write wins without the lock, the others decide again under it`, async () => {
      const w = await setup()
      try {
        const sessions = Array.from({ length: CALLERS }, (_, i): SessionInfo => ({ id: `refresh-${i}` }))
        const handles = []
        for (const session of sessions) handles.push(await stepsDone(w.options, session))
        const before = await w.storage.snapshot()
        const results = await Promise.all(
          handles.map((handle, i) =>
            w.sso.finishLogin({
              handle,
              session: sessions[i] as SessionInfo,
              identity: { id: 'ext-1', email: USER.email, data: { seen: [`refresh-${i}`] } },
            }),
          ),
        )
        expect(w.gate.arrived).toBe(CALLERS)
        for (const r of results) expect(outcome(r)).toBe('signedIn')
        // Every caller read the same row before any wrote: the first guarded write wins, the
        // others find the row changed (after waiting for the winner's commit), write nothing
        // there, and decide again under the identity lock on the committed row.
        expect(w.guarded.filter((g) => g)).toHaveLength(1)
        expect(w.guarded.filter((g) => !g)).toHaveLength(CALLERS - 1)
        const snap = await w.storage.snapshot()
        expect(snap.identities).toHaveLength(1)
        expect(snap.identities[0]?.data).toEqual({ seen: ['refresh-0', 'refresh-1', 'refresh-2', 'refresh-3', 'seed'] })
        expect(snap.identities[0]?.lastVerified).toEqual(new Date('2026-03-01T12:00:00.000Z'))
        expect(snap.users).toEqual(before.users)
        expect(snap.members).toEqual(before.members)
      } finally {
        await w.drop()
      }
    })

    it(`${CALLERS} concurrent finishes of one state: one final decision, the state settled once`, async () => {
      const w = await setup()
      try {
        const session: SessionInfo = { id: 'one-state' }
        const handle = await stepsDone(w.options, session)
        const before = await w.storage.snapshot()
        const results = await Promise.all(
          Array.from({ length: CALLERS }, () =>
            w.sso.finishLogin({ handle, session, identity: { id: 'ext-1', email: USER.email, data: { seen: ['x'] } } }),
          ),
        )
        expect(w.gate.arrived).toBe(CALLERS)
        const oks = results.filter((r) => r.isOk())
        expect(oks).toHaveLength(1)
        expect(oks[0]?._unsafeUnwrap().kind).toBe('signedIn')
        for (const r of results) if (r.isErr()) expect(r.error.code).toBe('STATE_CONFLICT')
        const snap = await w.storage.snapshot()
        // The state was written once (consumed), in the winning transaction.
        const state = snap.pipelineStates.find((st) => before.pipelineStates.some((b) => b.id === st.id))
        const beforeState = before.pipelineStates.find((b) => b.id === state?.id)
        expect(state?.version).toBe((beforeState?.version ?? 0) + 1)
        const decoded = decodeState(state?.body ?? '')._unsafeUnwrap()
        expect(decoded.phase).toBe('consumed')
        // One refresh of the identity, none from the losers; nothing else written.
        expect(snap.identities[0]?.data).toEqual({ seen: ['seed', 'x'] })
        expect(snap.users).toEqual(before.users)
        expect(snap.members).toEqual(before.members)
        expect(snap.audit).toEqual(before.audit)
      } finally {
        await w.drop()
      }
    })
  })
}

/** Resolves when `check` returns true (polled every 20 ms), else fails after `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A promise with its resolver, for stepping transactions by hand. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire: () => void = () => {}
  const promise = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { promise, fire }
}

/**
 * The interleaving that deadlocked a returning login on PostgreSQL (CI, stop 22): a guarded
 * refresh that waited for another login's commit re-checks the new row version under a row lock
 * (PostgreSQL's EvalPlanQual) and keeps that lock though it wrote nothing; a login whose guarded
 * refresh failed at once (no lock) takes the identity lock and waits for that row. If the first
 * then waited for the identity lock, the two would wait for each other. A failed guarded refresh
 * rolls its transaction back (the row lock with it) and decides again under the identity lock.
 * PostgreSQL only: MariaDB's read-committed UPDATE does not keep the lock of a row it did not
 * change, and the interleaving is read off pg_stat_activity.
 */
if (!process.env.DATABASE_URL) reportSkip('login races stepped by hand (postgres)', 'DATABASE_URL')
describe.skipIf(!process.env.DATABASE_URL)('login races on kysely/postgres, stepped by hand', () => {
  const applicationName = uniqueName('races_')
  let database: TestDatabase
  beforeAll(async () => {
    database = await openPostgres({ max: 8, applicationName })
  })
  afterAll(async () => {
    await database?.close()
  })

  /** Backends of this suite's pool waiting for a lock (row, transaction or advisory). */
  async function lockWaiters(): Promise<number> {
    const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
      where application_name = ${applicationName} and wait_event_type = 'Lock'`.execute(database.db)
    return Number(rows[0]?.n ?? 0)
  }

  it('a guarded refresh that lost after waiting releases its row lock before it waits for the identity lock', async () => {
    const clock = fixedClock('2026-03-01T12:00:00.000Z')
    const fresh = await freshStorage(database, { clock })
    try {
      await seedLinkedUser(fresh.storage)
      // Roles by order of arrival at the guarded refresh: W wins it, Y waits for W's commit, X
      // comes after W committed. Each waits for its go; W and Y are then held after it.
      const arrivedAt = [signal(), signal(), signal()]
      const go = [signal(), signal(), signal()]
      const returned = [signal(), signal(), signal()]
      const release = [signal(), signal(), signal()]
      const answers: boolean[] = []
      let arrivals = 0
      const storage = fresh.storage
      const wrapped = wrapTransactions(storage, (tx) => {
        const refresh = tx.updateIdentityIfUnchanged?.bind(tx)
        return {
          updateIdentityIfUnchanged: refresh
            ? async (...args: Parameters<typeof refresh>) => {
                const role = arrivals++
                if (role > 2) return refresh(...args)
                arrivedAt[role]?.fire()
                await go[role]?.promise
                const written = await refresh(...args)
                answers[role] = written
                returned[role]?.fire()
                if (role < 2) await release[role]?.promise
                return written
              }
            : undefined,
        }
      })
      const options = raceOptions(wrapped, clock)
      const sso = createAuthPipeline(options)
      const sessions = ['w', 'y', 'x'].map((id): SessionInfo => ({ id: `stepped-${id}` }))
      const handles: string[] = []
      for (const session of sessions) handles.push(await stepsDone(options, session))
      const logins = handles.map((handle, i) =>
        sso.finishLogin({
          handle,
          session: sessions[i] as SessionInfo,
          identity: { id: 'ext-1', email: USER.email, data: { seen: [`login-${i}`] } },
        }),
      )
      await Promise.all(arrivedAt.map((a) => a.promise))
      // W writes and holds its transaction open; Y's guarded update waits for W's row lock.
      go[0]?.fire()
      await returned[0]?.promise
      go[1]?.fire()
      await until('Y waiting for the row', async () => (await lockWaiters()) === 1)
      // W commits: Y re-checks the new row version, finds it changed, and holds it locked.
      release[0]?.fire()
      await returned[1]?.promise
      // X's guarded update fails at once; X decides under the identity lock and waits for Y's row.
      go[2]?.fire()
      await returned[2]?.promise
      await until('X waiting for the row Y holds', async () => (await lockWaiters()) === 1)
      release[1]?.fire()
      const results = await Promise.all(logins)
      expect(answers).toEqual([true, false, false])
      for (const r of results) expect(outcome(r)).toBe('signedIn')
      const snap = await storage.snapshot()
      expect(snap.identities).toHaveLength(1)
      expect(snap.identities[0]?.data).toEqual({ seen: ['login-0', 'login-1', 'login-2', 'seed'] })
      expect(snap.users).toHaveLength(1)
      expect(snap.members).toHaveLength(1)
    } finally {
      await fresh.drop()
    }
  })
})
