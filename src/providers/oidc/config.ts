/**
 * The stored OIDC provider config (the auth provider row's `config`) and its parsing.
 *
 * @module
 */

import type { JsonObject } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'

/**
 * How ssoflow authenticates to the token endpoint (RFC 6749 2.3.1, OIDC Core 9).
 * - `client_secret_basic`: HTTP Basic with the client id and secret form-encoded first
 *   (RFC 6749 2.3.1) the way URLSearchParams does it, so letters, digits and `-._*` are sent as
 *   they are.
 * - `client_secret_post`: `client_id` and `client_secret` in the form body.
 * @group Providers
 */
export type OidcClientAuthMethod = 'client_secret_basic' | 'client_secret_post'

/** The client authentication methods ssoflow can use, in its default preference order. @group Providers */
export const OIDC_CLIENT_AUTH_METHODS: readonly OidcClientAuthMethod[] = ['client_secret_basic', 'client_secret_post']

/** Stored provider config (the auth provider row's `config`). @group Providers */
export interface OidcConfig {
  /** The issuer exactly as the provider's discovery document names it. */
  readonly issuer: string
  readonly clientId: string
  /** Secret: removed by `redactConfig`. */
  readonly clientSecret: string
  /** The token-endpoint client authentication that worked during setup; logins and refresh use it. */
  readonly clientAuth: OidcClientAuthMethod
}

/** Longest issuer accepted. */
export const MAX_ISSUER_LENGTH = 2048
/** Longest client secret accepted. */
export const MAX_SECRET_LENGTH = 1024

/** A non-empty string of at most `max` characters, else null. */
export function boundedString(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= max ? value : null
}

/** True for a client authentication method ssoflow implements. */
export function isClientAuthMethod(value: unknown): value is OidcClientAuthMethod {
  return value === 'client_secret_basic' || value === 'client_secret_post'
}

/**
 * Reads a config object; null when malformed.
 *
 * @example
 * ```ts
 * import { parseOidcConfig } from 'ssoflow/oidc'
 *
 * // The org's SSO settings page: what the stored config says (never show the client secret).
 * const provider = await storage.getAuthProvider(organizationId)
 * const config = provider?.providerKey === 'oidc' ? parseOidcConfig(provider.config) : null
 * if (config) console.log(config.issuer, config.clientId, config.clientAuth) // e.g. 'client_secret_basic'
 * parseOidcConfig({ issuer: 'https://login.acme.example' }) // null: clientId, clientSecret and clientAuth are missing
 * ```
 * @group Providers
 */
export function parseOidcConfig(value: unknown): OidcConfig | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  const issuer = boundedString(v.issuer, MAX_ISSUER_LENGTH)
  const clientId = boundedString(v.clientId, LIMITS.id)
  const clientSecret = boundedString(v.clientSecret, MAX_SECRET_LENGTH)
  const clientAuth = isClientAuthMethod(v.clientAuth) ? v.clientAuth : null
  if (!issuer || !clientId || !clientSecret || !clientAuth) return null
  return { issuer, clientId, clientSecret, clientAuth }
}

/** The config as stored JSON. */
export function configJson(config: OidcConfig): JsonObject {
  return { issuer: config.issuer, clientId: config.clientId, clientSecret: config.clientSecret, clientAuth: config.clientAuth }
}
