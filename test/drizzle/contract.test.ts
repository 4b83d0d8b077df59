/**
 * The storage contract suite from `ssoflow/testing`, unchanged, on `ssoflow/drizzle` over every
 * database: PGlite and SQLite always, PostgreSQL and MySQL/MariaDB when their URLs are set.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import { type ContractStorage, fixedClock, registerSuite, storageContract } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { DRIZZLE_DATABASES, type DrizzleTestDatabase, freshDrizzleStorage } from './databases.js'

for (const target of DRIZZLE_DATABASES) {
  if (!target.enabled) reportSkip(`drizzle contract (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`drizzle contract on ${target.name}`, () => {
    let database: DrizzleTestDatabase | undefined
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
        name: `drizzle/${target.name}`,
        clock,
        async createStorage(): Promise<ContractStorage> {
          if (!database) throw new Error('database not open')
          const fresh = await freshDrizzleStorage(database, { clock })
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
