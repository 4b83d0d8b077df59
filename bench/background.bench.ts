/**
 * Background work (issue 16 items 2 and 5), through the Kysely adapter:
 *
 * 1. The link-mail fan-out for orgs of 1k, 10k and 100k members: statements and time of the
 *    request (`resendLinkRequests`: O(1), it records one outbox row) and of the drain
 *    (`runPendingWork` until done: O(pages), one member query and one progress write per page of
 *    `memberPageSize` = 500), with an instant mailer.
 * 2. Housekeeping: a long login run (`beginLogin` writes a pipeline-state row each, plus a SAML
 *    single-use marker per login in the token table) with the drain every 100 logins: the tables
 *    stay bounded (the largest size seen is printed).
 *
 * PostgreSQL when DATABASE_URL is set (its own schema, dropped at the end), PGlite otherwise.
 * Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx vitest bench --run bench/background.bench.ts`
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, bench, describe } from 'vitest'
import { createAuthPipeline } from '../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions } from '../src/engine/types.js'
import { createKyselyStorage, type KyselyStorage, migrateSsoflow } from '../src/kysely/index.js'
import { dummyProvider } from '../src/providers/dummy/index.js'
import { createRecordingSignals, fixedClock, sentryStyleUrls } from '../src/testing/index.js'
import {
  type AnyKysely,
  DATABASE_URL,
  hookDialect,
  openPGlite,
  openPostgres,
  statementCounter,
  type TestDatabase,
} from '../test/helpers/databases.js'

const PREFIX = 'bg_'
const SIZES = [1_000, 10_000, 100_000] as const
const HOUSEKEEPING = process.env.BENCH_HOUSEKEEPING !== '0'
const clock = fixedClock('2026-03-01T12:00:00.000Z')
const counter = statementCounter()
let database: TestDatabase
let db: AnyKysely
let storage: KyselyStorage
let sso: AuthPipeline
let mails = 0
const figures: string[] = []

const options = (): AuthPipelineOptions => ({
  storage,
  mailer: {
    async send() {
      mails++
    },
  },
  signals: createRecordingSignals(),
  providers: { dummy: dummyProvider() },
  secret: 'background bench secret of at least thirty-two bytes',
  urls: sentryStyleUrls('https://app.example.com'),
  clock,
  policy: { stateTtlSeconds: 60 },
})

/** Inserts an org of `n` unlinked members (and their users), an owner and a provider, in bulk. */
async function seedOrg(n: number): Promise<void> {
  const org = `org${n}`
  await storage.seed({
    organizations: [{ id: org, slug: org, name: `Org ${n}`, defaultRole: 'member', require2fa: false }],
    users: [
      {
        id: `owner${n}`,
        username: `owner${n}`,
        email: `owner${n}@example.com`,
        name: 'Owner',
        isActive: true,
        isSuspended: false,
        hasUsablePassword: true,
        has2fa: false,
        createdAt: clock.now(),
      },
    ],
    members: [
      {
        id: `${org}-owner`,
        organizationId: org,
        userId: `owner${n}`,
        email: null,
        emailNormalized: null,
        role: 'owner',
        flags: { ssoLinked: true, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false },
        inviteTokenHash: null,
        inviteExpiresAt: null,
        inviteStatus: 'approved',
        createdAt: clock.now(),
      },
    ],
    providers: [
      {
        id: `ap${n}`,
        organizationId: org,
        providerKey: 'dummy',
        config: {},
        allowUnlinked: true,
        scimEnabled: false,
        createdAt: clock.now(),
      },
    ],
  })
  const t = clock.now().getTime()
  await sql
    .raw(
      `insert into ${PREFIX}users (id, username, email, name, is_active, is_suspended, has_usable_password, has_2fa, created_at)
       select 'u${n}-' || lpad(i::text, 6, '0'), 'u${n}-' || i, 'u${n}-' || i || '@example.com', 'U', true, false, true, false, ${t}
       from generate_series(1, ${n}) as i`,
    )
    .execute(db)
  await sql
    .raw(
      `insert into ${PREFIX}members (id, organization_id, user_id, role, flag_sso_linked, flag_sso_invalid, flag_member_limit_restricted,
         flag_idp_provisioned, flag_idp_role_restricted, invite_status, created_at)
       select 'm${n}-' || lpad(i::text, 6, '0'), '${org}', 'u${n}-' || lpad(i::text, 6, '0'), 'member', false, false, false, false, false, 'approved', ${t}
       from generate_series(1, ${n}) as i`,
    )
    .execute(db)
}

