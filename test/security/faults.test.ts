// Fault injection (issue 12 item 6; invariants 4 and 6). Along each path that writes (a linked
// login, a new user, an attach, an invite acceptance, a setup, a disable) the storage port fails
// at its k-th call, for every k, once before the call reaches the store and once after it
// happened. Whatever fails: a typed error, no partial state (the snapshot equals the one before,
// pipeline states aside), no mail and no signal for the rolled-back decision, and a retry of the
// same request succeeds and ends in the same rows as a run without faults. A mailer or signal
// bus that throws or hangs never undoes a committed decision: the outcome carries a warning for
// the host. On memory, and on the real PostgreSQL when DATABASE_URL is set.
import { sql } from 'kysely'
import type { Result } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions, SessionInfo } from '../../src/engine/types.js'
import { type AuthError, isAuthError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { MailerPort, SignalPort, StorageSeedData, StorageSnapshot } from '../../src/ports/index.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { sha256Hex } from '../../src/state/crypto.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  sentryStyleUrls,
  validatingStorage,
} from '../../src/testing/index.js'
import { DATABASE_URL, freshStorage, listTables, openPostgres, reportSkip, type TestDatabase } from '../helpers/databases.js'
import { type FaultMode, failAt, faultyStorage } from './faults.js'
import type { RaceStorage } from './race.js'

const ORG = makeOrganization({ id: 'org-f', slug: 'faults', name: 'Faults' })
const PROVIDER = makeProvider({ id: 'ap-f', organizationId: ORG.id, providerKey: 'dummy' })
const LINKED = { ...NO_FLAGS, ssoLinked: true }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
const INVITE_TOKEN = 'fault-invite-token-0123456789abcdef'

/** Tallies for docs/security.md (printed once per backend). */
const tally = { faults: 0, retries: 0 }

interface Engine {
  readonly sso: AuthPipeline
  readonly storage: ReturnType<typeof faultyStorage<RaceStorage>>
  readonly mailer: ReturnType<typeof createRecordingMailer>
  readonly signals: ReturnType<typeof createRecordingSignals>
  readonly clock: FixedClock
}

/** One write path: rows to seed, the steps before the request under test, and the request. */
interface Path {
  readonly name: string
  readonly seed: StorageSeedData
  readonly policy?: AuthPipelineOptions['policy']
  /** Runs everything before the request under test; returns the request (called again for the retry). */
  prepare(e: Engine): Promise<() => Promise<Result<unknown, AuthError>>>
}

async function handleOf<T>(r: PromiseLike<Result<T, AuthError>>): Promise<string> {
  const v = await r
  if (v.isErr()) throw new Error(`expected ok, got ${v.error.code}`)
  const step = v.value as { handle?: unknown }
  if (typeof step.handle !== 'string') throw new Error('no handle')
  return step.handle
}

const admin = makeUser({ id: 'admin', email: 'admin@corp.example' })
const adminMember = makeMember({ id: 'm-admin', organizationId: ORG.id, userId: 'admin', role: 'owner', flags: LINKED })
const bob = makeUser({ id: 'bob', email: 'bob@corp.example' })

