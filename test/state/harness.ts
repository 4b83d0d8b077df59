// Test harness for the pipeline-state and step-machine tests: a small in-test storage (reads
// from fixed rows, a real compare-and-set pipeline-state store) and an engine context.

import { okAsync, type ResultAsync } from 'neverthrow'
import { type EngineContext, resolveContext } from '../../src/engine/context.js'
import type { FinishLoginInput, FinishSetupInput, HookOptions, LoginOutcome, PolicyOptions, SetupOutcome } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import type { AuthProvider, Member, Organization, User } from '../../src/model/records.js'
import type { PipelineStateStore, StoragePort, StoredPipelineState } from '../../src/ports/storage.js'
import type { Provider } from '../../src/providers/types.js'
import { createRecordingMailer, createRecordingSignals, type FixedClock, fixedClock } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'

export const SECRET = 'test secret of at least thirty-two bytes!!'
export const BASE_URL = 'https://app.example.com'

export interface TestStates extends PipelineStateStore {
  readonly rows: Map<string, StoredPipelineState>
  writes: number
}

export function memoryStates(clock: FixedClock): TestStates {
  const rows = new Map<string, StoredPipelineState>()
  const store: TestStates = {
    rows,
    writes: 0,
    async create(state) {
      if (rows.has(state.id)) throw new Error('duplicate')
      rows.set(state.id, state)
      store.writes++
    },
    async load(id) {
      const row = rows.get(id)
      // A real store answers after a round trip: concurrent callers all read before any of them
      // writes (as requests that arrive together do), whatever the engine's own awaits.
      await new Promise((resolve) => setTimeout(resolve, 0))
      if (!row || row.expiresAt.getTime() <= clock.now().getTime()) return null
      return row
    },
    async compareAndSet(id, expected, next) {
      // Yield first so concurrent callers interleave like a real store.
      await Promise.resolve()
      const row = rows.get(id)
      if (!row || row.version !== expected || row.expiresAt.getTime() <= clock.now().getTime()) return false
      rows.set(id, next)
      store.writes++
      return true
    },
    async delete(id) {
      rows.delete(id)
    },
    async deleteExpired(now) {
      let n = 0
      for (const [id, row] of rows) {
        if (row.expiresAt.getTime() <= now.getTime()) {
          rows.delete(id)
          n++
        }
      }
      return n
    },
  }
  return store
}

export interface World {
  organizations: Organization[]
  providers: AuthProvider[]
  users: User[]
  members: Member[]
}

export function defaultWorld(): World {
  return {
    organizations: [makeOrganization({ id: 'org-1' }), makeOrganization({ id: 'org-2' }), makeOrganization({ id: 'org-new' })],
    providers: [
      makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'dummy' }),
      makeProvider({ id: 'ap-2', organizationId: 'org-2', providerKey: 'gone' }),
    ],
    users: [makeUser({ id: 'admin' }), makeUser({ id: 'plain' }), makeUser({ id: 'outsider' })],
    members: [
      makeMember({ id: 'm-admin', organizationId: 'org-new', userId: 'admin', role: 'owner' }),
      makeMember({ id: 'm-admin1', organizationId: 'org-1', userId: 'admin', role: 'owner' }),
      makeMember({ id: 'm-plain', organizationId: 'org-new', userId: 'plain', role: 'member' }),
    ],
  }
}

const unused = (name: string) => async (): Promise<never> => {
  throw new Error(`the step machine must not call storage.${name}`)
}

