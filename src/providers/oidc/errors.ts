/**
 * OIDC failures as {@link AuthError} values: what oauth4webapi and fetch threw, mapped to stable
 * codes with bounded machine-readable details, and the "likely cause" an admin is shown.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { type AuthError, authError } from '../../errors.js'
import { UrlRefusedError } from '../../net/policy.js'

/** An IdP response body over `maxResponseBytes`. */
export class ResponseTooLarge extends Error {
  constructor() {
    super('identity provider response exceeds the size limit')
    this.name = 'ResponseTooLarge'
  }
}

/** The IdP answered with a 5xx status: it is down or overloaded, so retrying may help. */
export class ServerError extends Error {
  readonly status: number
  constructor(status: number) {
    super(`identity provider answered HTTP ${status}`)
    this.name = 'ServerError'
    this.status = status
  }
}

/** A failure of one named check (ID token signature, algorithm, userinfo subject...). */
export class CheckFailed extends Error {
  readonly check: string
  readonly extra: Readonly<Record<string, unknown>>
  constructor(check: string, cause: unknown, extra: Readonly<Record<string, unknown>> = {}) {
    super(`OIDC check failed: ${check}`, { cause })
    this.name = 'CheckFailed'
    this.check = check
    this.extra = extra
  }
}

/** A bounded machine code from the IdP (`invalid_client`...), or null. */
export function idpCode(value: unknown): string | null {
  return typeof value === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(value) ? value : null
}

/**
 * Provider text made safe to carry in details and show as plain text: control and format
 * characters and angle brackets removed, whitespace collapsed, at most 300 characters. Hosts
 * still render it as text, never as HTML.
 */
export function providerText(value: unknown): string | null {
  if (typeof value !== 'string') return null
  const clean = value
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, ' ')
    .replace(/[<>]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
  if (clean === '') return null
  return Array.from(clean).slice(0, 300).join('')
}

/** The HTTP status of a response-shaped cause, if any. */
function statusOf(value: unknown): number | null {
  if (typeof value === 'object' && value !== null && typeof (value as { status?: unknown }).status === 'number') {
    return (value as { status: number }).status
  }
  return null
}

/** The error parameter of a WWW-Authenticate challenge, if any. */
function challengeError(e: oauth.WWWAuthenticateChallengeError): string | null {
  for (const challenge of e.cause) {
    const code = idpCode(challenge.parameters.error)
    if (code) return code
  }
  return null
}

/** Status and OAuth error code of a token-endpoint failure, or null when it is not one. */
export function endpointFailure(e: unknown): { status: number; error: string | null; description: string | null } | null {
  if (e instanceof oauth.ResponseBodyError) {
    return { status: e.status, error: idpCode(e.error), description: providerText(e.error_description) }
  }
  if (e instanceof oauth.WWWAuthenticateChallengeError) {
    const description = e.cause.map((c) => c.parameters.error_description).find((d) => typeof d === 'string')
    return { status: e.status, error: challengeError(e), description: providerText(description) }
  }
  return null
}

/**
 * Maps anything oauth4webapi or fetch threw to an {@link AuthError}. Details carry bounded
 * machine codes; the IdP's `error_description` is carried as `details.idpErrorDescription`
 * (plain text, control characters removed, at most 300 characters) and its raw body stays in
 * `cause`. An HTTP 5xx from the IdP is `PROVIDER_UNAVAILABLE` (retryable).
 *
 * @example
 * ```ts
 * import { mapOidcError } from 'ssoflow/oidc'
 *
 * // A host job calling the IdP itself (its userinfo endpoint), failing the way ssoflow's provider does.
 * async function userinfo(url: string, accessToken: string) {
 *   try {
 *     return await fetch(url, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(5000) })
 *   } catch (error) {
 *     return mapOidcError(error, 'userinfo') // PROVIDER_UNAVAILABLE, details { stage: 'userinfo', reason: 'timeout' }
 *   }
 * }
 * mapOidcError(new TypeError('fetch failed'), 'token').details // { stage: 'token', reason: 'network' }
 * ```
 * @group Providers
 */
