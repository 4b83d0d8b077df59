/**
 * Bounded, strict parsing of what a browser sends the handler: the query string and
 * `application/x-www-form-urlencoded` bodies in UTF-8. Every failure is a typed error; nothing
 * here throws.
 *
 * Web-standard only (Request, ReadableStream, TextDecoder).
 * @module
 */
import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../errors.js'

/** Limits of one parsed query string or form. */
export interface ParseLimits {
  /** Largest body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** Longest decoded value. @defaultValue {@link MAX_VALUE_LENGTH} */
  readonly maxValueLength?: number | undefined
  /** Most parameters. @defaultValue {@link MAX_PARAMS} */
  readonly maxParams?: number | undefined
}

/** Limits of {@link parseUrlEncoded} (the defaults suit query strings and the handler's own forms). */
export interface FieldLimits {
  readonly maxValueLength?: number | undefined
  readonly maxParams?: number | undefined
}

/** At most this many parameters, and these lengths (the engine's own limits on step requests). */
export const MAX_PARAMS = 64
export const MAX_KEY_LENGTH = 256
export const MAX_VALUE_LENGTH = 8192
/** Longest request URL read at all. */
export const MAX_URL_LENGTH = 16 * 1024

const invalid = (reason: string): AuthError => authError('INPUT_INVALID', { details: { reason } })

/**
 * `+` as a space, then percent-decoding (throws URIError for a malformed escape). A field with
 * neither `+` nor `%` is its own decoding, so neither pass runs for it.
 */
function decodeField(raw: string): string {
  const plus = raw.includes('+')
  if (!plus && !raw.includes('%')) return raw
  return decodeURIComponent(plus ? raw.replace(/\+/g, ' ') : raw)
}

/**
 * Parses `a=1&b=2` strictly: `+` is a space, percent-escapes must be well formed UTF-8, every
 * name occurs once, at most {@link MAX_PARAMS} pairs within the length limits.
 */
export function parseUrlEncoded(text: string, limits: FieldLimits = {}): Result<Record<string, string>, AuthError> {
  const maxValue = limits.maxValueLength ?? MAX_VALUE_LENGTH
  const maxParams = limits.maxParams ?? MAX_PARAMS
  const out: Record<string, string> = Object.create(null)
  if (text.length === 0) return ok(out)
  let count = 0
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue
    if (++count > maxParams) return err(invalid('too-many-parameters'))
    const eq = pair.indexOf('=')
    const rawKey = eq < 0 ? pair : pair.slice(0, eq)
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1)
    if (rawKey.length > MAX_KEY_LENGTH * 3 || rawValue.length > maxValue * 3) return err(invalid('parameter-too-long'))
    let key: string
    let value: string
    try {
      key = decodeField(rawKey)
      value = decodeField(rawValue)
    } catch {
      return err(invalid('bad-percent-encoding'))
    }
    if (key.length === 0 || key.length > MAX_KEY_LENGTH || value.length > maxValue) return err(invalid('parameter-too-long'))
    if (Object.hasOwn(out, key)) return err(invalid('duplicate-parameter'))
    out[key] = value
  }
  return ok({ ...out })
}

/** The query string of a URL, parsed strictly. */
export function parseQuery(url: URL): Result<Record<string, string>, AuthError> {
  return parseUrlEncoded(url.search.startsWith('?') ? url.search.slice(1) : url.search)
}

/**
 * Reads a form body: `Content-Type` must be `application/x-www-form-urlencoded` (charset, if
 * given, UTF-8), `Content-Encoding` absent or `identity`, the body at most `maxBodyBytes`
 * (checked on `Content-Length` first, then while streaming), valid UTF-8.
 */
export async function readForm(request: Request, limits: ParseLimits): Promise<Result<Record<string, string>, AuthError>> {
  const type = request.headers.get('content-type')
  if (!isFormType(type)) return err(authError('CONTENT_TYPE_INVALID', { details: { contentType: (type ?? '').slice(0, 100) } }))
  const encoding = request.headers.get('content-encoding')
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
    return err(authError('CONTENT_TYPE_INVALID', { details: { contentEncoding: encoding.slice(0, 100) } }))
  }
  const declared = request.headers.get('content-length')
  if (declared !== null) {
    if (!/^\d{1,15}$/.test(declared.trim())) return err(invalid('bad-content-length'))
    if (Number(declared) > limits.maxBodyBytes) return err(authError('BODY_TOO_LARGE', { details: { limit: limits.maxBodyBytes } }))
  }
  // With a declared length (at most the limit, checked above) the body is read in one go; without
  // one (chunked) it is streamed and cut at the limit.
  const bytes = declared !== null ? await readDeclared(request, limits.maxBodyBytes) : await readLimited(request, limits.maxBodyBytes)
  if (bytes.isErr()) return err(bytes.error)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes.value)
  } catch {
    return err(invalid('bad-utf8'))
  }
  return parseUrlEncoded(text, limits)
}

function isFormType(header: string | null): boolean {
  if (header === null) return false
  const [media, ...params] = header.split(';')
  if ((media ?? '').trim().toLowerCase() !== 'application/x-www-form-urlencoded') return false
  for (const p of params) {
    const eq = p.indexOf('=')
    if (eq < 0) continue
    const name = p.slice(0, eq).trim().toLowerCase()
    const value = p
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase()
    if (name === 'charset' && value !== 'utf-8' && value !== 'utf8') return false
  }
  return true
}

async function readDeclared(request: Request, max: number): Promise<Result<Uint8Array, AuthError>> {
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await request.arrayBuffer())
  } catch (cause) {
    return err(authError('INPUT_INVALID', { cause, details: { reason: 'body-unreadable' } }))
  }
  // A body longer than its Content-Length (possible for an in-process Request) is still refused.
  if (bytes.byteLength > max) return err(authError('BODY_TOO_LARGE', { details: { limit: max } }))
  return ok(bytes)
}

async function readLimited(request: Request, max: number): Promise<Result<Uint8Array, AuthError>> {
  const body = request.body
  if (!body) return ok(new Uint8Array(0))
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > max) {
        await reader.cancel().catch(() => {})
        return err(authError('BODY_TOO_LARGE', { details: { limit: max } }))
      }
      chunks.push(value)
    }
  } catch (cause) {
    return err(authError('INPUT_INVALID', { cause, details: { reason: 'body-unreadable' } }))
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.byteLength
  }
  return ok(out)
}
