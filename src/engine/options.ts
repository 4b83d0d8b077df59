/**
 * Validation of the options of `createAuthPipeline` (issue 18): one zod schema for every
 * option, checked once at creation. Every problem is collected and thrown together as one
 * `SsoflowError` with code `CONFIG_INVALID`, each problem named by its path
 * (`urls.pipelineCallback: expected a function`), so that a misconfiguration never surfaces later
 * as a failed login.
 *
 * Ports are checked for the presence of every method of their interface; their behaviour is
 * the contract suite's job (`ssoflow/testing`).
 *
 * @module
 */
import { z } from 'zod'
import { ERROR_CODES, SsoflowError } from '../errors.js'
import type { OneTimeTokenStore, PendingWorkStore, PipelineStateStore, StoragePort, StorageReader } from '../ports/storage.js'
import type { Provider } from '../providers/types.js'
import { MIN_SECRET_BYTES } from '../state/crypto.js'
import type { AuthPipelineOptions, HookOptions, PolicyOptions, UrlConfig } from './types.js'

const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: 'expected a function' })

/** An object with these methods (other members are allowed and kept by the caller). */
function port<K extends string>(methods: readonly K[], optional: readonly string[] = []) {
  return z.looseObject({
    ...Object.fromEntries(methods.map((m) => [m, fn])),
    ...Object.fromEntries(optional.map((m) => [m, fn.optional()])),
  })
}

/** Method names of an interface; the `Exact` check below fails to compile when one is missing. */
type Exact<T, K extends readonly (keyof T)[]> = [Exclude<keyof T, K[number]>] extends [never] ? K : never

const READER = [
  'getOrganization',
  'getAuthProvider',
  'getAuthProviderById',
  'getIdentity',
  'getIdentityById',
  'getIdentityForUser',
  'listIdentitiesForUser',
  'getLinkedIdentity',
  'getUser',
  'findUsersByEmail',
  'getMember',
  'getMemberById',
  'getInviteByEmail',
  'listMembers',
  'listIdentities',
] as const
const STATES = ['create', 'load', 'compareAndSet', 'delete', 'deleteExpired'] as const
const TOKENS = ['create', 'consume', 'peek'] as const
/** Optional reader methods (the engine falls back when an adapter lacks them). */
type OptionalReader = 'getOrganizationWithProvider' | 'listMemberRecipients' | 'listOrganizationDomains' | 'findVerifiedDomains'
const TOKENS_OPTIONAL = ['deleteExpired'] as const
const WORK = ['claim', 'advance', 'complete'] as const
const readerMethods: Exact<Omit<StorageReader, OptionalReader>, typeof READER> = READER
const stateMethods: Exact<PipelineStateStore, typeof STATES> = STATES
const tokenMethods: Exact<OneTimeTokenStore, [...typeof TOKENS, ...typeof TOKENS_OPTIONAL]> = [...TOKENS, ...TOKENS_OPTIONAL]
const workMethods: Exact<PendingWorkStore, typeof WORK> = WORK
const storageMembers: Exact<
  Omit<StoragePort, OptionalReader>,
  [...typeof READER, 'transaction', 'pipelineStates', 'oneTimeTokens', 'pendingWork']
> = [...READER, 'transaction', 'pipelineStates', 'oneTimeTokens', 'pendingWork']
void storageMembers

void tokenMethods
const storage = port([...readerMethods, 'transaction']).extend({
  pipelineStates: port(stateMethods),
  oneTimeTokens: port(TOKENS, TOKENS_OPTIONAL),
  pendingWork: port(workMethods).optional(),
})

const URL_FUNCTIONS = ['orgLogin', 'authSettings', 'providerSettings', 'afterLogin', 'pipelineCallback', 'verifyAccount'] as const
const urlFunctions: Exact<Omit<UrlConfig, 'baseUrl' | 'postCallback'>, typeof URL_FUNCTIONS> = URL_FUNCTIONS

const baseUrl = z.string().refine(
  (v) => {
    try {
      const u = new URL(v)
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin !== 'null'
    } catch {
      return false
    }
  },
  { message: 'expected an absolute http(s) URL' },
)

