/**
 * Engines over every storage backend (memory always; PGlite and SQLite always; PostgreSQL and
 * MySQL / MariaDB when their URL is set), with the tools race tests need to force an
 * interleaving without sleeping:
 *
 * - `gates.holdNextTransaction()`: the next `storage.transaction()` call waits before it begins;
 * - `gates.holdAfter(method)`: the next transaction that calls `tx[method]` waits right after
 *   that call returned (still inside the transaction, holding whatever the call locked);
 * - `blocked()`: how many callers are waiting for another transaction: queued in front of a
 *   serialised store (memory, SQLite, PGlite) or waiting for a row / named lock on a server
 *   (PostgreSQL `pg_locks`, MariaDB `innodb_trx` and `GET_LOCK` waits), so a test can wait until
 *   a second caller is provably blocked before it releases the first.
 */
import { sql } from 'kysely'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions } from '../../src/engine/types.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { StoragePort, StorageSeedData, StorageSnapshot, StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  createRecordingAudit,
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  type RecordingAudit,
  type RecordingMailer,
  type RecordingSignals,
  sentryStyleUrls,
  sequentialIds,
} from '../../src/testing/index.js'
import { DATABASES, freshStorage, type TestDatabase } from './databases.js'

/** A storage the tests can seed and snapshot. */
export type TestStorage = StoragePort & {
  seed(data: StorageSeedData): void | Promise<void>
  snapshot(): StorageSnapshot | Promise<StorageSnapshot>
}

/** A place where a test holds one caller until it says go. */
export interface Hold {
  /** Resolves when the held caller reached the hold. */
  readonly reached: Promise<void>
  release(): void
}

function hold(): Hold & { arrive(): Promise<void> } {
  let reach: () => void = () => {}
  let go: () => void = () => {}
  const reached = new Promise<void>((r) => {
    reach = r
  })
  const released = new Promise<void>((r) => {
    go = r
  })
  return {
    reached,
    release: () => go(),
    arrive: async () => {
      reach()
      await released
    },
  }
}

type TxMethod = keyof StorageTx

/** Gates on a storage: see the module comment. */
export interface Gates {
  holdNextTransaction(): Hold
  holdAfter(...methods: TxMethod[]): Hold
  /** Callers that called `transaction()` whose callback has not started yet. */
  waiting(): number
  /** Releases every hold (cleanup after a failed test, so no transaction stays open). */
  releaseAll(): void
}

/** Wraps `storage` with {@link Gates}; the returned storage is what the engine gets. */
export function gated<S extends StoragePort>(storage: S): { storage: S; gates: Gates } {
  let waiting = 0
  const beforeTx: (Hold & { arrive(): Promise<void> })[] = []
  const afterCall: { methods: Set<string>; hold: Hold & { arrive(): Promise<void> } }[] = []
  const issued: Hold[] = []
  const transaction: StoragePort['transaction'] = async (fn) => {
    const gate = beforeTx.shift()
    if (gate) await gate.arrive()
    waiting++
    let started = false
    try {
      return await storage.transaction((tx) => {
        started = true
        waiting--
        return fn(hook(tx))
      })
    } finally {
      if (!started) waiting--
    }
  }
  const hook = (tx: StorageTx): StorageTx => {
    let armed: { methods: Set<string>; hold: Hold & { arrive(): Promise<void> } } | null = null
    return new Proxy(tx, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver)
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          const out = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          if (armed === null) {
            const i = afterCall.findIndex((a) => a.methods.has(String(prop)))
            if (i >= 0) {
              armed = afterCall.splice(i, 1)[0] ?? null
              await armed?.hold.arrive()
            }
          }
          return out
        }
      },
    })
  }
  const gates: Gates = {
    holdNextTransaction() {
      const h = hold()
      beforeTx.push(h)
      issued.push(h)
      return h
    },
    holdAfter(...methods) {
      const h = hold()
      afterCall.push({ methods: new Set(methods), hold: h })
      issued.push(h)
      return h
    },
    waiting: () => waiting,
    releaseAll() {
      for (const h of beforeTx.splice(0)) h.release()
      for (const a of afterCall.splice(0)) a.hold.release()
      for (const h of issued) h.release()
    },
  }
  const wrapped = new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'transaction') return transaction
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { storage: wrapped, gates }
}

/**
 * Resolves once `condition()` holds, checking every few milliseconds (a condition wait, not a
 * timed assumption); fails with `what` after `limitMs`.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const start = Date.now()
  for (;;) {
    if (await condition()) return
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** One backend: opened once per file, then a fresh storage per test. */
export interface Backend {
  readonly name: string
  readonly enabled: boolean
  readonly variable?: string | undefined
  open(): Promise<OpenBackend>
}

