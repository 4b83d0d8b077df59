import type { AuthError } from '../errors.js'
import type { IdentityInput, JsonObject } from '../model/identity.js'
import type { AuthIdentity, Organization } from '../model/records.js'
import type { TrustPolicy } from '../model/trust.js'

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
  /**
   * True when the pipeline was started by an unsolicited IdP response (`beginUnsolicitedLogin`):
   * no earlier step ran, so there is no request of ours the response could answer. Absent or
   * false for every pipeline started by `beginLogin` or `beginSetup`.
   */
  readonly unsolicited?: boolean | undefined
  /**
   * Who is signing in, as given to `beginLogin` (`loginHint`): set only while `beginLogin` runs
   * the first steps, already bounded. A hint for the IdP, never an identity.
   */
  readonly loginHint?: string | null | undefined
}

/**
 * An IdP response a step accepted that must never be accepted again (a SAML assertion id). The
 * engine records `key` in the one-time token store until `expiresAt` (epoch ms) before the
 * pipeline moves on; a second use, including a concurrent one, is refused with
 * `ASSERTION_REPLAYED`.
 * @group Providers
 */
export interface SingleUse {
  /** Provider-scoped key (e.g. IdP entity id + assertion id), at most 1024 characters. */
  readonly key: string
  /** When the response stops being acceptable anyway (epoch ms). */
  readonly expiresAt: number
}

/**
 * What a step returns: send the browser somewhere, render a provider form, bind data and move
 * to the next step (the last step's `next` finishes the pipeline), or go back to an earlier step.
 *
 * `back` returns the pipeline to the earlier step whose id is `step` and runs it at once with an
 * empty GET request (the current request belongs to the later step): a form step renders again
 * (showing, for example, field errors the later step put in `bind`), a redirect step sends the
 * browser out again. The state stays open. Going back to the same or a later step, or to an
 * unknown id, is a programmer error (`PROVIDER_ERROR`).
 * @group Providers
 */
export type StepResult =
  | { readonly type: 'redirect'; readonly url: string; readonly bind?: JsonObject | undefined }
  | { readonly type: 'render'; readonly view: string; readonly model: JsonObject; readonly bind?: JsonObject | undefined }
  | { readonly type: 'next'; readonly bind?: JsonObject | undefined; readonly singleUse?: SingleUse | undefined }
  | { readonly type: 'back'; readonly step: string; readonly bind?: JsonObject | undefined }
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
 * A document the provider serves to the IdP's administrator (SAML service provider metadata).
 * @group Providers
 */
export interface ServiceMetadata {
  readonly contentType: string
  readonly body: string
}

/**
 * What {@link Provider.serviceMetadata} is given.
 * @group Providers
 */
export interface ServiceMetadataInput {
  readonly organization: Organization
  /** Where the IdP sends the browser back (the SAML ACS): `urls.postCallback(organization)` for a POST-callback provider when the host has it, else `urls.pipelineCallback(organization)`. */
  readonly callbackUrl: string
  /** The org's stored config when its provider row is this provider, else null (before setup). */
  readonly config: JsonObject | null
}

/**
 * A warning about a stored config (an insecure algorithm the admin allowed), returned in the
 * setup outcome.
 * @group Providers
 */
export interface ProviderWarning {
  /** Stable machine code, e.g. `SAML_SHA1_ALLOWED`. */
  readonly code: string
  /** Human text for the admin. */
  readonly message: string
}

/**
 * Unsolicited (IdP-initiated) responses a provider can accept, when its stored config allows.
 * @group Providers
 */
export interface UnsolicitedEntry {
  /** Id of the login step that receives an unsolicited response (the steps before it are skipped). */
  readonly stepId: string
  /** Whether this stored config accepts unsolicited responses (off unless the admin enabled it). */
  enabled(config: JsonObject): boolean
}

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
  /**
   * How the IdP comes back: a redirect to `urls.pipelineCallback` (`GET`, OAuth and OIDC) or a
   * cross-site form post (`POST`, the SAML assertion consumer service) to `urls.postCallback`
   * when the host has one (else `pipelineCallback`). A cross-site POST carries no `SameSite=Lax`
   * cookies, so the HTTP handler re-posts it same-origin (docs/http.md).
   * @defaultValue `'GET'`
   */
  readonly callbackMethod?: 'GET' | 'POST' | undefined
  /**
   * Longest single query or form value the steps accept (a SAML ACS post carries a base64
   * `SAMLResponse`). Longer values are refused with `INPUT_INVALID` before any step runs.
   * @defaultValue 8192 (at most 1 MiB)
   */
  readonly maxFieldLength?: number | undefined
  /** Accepts unsolicited (IdP-initiated) responses through `beginUnsolicitedLogin`. */
  readonly unsolicited?: UnsolicitedEntry | undefined
  /** The document the IdP's administrator needs from us (SAML SP metadata); public, no secrets. */
  serviceMetadata?(input: ServiceMetadataInput): ServiceMetadata | AuthError | Promise<ServiceMetadata | AuthError>
  /** Warnings a freshly set up config deserves; returned as `providerWarnings` of the setup outcome. */
  setupWarnings?(config: JsonObject): readonly ProviderWarning[]
  /**
   * The trust policy for a stored config: what this provider's `email_verified` is worth, for
   * which domains, and whether its address may match an invite. The engine calls it for every
   * login and on the config setup is about to store, and validates what it returns: a policy
   * that does not parse fails the login with `PROVIDER_NOT_CONFIGURED`, and the setup with
   * `INPUT_INVALID` before anything is stored, `details.field` naming the field. Returning an
   * `AuthError` fails the call with it. Omitted: `DEFAULT_TRUST_POLICY`.
   */
  trustPolicy?(config: JsonObject): TrustPolicy | AuthError
}
