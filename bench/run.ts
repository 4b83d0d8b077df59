/**
 * `npm run bench` (issue 10 item 5): one run, one table, bench/results.json.
 *
 * 1. The pure decision (`decideLogin`) per path, ns per call.
 * 2. The engine per path on the memory storage with the dummy provider: logins/s on one core
 *    (8 logins in flight on one event loop), start + callback (+ the confirm POST).
 * 3. The same paths on PGlite and, with DATABASE_URL, on PostgreSQL, beside hand-written SQL
 *    doing the same reads and writes (the same statements, on the raw driver): ms per login and
 *    the ratio engine / SQL (DESIGN: 1.3x or better).
 * 4. SQL statements per path, counted by Kysely's log hook (BEGIN / COMMIT included).
 * 5. The returning login at 1k, 100k and 1M identities (seeded with bulk SQL), which must stay
 *    flat.
 *
 * Serial timings are medians of alternating rounds (engine, then SQL, then engine...), so a load
 * change on the shared machine hits both sides. Figures are for comparing within one run.
 *
 * Run: `npm run bench` (PGlite only), or `DATABASE_URL=postgres://... npm run bench`.
 * Options (environment): BENCH_SCALES=1000,100000,1000000  BENCH_QUICK=1 (short rounds).
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { defaultMergeIdentityData } from '../src/core/attach.js'
import { decideLogin } from '../src/core/login/decide.js'
import type { LoginFacts } from '../src/core/login/facts.js'
import { dummyProvider } from '../src/dummy/index.js'
import { type AuthPipeline, type AuthPipelineOptions, createAuthPipeline, type SessionInfo, type StoragePort } from '../src/index.js'
import { createKyselyStorage, createPGliteDialect, migrateSsoflow } from '../src/kysely/index.js'
import { createMemoryStorage } from '../src/memory/index.js'
import { parseIdentity } from '../src/model/identity.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../src/testing/index.js'

const QUICK = process.env.BENCH_QUICK === '1'
const DATABASE_URL = process.env.DATABASE_URL ?? ''
const SCALES = (process.env.BENCH_SCALES ?? '1000,100000,1000000').split(',').map(Number)
const ORIGIN = 'https://app.example.com'
const ORG = makeOrganization({ id: 'org', slug: 'acme' })
const PROVIDER = makeProvider({ id: 'ap', organizationId: 'org', providerKey: 'dummy' })
const NOW = Date.now()

type Path = 'returning' | 'new user (create)' | 'new user (confirm page + POST)'
const PATHS: readonly Path[] = ['returning', 'new user (create)', 'new user (confirm page + POST)']

const results: Record<string, unknown> = {
  generatedAt: new Date().toISOString(),
  command: `${DATABASE_URL ? 'DATABASE_URL=<set> ' : ''}npm run bench`,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', node: process.version, loadavg: os.loadavg() },
}
const rows: string[][] = []
const row = (...cells: (string | number)[]) => rows.push(cells.map(String))

// ------------------------------------------------------------------------------------ helpers
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] as number)
}
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-')

/** ns per call of a synchronous function: median of rounds of `n` calls after a warm-up. */
function nsPerCall(fn: () => unknown, n = QUICK ? 2_000 : 20_000, rounds = 7): number {
  for (let i = 0; i < n; i++) fn()
  const out: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn()
    out.push(Number(process.hrtime.bigint() - t) / n)
  }
  return median(out)
}

/** Logins per second with `inFlight` logins at a time on this event loop, for `ms`. */
async function throughput(login: (i: number) => Promise<void>, ms = QUICK ? 500 : 2_000, inFlight = 8): Promise<number> {
  let i = 0
  const warm = Date.now() + ms / 4
  while (Date.now() < warm) await login(i++)
  let done = 0
  const end = performance.now() + ms
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await login(i++)
        done++
      }
    }),
  )
  return (done / (performance.now() - t0)) * 1000
}

