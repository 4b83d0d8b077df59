/**
 * Token-endpoint client authentication: the two client-secret methods, the order setup tries
 * them in, and which token-endpoint failures mean "wrong method" (issue 17 item 1).
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { OIDC_CLIENT_AUTH_METHODS, type OidcClientAuthMethod } from './config.js'
import { endpointFailure } from './errors.js'

/**
 * application/x-www-form-urlencoded serialization of one value, as URLSearchParams does it
 * (WHATWG URL, the serializer RFC 6749 2.3.1 points at through HTML): letters, digits and
 * `*-._` stay as they are, space becomes `+`, every other byte of the UTF-8 encoding is
 * percent-encoded. oauth4webapi's own client_secret_basic also escapes `-._~!*'()`, which an
 * authorization server that compares the Basic credentials without decoding them refuses.
 */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1)
}

/** client_secret_basic with the encoding of {@link formEncode}. */
function clientSecretBasic(secret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set('authorization', `Basic ${btoa(`${formEncode(client.client_id)}:${formEncode(secret)}`)}`)
  }
}

/** The oauth4webapi client authentication for a method. */
export function clientAuthFor(method: OidcClientAuthMethod, secret: string): oauth.ClientAuth {
  return method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : clientSecretBasic(secret)
}

/**
 * The methods setup tries, in order: the admin's choice alone, or (automatic) the first method
 * the discovery document advertises and then the other one, since discovery describes the whole
 * server and not how this client was registered.
 */
export function attemptOrder(choice: OidcClientAuthMethod | 'auto', advertised: readonly OidcClientAuthMethod[]): OidcClientAuthMethod[] {
  if (choice !== 'auto') return [choice]
  const first = advertised[0] ?? 'client_secret_basic'
  return [first, ...OIDC_CLIENT_AUTH_METHODS.filter((m) => m !== first)]
}

/** One failed attempt, as shown to the admin. */
export interface FailedAttempt {
  readonly method: OidcClientAuthMethod
  readonly status: number
  readonly error: string | null
}

/**
 * True when a token-endpoint failure says the client authentication was refused: HTTP 400,
 * 401 or 403 with `invalid_client` or `unauthorized_client` (RFC 6749 5.2), or a 401
 * challenge without an error code.
 */
export function isClientAuthFailure(e: unknown): FailedAttemptFields | null {
  const failure = endpointFailure(e)
  if (!failure) return null
  if (![400, 401, 403].includes(failure.status)) return null
  if (failure.error === 'invalid_client' || failure.error === 'unauthorized_client') return failure
  if (failure.error === null && failure.status === 401) return failure
  return null
}

/** Status and error of a failure that {@link isClientAuthFailure} accepted. */
export interface FailedAttemptFields {
  readonly status: number
  readonly error: string | null
  readonly description: string | null
}

/** True when the token endpoint says the code is no longer valid (spent by an earlier attempt). */
export function isInvalidGrant(e: unknown): boolean {
  return endpointFailure(e)?.error === 'invalid_grant'
}
