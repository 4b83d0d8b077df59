/**
 * The storage contract suite from `ssoflow/testing`, unchanged, against every SQL database:
 * PGlite and SQLite always, PostgreSQL (DATABASE_URL) and MySQL/MariaDB (MYSQL_URL) when set.
 * Every case gets its own freshly migrated tables (unique table prefix), dropped afterwards.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import { fixedClock, registerSuite, storageContract } from '../../src/testing/index.js'
import { DATABASES, freshStorage, reportSkip, type TestDatabase } from '../helpers/databases.js'

for (const target of DATABASES) {
  if (!target.enabled) reportSkip(`kysely contract (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`kysely contract on ${target.name}`, () => {
    let database: TestDatabase | undefined
    const drops = new WeakMap<object, () => Promise<void>>()
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })
    const clock = fixedClock()
    registerSuite(
      storageContract({
        name: `kysely/${target.name}`,
        clock,
        async createStorage() {
          if (!database) throw new Error('database not open')
          const fresh = await freshStorage(database, { clock })
          drops.set(fresh.storage, fresh.drop)
          return fresh.storage
        },
        async destroy(storage) {
          await drops.get(storage)?.()
        },
      }),
      { describe, it },
    )
  })
}