beforeAll(async () => {
  database = DATABASE_URL ? await openPostgres() : await openPGlite()
  console.log(DATABASE_URL ? '[bench] PostgreSQL at DATABASE_URL' : '[bench] PGlite (set DATABASE_URL to measure PostgreSQL)')
  await migrateSsoflow(database.db, { dialect: 'postgres', tablePrefix: PREFIX })
  db = database.reopen((d) => hookDialect(d, counter))
  storage = createKyselyStorage(db, { dialect: 'postgres', tablePrefix: PREFIX, clock })
  for (const n of SIZES) await seedOrg(n)
  // Bulk-loaded tables: refresh the planner's statistics, as autovacuum would in production.
  await sql.raw('analyze').execute(database.db)
  sso = createAuthPipeline(options())
}, 600_000)

afterAll(async () => {
  console.log(['[bench] background work figures:', ...figures].join('\n'))
  await db?.destroy()
  await database?.close()
})

const ONCE = { iterations: 2, warmupIterations: 0, time: 0, warmupTime: 0 }

describe('link-mail fan-out: request O(1), drain O(pages)', () => {
  for (const n of SIZES) {
    bench(
      `${n} members: resendLinkRequests + runPendingWork until done`,
      async () => {
        counter.take()
        mails = 0
        const t0 = performance.now()
        const requested = await sso.resendLinkRequests({ organizationId: `org${n}`, session: { id: 's', userId: `owner${n}` } })
        const t1 = performance.now()
        if (requested.isErr() || !requested.value.queued) throw new Error(`request failed: ${JSON.stringify(requested)}`)
        const requestStatements = counter.take().length
        let pages = 0
        for (;;) {
          const r = await sso.runPendingWork({ limit: 1000, sweep: false })
          if (r.isErr()) throw new Error(r.error.code)
          pages += r.value.pages
          if (!r.value.more) break
        }
        const t2 = performance.now()
        const drainStatements = counter.take().length
        if (mails !== n) throw new Error(`expected ${n} mails, got ${mails}`)
        figures.push(
          `  ${String(n).padStart(6)} members | request ${requestStatements} statements ${(t1 - t0).toFixed(1)} ms | drain ${pages} pages ${drainStatements} statements ${(t2 - t1).toFixed(0)} ms | ${mails} mails`,
        )
        // The next window of the resend key (a new resend mails again; the mailer here keeps nothing).
        clock.advance(3_600_000)
      },
      ONCE,
    )
  }
})

describe.runIf(HOUSEKEEPING)('housekeeping: tables stay bounded over a long login run with the drain on a schedule', () => {
  const LOGINS = 20_000
  bench(
    `${LOGINS} login starts (1 s apart, state TTL 60 s, a single-use marker each), drain every 100`,
    async () => {
      let maxStates = 0
      let maxTokens = 0
      let swept = 0
      const t0 = performance.now()
      for (let i = 0; i < LOGINS; i++) {
        const begun = await sso.beginLogin({ organizationId: 'org1000', session: { id: `login-${i}` } })
        if (begun.isErr()) throw new Error(begun.error.code)
        await storage.oneTimeTokens.create({
          hash: `${i}`.padStart(64, '0'),
          purpose: 'single-use-response',
          payload: '{}',
          expiresAt: new Date(clock.now().getTime() + 120_000),
        })
        clock.advance(1_000)
        if (i % 100 === 99) {
          const r = await sso.runPendingWork({ limit: 1 })
          if (r.isErr()) throw new Error(r.error.code)
          swept += r.value.swept.pipelineStates + r.value.swept.oneTimeTokens
          const { rows } = await sql<{ s: number; t: number }>`select
              (select count(*) from ${sql.table(`${PREFIX}pipeline_states`)})::int as s,
              (select count(*) from ${sql.table(`${PREFIX}one_time_tokens`)})::int as t`.execute(db)
          maxStates = Math.max(maxStates, Number(rows[0]?.s))
          maxTokens = Math.max(maxTokens, Number(rows[0]?.t))
        }
      }
      counter.take()
      figures.push(
        `  housekeeping: ${LOGINS} logins in ${((performance.now() - t0) / 1000).toFixed(0)} s; largest pipeline_states ${maxStates} rows, one_time_tokens ${maxTokens} rows; ${swept} rows swept`,
      )
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  )
})
