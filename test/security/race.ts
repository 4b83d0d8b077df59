/**
 * Race harness for the security tests: the engine over every storage the fixtures give (memory,
 * PGlite, SQLite always; PostgreSQL and MariaDB when DATABASE_URL / MYSQL_URL are set), and a
 * barrier that makes N concurrent callers reach a chosen point together, without sleeps.
 *
 * Where the barrier sits depends on the store:
 * - PostgreSQL / MariaDB run transactions in parallel: the barrier sits INSIDE the transaction
 *   (after a chosen read, or at its start), so every caller has read the same committed data
 *   before any of them writes;
 * - memory, PGlite and SQLite run one transaction at a time: a barrier inside one would wait for
 *   callers that cannot start, so it sits at the `transaction()` call instead (all callers are
 *   queued together; the store then decides in some serial order).
 */
import type { ResultAsync } from 'neverthrow'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions, HookOptions, PolicyOptions, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { StoragePort, StorageSeedData, StorageSnapshot, StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  type RecordingMailer,
  type RecordingSignals,
  sentryStyleUrls,
  validatingStorage,
} from '../../src/testing/index.js'
import {
  DATABASE_URL,
  freshStorage,
  MYSQL_URL,
  openMysql,
  openPGlite,
  openPostgres,
  openSqlite,
  type TestDatabase,
} from '../helpers/databases.js'

/** How many callers every race starts (the brief's minimum is 20). */
export const RACERS = 20

/** A store the race tests run on. */
export interface Backend {
  readonly name: 'memory' | 'pglite' | 'sqlite' | 'postgres' | 'mysql'
  readonly enabled: boolean
  readonly variable?: string
  /** True when the store runs transactions in parallel (barriers go inside them). */
  readonly parallel: boolean
  open(): Promise<Opened>
}

interface Opened {
  /** A fresh, migrated, empty store on this backend. */
  fresh(clock: FixedClock): Promise<{ storage: RaceStorage; drop(): Promise<void> }>
  close(): Promise<void>
}

/** The storage surface the tests need beyond the port. */
export type RaceStorage = StoragePort & {
  seed(data: StorageSeedData): Promise<void> | void
  snapshot(): Promise<StorageSnapshot> | StorageSnapshot
}

function sqlBackend(open: () => Promise<TestDatabase>): Backend['open'] {
  return async () => {
    const database = await open()
    return {
      async fresh(clock) {
        const f = await freshStorage(database, { clock })
        return { storage: f.storage, drop: () => f.drop() }
      },
      close: () => database.close(),
    }
  }
}

/** Memory, PGlite and SQLite always; PostgreSQL and MariaDB when their URL is set. */
export const BACKENDS: readonly Backend[] = [
  {
    name: 'memory',
    enabled: true,
    parallel: false,
    open: async () => ({
      async fresh(clock) {
        return { storage: createMemoryStorage({ clock, yieldOnRead: true }), drop: async () => {} }
      },
      close: async () => {},
    }),
  },
  { name: 'pglite', enabled: true, parallel: false, open: sqlBackend(openPGlite) },
  { name: 'sqlite', enabled: true, parallel: false, open: sqlBackend(openSqlite) },
  {
    name: 'postgres',
    enabled: DATABASE_URL !== '',
    variable: 'DATABASE_URL',
    parallel: true,
    // Every racer holds a connection while it waits at the barrier: a pool larger than RACERS.
    open: sqlBackend(() => openPostgres({ max: RACERS + 10 })),
  },
  {
    name: 'mysql',
    enabled: MYSQL_URL !== '',
    variable: 'MYSQL_URL',
    parallel: true,
    open: sqlBackend(() => openMysql({ connectionLimit: RACERS + 10 })),
  },
]

/**
 * A barrier for `n` callers: `arrive()` resolves once `n` calls have arrived; afterwards (a
 * retry, a later transaction) it resolves at once. `arrivals` counts every call.
 */