/** Serial ms per call of each of `fns`, alternating rounds; the median round of each. */
async function alternating(fns: readonly ((i: number) => Promise<void>)[], perRound = QUICK ? 10 : 40, rounds = QUICK ? 3 : 7) {
  let i = 0
  for (const fn of fns) for (let k = 0; k < 5; k++) await fn(i++)
  const per: number[][] = fns.map(() => [])
  for (let r = 0; r < rounds; r++) {
    for (const [j, fn] of fns.entries()) {
      const t = performance.now()
      for (let k = 0; k < perRound; k++) await fn(i++)
      per[j]?.push((performance.now() - t) / perRound)
    }
  }
  return per.map(median)
}

function ok<T>(r: { isErr(): boolean; value?: T; error?: { code: string } }): T {
  if (r.isErr()) throw new Error(`bench: expected ok, got ${(r as { error: { code: string } }).error.code}`)
  return (r as { value: T }).value
}

// ------------------------------------------------------------------- the engine and the paths
function engine(storage: StoragePort, newUser: 'confirm' | 'create'): AuthPipeline {
  const options: AuthPipelineOptions = {
    storage,
    mailer: { send: async () => {} },
    signals: { emit: async () => {} },
    providers: { dummy: dummyProvider() },
    secret: 'a bench secret of at least thirty-two bytes',
    urls: {
      baseUrl: ORIGIN,
      orgLogin: () => '/',
      authSettings: () => '/',
      providerSettings: () => '/',
      afterLogin: () => '/',
      pipelineCallback: () => `${ORIGIN}/cb`,
      verifyAccount: (t) => `${ORIGIN}/v/${t}`,
    },
    policy: { newUser },
  }
  return createAuthPipeline(options)
}

let unique = 0
const runId = randomBytes(3).toString('hex')
/** One login on `path`: start + callback (+ confirm POST). `who` picks the returning user. */
async function login(sso: { confirm: AuthPipeline; create: AuthPipeline }, path: Path, who: number): Promise<void> {
  const n = ++unique
  const session: SessionInfo = { id: `s-${runId}-${n}` }
  const e = path === 'new user (create)' ? sso.create : sso.confirm
  const begun = ok<{ kind: string; handle?: string }>(await e.beginLogin({ organizationId: ORG.id, session }))
  const handle = begun.handle ?? ''
  const form =
    path === 'returning'
      ? { id: `ext-${who}`, email: `u${who}@acme.test`, email_verified: 'on' }
      : { id: `new-${runId}-${n}`, email: `new-${runId}-${n}@acme.test`, email_verified: 'on' }
  const done = ok<{ kind: string }>(await e.advance({ handle, session, request: { method: 'POST', query: {}, form } }))
  if (path === 'new user (confirm page + POST)') {
    if (done.kind !== 'confirmationRequired') throw new Error(`bench: expected the page, got ${done.kind}`)
    const out = ok<{ kind: string }>(await e.finishLogin({ handle, session, op: 'newuser' }))
    if (out.kind !== 'signedIn') throw new Error(`bench: expected signedIn, got ${out.kind}`)
  } else if (done.kind !== 'signedIn') throw new Error(`bench: expected signedIn, got ${done.kind}`)
}

// ----------------------------------------------------------------------- 1. pure decision (ns)
function decisionFacts(path: Path): LoginFacts {
  const user = makeUser({ id: 'u1', email: 'u1@acme.test' })
  const identity = parseIdentity({ id: path === 'returning' ? 'ext-1' : 'new-1', email: 'u1@acme.test', emailVerified: true })
  if (identity.isErr()) throw new Error('identity')
  const member = makeMember({
    id: 'm1',
    organizationId: ORG.id,
    userId: user.id,
    flags: { ...makeMember({ id: 'x', organizationId: ORG.id }).flags, ssoLinked: true },
  })
  const linked = path === 'returning'
  const ids = Array.from({ length: 8 }, (_, i) => `id-${i}`)
  return {
    now: new Date(NOW),
    ids,
    newUsername: 'a'.repeat(32),
    organization: ORG,
    provider: { id: PROVIDER.id, key: 'dummy', displayName: 'Dummy' },
    pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: null },
    identity: identity.value,
    op: path === 'new user (confirm page + POST)' ? 'newuser' : null,
    session: { userId: null, twoFactorUserId: null, ip: null },
    sessionUser: null,
    linked: linked
      ? {
          identity: makeIdentity({
            id: 'i1',
            authProviderId: PROVIDER.id,
            userId: user.id,
            ident: 'ext-1',
            lastVerified: new Date(NOW),
            lastSynced: new Date(NOW),
          }),
          user,
          via: 'ident',
        }
      : null,
    emailMatches: [],
    members: new Map(linked ? [[user.id, member]] : []),
    identitiesByUser: new Map(),
    identitiesOfUser: new Map(),
    invitesByEmail: new Map(),
    verifiedAddresses: new Map(),
    sessionInvite: null,
    verification: null,
    memberLimitReached: false,
    loginUrl: '/',
    newVerification: { tokenHash: 'h'.repeat(64), url: `${ORIGIN}/v/t` },
    verificationSends: null,
    policy: {
      verificationTtlSeconds: 600,
      verificationResendSeconds: 600,
      verificationDailyLimit: 5,
      newUser: path === 'new user (create)' ? 'create' : 'confirm',
      identitiesOnClaim: 'keep',
      identityRefreshSeconds: 3600,
    },
  }
}

