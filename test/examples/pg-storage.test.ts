/**
 * The worked example of docs/custom-storage.md (examples/custom-storage/pg-storage.ts, a
 * StoragePort over plain `pg`) runs the storage contract suite unchanged: on PostgreSQL when
 * DATABASE_URL is set (a fresh schema per case), on PGlite otherwise (behind a one-connection
 * pool, as a `pg.Pool` with `max: 1` would behave).
 */
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { createPgStorage, PG_STORAGE_SCHEMA, type PgClient, type PgPool, type PgStorage } from '../../examples/custom-storage/pg-storage.js'
import { type ContractStorage, fixedClock, registerSuite, storageContract } from '../../src/testing/index.js'
import { DATABASE_URL, uniqueName } from '../helpers/databases.js'

/** PGlite as a pool of one connection: `connect()` waits for the previous holder's `release()`. */
function pglitePool(db: PGlite): PgPool {
  let tail: Promise<void> = Promise.resolve()
  const acquire = async (): Promise<() => void> => {
    const previous = tail
    let release: () => void = () => {}
    tail = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    return release
  }
  const run: PgClient['query'] = async (text, values) => {
    const result = await db.query<Record<string, unknown>>(text, values)
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length }
  }
  return {
    async query(text, values) {
      const release = await acquire()
      try {
        return await run(text, values)
      } finally {
        release()
      }
    },
    async connect() {
      const release = await acquire()
      return { query: run, release }
    },
  }
}

const clock = fixedClock()
const cleanups = new WeakMap<object, () => Promise<void>>()
let pglite: PGlite | undefined

describe(`example pg storage on ${DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  beforeAll(async () => {
    if (!DATABASE_URL) {
      pglite = new PGlite()
      await pglite.query('select 1')
    }
  })
  afterAll(async () => {
    await pglite?.close()
  })
  registerSuite(
    storageContract({
      name: 'example pg storage',
      clock,
      async createStorage(): Promise<ContractStorage> {
        const schema = uniqueName('ssoflow_ex_')
        let storage: PgStorage
        if (DATABASE_URL) {
          const admin = new pg.Client({ connectionString: DATABASE_URL })
          await admin.connect()
          await admin.query(`create schema ${schema}`)
          const pool = new pg.Pool({ connectionString: DATABASE_URL, options: `-c search_path=${schema}`, max: 10 })
          await pool.query(PG_STORAGE_SCHEMA)
          storage = createPgStorage(pool, { clock })
          cleanups.set(storage, async () => {
            await pool.end()
            await admin.query(`drop schema ${schema} cascade`)
            await admin.end()
          })
        } else {
          const db = pglite as PGlite
          await db.exec(`create schema ${schema}; set search_path to ${schema}; ${PG_STORAGE_SCHEMA}`)
          storage = createPgStorage(pglitePool(db), { clock })
          cleanups.set(storage, async () => {
            await db.exec(`set search_path to public; drop schema ${schema} cascade`)
          })
        }
        return storage
      },
      async destroy(storage) {
        await cleanups.get(storage)?.()
      },
    }),
    { describe, it },
  )
})
