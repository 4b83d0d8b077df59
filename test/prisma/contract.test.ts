/**
 * The storage contract suite from `ssoflow/testing`, unchanged, against `ssoflow/prisma` on
 * Prisma 7 clients with driver adapters: SQLite always, PostgreSQL (DATABASE_URL) and
 * MySQL/MariaDB (MYSQL_URL) when set. Every case gets its own freshly migrated tables.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import { fixedClock, registerSuite, storageContract } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { freshPrismaStorage, PRISMA_DATABASES, type PrismaTestDatabase } from './databases.js'

for (const target of PRISMA_DATABASES) {
  if (!target.enabled) reportSkip(`prisma contract (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`prisma contract on ${target.name}`, () => {
    let database: PrismaTestDatabase | undefined
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
        name: `prisma/${target.name}`,
        clock,
        async createStorage() {
          if (!database) throw new Error('database not open')
          const fresh = await freshPrismaStorage(database, { clock })
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
