/**
 * A minimal Kysely dialect over an embedded PGlite instance (no extra dependency).
 *
 * @module
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'

/**
 * The part of `@electric-sql/pglite`'s `PGlite` this dialect uses.
 * @group Kysely
 */
export interface PGliteLike {
  query<T>(
    sql: string,
    params?: unknown[],
  ): Promise<{ readonly rows: T[]; readonly affectedRows?: number | undefined; readonly command?: string | undefined }>
}

/** A FIFO mutex: PGlite has one connection, so one Kysely "connection" at a time. */
class Mutex {
  #tail: Promise<void> = Promise.resolve()
  lock(): Promise<() => void> {
    let release!: () => void
    const next = new Promise<void>((resolve) => {
      release = resolve
    })
    const acquired = this.#tail.then(() => release)
    this.#tail = this.#tail.then(() => next)
    return acquired
  }
}

class PGliteConnection implements DatabaseConnection {
  readonly #db: PGliteLike
  constructor(db: PGliteLike) {
    this.#db = db
  }
  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#db.query<R>(compiled.sql, [...compiled.parameters])
    const command = result.command?.toUpperCase()
    const affects = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE'
    return {
      rows: result.rows ?? [],
      ...(affects ? { numAffectedRows: BigInt(result.affectedRows ?? 0) } : {}),
    }
  }
  // biome-ignore lint/correctness/useYield: streaming is not supported
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported by the PGlite dialect')
  }
}

class PGliteDriver implements Driver {
  readonly #connection: PGliteConnection
  readonly #mutex = new Mutex()
  readonly #releases = new WeakMap<DatabaseConnection, () => void>()
  constructor(db: PGliteLike) {
    this.#connection = new PGliteConnection(db)
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.#mutex.lock()
    this.#releases.set(this.#connection, release)
    return this.#connection
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let text = 'begin'
    if (settings.isolationLevel) text += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode) text += ` ${settings.accessMode}`
    await connection.executeQuery(CompiledQuery.raw(text))
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const release = this.#releases.get(connection)
    this.#releases.delete(connection)
    release?.()
  }
  async destroy(): Promise<void> {}
}

/**
 * A Kysely dialect for an embedded PGlite database. PGlite has a single connection: queries and
 * transactions are serialized by a FIFO mutex (a transaction holds it until commit/rollback).
 * Use `dialect: 'postgres'` in {@link createKyselyStorage}. Destroying the Kysely instance does
 * not close the PGlite instance (its owner does).
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite'
 * import { Kysely } from 'kysely'
 * import { createPGliteDialect } from 'ssoflow/kysely'
 * const db = new Kysely({ dialect: createPGliteDialect(new PGlite()) })
 * ```
 * @group Kysely
 */
export function createPGliteDialect(pglite: PGliteLike): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new PGliteDriver(pglite),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's introspector signature
    createIntrospector: (db: Kysely<any>) => new PostgresIntrospector(db),
  }
}
