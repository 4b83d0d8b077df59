/**
 * Validation of the post-login `next` target (threat 37: open redirect).
 *
 * Pure and runtime-neutral: uses only the WHATWG `URL` global.
 * @module
 */

import { LIMITS } from '../model/limits.js'

// Control characters (C0, DEL, C1), whitespace of any kind, and backslashes are never allowed,
// neither raw nor after percent-decoding.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\s\\\u2028\u2029\ufeff]/u
// After percent-decoding, a plain space is tolerated (`?q=a%20b`); everything else above is not
// (tab, line feed, vertical tab, form feed and carriage return are inside \u0000-\u001f).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN_DECODED = /[\u0000-\u001f\u007f-\u009f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\\\ufeff]/u

/** Decodes percent-escapes repeatedly (at most a few rounds); null when malformed. */
function fullyDecode(value: string): string | null {
  let current = value
  for (let i = 0; i < 4; i++) {
    let decoded: string
    try {
      decoded = decodeURIComponent(current)
    } catch {
      return null
    }
    if (decoded === current) return current
    current = decoded
  }
  // Still changing after four rounds: treat as hostile.
  return null
}

/**
 * Returns `next` when it is a safe same-origin relative path, else `null`.
 *
 * Accepted: a string of at most {@link LIMITS.next} characters that starts with exactly one `/`,
 * contains no backslash, whitespace or control character (raw or percent-decoded, any number of
 * encoding rounds), does not start with `//` or `/\` after decoding, and, resolved against
 * `baseUrl`, stays on `baseUrl`'s origin. The returned value is the path, query and fragment of
 * the resolved URL (normalized, e.g. `/a/../b` becomes `/b`).
 *
 * Never throws: any other input (non-strings, absolute URLs, `//evil`, `/\evil`, `javascript:`,
 * encoded tricks, over-long values, a malformed `baseUrl`) gives `null`, and the caller falls back
 * to its default landing page.
 *
 * @param next - untrusted value (from a query string or form)
 * @param baseUrl - the app's origin, e.g. `https://app.example.com`
 * @group Core
 */
export function safeNext(next: unknown, baseUrl: string): string | null {
  if (typeof next !== 'string') return null
  if (next.length === 0 || next.length > LIMITS.next) return null
  if (next[0] !== '/') return null
  if (FORBIDDEN.test(next)) return null
  const decoded = fullyDecode(next)
  if (decoded === null) return null
  if (FORBIDDEN_DECODED.test(decoded)) return null
  if (decoded.startsWith('//')) return null
  let base: URL
  try {
    base = new URL(baseUrl)
  } catch {
    return null
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') return null
  let resolved: URL
  try {
    resolved = new URL(next, base.origin)
  } catch {
    return null
  }
  if (resolved.origin !== base.origin) return null
  const out = `${resolved.pathname}${resolved.search}${resolved.hash}`
  // The normalized path must itself be a plain single-slash path (e.g. `/.//evil` normalizes to
  // `//evil`, which a later redirect would read as a host).
  if (!out.startsWith('/') || out.startsWith('//')) return null
  if (out.length > LIMITS.next) return null
  return out
}