/** A read-only storage over fixed rows; any write method throws (the step machine must not write). */
export function readOnlyStorage(world: World, states: PipelineStateStore): StoragePort & { reads: number } {
  const s = {
    reads: 0,
    pipelineStates: states,
    // createAuthPipeline checks that every port method exists; the step machine uses none of these.
    oneTimeTokens: { create: unused('oneTimeTokens.create'), consume: unused('oneTimeTokens.consume'), peek: unused('oneTimeTokens.peek') },
    getIdentity: unused('getIdentity'),
    getIdentityById: unused('getIdentityById'),
    getIdentityForUser: unused('getIdentityForUser'),
    listIdentitiesForUser: unused('listIdentitiesForUser'),
    getLinkedIdentity: unused('getLinkedIdentity'),
    findUsersByEmail: unused('findUsersByEmail'),
    getMemberById: unused('getMemberById'),
    getInviteByEmail: unused('getInviteByEmail'),
    listMembers: unused('listMembers'),
    listIdentities: unused('listIdentities'),
    async getOrganization(id: string) {
      s.reads++
      return world.organizations.find((o) => o.id === id) ?? null
    },
    async getAuthProvider(organizationId: string) {
      s.reads++
      return world.providers.find((p) => p.organizationId === organizationId) ?? null
    },
    async getAuthProviderById(id: string) {
      s.reads++
      return world.providers.find((p) => p.id === id) ?? null
    },
    async getUser(id: string) {
      s.reads++
      return world.users.find((u) => u.id === id) ?? null
    },
    async getMember(organizationId: string, userId: string) {
      s.reads++
      return world.members.find((m) => m.organizationId === organizationId && m.userId === userId) ?? null
    },
    async transaction(): Promise<never> {
      throw new Error('the step machine must not open storage transactions')
    },
  }
  return s as unknown as StoragePort & { reads: number }
}

export interface Recorded {
  logins: FinishLoginInput[]
  setups: FinishSetupInput[]
}

/** A finisher that records what the step machine hands over. */
export function recordingFinish(): Recorded & {
  finishLogin(input: FinishLoginInput): ResultAsync<LoginOutcome, AuthError>
  finishSetup(input: FinishSetupInput): ResultAsync<SetupOutcome, AuthError>
} {
  const logins: FinishLoginInput[] = []
  const setups: FinishSetupInput[] = []
  return {
    logins,
    setups,
    finishLogin(input) {
      logins.push(input)
      return okAsync({
        kind: 'signedIn',
        userId: 'u',
        memberId: 'm',
        organizationId: 'org-1',
        redirect: '/',
        created: { user: false, identity: false, member: false },
        linked: false,
        acceptedInviteId: null,
        claim: null,
        session: [],
        trace: [],
        warnings: [],
      } satisfies LoginOutcome)
    },
    finishSetup(input) {
      setups.push(input)
      return okAsync({
        kind: 'setupComplete',
        organizationId: 'org-new',
        authProviderId: 'ap-x',
        providerKey: 'dummy',
        redirect: '/settings',
        linkRequestsQueued: true,
        session: [],
        trace: [],
        warnings: [],
      } satisfies SetupOutcome)
    },
  }
}

export interface Harness {
  ctx: EngineContext
  clock: FixedClock
  states: TestStates
  storage: StoragePort & { reads: number }
  world: World
}

export function harness(
  providers: Record<string, Provider>,
  opts: { world?: World; secret?: string; hooks?: HookOptions; policy?: PolicyOptions } = {},
): Harness {
  const clock = fixedClock()
  const states = memoryStates(clock)
  const world = opts.world ?? defaultWorld()
  const storage = readOnlyStorage(world, states)
  const ctx = resolveContext({
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers,
    secret: opts.secret ?? SECRET,
    clock,
    hooks: opts.hooks,
    ...(opts.policy ? { policy: opts.policy } : {}),
    urls: {
      baseUrl: BASE_URL,
      orgLogin: (o) => `${BASE_URL}/auth/login/${o.slug}/`,
      authSettings: (o) => `${BASE_URL}/settings/${o.slug}/auth/`,
      providerSettings: (o) => `${BASE_URL}/settings/${o.slug}/auth/provider/`,
      afterLogin: (o) => `${BASE_URL}/organizations/${o.slug}/`,
      pipelineCallback: () => `${BASE_URL}/auth/sso/`,
      verifyAccount: (t) => `${BASE_URL}/auth/verify/${t}/`,
    },
  })
  return { ctx, clock, states, storage, world }
}
