/**
 * Crypto helpers for the engine: SHA-256, HMAC-SHA-256 and HKDF from `@noble/hashes`
 * (synchronous, audited, pure JavaScript, no dependencies), randomness from WebCrypto's
 * `getRandomValues`. Runs unchanged on Node 20+, Deno, Bun and in browsers.
 *
 * Why not `crypto.subtle` for the hashes: every WebCrypto call is an asynchronous job (on Node, a
 * hop to libuv's thread pool and back, with WebIDL argument conversion on the main thread). The
 * engine hashes and signs a few short strings per request; the hops cost far more than the
 * hashing (issue 10: about 9% of the main thread's time in a login, plus the latency of each hop).
 * @module
 */

import { hkdf } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'

const encoder = new TextEncoder()

// Random bytes come from a pool refilled by one `getRandomValues` call per POOL_BYTES, as Node's
// own `randomBytes` does: the WebCrypto call's fixed cost (argument conversion) is paid once per
// pool, not once per id. Every byte is handed out once; the pool is never read twice.
const POOL_BYTES = 4096
let pool = new Uint8Array(0)
let poolAt = 0

/** Fills `out` with cryptographically secure random bytes. */
export function fillRandom(out: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (out.byteLength > POOL_BYTES) {
    for (let at = 0; at < out.byteLength; at += 65_536) crypto.getRandomValues(out.subarray(at, Math.min(at + 65_536, out.byteLength)))
    return out
  }
  if (poolAt + out.byteLength > pool.byteLength) {
    pool = crypto.getRandomValues(new Uint8Array(POOL_BYTES))
    poolAt = 0
  }
  out.set(pool.subarray(poolAt, poolAt + out.byteLength))
  pool.fill(0, poolAt, poolAt + out.byteLength)
  poolAt += out.byteLength
  return out
}

/** Base64url of SHA-256 over the ASCII code verifier: the PKCE `S256` code challenge (RFC 7636). */
export function pkceChallenge(verifier: string): string {
  return toBase64Url(sha256(encoder.encode(verifier)))
}

/** Base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Decodes base64url; returns null for malformed input. */
export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null
  try {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
    const bin = atob(b64)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    // Reject non-canonical encodings (unused low bits set in the last character, or a length
    // that cannot occur): otherwise several strings decode to the same bytes and a signed
    // handle would be malleable.
    if (toBase64Url(out) !== text) return null
    return out
  } catch {
    return null
  }
}

/** `bytes` random bytes as base64url (default 32 bytes = 256 bits). */
export function randomToken(bytes = 32): string {
  return toBase64Url(fillRandom(new Uint8Array(bytes)))
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let hex = ''
  for (const b of bytes) hex += HEX[b]
  return hex
}

/** Hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return toHex(sha256(encoder.encode(text)))
}

/** Constant-time comparison of two byte arrays (time depends only on the lengths). */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.byteLength ^ b.byteLength
  const n = Math.max(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return diff === 0
}

/**
 * Constant-time string comparison (time depends only on the lengths). Use for tokens, hashes
 * and anything an attacker could probe byte by byte.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  return bytesEqual(encoder.encode(a), encoder.encode(b))
}

/** Purposes for which keys are derived from the engine secret. */
export type KeyPurpose = 'pipeline-handle' | 'one-time-token' | 'session-binding'

const KEY_PURPOSES: readonly KeyPurpose[] = ['pipeline-handle', 'one-time-token', 'session-binding']

/**
 * Purpose-bound HMAC keys derived from the engine secret with HKDF-SHA-256, so a value signed
 * for one purpose never verifies for another.
 */
export interface Keyring {
  sign(purpose: KeyPurpose, message: string): string
  verify(purpose: KeyPurpose, message: string, signature: string): boolean
}

/** Minimum secret length in bytes. */
export const MIN_SECRET_BYTES = 32

/** Creates a {@link Keyring} from a secret of at least 32 bytes. Throws for a short secret. */
export function createKeyring(secret: string | Uint8Array): Keyring {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : secret
  if (raw.byteLength < MIN_SECRET_BYTES) {
    throw new RangeError(`secret must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  // One HMAC state per purpose, keyed once (HKDF-SHA-256, salt "ssoflow/v1", info = purpose:
  // the same keys WebCrypto's deriveKey gave before); each call clones it, so the key's padded
  // blocks are hashed once per engine, not once per call.
  const salt = encoder.encode('ssoflow/v1')
  const macs = new Map(
    KEY_PURPOSES.map((purpose) => [purpose, hmac.create(sha256, hkdf(sha256, raw, salt, encoder.encode(purpose), 32))] as const),
  )
  const macFor = (purpose: KeyPurpose, message: string): Uint8Array => {
    const mac = macs.get(purpose)
    if (!mac) throw new TypeError(`unknown key purpose: ${String(purpose)}`)
    return mac.clone().update(encoder.encode(message)).digest()
  }
  return {
    sign(purpose, message) {
      return toBase64Url(macFor(purpose, message))
    },
    verify(purpose, message, signature) {
      const bytes = fromBase64Url(signature)
      if (bytes?.byteLength !== 32) return false
      return bytesEqual(macFor(purpose, message), bytes)
    },
  }
}
