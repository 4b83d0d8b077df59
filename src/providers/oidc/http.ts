/**
 * Every request the OIDC provider sends goes through {@link createOutbound}: the address policy
 * first (no request leaves for a refused URL), then the size-limited body read. The JWKS fetch
 * adds its own bounds (keys per set, one refetch per interval, one request in flight per URI).
 *
 * @module
 */

import type * as oauth from 'oauth4webapi'
import { type AddressPolicy, checkUrl, checkUrlSyntax, UrlRefusedError } from '../../net/policy.js'
import { ResponseTooLarge, ServerError } from './errors.js'

/** A fetch-compatible function (what oauth4webapi calls). @group Providers */
export type OidcFetch = (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>

/** Reads a body up to `max` bytes; throws {@link ResponseTooLarge} beyond. */
export async function readLimited(res: Response, max: number): Promise<Uint8Array> {
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

interface Buffered {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly body: Uint8Array
}

const utf8 = new TextDecoder()

/**
 * A buffered IdP response as oauth4webapi is given it: a real `Response` (its status, headers,
 * `instanceof Response`), built without a body stream, whose `json`, `text` and `arrayBuffer`
 * answer from the buffered bytes, as a `Response` over those bytes would (UTF-8 decoded with the
 * BOM dropped, read once, a fresh copy each time). A `Response` over bytes builds a
 * `ReadableStream` (on Node 20 also made transferable) for a body read once by `json()`, about
 * 25 µs per response; here that happens only when something asks for the stream itself
 * (`body`, `clone`, `blob`, `formData`, `bytes`): then a `Response` over the same bytes is built
 * (marked read when the body was read already) and every body call is its from then on.
 */
class BufferedResponse extends Response {
  readonly #bytes: Uint8Array
  #used = false
  #full: Response | null = null

  constructor(b: Buffered) {
    super(null, { status: b.status, statusText: b.statusText, headers: b.headers })
    this.#bytes = b.body
  }

  /** The `Response` over the bytes, built once, read already when this one was. */
  #stream(): Response {
    if (!this.#full) {
      const full = new Response(this.#bytes as BodyInit, { status: this.status, statusText: this.statusText, headers: this.headers })
      if (this.#used)
        full.body
          ?.getReader()
          .read()
          .catch(() => {})
      this.#full = full
    }
    return this.#full
  }

  #take(): Uint8Array {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read')
    this.#used = true
    return this.#bytes
  }

  override get body(): Response['body'] {
    return this.#stream().body
  }

  override get bodyUsed(): boolean {
    return this.#full ? this.#full.bodyUsed : this.#used
  }

  override async text(): Promise<string> {
    return this.#full ? this.#full.text() : utf8.decode(this.#take())
  }

  override async json(): Promise<unknown> {
    return this.#full ? this.#full.json() : JSON.parse(utf8.decode(this.#take()))
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#full) return this.#full.arrayBuffer()
    const bytes = this.#take()
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  }

  override async blob(): Promise<Blob> {
    return this.#stream().blob()
  }

  override async formData(): Promise<FormData> {
    return this.#stream().formData()
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#stream().bytes()
  }

  override clone(): Response {
    return this.#stream().clone()
  }
}

function toResponse(b: Buffered): Response {
  const nullBody = b.status === 204 || b.status === 205 || b.status === 304
  if (nullBody) return new Response(null, { status: b.status, statusText: b.statusText, headers: b.headers })
  return new BufferedResponse(b)
}

/** Options of {@link createOutbound}. */
export interface OutboundOptions {
  readonly policy: AddressPolicy
  /** The host's fetch (tests, proxies); when absent, `policy.fetch` or the global fetch. */
  readonly customFetch?: OidcFetch | undefined
  readonly maxResponseBytes: number
  /** Each request (the address check's name resolution, headers and body) is aborted after this many ms. */
  readonly timeoutMs: number
  readonly jwksMaxKeys: number
  readonly jwksMinRefetchMs: number
}

/** The guarded fetches of one provider instance. */
export interface Outbound {
  /** Checks the URL against the address policy, sends, reads at most `maxResponseBytes`. */
  readonly fetch: OidcFetch
  /** {@link Outbound.fetch} for JWKS URIs, with the key-count, refetch-interval and single-flight bounds. */
  readonly jwksFetch: OidcFetch
}

/**
 * Builds the guarded fetches. When the policy brings a pinned fetch (`policy.fetch`, whose
 * connections are checked at connect time) and the host gave no `customFetch`, names are not
 * resolved a second time here; otherwise every request resolves and checks its host first.
 */
export function createOutbound(options: OutboundOptions): Outbound {
  const { policy, maxResponseBytes } = options
  const pinned = options.customFetch === undefined && policy.fetch !== undefined
  const base: OidcFetch = options.customFetch ?? (policy.fetch as OidcFetch | undefined) ?? ((url, init) => fetch(url, init as RequestInit))

  // When no name is resolved here (a pinned fetch, or no resolver), the decision is the syntax
  // check alone: a function of the URL and `dangerouslyAllowLoopback` (read again on every request,
  // part of the key) unless the host's `allow` hook was asked (it may answer differently next
  // time). Such URLs that passed are remembered for this instance (bounded); refusals, decisions
  // that asked `allow`, and every DNS-based decision are made again on each request.
  const passed = new Set<string>()
  let askedAllow = false
  const probe: AddressPolicy = {
    get dangerouslyAllowLoopback() {
      return policy.dangerouslyAllowLoopback
    },
    allow: (request) => {
      askedAllow = true
      return policy.allow?.(request) === true
    },
  }
  const checkSyntaxOnly = (url: string) => {
    const key = `${policy.dangerouslyAllowLoopback === true ? 1 : 0}${url}`
    if (passed.has(key)) return null
    askedAllow = false
    const checked = checkUrlSyntax(url, probe, 'request')
    if (checked.isErr()) return checked.error
    if (!askedAllow) {
      if (passed.size >= 256) passed.clear()
      passed.add(key)
    }
    return null
  }

  const send = async (url: string, init: oauth.CustomFetchOptions<string, unknown>): Promise<Buffered> => {
    // The timeout: one timer per request, cleared when the body is read (AbortSignal.timeout's
    // timer would stay armed for the full timeout after every request).
    const controller = new AbortController()
    const timer = setTimeout(
      () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
      options.timeoutMs,
    )
    ;(timer as { unref?: () => void }).unref?.()
    const signal = init.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal
    try {
      const refused =
        pinned || policy.resolver === undefined
          ? checkSyntaxOnly(url)
          : await checkUrl(url, policy, { field: 'request', signal }).then((c) => (c.isErr() ? c.error : null))
      if (refused) throw new UrlRefusedError(refused)
      const res = await base(url, { ...init, signal })
      if (res.status >= 500 && res.status <= 599) {
        // A 5xx is an outage at the IdP, not a protocol violation: PROVIDER_UNAVAILABLE (retryable).
        await res.body?.cancel().catch(() => {})
        throw new ServerError(res.status)
      }
      const body = await readLimited(res, maxResponseBytes)
      return { status: res.status, statusText: res.statusText, headers: res.headers, body }
    } finally {
      clearTimeout(timer)
    }
  }

  const guarded: OidcFetch = async (url, init) => toResponse(await send(url, init))

  interface JwksEntry {
    last: (Buffered & { readonly at: number }) | null
    inflight: Promise<Buffered & { readonly at: number }> | null
  }
  const jwks = new Map<string, JwksEntry>()

  const jwksFetch: OidcFetch = async (url, init) => {
    let entry = jwks.get(url)
    if (!entry) {
      if (jwks.size >= 100) jwks.delete(jwks.keys().next().value as string)
      entry = { last: null, inflight: null }
      jwks.set(url, entry)
    }
    const current = entry
    // At most one network fetch per URI per interval: a token naming an unknown `kid` inside the
    // interval sees the set fetched last (and fails key selection) instead of a new request.
    if (current.last && Date.now() - current.last.at < options.jwksMinRefetchMs) return toResponse(current.last)
    if (!current.inflight) {
      current.inflight = (async () => {
        const got = await send(url, init)
        if (got.status === 200) {
          let keys: unknown
          try {
            keys = (JSON.parse(new TextDecoder().decode(got.body)) as { keys?: unknown }).keys
          } catch {
            keys = undefined
          }
          if (Array.isArray(keys) && keys.length > options.jwksMaxKeys) throw new ResponseTooLarge()
          const stamped = { ...got, at: Date.now() }
          current.last = stamped
          return stamped
        }
        return { ...got, at: Date.now() }
      })().finally(() => {
        current.inflight = null
      })
    }
    return toResponse(await current.inflight)
  }

  return { fetch: guarded, jwksFetch }
}
