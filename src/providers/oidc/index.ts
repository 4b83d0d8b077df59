/**
 * OpenID Connect provider on oauth4webapi (web-standard APIs only: fetch, WebCrypto, URL).
 *
 * Login: authorization code flow with PKCE (S256), `state` and `nonce` bound to the pipeline
 * state, ID token validation (issuer, audience, expiry, nonce, algorithm), optional userinfo.
 * Setup: the admin gives issuer, client id and secret; discovery (issuer match) is validated
 * before the admin is sent to log in.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { type AuthError, authError } from '../../errors.js'
import type { IdentityInput, JsonObject, JsonValue } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'
import type { AuthIdentity } from '../../model/records.js'
import { timingSafeEqual } from '../../state/crypto.js'
import type { Provider, ProviderStep, RefreshResult, StepContext, StepResult } from '../types.js'

/** A fetch-compatible function (what oauth4webapi calls). @group Providers */
export type OidcFetch = (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>

/** Options of {@link oidcProvider}. @group Providers */
export interface OidcProviderOptions {
  /** Provider key stored on the auth provider row. @defaultValue `'oidc'` */
  readonly key?: string | undefined
  /** Display name. @defaultValue `'OpenID Connect'` */
  readonly displayName?: string | undefined
  /** Timeout of each request to the IdP (headers and body). @defaultValue 10000 */
  readonly fetchTimeoutMs?: number | undefined
  /** Largest IdP response body accepted, in bytes. @defaultValue 262144 */
  readonly maxResponseBytes?: number | undefined
  /** Replaces `fetch` for every IdP request (tests, proxies, instrumentation). */
  readonly customFetch?: OidcFetch | undefined
  /** Scopes requested. `openid` is always included. @defaultValue `['openid', 'email', 'profile']` */
  readonly scopes?: readonly string[] | undefined
  /** Also call the userinfo endpoint to fill claims missing from the ID token. @defaultValue false */
  readonly userinfo?: boolean | undefined
  /** How long discovered metadata is reused, in ms. @defaultValue 600000 */
  readonly discoveryCacheMs?: number | undefined
  /**
   * DANGER: accept plain-http issuers on loopback hosts (127.0.0.1, ::1, localhost). For tests
   * against a local IdP only; any non-loopback http issuer is still refused.
   * @defaultValue false
   */
  readonly dangerouslyAllowInsecureLoopbackHttp?: boolean | undefined
}

/** Stored provider config (the auth provider row's `config`). @group Providers */
export interface OidcConfig {
  readonly issuer: string
  readonly clientId: string
  /** Secret: removed by `redactConfig`. */
  readonly clientSecret: string
  readonly clientAuth: 'client_secret_basic' | 'client_secret_post'
}

/** View name of the setup form (issuer, client id, client secret). @group Providers */
export const OIDC_SETUP_VIEW = 'oidc-setup-form'
/** Step ids (part of the pipeline fingerprint). @group Providers */
export const OIDC_STEP_IDS = { configure: 'oidc.configure', authorize: 'oidc.authorize', callback: 'oidc.callback' } as const

const MAX_TOKEN_LENGTH = 16 * 1024
const MAX_SECRET_LENGTH = 1024
const MAX_ISSUER_LENGTH = 2048

class ResponseTooLarge extends Error {
  constructor() {
    super('identity provider response exceeds the size limit')
    this.name = 'ResponseTooLarge'
  }
}

/** The IdP answered with a 5xx status: it is down or overloaded, so retrying may help. */
class ServerError extends Error {
  readonly status: number
  constructor(status: number) {
    super(`identity provider answered HTTP ${status}`)
    this.name = 'ServerError'
    this.status = status
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === '[::1]' || hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function str(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= max ? value : null
}

/** Reads a config object; null when malformed. */
export function parseOidcConfig(value: unknown): OidcConfig | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  const issuer = str(v.issuer, MAX_ISSUER_LENGTH)
  const clientId = str(v.clientId, LIMITS.id)
  const clientSecret = str(v.clientSecret, MAX_SECRET_LENGTH)
  const clientAuth =
    v.clientAuth === 'client_secret_post' ? 'client_secret_post' : v.clientAuth === 'client_secret_basic' ? 'client_secret_basic' : null
  if (!issuer || !clientId || !clientSecret || !clientAuth) return null
  return { issuer, clientId, clientSecret, clientAuth }
}

function configJson(config: OidcConfig): JsonObject {
  return { issuer: config.issuer, clientId: config.clientId, clientSecret: config.clientSecret, clientAuth: config.clientAuth }
}

/**
 * Maps anything oauth4webapi or fetch threw to an {@link AuthError}. The IdP's own text stays
 * in `cause`; `details` carries only bounded machine codes.
 */
export function mapOidcError(e: unknown, stage: string): AuthError {
  const idpCode = (value: unknown): string | null => (typeof value === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(value) ? value : null)
  if (e instanceof oauth.AuthorizationResponseError) {
    return authError('PROVIDER_ERROR', { cause: e, details: { stage, idpError: idpCode(e.error) } })
  }
  if (e instanceof oauth.ResponseBodyError) {
    return authError('PROVIDER_ERROR', { cause: e, details: { stage, status: e.status, idpError: idpCode(e.error) } })
  }
  if (e instanceof oauth.WWWAuthenticateChallengeError) {
    return authError('PROVIDER_ERROR', { cause: e, details: { stage, status: e.status } })
  }
  if (e instanceof ServerError) {
    return authError('PROVIDER_UNAVAILABLE', { cause: e, details: { stage, reason: 'server-error', status: e.status } })
  }
  if (e instanceof ResponseTooLarge) {
    return authError('PROVIDER_RESPONSE_INVALID', { cause: e, details: { stage, reason: 'too-large' } })
  }
  if (e instanceof oauth.OperationProcessingError || e instanceof oauth.UnsupportedOperationError) {
    return authError('PROVIDER_RESPONSE_INVALID', { cause: e, details: { stage, reason: e.code ?? 'invalid' } })
  }
  const name = typeof e === 'object' && e !== null ? (e as { name?: unknown }).name : undefined
  if (name === 'TimeoutError' || name === 'AbortError') {
    return authError('PROVIDER_UNAVAILABLE', { cause: e, details: { stage, reason: 'timeout' } })
  }
  if (e instanceof TypeError) {
    // fetch failures (connection refused, DNS) and oauth4webapi's argument/shape checks of
    // responses both arrive as TypeError; coded ones are about the response.
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ERR_')) {
      return authError('PROVIDER_RESPONSE_INVALID', { cause: e, details: { stage, reason: code } })
    }
    return authError('PROVIDER_UNAVAILABLE', { cause: e, details: { stage, reason: 'network' } })
  }
  return authError('PROVIDER_ERROR', { cause: e, details: { stage } })
}

async function readLimited(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {})
    throw new ResponseTooLarge()
  }
  if (!res.body) return new Uint8Array(0)
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > max) {
      await reader.cancel().catch(() => {})
      throw new ResponseTooLarge()
    }
    chunks.push(value)
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.byteLength
  }
  return out
}

