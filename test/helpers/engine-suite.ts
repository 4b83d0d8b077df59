/**
 * The engine scenarios every SQL storage adapter runs (`ssoflow/kysely` in
 * test/kysely/engine.test.ts, `ssoflow/drizzle` in test/drizzle/engine.test.ts), on every
 * database the adapter's test opens: a login end to end, 50 concurrent finishLogin calls for one
 * new external id, 50 concurrent setups for one org, threat 53, and identity strings no database
 * stores. Each scenario gets fresh tables; the storage is wrapped in `validatingStorage`.
 */
import type { ResultAsync } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveContext } from '../../src/engine/context.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import { createState, transitionState } from '../../src/engine/pipeline-state.js'
import type { AuthPipeline, AuthPipelineOptions, SessionInfo, Step } from '../../src/engine/types.js'
import { type AuthError, isAuthError } from '../../src/errors.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { Clock, StoragePort, StorageSeedData, StorageSnapshot } from '../../src/ports/index.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { stepFingerprint } from '../../src/state/codec.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  validatingStorage,
} from '../../src/testing/index.js'
import { reportSkip } from './databases.js'

/** A storage with the seeding and snapshot helpers both SQL adapters have. */
export type SeededStorage = StoragePort & { seed(data: StorageSeedData): Promise<void>; snapshot(): Promise<StorageSnapshot> }

/** One database an adapter's test opens; `fresh` makes new tables and a storage on them. */
export interface EngineDatabase {
  fresh(options: { clock: Clock }): Promise<{ storage: SeededStorage; drop(): Promise<void> }>
  close(): Promise<void>
}

/** An adapter under test and the databases to run it on. */
export interface EngineAdapter {
  readonly name: string
  readonly targets: readonly {
    readonly name: string
    readonly enabled: boolean
    readonly variable?: string | undefined
    open(): Promise<EngineDatabase>
  }[]
}

export const BASE_URL = 'https://app.example.com'
export const urls: AuthPipelineOptions['urls'] = {
  baseUrl: BASE_URL,
  orgLogin: (org) => `/auth/login/${org.slug}/`,
  authSettings: (org) => `/settings/${org.slug}/auth/`,
  providerSettings: (org) => `/settings/${org.slug}/auth/provider/`,
  afterLogin: (org) => `/organizations/${org.slug}/`,
  pipelineCallback: () => `${BASE_URL}/auth/sso/`,
  verifyAccount: (token) => `${BASE_URL}/auth/verify/${token}/`,
}
export const ORG = makeOrganization({ id: 'org1', slug: 'acme' })
export const PROVIDER = makeProvider({ id: 'ap1', organizationId: ORG.id, providerKey: 'dummy' })
export const N = 50

export const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
/** Unwraps a Result, failing with the error code (not an opaque message). */
export async function unwrap<T>(result: ResultAsync<T, AuthError>): Promise<T> {
  const r = await result
  if (r.isErr()) throw new Error(`expected ok, got ${r.error.code} ${JSON.stringify(r.error.details ?? {})}`)
  return r.value
}
export const handleOf = (step: Step): string => {
  if (!('handle' in step) || typeof step.handle !== 'string') throw new Error(`no handle on ${step.kind}`)
  return step.handle
}

/** A login pipeline whose provider steps already ran (what `advance` leaves before finishing). */
export async function stepsDone(options: AuthPipelineOptions, session: SessionInfo): Promise<string> {
  const ctx = resolveContext(options)
  const steps = dummyProvider()
    .loginSteps({})
    .map((st) => st.id)
  const created = await createState(ctx, {
    sessionId: session.id,
    flow: 'login',
    organizationId: ORG.id,
    authProviderId: PROVIDER.id,
    providerKey: 'dummy',
    initiatorUserId: session.userId ?? null,
    fingerprint: await stepFingerprint('dummy', 'login', steps),
    next: null,
    referrer: null,
  })
  if (created.isErr()) throw new Error(created.error.code)
  const opened = created.value.opened
  const ran = await transitionState(ctx, opened, { ...opened.state, step: steps.length })
  if (ran.isErr()) throw new Error(ran.error.code)
  return created.value.handle
}