async function main() {
  console.log(
    `[bench] ${new Date().toISOString()} load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  const decision: Record<string, number> = {}
  for (const path of PATHS) {
    const facts = decisionFacts(path)
    const plan = decideLogin(facts, defaultMergeIdentityData)
    if (plan.decision.kind !== 'signIn') throw new Error(`bench: decision for ${path} is ${plan.decision.kind}`)
    decision[path] = nsPerCall(() => decideLogin(facts, defaultMergeIdentityData))
  }
  results.decisionNs = decision

  // --------------------------------------------------------------- 2. engine on memory (logins/s)
  const memory = createMemoryStorage()
  const population = 1_000
  memory.seed({
    organizations: [ORG],
    providers: [PROVIDER],
    users: Array.from({ length: population }, (_, i) => makeUser({ id: `u${i}`, email: `u${i}@acme.test` })),
    members: Array.from({ length: population }, (_, i) => makeMember({ id: `m${i}`, organizationId: ORG.id, userId: `u${i}` })),
    identities: Array.from({ length: population }, (_, i) =>
      makeIdentity({
        id: `i${i}`,
        authProviderId: PROVIDER.id,
        userId: `u${i}`,
        ident: `ext-${i}`,
        lastVerified: new Date(NOW),
        lastSynced: new Date(NOW),
      }),
    ),
  })
  const onMemory = { confirm: engine(memory, 'confirm'), create: engine(memory, 'create') }
  const memoryRate: Record<string, number> = {}
  for (const path of PATHS) memoryRate[path] = await throughput((i) => login(onMemory, path, i % population))
  results.memoryLoginsPerSecond = memoryRate

  // ------------------------------------------------------ 3 + 4. SQL stores: engine vs hand-written
  const stores: { name: string; open: () => Promise<SqlStore> }[] = [{ name: 'pglite', open: openPGlite }]
  if (DATABASE_URL) stores.push({ name: 'postgres', open: openPostgres })
  const sqlResults: Record<string, unknown> = {}
  for (const store of stores) {
    const s = await store.open()
    try {
      await migrateSsoflow(s.db, { dialect: 'postgres', tablePrefix: 'b_' })
      const storage = createKyselyStorage(s.db, { dialect: 'postgres', tablePrefix: 'b_' })
      await s.seed(1_000)
      const sso = { confirm: engine(storage, 'confirm'), create: engine(storage, 'create') }
      const statements: Record<string, number> = {}
      for (const path of PATHS) {
        await login(sso, path, 1)
        s.counter.n = 0
        await login(sso, path, 2)
        statements[path] = s.counter.n
      }
      const [engineMs, rawMs] = await alternating([(i) => login(sso, 'returning', i % 1_000), (i) => rawReturning(s, i % 1_000)])
      const [jitMs, rawJitMs] = await alternating([(i) => login(sso, 'new user (create)', i), (i) => rawJit(s, i)])
      // Flat to 1M identities: the returning login at each scale.
      const scales: Record<string, number> = {}
      for (const scale of SCALES) {
        if (!DATABASE_URL || store.name === 'postgres' || scale <= 100_000) {
          const t = performance.now()
          await s.seed(scale)
          const seeded = (performance.now() - t) / 1000
          const [ms] = await alternating([(i) => login(sso, 'returning', (i * 7919) % scale)], QUICK ? 10 : 30, QUICK ? 3 : 5)
          scales[String(scale)] = ms as number
          console.log(
            `[bench] ${store.name}: ${scale} identities seeded in ${seeded.toFixed(1)} s, returning login ${fmt(ms as number)} ms`,
          )
        }
      }
      sqlResults[store.name] = {
        statements,
        returning: { engineMs, handWrittenMs: rawMs, ratio: (engineMs as number) / (rawMs as number) },
        newUserCreate: { engineMs: jitMs, handWrittenMs: rawJitMs, ratio: (jitMs as number) / (rawJitMs as number) },
        returningByIdentities: scales,
      }
    } finally {
      await s.close()
    }
  }
  results.sql = sqlResults

  // -------------------------------------------------------------------------------- the table
  row('measure', 'path', 'memory', ...stores.map((s) => s.name))
  for (const path of PATHS) row('pure decision (ns)', path, fmt(decision[path] as number, 0), ...stores.map(() => ''))
  for (const path of PATHS)
    row('engine logins/s, one core (8 in flight)', path, fmt(memoryRate[path] as number, 0), ...stores.map(() => ''))
  type SqlRow = {
    statements: Record<string, number>
    returning: { engineMs: number; handWrittenMs: number; ratio: number }
    newUserCreate: { engineMs: number; handWrittenMs: number; ratio: number }
    returningByIdentities: Record<string, number>
  }
  const of = (name: string) => sqlResults[name] as SqlRow
  for (const path of PATHS)
    row('SQL statements (start + callback [+ POST])', path, '-', ...stores.map((s) => of(s.name).statements[path] ?? '-'))
  row('engine ms/login, serial', 'returning', '-', ...stores.map((s) => fmt(of(s.name).returning.engineMs)))
  row('hand-written SQL ms/login, same statements', 'returning', '-', ...stores.map((s) => fmt(of(s.name).returning.handWrittenMs)))
  row('ratio engine / SQL', 'returning', '-', ...stores.map((s) => `${fmt(of(s.name).returning.ratio)}x`))
  row('engine ms/login, serial', 'new user (create)', '-', ...stores.map((s) => fmt(of(s.name).newUserCreate.engineMs)))
  row(
    'hand-written SQL ms/login, same statements',
    'new user (create)',
    '-',
    ...stores.map((s) => fmt(of(s.name).newUserCreate.handWrittenMs)),
  )
  row('ratio engine / SQL', 'new user (create)', '-', ...stores.map((s) => `${fmt(of(s.name).newUserCreate.ratio)}x`))
  for (const scale of SCALES) {
    row(
      `returning ms/login at ${scale.toLocaleString('en')} identities`,
      'returning',
      '-',
      ...stores.map((s) => fmt(of(s.name).returningByIdentities[String(scale)] ?? Number.NaN)),
    )
  }
  results.table = rows
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? []
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')} |`
  console.log(line(rows[0] ?? []))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const r of rows.slice(1)) console.log(line(r))
  writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
  console.log('[bench] wrote bench/results.json')
}

