/**
 * The setup pipeline's finish and SSO administration (spec 3.11, 3.13): `finishSetup`,
 * `disableProvider`, `resendLinkRequests`, `updateSettings` and the periodic
 * `refreshIdentity`. Shape of every write path: checks -> ONE storage transaction (re-checking
 * authorization inside it, then the pure decider's effects) -> after commit: signals and mail.
 *
 * @module
 */

import { err, ok, type Result, ResultAsync } from 'neverthrow'
import { decideDisable, decideSettings } from '../core/setup/admin.js'
import { decideSetup } from '../core/setup/decide-setup.js'
import { redactConfigDefault } from '../core/setup/redact.js'
import { decideRefresh, type RefreshCheck } from '../core/setup/refresh.js'
import { type AuthError, authError, type ErrorRedirectHint, isAuthError } from '../errors.js'
import { type JsonObject, jsonWithinLimits, parseIdentity } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import type { StorageReader } from '../ports/storage.js'
import type { Provider, ProviderWarning, RefreshResult } from '../providers/types.js'
import { checkState, stepFingerprint } from '../state/codec.js'
import { applyTxEffects, runAfterCommit } from './apply.js'
import { authorizeSsoAdmin, type SsoAdmin } from './authorize.js'
import type { EngineContext } from './context.js'
import { claimState, consumeState, type OpenedState, openState, releaseState } from './pipeline-state.js'
import { stateErrorRedirect, withRedirect } from './redirect.js'
import { inTransaction, storageFailure } from './transaction.js'
import { resolveTrust } from './trust.js'
import type { AdminInput, AuthPipeline, FinishSetupInput, RefreshOutcome, SessionInfo, SettingsPatch, SetupOutcome } from './types.js'
import { enqueueMailWork, sendInline } from './work.js'

/** The setup part of the engine. Internal; exposed through {@link AuthPipeline}. */
export type SetupApi = Pick<AuthPipeline, 'finishSetup' | 'disableProvider' | 'resendLinkRequests' | 'updateSettings' | 'refreshIdentity'>

const REDIRECT: ErrorRedirectHint = 'authSettings'

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= LIMITS.id
}

function validSession(session: unknown): session is SessionInfo {
  if (typeof session !== 'object' || session === null) return false
  const s = session as { id?: unknown; userId?: unknown; ip?: unknown }
  if (!isId(s.id)) return false
  if (s.ip !== undefined && s.ip !== null && (typeof s.ip !== 'string' || s.ip.length > LIMITS.ip)) return false
  return s.userId === undefined || s.userId === null || isId(s.userId)
}

function inputInvalid(field: string): AuthError {
  return authError('INPUT_INVALID', { redirect: REDIRECT, details: { field } })
}

/** Re-targets an error to the setup exit page (errors about an unknown organization keep `root`). */
function toSettings(error: AuthError): AuthError {
  return withRedirect(error, REDIRECT)
}

/** Wraps an async Result-returning function as a ResultAsync that never rejects. */
function run<T>(fn: () => Promise<Result<T, AuthError>>): ResultAsync<T, AuthError> {
  return new ResultAsync(fn().catch((cause: unknown) => err<T, AuthError>(isAuthError(cause) ? cause : storageFailure(cause, REDIRECT))))
}

async function read<T>(fn: () => Promise<T>): Promise<Result<T, AuthError>> {
  try {
    return ok(await fn())
  } catch (cause) {
    return err(storageFailure(cause, REDIRECT))
  }
}

/** A unique-constraint failure on the provider row means another setup won the race. */
function providerExistsOnConflict(error: AuthError): AuthError {
  if (error.code === 'STORAGE_CONFLICT' && error.details?.constraint === 'auth_provider.organization') {
    return authError('PROVIDER_EXISTS', { redirect: REDIRECT, cause: error.cause })
  }
  return toSettings(error)
}

