/**
 * The dummy provider: one form step asking for the identity (Sentry's `dummy.AskEmail`). For
 * tests, the quickstart and demos. Never register it in production: whoever fills the form
 * chooses the identity.
 *
 * @module
 */

import type { IdentityInput, JsonObject } from '../../model/identity.js'
import type { Provider, ProviderStep, StepContext, StepResult } from '../types.js'

/** Options of {@link dummyProvider}. @group Providers */
export interface DummyProviderOptions {
  /** Provider key. @defaultValue `'dummy'` */
  readonly key?: string | undefined
  /** Display name. @defaultValue `'Dummy'` */
  readonly displayName?: string | undefined
}

/** The view name of the dummy form, for the host's renderer. @group Providers */
export const DUMMY_FORM_VIEW = 'dummy-form'

/** The id of the dummy provider's only step (part of the pipeline fingerprint). @group Providers */
export const DUMMY_STEP_ID = 'dummy.ask-email'

const TRUTHY = new Set(['on', 'true', '1'])

function formModel(ctx: StepContext, error: string | null): JsonObject {
  return {
    action: ctx.callbackUrl,
    method: 'POST',
    fields: [
      { name: 'id', label: 'External id (defaults to the email)', type: 'text', required: false },
      { name: 'legacy_id', label: 'Legacy id (optional)', type: 'text', required: false },
      { name: 'email', label: 'Email', type: 'email', required: true },
      { name: 'email_verified', label: 'Email verified', type: 'checkbox', required: false },
      { name: 'name', label: 'Name', type: 'text', required: false },
    ],
    error,
  }
}

const askEmail: ProviderStep = {
  id: DUMMY_STEP_ID,
  async handle(ctx: StepContext): Promise<StepResult> {
    if (ctx.request.method !== 'POST') return { type: 'render', view: DUMMY_FORM_VIEW, model: formModel(ctx, null) }
    const form = ctx.request.form
    const email = (form.email ?? '').trim()
    if (email.length === 0) return { type: 'render', view: DUMMY_FORM_VIEW, model: formModel(ctx, 'email is required') }
    const id = (form.id ?? '').trim()
    const legacyId = (form.legacy_id ?? '').trim()
    const name = (form.name ?? '').trim()
    return {
      type: 'next',
      bind: {
        id: id.length > 0 ? id : email,
        legacy_id: legacyId.length > 0 ? legacyId : null,
        email,
        email_verified: TRUTHY.has((form.email_verified ?? '').toLowerCase()),
        name: name.length > 0 ? name : 'Dummy',
      },
    }
  },
}

/**
 * Creates the dummy provider. Its login and setup pipelines are the same single form step
 * (view {@link DUMMY_FORM_VIEW}): GET renders the form; a POST with an `email` binds
 * `id` (the posted id, else the email), `legacy_id`, `email`, `email_verified` (true only for a
 * checkbox posted as `on`, `true` or `1`) and `name` (default `Dummy`) and advances.
 * `buildConfig` returns `{}`; `refreshIdentity` always reports the identity valid.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { dummyProvider } from 'ssoflow/dummy'
 * const sso = createAuthPipeline({ ...ports, providers: { dummy: dummyProvider() }, secret, urls })
 * ```
 * @group Providers
 */
export function dummyProvider(options: DummyProviderOptions = {}): Provider {
  const steps: readonly ProviderStep[] = [askEmail]
  return {
    key: options.key ?? 'dummy',
    displayName: options.displayName ?? 'Dummy',
    loginSteps: () => steps,
    setupSteps: () => steps,
    buildIdentity(data: JsonObject): IdentityInput {
      const id = typeof data.id === 'string' ? data.id : ''
      const legacyId = typeof data.legacy_id === 'string' ? data.legacy_id : null
      return {
        id: legacyId === null ? id : { id, legacyId },
        email: typeof data.email === 'string' ? data.email : '',
        emailVerified: data.email_verified === true,
        name: typeof data.name === 'string' ? data.name : 'Dummy',
        data: {},
      }
    },
    buildConfig: () => ({}),
    refreshIdentity: async (identity) => ({ kind: 'ok', data: identity.data }),
  }
}