export function mapOidcError(e: unknown, stage: string): AuthError {
  if (e instanceof UrlRefusedError) {
    return authError(e.error.code, { message: e.error.message, details: { stage, ...e.error.details }, cause: e.error.cause })
  }
  if (e instanceof CheckFailed) {
    const inner = mapOidcError(e.cause, stage)
    return authError(inner.code, { message: inner.message, details: { ...inner.details, check: e.check, ...e.extra }, cause: e.cause })
  }
  if (e instanceof oauth.AuthorizationResponseError) {
    const description = providerText(e.error_description)
    return authError('PROVIDER_ERROR', {
      cause: e,
      details: { stage, idpError: idpCode(e.error), ...(description ? { idpErrorDescription: description } : {}) },
    })
  }
  const failure = endpointFailure(e)
  if (failure) {
    const details = {
      stage,
      status: failure.status,
      idpError: failure.error,
      ...(failure.description ? { idpErrorDescription: failure.description } : {}),
    }
    return authError(failure.status >= 500 ? 'PROVIDER_UNAVAILABLE' : 'PROVIDER_ERROR', { cause: e, details })
  }
  if (e instanceof ServerError) {
    return authError('PROVIDER_UNAVAILABLE', { cause: e, details: { stage, reason: 'server-error', status: e.status } })
  }
  if (e instanceof ResponseTooLarge) {
    return authError('PROVIDER_RESPONSE_INVALID', { cause: e, details: { stage, reason: 'too-large' } })
  }
  if (e instanceof oauth.OperationProcessingError || e instanceof oauth.UnsupportedOperationError) {
    const status = statusOf(e.cause)
    if (status !== null && status >= 500) {
      return authError('PROVIDER_UNAVAILABLE', { cause: e, details: { stage, reason: 'status', status } })
    }
    // oauth4webapi's algorithm check: the JWT "alg" is not one the metadata (or RS256) allows.
    const algCheck = typeof e.cause === 'object' && e.cause !== null && 'header' in e.cause && 'expected' in e.cause
    return authError('PROVIDER_RESPONSE_INVALID', {
      cause: e,
      details: {
        stage,
        reason: e.code ?? 'invalid',
        ...(status !== null ? { status } : {}),
        ...(algCheck ? { check: 'id-token-alg' } : {}),
      },
    })
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

/**
 * Why an error from the provider's authorization endpoint most likely happened, as a stable
 * code (`details.likelyCause`) and the sentence shown to an admin.
 */
export function authorizationErrorCause(
  error: string | null,
  description: string | null,
  sent: { readonly pkce: boolean; readonly redirectUri: string; readonly scopes: string },
): { code: string; text: string } {
  const about = (description ?? '').toLowerCase()
  if (sent.pkce && (about.includes('code_challenge') || about.includes('pkce') || (error === 'invalid_request' && about === ''))) {
    return {
      code: 'pkce-refused',
      text:
        'ssoflow sent PKCE (code_challenge, method S256) because the provider advertises S256 in code_challenge_methods_supported. ' +
        'Enable PKCE with S256 for this client at the provider, or stop advertising it there.',
    }
  }
  if (about.includes('redirect')) {
    return { code: 'redirect-uri', text: `Register exactly ${sent.redirectUri} as a redirect URI of this client at the provider.` }
  }
  switch (error) {
    case 'unauthorized_client':
      return {
        code: 'client-not-allowed',
        text: 'The client is not allowed to use the authorization code flow: enable the "authorization code" grant for it at the provider.',
      }
    case 'invalid_scope':
      return {
        code: 'scope',
        text: `The provider refused the scopes "${sent.scopes}": allow them for this client, or change the scopes option.`,
      }
    case 'access_denied':
      return {
        code: 'access-denied',
        text: 'The sign-in was cancelled or refused: check that your account is assigned to this application at the provider.',
      }
    case 'invalid_client':
      return { code: 'client-id', text: 'The provider does not know this client ID: check the client ID.' }
    case 'login_required':
    case 'consent_required':
    case 'interaction_required':
    case 'account_selection_required':
      return {
        code: 'interaction',
        text: 'The provider needs you to sign in or consent: start again and complete the sign-in at the provider.',
      }
    case 'server_error':
    case 'temporarily_unavailable':
      return { code: 'provider-unavailable', text: 'The provider reported a problem on its side: try again later.' }
    case 'invalid_request':
      return {
        code: 'invalid-request',
        text: 'The provider refused the sign-in request: check the client ID and the redirect URI registered at the provider.',
      }
    default:
      return { code: 'unknown', text: 'Check the client settings at the provider.' }
  }
}
