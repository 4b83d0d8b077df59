/**
 * The step machine (Sentry's pipeline `current_step` / `next_step` / `bind_state`): starts login
 * and setup pipelines, runs provider steps against the stored pipeline state and, after the
 * last step, hands the identity to `finishLogin` / `finishSetup`.
 *
 * Every state change is a compare-and-set on the pipeline-state row, so two concurrent
 * `advance` calls on one state cannot both move it forward (the loser gets STATE_CONFLICT) and
 * only one of them reaches `finish*`.
 *
 * @module
 */

import { err, ok, type Result, ResultAsync } from 'neverthrow'
import { safeNext } from '../core/redirect.js'
import { type AuthError, authError, type ErrorRedirectHint, isAuthError } from '../errors.js'
import { type IdentityInput, type JsonObject, jsonWithinLimits, parseIdentity } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import type { AuthProvider, Organization } from '../model/records.js'
import type { Provider, ProviderStep, ServiceMetadata, SingleUse, StepContext, StepRequest, StepResult } from '../providers/types.js'
import { checkState, type Flow, type PipelineState, redirectFor, stepFingerprint } from '../state/codec.js'
import { randomToken } from '../state/crypto.js'
import { authorizeSsoAdmin } from './authorize.js'
import type { EngineContext } from './context.js'
import { type Discovered, discover } from './domains.js'
import type { LoginHandoff } from './login.js'
import { buildState, createState, type OpenedState, openState, storeNewState, transitionState } from './pipeline-state.js'
import { withRedirect } from './redirect.js'
import { recordSingleUse, validSingleUse } from './single-use.js'
import { storageFailure } from './transaction.js'
import type {
  AdvanceInput,
  AuthPipeline,
  BeginLoginInput,
  BeginSetupInput,
  BeginUnsolicitedLoginInput,
  FinishLoginInput,
  LoginOutcome,
  ServiceMetadataRequest,
  SessionInfo,
  Step,
  UrlConfig,
} from './types.js'

/** The step-machine part of the engine. Internal; exposed through {@link AuthPipeline}. */
export interface StepApi {
  beginLogin: AuthPipeline['beginLogin']
  beginSetup: AuthPipeline['beginSetup']
  advance(input: AdvanceInput, finish: Finish): ResultAsync<Step, AuthError>
  beginUnsolicitedLogin(input: BeginUnsolicitedLoginInput, finish: Finish): ResultAsync<Step, AuthError>
  serviceMetadata: AuthPipeline['serviceMetadata']
}

/**
 * The finishers `advance` hands over to. `finishLoginAfterSteps`, when given, receives the
 * state, org and provider row the step machine already loaded (no re-reads, one
 * compare-and-set for step + claim).
 */
export type Finish = Pick<AuthPipeline, 'finishLogin' | 'finishSetup'> & {
  readonly finishLoginAfterSteps?: ((input: FinishLoginInput, handoff: LoginHandoff) => ResultAsync<LoginOutcome, AuthError>) | undefined
}

const EMPTY_REQUEST: StepRequest = { method: 'GET', query: {}, form: {} }

/** Everything needed to run a pipeline's steps, resolved from storage and the registry. */
interface Loaded {
  readonly organization: Organization
  /** The provider row (login); null during setup. */
  readonly row: AuthProvider | null
  readonly provider: Provider
  readonly steps: readonly ProviderStep[]
  readonly config: JsonObject
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= LIMITS.id
}

