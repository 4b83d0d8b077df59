/**
 * Email normalization: the one documented rule used for every comparison.
 *
 * 1. Trim surrounding whitespace.
 * 2. Unicode NFC (canonical composition). NFKC is deliberately NOT used: compatibility
 *    forms (fullwidth letters, ligatures, the Kelvin sign) stay distinct.
 * 3. Case-fold the whole address (local part and domain) with `toLowerCase`, then NFC again.
 * Exception to 2 and 3: a non-ASCII character that NFC or lowercasing would turn into ASCII
 * (U+212A KELVIN SIGN -> `K`, U+0130 -> `i` + dot) is kept verbatim, so a confusable address
 * never compares equal to an ASCII one.
 *
 * Plus-addressing and dots are NOT removed: providers differ, and treating
 * `a+b@x` as `a@x` would merge accounts that are not the same mailbox.
 *
 * @module
 */
import { LIMITS } from './limits.js'

const ASCII = /[\u0000-\u007f]/

/**
 * A non-ASCII character that NFC or lowercasing would turn into (or combine with) ASCII, such as
 * U+212A KELVIN SIGN (NFC gives `K`) or U+0130 (lowercase gives `i` + U+0307). Such characters
 * are kept verbatim so they never compare equal to an ASCII address.
 */
function isProtected(ch: string): boolean {
  if ((ch.codePointAt(0) ?? 0) < 0x80) return false
  return ASCII.test(ch.normalize('NFC')) || ASCII.test(ch.toLowerCase()) || ASCII.test(ch.normalize('NFC').toLowerCase())
}

function foldRun(run: string): string {
  return run.normalize('NFC').toLowerCase().normalize('NFC')
}

/**
 * Normalizes an email address for comparison and lookup. Does not validate.
 *
 * @example
 * ```ts
 * import { normalizeEmail } from 'ssoflow'
 * normalizeEmail('  Alice@Example.COM ') // 'alice@example.com'
 * normalizeEmail('\u212Aate@x.io') !== normalizeEmail('kate@x.io') // true
 * ```
 * @group Model
 */
export function normalizeEmail(email: string): string {
  let out = ''
  let run = ''
  for (const ch of email.trim()) {
    if (isProtected(ch)) {
      out += foldRun(run) + ch
      run = ''
    } else {
      run += ch
    }
  }
  return out + foldRun(run)
}

/**
 * Compares two addresses under {@link normalizeEmail}.
 *
 * @example
 * ```ts
 * import { emailsEqual } from 'ssoflow'
 *
 * emailsEqual(' Ada@Acme.example', 'ada@acme.EXAMPLE') // true
 * emailsEqual('ada+sso@acme.example', 'ada@acme.example') // false: plus-addressing is kept
 * ```
 * @group Model
 */
export function emailsEqual(a: string, b: string): boolean {
  return normalizeEmail(a) === normalizeEmail(b)
}

// A UTF-16 code unit that is half of a surrogate pair without its other half. Such a string is
// not well-formed Unicode: databases store it as U+FFFD (PostgreSQL, MariaDB), so two different
// strings would become one key.
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * True when `text` holds an unpaired surrogate (ill-formed Unicode), which a database would not
 * store as given. Linear time.
 *
 * @example
 * ```ts
 * import { hasUnpairedSurrogate } from 'ssoflow'
 *
 * hasUnpairedSurrogate('Ada \u{1F600}') // false: a complete pair
 * hasUnpairedSurrogate('Ada \uD83D') // true: half of one, which a database would store as U+FFFD
 * ```
 * @group Model
 */
export function hasUnpairedSurrogate(text: string): boolean {
  return UNPAIRED_SURROGATE.test(text)
}

// One '@', non-empty local part, a domain of dot-separated labels without a trailing dot,
// no whitespace or control characters (header injection), no angle brackets or quotes.
const FORBIDDEN = /[\s\u0000-\u001f\u007f<>"(),;:\\[\]]/

/**
 * Structural email check used at the boundary. Deliberately strict and linear-time: a single
 * `@`, a non-empty local part, a domain of non-empty labels with no trailing dot, no
 * whitespace, control characters, quotes, brackets, commas or semicolons, and well-formed Unicode
 * (no unpaired surrogate).
 *
 * @example
 * ```ts
 * import { isValidEmail } from 'ssoflow'
 *
 * isValidEmail('ada@acme.example') // true
 * isValidEmail('ada@acme.example.') // false: trailing dot
 * isValidEmail('Ada <ada@acme.example>') // false: a display name is not an address
 * ```
 * @group Model
 */
export function isValidEmail(email: string): boolean {
  if (email.length === 0 || email.length > LIMITS.email) return false
  if (FORBIDDEN.test(email) || hasUnpairedSurrogate(email)) return false
  const at = email.indexOf('@')
  if (at <= 0 || at !== email.lastIndexOf('@')) return false
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  if (local.length > 64 || domain.length === 0 || domain.length > 255) return false
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false
  const labels = domain.split('.')
  if (labels.length < 2) return false
  return labels.every((l) => l.length > 0 && l.length <= 63 && !l.startsWith('-') && !l.endsWith('-'))
}
