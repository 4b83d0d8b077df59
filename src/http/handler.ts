/**
 * The HTTP handler: ONE Web-standard function (`Request` -> `Response`) that serves every route
 * of the login and setup pipelines on top of an {@link AuthPipeline}. It owns the pipeline
 * cookie, the browser-binding cookie, the verification cookie, CSRF and origin checks, bounded
 * body parsing, the mapping of outcomes to redirects and pages, and hands session changes to the
 * host's `applySessionEffects`. The framework adapters (`ssoflow/hono`, `ssoflow/express`,
 * `ssoflow/fastify`) only convert requests and responses.
 *
 * @module
 */
import type { ResultAsync } from 'neverthrow'
import type { AuthPipeline, LoginOutcome, SessionEffect, SessionInfo, SetupOutcome, Step } from '../engine/types.js'
import { type AuthError, type AuthErrorCode, authError, ERROR_CODES, SsoflowError } from '../errors.js'
import type { JsonObject, JsonValue } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import { randomToken, timingSafeEqual } from '../state/crypto.js'
import { MAX_URL_LENGTH, type ParseLimits, parseQuery, readForm } from './body.js'
import { parseCookies, prefixedName, serializeCookie } from './cookies.js'
import {
  DEFAULT_STYLESHEET,
  type PageField,
  type PageForm,
  type ProviderFormPageView,
  renderDefaultPage,
  renderRepostPage,
  type SsoPage,
} from './pages.js'

/**
 * What the host knows of the request's session, returned by `getSession`. The handler adds the
 * parts it owns (the browser binding the pipeline is bound to, the verification token).
 * @group HTTP
 */
export interface HostSession {
  /** The signed-in user, or null when anonymous. */
  readonly userId?: string | null | undefined
  /** The user whose second factor this session has passed; it counts only for that user. */
  readonly twoFactorUserId?: string | null | undefined
  /** A pending invite carried by the session (from the host's invite link). */
  readonly invite?: SessionInfo['invite']
  /** Client IP for audit entries. */
  readonly ip?: string | null | undefined
}

/** What `applySessionEffects` and `render` see of the request. @group HTTP */
export interface SsoRequestEvent<C> {
  readonly request: Request
  /** The adapter's context (e.g. `{ req, res }` for Express, Hono's `c`), or what you passed to `fetch`. */
  readonly context: C
}

/** One handled request, for logging and the demo's decision log. @group HTTP */
export interface SsoResultEvent<C> extends SsoRequestEvent<C> {
  /** The route that handled it (`login`, `setup`, `callback`, `confirm`, `verify`, `resume`, ...). */
  readonly route: string
  /** The engine's step or outcome (carries the decision `trace`), when there was one. */
  readonly step: Step | null
  /** The error, when the request failed. */
  readonly error: AuthError | null
  readonly status: number
}

/**
 * What `applySessionEffects` may return: headers to add to the response (e.g. the host's
 * `Set-Cookie`), or nothing.
 * @group HTTP
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a plain \`async\` hook that returns nothing is the common case
export type EffectsResult = Headers | readonly (readonly [string, string])[] | null | undefined | void

/** What a `render` hook may return: HTML, a whole response, or nothing for the default page. @group HTTP */
export type RenderResult = string | Response | null | undefined

/**
 * Options of {@link createSsoHandler}. `C` is the per-request context the adapter passes along
 * (Express `{ req, res }`, Fastify `{ request, reply }`, Hono's `Context`).
 * @group HTTP
 */
export interface SsoHandlerOptions<C = void> {
  /**
   * The app's origin, e.g. `https://app.example.com`; the same as the engine's `urls.baseUrl`.
   * POSTs must come from it, and cookies are `Secure` unless it is plain http on loopback
   * (`localhost`, `127.0.0.1`, `[::1]`). Plain http elsewhere is refused.
   */
  readonly baseUrl: string
  /** The path every route lives under, e.g. `/auth/sso`. The cookies are scoped to it. */
  readonly basePath: string
  /** The host's view of the session (null or `{}` when anonymous). May read cookies from the request. */
  getSession(request: Request, context: C): HostSession | null | Promise<HostSession | null>
  /**
   * Applies the session changes of an outcome, in order: `login` (sign the user in), `rotate`
   * (issue a new session id), `markSsoComplete`, `activeOrg`, `clearInvite`, `pendingTwoFactor`
   * (remember who must pass the second factor; then the handler redirects to `twoFactorUrl`),
   * `revokeOtherSessions` (end every other session of that user: an anonymous visitor just proved
   * the account, and a session someone held on it before must not survive, threat 2).
   * May return headers (e.g. `Set-Cookie`) to add to the response. `clearPipeline` and
   * `clearVerification` are done by the handler already.
   */
  applySessionEffects(effects: readonly SessionEffect[], event: SsoRequestEvent<C>): EffectsResult | Promise<EffectsResult>
  /**
   * Finds the organization id for a slug in `/login/:org` and `/setup/:org`. Null when unknown
   * (the handler answers 404 `ORGANIZATION_NOT_FOUND`). Default: the slug is the id.
   */
  resolveOrganization?: ((slug: string, event: SsoRequestEvent<C>) => string | null | Promise<string | null>) | undefined
  /** Replaces any page: return HTML or a `Response`, or nothing to keep the default page. */
  render?: ((page: SsoPage, event: SsoRequestEvent<C>) => RenderResult | Promise<RenderResult>) | undefined
  /** Where to send a login that needs the user's second factor (the host's 2FA page). */
  twoFactorUrl?: string | undefined
  /** The "start again" link of error pages when the org is not known. @defaultValue `'/'` */
  homeUrl?: string | undefined
  /** Largest request body accepted, in bytes (every route but the ACS and `/callback`). @defaultValue 16384 */
  maxBodyBytes?: number | undefined
  /**
   * Largest body of a provider form posted to `/callback` (the setup forms), in bytes; also the
   * largest single field. Sized for pasted IdP metadata: Microsoft Entra ID's federation
   * metadata alone is 20-60 KiB. The post still needs this browser's pipeline cookie and its
   * CSRF token, and the provider bounds what it parses (`ssoflow/saml`: `metadataFetch.maxBytes`).
   * @defaultValue 262144 (256 KiB)
   */
  maxFormBytes?: number | undefined
  /**
   * Largest body accepted on `POST /acs/:org` (an IdP's form post carrying a base64
   * `SAMLResponse`), in bytes. The default fits `ssoflow/saml`'s default `maxResponseBytes`
   * (256 KiB decoded); when you raise that, pass `samlAcsMaxBodyBytes({ maxResponseBytes })`.
   * @defaultValue 1056768 (1 MiB + 8 KiB)
   */
  maxAcsBodyBytes?: number | undefined
  /**
   * The provider key whose service metadata `GET /metadata/:org` serves (`?provider=` picks
   * another). @defaultValue `'saml'`
   */
  metadataProvider?: string | undefined
  /** Called after every handled request (logging, metrics, a decision log). Errors it throws are ignored. */
  onResult?: ((event: SsoResultEvent<C>) => void) | undefined
}

