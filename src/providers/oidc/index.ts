/**
 * OpenID Connect provider on oauth4webapi (web-standard APIs only: fetch, WebCrypto, URL).
 *
 * Login: authorization code flow, `state` and `nonce` bound to the pipeline state, PKCE (S256)
 * whenever discovery advertises it, ID token validated (signature against the provider's JWKS,
 * algorithm, issuer, audience, expiry, nonce), userinfo when the ID token lacks a needed claim.
 * Setup: the admin gives issuer, client id, secret and (optionally) the client authentication;
 * discovery is validated before the admin is sent to log in, and the setup's own code exchange
 * finds the client authentication that works. Every URL passes the address policy.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { type AuthError, authError } from '../../errors.js'
import type { IdentityInput, JsonObject, JsonValue } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'
import type { AuthIdentity } from '../../model/records.js'
import type { TrustPolicy } from '../../model/trust.js'
import { type AddressPolicy, checkUrlSyntax, describeUrlRefusal } from '../../net/policy.js'
import { pkceChallenge, timingSafeEqual } from '../../state/crypto.js'
import type { Provider, ProviderStep, RefreshResult, StepContext, StepResult } from '../types.js'
import { mapClaims, needsUserinfo, type OidcUserinfoMode, type UserinfoStatus } from './claims.js'
import { attemptOrder, clientAuthFor, type FailedAttempt, isClientAuthFailure, isInvalidGrant } from './client-auth.js'
import {
  boundedString,
  configJson,
  isClientAuthMethod,
  MAX_ISSUER_LENGTH,
  MAX_SECRET_LENGTH,
  type OidcClientAuthMethod,
  type OidcConfig,
  parseOidcConfig,
} from './config.js'
import { createDiscovery, type Discovered, IssuerMismatch } from './discovery.js'
import { authorizationErrorCause, CheckFailed, endpointFailure, mapOidcError, providerText } from './errors.js'
import { type FormState, type FormValues, formStateJson, type OidcSetupFormError, readFormState, renderForm, renderNotice } from './form.js'
import { createOutbound, type OidcFetch } from './http.js'
import { verifiedRs256 } from './jws.js'
import { ENTRA_TENANT_TEMPLATE, type OidcPreset, resolvePreset } from './presets.js'

export type { OidcUserinfoMode } from './claims.js'
export { OIDC_CLIENT_AUTH_METHODS, type OidcClientAuthMethod, type OidcConfig, parseOidcConfig } from './config.js'
export { ID_TOKEN_ALGORITHMS } from './discovery.js'
export { mapOidcError } from './errors.js'
export {
  OIDC_SETUP_VIEW,
  type OidcSetupFieldName,
  type OidcSetupFormError,
  type OidcSetupFormField,
  type OidcSetupFormModel,
  type OidcSetupSuggestion,
} from './form.js'
export type { OidcFetch } from './http.js'
export type { OidcPreset, OidcPresetName } from './presets.js'

/** Options of {@link oidcProvider}. @group Providers */
export interface OidcProviderOptions {
  /** Provider key stored on the auth provider row. @defaultValue the preset's name, else `'oidc'` */
  readonly key?: string | undefined
  /** Display name. @defaultValue the preset's (`'Okta'`, `'Microsoft Entra ID'` ...), else `'OpenID Connect'` */
  readonly displayName?: string | undefined
  /**
   * An identity provider preset: its issuer rule, subject key, claim checks, scopes and default
   * trust policy (see {@link OidcPreset}). Validated at once: a wrong tenant, issuer or domain
   * throws `SsoflowError` (`CONFIG_INVALID`) naming the field.
   */
  readonly preset?: OidcPreset | undefined
  /**
   * The trust policy (what the IdP's `email_verified` is worth, for which domains, whether it
   * may match an invite). Validated at once (unknown, conflicting or unsafe fields throw
   * `SsoflowError` `CONFIG_INVALID` naming the field) and stored with the config at setup; a
   * login uses the policy stored with its config.
   * @defaultValue the preset's; without a preset `{ name: 'oidc', emailVerified: 'claim', inviteMatch: true }`
   */
  readonly trust?: TrustPolicy | undefined
  /** Timeout of each request to the IdP (headers and body). @defaultValue 10000 */
  readonly fetchTimeoutMs?: number | undefined
  /** Largest IdP response body accepted, in bytes (discovery, token, JWKS, userinfo). @defaultValue 262144 */
  readonly maxResponseBytes?: number | undefined
  /**
   * Replaces the fetch of every IdP request (tests, proxies, instrumentation). The address policy
   * still checks every URL (resolving names through `addressPolicy.resolver`) before it is called.
   */
  readonly customFetch?: OidcFetch | undefined
  /** Scopes requested. `openid` is always included. @defaultValue the preset's; else `['openid', 'email', 'profile']` */
  readonly scopes?: readonly string[] | undefined
  /**
   * When to call the userinfo endpoint: `'auto'` (or omitted) whenever the ID token lacks `email`
   * or a boolean `email_verified`; `true` always; `false` never.
   * @defaultValue `'auto'`; `false` with the `entra` preset (the email comes from the ID token's optional claim)
   */
  readonly userinfo?: boolean | 'auto' | undefined
  /** How long discovered metadata is reused, in ms. @defaultValue 600000 */
  readonly discoveryCacheMs?: number | undefined
  /**
   * Which outbound URLs are allowed (threat 60): https only, and no loopback, private,
   * link-local, CGNAT, multicast, documentation, reserved or cloud-metadata address, as a literal
   * or (with a `resolver`) after resolution. Without a resolver only IP literals are checked: on
   * Node pass `nodeAddressPolicy()` from `ssoflow/node`.
   * @defaultValue `{}` (literal checks only)
   */
  readonly addressPolicy?: AddressPolicy | undefined
  /** Most keys accepted in one JWKS. @defaultValue 100 */
  readonly jwksMaxKeys?: number | undefined
  /**
   * Shortest time between two fetches of one JWKS (an unknown `kid` inside it fails). oauth4webapi
   * refetches on an unknown `kid` only when its copy is at least 60 s old, so values under 60000
   * act as 60000. @defaultValue 60000
   */
  readonly jwksMinRefetchMs?: number | undefined
  /**
   * Refuse providers whose discovery does not advertise PKCE S256. By default such a provider is
   * used without PKCE (RFC 8414: an omitted `code_challenge_methods_supported` means PKCE is not
   * supported), protected by the nonce, which is always sent and checked.
   * @defaultValue false
   */
  readonly requirePkce?: boolean | undefined
  /**
   * DANGER: accept plain-http URLs and loopback addresses for loopback hosts (127.0.0.0/8, ::1,
   * localhost), for every request. For tests against a local IdP only; any other http URL is
   * still refused, including an endpoint that a loopback issuer's discovery names elsewhere.
   * @defaultValue false
   */
  readonly dangerouslyAllowInsecureLoopbackHttp?: boolean | undefined
}