export interface OpenBackend {
  /** A fresh, empty storage wired to `clock`; `lockWaits()` counts sessions waiting for a lock. */
  fresh(clock: FixedClock): Promise<{ storage: TestStorage; drop(): Promise<void>; lockWaits(): Promise<number> }>
  readonly database: TestDatabase | null
  close(): Promise<void>
}

async function serverLockWaits(database: TestDatabase): Promise<number> {
  if (database.kind === 'postgres') {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.application_name = current_setting('application_name')`.execute(database.db)
    return Number(rows[0]?.n ?? 0)
  }
  if (database.kind === 'mysql') {
    // MariaDB does not always list a waiting locking read as LOCK WAIT in innodb_trx (a FOR UPDATE
    // on a unique key waits in the optimizer, state "Statistics"): count those states too.
    const { rows } = await sql<{ n: number }>`
      select count(*) as n from information_schema.processlist p
       where p.db = database() and p.id <> connection_id() and p.command = 'Query'
         and (p.state in ('Statistics', 'Updating', 'Searching rows for update', 'User lock')
              or p.state like '%lock%'
              or p.id in (select t.trx_mysql_thread_id from information_schema.innodb_trx t where t.trx_state = 'LOCK WAIT'))`.execute(
      database.db,
    )
    return Number(rows[0]?.n ?? 0)
  }
  return 0
}

/** memory, then the SQL databases of {@link DATABASES}. */
export const BACKENDS: readonly Backend[] = [
  {
    name: 'memory',
    enabled: true,
    async open() {
      return {
        database: null,
        async fresh(clock) {
          return { storage: createMemoryStorage({ clock }), drop: async () => {}, lockWaits: async () => 0 }
        },
        close: async () => {},
      }
    },
  },
  ...DATABASES.map(
    (d): Backend => ({
      name: d.name,
      enabled: d.enabled,
      variable: d.variable,
      async open() {
        const database = await d.open()
        return {
          database,
          async fresh(clock) {
            const f = await freshStorage(database, { clock })
            return { storage: f.storage, drop: f.drop, lockWaits: () => serverLockWaits(database) }
          },
          close: () => database.close(),
        }
      },
    }),
  ),
]

/** An engine over one backend with recording fakes and gates on its storage. */
export interface World {
  readonly storage: TestStorage
  readonly raw: TestStorage
  readonly gates: Gates
  readonly sso: AuthPipeline
  readonly mailer: RecordingMailer
  readonly signals: RecordingSignals
  /** Audit entries in the order the engine recorded them (written through to the storage). */
  readonly audit: RecordingAudit
  readonly clock: FixedClock
  readonly options: AuthPipelineOptions
  /** Callers waiting for another transaction (queued or blocked on a lock). */
  blocked(): Promise<number>
  snapshot(): Promise<StorageSnapshot>
  drop(): Promise<void>
}

let worldCount = 0

export async function makeWorld(
  backend: OpenBackend,
  options: Partial<Pick<AuthPipelineOptions, 'policy' | 'hooks' | 'providers'>> = {},
): Promise<World> {
  const clock = fixedClock('2026-03-01T10:00:00.000Z')
  const fresh = await backend.fresh(clock)
  const { storage, gates } = gated(fresh.storage)
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const audit = createRecordingAudit()
  const engineOptions: AuthPipelineOptions = {
    storage,
    mailer,
    signals,
    audit,
    providers: { dummy: dummyProvider(), ...options.providers },
    secret: 'race test secret of at least thirty-two bytes',
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
    ids: sequentialIds(`w${++worldCount}`),
    policy: options.policy,
    hooks: options.hooks,
  }
  return {
    storage,
    raw: fresh.storage,
    gates,
    sso: createAuthPipeline(engineOptions),
    mailer,
    signals,
    audit,
    clock,
    options: engineOptions,
    // A serialised store (one connection, or a mutex) queues a second transaction until the first
    // ends; a server blocks it on a lock. (A server transaction that is merely connecting is not
    // blocked, so `waiting()` does not count there.)
    blocked: async () =>
      backend.database === null || backend.database.kind === 'pglite' || backend.database.kind === 'sqlite'
        ? gates.waiting()
        : await fresh.lockWaits(),
    snapshot: async () => fresh.storage.snapshot(),
    async drop() {
      gates.releaseAll()
      await fresh.drop()
    },
  }
}