/**
 * The handler returned by {@link createSsoHandler}.
 * @group HTTP
 */
export interface SsoHandler<C = void> {
  /**
   * Serves a request. Never throws: every failure is a page or a redirect with its code.
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(sso, { baseUrl: 'https://app.example.com', basePath: '/auth/sso', ... })
   *
   * const response = await handler.fetch(new Request('https://app.example.com/auth/sso/login/acme'))
   * console.log(response.status, response.headers.get('location')) // 302 and the IdP's authorization URL (or an error page)
   * ```
   */
  fetch(request: Request, context: C): Promise<Response>
  /**
   * True when the request's path is under `basePath` (adapters mount the handler there).
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(...) with basePath '/auth/sso'
   * declare function appRoutes(request: Request): Promise<Response> // the rest of your app
   *
   * export default {
   *   fetch: (request: Request) => (handler.matches(request) ? handler.fetch(request) : appRoutes(request)),
   * }
   * handler.matches('/auth/sso/login/acme') // true
   * handler.matches('/settings') // false
   * ```
   */
  matches(request: Request | URL | string): boolean
  readonly basePath: string
  /** The origin of `baseUrl` (adapters build request URLs on it, never on the `Host` header). */
  readonly origin: string
  /** Largest request body the handler reads on any route but the ACS and `/callback`, in bytes. */
  readonly maxBodyBytes: number
  /** Largest request body the handler reads on `/callback` (provider forms such as pasted IdP metadata), in bytes. */
  readonly maxFormBytes: number
  /** Largest request body the handler reads on `POST /acs/:org`, in bytes (adapters may stop reading past it). */
  readonly maxAcsBodyBytes: number
  /**
   * The login start URL for an org slug (a "Sign in with SSO" link).
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(...) with basePath '/auth/sso'
   *
   * const href = handler.loginUrl('acme', { next: '/issues', loginHint: 'ada@acme.example' })
   * // '/auth/sso/login/acme?next=%2Fissues&login_hint=ada%40acme.example': a "Sign in with SSO" link
   * ```
   */
  loginUrl(slug: string, options?: { readonly next?: string | undefined; readonly loginHint?: string | undefined }): string
  /**
   * The setup start URL for an org slug and provider key (an admin's "Configure SSO" link).
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(...) with basePath '/auth/sso'
   *
   * const href = handler.setupUrl('acme', 'oidc') // '/auth/sso/setup/acme?provider=oidc'
   * ```
   */
  setupUrl(slug: string, providerKey: string): string
  /**
   * The absolute URL of an org's assertion consumer service (`POST /acs/:org`), for the IdP's admin.
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(...) on https://app.example.com with basePath '/auth/sso'
   *
   * // Shown on the org's SAML settings page, to paste into the IdP's console:
   * const acs = handler.acsUrl('acme') // 'https://app.example.com/auth/sso/acs/acme'
   * ```
   */
  acsUrl(slug: string): string
  /**
   * The absolute URL of an org's service metadata (`GET /metadata/:org`), for the IdP's admin.
   *
   * @example
   * ```ts
   * import type { SsoHandler } from 'ssoflow/http'
   * declare const handler: SsoHandler // createSsoHandler(...) on https://app.example.com with basePath '/auth/sso'
   *
   * const metadata = handler.metadataUrl('acme') // 'https://app.example.com/auth/sso/metadata/acme'
   * ```
   */
  metadataUrl(slug: string): string
}

/**
 * The engine URLs the handler serves, to spread into `createAuthPipeline({ urls })`:
 * `pipelineCallback` (every provider step and IdP redirect), `postCallback` (an IdP's form post,
 * the SAML ACS: `POST /acs/:org`, one per org slug) and `verifyAccount` (the emailed link).
 * `baseUrl` is passed through. Org URLs carry the org's slug: `resolveOrganization` maps it back.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { ssoHandlerUrls } from 'ssoflow/http'
 *
 * const http = { baseUrl: 'https://app.example.com', basePath: '/auth/sso' }
 * const sso = createAuthPipeline({
 *   ...ports,
 *   providers: {},
 *   secret,
 *   urls: {
 *     ...ssoHandlerUrls(http), // pipelineCallback: 'https://app.example.com/auth/sso/callback', postCallback, verifyAccount
 *     orgLogin: (org) => `/login/${org.slug}`,
 *     authSettings: (org) => `/settings/${org.slug}/auth`,
 *     providerSettings: (org) => `/settings/${org.slug}/auth`,
 *     afterLogin: (org) => `/orgs/${org.slug}/`,
 *   },
 * })
 * ```
 * @group HTTP
 */
export function ssoHandlerUrls(options: { readonly baseUrl: string; readonly basePath: string }): {
  readonly baseUrl: string
  pipelineCallback(): string
  postCallback(org: { readonly slug: string }): string
  verifyAccount(token: string): string
} {
  const origin = new URL(options.baseUrl).origin
  const base = normalizeBasePath(options.basePath)
  return {
    baseUrl: options.baseUrl,
    pipelineCallback: () => `${origin}${base}/callback`,
    postCallback: (org) => `${origin}${base}/acs/${encodeURIComponent(org.slug)}`,
    verifyAccount: (token: string) => `${origin}${base}/verify/${encodeURIComponent(token)}`,
  }
}

/** Cookie base names (prefixed `__Host-` / `__Secure-` when Secure). */
const COOKIE = { pipeline: 'ssoflow-pipeline', browser: 'ssoflow-browser', verify: 'ssoflow-verify' } as const
const CSRF_FIELD = 'csrf'
const PIPELINE_COOKIE_SECONDS = 3600
const VERIFY_COOKIE_SECONDS = 600
const HANDLE = /^[A-Za-z0-9_.-]{16,512}$/
const BROWSER_ID = /^[A-Za-z0-9_-]{22,64}$/
const TOKEN = /^[A-Za-z0-9_.~-]{16,256}$/