const PATHS: readonly Path[] = [
  {
    name: 'linked login (returning user, flags fixed up)',
    seed: {
      providers: [PROVIDER],
      users: [bob],
      identities: [makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'ext-bob' })],
      members: [makeMember({ id: 'm-bob', organizationId: ORG.id, userId: 'bob', flags: { ...NO_FLAGS, ssoInvalid: true } })],
    },
    async prepare(e) {
      const session: SessionInfo = { id: 'bob-tab' }
      const handle = await handleOf(e.sso.beginLogin({ organizationId: ORG.id, session }))
      return async () => e.sso.advance({ handle, session, request: post({ id: 'ext-bob', email: 'bob@corp.example' }) })
    },
  },
  {
    name: 'new user (op=newuser after the page)',
    seed: { providers: [PROVIDER] },
    async prepare(e) {
      const session: SessionInfo = { id: 'new-tab' }
      const handle = await handleOf(e.sso.beginLogin({ organizationId: ORG.id, session }))
      await handleOf(e.sso.advance({ handle, session, request: post({ id: 'ext-new', email: 'new@corp.example' }) }))
      return async () => e.sso.finishLogin({ handle, session, op: 'newuser' })
    },
  },
  {
    name: 'attach (the signed-in user confirms)',
    seed: { providers: [PROVIDER], users: [bob], members: [makeMember({ id: 'm-bob', organizationId: ORG.id, userId: 'bob' })] },
    async prepare(e) {
      const session: SessionInfo = { id: 'bob-tab', userId: 'bob' }
      const handle = await handleOf(e.sso.beginLogin({ organizationId: ORG.id, session }))
      await handleOf(e.sso.advance({ handle, session, request: post({ id: 'ext-bob', email: 'bob@corp.example' }) }))
      return async () => e.sso.finishLogin({ handle, session, op: 'confirm' })
    },
  },
  {
    name: 'invite acceptance (a returning user with a session invite)',
    seed: {
      providers: [PROVIDER],
      users: [bob],
      identities: [makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'ext-bob' })],
    },
    async prepare(e) {
      const invite = {
        ...makeMember({ id: 'inv', organizationId: ORG.id, userId: null, role: 'admin' }),
        email: 'someone-else@corp.example',
        emailNormalized: 'someone-else@corp.example',
        inviteTokenHash: await sha256Hex(INVITE_TOKEN),
        inviteExpiresAt: new Date('2026-04-01T00:00:00.000Z'),
      }
      await e.storage.seed({ members: [invite] })
      const session: SessionInfo = { id: 'bob-tab', invite: { memberId: 'inv', token: INVITE_TOKEN, organizationId: ORG.id } }
      const handle = await handleOf(e.sso.beginLogin({ organizationId: ORG.id, session }))
      return async () => e.sso.advance({ handle, session, request: post({ id: 'ext-bob', email: 'bob@corp.example' }) })
    },
  },
  {
    name: 'setup (the admin finishes)',
    seed: { users: [admin], members: [adminMember, makeMember({ id: 'm-bob', organizationId: ORG.id, userId: 'bob' })] },
    async prepare(e) {
      await e.storage.seed({ users: [bob] })
      const session: SessionInfo = { id: 'admin-tab', userId: 'admin' }
      const handle = await handleOf(e.sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session }))
      return async () => e.sso.advance({ handle, session, request: post({ id: 'ext-admin', email: 'admin@corp.example' }) })
    },
  },
  {
    name: 'disable (the admin turns SSO off)',
    seed: {
      providers: [PROVIDER],
      users: [admin, bob],
      members: [adminMember, makeMember({ id: 'm-bob', organizationId: ORG.id, userId: 'bob', flags: LINKED })],
      identities: [
        makeIdentity({ id: 'ai-admin', authProviderId: PROVIDER.id, userId: 'admin', ident: 'ext-admin' }),
        makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'ext-bob' }),
      ],
    },
    async prepare(e) {
      return async () => e.sso.disableProvider({ organizationId: ORG.id, session: { id: 'admin-tab', userId: 'admin' } })
    },
  },
]

/** JSON with object keys sorted at every level. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v) ?? 'undefined'
}

/** A snapshot without pipeline states (the caller's own state may change) and without generated ids/times. */
function shape(s: StorageSnapshot): unknown {
  // generated ids (ULIDs) and random usernames differ from run to run, at any depth
  const generated = (v: unknown): unknown =>
    typeof v === 'string'
      ? v.replace(/[0-9A-HJKMNP-TV-Z]{26}|\b[0-9a-f]{32}\b/g, 'GENERATED')
      : Array.isArray(v)
        ? v.map(generated)
        : v !== null && typeof v === 'object' && !(v instanceof Date)
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, generated(x)]))
          : v
  const strip = (rows: readonly object[]) =>
    rows
      .map((r) => {
        const { id: _id, createdAt: _c, ...rest } = r as Record<string, unknown>
        return stable(generated(rest))
      })
      .sort()
  const { pipelineStates: _p, ...tables } = s as unknown as Record<string, readonly object[]>
  return Object.fromEntries(Object.entries(tables).map(([k, rows]) => [k, strip(rows)]))
}
const dataOf = (s: StorageSnapshot) => {
  const { pipelineStates: _p, ...rest } = s as unknown as Record<string, unknown>
  return rest
}