/**
 * Creates an OpenID Connect provider.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { oidcProvider } from 'ssoflow/oidc'
 * const sso = createAuthPipeline({ ...ports, providers: { oidc: oidcProvider({ fetchTimeoutMs: 5000 }) }, secret, urls })
 * ```
 * @group Providers
 */
export function oidcProvider(options: OidcProviderOptions = {}): Provider {
  const key = options.key ?? 'oidc'
  const timeoutMs = options.fetchTimeoutMs ?? 10_000
  const maxBytes = options.maxResponseBytes ?? 256 * 1024
  const cacheMs = options.discoveryCacheMs ?? 600_000
  const scopes = ['openid', ...(options.scopes ?? ['email', 'profile']).filter((s) => s !== 'openid')].join(' ')
  const insecureLoopback = options.dangerouslyAllowInsecureLoopbackHttp === true
  const baseFetch: OidcFetch = options.customFetch ?? ((url, init) => fetch(url, init as RequestInit))
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError('fetchTimeoutMs must be a positive integer')

  const limitedFetch = async (url: string, init: oauth.CustomFetchOptions<string, unknown>): Promise<Response> => {
    const res = await baseFetch(url, init)
    if (res.status >= 500 && res.status <= 599) {
      // A 5xx is an outage at the IdP, not a protocol violation: PROVIDER_UNAVAILABLE (retryable).
      await res.body?.cancel().catch(() => {})
      throw new ServerError(res.status)
    }
    const body = await readLimited(res, maxBytes)
    const nullBody = res.status === 204 || res.status === 205 || res.status === 304
    return new Response(nullBody ? null : (body as BodyInit), { status: res.status, statusText: res.statusText, headers: res.headers })
  }

  const http = (): oauth.HttpRequestOptions<'GET' | 'POST', unknown> => ({
    signal: () => AbortSignal.timeout(timeoutMs),
    [oauth.customFetch]: limitedFetch as never,
    ...(insecureLoopback ? { [oauth.allowInsecureRequests]: true } : {}),
  })

  /** Checks an issuer URL: https, or loopback http when allowed; no query or fragment. */
  function issuerUrl(value: string): URL | null {
    if (value.length > MAX_ISSUER_LENGTH) return null
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return null
    }
    if (url.search || url.hash || url.username || url.password) return null
    if (url.protocol === 'https:') return url
    if (url.protocol === 'http:' && insecureLoopback && isLoopback(url.hostname)) return url
    return null
  }

  const cache = new Map<string, { as: oauth.AuthorizationServer; at: number }>()

  async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
    const hit = cache.get(issuer)
    if (hit && Date.now() - hit.at < cacheMs) return hit.as
    const url = issuerUrl(issuer)
    if (!url) throw new oauth.UnsupportedOperationError('issuer URL not allowed', { cause: issuer })
    const res = await oauth.discoveryRequest(url, http() as oauth.DiscoveryRequestOptions)
    const as = await oauth.processDiscoveryResponse(url, res)
    if (typeof as.authorization_endpoint !== 'string' || typeof as.token_endpoint !== 'string') {
      throw new oauth.UnsupportedOperationError('discovery document lacks authorization or token endpoint')
    }
    const methods = as.code_challenge_methods_supported
    if (Array.isArray(methods) && !methods.includes('S256')) {
      throw new oauth.UnsupportedOperationError('issuer does not support PKCE S256')
    }
    if (cache.size > 100) cache.clear()
    cache.set(issuer, { as, at: Date.now() })
    return as
  }

  const clientOf = (config: OidcConfig): oauth.Client => ({ client_id: config.clientId })
  const authOf = (config: OidcConfig): oauth.ClientAuth =>
    config.clientAuth === 'client_secret_post' ? oauth.ClientSecretPost(config.clientSecret) : oauth.ClientSecretBasic(config.clientSecret)

  /** The config to use: the stored one (login) or the one bound by the setup form. */
  function configFor(ctx: StepContext): OidcConfig | null {
    return parseOidcConfig(ctx.flow === 'setup' ? ctx.data.oidc_config : ctx.config)
  }

  const configure: ProviderStep = {
    id: OIDC_STEP_IDS.configure,
    async handle(ctx): Promise<StepResult> {
      const render = (error: string | null, values: { issuer?: string; client_id?: string } = {}): StepResult => ({
        type: 'render',
        view: OIDC_SETUP_VIEW,
        model: {
          action: ctx.callbackUrl,
          method: 'POST',
          fields: [
            { name: 'issuer', label: 'Issuer URL', type: 'url', required: true, value: values.issuer ?? '' },
            { name: 'client_id', label: 'Client ID', type: 'text', required: true, value: values.client_id ?? '' },
            { name: 'client_secret', label: 'Client secret', type: 'password', required: true, value: '' },
          ],
          error,
        },
      })
      if (ctx.request.method !== 'POST') return render(null)
      const issuer = (ctx.request.form.issuer ?? '').trim()
      const clientId = (ctx.request.form.client_id ?? '').trim()
      const clientSecret = ctx.request.form.client_secret ?? ''
      const values = { issuer: issuer.slice(0, MAX_ISSUER_LENGTH), client_id: clientId.slice(0, LIMITS.id) }
      if (!issuerUrl(issuer)) return render('The issuer must be an https URL without query or fragment.', values)
      if (!str(clientId, LIMITS.id)) return render('The client ID is required (at most 255 characters).', values)
      if (!str(clientSecret, MAX_SECRET_LENGTH)) return render('The client secret is required (at most 1024 characters).', values)
      let as: oauth.AuthorizationServer
      try {
        as = await discover(issuer)
      } catch (e) {
        return { type: 'error', error: mapOidcError(e, 'discovery') }
      }
      const supported = as.token_endpoint_auth_methods_supported
      let clientAuth: OidcConfig['clientAuth']
      if (!Array.isArray(supported) || supported.includes('client_secret_basic')) clientAuth = 'client_secret_basic'
      else if (supported.includes('client_secret_post')) clientAuth = 'client_secret_post'
      else {
        return {
          type: 'error',
          error: authError('PROVIDER_RESPONSE_INVALID', { details: { stage: 'discovery', reason: 'no-secret-client-auth' } }),
        }
      }
      return { type: 'next', bind: { oidc_config: configJson({ issuer: as.issuer, clientId, clientSecret, clientAuth }) } }
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
      let as: oauth.AuthorizationServer
      try {
        as = await discover(config.issuer)
      } catch (e) {
        return { type: 'error', error: mapOidcError(e, 'discovery') }
      }
      const state = ctx.random()
      const nonce = ctx.random()
      const verifier = ctx.random()
      const challenge = await oauth.calculatePKCECodeChallenge(verifier)
      const url = new URL(as.authorization_endpoint as string)
      url.searchParams.set('client_id', config.clientId)
      url.searchParams.set('redirect_uri', ctx.callbackUrl)
      url.searchParams.set('response_type', 'code')
      url.searchParams.set('scope', scopes)
      url.searchParams.set('state', state)
      url.searchParams.set('nonce', nonce)
      url.searchParams.set('code_challenge', challenge)
      url.searchParams.set('code_challenge_method', 'S256')
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
        typeof pending.verifier !== 'string' ||
        typeof pending.redirectUri !== 'string'
      ) {
        return { type: 'error', error: authError('STATE_INVALID', { details: { reason: 'no-pending-authorization' } }) }
      }
      const q = ctx.request.method === 'POST' ? ctx.request.form : ctx.request.query
      const returned = q.state
      if (typeof returned !== 'string' || !timingSafeEqual(returned, pending.state)) {
        return { type: 'error', error: authError('STATE_INVALID', { details: { reason: 'oauth-state-mismatch' } }) }
      }
      const config = configFor(ctx)
      if (!config) return { type: 'error', error: authError('PROVIDER_NOT_CONFIGURED', { details: { reason: 'oidc-config' } }) }
      let stage = 'discovery'
      try {
        const as = await discover(config.issuer)
        const client = clientOf(config)
        stage = 'callback'
        const params = oauth.validateAuthResponse(as, client, new URLSearchParams(q), pending.state)
        stage = 'token'
        const res = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          authOf(config),
          params,
          pending.redirectUri,
          pending.verifier,
          http() as oauth.TokenEndpointRequestOptions,
        )
        const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, {
          expectedNonce: pending.nonce,
          requireIdToken: true,
        })
        const claims = oauth.getValidatedIdTokenClaims(tokens)
        if (!claims) throw new oauth.UnsupportedOperationError('no ID token')
        let email: unknown = claims.email
        let emailVerified: unknown = claims.email_verified
        let name: unknown = claims.name
        if (options.userinfo === true && typeof as.userinfo_endpoint === 'string') {
          stage = 'userinfo'
          const ures = await oauth.userInfoRequest(as, client, tokens.access_token, http() as oauth.UserInfoRequestOptions)
          const info = await oauth.processUserInfoResponse(as, client, claims.sub, ures)
          if (email === undefined) {
            email = info.email
            emailVerified = info.email_verified
          }
          if (name === undefined) name = info.name
        }
        stage = 'claims'
        const sub = str(claims.sub, LIMITS.id)
        if (!sub) throw new oauth.UnsupportedOperationError('sub claim missing or too long')
        if (email !== undefined && !str(email, LIMITS.email)) throw new oauth.UnsupportedOperationError('email claim invalid')
        if (name !== undefined && typeof name !== 'string') throw new oauth.UnsupportedOperationError('name claim invalid')
        const tokenData = tokenFields(tokens, ctx.now.getTime())
        if (!tokenData) throw new oauth.UnsupportedOperationError('token too long')
        return {
          type: 'next',
          bind: {
            // The one-time values are spent: drop them so a replay cannot reuse them.
            oidc: null,
            oidc_result: {
              sub,
              email: typeof email === 'string' ? email : null,
              email_verified: emailVerified === true,
              name: typeof name === 'string' ? Array.from(name).slice(0, LIMITS.name).join('') : null,
              issuer: as.issuer,
              tokens: tokenData,
            },
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
    displayName: options.displayName ?? 'OpenID Connect',
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
        id: sub,
        email: typeof result.email === 'string' ? result.email : '',
        emailVerified: result.email_verified === true,
        name: typeof result.name === 'string' ? result.name : null,
        data: { sub, ...tokens },
      }
    },
    buildConfig(data): JsonObject | AuthError {
      const config = parseOidcConfig(data.oidc_config)
      if (!config) return authError('INPUT_INVALID', { details: { reason: 'oidc-config' } })
      return configJson(config)
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
        const as = await discover(config.issuer)
        const client = clientOf(config)
        const res = await oauth.refreshTokenGrantRequest(
          as,
          client,
          authOf(config),
          refreshToken,
          http() as oauth.TokenEndpointRequestOptions,
        )
        const tokens = await oauth.processRefreshTokenResponse(as, client, res)
        const fresh = tokenFields(tokens, Date.now())
        if (!fresh) return { kind: 'error', reason: 'token-too-long' }
        return { kind: 'ok', data: { ...identity.data, ...fresh, refresh_token: fresh.refresh_token ?? refreshToken } }
      } catch (e) {
        if (e instanceof oauth.ResponseBodyError && (e.status === 401 || e.error === 'invalid_grant')) {
          return { kind: 'invalid', reason: e.error === 'invalid_grant' ? 'invalid_grant' : 'unauthorized' }
        }
        if (e instanceof oauth.WWWAuthenticateChallengeError && e.status === 401) return { kind: 'invalid', reason: 'unauthorized' }
        const mapped = mapOidcError(e, 'refresh')
        return { kind: 'error', reason: mapped.code, cause: e }
      }
    },
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