/** Step ids (part of the pipeline fingerprint). @group Providers */
export const OIDC_STEP_IDS = { configure: 'oidc.configure', authorize: 'oidc.authorize', callback: 'oidc.callback' } as const

const MAX_TOKEN_LENGTH = 16 * 1024

/** Setup progress bound in pipeline data (`oidc_setup`). */
interface SetupProgress {
  readonly choice: OidcClientAuthMethod | 'auto'
  /** Methods still to try, the config's current one first. */
  readonly methods: readonly OidcClientAuthMethod[]
  readonly tried: readonly FailedAttempt[]
  readonly roundTrip: boolean
}

function readProgress(value: JsonValue | undefined): SetupProgress | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const v = value as Record<string, unknown>
  const choice = v.choice === 'auto' || isClientAuthMethod(v.choice) ? v.choice : null
  const methods = Array.isArray(v.methods) ? v.methods.filter(isClientAuthMethod) : []
  const tried = Array.isArray(v.tried)
    ? v.tried
        .filter((t): t is Record<string, unknown> => typeof t === 'object' && t !== null)
        .flatMap((t) =>
          isClientAuthMethod(t.method) && typeof t.status === 'number'
            ? [{ method: t.method, status: t.status, error: typeof t.error === 'string' ? t.error : null }]
            : [],
        )
    : []
  if (choice === null || methods.length === 0) return null
  return { choice, methods, tried, roundTrip: v.roundTrip === true }
}

function progressJson(p: SetupProgress): JsonObject {
  return { choice: p.choice, methods: [...p.methods], tried: p.tried.map((t) => ({ ...t })), roundTrip: p.roundTrip }
}

function describeAttempts(tried: readonly FailedAttempt[]): string {
  return tried.map((t) => `${t.method} got HTTP ${t.status}${t.error ? ` ${t.error}` : ''}`).join(', ')
}

/** The message an admin sees for a failure before the IdP login (discovery, URL checks). */
function discoveryMessage(error: AuthError, issuer: string): string {
  const d = (error.details ?? {}) as Record<string, unknown>
  const field = typeof d.field === 'string' ? d.field : 'issuer'
  switch (error.code) {
    case 'URL_NOT_ALLOWED':
      return field === 'issuer' || field === 'request'
        ? describeUrlRefusal(error)
        : `The discovery document's ${field} is refused: ${describeUrlRefusal(error)}`
    case 'PROVIDER_UNAVAILABLE':
      return d.reason === 'dns'
        ? `The issuer's host name could not be resolved. Check the issuer URL.`
        : `The provider could not be reached at ${issuer} (${typeof d.status === 'number' ? `HTTP ${d.status}` : String(d.reason ?? 'network')}). Check the issuer URL, or try again later.`
    case 'PROVIDER_RESPONSE_INVALID':
      if (d.check === 'discovery-document') return `The provider's discovery document has no usable ${String(d.attribute)}.`
      if (d.check === 'id-token-alg') {
        const advertised = Array.isArray(d.advertised) ? d.advertised.join(', ') : 'none'
        return `The provider signs ID tokens only with ${advertised}. ssoflow verifies ID tokens against the provider's public keys: configure the client to sign ID tokens with RS256 (or ES256).`
      }
      return `The provider's discovery document at ${issuer}/.well-known/openid-configuration is not valid (${String(d.reason ?? 'invalid')}).`
    default:
      return `Discovery failed at ${issuer}/.well-known/openid-configuration${typeof d.status === 'number' ? ` (HTTP ${d.status})` : ''}.`
  }
}