interface BackendF {
  readonly name: string
  readonly enabled: boolean
  /** Which calls get faults: all of them, or only those that talk to the database in a transaction. */
  readonly faultAll: boolean
  open(): Promise<{ fresh(clock: FixedClock): Promise<RaceStorage>; close(): Promise<void> }>
}

const BACKENDS: readonly BackendF[] = [
  {
    name: 'memory',
    enabled: true,
    faultAll: true,
    open: async () => ({ fresh: async (clock) => createMemoryStorage({ clock }), close: async () => {} }),
  },
  {
    name: 'postgres',
    enabled: DATABASE_URL !== '',
    // Memory covers every call; on PostgreSQL the transaction's own calls and its commit, where
    // the real rollback is what is being tested (every call would take a minute).
    faultAll: false,
    async open() {
      const database: TestDatabase = await openPostgres()
      // One schema for the file, emptied before each run (a schema per fault would take minutes;
      // the fixed clocks all read the same instant).
      let current: { storage: RaceStorage; prefix: string; drop(): Promise<void> } | null = null
      return {
        async fresh(clock) {
          if (current === null) current = await freshStorage(database, { clock })
          else {
            const tables = (await listTables(database, current.prefix)).filter((t) => !t.endsWith('_migrations'))
            await sql.raw(`truncate ${tables.map((t) => `"${t}"`).join(', ')}`).execute(database.db)
          }
          return current.storage
        },
        async close() {
          await current?.drop()
          await database.close()
        },
      }
    },
  },
]

function engineOver(raw: RaceStorage, clock: FixedClock, path: Path, ports: { mailer?: MailerPort; signals?: SignalPort } = {}): Engine {
  const storage = faultyStorage(validatingStorage(raw) as RaceStorage)
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const options: AuthPipelineOptions = {
    storage,
    mailer: ports.mailer ?? mailer,
    signals: ports.signals ?? signals,
    providers: { dummy: dummyProvider() },
    secret: 'fault injection test secret, thirty-two bytes+',
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
    policy: { afterCommitTimeoutMs: 200, ...path.policy },
  }
  return { sso: createAuthPipeline(options), storage, mailer, signals, clock }
}

