/**
 * The OIDC setup form: view name, model shape, and the form state a later step leaves for it
 * when it sends the admin back with errors (issue 17).
 *
 * @module
 */

import type { AuthErrorCode } from '../../errors.js'
import type { JsonObject, JsonValue } from '../../model/identity.js'
import type { StepResult } from '../types.js'
import { isClientAuthMethod, type OidcClientAuthMethod } from './config.js'

/** View name of the setup form (issuer, client id, client secret, client authentication). @group Providers */
export const OIDC_SETUP_VIEW = 'oidc-setup-form'

/** Names of the setup form's fields. @group Providers */
export type OidcSetupFieldName = 'issuer' | 'client_id' | 'client_secret' | 'client_auth'

/** One field of the setup form. @group Providers */
export interface OidcSetupFormField {
  readonly name: OidcSetupFieldName
  readonly label: string
  /** `select` fields carry `options`. */
  readonly type: 'url' | 'text' | 'password' | 'select'
  readonly required: boolean
  /** Current value (never the secret). */
  readonly value: string
  readonly options?: readonly { readonly value: string; readonly label: string }[] | undefined
  /** Help text shown under the field. */
  readonly hint?: string | undefined
}

/** An error shown on the form; `field` is null for errors about the whole setup. @group Providers */
export interface OidcSetupFormError {
  readonly field: OidcSetupFieldName | null
  readonly code: AuthErrorCode
  /** Plain text for the admin (may quote the provider's own text; render as text, never HTML). */
  readonly message: string
}

/** A value the admin probably meant, e.g. the issuer exactly as the provider names itself. @group Providers */
export interface OidcSetupSuggestion {
  readonly field: OidcSetupFieldName
  readonly value: string
  readonly message: string
}

/**
 * The model of the `oidc-setup-form` view. `error` (the first error's message, or null) is kept
 * for hosts that render a single message; `errors` and `suggestions` carry all of them.
 * `notice` is an informational message; a model with no fields and a notice is a "continue"
 * page whose POST goes on with the setup.
 * @group Providers
 */
export interface OidcSetupFormModel {
  readonly action: string
  readonly method: 'POST'
  readonly fields: readonly OidcSetupFormField[]
  readonly error: string | null
  readonly errors: readonly OidcSetupFormError[]
  readonly suggestions: readonly OidcSetupSuggestion[]
  readonly notice: string | null
}

/** What the admin typed (never the secret). */
export interface FormValues {
  readonly issuer: string
  readonly client_id: string
  readonly client_auth: OidcClientAuthMethod | 'auto'
}

/** Form state carried in pipeline data (`oidc_form`) from a later step back to the form. */
export interface FormState {
  readonly values: FormValues
  readonly errors: readonly OidcSetupFormError[]
  readonly suggestions: readonly OidcSetupSuggestion[]
}

const EMPTY_VALUES: FormValues = { issuer: '', client_id: '', client_auth: 'auto' }

/** Reads form state back from pipeline data (written by {@link formStateJson}). */
export function readFormState(value: JsonValue | undefined): FormState | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const v = value as Record<string, unknown>
  const values = (typeof v.values === 'object' && v.values !== null ? v.values : {}) as Record<string, unknown>
  return {
    values: {
      issuer: typeof values.issuer === 'string' ? values.issuer : '',
      client_id: typeof values.client_id === 'string' ? values.client_id : '',
      client_auth: isClientAuthMethod(values.client_auth) ? values.client_auth : 'auto',
    },
    errors: Array.isArray(v.errors) ? (v.errors as unknown as OidcSetupFormError[]) : [],
    suggestions: Array.isArray(v.suggestions) ? (v.suggestions as unknown as OidcSetupSuggestion[]) : [],
  }
}

/** Form state as JSON for pipeline data. */
export function formStateJson(state: FormState): JsonObject {
  return {
    values: { ...state.values },
    errors: state.errors.map((e) => ({ ...e })),
    suggestions: state.suggestions.map((s) => ({ ...s })),
  }
}

/** The render result of the form. `keepSecret`: a secret is already bound and may be left empty. */
export function renderForm(
  action: string,
  state: Partial<FormState> & { readonly notice?: string | null | undefined },
  options: { readonly keepSecret: boolean; readonly bind?: JsonObject | undefined },
): StepResult {
  const values = state.values ?? EMPTY_VALUES
  const errors = state.errors ?? []
  const model: OidcSetupFormModel = {
    action,
    method: 'POST',
    fields: [
      { name: 'issuer', label: 'Issuer URL', type: 'url', required: true, value: values.issuer },
      { name: 'client_id', label: 'Client ID', type: 'text', required: true, value: values.client_id },
      {
        name: 'client_secret',
        label: 'Client secret',
        type: 'password',
        required: !options.keepSecret,
        value: '',
        ...(options.keepSecret ? { hint: 'Leave empty to keep the secret you entered before.' } : {}),
      },
      {
        name: 'client_auth',
        label: 'Client authentication',
        type: 'select',
        required: false,
        value: values.client_auth,
        options: [
          { value: 'auto', label: 'Automatic (try what the provider advertises, then the other)' },
          { value: 'client_secret_basic', label: 'client_secret_basic (HTTP Basic)' },
          { value: 'client_secret_post', label: 'client_secret_post (in the request body)' },
        ],
      },
    ],
    error: errors[0]?.message ?? null,
    errors,
    suggestions: state.suggestions ?? [],
    notice: state.notice ?? null,
  }
  return { type: 'render', view: OIDC_SETUP_VIEW, model: model as unknown as JsonObject, ...(options.bind ? { bind: options.bind } : {}) }
}

/** A "continue" page: the notice and a button that POSTs back to the pipeline. */
export function renderNotice(action: string, notice: string, bind: JsonObject): StepResult {
  const model: OidcSetupFormModel = { action, method: 'POST', fields: [], error: null, errors: [], suggestions: [], notice }
  return { type: 'render', view: OIDC_SETUP_VIEW, model: model as unknown as JsonObject, bind }
}