export function createBarrier(n: number): { arrive(): Promise<void>; readonly arrivals: number } {
  let arrivals = 0
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return {
    get arrivals() {
      return arrivals
    },
    async arrive() {
      arrivals++
      if (arrivals >= n) open()
      await opened
    },
  }
}

/** Where the racers meet. */
export type Meet =
  /** at the start of the transaction callback (parallel stores) */
  | { readonly at: 'tx-start' }
  /** inside the transaction, right after the first call of this read (parallel stores) */
  | { readonly at: 'after-read'; readonly read: keyof StorageTx }

/**
 * Wraps `storage` so that, once armed, the first `RACERS` transactions meet at a barrier: inside
 * the transaction (`meet`) on parallel stores, at the `transaction()` call on serial ones.
 */
export function racing<S extends StoragePort>(storage: S, parallel: boolean, meet: Meet): S & { arm(n?: number): void } {
  let barrier: ReturnType<typeof createBarrier> | null = null
  const transaction: StoragePort['transaction'] = async (fn) => {
    const b = barrier
    if (b === null) return storage.transaction(fn)
    if (!parallel) {
      await b.arrive()
      return storage.transaction(fn)
    }
    return storage.transaction(async (tx) => {
      if (meet.at === 'tx-start') {
        await b.arrive()
        return fn(tx)
      }
      let met = false
      const read = tx[meet.read] as (...args: unknown[]) => Promise<unknown>
      const wrapped = Object.create(tx) as StorageTx
      Object.defineProperty(wrapped, meet.read, {
        value: async (...args: unknown[]) => {
          const value = await read.apply(tx, args)
          if (!met) {
            met = true
            await b.arrive()
          }
          return value
        },
      })
      return fn(wrapped)
    })
  }
  const arm = (n = RACERS) => {
    barrier = createBarrier(n)
  }
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'transaction') return transaction
      if (prop === 'arm') return arm
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as S & { arm(n?: number): void }
}

export interface Engine {
  readonly sso: AuthPipeline
  readonly storage: RaceStorage & { arm(n?: number): void }
  readonly mailer: RecordingMailer
  readonly signals: RecordingSignals
  readonly clock: FixedClock
  readonly options: AuthPipelineOptions
  snapshot(): Promise<StorageSnapshot>
}

/** The engine on `raw` storage (checked by validatingStorage), with racers meeting at `meet`. */
export function engineOn(
  raw: RaceStorage,
  backend: Backend,
  clock: FixedClock,
  meet: Meet,
  extra: { hooks?: HookOptions; policy?: PolicyOptions } = {},
): Engine {
  const storage = racing(raw, backend.parallel, meet)
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const options: AuthPipelineOptions = {
    storage: validatingStorage(storage),
    mailer,
    signals,
    providers: { dummy: dummyProvider() },
    secret: 'security race test secret, at least thirty-two bytes',
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
    hooks: extra.hooks,
    policy: extra.policy,
  }
  return {
    sso: createAuthPipeline(options),
    storage,
    mailer,
    signals,
    clock,
    options,
    snapshot: async () => raw.snapshot(),
  }
}

/** A clock at a fixed instant. */
export const newClock = (): FixedClock => fixedClock('2026-03-01T12:00:00.000Z')

/** Unwraps a Result, failing with the error code. */
export async function unwrap<T>(result: ResultAsync<T, AuthError>): Promise<T> {
  const r = await result
  if (r.isErr()) throw new Error(`expected ok, got ${r.error.code} ${JSON.stringify(r.error.details ?? {})}`)
  return r.value
}

/** The handle of a redirect / render / confirmation step. */
export function handleOf(step: Step): string {
  if (!('handle' in step) || typeof step.handle !== 'string') throw new Error(`no handle on ${step.kind}`)
  return step.handle
}

/** A dummy-provider form post (the IdP callback). */
export const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