/**
 * Creates an OpenID Connect provider.
 *
 * @example
 * ```ts
 * import { oidcProvider } from 'ssoflow/oidc'
 * import { nodeAddressPolicy } from 'ssoflow/node'
 * const providers = { oidc: oidcProvider({ fetchTimeoutMs: 5000, addressPolicy: nodeAddressPolicy() }) }
 * ```
 * @group Providers
 */
export function oidcProvider(options: OidcProviderOptions = {}): Provider {
  const insecureLoopback = options.dangerouslyAllowInsecureLoopbackHttp === true
  const preset = resolvePreset(options.preset, options.trust, { scopes: options.scopes, allowLoopbackHttp: insecureLoopback })
  const key = options.key ?? preset.name
  const timeoutMs = options.fetchTimeoutMs ?? 10_000
  const maxBytes = options.maxResponseBytes ?? 256 * 1024
  const cacheMs = options.discoveryCacheMs ?? 600_000
  const scopes = preset.scopes.join(' ')
  const userinfoMode: OidcUserinfoMode =
    options.userinfo === true
      ? 'always'
      : options.userinfo === false || (options.userinfo === undefined && preset.name === 'entra')
        ? 'never'
        : 'auto'
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError('fetchTimeoutMs must be a positive integer')
  const jwksMaxKeys = options.jwksMaxKeys ?? 100
  const jwksMinRefetchMs = options.jwksMinRefetchMs ?? 60_000
  if (!Number.isInteger(jwksMaxKeys) || jwksMaxKeys <= 0) throw new RangeError('jwksMaxKeys must be a positive integer')
  if (!Number.isFinite(jwksMinRefetchMs) || jwksMinRefetchMs < 0) throw new RangeError('jwksMinRefetchMs must be a non-negative number')
  const policy: AddressPolicy = {
    ...options.addressPolicy,
    dangerouslyAllowLoopback: insecureLoopback || options.addressPolicy?.dangerouslyAllowLoopback === true,
  }
  const outbound = createOutbound({
    policy,
    customFetch: options.customFetch,
    maxResponseBytes: maxBytes,
    timeoutMs,
    jwksMaxKeys,
    jwksMinRefetchMs,
  })

  // oauth4webapi checks the scheme itself; under the loopback opt-in it is told to allow http,
  // and the address policy in `outbound.fetch` (run for every request) allows http only for
  // loopback hosts. The timeout of each request is enforced there too (`fetchTimeoutMs`).
  const http = (): oauth.HttpRequestOptions<'GET' | 'POST', unknown> => ({
    [oauth.customFetch]: outbound.fetch as never,
    ...(insecureLoopback ? { [oauth.allowInsecureRequests]: true } : {}),
  })
  const { discover } = createDiscovery({ policy, http: () => http() as oauth.DiscoveryRequestOptions, cacheMs })

  /** JWKS caches for oauth4webapi, one per JWKS URI (so per issuer), at most 100. */
  const jwksCaches = new Map<string, oauth.JWKSCacheInput>()
  const jwksCacheFor = (uri: string): oauth.JWKSCacheInput => {
    let cache = jwksCaches.get(uri)
    if (!cache) {
      if (jwksCaches.size >= 100) jwksCaches.delete(jwksCaches.keys().next().value as string)
      cache = {}
      jwksCaches.set(uri, cache)
    }
    return cache
  }

  /**
   * Verifies the signature of the ID token of a processed token response against the JWKS:
   * synchronously with `node:crypto` when the token is RS256 and oauth4webapi's cached key set
   * names its key ({@link verifiedRs256}), otherwise (and whenever that check does not succeed)
   * with oauth4webapi.
   */
  async function verifySignature(as: oauth.AuthorizationServer, response: Response, idToken: unknown): Promise<void> {
    if (typeof as.jwks_uri === 'string' && verifiedRs256(idToken, jwksCacheFor(as.jwks_uri), Date.now())) return
    try {
      await oauth.validateApplicationLevelSignature(as, response, {
        ...(http() as oauth.ValidateSignatureOptions),
        [oauth.customFetch]: outbound.jwksFetch as never,
        [oauth.jwksCache]: jwksCacheFor(as.jwks_uri as string),
      })
    } catch (e) {
      throw new CheckFailed('id-token-signature', e)
    }
  }

  /** Checks an issuer typed by an admin: a URL without query, fragment or user info. */
  function issuerUrl(value: string): URL | null {
    if (value.length === 0 || value.length > MAX_ISSUER_LENGTH) return null
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return null
    }
    if (url.search || url.hash || url.username || url.password) return null
    return url
  }

  const clientOf = (config: OidcConfig): oauth.Client => ({ client_id: config.clientId })
  const issuerFromToken = (as: oauth.AuthorizationServer, res: Response) => issuerFromTokenFor(preset.templatedIssuer, as, res)

  /** A stored config this provider must not use: set up under another preset, or an issuer its rule refuses. */
  function configRefusal(raw: JsonObject, config: OidcConfig): AuthError | null {
    if (raw.preset !== undefined && raw.preset !== preset.name) {
      return authError('PROVIDER_NOT_CONFIGURED', { details: { field: 'preset', reason: 'stored-under-another-preset' } })
    }
    const problem = preset.issuerProblem(config.issuer)
    return problem ? authError('PROVIDER_NOT_CONFIGURED', { details: { field: 'issuer', reason: problem } }) : null
  }

  /** The config to use: the stored one (login) or the one bound by the setup form. */
  function configFor(ctx: StepContext): OidcConfig | null {
    return parseOidcConfig(ctx.flow === 'setup' ? ctx.data.oidc_config : ctx.config)
  }

  /** Sends the admin back to the setup form with errors (and suggestions); clears the pending login. */
  function backToForm(
    ctx: StepContext,
    config: OidcConfig | null,
    errors: OidcSetupFormError[],
    extra: Partial<FormState> = {},
  ): StepResult {
    const progress = readProgress(ctx.data.oidc_setup)
    const state: FormState = {
      values: {
        issuer: config?.issuer ?? '',
        client_id: config?.clientId ?? '',
        client_auth: progress?.choice ?? 'auto',
      },
      errors,
      suggestions: [],
      ...extra,
    }
    return { type: 'back', step: OIDC_STEP_IDS.configure, bind: { oidc: null, oidc_setup: null, oidc_form: formStateJson(state) } }
  }

  const configure: ProviderStep = {
    id: OIDC_STEP_IDS.configure,
    async handle(ctx): Promise<StepResult> {
      const previous = parseOidcConfig(ctx.data.oidc_config)
      const keepSecret = previous !== null
      if (ctx.request.method !== 'POST') {
        return renderForm(ctx.callbackUrl, readFormState(ctx.data.oidc_form) ?? {}, { keepSecret, bind: { oidc_form: null } })
      }
      const form = ctx.request.form
      const issuer = (form.issuer ?? '').trim() || (preset.fixedIssuer ?? '')
      const clientId = (form.client_id ?? '').trim()
      const typedSecret = form.client_secret ?? ''
      const rawChoice = form.client_auth ?? 'auto'
      const choice: OidcClientAuthMethod | 'auto' | null =
        rawChoice === '' || rawChoice === 'auto' ? 'auto' : isClientAuthMethod(rawChoice) ? rawChoice : null
      const values: FormValues = {
        issuer: issuer.slice(0, MAX_ISSUER_LENGTH),
        client_id: clientId.slice(0, LIMITS.id),
        client_auth: choice ?? 'auto',
      }
      const rerender = (errors: OidcSetupFormError[], extra: Partial<FormState> = {}): StepResult =>
        renderForm(ctx.callbackUrl, { values, errors, suggestions: [], ...extra }, { keepSecret })

      const errors: OidcSetupFormError[] = []
      const url = issuerUrl(issuer)
      if (!url) {
        errors.push({ field: 'issuer', code: 'INPUT_INVALID', message: 'The issuer must be an https URL without query or fragment.' })
      } else {
        const allowed = checkUrlSyntax(url, policy, 'issuer')
        const problem = preset.issuerProblem(issuer)
        if (allowed.isErr()) errors.push({ field: 'issuer', code: allowed.error.code, message: describeUrlRefusal(allowed.error) })
        else if (problem) errors.push({ field: 'issuer', code: 'INPUT_INVALID', message: `The ${preset.displayName} issuer ${problem}.` })
      }
      if (!boundedString(clientId, LIMITS.id)) {
        errors.push({ field: 'client_id', code: 'INPUT_INVALID', message: 'The client ID is required (at most 255 characters).' })
      }
      // An admin sent back to the form may leave the secret empty to keep the one bound before.
      const clientSecret = typedSecret === '' && previous ? previous.clientSecret : typedSecret
      if (!boundedString(clientSecret, MAX_SECRET_LENGTH)) {
        errors.push({ field: 'client_secret', code: 'INPUT_INVALID', message: 'The client secret is required (at most 1024 characters).' })
      }
      if (choice === null) {
        errors.push({
          field: 'client_auth',
          code: 'INPUT_INVALID',
          message: 'Choose client_secret_basic, client_secret_post or automatic.',
        })
      }
      if (errors.length > 0 || choice === null) return rerender(errors)

      let discovered: Discovered
      const advertised = preset.advertisedIssuer(issuer)
      try {
        discovered = await discover(issuer, advertised)
      } catch (e) {
        if (e instanceof IssuerMismatch) {
          const message = 'The discovery document at this address names a different issuer; the issuer must match it exactly.'
          if (e.advertised === null) return rerender([{ field: 'issuer', code: 'PROVIDER_RESPONSE_INVALID', message }])
          return renderForm(
            ctx.callbackUrl,
            {
              values: { ...values, issuer: e.advertised },
              errors: [{ field: 'issuer', code: 'PROVIDER_RESPONSE_INVALID', message }],
              suggestions: [
                { field: 'issuer', value: e.advertised, message: `The provider calls itself ${e.advertised}: use exactly that.` },
              ],
            },
            { keepSecret },
          )
        }
        const mapped = mapOidcError(e, 'discovery')
        return rerender([{ field: 'issuer', code: mapped.code, message: discoveryMessage(mapped, issuer) }])
      }
      if (options.requirePkce === true && !discovered.pkce) {
        return rerender([
          {
            field: 'issuer',
            code: 'PROVIDER_RESPONSE_INVALID',
            message:
              'This provider does not advertise PKCE with S256 (code_challenge_methods_supported), and this application requires it. Enable PKCE at the provider.',
          },
        ])
      }
      const methods = attemptOrder(choice, discovered.clientAuthMethods)
      // A templated issuer (multi-tenant Entra) is stored as the address its document lives at.
      const storedIssuer = advertised === issuer ? discovered.as.issuer : issuer
      const config: OidcConfig = { issuer: storedIssuer, clientId, clientSecret, clientAuth: methods[0] as OidcClientAuthMethod }
      const progress: SetupProgress = { choice, methods, tried: [], roundTrip: false }
      return {
        type: 'next',
        bind: { oidc_config: configJson(config), oidc_setup: progressJson(progress), oidc_form: null, oidc_notice: null },
      }
    },
  }

  const authorize: ProviderStep = {
    id: OIDC_STEP_IDS.authorize,
    async handle(ctx): Promise<StepResult> {
      const q = ctx.request.method === 'POST' ? ctx.request.form : ctx.request.query
      // A callback landing here (Sentry's OAuth2 login view): let the callback step judge it.
      if (q.code !== undefined || q.error !== undefined) return { type: 'next' }
      const config = configFor(ctx)
      if (!config) return { type: 'error', error: authError('PROVIDER_NOT_CONFIGURED', { details: { reason: 'oidc-config' } }) }
      if (ctx.flow === 'setup' && typeof ctx.data.oidc_notice === 'string' && ctx.request.method === 'GET') {
        return renderNotice(ctx.callbackUrl, ctx.data.oidc_notice, { oidc_notice: null })
      }
      if (ctx.flow === 'login') {
        const refused = configRefusal(ctx.config, config)
        if (refused) return { type: 'error', error: refused }
      }
      let discovered: Discovered
      try {
        discovered = await discover(config.issuer, preset.advertisedIssuer(config.issuer))
      } catch (e) {
        const mapped = mapOidcError(e, 'discovery')
        if (ctx.flow === 'setup') {
          return backToForm(ctx, config, [{ field: 'issuer', code: mapped.code, message: discoveryMessage(mapped, config.issuer) }])
        }
        return { type: 'error', error: mapped }
      }
      const as = discovered.as
      const state = ctx.random()
      const nonce = ctx.random()
      const url = new URL(as.authorization_endpoint as string)
      url.searchParams.set('client_id', config.clientId)
      url.searchParams.set('redirect_uri', ctx.callbackUrl)
      url.searchParams.set('response_type', 'code')
      url.searchParams.set('scope', scopes)
      url.searchParams.set('state', state)
      url.searchParams.set('nonce', nonce)
      let verifier: string | null = null
      if (discovered.pkce) {
        verifier = ctx.random()
        url.searchParams.set('code_challenge', pkceChallenge(verifier))
        url.searchParams.set('code_challenge_method', 'S256')
      }
      for (const [name, value] of Object.entries(preset.authorizeParams)) url.searchParams.set(name, value)
      if (ctx.loginHint) url.searchParams.set('login_hint', ctx.loginHint)
      return {
        type: 'redirect',
        url: url.href,
        bind: { oidc: { state, nonce, verifier, redirectUri: ctx.callbackUrl, issuer: as.issuer } },
      }
    },
  }

  const callback: ProviderStep = {
    id: OIDC_STEP_IDS.callback,
    async handle(ctx): Promise<StepResult> {
      const bound = ctx.data.oidc
      const pending =
        typeof bound === 'object' && bound !== null && !Array.isArray(bound)
          ? (bound as { state?: unknown; nonce?: unknown; verifier?: unknown; redirectUri?: unknown })
          : null
      if (
        !pending ||
        typeof pending.state !== 'string' ||
        typeof pending.nonce !== 'string' ||
        (typeof pending.verifier !== 'string' && pending.verifier !== null) ||
        typeof pending.redirectUri !== 'string'
      ) {
        return { type: 'error', error: authError('STATE_INVALID', { details: { reason: 'no-pending-authorization' } }) }
      }
      const verifier = pending.verifier
      const redirectUri = pending.redirectUri
      const q = ctx.request.method === 'POST' ? ctx.request.form : ctx.request.query
      const returned = q.state
      if (typeof returned !== 'string' || !timingSafeEqual(returned, pending.state)) {
        return { type: 'error', error: authError('STATE_INVALID', { details: { reason: 'oauth-state-mismatch' } }) }
      }
      const config = configFor(ctx)
      if (!config) return { type: 'error', error: authError('PROVIDER_NOT_CONFIGURED', { details: { reason: 'oidc-config' } }) }
      const setup = ctx.flow === 'setup'
      const progress = setup ? readProgress(ctx.data.oidc_setup) : null
      let stage = 'discovery'
      try {
        const { as: discoveredAs } = await discover(config.issuer, preset.advertisedIssuer(config.issuer))
        const templated = discoveredAs.issuer.includes(ENTRA_TENANT_TEMPLATE)
        // A templated issuer: the response's `iss` (RFC 9207), when sent, must be the template
        // filled with one tenant; the ID token must then come from that same tenant.
        let as = discoveredAs
        if (templated && typeof q.iss === 'string') {
          const [prefix = '', suffix = ''] = discoveredAs.issuer.split(ENTRA_TENANT_TEMPLATE)
          const tid = q.iss.startsWith(prefix) && q.iss.endsWith(suffix) ? q.iss.slice(prefix.length, q.iss.length - suffix.length) : ''
          const filled = preset.templatedIssuer(discoveredAs.issuer, { tid })
          if (filled === q.iss) as = { ...discoveredAs, issuer: filled }
        }
        const client = clientOf(config)
        stage = 'callback'
        let params: URLSearchParams
        try {
          params = oauth.validateAuthResponse(as, client, new URLSearchParams(q), pending.state)
        } catch (e) {
          if (!(e instanceof oauth.AuthorizationResponseError)) throw e
          const mapped = mapOidcError(e, stage)
          const idpError = (mapped.details?.idpError as string | null | undefined) ?? null
          const description = providerText(e.error_description)
          const cause = authorizationErrorCause(idpError, description, { pkce: verifier !== null, redirectUri, scopes })
          if (!setup) {
            return {
              type: 'error',
              error: authError(mapped.code, { details: { ...mapped.details, likelyCause: cause.code }, cause: e }),
            }
          }
          const said = `${idpError ?? 'an error'}${description ? `: "${description}"` : ''}`
          return backToForm(ctx, config, [
            { field: null, code: 'PROVIDER_ERROR', message: `The provider answered the sign-in with ${said}. ${cause.text}` },
          ])
        }

        stage = 'token'
        const methods = progress ? progress.methods : [config.clientAuth]
        const tried: FailedAttempt[] = [...(progress?.tried ?? [])]
        let used: OidcClientAuthMethod | null = null
        let refusedHere = 0
        let tokens: oauth.TokenEndpointResponse | null = null
        let response: Response | null = null
        for (const [i, method] of methods.entries()) {
          try {
            const res = await oauth.authorizationCodeGrantRequest(
              as,
              client,
              clientAuthFor(method, config.clientSecret),
              params,
              redirectUri,
              verifier ?? oauth.nopkce,
              http() as oauth.TokenEndpointRequestOptions,
            )
            if (templated && as === discoveredAs) as = await issuerFromToken(discoveredAs, res)
            tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: pending.nonce, requireIdToken: true })
            response = res
            used = method
            break
          } catch (e) {
            const refused = isClientAuthFailure(e)
            if (refused) {
              tried.push({ method, status: refused.status, error: refused.error })
              refusedHere += 1
              if (i < methods.length - 1) continue
              if (!setup) {
                const mapped = mapOidcError(e, stage)
                return { type: 'error', error: authError(mapped.code, { details: { ...mapped.details, clientAuth: method }, cause: e }) }
              }
              return backToForm(ctx, config, [
                {
                  field: progress?.choice === 'auto' ? 'client_secret' : 'client_auth',
                  code: 'PROVIDER_ERROR',
                  message:
                    `The provider refused the client credentials: ${describeAttempts(tried)}. Check the client ID and secret. ` +
                    'If they are right and contain characters other than letters, digits and "-._*", the provider may compare HTTP Basic ' +
                    'credentials without decoding them: allow client_secret_post for this client, or use a secret without such characters.' +
                    (progress?.choice === 'auto' ? '' : ' You can also choose the other client authentication method, or automatic.'),
                },
              ])
            }
            if (setup && progress && isInvalidGrant(e) && refusedHere > 0 && !progress.roundTrip) {
              // The failed attempt spent the code: go round the provider once more with this method.
              const next: SetupProgress = { ...progress, methods: [method], tried, roundTrip: true }
              return {
                type: 'back',
                step: OIDC_STEP_IDS.authorize,
                bind: {
                  oidc: null,
                  oidc_config: configJson({ ...config, clientAuth: method }),
                  oidc_setup: progressJson(next),
                  oidc_notice:
                    `The provider refused ${describeAttempts(tried)}, and then refused the sign-in code that attempt had spent. ` +
                    `ssoflow will use ${method} from now on: continue to sign in at the provider once more.`,
                },
              }
            }
            const failure = endpointFailure(e)
            if (setup && failure && failure.status < 500) {
              const pkceHint =
                failure.error === 'invalid_grant' && verifier !== null
                  ? ' If the provider has PKCE switched off for this client, switch it on (S256) or stop advertising it.'
                  : ''
              return backToForm(ctx, config, [
                {
                  field: null,
                  code: 'PROVIDER_ERROR',
                  message:
                    `The provider's token endpoint answered HTTP ${failure.status} ${failure.error ?? ''}` +
                    `${failure.description ? `: "${failure.description}"` : ''} (client authentication ${method}).${pkceHint}`,
                },
              ])
            }
            throw e
          }
        }
        if (!tokens || !response || !used) throw new oauth.UnsupportedOperationError('no token response')
        await verifySignature(as, response, tokens.id_token)
        const claims = oauth.getValidatedIdTokenClaims(tokens)
        if (!claims) throw new oauth.UnsupportedOperationError('no ID token')
        stage = 'claims'
        const sub = boundedString(claims.sub, LIMITS.id)
        if (!sub) throw new CheckFailed('claims', new oauth.UnsupportedOperationError('sub claim missing or too long'), { claim: 'sub' })
        // The preset's checks of who may sign in (Entra's tenant, Google's hosted domain).
        const refusal = preset.checkClaims(claims, config.issuer)
        if (refusal) {
          const error = authError('IDENTITY_NOT_ALLOWED', {
            details: { preset: preset.name, claim: refusal.claim, reason: refusal.reason },
          })
          if (!setup) return { type: 'error', error }
          return backToForm(ctx, config, [
            {
              field: null,
              code: 'IDENTITY_NOT_ALLOWED',
              message: `The account you signed in with is refused by the ${preset.displayName} checks (claim ${refusal.claim}: ${refusal.reason}). Sign in with an account of your organization.`,
            },
          ])
        }
        const subject = preset.subject(claims)
        if (typeof subject !== 'string') {
          throw new CheckFailed('claims', new oauth.UnsupportedOperationError(`${subject.claim} claim missing`), { claim: subject.claim })
        }

        let info: Record<string, unknown> | null = null
        let status: UserinfoStatus = userinfoMode === 'never' ? 'disabled' : 'not-needed'
        if (needsUserinfo(userinfoMode, claims)) {
          if (typeof as.userinfo_endpoint === 'string' && typeof tokens.access_token === 'string') {
            stage = 'userinfo'
            const ures = await oauth.userInfoRequest(as, client, tokens.access_token, http() as oauth.UserInfoRequestOptions)
            try {
              info = { ...(await oauth.processUserInfoResponse(as, client, claims.sub, ures)) }
            } catch (e) {
              if (e instanceof oauth.OperationProcessingError && e.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
                throw new CheckFailed('userinfo-sub', e, { claim: 'sub', source: 'userinfo' })
              }
              throw e
            }
            status = 'fetched'
          } else {
            status = 'no-endpoint'
          }
        }
        stage = 'claims'
        const mapped = mapClaims(claims, info, status)
        if ('kind' in mapped) {
          if (!setup || mapped.code !== 'IDENTITY_INVALID') return { type: 'error', error: mapped }
          const arrived = (mapped.details?.idTokenClaims as string[] | null) ?? []
          const fromUserinfo = (mapped.details?.userinfoClaims as string[] | null) ?? null
          return backToForm(ctx, config, [
            {
              field: null,
              code: 'IDENTITY_INVALID',
              message:
                `The provider did not send the email claim. The ID token had: ${arrived.join(', ') || 'nothing'}; ` +
                `userinfo ${fromUserinfo ? `had: ${fromUserinfo.join(', ') || 'nothing'}` : status === 'no-endpoint' ? 'is not offered by the provider' : 'was not called'}. ` +
                `Allow the "email" scope and claim for this client at the provider.`,
            },
          ])
        }
        const tokenData = tokenFields(tokens, ctx.now.getTime())
        if (!tokenData) throw new oauth.UnsupportedOperationError('token too long')
        return {
          type: 'next',
          bind: {
            // The one-time values are spent: drop them so a replay cannot reuse them.
            oidc: null,
            oidc_result: {
              id: subject,
              sub,
              email: mapped.email,
              email_verified: mapped.emailVerified,
              name: mapped.name,
              issuer: as.issuer,
              tokens: tokenData,
            },
            // Setup: remember the client authentication that worked; logins and refresh use it.
            ...(setup ? { oidc_config: configJson({ ...config, clientAuth: used }), oidc_setup: null } : {}),
          },
        }
      } catch (e) {
        return { type: 'error', error: mapOidcError(e, stage) }
      }
    },
  }

  const loginSteps: readonly ProviderStep[] = [authorize, callback]
  const setupSteps: readonly ProviderStep[] = [configure, authorize, callback]

  return {
    key,
    displayName: options.displayName ?? preset.displayName,
    loginSteps: () => loginSteps,
    setupSteps: () => setupSteps,
    buildIdentity(data): IdentityInput | AuthError {
      const r = data.oidc_result
      if (typeof r !== 'object' || r === null || Array.isArray(r))
        return authError('IDENTITY_INVALID', { details: { reason: 'no-oidc-result' } })
      const result = r as Record<string, JsonValue>
      const sub = typeof result.sub === 'string' ? result.sub : ''
      const tokens = typeof result.tokens === 'object' && result.tokens !== null && !Array.isArray(result.tokens) ? result.tokens : {}
      return {
        // The preset's subject key (Entra: tid/oid), with `sub` as the legacy id: identities
        // stored under `sub` (before presets, or moved from another library) are found by it and
        // re-keyed on their next login. `sub` alone for results bound before presets.
        id: typeof result.id === 'string' && result.id !== sub ? { id: result.id, legacyId: sub } : sub,
        email: typeof result.email === 'string' ? result.email : '',
        emailVerified: result.email_verified === true,
        name: typeof result.name === 'string' ? result.name : null,
        data: { sub, ...tokens },
      }
    },
    buildConfig(data): JsonObject | AuthError {
      const config = parseOidcConfig(data.oidc_config)
      if (!config) return authError('INPUT_INVALID', { details: { reason: 'oidc-config' } })
      // The preset and its trust policy are stored with the config (checked again by the engine).
      return { ...configJson(config), preset: preset.name, trust: trustJson(preset.trust) }
    },
    // The policy stored with the config (the engine validates it); the preset's for a config
    // stored before policies were.
    trustPolicy(config): TrustPolicy {
      return config.trust === undefined ? preset.trust : (config.trust as unknown as TrustPolicy)
    },
    redactConfig(config): JsonObject {
      const { clientSecret: _secret, ...rest } = config
      return rest
    },
    updateIdentity(next, current): JsonObject {
      if (next.refresh_token === undefined && typeof current.refresh_token === 'string') {
        return { ...next, refresh_token: current.refresh_token }
      }
      return next
    },
    async refreshIdentity(identity: AuthIdentity, rawConfig: JsonObject): Promise<RefreshResult> {
      const refreshToken = identity.data.refresh_token
      if (typeof refreshToken !== 'string' || refreshToken.length === 0) return { kind: 'invalid', reason: 'no-refresh-token' }
      const config = parseOidcConfig(rawConfig)
      if (!config) return { kind: 'error', reason: 'config-invalid' }
      try {
        const { as } = await discover(config.issuer)
        const client = clientOf(config)
        const res = await oauth.refreshTokenGrantRequest(
          as,
          client,
          clientAuthFor(config.clientAuth, config.clientSecret),
          refreshToken,
          http() as oauth.TokenEndpointRequestOptions,
        )
        const tokens = await oauth.processRefreshTokenResponse(as, client, res)
        if (tokens.id_token !== undefined) {
          // OIDC Core 12.2: a refreshed ID token is verified like the first and names the same subject.
          await verifySignature(as, res, tokens.id_token)
          const claims = oauth.getValidatedIdTokenClaims(tokens)
          if (typeof identity.data.sub === 'string' && claims?.sub !== identity.data.sub) return { kind: 'invalid', reason: 'sub-changed' }
        }
        const fresh = tokenFields(tokens, Date.now())
        if (!fresh) return { kind: 'error', reason: 'token-too-long' }
        return { kind: 'ok', data: { ...identity.data, ...fresh, refresh_token: fresh.refresh_token ?? refreshToken } }
      } catch (e) {
        // invalid_grant: the refresh token is revoked or expired, so the identity is no longer valid.
        // A 401 (invalid_client) is about this client's credentials, not the user: an error that
        // changes nothing, never a reason to drop identities.
        if (endpointFailure(e)?.error === 'invalid_grant') return { kind: 'invalid', reason: 'invalid_grant' }
        const mapped = mapOidcError(e, 'refresh')
        return { kind: 'error', reason: mapped.code, cause: e }
      }
    },
  }
}

