/**
 * The outbound URL policy (threat 60): every URL that comes from tenant input (an issuer typed in
 * a setup form, a SAML metadata URL) or from a tenant's discovery or metadata document must be
 * https and must not reach loopback, private, link-local, CGNAT, multicast, unspecified,
 * documentation, benchmark, reserved or cloud-metadata addresses: neither as an IP literal nor
 * through a host name that resolves to one. Web-standard: name resolution goes through an
 * injected {@link HostResolver} (`ssoflow/node` ships one over `node:dns`).
 *
 * @module
 */

import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../errors.js'
import { type AddressRange, type ClassifiedAddress, classifyAddress } from './address.js'

/**
 * Resolves a host name to its IP addresses (IPv4 and IPv6, as text). Rejects when the name does
 * not resolve. `ssoflow/node` exports `nodeResolver()` over `node:dns`; tests inject a map.
 * @group Network
 */
export type HostResolver = (hostname: string, options: { readonly signal?: AbortSignal | undefined }) => Promise<readonly string[]>

/**
 * What the {@link AddressPolicy.allow} hook is asked about: a host name (as typed or as found in
 * a discovery/metadata document) and one address it is, or resolves to, that falls in a refused
 * range.
 * @group Network
 */
export interface AllowRequest {
  readonly hostname: string
  readonly address: string
  readonly range: AddressRange
}

/**
 * A fetch for outbound identity-provider requests (the subset of `fetch` that oauth4webapi and
 * ssoflow use: a string URL and a plain init).
 * @group Network
 */
export type OutboundFetch = (
  url: string,
  init: {
    readonly method: string
    readonly headers: Record<string, string>
    readonly body?: unknown
    readonly redirect?: 'manual' | undefined
    readonly signal?: AbortSignal | undefined
  },
) => Promise<Response>

/**
 * How outbound URLs from tenant configuration are checked. Data, shared by the OIDC provider and
 * the SAML provider.
 * @group Network
 */
export interface AddressPolicy {
  /**
   * Resolves host names so that names pointing at refused ranges are refused too. Without it only
   * IP literals are checked (documented as weaker: a tenant can type a name that resolves to an
   * internal address). On Node use `nodeAddressPolicy()` or `nodeResolver()` from `ssoflow/node`.
   */
  readonly resolver?: HostResolver | undefined
  /**
   * Host hook: return true to allow a named internal identity provider (e.g.
   * `({ hostname }) => hostname === 'sso.corp.internal'`). Called once per refused address; never
   * called for the scheme rules.
   */
  readonly allow?: ((request: AllowRequest) => boolean) | undefined
  /**
   * A fetch whose connections are pinned to addresses checked by this policy at connect time
   * (`ssoflow/node`'s `nodeAddressPolicy()` sets it). When present, a provider uses it for every
   * request and does not resolve names a second time.
   */
  readonly fetch?: OutboundFetch | undefined
  /**
   * DANGER, tests only: loopback hosts (127.0.0.0/8, ::1, `localhost`) are allowed, over plain
   * http as well. Nothing else is relaxed: any other http URL is still refused.
   * @defaultValue false
   */
  readonly dangerouslyAllowLoopback?: boolean | undefined
}

/** Why a URL was refused (`details.reason` of the `URL_NOT_ALLOWED` error). @group Network */
export type UrlRefusalReason = 'invalid' | 'scheme' | 'credentials' | 'address' | 'resolved-address'

/** A URL that passed the policy, with the addresses it was checked against (none for literals). @group Network */
export interface CheckedUrl {
  readonly url: URL
  /** Addresses the host resolved to (empty when the host is an IP literal or no resolver is set). */
  readonly addresses: readonly string[]
}

/**
 * Thrown by a fetch (or a provider's request wrapper) when the address policy refuses a URL or
 * a resolved address before any connection is made; carries the typed `URL_NOT_ALLOWED` (or
 * `PROVIDER_UNAVAILABLE` for a failed resolution) error.
 * @group Network
 */
export class UrlRefusedError extends Error {
  readonly error: AuthError
  constructor(error: AuthError) {
    super(error.message)
    this.name = 'UrlRefusedError'
    this.error = error
  }
}

const SENTENCES: Record<UrlRefusalReason, string> = {
  invalid: 'The URL is not valid.',
  scheme: 'The URL must use https.',
  credentials: 'The URL must not contain a user name or password.',
  address: 'The URL points at an internal or reserved network address, which is not allowed.',
  'resolved-address': "The URL's host name resolves to an internal or reserved network address, which is not allowed.",
}

