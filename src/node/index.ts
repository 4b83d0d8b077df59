/**
 * `ssoflow/node`: the Node-only parts of the outbound address policy (threat 60): a
 * {@link HostResolver} over `node:dns`, and a fetch whose connections are pinned to the
 * addresses the policy checked, which closes the DNS-rebinding gap of resolve-then-fetch.
 *
 * ```ts
 * import { oidcProvider } from 'ssoflow/oidc'
 * import { nodeAddressPolicy } from 'ssoflow/node'
 *
 * const oidc = oidcProvider({
 *   addressPolicy: nodeAddressPolicy({ allow: ({ hostname }) => hostname === 'sso.corp.internal' }),
 * })
 * ```
 *
 * @module ssoflow/node
 */

import { lookup as dnsLookup } from 'node:dns/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIPv6, type LookupFunction } from 'node:net'
import { Readable } from 'node:stream'
import {
  type AddressPolicy,
  type AllowRequest,
  checkHostLiteral,
  checkResolvedAddresses,
  type HostResolver,
  type OutboundFetch,
  UrlRefusedError,
} from '../net/policy.js'

export type { AddressPolicy, AllowRequest, HostResolver, OutboundFetch } from '../net/policy.js'

/** Options of {@link nodeResolver}. @group Network */
export interface NodeResolverOptions {
  /** Longest time one resolution may take. @defaultValue 5000 */
  readonly timeoutMs?: number | undefined
}

/**
 * A {@link HostResolver} over `node:dns` `lookup` (the operating system's resolver, as Node's
 * own connections use it): every IPv4 and IPv6 address of the name.
 *
 * @example
 * ```ts
 * import { checkUrl } from 'ssoflow'
 * import { nodeResolver } from 'ssoflow/node'
 *
 * const resolver = nodeResolver({ timeoutMs: 2000 })
 * await resolver('localhost', {}) // every IPv4 and IPv6 address, e.g. ['127.0.0.1', '::1']
 * // Resolve-then-check, without pinning (see nodeAddressPolicy for the pinned fetch):
 * const checked = await checkUrl('https://login.acme.example/', { resolver })
 * ```
 * @group Network
 */
export function nodeResolver(options: NodeResolverOptions = {}): HostResolver {
  const timeoutMs = options.timeoutMs ?? 5000
  return async (hostname, { signal }) => {
    const timeout = AbortSignal.timeout(timeoutMs)
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout
    abort.throwIfAborted()
    const result = await new Promise<{ address: string }[]>((resolve, reject) => {
      const onAbort = () => reject(abort.reason)
      abort.addEventListener('abort', onAbort, { once: true })
      dnsLookup(hostname, { all: true, verbatim: true }).then(
        (r) => {
          abort.removeEventListener('abort', onAbort)
          resolve(r)
        },
        (e: unknown) => {
          abort.removeEventListener('abort', onAbort)
          reject(e)
        },
      )
    })
    return result.map((r) => r.address)
  }
}

/** Options of {@link createPinnedFetch}. @group Network */
export interface PinnedFetchOptions {
  /** The policy every connection is checked against (its `fetch` is ignored). */
  readonly policy: AddressPolicy
  /** Resolves names at connect time. @defaultValue `policy.resolver`, else {@link nodeResolver}() */
  readonly resolver?: HostResolver | undefined
}

function bodyBytes(body: unknown): Uint8Array | string | null {
  if (body === undefined || body === null) return null
  if (typeof body === 'string') return body
  if (body instanceof URLSearchParams) return body.toString()
  if (body instanceof Uint8Array) return body
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  throw new TypeError('unsupported request body type')
}

function toHeaders(res: IncomingMessage): Headers {
  const headers = new Headers()
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    else headers.set(name, value)
  }
  return headers
}

/**
 * A fetch (http and https, no redirects followed) whose connections go only to addresses the
 * policy allowed: the host name is resolved once, inside the connection's own lookup, every
 * address is checked with {@link checkResolvedAddresses}, and the socket connects to those
 * addresses; IP literals are checked with {@link checkHostLiteral}. A refused address rejects
 * with `UrlRefusedError` before any connection is attempted. TLS still verifies the certificate
 * against the host name. It is a transport: the scheme rule (https only) is the caller's
 * (`checkUrl` / `checkUrlSyntax`, which the OIDC provider runs before every request).
 *
 * @example
 * ```ts
 * import { checkUrlSyntax, UrlRefusedError } from 'ssoflow'
 * import { createPinnedFetch, nodeResolver } from 'ssoflow/node'
 *
 * // The host fetching a URL a tenant typed (a SAML metadata URL) the way ssoflow's providers do.
 * const policy = { resolver: nodeResolver() }
 * const pinnedFetch = createPinnedFetch({ policy })
 * const url = 'https://login.acme.example/metadata.xml'
 * if (checkUrlSyntax(url, policy).isOk()) { // the scheme rule is the caller's
 *   try {
 *     const response = await pinnedFetch(url, { method: 'GET', headers: { accept: 'application/samlmetadata+xml' } })
 *   } catch (error) {
 *     if (error instanceof UrlRefusedError) console.log(error.error.code) // URL_NOT_ALLOWED: the name resolves to an internal address
 *   }
 * }
 * ```
 * @group Network
 */