const STATUS: Partial<Record<AuthErrorCode, number>> = {
  CONFIG_INVALID: 500,
  INTERNAL_ERROR: 500,
  IDENTITY_INVALID: 502,
  PROVIDER_ERROR: 502,
  PROVIDER_UNAVAILABLE: 502,
  PROVIDER_RESPONSE_INVALID: 502,
  ORGANIZATION_NOT_FOUND: 404,
  // Home-realm discovery: one answer for an unknown, unverified or ambiguous domain.
  DOMAIN_UNKNOWN: 404,
  DOMAIN_TAKEN: 409,
  PROVIDER_NOT_CONFIGURED: 404,
  PROVIDER_UNKNOWN: 404,
  ROUTE_NOT_FOUND: 404,
  NOT_AUTHENTICATED: 401,
  NOT_AUTHORIZED: 403,
  NOT_A_MEMBER: 403,
  UID_MISMATCH: 403,
  SESSION_USER_MISMATCH: 403,
  USER_SUSPENDED: 403,
  MERGE_FAILED: 403,
  PROVIDER_DISABLED: 403,
  CSRF_INVALID: 403,
  CROSS_SITE_REQUEST: 403,
  STATE_SESSION_MISMATCH: 403,
  PROVIDER_EXISTS: 409,
  IDENTITY_CONFLICT: 409,
  STATE_CONFLICT: 409,
  STORAGE_CONFLICT: 409,
  BODY_TOO_LARGE: 413,
  CONTENT_TYPE_INVALID: 415,
  RATE_LIMITED: 429,
  STORAGE_UNAVAILABLE: 503,
}

/**
 * The HTTP status the handler answers an error code with (400 unless listed).
 *
 * @example
 * ```ts
 * import { isAuthError } from 'ssoflow'
 * import { statusFor } from 'ssoflow/http'
 *
 * // A JSON API route of the host that calls the engine: the same statuses as the handler's pages.
 * function problem(error: unknown): Response {
 *   if (!isAuthError(error)) return Response.json({ code: 'INTERNAL_ERROR' }, { status: 500 })
 *   return Response.json({ code: error.code, message: error.message }, { status: statusFor(error.code) })
 * }
 * statusFor('NOT_AUTHORIZED') // 403
 * statusFor('STATE_EXPIRED') // 400 (every code not listed)
 * ```
 * @group HTTP
 */
export function statusFor(code: AuthErrorCode): number {
  return STATUS[code] ?? 400
}

const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
/** The ACS re-post page: one script, allowed by its nonce, that submits one form to this origin. */
const repostCsp = (nonce: string) =>
  `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`
/** The field the re-post page adds: a re-posted form that still arrives cross-site is refused, not re-posted again. */
const REPOST_FIELD = 'ssoflow_repost'
/** RelayState values longer than this are not ours (SAML bindings cap it at 80 bytes). */
const MAX_RELAY_STATE = 1024
const DEFAULT_ACS_BODY_BYTES = 1024 * 1024 + 8 * 1024
/** Provider forms on `/callback`: room for pasted IdP metadata (Entra ID's is 20-60 KiB). */
const DEFAULT_FORM_BYTES = 256 * 1024
/** A (non-HTML) document's CSP: nothing may run or load. */
const DOCUMENT_CSP = "default-src 'none'; frame-ancestors 'none'"

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

function normalizeBasePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('//') || /[?#\\\s]/.test(path)) {
    throw new SsoflowError('CONFIG_INVALID', 'basePath must be an absolute path like /auth/sso')
  }
  return path.replace(/\/+$/, '')
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const SEGMENT_FORBIDDEN = /[/\\\u0000-\u001f\u007f]/

/** A decoded path segment, or null when malformed. */
function segment(raw: string): string | null {
  try {
    const value = decodeURIComponent(raw)
    return value.length > 0 && value.length <= LIMITS.id && !SEGMENT_FORBIDDEN.test(value) ? value : null
  } catch {
    return null
  }
}

/** Separates the handle from its CSRF token in the pipeline cookie (not a handle character). */
const TOKEN_SEPARATOR = '~'
const CSRF_TOKEN = /^[A-Za-z0-9_-]{22,64}$/

type Method = 'GET' | 'POST'

/** One request being served: parsed once, with the cookies to set collected as we go. */
interface Exchange<C> {
  readonly request: Request
  readonly context: C
  readonly url: URL
  readonly method: Method
  readonly cookies: Map<string, string>
  /** Set-Cookie lines by cookie name (a later write replaces an earlier one). */
  readonly setCookies: Map<string, string>
  readonly extraHeaders: [string, string][]
  route: string
  step: Step | null
  /** The org slug of a start route, for the error page's "start again" link. */
  slug: string | null
}

interface Route<C> {
  readonly method: Method | 'ANY'
  /** Path segments after basePath; `:name` captures one segment. */
  readonly path: readonly string[]
  readonly name: string
  /** POSTs on this route must pass the origin and CSRF checks (forms the handler rendered). */
  readonly csrf: boolean
  /** This route's body limits, when not the handler's default. */
  readonly body?: ParseLimits | undefined
  handle(x: Exchange<C>, params: Readonly<Record<string, string>>, form: Readonly<Record<string, string>>): Promise<Response>
}

/**
 * Creates the HTTP handler over an engine.
 *
 * Routes, relative to `basePath`:
 *
 * | route | what it does |
 * | --- | --- |
 * | `GET /login/:org?next=&login_hint=` (or `email=`) | starts a login for the org slug |
 * | `GET /login?email=&next=` | starts a login for the organization whose verified domain is the address's (home-realm discovery); one `DOMAIN_UNKNOWN` page (404) for an unknown, unverified or ambiguous domain |
 * | `GET /setup/:org?provider=` | starts SSO setup (the signed-in admin) |
 * | `GET, POST /callback` | every provider step and IdP callback (`urls.pipelineCallback`) |
 * | `POST /acs/:org` | an IdP's form post (SAML ACS, `urls.postCallback`), re-posted same-origin first |
 * | `GET /metadata/:org?provider=` | the provider's service metadata (SAML SP metadata) |
 * | `POST /confirm` | the confirmation page's choice (`op=confirm` or `op=newuser`) |
 * | `GET /verify/:token` | the emailed account-verification link (`urls.verifyAccount`) |
 * | `GET /resume` | finishes a login after the host's second-factor check |
 * | `GET /error?code=` | the error page for a code |
 * | `GET /ssoflow.css` | the default pages' stylesheet |
 *
 * @example
 * ```ts
 * import type { AuthPipeline, SessionEffect } from 'ssoflow'
 * import { createSsoHandler, type HostSession } from 'ssoflow/http'
 *
 * declare const sso: AuthPipeline // createAuthPipeline(...)
 * declare const mySessions: {
 *   read(request: Request): HostSession | null
 *   apply(request: Request, effects: readonly SessionEffect[]): Promise<void>
 * }
 *
 * const handler = createSsoHandler(sso, {
 *   baseUrl: 'https://app.example.com',
 *   basePath: '/auth/sso',
 *   getSession: (request) => mySessions.read(request),
 *   applySessionEffects: (effects, { request }) => mySessions.apply(request, effects),
 * })
 * export default { fetch: (request: Request) => handler.fetch(request) } // Deno, Bun, workers
 * ```
 * @group HTTP
 */
