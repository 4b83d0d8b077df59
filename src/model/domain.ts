/**
 * Domain normalization for verified domains and home-realm discovery (issue 13): the one rule
 * both the admin API (a domain an organization claims) and `beginLogin({ email })` (the domain
 * of the address typed) apply, so that the two always compare equal.
 *
 * 1. Trim surrounding whitespace; lowercase.
 * 2. A trailing dot (`example.com.`, the DNS root) is REFUSED, not stripped: an address with
 *    one is not a valid email address, and a stored domain never has one.
 * 3. An internationalized domain (IDN, `bücher.example`) is converted to its A-labels
 *    (`xn--bcher-kva.example`) with the web-standard URL host parser (UTS #46 processing, the
 *    same conversion browsers make); one the parser refuses is refused.
 * 4. The result must be a DNS host name: 2 to 127 labels of `a-z`, `0-9` and `-` (not at either
 *    end of a label), each 1 to 63 characters, 253 characters in all, and a last label that is
 *    not all digits (an IP address is not a domain).
 *
 * Pure and linear-time; uses only the standard `URL` class.
 *
 * @module
 */
import { LIMITS } from './limits.js'

/**
 * Why a domain or email address was refused by {@link normalizeDomain} / {@link emailDomain}.
 * @group Model
 */
export type DomainProblem =
  | 'empty'
  | 'too-long'
  | 'trailing-dot'
  | 'invalid-characters'
  | 'idn-invalid'
  | 'not-a-host-name'
  | 'ip-address'
  | 'no-domain'
  | 'local-part-empty'

/**
 * The result of {@link normalizeDomain}: the normalized domain or the problem.
 * @group Model
 */
export type DomainResult = { readonly ok: true; readonly domain: string } | { readonly ok: false; readonly problem: DomainProblem }

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
// What the URL host parser reads as an IPv4 number (decimal or hex): never a domain's last label.
const DIGITS = /^(?:[0-9]+|0x[0-9a-f]*)$/
// Characters that would make the URL parser read something other than a host (or that no host
// name has): delimiters, whitespace, controls, brackets (IPv6 literals), percent escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NOT_IN_HOST = /[\s\u0000-\u001f\u007f/\\?#@:[\]%<>"'`^{}|,;]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: the whole ASCII range, controls included
const ASCII_ONLY = /^[\u0000-\u007f]*$/

/**
 * Normalizes a domain: lowercase, IDN to A-labels; refuses a trailing dot, an IP address and
 * anything that is not a DNS host name. Never throws.
 *
 * @example
 * ```ts
 * import { normalizeDomain } from 'ssoflow'
 * normalizeDomain(' Example.COM ') // { ok: true, domain: 'example.com' }
 * normalizeDomain('bücher.example') // { ok: true, domain: 'xn--bcher-kva.example' }
 * normalizeDomain('example.com.') // { ok: false, problem: 'trailing-dot' }
 * ```
 * @group Model
 */
export function normalizeDomain(raw: string): DomainResult {
  if (typeof raw !== 'string') return { ok: false, problem: 'empty' }
  const text = raw.trim()
  if (text.length === 0) return { ok: false, problem: 'empty' }
  if (text.length > LIMITS.email) return { ok: false, problem: 'too-long' }
  if (text.endsWith('.') || text.endsWith('\u3002') || text.endsWith('\uff0e') || text.endsWith('\uff61')) {
    return { ok: false, problem: 'trailing-dot' }
  }
  if (NOT_IN_HOST.test(text)) return { ok: false, problem: 'invalid-characters' }
  let host = text.toLowerCase()
  if (!ASCII_ONLY.test(host) || host.split('.').some((l) => l.startsWith('xn--'))) {
    // IDN (or an A-label given as such): the URL host parser converts and validates it.
    try {
      host = new URL(`http://${text}/`).hostname
    } catch {
      return { ok: false, problem: 'idn-invalid' }
    }
    if (host.endsWith('.')) return { ok: false, problem: 'trailing-dot' }
  }
  if (host.length > 253) return { ok: false, problem: 'too-long' }
  const labels = host.split('.')
  if (labels.length < 2 || labels.length > 127) return { ok: false, problem: 'not-a-host-name' }
  if (!labels.every((l) => LABEL.test(l))) return { ok: false, problem: 'not-a-host-name' }
  if (DIGITS.test(labels[labels.length - 1] ?? '')) return { ok: false, problem: 'ip-address' }
  return { ok: true, domain: host }
}

/**
 * The normalized domain of an email address (what home-realm discovery looks up): the part
 * after the last `@`, through {@link normalizeDomain}. Refuses an address with no `@`, nothing
 * before it, or nothing after it. The local part is not otherwise checked: it never decides
 * anything (the IdP authenticates the user).
 *
 * @example
 * ```ts
 * import { emailDomain } from 'ssoflow'
 * emailDomain('Ada@Acme.Example') // { ok: true, domain: 'acme.example' }
 * emailDomain('ada@') // { ok: false, problem: 'no-domain' }
 * ```
 * @group Model
 */
export function emailDomain(email: string): DomainResult {
  if (typeof email !== 'string') return { ok: false, problem: 'empty' }
  const text = email.trim()
  if (text.length === 0) return { ok: false, problem: 'empty' }
  if (text.length > LIMITS.email) return { ok: false, problem: 'too-long' }
  const at = text.lastIndexOf('@')
  if (at < 0 || at === text.length - 1) return { ok: false, problem: 'no-domain' }
  if (at === 0) return { ok: false, problem: 'local-part-empty' }
  return normalizeDomain(text.slice(at + 1))
}