/**
 * A sentence for an admin (a setup form) saying why a URL was refused, from a `URL_NOT_ALLOWED`
 * error's `details.reason`. The error's own `message` stays the code's default.
 *
 * @example
 * ```ts
 * import { checkUrlSyntax, describeUrlRefusal } from 'ssoflow'
 *
 * // A setup form of the host: tell the admin what to change.
 * const checked = checkUrlSyntax('http://idp.acme.example/metadata', {}, 'metadataUrl')
 * if (checked.isErr()) console.log(describeUrlRefusal(checked.error)) // 'The URL must use https.'
 * ```
 * @group Network
 */
export function describeUrlRefusal(error: AuthError): string {
  const reason = (error.details as { reason?: unknown } | undefined)?.reason
  if (error.code === 'PROVIDER_UNAVAILABLE' && reason === 'dns') return "The URL's host name could not be resolved."
  return typeof reason === 'string' && reason in SENTENCES ? SENTENCES[reason as UrlRefusalReason] : error.message
}

/** The `URL_NOT_ALLOWED` error for a refusal; `field` names the setup field or document attribute. */
function refusal(
  reason: UrlRefusalReason,
  extra: { readonly field?: string | undefined; readonly range?: AddressRange | undefined; readonly hostname?: string | undefined },
): AuthError {
  const details: Record<string, string> = { reason }
  if (extra.field !== undefined) details.field = extra.field
  if (extra.range !== undefined) details.range = extra.range
  if (extra.hostname !== undefined) details.hostname = extra.hostname.slice(0, 255)
  return authError('URL_NOT_ALLOWED', { details })
}

/** `localhost`, `*.localhost`, with or without the root label's trailing dot (RFC 6761). */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '')
  return name === 'localhost' || name.endsWith('.localhost')
}

/**
 * True for the names and literals the loopback opt-in covers.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from 'ssoflow'
 *
 * isLoopbackHost('localhost') // true
 * isLoopbackHost('127.0.0.2') // true
 * isLoopbackHost('login.acme.example') // false
 * ```
 * @group Network
 */
export function isLoopbackHost(hostname: string): boolean {
  if (isLocalhostName(hostname)) return true
  return classifyAddress(hostname)?.range === 'loopback'
}

function allowed(policy: AddressPolicy, hostname: string, address: ClassifiedAddress): boolean {
  if (address.range === 'public') return true
  if (address.range === 'loopback' && policy.dangerouslyAllowLoopback === true) return true
  return policy.allow?.({ hostname, address: address.address, range: address.range }) === true
}

/**
 * Checks a URL without any I/O: it parses; it has no user name or password; it is https (or
 * http to a loopback host under `dangerouslyAllowLoopback`); and when its host is an IP literal
 * (in any form: `0x7f.1`, `2130706433`, `[::ffff:127.0.0.1]`), the address is allowed.
 * `field` is copied into the error's details (which setup field or document attribute).
 *
 * @example
 * ```ts
 * import { checkUrlSyntax } from 'ssoflow'
 *
 * checkUrlSyntax('https://login.acme.example/', {}).isOk() // true (a name: checkUrl resolves it)
 * const refused = checkUrlSyntax('https://[::ffff:169.254.169.254]/latest/meta-data', {}, 'issuer')
 * if (refused.isErr()) console.log(refused.error.code, refused.error.details) // URL_NOT_ALLOWED { reason: 'address', field: 'issuer', range: 'metadata', ... }
 * ```
 * @group Network
 */
export function checkUrlSyntax(input: string | URL, policy: AddressPolicy, field?: string): Result<URL, AuthError> {
  let url: URL
  try {
    url = typeof input === 'string' ? new URL(input) : new URL(input.href)
  } catch {
    return err(refusal('invalid', { field }))
  }
  if (url.username || url.password) return err(refusal('credentials', { field }))
  const loopback = isLoopbackHost(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback && policy.dangerouslyAllowLoopback === true)) {
    return err(refusal('scheme', { field }))
  }
  const host = checkHostLiteral(url.hostname, policy, field)
  if (host.isErr()) return err(host.error)
  return ok(url)
}

/**
 * The address part of {@link checkUrlSyntax} alone (no scheme rule): `localhost` names and IP
 * literals must be allowed; other names pass (they are for the resolver). For transports such as
 * `ssoflow/node`'s pinned fetch, whose callers enforce the scheme.
 *
 * @example
 * ```ts
 * import { checkHostLiteral } from 'ssoflow'
 *
 * // A transport that enforces the scheme itself checks only the host part.
 * checkHostLiteral('login.acme.example', {}).isOk() // true: names are left to the resolver
 * checkHostLiteral('10.1.2.3', {}).isErr() // true: a private address
 * checkHostLiteral('10.20.0.7', { allow: ({ address }) => address === '10.20.0.7' }).isOk() // true: the host allows its internal IdP
 * ```
 * @group Network
 */
