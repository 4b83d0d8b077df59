// Test harness for the setup pipeline and SSO administration: memory storage, recording fakes,
// the dummy provider (plus a variant whose config holds secrets), and helpers that run the real
// step machine up to the point where it would call finishSetup.
import { err, errAsync, type ResultAsync } from 'neverthrow'
import { expect } from 'vitest'
import { type EngineContext, resolveContext } from '../../src/engine/context.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import { createStepApi } from '../../src/engine/steps.js'
import type {
  AuthPipeline,
  AuthPipelineOptions,
  FinishSetupInput,
  HookOptions,
  SessionInfo,
  SetupOutcome,
  Step,
} from '../../src/engine/types.js'
import { type AuthError, authError } from '../../src/errors.js'
import { createMemoryStorage, type MemorySnapshot, type MemoryStorage } from '../../src/memory/index.js'
import type { Member, Organization, User } from '../../src/model/records.js'
import type { AuditPort } from '../../src/ports/audit.js'
import type { Logger } from '../../src/ports/clock.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider } from '../../src/providers/types.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  type RecordingMailer,
  type RecordingSignals,
  sequentialIds,
} from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeUser, sentryStyleUrls } from '../../src/testing/fixtures.js'

export const SECRET = 'setup test secret of at least thirty-two bytes'
export const BASE_URL = 'https://app.example.com'

export const urls: AuthPipelineOptions['urls'] = sentryStyleUrls(BASE_URL)

/** A provider whose config carries secrets; `redact` decides whether it implements redactConfig. */
export function secretiveProvider(key: string, redact: boolean): Provider {
  const base = dummyProvider({ key, displayName: `Corp ${key}` })
  const provider: Provider = {
    ...base,
    buildConfig: () => ({
      issuer: 'https://idp.example.com',
      clientId: 'client-123',
      clientSecret: 'top-secret-value',
      signing: { privateKey: '-----BEGIN PRIVATE KEY-----abc', algorithm: 'RS256' },
    }),
  }
  if (redact) return { ...provider, redactConfig: (config) => ({ ...config, clientSecret: '***' }) }
  return provider
}

export interface World {
  readonly storage: MemoryStorage
  readonly mailer: RecordingMailer
  readonly signals: RecordingSignals
  readonly clock: FixedClock
  readonly sso: AuthPipeline
  readonly ctx: EngineContext
  readonly options: AuthPipelineOptions
}

export interface WorldOptions {
  readonly organizations?: readonly Organization[]
  readonly users?: readonly User[]
  readonly members?: readonly Member[]
  readonly audit?: AuditPort
  readonly hooks?: HookOptions
  readonly memberPageSize?: number
  readonly yieldOnRead?: boolean
  readonly storage?: MemoryStorage
  /** Providers merged over the defaults (dummy, corp, tidy). */
  readonly providers?: Readonly<Record<string, Provider>>
  readonly logger?: Logger
  /** `policy.configCacheMs` (the engine's default when left out). */
  readonly configCacheMs?: number
}

/** org-1 ("Acme", require2fa on) with an owner `admin`, a manager, a plain member, a pending invite. */
export function defaultRows(): { organizations: Organization[]; users: User[]; members: Member[] } {
  return {
    organizations: [
      makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme', require2fa: true }),
      makeOrganization({ id: 'org-2', slug: 'other', name: 'Other' }),
    ],
    users: [
      makeUser({ id: 'admin' }),
      makeUser({ id: 'manager' }),
      makeUser({ id: 'plain' }),
      makeUser({ id: 'victim', email: 'victim@corp.example' }),
      makeUser({ id: 'inactive', isActive: false }),
      makeUser({ id: 'admin2' }),
    ],
    members: [
      makeMember({
        id: 'm-admin',
        organizationId: 'org-1',
        userId: 'admin',
        role: 'owner',
        flags: { ssoLinked: false, ssoInvalid: true, memberLimitRestricted: false, idpProvisioned: true, idpRoleRestricted: false },
      }),
      makeMember({ id: 'm-manager', organizationId: 'org-1', userId: 'manager', role: 'manager' }),
      makeMember({ id: 'm-plain', organizationId: 'org-1', userId: 'plain', role: 'member' }),
      makeMember({ id: 'm-victim', organizationId: 'org-1', userId: 'victim', role: 'member' }),
      makeMember({ id: 'm-inactive', organizationId: 'org-1', userId: 'inactive', role: 'member' }),
      makeMember({ id: 'm-invite', organizationId: 'org-1', email: 'invitee@example.com', role: 'member' }),
      makeMember({ id: 'm-admin2', organizationId: 'org-2', userId: 'admin2', role: 'owner' }),
    ],
  }
}