const provider = port(
  ['loginSteps', 'setupSteps', 'buildIdentity', 'buildConfig'],
  ['redactConfig', 'updateIdentity', 'refreshIdentity', 'serviceMetadata', 'setupWarnings', 'trustPolicy'],
).extend({
  key: z.string().min(1).max(255),
  displayName: z.string(),
  unsolicited: z.looseObject({ stepId: z.string().min(1), enabled: fn }).optional(),
})
type ProviderChecked = Exact<Provider, ['key', 'displayName', 'loginSteps', 'setupSteps', 'buildIdentity', 'buildConfig']>
void (null as unknown as ProviderChecked)

const positiveInt = z.number().int().positive().optional()
const policyKeys = [
  'stateTtlSeconds',
  'verificationTtlSeconds',
  'verificationResendSeconds',
  'verificationDailyLimit',
  'memberPageSize',
  'newUser',
  'afterCommitTimeoutMs',
  'identitiesOnClaim',
  'identityRefreshSeconds',
  'rejoinOnLogin',
  'configCacheMs',
] as const
const policy: Exact<PolicyOptions, typeof policyKeys> = policyKeys
/** Each policy key's schema: positive integers, except the enumerated ones. */
const policySchema: Record<(typeof policyKeys)[number], z.ZodType> = {
  ...(Object.fromEntries(policy.map((k) => [k, positiveInt])) as unknown as Record<(typeof policyKeys)[number], z.ZodType>),
  newUser: z.enum(['confirm', 'create'], { message: "expected 'confirm' or 'create'" }).optional(),
  identitiesOnClaim: z.enum(['keep', 'remove'], { message: "expected 'keep' or 'remove'" }).optional(),
  identityRefreshSeconds: z.number().int().nonnegative().optional(),
  configCacheMs: z.number().int().nonnegative().max(3_600_000).optional(),
  rejoinOnLogin: z.boolean({ message: 'expected a boolean' }).optional(),
}
const hookKeys = ['authorize', 'isProviderEnabled', 'isMemberLimitReached', 'isRateLimited'] as const
const hooks: Exact<HookOptions, typeof hookKeys> = hookKeys

const secret = z
  .union([z.string(), z.instanceof(Uint8Array)], { message: 'expected a string or a Uint8Array' })
  .refine((v) => (typeof v === 'string' ? new TextEncoder().encode(v).byteLength : v.byteLength) >= MIN_SECRET_BYTES, {
    message: `must be at least ${MIN_SECRET_BYTES} bytes`,
  })

const optionsSchema = z.object({
  storage,
  mailer: port(['send']),
  signals: port(['emit']),
  audit: port(['record']).optional(),
  states: port(stateMethods).optional(),
  tokens: port(TOKENS, TOKENS_OPTIONAL).optional(),
  providers: z
    .record(z.string().min(1).max(255), provider)
    .refine((p) => Object.keys(p).length > 0, { message: 'at least one provider is required' })
    .superRefine((p, ctx) => {
      for (const [key, value] of Object.entries(p)) {
        if ((value as { key?: unknown }).key !== key)
          ctx.addIssue({ code: 'custom', path: [key, 'key'], message: `expected "${key}" (the key it is registered under)` })
      }
    }),
  secret,
  urls: z.looseObject({ baseUrl, ...Object.fromEntries(urlFunctions.map((k) => [k, fn])), postCallback: fn.optional() }),
  policy: z.object(policySchema).optional(),
  hooks: z.object(Object.fromEntries(hooks.map((k) => [k, fn.optional()]))).optional(),
  clock: port(['now']).optional(),
  ids: port(['next']).optional(),
  logger: port(['warn'], ['info']).optional(),
} satisfies Record<keyof AuthPipelineOptions, z.ZodType>)

/** One problem of an options object. */
export interface OptionProblem {
  readonly path: string
  readonly message: string
}

/** Every problem of `options` (empty when valid). */
export function optionProblems(options: unknown): OptionProblem[] {
  const parsed = optionsSchema.safeParse(options)
  if (parsed.success) return []
  return parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.') || 'options', message: i.message }))
}

/**
 * Throws one `SsoflowError` (`CONFIG_INVALID`) listing every problem of `options`, each by path;
 * returns when they are valid.
 */
export function assertValidOptions(options: unknown): asserts options is AuthPipelineOptions {
  const problems = optionProblems(options)
  if (problems.length === 0) return
  const list = problems.map((p) => `${p.path}: ${p.message}`).join('; ')
  throw new SsoflowError('CONFIG_INVALID', `${ERROR_CODES.CONFIG_INVALID} ${list}`, { issues: problems })
}