export function checkHostLiteral(hostname: string, policy: AddressPolicy, field?: string): Result<string, AuthError> {
  if (isLocalhostName(hostname)) {
    // RFC 6761: localhost names are loopback whatever a resolver says.
    if (policy.dangerouslyAllowLoopback === true) return ok(hostname)
    if (policy.allow?.({ hostname, address: '127.0.0.1', range: 'loopback' }) === true) return ok(hostname)
    return err(refusal('address', { field, range: 'loopback', hostname }))
  }
  const literal = classifyAddress(hostname)
  if (literal !== null && !allowed(policy, hostname, literal)) {
    return err(refusal('address', { field, range: literal.range as AddressRange, hostname }))
  }
  return ok(hostname)
}

/**
 * Checks the addresses a host name resolved to: every one must be allowed (a name that resolves
 * to one public and one internal address is refused).
 *
 * @example
 * ```ts
 * import { checkResolvedAddresses } from 'ssoflow'
 *
 * // After the host's own DNS lookup: every address must be allowed.
 * checkResolvedAddresses('login.acme.example', ['93.184.215.14'], {}).isOk() // true
 * checkResolvedAddresses('login.acme.example', ['93.184.215.14', '10.0.0.5'], {}).isErr() // true: one of them is private
 * ```
 * @group Network
 */
export function checkResolvedAddresses(
  hostname: string,
  addresses: readonly string[],
  policy: AddressPolicy,
  field?: string,
): Result<readonly string[], AuthError> {
  if (addresses.length === 0) return err(refusal('resolved-address', { field, hostname }))
  for (const text of addresses) {
    const address = classifyAddress(text)
    if (address === null) return err(refusal('resolved-address', { field, hostname }))
    if (!allowed(policy, hostname, address)) {
      return err(refusal('resolved-address', { field, range: address.range as AddressRange, hostname }))
    }
  }
  return ok(addresses)
}

/**
 * {@link checkUrlSyntax}, then, for a host name, resolution through `policy.resolver` and
 * {@link checkResolvedAddresses}. A resolver failure (no such name, DNS down) is
 * `PROVIDER_UNAVAILABLE` with `details.reason: 'dns'`. No request is made to the URL.
 *
 * This is resolve-then-check: a later fetch resolves the name again, and a name with a very
 * short TTL can answer differently the second time (DNS rebinding). A fetch whose connection is
 * pinned to the checked address (`policy.fetch`, from `ssoflow/node`) closes that gap.
 *
 * @example
 * ```ts
 * import { checkUrl, describeUrlRefusal } from 'ssoflow'
 * import { nodeAddressPolicy } from 'ssoflow/node'
 *
 * // Before the host fetches a URL a tenant typed (a logo, a metadata URL, a webhook):
 * const checked = await checkUrl('https://login.acme.example/metadata.xml', nodeAddressPolicy(), { field: 'metadataUrl' })
 * if (checked.isErr()) console.log(describeUrlRefusal(checked.error)) // an internal address, or the name does not resolve
 * else console.log(checked.value.url.href, checked.value.addresses) // the public addresses the name resolved to
 * ```
 * @group Network
 */
export async function checkUrl(
  input: string | URL,
  policy: AddressPolicy,
  options: { readonly field?: string | undefined; readonly signal?: AbortSignal | undefined } = {},
): Promise<Result<CheckedUrl, AuthError>> {
  const syntax = checkUrlSyntax(input, policy, options.field)
  if (syntax.isErr()) return err(syntax.error)
  const url = syntax.value
  const hostname = url.hostname
  if (classifyAddress(hostname) !== null || isLoopbackHost(hostname) || policy.resolver === undefined) {
    return ok({ url, addresses: [] })
  }
  let addresses: readonly string[]
  try {
    addresses = await policy.resolver(hostname, { signal: options.signal })
  } catch (cause) {
    const details: Record<string, string> = { reason: 'dns', hostname: hostname.slice(0, 255) }
    if (options.field !== undefined) details.field = options.field
    return err(authError('PROVIDER_UNAVAILABLE', { details, cause }))
  }
  const checked = checkResolvedAddresses(hostname, addresses, policy, options.field)
  if (checked.isErr()) return err(checked.error)
  return ok({ url, addresses: checked.value })
}