export function createSsoHandler<C = void>(sso: AuthPipeline, options: SsoHandlerOptions<C>): SsoHandler<C> {
  if (!sso || typeof sso.beginLogin !== 'function') throw new SsoflowError('CONFIG_INVALID', 'createSsoHandler needs an AuthPipeline')
  if (typeof options?.getSession !== 'function' || typeof options.applySessionEffects !== 'function') {
    throw new SsoflowError('CONFIG_INVALID', 'createSsoHandler needs getSession and applySessionEffects')
  }
  let base: URL
  try {
    base = new URL(options.baseUrl)
  } catch {
    throw new SsoflowError('CONFIG_INVALID', 'baseUrl must be an absolute URL')
  }
  if (base.protocol !== 'https:' && !(base.protocol === 'http:' && isLoopback(base.hostname))) {
    throw new SsoflowError('CONFIG_INVALID', 'baseUrl must be https (plain http only on loopback)')
  }
  const origin = base.origin
  const basePath = normalizeBasePath(options.basePath)
  const secure = base.protocol === 'https:'
  const cookiePath = basePath === '' ? '/' : basePath
  const names = {
    pipeline: prefixedName(COOKIE.pipeline, cookiePath, secure),
    browser: prefixedName(COOKIE.browser, cookiePath, secure),
    verify: prefixedName(COOKIE.verify, cookiePath, secure),
  }
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0)
    throw new SsoflowError('CONFIG_INVALID', 'maxBodyBytes must be a positive integer')
  const maxAcsBodyBytes = options.maxAcsBodyBytes ?? DEFAULT_ACS_BODY_BYTES
  const maxFormBytes = options.maxFormBytes ?? DEFAULT_FORM_BYTES
  if (!Number.isInteger(maxFormBytes) || maxFormBytes < maxBodyBytes)
    throw new SsoflowError('CONFIG_INVALID', 'maxFormBytes must be an integer no smaller than maxBodyBytes')
  if (!Number.isInteger(maxAcsBodyBytes) || maxAcsBodyBytes <= 0)
    throw new SsoflowError('CONFIG_INVALID', 'maxAcsBodyBytes must be a positive integer')
  const metadataProvider = options.metadataProvider ?? 'saml'
  if (typeof metadataProvider !== 'string' || metadataProvider.length === 0 || metadataProvider.length > LIMITS.id)
    throw new SsoflowError('CONFIG_INVALID', 'metadataProvider must be a provider key')
  const homeUrl = options.homeUrl ?? '/'
  const stylesheet = `${basePath}/ssoflow.css`
  const resolveOrganization = options.resolveOrganization ?? ((slug: string) => slug)

  const setCookie = (x: Exchange<C>, name: string, value: string, maxAge?: number) => {
    x.setCookies.set(name, serializeCookie(name, value, { path: cookiePath, secure, maxAge }))
  }
  const clearCookie = (x: Exchange<C>, name: string) => {
    if (x.cookies.has(name)) setCookie(x, name, '', 0)
    else x.setCookies.delete(name)
  }

  /** The browser binding (the id pipelines are bound to); created when missing. */
  const browserId = (x: Exchange<C>): string => {
    const existing = x.cookies.get(names.browser)
    if (existing && BROWSER_ID.test(existing)) return existing
    const fresh = randomToken(16)
    x.cookies.set(names.browser, fresh)
    setCookie(x, names.browser, fresh)
    return fresh
  }

  /**
   * The pipeline cookie holds `<handle>~<csrf>`: the CSRF token is minted with the pipeline's
   * cookie and bound to that handle (a new handle gets a new token), and the form carries a copy.
   * No hashing per request: the token is a random value the attacker can neither read (HttpOnly)
   * nor plant (`__Host-`/`__Secure-`, and the pipeline is bound to this browser anyway).
   */
  const pipelineCookie = (x: Exchange<C>): { readonly handle: string; readonly csrf: string | null } | null => {
    const value = x.cookies.get(names.pipeline)
    if (!value) return null
    const at = value.indexOf(TOKEN_SEPARATOR)
    const handle = at < 0 ? value : value.slice(0, at)
    const csrf = at < 0 ? null : value.slice(at + 1)
    if (!HANDLE.test(handle)) return null
    return { handle, csrf: csrf !== null && CSRF_TOKEN.test(csrf) ? csrf : null }
  }
  const pipelineHandle = (x: Exchange<C>): string | null => pipelineCookie(x)?.handle ?? null

  /** Sets the pipeline cookie for `handle` (keeping its CSRF token when the handle is unchanged); returns the token. */
  const setPipeline = (x: Exchange<C>, handle: string): string => {
    const current = pipelineCookie(x)
    const csrf = current?.handle === handle && current.csrf !== null ? current.csrf : randomToken(18)
    setCookie(x, names.pipeline, `${handle}${TOKEN_SEPARATOR}${csrf}`, PIPELINE_COOKIE_SECONDS)
    return csrf
  }

  const sessionOf = async (x: Exchange<C>, verificationToken?: string): Promise<SessionInfo> => {
    const host = (await options.getSession(x.request, x.context)) ?? {}
    const cookieToken = x.cookies.get(names.verify)
    const token = verificationToken ?? (cookieToken && TOKEN.test(cookieToken) ? cookieToken : null)
    return toSessionInfo(browserId(x), host, token)
  }

  // ------------------------------------------------------------------ responses
  const finalize = (x: Exchange<C>, response: Response, status: number, error: AuthError | null): Response => {
    const headers = response.headers
    for (const c of x.setCookies.values()) headers.append('set-cookie', c)
    for (const [k, v] of x.extraHeaders) headers.append(k, v)
    if (x.route !== 'stylesheet') headers.set('cache-control', 'no-store')
    headers.set('x-content-type-options', 'nosniff')
    // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on form POSTs,
    // which the origin check must refuse. Nothing leaves for another origin either way.
    headers.set('referrer-policy', 'same-origin')
    if (options.onResult) {
      try {
        options.onResult({ request: x.request, context: x.context, route: x.route, step: x.step, error, status })
      } catch {
        // an observer never changes the response
      }
    }
    return response
  }

  const redirect = (x: Exchange<C>, location: string): Response => {
    const status = x.method === 'POST' ? 303 : 302
    return finalize(x, new Response(null, { status, headers: { location } }), status, null)
  }

  const page = async (x: Exchange<C>, view: SsoPage, status: number, error: AuthError | null = null): Promise<Response> => {
    let custom: RenderResult = null
    if (options.render) custom = await options.render(view, { request: x.request, context: x.context })
    if (custom instanceof Response) return finalize(x, custom, custom.status, error)
    const html = typeof custom === 'string' ? custom : renderDefaultPage(view, stylesheet)
    const response = new Response(html, {
      status,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': CSP,
        'x-frame-options': 'DENY',
      },
    })
    return finalize(x, response, status, error)
  }

  const errorPage = (x: Exchange<C>, error: AuthError, statusOverride?: number): Promise<Response> => {
    const status = statusOverride ?? statusFor(error.code)
    const backUrl = x.slug !== null ? `${basePath}/login/${encodeURIComponent(x.slug)}` : homeUrl
    return page(x, { page: 'error', status, code: error.code, message: error.message, backUrl, error }, status, error)
  }

  const form = (csrf: string, action: string): PageForm => ({ action, csrfField: CSRF_FIELD, csrf })

  /**
   * The ACS re-post page: the IdP's fields in a form that posts to this origin, submitted by one
   * script allowed by a fresh nonce (a button when scripts are off). Not a `render` page: it
   * carries no choice, and the nonce must match the CSP. Sets no cookie.
   */
  const repostPage = (x: Exchange<C>, action: string, fields: Readonly<Record<string, string>>): Response => {
    const nonce = randomToken(16)
    const html = renderRepostPage({ action, fields: { ...fields, [REPOST_FIELD]: '1' }, nonce, stylesheet })
    const response = new Response(html, {
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': repostCsp(nonce), 'x-frame-options': 'DENY' },
    })
    return finalize(x, response, 200, null)
  }

  const applyEffects = async (x: Exchange<C>, effects: readonly SessionEffect[]): Promise<void> => {
    for (const effect of effects) {
      if (effect.type === 'clearPipeline') clearCookie(x, names.pipeline)
      else if (effect.type === 'clearVerification') clearCookie(x, names.verify)
      else if (effect.type === 'rotate') {
        // The browser binding is rotated with the session: the finished pipeline's binding is gone.
        const fresh = randomToken(16)
        x.cookies.set(names.browser, fresh)
        setCookie(x, names.browser, fresh)
      }
    }
    if (effects.length === 0) return
    const extra = await options.applySessionEffects(effects, { request: x.request, context: x.context })
    if (!extra) return
    const entries: Iterable<readonly [string, string]> = extra instanceof Headers ? extra.entries() : extra
    for (const [k, v] of entries) x.extraHeaders.push([k, v])
  }

  /** Turns an engine result into the response. */
  const respond = async (
    x: Exchange<C>,
    result: ResultAsync<Step, AuthError> | ResultAsync<LoginOutcome, AuthError>,
  ): Promise<Response> => {
    const r = await result
    if (r.isErr()) return errorPage(x, r.error)
    const step: Step = r.value
    x.step = step
    switch (step.kind) {
      case 'redirect':
        setPipeline(x, step.handle)
        return redirect(x, step.url)
      case 'render': {
        const csrf = setPipeline(x, step.handle)
        return page(x, providerForm(step.view, step.model, form(csrf, `${basePath}/callback`)), 200)
      }
      case 'confirmationRequired': {
        const csrf = setPipeline(x, step.handle)
        await applyEffects(x, step.session)
        return page(
          x,
          { page: 'confirmation', confirmation: step.confirmation, allowedOps: step.allowedOps, form: form(csrf, `${basePath}/confirm`) },
          200,
        )
      }
      case 'twoFactorRequired':
        setPipeline(x, step.resumeHandle)
        await applyEffects(x, step.session)
        if (options.twoFactorUrl) return redirect(x, options.twoFactorUrl)
        return page(x, { page: 'two-factor', resumeUrl: `${basePath}/resume` }, 200)
      case 'signedIn':
      case 'setupComplete':
        await applyEffects(x, withClearPipeline(step))
        return redirect(x, step.redirect)
    }
  }

  // ------------------------------------------------------------------ routes
  // To serve another route, add a row. `csrf: true` routes accept only same-origin POSTs carrying
  // the form token; an IdP's cross-site form post (the ACS) is `csrf: false` and protected by the
  // pipeline binding, its RelayState and InResponseTo. SameSite=Lax cookies are not sent on a
  // cross-site POST: the ACS re-posts same-origin before it reads any of them.
  const routes: Route<C>[] = [
    {
      method: 'GET',
      path: ['login', ':org'],
      name: 'login',
      csrf: false,
      async handle(x, params) {
        const slug = segment(params.org ?? '')
        if (slug === null) return errorPage(x, authError('INPUT_INVALID', { details: { field: 'org' } }))
        x.slug = slug
        const query = parseQuery(x.url)
        if (query.isErr()) return errorPage(x, query.error)
        const organizationId = await resolveOrganization(slug, { request: x.request, context: x.context })
        if (organizationId === null) return errorPage(x, authError('ORGANIZATION_NOT_FOUND'))
        const session = await sessionOf(x)
        const q = query.value
        return respond(x, sso.beginLogin({ organizationId, session, next: q.next ?? null, loginHint: q.login_hint ?? q.email ?? null }))
      },
    },
    {
      // "Sign in with your work email" (issue 13): the org is found from the address's verified
      // domain. Every failure to find exactly one org is the same DOMAIN_UNKNOWN page.
      method: 'GET',
      path: ['login'],
      name: 'login',
      csrf: false,
      async handle(x) {
        const query = parseQuery(x.url)
        if (query.isErr()) return errorPage(x, query.error)
        const q = query.value
        if (typeof q.email !== 'string' || q.email.trim() === '') {
          return errorPage(x, authError('INPUT_INVALID', { message: 'Enter your work email address.', details: { field: 'email' } }))
        }
        const session = await sessionOf(x)
        return respond(x, sso.beginLogin({ email: q.email, session, next: q.next ?? null }))
      },
    },
    {
      method: 'GET',
      path: ['setup', ':org'],
      name: 'setup',
      csrf: false,
      async handle(x, params) {
        const slug = segment(params.org ?? '')
        if (slug === null) return errorPage(x, authError('INPUT_INVALID', { details: { field: 'org' } }))
        const query = parseQuery(x.url)
        if (query.isErr()) return errorPage(x, query.error)
        const providerKey = query.value.provider
        if (!providerKey || providerKey.length > LIMITS.id)
          return errorPage(x, authError('INPUT_INVALID', { details: { field: 'provider' } }))
        const organizationId = await resolveOrganization(slug, { request: x.request, context: x.context })
        if (organizationId === null) return errorPage(x, authError('ORGANIZATION_NOT_FOUND'))
        const session = await sessionOf(x)
        return respond(x, sso.beginSetup({ organizationId, providerKey, session }))
      },
    },
    {
      method: 'ANY',
      path: ['callback'],
      name: 'callback',
      csrf: true,
      body: { maxBodyBytes: maxFormBytes, maxValueLength: maxFormBytes },
      async handle(x, _params, body) {
        const handle = pipelineHandle(x)
        if (handle === null) return errorPage(x, authError('STATE_NOT_FOUND', { details: { reason: 'no-pipeline-cookie' } }))
        const query = parseQuery(x.url)
        if (query.isErr()) return errorPage(x, query.error)
        const { [CSRF_FIELD]: _csrf, ...fields } = body
        const session = await sessionOf(x)
        return respond(x, sso.advance({ handle, session, request: { method: x.method, query: query.value, form: fields } }))
      },
    },
    {
      // An IdP's form post (the SAML HTTP-POST binding), per org. It arrives cross-site, so the
      // browser sent none of our SameSite=Lax cookies: the fields go back to the browser in a
      // same-origin re-post page (nothing read, written or set on that hop), and the re-post,
      // which carries the cookies, finishes: with a RelayState in the pipeline of this browser
      // (the provider checks that the RelayState and InResponseTo are that pipeline's), without
      // one as an unsolicited response (refused unless the org's provider enables them).
      method: 'POST',
      path: ['acs', ':org'],
      name: 'acs',
      csrf: false,
      body: { maxBodyBytes: maxAcsBodyBytes, maxValueLength: maxAcsBodyBytes, maxParams: 8 },
      async handle(x, params, body) {
        const slug = segment(params.org ?? '')
        if (slug === null) return errorPage(x, authError('INPUT_INVALID', { details: { field: 'org' } }))
        x.slug = slug
        const samlResponse = body.SAMLResponse
        if (typeof samlResponse !== 'string' || samlResponse.length === 0) {
          return errorPage(x, authError('INPUT_INVALID', { redirect: 'orgLogin', details: { field: 'SAMLResponse' } }))
        }
        const relayState = body.RelayState ?? ''
        if (relayState.length > MAX_RELAY_STATE) {
          return errorPage(x, authError('RELAY_STATE_INVALID', { redirect: 'orgLogin', details: { reason: 'too-long' } }))
        }
        if (crossSite(x.request)) {
          // A re-post that still arrives cross-site (a sandboxed frame, a broken browser) is
          // refused rather than re-posted again.
          if (body[REPOST_FIELD] !== undefined) return errorPage(x, authError('CROSS_SITE_REQUEST', { details: { reason: 'repost' } }))
          const fields: Record<string, string> =
            relayState === '' ? { SAMLResponse: samlResponse } : { SAMLResponse: samlResponse, RelayState: relayState }
          return repostPage(x, `${basePath}/acs/${encodeURIComponent(slug)}`, fields)
        }
        const organizationId = await resolveOrganization(slug, { request: x.request, context: x.context })
        if (organizationId === null) return errorPage(x, authError('ORGANIZATION_NOT_FOUND'))
        const session = await sessionOf(x)
        if (relayState === '') {
          const request = { method: 'POST' as const, query: {}, form: { SAMLResponse: samlResponse } }
          return respond(x, sso.beginUnsolicitedLogin({ organizationId, session, request }))
        }
        // A RelayState is ours only in the browser whose pipeline holds it.
        const handle = pipelineHandle(x)
        if (handle === null) {
          return errorPage(x, authError('RELAY_STATE_INVALID', { redirect: 'orgLogin', details: { reason: 'no-pipeline' } }))
        }
        const request = { method: 'POST' as const, query: {}, form: { SAMLResponse: samlResponse, RelayState: relayState } }
        return respond(x, sso.advance({ handle, session, request }))
      },
    },
    {
      // The provider's document for the IdP's admin (SAML SP metadata): public, no session.
      method: 'GET',
      path: ['metadata', ':org'],
      name: 'metadata',
      csrf: false,
      async handle(x, params) {
        const slug = segment(params.org ?? '')
        if (slug === null) return errorPage(x, authError('INPUT_INVALID', { details: { field: 'org' } }))
        const query = parseQuery(x.url)
        if (query.isErr()) return errorPage(x, query.error)
        const providerKey = query.value.provider ?? metadataProvider
        if (providerKey.length === 0 || providerKey.length > LIMITS.id)
          return errorPage(x, authError('INPUT_INVALID', { details: { field: 'provider' } }))
        const organizationId = await resolveOrganization(slug, { request: x.request, context: x.context })
        if (organizationId === null) return errorPage(x, authError('ORGANIZATION_NOT_FOUND'))
        const document = await sso.serviceMetadata({ organizationId, providerKey })
        if (document.isErr()) return errorPage(x, document.error)
        const response = new Response(document.value.body, {
          status: 200,
          headers: { 'content-type': document.value.contentType, 'content-security-policy': DOCUMENT_CSP },
        })
        return finalize(x, response, 200, null)
      },
    },
    {
      method: 'POST',
      path: ['confirm'],
      name: 'confirm',
      csrf: true,
      async handle(x, _params, body) {
        const handle = pipelineHandle(x)
        if (handle === null) return errorPage(x, authError('STATE_NOT_FOUND', { details: { reason: 'no-pipeline-cookie' } }))
        const op = body.op
        if (op !== 'confirm' && op !== 'newuser') return errorPage(x, authError('OP_NOT_ALLOWED', { details: { field: 'op' } }))
        const session = await sessionOf(x)
        return respond(x, sso.finishLogin({ handle, session, op }))
      },
    },
    {
      method: 'GET',
      path: ['verify', ':token'],
      name: 'verify',
      csrf: false,
      async handle(x, params) {
        const token = segment(params.token ?? '')
        if (token === null || !TOKEN.test(token)) return errorPage(x, authError('VERIFICATION_INVALID'))
        const session = await sessionOf(x, token)
        const verified = await sso.verifyAccountLink({ token, session })
        if (verified.isErr()) return errorPage(x, verified.error)
        const handle = pipelineHandle(x)
        if (handle === null) {
          // The link was opened in another browser than the one that started the sign-in: the
          // pipeline (and its binding) lives there. Nothing is consumed.
          return errorPage(x, authError('STATE_NOT_FOUND', { details: { reason: 'open-link-in-same-browser' } }))
        }
        setCookie(x, names.verify, token, VERIFY_COOKIE_SECONDS)
        return respond(x, sso.finishLogin({ handle, session }))
      },
    },
    {
      method: 'GET',
      path: ['resume'],
      name: 'resume',
      csrf: false,
      async handle(x) {
        const handle = pipelineHandle(x)
        if (handle === null) return errorPage(x, authError('STATE_NOT_FOUND', { details: { reason: 'no-pipeline-cookie' } }))
        const session = await sessionOf(x)
        return respond(x, sso.finishLogin({ handle, session }))
      },
    },
    {
      method: 'GET',
      path: ['error'],
      name: 'error',
      csrf: false,
      async handle(x) {
        const raw = x.url.searchParams.get('code') ?? ''
        const code: AuthErrorCode = Object.hasOwn(ERROR_CODES, raw) ? (raw as AuthErrorCode) : 'INTERNAL_ERROR'
        const status = statusFor(code)
        return page(x, { page: 'error', status, code, message: ERROR_CODES[code], backUrl: homeUrl, error: null }, status)
      },
    },
    {
      method: 'GET',
      path: ['ssoflow.css'],
      name: 'stylesheet',
      csrf: false,
      async handle(x) {
        const response = new Response(DEFAULT_STYLESHEET, {
          headers: { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600' },
        })
        return finalize(x, response, 200, null)
      },
    },
  ]

  const match = (segments: readonly string[]): { route: Route<C>; params: Record<string, string> }[] => {
    const found: { route: Route<C>; params: Record<string, string> }[] = []
    for (const route of routes) {
      if (route.path.length !== segments.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < route.path.length; i++) {
        const want = route.path[i] as string
        const got = segments[i] as string
        if (want.startsWith(':')) params[want.slice(1)] = got
        else if (want !== got) {
          ok = false
          break
        }
      }
      if (ok) found.push({ route, params })
    }
    return found
  }

  /** Same-origin POST checks: `Sec-Fetch-Site` and `Origin`, when the browser sends them. */
  const crossSite = (request: Request): boolean => {
    const site = request.headers.get('sec-fetch-site')
    if (site !== null && site !== 'same-origin') return true
    const from = request.headers.get('origin')
    if (from !== null && from !== origin) return true
    return false
  }

  const underBase = (pathname: string): string | null => {
    if (basePath === '') return pathname
    if (pathname === basePath) return '/'
    return pathname.startsWith(`${basePath}/`) ? pathname.slice(basePath.length) : null
  }

  const serve = async (x: Exchange<C>): Promise<Response> => {
    const rest = underBase(x.url.pathname)
    if (rest === null) return errorPage(x, authError('ROUTE_NOT_FOUND'))
    const segments = rest.split('/').filter((s, i, all) => s.length > 0 || (i > 0 && i < all.length - 1))
    const found = match(segments)
    if (found.length === 0) return errorPage(x, authError('ROUTE_NOT_FOUND'))
    const hit = found.find((f) => f.route.method === 'ANY' || f.route.method === x.method)
    if (!hit) {
      const response = await errorPage(x, authError('ROUTE_NOT_FOUND', { details: { reason: 'method' } }), 405)
      response.headers.set('allow', [...new Set(found.map((f) => (f.route.method === 'ANY' ? 'GET, POST' : f.route.method)))].join(', '))
      return response
    }
    x.route = hit.route.name
    let body: Readonly<Record<string, string>> = {}
    if (x.method === 'POST') {
      if (hit.route.csrf && crossSite(x.request)) return errorPage(x, authError('CROSS_SITE_REQUEST'))
      const parsed = await readForm(x.request, hit.route.body ?? { maxBodyBytes })
      if (parsed.isErr()) return errorPage(x, parsed.error)
      body = parsed.value
      if (hit.route.csrf) {
        const pipeline = pipelineCookie(x)
        const sent = body[CSRF_FIELD]
        if (pipeline === null) return errorPage(x, authError('STATE_NOT_FOUND', { details: { reason: 'no-pipeline-cookie' } }))
        if (typeof sent !== 'string' || pipeline.csrf === null || !timingSafeEqual(sent, pipeline.csrf)) {
          return errorPage(x, authError('CSRF_INVALID'))
        }
      }
    }
    return hit.route.handle(x, hit.params, body)
  }

  const fetchImpl = async (request: Request, context: C): Promise<Response> => {
    const x: Exchange<C> = {
      request,
      context,
      url: new URL('http://invalid/'),
      method: 'GET',
      cookies: new Map(),
      setCookies: new Map(),
      extraHeaders: [],
      route: 'unknown',
      step: null,
      slug: null,
    }
    try {
      if (request.url.length > MAX_URL_LENGTH)
        return await errorPage(x, authError('INPUT_INVALID', { details: { reason: 'url-too-long' } }), 414)
      ;(x as { url: URL }).url = new URL(request.url)
      const method = request.method.toUpperCase()
      if (method !== 'GET' && method !== 'POST') {
        const response = await errorPage(x, authError('ROUTE_NOT_FOUND', { details: { reason: 'method' } }), 405)
        response.headers.set('allow', 'GET, POST')
        return response
      }
      ;(x as { method: Method }).method = method === 'POST' ? 'POST' : 'GET'
      for (const [k, v] of parseCookies(request.headers.get('cookie'))) x.cookies.set(k, v)
      return await serve(x)
    } catch (cause) {
      // A host hook threw (or a bug): answer 500 with a fresh exchange so that no half-set
      // cookie or session header leaks out.
      const clean: Exchange<C> = { ...x, setCookies: new Map(), extraHeaders: [] }
      const error = authError('INTERNAL_ERROR', { cause })
      try {
        return await errorPage(clean, error)
      } catch {
        return finalize(
          clean,
          new Response(ERROR_CODES.INTERNAL_ERROR, { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } }),
          500,
          error,
        )
      }
    }
  }

  return {
    fetch: fetchImpl,
    basePath,
    origin,
    maxBodyBytes,
    maxFormBytes,
    maxAcsBodyBytes,
    matches(input) {
      let pathname: string
      try {
        pathname =
          typeof input === 'string' ? new URL(input, origin).pathname : input instanceof URL ? input.pathname : new URL(input.url).pathname
      } catch {
        return false
      }
      return underBase(pathname) !== null
    },
    loginUrl(slug, opts = {}) {
      const params = new URLSearchParams()
      if (opts.next) params.set('next', opts.next)
      if (opts.loginHint) params.set('login_hint', opts.loginHint)
      const qs = params.toString()
      return `${basePath}/login/${encodeURIComponent(slug)}${qs ? `?${qs}` : ''}`
    },
    setupUrl(slug, providerKey) {
      return `${basePath}/setup/${encodeURIComponent(slug)}?provider=${encodeURIComponent(providerKey)}`
    },
    acsUrl(slug) {
      return `${origin}${basePath}/acs/${encodeURIComponent(slug)}`
    },
    metadataUrl(slug) {
      return `${origin}${basePath}/metadata/${encodeURIComponent(slug)}`
    },
  }
}