for (const backend of BACKENDS) {
  if (!backend.enabled) reportSkip(`fault injection (${backend.name})`, 'DATABASE_URL')
  describe.skipIf(!backend.enabled)(`fault injection on ${backend.name} (issue 12 item 6)`, { timeout: 240_000 }, () => {
    let opened: Awaited<ReturnType<BackendF['open']>>
    beforeAll(async () => {
      tally.faults = 0
      tally.retries = 0
      opened = await backend.open()
    })
    afterAll(async () => {
      await opened?.close()
      if (tally.faults > 0) console.info(`[faults] ${backend.name}: ${tally.faults} faults injected, ${tally.retries} retries`)
    })

    async function world(path: Path, ports: { mailer?: MailerPort; signals?: SignalPort } = {}) {
      const clock = fixedClock('2026-03-01T12:00:00.000Z')
      const raw = await opened.fresh(clock)
      await raw.seed({ organizations: [ORG], ...path.seed })
      const e = engineOver(raw, clock, path, ports)
      const request = await path.prepare(e)
      return { e, raw, request }
    }

    for (const path of PATHS) {
      it(`${path.name}: the k-th storage call fails, for every k, before and after it happened`, async () => {
        // A clean run: how many calls the request makes, and the rows it ends with.
        const clean = await world(path)
        clean.e.storage.faults.reset()
        const ok = await clean.request()
        if (ok.isErr()) throw new Error(`clean run failed: ${ok.error.code}`)
        const calls = clean.e.storage.faults.calls.map((c) => c.name)
        const cleanRows = shape(await clean.raw.snapshot())
        expect(calls.length).toBeGreaterThan(2)

        for (let k = 1; k <= calls.length; k++) {
          if (!backend.faultAll && !/^(tx\.|transaction$)/.test(calls[k - 1] ?? '')) continue
          // On PostgreSQL a write inside the transaction fails after it happened (the rollback must
          // undo it), the commit both ways.
          const modes: FaultMode[] = backend.faultAll || calls[k - 1] === 'transaction' ? ['before', 'after'] : ['after']
          for (const mode of modes) {
            const label = `${path.name}: call #${k} ${calls[k - 1]} fails ${mode}`
            const w = await world(path)
            const before = await w.raw.snapshot()
            w.e.storage.faults.reset()
            w.e.storage.faults.plan = failAt(k, mode)
            const result = await w.request()
            w.e.storage.faults.plan = null
            tally.faults += w.e.storage.faults.injected.length
            const after = await w.raw.snapshot()
            const committed = JSON.stringify(shape(after)) === JSON.stringify(cleanRows)
            if (result.isErr()) {
              expect(isAuthError(result.error), label).toBe(true)
              if (!committed) {
                // rolled back: nothing of it is stored, nothing was mailed or signalled
                expect(dataOf(after), label).toEqual(dataOf(before))
                expect(w.e.mailer.sent, label).toEqual([])
                expect(w.e.signals.emitted, label).toEqual([])
              } else {
                // only a fault reported after the commit itself may leave a committed decision
                expect(`${calls[k - 1]} ${mode}`, label).toMatch(/^transaction after$|^pipelineStates\.(compareAndSet|delete) after$/)
              }
            } else {
              // the engine absorbed the fault: then the decision is complete
              expect(committed, label).toBe(true)
            }
            // The retry of the same request succeeds, or, when the decision had committed (only its
            // answer or the pipeline's closing was lost), is answered as done: the state is spent
            // or still held, the provider exists (setup) or is gone (disable). Either way it ends
            // with the rows of the clean run.
            tally.retries++
            const retry = await w.request()
            if (retry.isErr()) {
              const done = ['STATE_CONSUMED', 'STATE_CONFLICT', 'PROVIDER_EXISTS', 'PROVIDER_NOT_CONFIGURED']
              expect(committed && done.includes(retry.error.code), `${label}: retry ${retry.error.code}`).toBe(true)
            }
            expect(shape(await w.raw.snapshot()), `${label}: after the retry`).toEqual(cleanRows)
          }
        }
      })
    }

    it('a mailer or signal bus that throws or hangs never undoes a committed decision; the outcome reports it', async () => {
      const throwing: MailerPort = {
        send: async () => {
          throw new Error('smtp down')
        },
      }
      const hanging: MailerPort = { send: () => new Promise<void>(() => {}) }
      const throwingSignals: SignalPort = {
        emit: async () => {
          throw new Error('bus down')
        },
      }
      const hangingSignals: SignalPort = { emit: () => new Promise<void>(() => {}) }
      const newUser = PATHS[1] as Path
      const setup = PATHS[4] as Path
      for (const [path, ports, expected] of [
        [newUser, { mailer: throwing, signals: throwingSignals }, ['error']],
        [newUser, { mailer: hanging, signals: hangingSignals }, ['timeout']],
        [setup, { mailer: throwing }, ['error']],
        [setup, { mailer: hanging }, ['timeout']],
      ] as const) {
        const w = await world(path, ports)
        const r = await w.request()
        if (r.isErr()) throw new Error(r.error.code)
        const out = r.value as { kind: string; warnings?: readonly { code: string; reason?: string }[] }
        expect(['signedIn', 'setupComplete']).toContain(out.kind)
        if (path === newUser) {
          expect(out.warnings?.length).toBeGreaterThan(0)
          expect(new Set(out.warnings?.map((x) => x.reason))).toEqual(new Set(expected))
        } else expect(out.warnings ?? []).toEqual([]) // setup's link mails are durable background work now
        const rows = await w.raw.snapshot()
        if (path === newUser) expect(rows.users).toHaveLength(1)
        else expect(rows.providers).toHaveLength(1)
      }
    })
  })
}
