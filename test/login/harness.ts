// Test harness for the login pipeline: memory storage, recording fakes, a one-step test provider,
// and helpers that create a login pipeline state exactly as beginLogin does (flow, org, provider
// row, provider key, fingerprint of the provider's login steps, session binding).
import { expect } from 'vitest'
import { type EngineContext, resolveContext } from '../../src/engine/context.js'
import { createLoginApi, type LoginApi } from '../../src/engine/login.js'
import { createState, transitionState } from '../../src/engine/pipeline-state.js'
import type { AuthPipelineOptions, HookOptions, LoginOutcome, SessionInfo } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage, type MemorySnapshot, type MemoryStorage } from '../../src/memory/index.js'
import type { IdentityInput } from '../../src/model/identity.js'
import type { AuthIdentity, AuthProvider, Member, Organization, User, UserEmail } from '../../src/model/records.js'
import type { PipelineStateStore, StorageTx } from '../../src/ports/storage.js'
import type { Provider } from '../../src/providers/types.js'
import { stepFingerprint } from '../../src/state/codec.js'
import { sha256Hex } from '../../src/state/crypto.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  type RecordingMailer,
  type RecordingSignals,
  sequentialIds,
} from '../../src/testing/fakes.js'
import { makeOrganization, makeProvider, sentryStyleUrls } from '../../src/testing/fixtures.js'

export const SECRET = 'login test secret of at least thirty-two bytes!!'
export const BASE_URL = 'https://app.example.com'

export const urls: AuthPipelineOptions['urls'] = sentryStyleUrls(BASE_URL)

/** A one-step provider; `updateIdentity` optional. */
export function testProvider(key = 'dummy', extra: Partial<Provider> = {}): Provider {
  return {
    key,
    displayName: `IdP ${key}`,
    loginSteps: () => [{ id: 'ask', handle: async () => ({ type: 'next' }) }],
    setupSteps: () => [{ id: 'ask', handle: async () => ({ type: 'next' }) }],
    buildIdentity: () => ({ id: 'x', email: 'x@example.com' }),
    buildConfig: () => ({}),
    ...extra,
  }
}

export const ORG: Organization = makeOrganization({ id: 'org1', slug: 'acme', name: 'Acme' })
export const OTHER_ORG: Organization = makeOrganization({ id: 'org2', slug: 'other', name: 'Other' })
export const PROVIDER: AuthProvider = makeProvider({ id: 'ap1', organizationId: ORG.id, providerKey: 'dummy' })
export const OTHER_PROVIDER: AuthProvider = makeProvider({ id: 'ap2', organizationId: OTHER_ORG.id, providerKey: 'dummy' })

export interface World {
  readonly storage: MemoryStorage
  readonly mailer: RecordingMailer
  readonly signals: RecordingSignals
  readonly clock: FixedClock
  readonly ctx: EngineContext
  readonly login: LoginApi
}

export interface WorldOptions {
  readonly users?: readonly User[]
  readonly userEmails?: readonly UserEmail[]
  readonly members?: readonly Member[]
  readonly identities?: readonly AuthIdentity[]
  readonly hooks?: HookOptions
  readonly provider?: Provider
  readonly yieldOnRead?: boolean
  readonly logger?: AuthPipelineOptions['logger']
  readonly policy?: AuthPipelineOptions['policy']
  /**
   * The storage's transactions offer neither `tx.pipelineStates` nor `tx.readLinkedIdentity`
   * (an adapter written before them): the engine claims the state before the transaction and
   * always takes the identity lock.
   */
  readonly legacyTx?: boolean
  /** A pipeline-state store apart from the storage (as Redis would be): claimed before the transaction. */
  readonly states?: PipelineStateStore
}

export function world(options: WorldOptions = {}): World {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage = createMemoryStorage({ clock, yieldOnRead: options.yieldOnRead })
  storage.seed({
    organizations: [ORG, OTHER_ORG],
    providers: [PROVIDER, OTHER_PROVIDER],
    users: options.users ?? [],
    userEmails: options.userEmails ?? [],
    members: options.members ?? [],
    identities: options.identities ?? [],
  })
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const transaction = storage.transaction.bind(storage)
  const port = options.legacyTx
    ? Object.assign(Object.create(storage) as typeof storage, {
        transaction: <T>(fn: (tx: StorageTx) => Promise<T>) =>
          transaction((tx) => fn({ ...tx, pipelineStates: undefined, readLinkedIdentity: undefined })),
      })
    : storage
  const ctx = resolveContext({
    storage: port,
    mailer,
    signals,
    providers: { dummy: options.provider ?? testProvider() },
    secret: SECRET,
    urls,
    clock,
    ids: sequentialIds('n'),
    hooks: options.hooks,
    logger: options.logger,
    policy: options.policy,
    states: options.states,
  })
  return { storage, mailer, signals, clock, ctx, login: createLoginApi(ctx) }
}

