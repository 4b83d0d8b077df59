/**
 * The normalized-email table next to a host-owned users table: `backfillUserEmails` for the users
 * that existed before ssoflow, `syncUserEmail` when the host changes an address. PGlite and
 * SQLite always, PostgreSQL and MySQL/MariaDB when their URLs are set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backfillUserEmails, createKyselyStorage, migrateSsoflow, rollbackSsoflow, syncUserEmail } from '../../src/kysely/index.js'
import { fixedClock } from '../../src/testing/index.js'
import { DATABASES, rawExec, reportSkip, type TestDatabase, uniqueName } from '../helpers/databases.js'

for (const target of DATABASES) {
  if (!target.enabled) reportSkip(`kysely emails (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`normalized-email table on kysely/${target.name}`, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    it('backfills the users that existed before ssoflow (idempotent, batched) and follows address changes', async () => {
      const host = uniqueName('h')
      const b = database.dialect === 'postgres' ? 'boolean' : 'integer'
      const t = database.dialect === 'postgres' ? 'true' : '1'
      await rawExec(
        database.db,
        `create table ${host}_users (id varchar(255) primary key, username varchar(255) not null, email varchar(320) not null,
          name varchar(255) not null, is_active ${b} not null, is_suspended ${b} not null, has_usable_password ${b} not null,
          has_2fa ${b} not null, created_at bigint not null)`,
      )
      const naming = { dialect: database.dialect, tablePrefix: `${host}_sso_`, tables: { users: { table: `${host}_users` } } }
      try {
        for (const [id, email] of [
          ['u1', 'Ann@Example.com'],
          ['u2', 'bob@example.com'],
          ['u3', ''],
          ['u4', 'Ann@Example.com'],
          ['u5', 'eve@example.com'],
        ]) {
          await rawExec(
            database.db,
            `insert into ${host}_users values ('${id}', '${id}', '${email}', '${id}', ${t}, 0 = 1, ${t}, 0 = 1, 0)`,
          )
        }
        await migrateSsoflow(database.db, naming)
        const storage = createKyselyStorage(database.db, { ...naming, clock: fixedClock() })
        expect(await storage.findUsersByEmail('ann@example.com')).toEqual([])

        const first = await backfillUserEmails(database.db, naming, { batchSize: 2, isVerified: (u) => u.id !== 'u2' })
        expect(first).toEqual({ scanned: 5, inserted: 4 })
        const ann = await storage.findUsersByEmail('ann@example.com')
        expect(ann.map((m) => [m.user.id, m.email])).toEqual([
          ['u1', { userId: 'u1', email: 'Ann@Example.com', emailNormalized: 'ann@example.com', isVerified: true, isPrimary: true }],
          ['u4', { userId: 'u4', email: 'Ann@Example.com', emailNormalized: 'ann@example.com', isVerified: true, isPrimary: true }],
        ])
        expect((await storage.findUsersByEmail('bob@example.com'))[0]?.email.isVerified).toBe(false)
        // Again: nothing to do (resumable after an interrupted run).
        expect(await backfillUserEmails(database.db, naming)).toEqual({ scanned: 5, inserted: 0 })

        // The host changes u5's address in its own transaction and calls the hook there.
        await database.db.transaction().execute(async (trx) => {
          await rawExec(trx, `update ${host}_users set email = 'Eve.New@Example.com' where id = 'u5'`)
          await syncUserEmail(trx, naming, { id: 'u5', email: 'Eve.New@Example.com' }, { isVerified: true })
        })
        expect(await storage.findUsersByEmail('eve@example.com')).toEqual([])
        const eve = await storage.findUsersByEmail('eve.new@example.com')
        expect(eve.map((m) => [m.user.id, m.email.email, m.email.isPrimary])).toEqual([['u5', 'Eve.New@Example.com', true]])
        // The same address again (another spelling): one row, updated, not a duplicate.
        await syncUserEmail(database.db, naming, { id: 'u5', email: 'EVE.NEW@example.com' })
        const again = await storage.findUsersByEmail('eve.new@example.com')
        expect(again.map((m) => [m.user.id, m.email.email, m.email.isVerified])).toEqual([['u5', 'EVE.NEW@example.com', false]])
        // A rolled-back change leaves the table as it was.
        await expect(
          database.db.transaction().execute(async (trx) => {
            await syncUserEmail(trx, naming, { id: 'u2', email: 'other@example.com' })
            throw new Error('host rollback')
          }),
        ).rejects.toThrow('host rollback')
        expect((await storage.findUsersByEmail('bob@example.com')).map((m) => m.user.id)).toEqual(['u2'])
        expect(await storage.findUsersByEmail('other@example.com')).toEqual([])
        await rollbackSsoflow(database.db, naming)
      } finally {
        for (const table of [`${host}_sso_migrations`, `${host}_users`]) await database.db.schema.dropTable(table).ifExists().execute()
      }
    })
  })
}
