/**
 * The handler's cookies: parsing of the `Cookie` header and serialization of `Set-Cookie`,
 * kept to what the handler needs (RFC 6265 names and values, no decoding tricks).
 *
 * Web-standard only.
 * @module
 */

/** Attributes of a cookie the handler sets. */
export interface CookieAttributes {
  readonly path: string
  readonly secure: boolean
  /** Seconds; omitted for a browser-session cookie; 0 deletes the cookie. */
  readonly maxAge?: number | undefined
}

// RFC 6265 token characters (cookie-name) and cookie-octets (cookie-value, unquoted).
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/

/** At most this many cookies and this many characters of `Cookie` header are read. */
const MAX_HEADER = 8192
const MAX_COOKIES = 100

/**
 * Parses a `Cookie` header into name -> value. Malformed pairs are skipped; when a name occurs
 * more than once the first value wins (browsers send the most specific path first). Values are
 * taken verbatim (no percent-decoding). An over-long header yields no cookies at all.
 */
export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>()
  if (!header || header.length > MAX_HEADER) return out
  let count = 0
  for (const part of header.split(';')) {
    if (++count > MAX_COOKIES) break
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (!NAME.test(name) || !VALUE.test(value)) continue
    if (!out.has(name)) out.set(name, value)
  }
  return out
}

/**
 * Serializes a `Set-Cookie` value: always `HttpOnly` and `SameSite=Lax`, `Secure` when asked.
 * Throws (a programmer error) for a name or value outside the RFC 6265 character sets.
 */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  if (!NAME.test(name)) throw new TypeError(`invalid cookie name: ${name}`)
  if (!VALUE.test(value)) throw new TypeError('invalid cookie value')
  let out = `${name}=${value}; Path=${attributes.path}; HttpOnly; SameSite=Lax`
  if (attributes.secure) out += '; Secure'
  if (attributes.maxAge !== undefined) {
    out += `; Max-Age=${Math.max(0, Math.trunc(attributes.maxAge))}`
    if (attributes.maxAge <= 0) out += '; Expires=Thu, 01 Jan 1970 00:00:00 GMT'
  }
  return out
}

/**
 * The cookie name to use for `base` given the cookie's path and whether it is Secure:
 * `__Host-` for a Secure cookie on `/` (no Domain, so it is bound to this host), `__Secure-`
 * for a Secure cookie on a narrower path, and no prefix on plain-http loopback.
 */
export function prefixedName(base: string, path: string, secure: boolean): string {
  if (!secure) return base
  return path === '/' ? `__Host-${base}` : `__Secure-${base}`
}