function validSession(session: unknown): session is SessionInfo {
  if (typeof session !== 'object' || session === null) return false
  const s = session as { id?: unknown; userId?: unknown }
  if (!isId(s.id)) return false
  return s.userId === undefined || s.userId === null || isId(s.userId)
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u

/** A login hint the IdP may see: a short string without control characters, else null. */
function boundedHint(value: unknown): string | null {
  if (typeof value !== 'string') return null
  const hint = value.trim()
  if (hint.length === 0 || hint.length > LIMITS.email || CONTROL.test(hint)) return null
  return hint
}

function inputInvalid(field: string, redirect: ErrorRedirectHint): AuthError {
  return authError('INPUT_INVALID', { redirect, details: { field } })
}

/** A step list's fingerprint, hashed once per engine for each (provider, flow, steps). */
export async function memoStepFingerprint(ctx: EngineContext, key: string, flow: Flow, ids: readonly string[]): Promise<string> {
  const memoKey = `${flow}\u0000${key}\u0000${ids.join('\u0000')}`
  const known = ctx.memo.get(memoKey)
  if (known !== undefined) return known
  const fingerprint = stepFingerprint(key, flow, ids)
  if (ctx.memo.size < 1000) ctx.memo.set(memoKey, fingerprint)
  return fingerprint
}

async function read<T>(fn: () => Promise<T>, redirect: ErrorRedirectHint): Promise<Result<T, AuthError>> {
  try {
    return ok(await fn())
  } catch (cause) {
    return err(storageFailure(cause, redirect))
  }
}

function stepIds(steps: readonly ProviderStep[]): string[] {
  return steps.map((s) => s.id)
}

/** Wraps an async Result-returning function as a ResultAsync that never rejects. */
function run<T>(fn: () => Promise<Result<T, AuthError>>, redirect: ErrorRedirectHint): ResultAsync<T, AuthError> {
  return new ResultAsync(fn().catch((cause: unknown) => err<T, AuthError>(isAuthError(cause) ? cause : storageFailure(cause, redirect))))
}

/**
 * Creates the step machine over an engine context.
 *
 * - `beginLogin`: the org must exist (ORGANIZATION_NOT_FOUND), have a provider row
 *   (PROVIDER_NOT_CONFIGURED) whose key is registered (PROVIDER_UNKNOWN). Stores a login state
 *   (initiator = the session user or null, the provider's login-step fingerprint, `next` passed
 *   through {@link safeNext}) and runs step 0.
 * - `beginSetup`: the session user must be an SSO admin (NOT_AUTHENTICATED, NOT_A_MEMBER,
 *   NOT_AUTHORIZED, USER_SUSPENDED), the key registered (PROVIDER_UNKNOWN) and enabled
 *   (PROVIDER_DISABLED), and the org must not have a provider (PROVIDER_EXISTS). All checked
 *   before any state is written. Then stores a setup state and runs step 0.
 * - `advance`: opens the state (handle signature, session binding, expiry, phase, current step
 *   fingerprint), runs the current step with the request; `bind` merges into the state's data,
 *   `next` moves on (running the following step with the same request), and after the last step
 *   the identity goes to `finishLogin` / `finishSetup`.
 */
export function createStepApi(ctx: EngineContext): StepApi {
  /** Records a step's single-use response (ASSERTION_REPLAYED on a second use). */
  async function spend(use: SingleUse, providerKey: string, stepId: string, redirect: ErrorRedirectHint): Promise<Result<void, AuthError>> {
    if (!validSingleUse(use)) return err(authError('PROVIDER_ERROR', { redirect, details: { step: stepId, reason: 'single-use-shape' } }))
    return recordSingleUse(ctx, providerKey, use, redirect)
  }

  /** Runs steps from the state's current index until one returns redirect/render, or finishes. */
  async function drive(
    opened: OpenedState,
    handle: string,
    loaded: Loaded,
    request: StepRequest,
    session: SessionInfo,
    finish: Finish | null,
    loginHint: string | null = null,
    unstored = false,
  ): Promise<Result<Step, AuthError>> {
    const flow = opened.state.flow
    const redirect = redirectFor(flow)
    let current = opened
    let data: JsonObject = opened.state.data
    let step = opened.state.step
    let dirty = false
    // A state begun in this request is stored once, with what its first steps bound (one
    // INSERT instead of an INSERT and an UPDATE); a step that fails stores nothing.
    let stored = !unstored

    const save = async (force = false): Promise<Result<OpenedState, AuthError>> => {
      if (!dirty && stored && !force) return ok(current)
      const next: PipelineState = { ...current.state, data, step }
      const saved = stored ? await transitionState(ctx, current, next) : await storeNewState(ctx, next)
      if (saved.isOk()) stored = true
      if (saved.isOk()) {
        current = saved.value
        dirty = false
      }
      return saved
    }

    // A `back` result re-runs an earlier step; bound the number of steps one request may run so
    // that two steps sending each other back cannot loop.
    let budget = loaded.steps.length * 4
    let stepRequest = request
    while (step < loaded.steps.length) {
      const providerStep = loaded.steps[step]
      if (!providerStep) break
      if (budget-- <= 0) {
        return err(authError('PROVIDER_ERROR', { redirect, details: { step: providerStep.id, reason: 'step-loop' } }))
      }
      const stepCtx: StepContext = {
        flow,
        request: stepRequest,
        data,
        config: loaded.config,
        organization: loaded.organization,
        callbackUrl: callbackUrlOf(ctx.urls, loaded.provider, loaded.organization),
        random: () => randomToken(32),
        now: ctx.clock.now(),
        unsolicited: opened.state.initiation === 'unsolicited',
        loginHint,
      }
      let result: StepResult
      try {
        result = await providerStep.handle(stepCtx)
      } catch (cause) {
        return err(authError('PROVIDER_ERROR', { redirect, cause, details: { step: providerStep.id } }))
      }
      if (result.type === 'error') return err(withRedirect(result.error, redirect))
      if (result.bind !== undefined) {
        const merged: JsonObject = { ...data, ...result.bind }
        if (!jsonWithinLimits(merged)) {
          return err(authError('PROVIDER_RESPONSE_INVALID', { redirect, details: { step: providerStep.id, reason: 'data-too-large' } }))
        }
        data = merged
        dirty = true
      }
      if (result.type === 'next' && result.singleUse !== undefined) {
        // Threat 40: the response is spent before the pipeline moves on; a replay stops here.
        const recorded = await spend(result.singleUse, loaded.provider.key, providerStep.id, redirect)
        if (recorded.isErr()) return err(recorded.error)
      }
      if (result.type === 'next') {
        step += 1
        dirty = true
        continue
      }
      if (result.type === 'back') {
        const target = loaded.steps.findIndex((s) => s.id === result.step)
        if (target < 0 || target >= step) {
          return err(authError('PROVIDER_ERROR', { redirect, details: { step: providerStep.id, reason: 'invalid-back-target' } }))
        }
        step = target
        dirty = true
        stepRequest = EMPTY_REQUEST
        continue
      }
      const saved = await save()
      if (saved.isErr()) return err(saved.error)
      if (result.type === 'redirect') return ok({ kind: 'redirect', url: result.url, handle })
      return ok({ kind: 'render', view: result.view, model: result.model, handle })
    }

    // All steps ran. A login finisher that takes the loaded rows claims the state with the
    // advanced step and data in its own compare-and-set (only one concurrent request wins it).
    if (finish !== null && flow === 'login' && finish.finishLoginAfterSteps && loaded.row !== null) {
      const advanced: OpenedState = { state: { ...current.state, data, step }, version: current.version }
      const handoff: LoginHandoff = { opened: advanced, organization: loaded.organization, providerRow: loaded.row }
      return finishPipeline(advanced.state, handle, loaded, session, finish, handoff)
    }
    // Otherwise record that all steps ran (compare-and-set, so only one concurrent request
    // gets here with a given state version, even one that found the steps already run), then
    // hand over to the finisher.
    const saved = await save(true)
    if (saved.isErr()) return err(saved.error)
    if (finish === null) {
      // Reached from begin* (a provider without interactive steps): let the host's pipeline
      // route call `advance`, which finishes.
      return ok({ kind: 'redirect', url: ctx.urls.pipelineCallback(loaded.organization), handle })
    }
    return finishPipeline(current.state, handle, loaded, session, finish)
  }

  async function finishPipeline(
    state: PipelineState,
    handle: string,
    loaded: Loaded,
    session: SessionInfo,
    finish: Finish,
    handoff?: LoginHandoff,
  ): Promise<Result<Step, AuthError>> {
    const redirect = redirectFor(state.flow)
    let config = loaded.config
    if (state.flow === 'setup') {
      let built: JsonObject | AuthError
      try {
        built = await loaded.provider.buildConfig(state.data)
      } catch (cause) {
        return err(authError('PROVIDER_ERROR', { redirect, cause, details: { stage: 'buildConfig' } }))
      }
      if (isAuthError(built)) return err(withRedirect(built, redirect))
      config = built
    }
    let identity: IdentityInput | AuthError
    try {
      identity = await loaded.provider.buildIdentity(state.data, config)
    } catch (cause) {
      return err(authError('IDENTITY_INVALID', { redirect, cause }))
    }
    if (isAuthError(identity)) return err(withRedirect(identity, redirect))
    if (state.flow === 'login') {
      const outcome =
        handoff && finish.finishLoginAfterSteps
          ? await finish.finishLoginAfterSteps({ handle, identity, session }, handoff)
          : await finish.finishLogin({ handle, identity, session })
      return outcome.map((o): Step => o)
    }
    const outcome = await finish.finishSetup({ handle, identity, session, data: state.data })
    return outcome.map((o): Step => o)
  }

  /** Loads the org, provider row and steps a state refers to, checking they still match. */
  async function load(state: PipelineState): Promise<Result<Loaded, AuthError>> {
    const redirect = redirectFor(state.flow)
    if (state.flow === 'setup') {
      const org = await read(() => ctx.storage.getOrganization(state.organizationId), redirect)
      if (org.isErr()) return err(org.error)
      if (!org.value) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
      const provider = ctx.providers.get(state.providerKey)
      if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect }))
      return ok({ organization: org.value, row: null, provider, steps: provider.setupSteps(), config: {} })
    }
    // Login: the org and its provider row in one read (the org has at most one provider; the
    // state names the row it started with).
    // A copy that names another provider row than the state's is read again (the org may have
    // been set up anew since the copy was taken).
    const both = await read(
      () =>
        ctx.configCache.read(
          state.organizationId,
          (v) => v.provider?.id === state.authProviderId && v.provider.providerKey === state.providerKey,
        ),
      redirect,
    )
    if (both.isErr()) return err(both.error)
    if (!both.value) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
    const provider = ctx.providers.get(state.providerKey)
    if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect }))
    if (state.authProviderId === null) return err(authError('STATE_INVALID', { redirect }))
    const row = both.value.provider
    if (!row || row.id !== state.authProviderId) {
      // Not the org's provider any more (an error path: one more read says which error).
      const authProviderId = state.authProviderId
      const named = await read(() => ctx.storage.getAuthProviderById(authProviderId), redirect)
      if (named.isErr()) return err(named.error)
      if (named.value && named.value.organizationId !== state.organizationId) return err(authError('ORG_MISMATCH', { redirect }))
      return err(authError('PROVIDER_NOT_CONFIGURED', { redirect }))
    }
    if (row.providerKey !== state.providerKey) return err(authError('PROVIDER_MISMATCH', { redirect }))
    return ok({
      organization: both.value.organization,
      row,
      provider,
      steps: provider.loginSteps(row.config),
      config: row.config,
    })
  }

  async function start(
    flow: Flow,
    loaded: Loaded,
    session: SessionInfo,
    extra: { readonly next: string | null; readonly referrer: string | null; readonly loginHint: string | null },
  ): Promise<Result<Step, AuthError>> {
    const fingerprint = await memoStepFingerprint(ctx, loaded.provider.key, flow, stepIds(loaded.steps))
    const created = await buildState(ctx, {
      flow,
      organizationId: loaded.organization.id,
      authProviderId: loaded.row?.id ?? null,
      providerKey: loaded.provider.key,
      initiatorUserId: session.userId ?? null,
      fingerprint,
      next: extra.next,
      referrer: extra.referrer,
      sessionId: session.id,
    })
    return drive({ state: created.state, version: 0 }, created.handle, loaded, EMPTY_REQUEST, session, null, extra.loginHint, true)
  }

  const beginLogin = (input: BeginLoginInput): ResultAsync<Step, AuthError> =>
    run(async () => {
      const redirect: ErrorRedirectHint = 'orgLogin'
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input', 'root'))
      // Home-realm discovery (issue 13): the org whose verified domain is the email's.
      let discovery: Discovered | null = null
      if (typeof input.email === 'string') {
        if (!validSession(input.session)) return err(inputInvalid('session', 'root'))
        const found = await discover(ctx, input.email)
        if (found.isErr()) return err(found.error)
        discovery = found.value
      }
      const organizationId = discovery?.organizationId ?? input.organizationId
      if (!isId(organizationId)) return err(inputInvalid('organizationId', 'root'))
      if (!validSession(input.session)) return err(inputInvalid('session', redirect))
      const both = await read(() => ctx.configCache.read(organizationId), 'root')
      if (both.isErr()) return err(both.error)
      if (!both.value) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
      const org = ok(both.value.organization)
      const row = ok(both.value.provider)
      if (!row.value) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect }))
      const provider = ctx.providers.get(row.value.providerKey)
      if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect }))
      const referrer = typeof input.referrer === 'string' && input.referrer.length <= LIMITS.id ? input.referrer : null
      const loginHint = discovery !== null ? boundedHint(input.email) : boundedHint(input.loginHint)
      const step = await start(
        'login',
        { organization: org.value, row: row.value, provider, steps: provider.loginSteps(row.value.config), config: row.value.config },
        input.session,
        { next: safeNext(input.next, ctx.urls.baseUrl), referrer, loginHint },
      )
      if (discovery === null || step.isErr()) return step
      const { domain, trace } = discovery
      const found = { domain, organizationId, trace }
      return ok(step.value.kind === 'redirect' || step.value.kind === 'render' ? { ...step.value, discovery: found } : step.value)
    }, 'orgLogin')

  const beginSetup = (input: BeginSetupInput): ResultAsync<Step, AuthError> =>
    run(async () => {
      const redirect: ErrorRedirectHint = 'authSettings'
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input', redirect))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId', redirect))
      if (!validSession(input.session)) return err(inputInvalid('session', redirect))
      if (typeof input.providerKey !== 'string') return err(inputInvalid('providerKey', redirect))
      const admin = await read(() => authorizeSsoAdmin(ctx, ctx.storage, input.organizationId, input.session), redirect)
      if (admin.isErr()) return err(admin.error)
      if (admin.value.isErr()) return err(withRedirect(admin.value.error, redirect))
      const organization = admin.value.value.organization
      const provider = ctx.providers.get(input.providerKey)
      if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect }))
      const enabled = await read(async () => ctx.hooks.isProviderEnabled(organization, provider.key), redirect)
      if (enabled.isErr()) return err(enabled.error)
      if (enabled.value !== true) return err(authError('PROVIDER_DISABLED', { redirect }))
      const existing = await read(() => ctx.storage.getAuthProvider(organization.id), redirect)
      if (existing.isErr()) return err(existing.error)
      if (existing.value) return err(authError('PROVIDER_EXISTS', { redirect }))
      return start('setup', { organization, row: null, provider, steps: provider.setupSteps(), config: {} }, input.session, {
        next: null,
        referrer: null,
        loginHint: null,
      })
    }, 'authSettings')

  const advance = (input: AdvanceInput, finish: Finish): ResultAsync<Step, AuthError> =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input', 'root'))
      if (!validSession(input.session)) return err(inputInvalid('session', 'root'))
      const request = normalizeRequest(input.request)
      if (request === null) return err(inputInvalid('request', 'root'))
      const opened = await openState(ctx, input.handle, input.session.id)
      if (opened.isErr()) return err(opened.error)
      const state = opened.value.state
      const redirect = redirectFor(state.flow)
      if (state.flow === 'setup' && state.initiatorUserId !== null && (input.session.userId ?? null) !== state.initiatorUserId) {
        return err(authError('UID_MISMATCH', { redirect }))
      }
      const loaded = await load(state)
      if (loaded.isErr()) return err(loaded.error)
      if (!withinFieldLimit(request, loaded.value.provider)) return err(inputInvalid('request', redirect))
      const fingerprint = await memoStepFingerprint(ctx, loaded.value.provider.key, state.flow, stepIds(loaded.value.steps))
      const checked = checkState(state, { now: ctx.clock.now(), fingerprint })
      if (checked.isErr()) return err(checked.error)
      return drive(opened.value, input.handle as string, loaded.value, request, input.session, finish)
    }, 'root')

  /**
   * An unsolicited (IdP-initiated) response. The receiving step runs before anything is stored,
   * so a refused response writes nothing; an accepted one must sign in an identity that is
   * already linked to an active member of the org (checked here so that nothing is written
   * otherwise, and enforced again by the finisher on its decision). Then its single-use key is spent and a login state
   * (`initiation: 'unsolicited'`, no initiator, no `next`) is stored and finished.
   */
  const beginUnsolicitedLogin = (input: BeginUnsolicitedLoginInput, finish: Finish): ResultAsync<Step, AuthError> =>
    run(async () => {
      const redirect: ErrorRedirectHint = 'orgLogin'
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input', 'root'))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId', 'root'))
      if (!validSession(input.session)) return err(inputInvalid('session', redirect))
      const request = normalizeRequest(input.request)
      if (request === null) return err(inputInvalid('request', redirect))
      const organizationId = input.organizationId
      const both = await read(() => ctx.configCache.read(organizationId), 'root')
      if (both.isErr()) return err(both.error)
      if (!both.value) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
      const org = ok(both.value.organization)
      const row = ok(both.value.provider)
      if (!row.value) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect }))
      const providerRow = row.value
      const provider = ctx.providers.get(providerRow.providerKey)
      if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect }))
      if (!withinFieldLimit(request, provider)) return err(inputInvalid('request', redirect))
      const entry = provider.unsolicited
      let enabled = false
      try {
        enabled = entry !== undefined && entry.enabled(providerRow.config) === true
      } catch {
        enabled = false
      }
      if (!entry || !enabled) return err(authError('UNSOLICITED_RESPONSE', { redirect, details: { reason: 'disabled' } }))
      const steps = provider.loginSteps(providerRow.config)
      const first = steps.findIndex((s) => s.id === entry.stepId)
      if (first < 0) return err(authError('PROVIDER_ERROR', { redirect, details: { reason: 'unsolicited-step-missing' } }))

      // Run the steps from the receiving one, in memory. A step that wants the browser
      // somewhere else cannot answer an unsolicited response.
      let data: JsonObject = {}
      const spent: { use: SingleUse; stepId: string }[] = []
      for (let i = first; i < steps.length; i++) {
        const providerStep = steps[i] as ProviderStep
        let result: StepResult
        try {
          result = await providerStep.handle({
            flow: 'login',
            request,
            data,
            config: providerRow.config,
            organization: org.value,
            callbackUrl: callbackUrlOf(ctx.urls, provider, org.value),
            random: () => randomToken(32),
            now: ctx.clock.now(),
            unsolicited: true,
          })
        } catch (cause) {
          return err(authError('PROVIDER_ERROR', { redirect, cause, details: { step: providerStep.id } }))
        }
        if (result.type === 'error') return err(withRedirect(result.error, redirect))
        if (result.type !== 'next') {
          return err(authError('UNSOLICITED_RESPONSE', { redirect, details: { reason: 'interactive-step', step: providerStep.id } }))
        }
        if (result.bind !== undefined) {
          const merged: JsonObject = { ...data, ...result.bind }
          if (!jsonWithinLimits(merged)) {
            return err(authError('PROVIDER_RESPONSE_INVALID', { redirect, details: { step: providerStep.id, reason: 'data-too-large' } }))
          }
          data = merged
        }
        if (result.singleUse !== undefined) spent.push({ use: result.singleUse, stepId: providerStep.id })
      }

      // Threat 39: only an identity already linked to an active user may sign in this way.
      let built: IdentityInput | AuthError
      try {
        built = await provider.buildIdentity(data, providerRow.config)
      } catch (cause) {
        return err(authError('IDENTITY_INVALID', { redirect, cause }))
      }
      if (isAuthError(built)) return err(withRedirect(built, redirect))
      const identity = parseIdentity(built)
      if (identity.isErr()) return err(authError('IDENTITY_INVALID', { redirect, details: identity.error.details }))
      const linked = await read(async () => {
        const byId = await ctx.storage.getLinkedIdentity(providerRow.id, identity.value.id, organizationId)
        if (byId || !identity.value.legacyId) return byId
        return ctx.storage.getLinkedIdentity(providerRow.id, identity.value.legacyId, organizationId)
      }, redirect)
      if (linked.isErr()) return err(linked.error)
      if (!linked.value?.user.isActive) {
        return err(authError('UNSOLICITED_RESPONSE', { redirect, details: { reason: 'not-linked' } }))
      }
      if (!linked.value.member) return err(authError('UNSOLICITED_RESPONSE', { redirect, details: { reason: 'not-a-member' } }))

      for (const { use, stepId } of spent) {
        const recorded = await spend(use, provider.key, stepId, redirect)
        if (recorded.isErr()) return err(recorded.error)
      }
      const fingerprint = stepFingerprint(provider.key, 'login', stepIds(steps))
      const created = await createState(ctx, {
        flow: 'login',
        organizationId,
        authProviderId: providerRow.id,
        providerKey: provider.key,
        initiatorUserId: null,
        fingerprint,
        next: null,
        referrer: null,
        initiation: 'unsolicited',
        sessionId: input.session.id,
        data,
        step: steps.length,
      })
      if (created.isErr()) return err(created.error)
      const loaded: Loaded = { organization: org.value, row: providerRow, provider, steps, config: providerRow.config }
      return drive(created.value.opened, created.value.handle, loaded, EMPTY_REQUEST, input.session, finish)
    }, 'orgLogin')

  const serviceMetadata = (input: ServiceMetadataRequest): ResultAsync<ServiceMetadata, AuthError> =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input', 'root'))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId', 'root'))
      if (typeof input.providerKey !== 'string') return err(inputInvalid('providerKey', 'root'))
      const provider = ctx.providers.get(input.providerKey)
      if (!provider?.serviceMetadata) return err(authError('PROVIDER_UNKNOWN', { redirect: 'root' }))
      const organizationId = input.organizationId
      const org = await read(() => ctx.storage.getOrganization(organizationId), 'root')
      if (org.isErr()) return err(org.error)
      if (!org.value) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
      const row = await read(() => ctx.storage.getAuthProvider(organizationId), 'root')
      if (row.isErr()) return err(row.error)
      const config = row.value && row.value.providerKey === provider.key ? row.value.config : null
      let document: ServiceMetadata | AuthError
      try {
        document = await provider.serviceMetadata({
          organization: org.value,
          callbackUrl: callbackUrlOf(ctx.urls, provider, org.value),
          config,
        })
      } catch (cause) {
        return err(authError('PROVIDER_ERROR', { redirect: 'root', cause, details: { stage: 'serviceMetadata' } }))
      }
      if (isAuthError(document)) return err(document)
      return ok(document)
    }, 'root')

  return { beginLogin, beginSetup, advance, beginUnsolicitedLogin, serviceMetadata }
}