// --------------------------------------------------------------------------------- SQL stores
interface SqlStore {
  readonly db: Kysely<unknown>
  readonly counter: { n: number }
  /** Runs one statement on the raw driver (outside Kysely). */
  q(text: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>
  /** Runs `fn` in one raw transaction. */
  tx<T>(fn: (q: SqlStore['q']) => Promise<T>): Promise<T>
  /** Makes the population `size` identities (users, members, identities), bulk SQL. */
  seed(size: number): Promise<void>
  close(): Promise<void>
}

function seeder(q: SqlStore['q']) {
  let have = 0
  return async (size: number) => {
    if (have === 0) {
      await q(`insert into b_organizations (id, slug, name, default_role, require_2fa) values ('org', 'acme', 'Acme', 'member', false)`)
      await q(
        `insert into b_auth_providers (id, organization_id, provider_key, config, allow_unlinked, scim_enabled, created_at) values ('ap', 'org', 'dummy', '{}', false, false, 0)`,
      )
    }
    if (size <= have) return
    const from = have
    const to = size - 1
    const params = [from, to, NOW]
    await q(
      `insert into b_users (id, username, email, name, is_active, is_suspended, has_usable_password, has_2fa, created_at)
       select 'u' || g, 'user' || g, 'u' || g || '@acme.test', 'User ' || g, true, false, true, false, $3 from generate_series($1::int, $2::int) g`,
      params,
    )
    await q(
      `insert into b_user_emails (user_id, email, email_normalized, is_verified, is_primary)
       select 'u' || g, 'u' || g || '@acme.test', 'u' || g || '@acme.test', true, true from generate_series($1::int, $2::int) g`,
      params.slice(0, 2),
    )
    await q(
      `insert into b_members (id, organization_id, user_id, role, flag_sso_linked, flag_sso_invalid, flag_member_limit_restricted, flag_idp_provisioned, flag_idp_role_restricted, invite_status, created_at)
       select 'm' || g, 'org', 'u' || g, 'member', true, false, false, false, false, 'approved', $3 from generate_series($1::int, $2::int) g`,
      params,
    )
    await q(
      `insert into b_auth_identities (id, auth_provider_id, user_id, ident, data, last_verified, last_synced, created_at)
       select 'i' || g, 'ap', 'u' || g, 'ext-' || g, '{}', $3, $3, $3 from generate_series($1::int, $2::int) g`,
      params,
    )
    await q('analyze')
    have = size
  }
}

async function openPGlite(): Promise<SqlStore> {
  const pglite = new PGlite()
  const counter = { n: 0 }
  const db = new Kysely<unknown>({ dialect: createPGliteDialect(pglite), log: (e) => void (e.level === 'query' && counter.n++) })
  const q: SqlStore['q'] = async (text, params) => ({ rows: (await pglite.query<Record<string, unknown>>(text, params)).rows })
  return {
    db,
    counter,
    q,
    tx: (fn) =>
      pglite.transaction((t) => fn(async (text, params) => ({ rows: (await t.query<Record<string, unknown>>(text, params)).rows }))),
    seed: seeder(q),
    async close() {
      await db.destroy()
      await pglite.close().catch(() => {})
    },
  }
}

async function openPostgres(): Promise<SqlStore> {
  const schema = `ssoflow_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  const make = () => new pg.Pool({ connectionString: DATABASE_URL, max: 4, options: `-c search_path=${schema}` })
  const pool = make()
  const rawPool = make()
  const counter = { n: 0 }
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }), log: (e) => void (e.level === 'query' && counter.n++) })
  const q: SqlStore['q'] = (text, params) => rawPool.query(text, params)
  return {
    db,
    counter,
    q,
    async tx(fn) {
      const client = await rawPool.connect()
      try {
        await client.query('begin')
        const out = await fn((text, params) => client.query(text, params))
        await client.query('commit')
        return out
      } catch (error) {
        await client.query('rollback')
        throw error
      } finally {
        client.release()
      }
    },
    seed: seeder(q),
    async close() {
      await db.destroy()
      await rawPool.end()
      await admin.query(`drop schema ${schema} cascade`)
      await admin.end()
    },
  }
}

// ------------------------------------------------- hand-written SQL: the same reads and writes
const ORG_PROVIDER = `select o.*, p.id as p_id, p.organization_id as p_org, p.provider_key, p.config, p.allow_unlinked, p.scim_enabled, p.created_at as p_created
  from b_organizations o left join b_auth_providers p on p.organization_id = o.id where o.id = $1`
const STATE_INSERT = 'insert into b_pipeline_states (id, version, body, expires_at) values ($1, 1, $2, $3)'
const STATE_READ = 'select id, version, body, expires_at from b_pipeline_states where id = $1 and expires_at > $2'
const STATE_CAS = 'update b_pipeline_states set version = $2, body = $3, expires_at = $4 where id = $1 and version = $5 and expires_at > $6'
const PEEK = `select p.*, i.*, u.*, m.* from (values (1)) as one
  left join lateral (select * from b_auth_providers where id = $1 for key share) as p on true
  left join (b_auth_identities i inner join b_users u on u.id = i.user_id) on i.auth_provider_id = $1 and i.ident = $2
  left join b_members m on m.user_id = i.user_id and m.organization_id = $3`

let rawN = 0
async function rawReturning(s: SqlStore, who: number): Promise<void> {
  const id = `raw-${runId}-${++rawN}`
  const body = JSON.stringify({ id, step: 0, phase: 'open', data: {} })
  const exp = Date.now() + 7_200_000
  await s.q(ORG_PROVIDER, ['org'])
  await s.q(STATE_INSERT, [id, body, exp])
  const state = await s.q(STATE_READ, [id, Date.now()])
  if (state.rows.length !== 1) throw new Error('raw: no state')
  await s.q(ORG_PROVIDER, ['org'])
  await s.tx(async (q) => {
    const read = await q(PEEK, ['ap', `ext-${who}`, 'org'])
    if (!read.rows[0]?.user_id) throw new Error('raw: not linked')
    await q(STATE_CAS, [id, 2, body.replace('"open"', '"consumed"'), exp, 1, Date.now()])
  })
}

async function rawJit(s: SqlStore, n: number): Promise<void> {
  const id = `rawj-${runId}-${n}-${++rawN}`
  const ident = `rawnew-${runId}-${rawN}`
  const email = `${ident}@acme.test`
  const body = JSON.stringify({ id, step: 0, phase: 'open', data: {} })
  const exp = Date.now() + 7_200_000
  const now = Date.now()
  await s.q(ORG_PROVIDER, ['org'])
  await s.q(STATE_INSERT, [id, body, exp])
  await s.q(STATE_READ, [id, Date.now()])
  await s.q(ORG_PROVIDER, ['org'])
  await s.tx(async (q) => {
    await q(PEEK, ['ap', ident, 'org'])
    await q(
      `select pg_advisory_xact_lock(hashtextextended($1, 0)), p.* from (values (1)) one left join lateral (select * from b_auth_providers where id = $2 for key share) p on true`,
      [ident, 'ap'],
    )
    await q(
      `select i.*, u.*, m.* from b_auth_identities i join b_users u on u.id = i.user_id left join b_members m on m.user_id = i.user_id and m.organization_id = $3 where i.auth_provider_id = $1 and i.ident = $2`,
      ['ap', ident, 'org'],
    )
    await q('select pg_advisory_xact_lock(hashtextextended($1, 0))', [email])
    await q(
      'select u.*, e.* from b_user_emails e join b_users u on u.id = e.user_id where e.email_normalized = $1 and u.is_active = true order by u.id',
      [email],
    )
    await q('select * from b_members m where m.organization_id = $1 and m.email_normalized = $2 and m.user_id is null', ['org', email])
    await q(
      'insert into b_users (id, username, email, name, is_active, is_suspended, has_usable_password, has_2fa, created_at) values ($1, $2, $3, $4, true, false, false, false, $5)',
      [`ru-${id}`, randomBytes(16).toString('hex'), email, 'New', now],
    )
    await q('insert into b_user_emails (user_id, email, email_normalized, is_verified, is_primary) values ($1, $2, $2, true, true)', [
      `ru-${id}`,
      email,
    ])
    await q(
      `insert into b_auth_identities (id, auth_provider_id, user_id, ident, data, last_verified, last_synced, created_at) values ($1, 'ap', $2, $3, '{}', $4, $4, $4)`,
      [`ri-${id}`, `ru-${id}`, ident, now],
    )
    await q(
      `insert into b_members (id, organization_id, user_id, role, flag_sso_linked, flag_sso_invalid, flag_member_limit_restricted, flag_idp_provisioned, flag_idp_role_restricted, invite_status, created_at)
       values ($1, 'org', $2, 'member', true, false, false, false, false, 'approved', $3)`,
      [`rm-${id}`, `ru-${id}`, now],
    )
    await q(
      `insert into b_audit_log (id, event, actor_user_id, organization_id, target_id, target_user_id, ip, data, created_at) values ($1, 'member.add', $2, 'org', $3, $2, null, '{}', $4)`,
      [`ra-${id}`, `ru-${id}`, `rm-${id}`, now],
    )
    await q(STATE_CAS, [id, 2, body, exp, 1, Date.now()])
  })
}

await main()
