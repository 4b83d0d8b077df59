import type { AuthError } from '../errors.js'
import type { IdentityInput, JsonObject } from '../model/identity.js'
import type { AuthIdentity, Organization } from '../model/records.js'

/**
 * What a provider step sees of the HTTP request. Built by the host or an HTTP adapter.
 * @group Providers
 */
export interface StepRequest {
  readonly method: 'GET' | 'POST'
  /** Query parameters (single values). */
  readonly query: Readonly<Record<string, string>>
  /** Parsed form body for POST (single values). */
  readonly form: Readonly<Record<string, string>>
}

/**
 * Context given to a provider step.
 * @group Providers
 */
export interface StepContext {
  readonly flow: 'login' | 'setup'
  readonly request: StepRequest
  /** Provider-owned state bound by earlier steps. */
  readonly data: JsonObject
  /** The stored provider config (login); `{}` during setup. */
  readonly config: JsonObject
  readonly organization: Organization
  /** Absolute URL the IdP must send the browser back to (the host's pipeline route). */
  readonly callbackUrl: string
  /** Random URL-safe values for state/nonce/PKCE (128+ bits). */
  readonly random: () => string
  readonly now: Date
}

/**
 * What a step returns: send the browser somewhere, render a provider form, or bind data and
 * move to the next step (the last step's `next` finishes the pipeline).
 * @group Providers
 */
export type StepResult =
  | { readonly type: 'redirect'; readonly url: string; readonly bind?: JsonObject | undefined }
  | { readonly type: 'render'; readonly view: string; readonly model: JsonObject; readonly bind?: JsonObject | undefined }
  | { readonly type: 'next'; readonly bind?: JsonObject | undefined }
  | { readonly type: 'error'; readonly error: AuthError }

/**
 * One step of a provider's pipeline (Sentry's pipeline view). `id` is stable: the ordered ids
 * form the pipeline fingerprint, so changing steps invalidates in-flight pipelines.
 * @group Providers
 */
export interface ProviderStep {
  readonly id: string
  handle(ctx: StepContext): Promise<StepResult>
}

/**
 * Result of a periodic identity refresh.
 * @group Providers
 */
export type RefreshResult =
  | { readonly kind: 'ok'; readonly data: JsonObject }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string; readonly cause?: unknown }

/**
 * An identity provider: a list of steps plus the functions that turn bound state into an
 * identity (login) or a stored config (setup).
 * @group Providers
 */
export interface Provider {
  /** The key stored on the auth provider row, e.g. `dummy`, `oidc`. */
  readonly key: string
  /** Display name for pages and mail. */
  readonly displayName: string
  /** Steps of the login pipeline, given the stored config. */
  loginSteps(config: JsonObject): readonly ProviderStep[]
  /** Steps of the setup pipeline (usually config steps, then the login steps). */
  setupSteps(): readonly ProviderStep[]
  /** Builds the identity from the bound state. Returned input is validated by the engine. */
  buildIdentity(data: JsonObject, config: JsonObject): IdentityInput | AuthError | Promise<IdentityInput | AuthError>
  /** Builds the provider config from the setup pipeline's bound state. */
  buildConfig(data: JsonObject): JsonObject | AuthError | Promise<JsonObject | AuthError>
  /** Config with secrets removed, for audit entries and admin pages. Default: identity. */
  redactConfig?(config: JsonObject): JsonObject
  /** Merges fresh identity data over stored data. Default: the new data replaces the old. */
  updateIdentity?(next: JsonObject, current: JsonObject): JsonObject
  /** Periodic check: is the identity still valid at the IdP? */
  refreshIdentity?(identity: AuthIdentity, config: JsonObject): Promise<RefreshResult>
}