/**
 * The URL a provider's steps give the IdP to come back to: `urls.postCallback` for a provider
 * the IdP answers with a cross-site POST (the SAML ACS) when the host has one, else
 * `urls.pipelineCallback`.
 */
function callbackUrlOf(urls: UrlConfig, provider: Provider, organization: Organization): string {
  return provider.callbackMethod === 'POST' && typeof urls.postCallback === 'function'
    ? urls.postCallback(organization)
    : urls.pipelineCallback(organization)
}

const MAX_PARAMS = 64
const DEFAULT_FIELD_LENGTH = 8192
const MAX_FIELD_LENGTH = 1024 * 1024
const MAX_REQUEST_LENGTH = 2 * MAX_FIELD_LENGTH

function stringRecord(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) return null
  const out: Record<string, string> = {}
  const entries = Object.entries(value)
  if (entries.length > MAX_PARAMS) return null
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || k.length > 256 || v.length > MAX_FIELD_LENGTH) return null
    out[k] = v
  }
  return out
}

/**
 * Validates the untrusted request shape: method, bounded single-valued query and form (each
 * value at most 1 MiB, 2 MiB in all; the provider's own, usually far smaller, limit is applied
 * by {@link withinFieldLimit} once the provider is known).
 */
function normalizeRequest(request: unknown): StepRequest | null {
  if (typeof request !== 'object' || request === null) return null
  const r = request as { method?: unknown; query?: unknown; form?: unknown }
  if (r.method !== 'GET' && r.method !== 'POST') return null
  const query = stringRecord(r.query)
  const form = stringRecord(r.form)
  if (query === null || form === null) return null
  let total = 0
  for (const v of [...Object.values(query), ...Object.values(form)]) total += v.length
  if (total > MAX_REQUEST_LENGTH) return null
  return { method: r.method, query, form }
}

/** Every value within the provider's `maxFieldLength` (default 8192, at most 1 MiB). */
function withinFieldLimit(request: StepRequest, provider: Provider): boolean {
  const declared = provider.maxFieldLength
  const limit =
    typeof declared === 'number' && Number.isInteger(declared) && declared > 0 ? Math.min(declared, MAX_FIELD_LENGTH) : DEFAULT_FIELD_LENGTH
  for (const v of Object.values(request.query)) if (v.length > limit) return false
  for (const v of Object.values(request.form)) if (v.length > limit) return false
  return true
}
