/**
 * The engine through `ssoflow/prisma`: the scenarios every SQL adapter runs
 * (test/helpers/engine-suite.ts: a login end to end, 50 concurrent finishLogin calls for one new
 * external id, 50 concurrent setups for one org, threat 53, identity strings no database
 * stores), on SQLite always, PostgreSQL and MySQL/MariaDB when their URLs are set.
 */
import type { Clock } from '../../src/ports/clock.js'
import { engineSuite } from '../helpers/engine-suite.js'
import { freshPrismaStorage, PRISMA_DATABASES } from './databases.js'

engineSuite({
  name: 'prisma',
  targets: PRISMA_DATABASES.map((target) => ({
    ...target,
    async open() {
      const database = await target.open()
      return {
        fresh: ({ clock }: { clock: Clock }) => freshPrismaStorage(database, { clock }),
        close: () => database.close(),
      }
    },
  })),
})