/** The effects of a final outcome; the handler always drops the pipeline cookie after one. */
function withClearPipeline(step: LoginOutcome | SetupOutcome): readonly SessionEffect[] {
  return step.session.some((e) => e.type === 'clearPipeline') ? step.session : [...step.session, { type: 'clearPipeline' }]
}

/** The engine's session from the host's and the handler's parts. */
function toSessionInfo(id: string, host: HostSession, verificationToken: string | null): SessionInfo {
  const userId = typeof host.userId === 'string' && host.userId.length > 0 ? host.userId : null
  const twoFactorUserId = typeof host.twoFactorUserId === 'string' && host.twoFactorUserId.length > 0 ? host.twoFactorUserId : null
  return {
    id,
    userId,
    twoFactorUserId,
    invite: host.invite ?? null,
    verificationToken,
    ip: host.ip ?? null,
  }
}

const FIELD_TYPES = new Set(['text', 'email', 'url', 'password', 'checkbox', 'select', 'textarea'])
const TITLES: Readonly<Record<string, string>> = {
  'oidc-setup-form': 'Configure OpenID Connect',
  'saml-setup-form': 'Configure SAML 2.0',
  'dummy-form': 'Dummy identity provider',
}

function str(v: JsonValue | undefined, max = 1000): string | null {
  return typeof v === 'string' ? v.slice(0, max) : null
}