/** Registers the shared engine scenarios for `adapter` on each of its databases. */
export function engineSuite(adapter: EngineAdapter): void {
  for (const target of adapter.targets) {
    if (!target.enabled) reportSkip(`${adapter.name} engine (${target.name})`, target.variable ?? '')
    describe.skipIf(!target.enabled)(`engine on ${adapter.name}/${target.name}`, () => {
      let database: EngineDatabase
      beforeAll(async () => {
        database = await target.open()
      })
      afterAll(async () => {
        await database?.close()
      })

      async function setup() {
        const clock = fixedClock('2026-03-01T12:00:00.000Z')
        const fresh = await database.fresh({ clock })
        const mailer = createRecordingMailer()
        const signals = createRecordingSignals()
        const options: AuthPipelineOptions = {
          // Every port return value is checked against the contract (shapes, matching rows...).
          storage: validatingStorage(fresh.storage),
          mailer,
          signals,
          providers: { dummy: dummyProvider() },
          secret: `${adapter.name} engine test secret, thirty-two bytes or more`,
          urls,
          clock,
        }
        const sso: AuthPipeline = createAuthPipeline(options)
        return { ...fresh, sso, mailer, signals, clock, options }
      }

      it('a login end to end: a new user signs up, then signs in again as the same user', async () => {
        const w = await setup()
        try {
          await w.storage.seed({ organizations: [ORG], providers: [PROVIDER] })
          const form = { id: 'ext-e2e', email: 'e2e@corp.example', email_verified: 'on', name: 'End To End' }
          const first: SessionInfo = { id: 'e2e-1' }
          const begun = await unwrap(w.sso.beginLogin({ organizationId: ORG.id, session: first }))
          const page = await unwrap(w.sso.advance({ handle: handleOf(begun), request: post(form), session: first }))
          expect(page.kind).toBe('confirmationRequired')
          const created = await unwrap(w.sso.finishLogin({ handle: handleOf(page), session: first, op: 'newuser' }))
          expect(created).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
          const userId = created.kind === 'signedIn' ? created.userId : ''
          const second: SessionInfo = { id: 'e2e-2' }
          const again = await unwrap(w.sso.beginLogin({ organizationId: ORG.id, session: second }))
          const back = await unwrap(w.sso.advance({ handle: handleOf(again), request: post(form), session: second }))
          expect(back).toMatchObject({ kind: 'signedIn', userId })
          const snap = await w.storage.snapshot()
          expect(snap.users.map((u) => [u.id, u.email, u.name])).toEqual([[userId, 'e2e@corp.example', 'End To End']])
          expect(snap.identities.map((i) => [i.userId, i.ident])).toEqual([[userId, 'ext-e2e']])
          expect(snap.members.map((m) => [m.userId, m.organizationId, m.flags.ssoLinked])).toEqual([[userId, ORG.id, true]])
          expect(w.signals.emitted.filter((sig) => sig.name === 'user_signup')).toHaveLength(1)
        } finally {
          await w.drop()
        }
      })

      it(`${N} concurrent finishLogin calls for one new external id: one user, identity and membership`, async () => {
        const w = await setup()
        try {
          await w.storage.seed({ organizations: [ORG], providers: [PROVIDER] })
          const sessions: SessionInfo[] = Array.from({ length: N }, (_, i) => ({ id: `sess-${i}` }))
          const form = { id: 'ext-race', email: 'race@corp.example', email_verified: 'on', name: 'Race' }
          // Each caller has its own pipeline, begun and advanced to the provider's callback.
          const handles: string[] = []
          for (const session of sessions) {
            const begun = await unwrap(w.sso.beginLogin({ organizationId: ORG.id, session }))
            const advanced = await unwrap(w.sso.advance({ handle: handleOf(begun), request: post(form), session }))
            expect(advanced.kind).toBe('confirmationRequired')
            handles.push(handleOf(advanced))
          }
          const results = await Promise.all(
            handles.map((handle, i) => w.sso.finishLogin({ handle, session: sessions[i] as SessionInfo, op: 'newuser' })),
          )
          const snap = await w.storage.snapshot()
          expect(snap.users).toHaveLength(1)
          expect(snap.identities).toHaveLength(1)
          expect(snap.members).toHaveLength(1)
          const userId = snap.users[0]?.id
          expect(snap.identities[0]).toMatchObject({ userId, ident: 'ext-race', authProviderId: PROVIDER.id })
          expect(snap.members[0]).toMatchObject({ userId, organizationId: ORG.id })
          expect(snap.userEmails).toHaveLength(1)
          let successes = 0
          for (const r of results) {
            if (r.isOk()) {
              successes++
              expect(r.value.kind).toBe('signedIn')
              if (r.value.kind === 'signedIn') expect(r.value.userId).toBe(userId)
            } else {
              expect(isAuthError(r.error)).toBe(true)
              expect(r.error.retryable).toBe(true)
            }
          }
          expect(successes).toBeGreaterThan(0)
          expect(w.signals.emitted.filter((s) => s.name === 'user_signup')).toHaveLength(1)
          expect(snap.audit.filter((a) => a.event === 'member.add')).toHaveLength(1)
        } finally {
          await w.drop()
        }
      })

      it('issue 19: an IdP name with U+0000 or a lone surrogate is refused at the boundary, never a storage error', async () => {
        const w = await setup()
        try {
          await w.storage.seed({ organizations: [ORG], providers: [PROVIDER] })
          const before = await w.storage.snapshot()
          for (const [i, name] of ['Zo\u0000e', 'Zo\ud800e'].entries()) {
            const session: SessionInfo = { id: `odd-${i}` }
            const begun = await unwrap(w.sso.beginLogin({ organizationId: ORG.id, session }))
            const r = await w.sso.advance({
              handle: handleOf(begun),
              request: post({ id: `ext-odd-${i}`, email: 'odd@corp.example', email_verified: 'on', name }),
              session,
            })
            // Refused where it enters: the dummy provider binds its form into the pipeline first
            // (PROVIDER_RESPONSE_INVALID); a provider building the identity directly gets IDENTITY_INVALID.
            const error = r._unsafeUnwrapErr()
            expect(['PROVIDER_RESPONSE_INVALID', 'IDENTITY_INVALID']).toContain(error.code)
            expect(error.retryable).toBe(false)
          }
          const { pipelineStates: _b, ...dataBefore } = before
          const { pipelineStates: _a, ...dataAfter } = await w.storage.snapshot()
          expect(dataAfter).toEqual(dataBefore)
        } finally {
          await w.drop()
        }
      })

      it("threat 53 on real SQL: a new-user insert that collides on (provider, external id) never moves the owner's identity", async () => {
        const w = await setup()
        try {
          const owner = makeUser({ id: 'owner', email: 'owner@corp.example' })
          await w.storage.seed({
            organizations: [ORG],
            providers: [PROVIDER],
            users: [owner],
            identities: [makeIdentity({ id: 'i-owner', authProviderId: PROVIDER.id, userId: owner.id, ident: 'ext-owned' })],
            members: [makeMember({ id: 'm-owner', organizationId: ORG.id, userId: owner.id, flags: { ...NO_FLAGS, ssoLinked: true } })],
          })
          // The first transaction reads stale data (as if the identity were inserted concurrently):
          // it decides "new user", and its inserts hit the real unique index.
          const original = w.storage.transaction.bind(w.storage)
          let calls = 0
          ;(w.storage as { transaction: typeof original }).transaction = (fn) => {
            calls++
            if (calls > 1) return original(fn)
            return original((tx) => {
              const stale = Object.create(tx) as typeof tx
              stale.getLinkedIdentity = async () => null
              // The sign-up read (adapters that offer it) reads the identity too.
              const readSignUp = tx.readSignUp?.bind(tx)
              if (readSignUp) stale.readSignUp = async (...args) => ({ ...(await readSignUp(...args)), linked: null })
              return fn(stale)
            })
          }
          const before = await w.storage.snapshot()
          const session: SessionInfo = { id: 'steal-1' }
          const handle = await stepsDone(w.options, session)
          const out = await unwrap(
            w.sso.finishLogin({ handle, session, identity: { id: 'ext-owned', email: 'attacker@corp.example' }, op: 'newuser' }),
          )
          expect(calls).toBe(2)
          expect(out).toMatchObject({ kind: 'signedIn', userId: owner.id })
          const after = await w.storage.snapshot()
          expect(after.users).toEqual(before.users)
          expect(after.userEmails).toEqual(before.userEmails)
          expect(after.identities.map((i) => [i.id, i.userId, i.ident])).toEqual([['i-owner', owner.id, 'ext-owned']])
          expect(after.members.map((m) => m.id)).toEqual(['m-owner'])
          expect(w.signals.emitted.filter((sig) => sig.name === 'user_signup')).toEqual([])
        } finally {
          await w.drop()
        }
      })

      it(`${N} concurrent setups for one org: exactly one provider, the others typed errors`, async () => {
        const w = await setup()
        try {
          const admin = makeUser({ id: 'admin', email: 'admin@corp.example' })
          await w.storage.seed({
            organizations: [ORG],
            users: [admin],
            members: [makeMember({ id: 'm-admin', organizationId: ORG.id, userId: admin.id, role: 'owner' })],
          })
          const sessions: SessionInfo[] = Array.from({ length: N }, (_, i) => ({ id: `admin-sess-${i}`, userId: admin.id }))
          const handles: string[] = []
          for (const session of sessions) {
            const begun = await unwrap(w.sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session }))
            handles.push(handleOf(begun))
          }
          const form = { id: 'admin-ext', email: 'admin@corp.example', email_verified: 'on' }
          const results = await Promise.all(
            handles.map((handle, i) => w.sso.advance({ handle, request: post(form), session: sessions[i] as SessionInfo })),
          )
          const snap = await w.storage.snapshot()
          expect(snap.providers).toHaveLength(1)
          expect(snap.identities).toHaveLength(1)
          expect(snap.identities[0]).toMatchObject({ userId: admin.id, ident: 'admin-ext' })
          const oks = results.filter((r) => r.isOk())
          expect(oks).toHaveLength(1)
          expect(oks[0]?._unsafeUnwrap().kind).toBe('setupComplete')
          for (const r of results) {
            if (r.isErr()) {
              expect(isAuthError(r.error)).toBe(true)
              expect(['PROVIDER_EXISTS', 'STORAGE_CONFLICT', 'STATE_CONFLICT']).toContain(r.error.code)
            }
          }
          expect(snap.audit.filter((a) => a.event === 'sso.enable')).toHaveLength(1)
        } finally {
          await w.drop()
        }
      })
    })
  }
}
