import { err, errAsync, ResultAsync } from 'neverthrow'
import type { AuthError } from '../errors.js'
import { resolveContext } from './context.js'
import { createDomainApi } from './domains.js'
import { parseInput } from './inputs.js'
import { createLoginApi } from './login.js'
import { createSetupApi } from './setup.js'
import { createStepApi } from './steps.js'
import { storageFailure } from './transaction.js'
import type { AuthPipeline, AuthPipelineOptions, PendingWorkReport } from './types.js'
import { createWorkApi } from './work.js'

/**
 * Creates the SSO engine. Validates options once and throws `SsoflowError` (code
 * `CONFIG_INVALID`) listing every problem; every later failure is a returned `AuthError`.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { dummyProvider } from 'ssoflow/dummy'
 *
 * const sso = createAuthPipeline({
 *   storage: createMemoryStorage(),
 *   mailer: { send: async () => {} },
 *   signals: { emit: async () => {} },
 *   providers: { dummy: dummyProvider() },
 *   secret: 'a secret of at least thirty-two bytes!!',
 *   urls: {
 *     baseUrl: 'https://app.example',
 *     orgLogin: (org) => `/auth/login/${org.slug}/`,
 *     authSettings: (org) => `/settings/${org.slug}/auth/`,
 *     providerSettings: (org) => `/settings/${org.slug}/auth/provider/`,
 *     afterLogin: (org) => `/organizations/${org.slug}/`,
 *     pipelineCallback: () => 'https://app.example/auth/sso/',
 *     verifyAccount: (token) => `https://app.example/auth/verify/${token}/`,
 *   },
 * })
 * ```
 * @group Engine
 */
export function createAuthPipeline(options: AuthPipelineOptions): AuthPipeline {
  const ctx = resolveContext(options)
  const steps = createStepApi(ctx)
  const login = createLoginApi(ctx)
  const setup = createSetupApi(ctx, { finishLogin: login.finishLogin })
  const work = createWorkApi(ctx)
  const domains = createDomainApi(ctx)
  const finish = { finishLogin: login.finishLogin, finishSetup: setup.finishSetup, finishLoginAfterSteps: login.finishAfterSteps }
  const methods: AuthPipeline = {
    beginLogin: steps.beginLogin,
    beginSetup: steps.beginSetup,
    advance: (input) => steps.advance(input, finish),
    beginUnsolicitedLogin: (input) => steps.beginUnsolicitedLogin(input, finish),
    serviceMetadata: steps.serviceMetadata,
    finishLogin: login.finishLogin,
    explain: login.explain,
    finishSetup: setup.finishSetup,
    disableProvider: setup.disableProvider,
    resendLinkRequests: setup.resendLinkRequests,
    updateSettings: setup.updateSettings,
    refreshIdentity: setup.refreshIdentity,
    addDomain: domains.addDomain,
    verifyDomain: domains.verifyDomain,
    removeDomain: domains.removeDomain,
    listDomains: domains.listDomains,
    verifyAccountLink: login.verifyAccountLink,
    runPendingWork: (input) =>
      new ResultAsync(work.runPendingWork(input ?? {}).catch((cause: unknown) => err<PendingWorkReport, AuthError>(storageFailure(cause)))),
  }
  // Every entry point validates its input at the boundary (src/engine/inputs.ts) and gets the
  // parsed copy; malformed input is INPUT_INVALID before anything is read or written.
  const guarded = {} as Record<keyof AuthPipeline, (input: unknown) => ResultAsync<unknown, AuthError>>
  for (const name of Object.keys(methods) as (keyof AuthPipeline)[]) {
    const method = methods[name] as (input: unknown) => ResultAsync<unknown, AuthError>
    guarded[name] = (input) => {
      const parsed = parseInput(name, input)
      return parsed.isErr() ? errAsync(parsed.error) : method(parsed.value)
    }
  }
  return guarded as unknown as AuthPipeline
}