export function createPinnedFetch(options: PinnedFetchOptions): OutboundFetch {
  const policy: AddressPolicy = { ...options.policy, fetch: undefined }
  const resolver = options.resolver ?? policy.resolver ?? nodeResolver()
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolver(hostname, {}).then(
      (addresses) => {
        const checked = checkResolvedAddresses(hostname, addresses, policy, 'request')
        if (checked.isErr()) {
          callback(new UrlRefusedError(checked.error) as unknown as NodeJS.ErrnoException, '', 4)
          return
        }
        const family =
          lookupOptions.family === 6 || lookupOptions.family === 'IPv6'
            ? 6
            : lookupOptions.family === 4 || lookupOptions.family === 'IPv4'
              ? 4
              : 0
        const usable = checked.value
          .map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }))
          .filter((a) => family === 0 || a.family === family)
        if (usable.length === 0) {
          const error = Object.assign(new Error(`no usable address for ${hostname}`), { code: 'ENOTFOUND' })
          callback(error, '', 4)
          return
        }
        if (lookupOptions.all) (callback as unknown as (e: null, a: typeof usable) => void)(null, usable)
        else callback(null, usable[0]?.address ?? '', usable[0]?.family ?? 4)
      },
      (e: unknown) => callback(e as NodeJS.ErrnoException, '', 4),
    )
  }
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      let target: URL
      try {
        target = new URL(url)
      } catch (e) {
        reject(e)
        return
      }
      if (target.protocol !== 'https:' && target.protocol !== 'http:') {
        reject(new TypeError(`unsupported protocol ${target.protocol}`))
        return
      }
      // Literals never reach the lookup below (Node connects to them directly): check them here.
      const literal = checkHostLiteral(target.hostname, policy, 'request')
      if (literal.isErr()) {
        reject(new UrlRefusedError(literal.error))
        return
      }
      const body = bodyBytes(init.body)
      const headers: Record<string, string> = { ...init.headers }
      if (body !== null) headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength)
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(target, { method: init.method, headers, lookup, ...(init.signal ? { signal: init.signal } : {}) })
      req.on('response', (res) => {
        const empty = init.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 205 || res.statusCode === 304
        if (empty) res.resume()
        const stream = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>)
        resolve(new Response(stream, { status: res.statusCode ?? 502, statusText: res.statusMessage ?? '', headers: toHeaders(res) }))
      })
      req.on('error', reject)
      if (body !== null) req.write(body)
      req.end()
    })
}

/** Options of {@link nodeAddressPolicy}. @group Network */
export interface NodeAddressPolicyOptions {
  /** Host hook: allow a named internal identity provider. See {@link AddressPolicy.allow}. */
  readonly allow?: ((request: AllowRequest) => boolean) | undefined
  /**
   * Pin every connection to the addresses the policy checked (a fetch over `node:http(s)` whose
   * lookup is the checked resolution). With false, the global fetch is used after a separate
   * resolve-and-check, which a name with a very short TTL can answer differently the second time
   * (DNS rebinding).
   * @defaultValue true
   */
  readonly pinConnections?: boolean | undefined
  /** Replaces {@link nodeResolver}() (tests, a custom DNS). */
  readonly resolver?: HostResolver | undefined
}

/**
 * The address policy for Node: names resolved with {@link nodeResolver}, internal addresses
 * refused unless `allow` says otherwise, and (by default) connections pinned to the checked
 * addresses.
 *
 * @example
 * ```ts
 * import { oidcProvider } from 'ssoflow/oidc'
 * import { nodeAddressPolicy } from 'ssoflow/node'
 *
 * // Internal addresses refused (threat 60), connections pinned to the checked addresses; one named
 * // internal IdP allowed.
 * const addressPolicy = nodeAddressPolicy({ allow: ({ hostname }) => hostname === 'sso.corp.internal' })
 * const oidc = oidcProvider({ addressPolicy })
 * ```
 * @group Network
 */
export function nodeAddressPolicy(options: NodeAddressPolicyOptions = {}): AddressPolicy {
  const base: AddressPolicy = { resolver: options.resolver ?? nodeResolver(), allow: options.allow }
  if (options.pinConnections === false) return base
  return { ...base, fetch: createPinnedFetch({ policy: base }) }
}
