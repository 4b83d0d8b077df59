import { ERROR_CODES, SsoflowError } from '../errors.js'
import { type AuditPort, storageAudit } from '../ports/audit.js'
import { type Clock, type IdGenerator, type Logger, systemClock, ulidIds } from '../ports/clock.js'
import type { MailerPort } from '../ports/mailer.js'
import type { SignalPort } from '../ports/signals.js'
import type { OneTimeTokenStore, PipelineStateStore, StoragePort } from '../ports/storage.js'
import type { Provider } from '../providers/types.js'
import { createKeyring, type Keyring } from '../state/crypto.js'
import { type ConfigCache, createConfigCache } from './config-cache.js'
import { assertValidOptions } from './options.js'
import type { AuthPipelineOptions, HookOptions, Policy, UrlConfig } from './types.js'

/** Everything the engine's parts need, resolved once. Internal. */
export interface EngineContext {
  readonly storage: StoragePort
  readonly states: PipelineStateStore
  readonly tokens: OneTimeTokenStore
  /** True when `tokens` is the storage's own store (a transaction may offer it, `tx.oneTimeTokens`). */
  readonly tokensInStorage: boolean
  /**
   * True when `states` is the storage's own store: a login transaction may then consume its
   * state through `tx.pipelineStates`, atomically with its decision.
   */
  readonly statesInStorage: boolean
  /** Memo of values derived once per engine (step fingerprints). */
  readonly memo: Map<string, string>
  readonly mailer: MailerPort
  readonly signals: SignalPort
  readonly audit: AuditPort
  /** True when `audit` is the default port (rows through `tx.appendAudit`, batchable with inserts). */
  readonly auditInStorage: boolean
  readonly providers: ReadonlyMap<string, Provider>
  readonly keyring: Keyring
  readonly urls: UrlConfig
  readonly policy: Policy
  readonly hooks: Required<{ [K in keyof HookOptions]: NonNullable<HookOptions[K]> }>
  readonly clock: Clock
  readonly ids: IdGenerator
  readonly logger: Logger | null
  /** Organizations and their provider rows, reused for `policy.configCacheMs`. */
  readonly configCache: ConfigCache
}

const DEFAULT_MANAGER_ROLES = new Set(['owner', 'manager'])

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) {
    throw new SsoflowError('CONFIG_INVALID', `${ERROR_CODES.CONFIG_INVALID} policy.${name} must be a positive integer`)
  }
  return value
}

/**
 * Validates options (every problem at once, by path: src/engine/options.ts) and fills defaults.
 * Throws {@link SsoflowError} (`CONFIG_INVALID`, a programmer error) when invalid.
 */
export function resolveContext(options: AuthPipelineOptions): EngineContext {
  assertValidOptions(options)
  const providers = new Map<string, Provider>(Object.entries(options.providers))
  const keyring: Keyring = createKeyring(options.secret)
  const p = options.policy ?? {}
  const policy: Policy = {
    stateTtlSeconds: positiveInt('stateTtlSeconds', p.stateTtlSeconds, 3600),
    verificationTtlSeconds: positiveInt('verificationTtlSeconds', p.verificationTtlSeconds, 600),
    verificationResendSeconds: positiveInt('verificationResendSeconds', p.verificationResendSeconds, 600),
    verificationDailyLimit: positiveInt('verificationDailyLimit', p.verificationDailyLimit, 5),
    memberPageSize: positiveInt('memberPageSize', p.memberPageSize, 500),
    newUser: p.newUser ?? 'confirm',
    identitiesOnClaim: p.identitiesOnClaim ?? 'keep',
    rejoinOnLogin: p.rejoinOnLogin ?? true,
    afterCommitTimeoutMs: positiveInt('afterCommitTimeoutMs', p.afterCommitTimeoutMs, 10_000),
    identityRefreshSeconds: p.identityRefreshSeconds ?? 3600,
    configCacheMs: p.configCacheMs ?? 5000,
  }
  const h = options.hooks ?? {}
  const clock = options.clock ?? systemClock
  return {
    storage: options.storage,
    states: options.states ?? options.storage.pipelineStates,
    tokens: options.tokens ?? options.storage.oneTimeTokens,
    tokensInStorage: options.tokens === undefined || options.tokens === options.storage.oneTimeTokens,
    statesInStorage: options.states === undefined || options.states === options.storage.pipelineStates,
    memo: new Map(),
    mailer: options.mailer,
    signals: options.signals,
    audit: options.audit ?? storageAudit(),
    auditInStorage: options.audit === undefined,
    providers,
    keyring,
    urls: options.urls,
    policy,
    hooks: {
      authorize: h.authorize ?? (({ member }) => DEFAULT_MANAGER_ROLES.has(member.role)),
      isProviderEnabled: h.isProviderEnabled ?? (() => true),
      isMemberLimitReached: h.isMemberLimitReached ?? (() => false),
      isRateLimited: h.isRateLimited ?? (() => false),
    },
    clock,
    ids: options.ids ?? ulidIds,
    logger: options.logger ?? null,
    configCache: createConfigCache(options.storage, clock, policy.configCacheMs),
  }
}