/** The provider config with secrets removed: the provider's own redaction, then the default. */
function redact(provider: Provider | undefined, config: JsonObject): JsonObject {
  let redacted = config
  if (provider?.redactConfig) {
    try {
      redacted = provider.redactConfig(config)
    } catch {
      redacted = config
    }
  }
  return redactConfigDefault(redacted)
}

/** The provider's warnings about a config; a throwing or malformed hook gives none. */
function providerWarnings(provider: Provider, config: JsonObject): ProviderWarning[] {
  if (!provider.setupWarnings) return []
  try {
    return provider
      .setupWarnings(config)
      .filter((w) => typeof w?.code === 'string' && typeof w.message === 'string')
      .map((w) => ({ code: w.code, message: w.message }))
  } catch {
    return []
  }
}

/**
 * Creates the setup API over an engine context. `deps.finishLogin` is accepted for symmetry
 * with the login API (setup never finishes a login).
 */
export function createSetupApi(ctx: EngineContext, deps: Pick<AuthPipeline, 'finishLogin'>): SetupApi {
  void deps

  /** Authorization as setup defines it: a member who is no longer a member is a UID mismatch. */
  async function authorizeForSetup(
    reader: StorageReader,
    organizationId: string,
    session: SessionInfo,
  ): Promise<Result<SsoAdmin, AuthError>> {
    const result = await authorizeSsoAdmin(ctx, reader, organizationId, session)
    if (result.isOk()) return result
    if (result.error.code === 'NOT_A_MEMBER') return err(authError('UID_MISMATCH', { redirect: REDIRECT }))
    return err(toSettings(result.error))
  }

  /** Returns a claimed state: back to open when retrying may help, consumed otherwise. */
  async function settle(claimed: OpenedState, error: AuthError): Promise<AuthError> {
    const settled = error.retryable ? await releaseState(ctx, claimed) : await consumeState(ctx, claimed)
    if (settled.isErr()) ctx.logger?.warn('ssoflow: could not settle setup state', { code: settled.error.code })
    return error
  }

  const finishSetup = (input: FinishSetupInput): ResultAsync<SetupOutcome, AuthError> =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input'))
      if (!validSession(input.session)) return err(inputInvalid('session'))
      const session = input.session
      const opened = await openState(ctx, input.handle, session.id, { flow: 'setup' })
      if (opened.isErr()) return err(stateErrorRedirect(opened.error, REDIRECT))
      const state = opened.value.state
      const userId = session.userId
      if (typeof userId !== 'string') return err(authError('NOT_AUTHENTICATED', { redirect: REDIRECT }))
      if (state.initiatorUserId === null || userId !== state.initiatorUserId) return err(authError('UID_MISMATCH', { redirect: REDIRECT }))
      const provider = ctx.providers.get(state.providerKey)
      if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect: REDIRECT }))
      // Finishing is only possible after every setup step ran, against the same step list.
      const steps = provider.setupSteps().map((step) => step.id)
      if (state.step < steps.length) {
        return err(authError('STATE_INVALID', { redirect: REDIRECT, details: { reason: 'steps-incomplete' } }))
      }
      const fingerprint = stepFingerprint(provider.key, 'setup', steps)
      const current = checkState(state, { now: ctx.clock.now(), fingerprint })
      if (current.isErr()) return err(toSettings(current.error))
      const identity = parseIdentity(input.identity)
      if (identity.isErr()) return err(toSettings(identity.error))

      // Cheap checks before claiming the state; repeated inside the transaction.
      const pre = await read(() => authorizeForSetup(ctx.storage, state.organizationId, session))
      if (pre.isErr()) return err(pre.error)
      if (pre.value.isErr()) return err(pre.value.error)
      const existing = await read(() => ctx.storage.getAuthProvider(state.organizationId))
      if (existing.isErr()) return err(existing.error)
      if (existing.value) return err(authError('PROVIDER_EXISTS', { redirect: REDIRECT }))

      // One state, one finish: the loser of a concurrent finish gets STATE_CONFLICT.
      const claimed = await claimState(ctx, opened.value)
      if (claimed.isErr()) return err(toSettings(claimed.error))

      // The config comes from the server-side bound state, never from the caller.
      let built: JsonObject | AuthError
      try {
        built = await provider.buildConfig(state.data)
      } catch (cause) {
        return err(
          await settle(claimed.value, authError('PROVIDER_ERROR', { redirect: REDIRECT, cause, details: { stage: 'buildConfig' } })),
        )
      }
      if (isAuthError(built)) return err(await settle(claimed.value, toSettings(built)))
      if (typeof built !== 'object' || built === null || Array.isArray(built) || !jsonWithinLimits(built)) {
        return err(
          await settle(claimed.value, authError('PROVIDER_RESPONSE_INVALID', { redirect: REDIRECT, details: { stage: 'buildConfig' } })),
        )
      }
      // Issue 13: a config whose trust policy is refused is never stored.
      const trust = resolveTrust(provider, built, REDIRECT)
      if (trust.isErr()) return err(await settle(claimed.value, trust.error))
      const config = built
      const now = ctx.clock.now()
      const ids = {
        provider: ctx.ids.next(),
        identity: ctx.ids.next(),
        auditOrgEdit: ctx.ids.next(),
        auditLink: ctx.ids.next(),
        auditEnable: ctx.ids.next(),
      }
      const committed = await inTransaction(
        ctx.storage,
        async (tx) => {
          const admin = await authorizeForSetup(tx, state.organizationId, session)
          if (admin.isErr()) return err(admin.error)
          const plan = decideSetup({
            now,
            ids,
            organization: admin.value.organization,
            admin: { user: admin.value.user, member: admin.value.member },
            initiatorUserId: state.initiatorUserId,
            existingProvider: await tx.getAuthProvider(state.organizationId),
            providerKey: provider.key,
            config,
            redactedConfig: redact(provider, config),
            identity: identity.value,
            ip: session.ip ?? null,
          })
          if (plan.isErr()) return err(plan.error)
          await applyTxEffects(tx, ctx.audit, plan.value.txEffects)
          // The link requests to the org's members: background work, in this transaction.
          const mail = await enqueueMailWork(ctx, tx, {
            kind: 'link-requests',
            organization: admin.value.organization,
            provider: plan.value.provider,
            reason: 'setup',
            now,
          })
          return ok({ plan: plan.value, organization: admin.value.organization, mail })
        },
        REDIRECT,
      ).mapErr(providerExistsOnConflict)
      // The org's row (require2fa) and provider changed: this engine's copy goes (config-cache.ts).
      ctx.configCache.drop(state.organizationId)
      if (committed.isErr()) return err(await settle(claimed.value, committed.error))

      const consumed = await consumeState(ctx, claimed.value)
      if (consumed.isErr()) ctx.logger?.warn('ssoflow: setup committed but its state was not consumed', { code: consumed.error.code })

      const { plan, organization, mail } = committed.value
      const warnings = await runAfterCommit(ctx, plan.afterCommit)
      if (mail.inline) warnings.push(...(await sendInline(ctx, mail.inline)))
      const outcome: SetupOutcome = {
        kind: 'setupComplete',
        organizationId: organization.id,
        authProviderId: plan.provider.id,
        providerKey: provider.key,
        redirect: ctx.urls.providerSettings(organization),
        linkRequestsQueued: mail.queued,
        session: [{ type: 'markSsoComplete', organizationId: organization.id, at: now.toISOString() }, { type: 'clearPipeline' }],
        trace: plan.trace,
        warnings,
        policyChanges: plan.policyChanges,
        providerWarnings: providerWarnings(provider, config),
      }
      return ok(outcome)
    })

  const disableProvider: SetupApi['disableProvider'] = (input: AdminInput) =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input'))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId'))
      if (!validSession(input.session)) return err(inputInvalid('session'))
      const session = input.session
      const now = ctx.clock.now()
      const auditId = ctx.ids.next()
      const committed = await inTransaction(
        ctx.storage,
        async (tx) => {
          const admin = await authorizeSsoAdmin(ctx, tx, input.organizationId, session)
          if (admin.isErr()) return err(toSettings(admin.error))
          // Exclusive: in-flight logins (which hold the row shared) finish first and a second
          // disable waits here, then finds no provider (PROVIDER_NOT_CONFIGURED, nothing written).
          const row = await tx.lockAuthProvider(input.organizationId, 'update')
          const plan = decideDisable({
            now,
            auditId,
            actor: { userId: admin.value.user.id, ip: session.ip ?? null },
            organization: admin.value.organization,
            provider: row,
            redactedConfig: row ? redact(ctx.providers.get(row.providerKey), row.config) : {},
          })
          if (plan.isErr()) return err(plan.error)
          await applyTxEffects(tx, ctx.audit, plan.value.txEffects)
          // The notices to the org's members: background work, in this transaction.
          return ok(
            await enqueueMailWork(ctx, tx, {
              kind: 'unlink-notices',
              organization: admin.value.organization,
              provider: plan.value.provider,
              reason: 'disable',
              now,
            }),
          )
        },
        REDIRECT,
      ).mapErr(toSettings)
      ctx.configCache.drop(input.organizationId)
      if (committed.isErr()) return err(committed.error)
      if (committed.value.inline) await sendInline(ctx, committed.value.inline)
      return ok({ kind: 'providerDisabled' as const, unlinkMailsQueued: committed.value.queued })
    })

  const resendLinkRequests: SetupApi['resendLinkRequests'] = (input: AdminInput) =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input'))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId'))
      if (!validSession(input.session)) return err(inputInvalid('session'))
      const session = input.session
      const now = ctx.clock.now()
      // One short transaction: authorization, the provider held shared (a concurrent disable
      // waits, or has already removed it), and the work recorded. No member is read here.
      const committed = await inTransaction(
        ctx.storage,
        async (tx) => {
          const admin = await authorizeSsoAdmin(ctx, tx, input.organizationId, session)
          if (admin.isErr()) return err(toSettings(admin.error))
          const provider = await tx.lockAuthProvider(input.organizationId, 'share')
          if (!provider) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect: REDIRECT }))
          return ok(
            await enqueueMailWork(ctx, tx, {
              kind: 'link-requests',
              organization: admin.value.organization,
              provider,
              reason: 'resend',
              now,
            }),
          )
        },
        REDIRECT,
      ).mapErr(toSettings)
      if (committed.isErr()) return err(committed.error)
      if (committed.value.inline) await sendInline(ctx, committed.value.inline)
      return ok({ kind: 'linkRequestsQueued' as const, queued: committed.value.queued })
    })

  const updateSettings: SetupApi['updateSettings'] = (input: AdminInput & { readonly settings: SettingsPatch }) =>
    run(async () => {
      if (typeof input !== 'object' || input === null) return err(inputInvalid('input'))
      if (!isId(input.organizationId)) return err(inputInvalid('organizationId'))
      if (!validSession(input.session)) return err(inputInvalid('session'))
      if (typeof input.settings !== 'object' || input.settings === null) return err(inputInvalid('settings'))
      const session = input.session
      const now = ctx.clock.now()
      const auditId = ctx.ids.next()
      const change = {
        requireSso: input.settings.requireSso,
        scimEnabled: input.settings.scimEnabled,
        defaultRole: input.settings.defaultRole,
      }
      const committed = await inTransaction(
        ctx.storage,
        async (tx) => {
          const admin = await authorizeSsoAdmin(ctx, tx, input.organizationId, session)
          if (admin.isErr()) return err(toSettings(admin.error))
          const plan = decideSettings({
            now,
            auditId,
            actor: { userId: admin.value.user.id, ip: session.ip ?? null },
            organization: admin.value.organization,
            // Exclusive, like disable: a settings change and a disable are serial.
            provider: await tx.lockAuthProvider(input.organizationId, 'update'),
            change,
          })
          if (plan.isErr()) return err(plan.error)
          await applyTxEffects(tx, ctx.audit, plan.value.txEffects)
          return ok(plan.value.changed)
        },
        REDIRECT,
      ).mapErr(toSettings)
      ctx.configCache.drop(input.organizationId)
      if (committed.isErr()) return err(committed.error)
      return ok({ kind: 'settingsUpdated' as const, changed: committed.value })
    })

  const refreshIdentity: SetupApi['refreshIdentity'] = (input: { readonly identityId: string }) =>
    run(async (): Promise<Result<RefreshOutcome, AuthError>> => {
      if (typeof input !== 'object' || input === null || !isId(input.identityId)) return err(inputInvalid('identityId'))
      const identityId = input.identityId
      const found = await read(() => ctx.storage.getIdentityById(identityId))
      if (found.isErr()) return err(found.error)
      const identity = found.value
      if (!identity)
        return err(authError('INPUT_INVALID', { redirect: REDIRECT, details: { field: 'identityId', reason: 'identity-not-found' } }))
      const row = await read(() => ctx.storage.getAuthProviderById(identity.authProviderId))
      if (row.isErr()) return err(row.error)
      const authProvider = row.value
      if (!authProvider) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect: REDIRECT }))
      const member = await read(() => ctx.storage.getMember(authProvider.organizationId, identity.userId))
      if (member.isErr()) return err(member.error)

      let check: RefreshCheck = { kind: 'error', reason: 'not checked' }
      if (member.value) {
        const provider = ctx.providers.get(authProvider.providerKey)
        if (!provider) return err(authError('PROVIDER_UNKNOWN', { redirect: REDIRECT }))
        if (!provider.refreshIdentity) {
          return err(authError('INPUT_INVALID', { redirect: REDIRECT, details: { field: 'identityId', reason: 'refresh-not-supported' } }))
        }
        let result: RefreshResult
        try {
          result = await provider.refreshIdentity(identity, authProvider.config)
        } catch (cause) {
          result = { kind: 'error', reason: 'provider check threw', cause }
        }
        if (result.kind === 'ok') {
          let data: JsonObject = result.data
          try {
            data = provider.updateIdentity ? provider.updateIdentity(result.data, identity.data) : result.data
          } catch {
            data = result.data
          }
          check = jsonWithinLimits(data) ? { kind: 'ok', data } : { kind: 'error', reason: 'provider data too large' }
        } else {
          check = { kind: result.kind, reason: result.reason }
        }
      }

      const now = ctx.clock.now()
      return inTransaction(
        ctx.storage,
        async (tx) => {
          // The provider first, held shared (with the identity's lock): a disable waits for this
          // transaction, or has already removed the provider and its identities.
          const held = await tx.lockIdentity(authProvider.id, identity.ident)
          if (!held) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect: REDIRECT }))
          // Re-read inside the transaction: the identity may have moved or gone meanwhile.
          const current = await tx.getIdentityById(identityId)
          if (!current || current.userId !== identity.userId || current.authProviderId !== identity.authProviderId) {
            return err(authError('STORAGE_CONFLICT', { redirect: REDIRECT, details: { reason: 'identity-changed' } }))
          }
          const currentMember = await tx.getMember(authProvider.organizationId, current.userId)
          if (currentMember && !member.value) {
            return err(authError('STORAGE_CONFLICT', { redirect: REDIRECT, details: { reason: 'membership-changed' } }))
          }
          const plan = decideRefresh({ now, identity: current, member: currentMember, check })
          await applyTxEffects(tx, ctx.audit, plan.txEffects)
          return ok(plan.outcome)
        },
        REDIRECT,
      )
    })

  return { finishSetup, disableProvider, resendLinkRequests, updateSettings, refreshIdentity }
}
