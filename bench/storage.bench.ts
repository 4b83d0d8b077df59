/**
 * The linked-identity login's storage work through ssoflow's Kysely adapter vs the same 10
 * statements as hand-written SQL on the raw driver (DESIGN 5: within 1.3x).
 *
 * PostgreSQL when DATABASE_URL is set (its own schema, dropped at the end), PGlite otherwise.
 * Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx vitest bench --run bench/storage.bench.ts`
 */
import { randomBytes } from 'node:crypto'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, bench, describe } from 'vitest'
import { createKyselyStorage, createPGliteDialect, type KyselyStorage, migrateSsoflow } from '../src/kysely/index.js'
import { fixedClock, makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../src/testing/index.js'

const DATABASE_URL = process.env.DATABASE_URL ?? ''
const PREFIX = 'b_'
const USERS = 2_000
const clock = fixedClock('2026-03-01T12:00:00.000Z')
const OPTIONS = { time: 4_000, warmupTime: 500 }

/** Runs one SQL statement with positional parameters on the raw driver. */
type Raw = (text: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>
/** Runs `fn` on one raw connection (the hand-written transaction). */
type RawConnection = <T>(fn: (q: Raw) => Promise<T>) => Promise<T>

let storage: KyselyStorage
let raw: Raw
let rawConnection: RawConnection
let close: () => Promise<void> = async () => {}
let version = 1
let n = 0

beforeAll(async () => {
  let db: Kysely<unknown>
  if (DATABASE_URL) {
    const schema = `ssoflow_bench_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    await admin.query(`create schema ${schema}`)
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, options: `-c search_path=${schema}` })
    const rawPool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, options: `-c search_path=${schema}` })
    db = new Kysely({ dialect: new PostgresDialect({ pool }) })
    raw = (text, params) => rawPool.query(text, params)
    rawConnection = async (fn) => {
      const client = await rawPool.connect()
      try {
        return await fn((text, params) => client.query(text, params))
      } finally {
        client.release()
      }
    }
    close = async () => {
      await db.destroy()
      await rawPool.end()
      await admin.query(`drop schema ${schema} cascade`)
      await admin.end()
    }
    console.log('[bench] PostgreSQL at DATABASE_URL')
  } else {
    const pglite = new PGlite()
    db = new Kysely({ dialect: createPGliteDialect(pglite) })
    raw = (text, params) => pglite.query(text, params) as Promise<{ rows: Record<string, unknown>[] }>
    rawConnection = (fn) => fn(raw)
    close = async () => {
      await db.destroy()
      await pglite.close()
    }
    console.log('[bench] PGlite (set DATABASE_URL to measure PostgreSQL)')
  }
  await migrateSsoflow(db, { dialect: 'postgres', tablePrefix: PREFIX })
  storage = createKyselyStorage(db, { dialect: 'postgres', tablePrefix: PREFIX, clock })
  const users = Array.from({ length: USERS }, (_, i) => makeUser({ id: `u${i}` }))
  await storage.seed({
    organizations: [makeOrganization({ id: 'org' })],
    providers: [makeProvider({ id: 'prov', organizationId: 'org' })],
    users,
    identities: users.map((u, i) => makeIdentity({ id: `i${i}`, authProviderId: 'prov', userId: u.id, ident: `ext-${i}` })),
    members: users.map((u, i) => makeMember({ id: `m${i}`, organizationId: 'org', userId: u.id })),
  })
  await storage.pipelineStates.create({
    id: 'state',
    version: 1,
    body: 'x'.repeat(600),
    expiresAt: new Date(clock.now().getTime() + 86_400_000),
  })
})

afterAll(async () => {
  await close()
})

const expires = () => clock.now().getTime() + 86_400_000

describe('linked-identity login: storage work (10 statements)', () => {
  bench(
    'ssoflow Kysely adapter',
    async () => {
      const i = n++ % USERS
      const now = clock.now()
      const state = await storage.pipelineStates.load('state')
      if (!state) throw new Error('no state')
      await storage.getOrganization('org')
      await storage.getAuthProvider('org')
      version = state.version
      const body = state.body
      if (
        !(await storage.pipelineStates.compareAndSet('state', version, {
          id: 'state',
          version: version + 1,
          body,
          expiresAt: new Date(expires()),
        }))
      ) {
        throw new Error('claim lost')
      }
      await storage.transaction(async (tx) => {
        await tx.lockIdentity('prov', `ext-${i}`)
        const linked = await tx.getLinkedIdentity('prov', `ext-${i}`, 'org')
        if (!linked) throw new Error('not linked')
        await tx.updateIdentity(linked.identity.id, { lastVerified: now, lastSynced: now })
      })
      await storage.pipelineStates.compareAndSet('state', version + 1, {
        id: 'state',
        version: version + 2,
        body,
        expiresAt: new Date(expires()),
      })
    },
    OPTIONS,
  )

  bench(
    'hand-written SQL (raw driver)',
    async () => {
      const i = n++ % USERS
      const now = clock.now().getTime()
      const t = PREFIX
      const { rows } = await raw(`select id, version, body, expires_at from ${t}pipeline_states where id = $1 and expires_at > $2`, [
        'state',
        now,
      ])
      const state = rows[0]
      if (!state) throw new Error('no state')
      await raw(`select id, slug, name, default_role, require_2fa from ${t}organizations where id = $1`, ['org'])
      await raw(`select * from ${t}auth_providers where organization_id = $1`, ['org'])
      const v = Number(state.version)
      const claimed = await raw(
        `update ${t}pipeline_states set version = $1, body = $2, expires_at = $3 where id = $4 and version = $5 and expires_at > $6`,
        [v + 1, state.body, expires(), 'state', v, now],
      )
      void claimed
      await rawConnection(async (q) => {
        await q('begin', [])
        try {
          await q('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`prov:ext-${i}`])
          const linked = await q(
            `select i.*, u.id as u_id, u.is_active, m.id as m_id, m.flag_sso_linked from ${t}auth_identities i join ${t}users u on u.id = i.user_id
           left join ${t}members m on m.user_id = i.user_id and m.organization_id = $3 where i.auth_provider_id = $1 and i.ident = $2`,
            ['prov', `ext-${i}`, 'org'],
          )
          const row = linked.rows[0]
          if (!row) throw new Error('not linked')
          await q(`update ${t}auth_identities set last_verified = $1, last_synced = $2 where id = $3`, [now, now, row.id])
          await q('commit', [])
        } catch (error) {
          await q('rollback', [])
          throw error
        }
      })
      await raw(
        `update ${t}pipeline_states set version = $1, body = $2, expires_at = $3 where id = $4 and version = $5 and expires_at > $6`,
        [v + 2, state.body, expires(), 'state', v + 1, now],
      )
    },
    OPTIONS,
  )
})
