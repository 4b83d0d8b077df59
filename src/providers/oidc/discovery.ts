/**
 * OpenID Provider discovery (OIDC Discovery 1.0 section 4) with the checks ssoflow adds: every
 * endpoint passes the address policy, a JWKS is named, ID-token algorithms are asymmetric, and
 * what the document says about PKCE and client authentication is read as RFC 8414 defines it.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { type AddressPolicy, checkUrl, UrlRefusedError } from '../../net/policy.js'
import { MAX_ISSUER_LENGTH, type OidcClientAuthMethod } from './config.js'
import { CheckFailed, idpCode } from './errors.js'

/**
 * ID-token signing algorithms ssoflow verifies (against the provider's JWKS). `none` and the
 * HMAC algorithms (HS256/384/512, keyed with the client secret) are never accepted.
 */
export const ID_TOKEN_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]

/** What discovery found out, checked. */
export interface Discovered {
  /** The metadata; `id_token_signing_alg_values_supported` reduced to {@link ID_TOKEN_ALGORITHMS}. */
  readonly as: oauth.AuthorizationServer
  /** True when `code_challenge_methods_supported` lists S256 (RFC 8414 2: omitted means not supported). */
  readonly pkce: boolean
  /**
   * The client authentication methods ssoflow implements that the document advertises, in the
   * document's order; `['client_secret_basic']` when `token_endpoint_auth_methods_supported` is
   * omitted (RFC 8414 2 default).
   */
  readonly clientAuthMethods: readonly OidcClientAuthMethod[]
}

/** The document names another issuer than the one asked for (OIDC Discovery 4.3). */
export class IssuerMismatch extends CheckFailed {
  /** The issuer the document names, when it is a usable URL (kept out of error details). */
  readonly advertised: string | null
  constructor(advertised: string | null, cause: unknown) {
    super('discovery-issuer', cause)
    this.name = 'IssuerMismatch'
    this.advertised = advertised
  }
}

/** A usable issuer string from a document: a URL, printable ASCII, bounded; else null. */
function usableIssuer(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ISSUER_LENGTH) return null
  if (!/^[\x21-\x7e]+$/.test(value)) return null
  try {
    new URL(value)
  } catch {
    return null
  }
  return value
}

const ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const

/** Options of {@link createDiscovery}. */
export interface DiscoveryOptions {
  readonly policy: AddressPolicy
  readonly http: () => oauth.DiscoveryRequestOptions
  readonly cacheMs: number
}

/** Discovery with a per-issuer cache (bounded to 100 issuers, oldest dropped first). */
export function createDiscovery(options: DiscoveryOptions): { discover(issuer: string, advertised?: string): Promise<Discovered> } {
  const cache = new Map<string, { value: Discovered; at: number }>()

  async function load(issuer: string, advertised: string): Promise<Discovered> {
    const checked = await checkUrl(issuer, options.policy, { field: 'issuer' })
    if (checked.isErr()) throw new UrlRefusedError(checked.error)
    const url = checked.value.url
    const res = await oauth.discoveryRequest(url, options.http())
    let as: oauth.AuthorizationServer
    try {
      // A multi-tenant Entra document names the `{tenantid}` template, not its own address.
      as = await oauth.processDiscoveryResponse(advertised === issuer ? url : new URL(advertised), res)
    } catch (e) {
      if (e instanceof oauth.OperationProcessingError && e.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
        const body = (e.cause as { body?: { issuer?: unknown } } | undefined)?.body
        throw new IssuerMismatch(usableIssuer(body?.issuer), e)
      }
      throw e
    }
    for (const attribute of ENDPOINTS) {
      if (typeof as[attribute] !== 'string' || (as[attribute] as string).length > MAX_ISSUER_LENGTH) {
        throw new CheckFailed('discovery-document', new oauth.UnsupportedOperationError(`discovery document lacks ${attribute}`), {
          attribute,
        })
      }
    }
    const urls: [string, string][] = ENDPOINTS.map((a) => [a, as[a] as string])
    if (as.userinfo_endpoint !== undefined) {
      if (typeof as.userinfo_endpoint !== 'string') {
        throw new CheckFailed('discovery-document', new oauth.UnsupportedOperationError('userinfo_endpoint is not a string'), {
          attribute: 'userinfo_endpoint',
        })
      }
      urls.push(['userinfo_endpoint', as.userinfo_endpoint])
    }
    const results = await Promise.all(urls.map(([field, value]) => checkUrl(value, options.policy, { field })))
    for (const result of results) if (result.isErr()) throw new UrlRefusedError(result.error)

    const advertisedAlgs = as.id_token_signing_alg_values_supported
    let algs: string[] | undefined
    if (Array.isArray(advertisedAlgs)) {
      algs = ID_TOKEN_ALGORITHMS.filter((a) => advertisedAlgs.includes(a))
      if (algs.length === 0) {
        const advertised = advertisedAlgs
          .map(idpCode)
          .filter((a): a is string => a !== null)
          .slice(0, 10)
        throw new CheckFailed('id-token-alg', new oauth.UnsupportedOperationError('no asymmetric ID token signing algorithm'), {
          advertised,
        })
      }
    }
    const methods = as.code_challenge_methods_supported
    const pkce = Array.isArray(methods) && methods.includes('S256')
    const advertisedAuth = as.token_endpoint_auth_methods_supported
    const clientAuthMethods: OidcClientAuthMethod[] = Array.isArray(advertisedAuth)
      ? advertisedAuth.filter((m): m is OidcClientAuthMethod => m === 'client_secret_basic' || m === 'client_secret_post')
      : ['client_secret_basic']
    return {
      as: algs ? { ...as, id_token_signing_alg_values_supported: algs } : as,
      pkce,
      clientAuthMethods: [...new Set(clientAuthMethods)],
    }
  }

  return {
    async discover(issuer: string, advertised: string = issuer): Promise<Discovered> {
      const hit = cache.get(issuer)
      if (hit && Date.now() - hit.at < options.cacheMs) return hit.value
      const value = await load(issuer, advertised)
      cache.delete(issuer)
      if (cache.size >= 100) cache.delete(cache.keys().next().value as string)
      cache.set(issuer, { value, at: Date.now() })
      return value
    },
  }
}