function objects(v: JsonValue | undefined, max: number): Record<string, JsonValue>[] {
  if (!Array.isArray(v)) return []
  return v.slice(0, max).flatMap((o) => (o !== null && typeof o === 'object' && !Array.isArray(o) ? [o] : []))
}

/**
 * The page model of a provider form, from the provider's (trusted, but loosely typed) model:
 * `fields` (`name`, `label`, `type`, `required`, `value`, `options`, `hint`), and the OIDC setup
 * form's `errors` (`{ field, message }`, `field` null for the whole form), `suggestions`
 * (`{ field, value, message }`) and `notice`; a plain `error` string is a form-level error.
 *
 * @example
 * ```ts
 * import { providerForm, renderDefaultPage } from 'ssoflow/http'
 *
 * // Without the handler: show a provider step's `render` outcome (view + model) with the default page.
 * const page = providerForm(
 *   'oidc-setup-form',
 *   { fields: [{ name: 'issuer', label: 'Issuer URL', type: 'url', required: true }], errors: [{ field: 'issuer', message: 'Not reachable' }] },
 *   { action: '/auth/sso/', csrfField: 'csrf', csrf: 'token-bound-to-the-pipeline' },
 * )
 * console.log(page.fields[0]?.error) // 'Not reachable'
 * const html = renderDefaultPage(page, '/auth/sso/ssoflow.css')
 * ```
 * @group HTTP
 */