export function makeWorld(options: WorldOptions = {}): World {
  const clock = fixedClock('2026-03-01T10:00:00.000Z')
  const storage = options.storage ?? createMemoryStorage({ clock, yieldOnRead: options.yieldOnRead })
  const rows = defaultRows()
  storage.seed({
    organizations: options.organizations ?? rows.organizations,
    users: options.users ?? rows.users,
    members: options.members ?? rows.members,
  })
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const engineOptions: AuthPipelineOptions = {
    storage,
    mailer,
    signals,
    audit: options.audit,
    providers: {
      dummy: dummyProvider(),
      corp: secretiveProvider('corp', false),
      tidy: secretiveProvider('tidy', true),
      ...options.providers,
    },
    secret: SECRET,
    urls,
    clock,
    ids: sequentialIds('x'),
    hooks: options.hooks,
    policy:
      options.memberPageSize !== undefined || options.configCacheMs !== undefined
        ? { memberPageSize: options.memberPageSize, configCacheMs: options.configCacheMs }
        : undefined,
    logger: options.logger,
  }
  return {
    storage,
    mailer,
    signals,
    clock,
    sso: createAuthPipeline(engineOptions),
    ctx: resolveContext(engineOptions),
    options: engineOptions,
  }
}

export function session(userId: string | null, id = `sess-${userId ?? 'anon'}`, ip = '203.0.113.7'): SessionInfo {
  return { id, userId, ip }
}

export const POST_FORM = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

/**
 * Runs beginSetup and the dummy form step through the real step machine, stopping where it
 * would call finishSetup; returns the exact input it would have passed.
 */
export async function readySetup(
  world: Pick<World, 'sso' | 'ctx'>,
  opts: { org?: string; user?: string; providerKey?: string; sess?: SessionInfo; form?: Record<string, string> } = {},
): Promise<FinishSetupInput> {
  const sess = opts.sess ?? session(opts.user ?? 'admin')
  const begun = await world.sso.beginSetup({ organizationId: opts.org ?? 'org-1', providerKey: opts.providerKey ?? 'dummy', session: sess })
  const step = begun._unsafeUnwrap()
  if (step.kind !== 'render') throw new Error(`expected the dummy form, got ${step.kind}`)
  let captured: FinishSetupInput | null = null
  const steps = createStepApi(world.ctx)
  const result = await steps.advance(
    { handle: step.handle, request: POST_FORM(opts.form ?? { id: 'ext-admin', email: 'admin@example.com', name: 'Admin' }), session: sess },
    {
      finishLogin: () => errAsync(authError('FLOW_MISMATCH')),
      finishSetup: (input): ResultAsync<SetupOutcome, AuthError> => {
        captured = input
        return errAsync(authError('STATE_CONFLICT', { message: 'captured by the test harness' }))
      },
    },
  )
  expect(result.isErr()).toBe(true)
  if (!captured) throw new Error('the step machine did not reach finishSetup')
  return captured
}

/** The snapshot minus pipeline-state rows (the caller's own state may change on a rejection). */
export function dataOf(snapshot: MemorySnapshot): Omit<MemorySnapshot, 'pipelineStates'> {
  const { pipelineStates: _states, ...rest } = snapshot
  return rest
}

export function expectCode<T>(
  result: { isErr(): boolean; _unsafeUnwrapErr(): AuthError } & { _unsafeUnwrap(): T },
  code: string,
): AuthError {
  expect(result.isErr(), `expected ${code}`).toBe(true)
  const error = result._unsafeUnwrapErr()
  expect(error.code).toBe(code)
  return error
}

export function unwrapStep(step: Step): SetupOutcome {
  if (step.kind !== 'setupComplete') throw new Error(`expected setupComplete, got ${step.kind}`)
  return step
}

export { err }
