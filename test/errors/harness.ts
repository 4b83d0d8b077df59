// The world every error-code scenario runs in (test/errors/scenarios.ts). Public API only: the
// engine from createAuthPipeline, memory storage, the dummy provider and the testing kit, so a
// scenario is something a host could do.
//
// Organizations: `org-acme` (slug acme) has the dummy provider `ap-acme`; `org-bare` has none.
// Users: `owner` (owner of both orgs), `member` (plain member of acme), `outsider` (no
// membership), `suspended` (member of acme, suspended, identity `ext-suspended` linked), `alice`
// (member of acme, alice@corp.example, password account).
import type { ResultAsync } from 'neverthrow'
import {
  type AuthError,
  type AuthPipeline,
  type AuthPipelineOptions,
  createAuthPipeline,
  type SessionInfo,
  type Step,
} from '../../src/index.js'
import { createMemoryStorage, type MemorySnapshot, type MemoryStorage } from '../../src/memory/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  dummyProvider,
  type FixedClock,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  type RecordingMailer,
  type RecordingSignals,
  sentryStyleUrls,
  sequentialIds,
} from '../../src/testing/index.js'

export const SECRET = 'error-table secret of at least thirty-two bytes'
export const ACME = 'org-acme'
export const BARE = 'org-bare'

export interface Harness {
  readonly sso: AuthPipeline
  readonly storage: MemoryStorage
  readonly clock: FixedClock
  readonly mailer: RecordingMailer
  readonly signals: RecordingSignals
  /** The options `sso` was created with (to build a second engine over the same storage). */
  readonly options: AuthPipelineOptions
  /** A second engine: same options with `overrides` applied. */
  engine(overrides: Partial<AuthPipelineOptions>): AuthPipeline
  session(userId?: string | null, id?: string): SessionInfo
  /** beginLogin at acme: the handle of the dummy form. */
  beginLogin(session?: SessionInfo): Promise<string>
  /** beginLogin, then the dummy form posted with `form`; the resulting step (a confirmation page, signedIn...). */
  login(form: Record<string, string>, session?: SessionInfo): Promise<{ handle: string; step: Step }>
  /** beginSetup at `org` by `userId`: the handle of the dummy form. */
  beginSetup(userId?: string, org?: string, providerKey?: string): Promise<string>
}

export interface HarnessOptions {
  /** Options merged over the defaults (storage, providers, hooks...). */
  readonly engine?: Partial<AuthPipelineOptions>
  readonly storage?: MemoryStorage
  readonly clock?: FixedClock
}

export function harness(o: HarnessOptions = {}): Harness {
  const clock = o.clock ?? fixedClock('2026-03-01T12:00:00.000Z')
  const storage = o.storage ?? createMemoryStorage({ clock })
  if (!o.storage) {
    storage.seed({
      organizations: [
        makeOrganization({ id: ACME, slug: 'acme', name: 'Acme' }),
        makeOrganization({ id: BARE, slug: 'bare', name: 'Bare' }),
      ],
      providers: [makeProvider({ id: 'ap-acme', organizationId: ACME, providerKey: 'dummy' })],
      users: [
        makeUser({ id: 'owner' }),
        makeUser({ id: 'member' }),
        makeUser({ id: 'outsider' }),
        makeUser({ id: 'suspended', isSuspended: true }),
        makeUser({ id: 'alice', email: 'alice@corp.example' }),
      ],
      members: [
        makeMember({ id: 'm-owner-acme', organizationId: ACME, userId: 'owner', role: 'owner' }),
        makeMember({ id: 'm-owner-bare', organizationId: BARE, userId: 'owner', role: 'owner' }),
        makeMember({ id: 'm-member', organizationId: ACME, userId: 'member' }),
        makeMember({ id: 'm-suspended', organizationId: ACME, userId: 'suspended', role: 'owner' }),
        makeMember({ id: 'm-alice', organizationId: ACME, userId: 'alice' }),
      ],
      identities: [makeIdentity({ id: 'i-suspended', authProviderId: 'ap-acme', userId: 'suspended', ident: 'ext-suspended' })],
    })
  }
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  const options: AuthPipelineOptions = {
    storage,
    mailer,
    signals,
    providers: { dummy: dummyProvider() },
    secret: SECRET,
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
    ids: sequentialIds('e'),
    ...o.engine,
  }
  const sso = createAuthPipeline(options)
  const session = (userId: string | null = null, id = `sess-${userId ?? 'anon'}`): SessionInfo => ({ id, userId })
  const unwrap = async (r: ResultAsync<Step, AuthError>): Promise<Step> => {
    const result = await r
    if (result.isErr()) throw new Error(`arrange failed: ${result.error.code}`)
    return result.value
  }
  const handleOf = (step: Step): string => {
    if (step.kind === 'render' || step.kind === 'redirect') return step.handle
    if (step.kind === 'confirmationRequired') return step.handle
    throw new Error(`arrange: no handle in a ${step.kind} step`)
  }
  return {
    sso,
    storage,
    clock,
    mailer,
    signals,
    options,
    engine: (overrides) => createAuthPipeline({ ...options, ...overrides }),
    session,
    async beginLogin(s = session()) {
      return handleOf(await unwrap(sso.beginLogin({ organizationId: ACME, session: s })))
    },
    async login(form, s = session()) {
      const handle = handleOf(await unwrap(sso.beginLogin({ organizationId: ACME, session: s })))
      const step = await unwrap(sso.advance({ handle, session: s, request: { method: 'POST', query: {}, form } }))
      return { handle, step }
    },
    async beginSetup(userId = 'owner', org = BARE, providerKey = 'dummy') {
      return handleOf(await unwrap(sso.beginSetup({ organizationId: org, providerKey, session: session(userId) })))
    },
  }
}

/** The snapshot without pipeline states (a rejection may legitimately reopen or consume its own state). */
export function dataOf(s: MemorySnapshot): Omit<MemorySnapshot, 'pipelineStates'> {
  const { pipelineStates: _states, ...rest } = s
  return rest
}

/** POST of the dummy form. */
export const POST = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