/** A trust policy as stored JSON. */
function trustJson(t: TrustPolicy): JsonObject {
  return {
    name: t.name,
    emailVerified: t.emailVerified,
    ...(t.domains ? { domains: [...t.domains] } : {}),
    inviteMatch: t.inviteMatch,
  }
}

/**
 * For a templated issuer: the token response's ID token names its tenant (`tid`, not yet
 * verified); the metadata's issuer becomes the template filled with it, so that oauth4webapi
 * checks `iss` against it. The signature, verified next, covers `tid`, and the preset checks the
 * tenant after that.
 */
async function issuerFromTokenFor(
  fill: (advertised: string, claims: Readonly<Record<string, unknown>>) => string | null,
  as: oauth.AuthorizationServer,
  res: Response,
): Promise<oauth.AuthorizationServer> {
  try {
    const body = (await res.clone().json()) as { id_token?: unknown }
    const payload = typeof body.id_token === 'string' ? body.id_token.split('.')[1] : undefined
    if (!payload || payload.length > MAX_TOKEN_LENGTH) return as
    const b64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)))) as Record<string, unknown>
    const filled = typeof claims === 'object' && claims !== null ? fill(as.issuer, claims) : null
    return filled ? { ...as, issuer: filled } : as
  } catch {
    return as
  }
}

/** Token fields kept in identity data; null when a token is over the size limit. */
function tokenFields(tokens: oauth.TokenEndpointResponse, nowMs: number): JsonObject | null {
  const out: JsonObject = {}
  for (const k of ['access_token', 'refresh_token', 'token_type', 'scope'] as const) {
    const v = tokens[k]
    if (typeof v === 'string') {
      if (v.length > MAX_TOKEN_LENGTH) return null
      out[k] = v
    }
  }
  if (typeof tokens.expires_in === 'number' && Number.isFinite(tokens.expires_in)) {
    out.expires_at = nowMs + Math.trunc(tokens.expires_in) * 1000
  }
  return out
}
