/**
 * Statements per returning login through `ssoflow/drizzle` on PostgreSQL (DATABASE_URL), counted
 * by Drizzle's query logger (BEGIN and COMMIT included): the adapter's optional fast-path members
 * (`tx.readLinkedIdentity`, `tx.updateIdentityIfUnchanged`) keep a returning login off the
 * identity lock, as with `ssoflow/kysely` (docs/round-trips.md).
 */
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDrizzleStorage } from '../../src/drizzle/index.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipelineOptions, SessionInfo } from '../../src/engine/types.js'
import { ssoflowSchemaSql } from '../../src/kysely/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, makeIdentity, makeMember, makeUser } from '../../src/testing/index.js'
import { DATABASE_URL, reportSkip, uniqueName } from '../helpers/databases.js'
import { ORG, PROVIDER, stepsDone, urls } from '../helpers/engine-suite.js'

if (!DATABASE_URL) reportSkip('drizzle statement counts (postgres)', 'DATABASE_URL')
describe.skipIf(!DATABASE_URL)('drizzle on PostgreSQL: statements per returning login', () => {
  const schema = uniqueName('ssoflow_ds_')
  let admin: pg.Client
  let pool: pg.Pool
  const log: string[] = []
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    await admin.query(`create schema ${schema}`)
    pool = new pg.Pool({ connectionString: DATABASE_URL, options: `-c search_path=${schema}`, max: 4 })
    for (const statement of await ssoflowSchemaSql({ dialect: 'postgres', tablePrefix: 'd_' })) await pool.query(statement)
  })
  afterAll(async () => {
    await pool?.end()
    await admin?.query(`drop schema if exists ${schema} cascade`)
    await admin?.end()
  })

  it('a returning login reads without the identity lock; an identity row due for its refresh is one guarded update', async () => {
    const db = drizzle(pool, { logger: { logQuery: (query: string) => log.push(query.replace(/\s+/g, ' ').trim()) } })
    const clock = fixedClock('2026-03-01T12:00:00.000Z')
    const storage = createDrizzleStorage(db, { dialect: 'postgres', tablePrefix: 'd_', clock })
    const fresh = makeUser({ id: 'u-fresh', email: 'fresh@corp.example' })
    const stale = makeUser({ id: 'u-stale', email: 'stale@corp.example' })
    const aMinuteAgo = new Date(clock.now().getTime() - 60_000)
    await storage.seed({
      organizations: [ORG],
      providers: [PROVIDER],
      users: [fresh, stale],
      identities: [
        makeIdentity({
          id: 'i-fresh',
          authProviderId: PROVIDER.id,
          userId: fresh.id,
          ident: 'ext-fresh',
          lastVerified: aMinuteAgo,
          lastSynced: aMinuteAgo,
        }),
        // Due for its refresh (epoch): the login rewrites the identity row.
        makeIdentity({ id: 'i-stale', authProviderId: PROVIDER.id, userId: stale.id, ident: 'ext-stale' }),
      ],
      members: [
        makeMember({ id: 'm-fresh', organizationId: ORG.id, userId: fresh.id, flags: { ...NO_FLAGS, ssoLinked: true } }),
        makeMember({ id: 'm-stale', organizationId: ORG.id, userId: stale.id, flags: { ...NO_FLAGS, ssoLinked: true } }),
      ],
    })
    const options: AuthPipelineOptions = {
      storage,
      mailer: createRecordingMailer(),
      signals: createRecordingSignals(),
      providers: { dummy: dummyProvider() },
      secret: 'drizzle statements test secret, thirty-two bytes',
      urls,
      clock,
      policy: { configCacheMs: 0 },
    }
    const sso = createAuthPipeline(options)
    const finish = async (session: SessionInfo, ident: string, email: string) => {
      const handle = await stepsDone(options, session)
      log.length = 0
      const out = await sso.finishLogin({ handle, session, identity: { id: ident, email } })
      expect(out.isOk() ? out.value.kind : out.error.code).toBe('signedIn')
      return [...log]
    }
    const quiet = await finish({ id: 's-fresh' }, 'ext-fresh', fresh.email)
    const rewritten = await finish({ id: 's-stale' }, 'ext-stale', stale.email)
    const report = { quiet, rewritten }
    // Neither takes the identity lock: the provider row is held by the identity read.
    for (const statements of [quiet, rewritten]) {
      expect(
        statements.filter((q) => /pg_advisory_xact_lock/.test(q)),
        JSON.stringify(report, null, 1),
      ).toEqual([])
      expect(statements.filter((q) => /for key share/.test(q))).toHaveLength(1)
    }
    expect(rewritten.filter((q) => /^update "?d_auth_identities"? set .* where id = \$\d+ and user_id = \$\d+/i.test(q))).toHaveLength(1)
    // state read, org + provider (one join), BEGIN, the read, [the guarded update], the settle, COMMIT.
    expect(quiet.length, JSON.stringify(report, null, 1)).toBeLessThanOrEqual(6)
    expect(rewritten.length, JSON.stringify(report, null, 1)).toBeLessThanOrEqual(7)
    // What must not change: nothing but the stale identity's row and the two states.
    const snap = await storage.snapshot()
    expect(snap.users.map((u) => u.id)).toEqual(['u-fresh', 'u-stale'])
    expect(snap.identities.find((i) => i.id === 'i-fresh')?.lastVerified).toEqual(aMinuteAgo)
    expect(snap.identities.find((i) => i.id === 'i-stale')?.lastVerified).toEqual(clock.now())
    expect(snap.members).toHaveLength(2)
    expect(snap.audit).toEqual([])
  })
})