export function providerForm(view: string, model: JsonObject, form: PageForm): ProviderFormPageView {
  const errors = objects(model.errors, 20)
  const suggestions = objects(model.suggestions, 20)
  const fields: PageField[] = []
  for (const raw of objects(model.fields, 32)) {
    const name = str(raw.name, 64)
    if (!name || !/^[A-Za-z0-9_.-]+$/.test(name) || name === CSRF_FIELD) continue
    const type = str(raw.type) ?? 'text'
    fields.push({
      name,
      label: str(raw.label, 200) ?? name,
      type: (FIELD_TYPES.has(type) ? type : 'text') as PageField['type'],
      required: raw.required === true,
      value: str(raw.value, 2048) ?? '',
      options: objects(raw.options, 50).flatMap((o) => {
        const value = str(o.value, 200)
        return value === null ? [] : [{ value, label: str(o.label, 200) ?? value }]
      }),
      hint: str(raw.hint, 500),
      error: str(raw.error, 500) ?? errors.map((x) => (x.field === name ? str(x.message, 500) : null)).find((m) => m !== null) ?? null,
      suggestions: suggestions.flatMap((x) => {
        const value = str(x.value, 500)
        return x.field === name && value !== null ? [{ value, message: str(x.message, 500) ?? '' }] : []
      }),
    })
  }
  const names = new Set(fields.map((f) => f.name))
  const formErrors = errors.flatMap((x) => {
    const message = str(x.message, 500)
    return message !== null && (typeof x.field !== 'string' || !names.has(x.field)) ? [message] : []
  })
  const single = str(model.error, 500)
  return {
    page: 'provider-form',
    view,
    title: str(model.title, 200) ?? TITLES[view] ?? 'Sign in',
    fields,
    errors: errors.length === 0 && single !== null ? [single] : formErrors,
    notice: str(model.notice, 1000),
    form,
  }
}
