/**
 * The engine through `ssoflow/drizzle`: the scenarios every SQL adapter runs
 * (test/helpers/engine-suite.ts), on PGlite and SQLite always, PostgreSQL and MySQL/MariaDB when
 * their URLs are set.
 */
import type { Clock } from '../../src/ports/clock.js'
import { engineSuite } from '../helpers/engine-suite.js'
import { DRIZZLE_DATABASES, freshDrizzleStorage } from './databases.js'

engineSuite({
  name: 'drizzle',
  targets: DRIZZLE_DATABASES.map((target) => ({
    ...target,
    async open() {
      const database = await target.open()
      return {
        fresh: ({ clock }: { clock: Clock }) => freshDrizzleStorage(database, { clock }),
        close: () => database.close(),
      }
    },
  })),
})