export interface StartOptions {
  readonly sessionId?: string
  readonly initiatorUserId?: string | null
  readonly next?: string | null
  readonly referrer?: string | null
  readonly organization?: Organization
  readonly provider?: AuthProvider
  /** False: leave the state at step 0 (the provider steps did not run). */
  readonly stepsDone?: boolean
  /** An IdP-initiated pipeline (threat 39), as an unsolicited SAML response starts one. */
  readonly unsolicited?: boolean
}

/** Creates a login pipeline state the way beginLogin does; returns the signed handle. */
export async function start(w: World, o: StartOptions = {}): Promise<string> {
  const org = o.organization ?? ORG
  const row = o.provider ?? PROVIDER
  const impl = w.ctx.providers.get(row.providerKey)
  if (!impl) throw new Error('no provider')
  const created = await createState(w.ctx, {
    sessionId: o.sessionId ?? 'sess-1',
    flow: 'login',
    organizationId: org.id,
    authProviderId: row.id,
    providerKey: row.providerKey,
    initiatorUserId: o.initiatorUserId ?? null,
    fingerprint: await stepFingerprint(
      row.providerKey,
      'login',
      impl.loginSteps(row.config).map((s) => s.id),
    ),
    next: o.next ?? null,
    referrer: o.referrer ?? null,
    ...(o.unsolicited ? { initiation: 'unsolicited' as const } : {}),
  })
  if (created.isErr()) throw new Error(created.error.code)
  if (o.stepsDone === false) return created.value.handle
  // The step machine records that every step ran before it hands over to finishLogin.
  const opened = created.value.opened
  const stepsRan = await transitionState(w.ctx, opened, { ...opened.state, step: impl.loginSteps(row.config).length })
  if (stepsRan.isErr()) throw new Error(stepsRan.error.code)
  return created.value.handle
}

export function session(partial: Partial<SessionInfo> = {}): SessionInfo {
  return { id: 'sess-1', ip: '203.0.113.7', ...partial }
}

export function ident(partial: Partial<IdentityInput> & { id: IdentityInput['id'] }): IdentityInput {
  return { email: 'someone@corp.example', ...partial }
}

/** Runs finishLogin and returns the outcome, failing the test on an error. */
export async function finishOk(w: World, input: Parameters<LoginApi['finishLogin']>[0]): Promise<LoginOutcome> {
  const r = await w.login.finishLogin(input)
  if (r.isErr()) throw new Error(`expected ok, got ${r.error.code}`)
  return r.value
}

/** Runs finishLogin and returns the error, failing the test on success. */
export async function finishErr(w: World, input: Parameters<LoginApi['finishLogin']>[0]): Promise<AuthError> {
  const r = await w.login.finishLogin(input)
  if (r.isOk()) throw new Error(`expected an error, got ${r.value.kind}`)
  return r.error
}

/** The snapshot without pipeline states (their phase legitimately changes). */
export function dataOf(s: MemorySnapshot): Omit<MemorySnapshot, 'pipelineStates'> {
  const { pipelineStates: _p, ...rest } = s
  return rest
}

/** Asserts nothing but the pipeline state changed, and no mail or signal went out. */
export function expectNoWrites(w: World, before: MemorySnapshot): void {
  expect(dataOf(w.storage.snapshot())).toEqual(dataOf(before))
  expect(w.mailer.sent).toEqual([])
  expect(w.signals.emitted).toEqual([])
}

/** The rows added / removed / changed between two snapshots, per table, by id. */
export function diff(before: MemorySnapshot, after: MemorySnapshot) {
  const tables = ['users', 'userEmails', 'members', 'identities', 'audit', 'providers', 'organizations', 'oneTimeTokens'] as const
  const out: Record<string, { added: unknown[]; removed: unknown[]; changed: { before: unknown; after: unknown }[] }> = {}
  const keyOf = (row: Record<string, unknown>) => String(row.id ?? row.hash ?? `${row.userId}|${row.emailNormalized}`)
  for (const t of tables) {
    const b = new Map((before[t] as unknown as Record<string, unknown>[]).map((r) => [keyOf(r), r]))
    const a = new Map((after[t] as unknown as Record<string, unknown>[]).map((r) => [keyOf(r), r]))
    const added = [...a.entries()].filter(([k]) => !b.has(k)).map(([, v]) => v)
    const removed = [...b.entries()].filter(([k]) => !a.has(k)).map(([, v]) => v)
    const changed = [...a.entries()]
      .filter(([k, v]) => b.has(k) && JSON.stringify(b.get(k)) !== JSON.stringify(v))
      .map(([k, v]) => ({ before: b.get(k), after: v }))
    if (added.length || removed.length || changed.length) out[t] = { added, removed, changed }
  }
  return out
}

export { sha256Hex }
