/**
 * Crypto helpers for the engine: SHA-256, HMAC-SHA-256 and HKDF from `@noble/hashes`
 * (synchronous, audited, pure JavaScript, no dependencies), randomness from WebCrypto's
 * `getRandomValues`. Runs unchanged on Node 20+, Deno, Bun and in browsers. On Node (20.16+,
 * `process.getBuiltinModule`) SHA-256 is `node:crypto`'s one-shot `hash`, synchronous too and
 * about 4 times faster for the short strings hashed here (with its hex or base64url encoding);
 * same bytes in (the text is UTF-8 encoded here either way), same digest out. HMAC stays
 * `@noble/hashes`' (node:crypto's `createHmac` is no faster for these messages).
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

interface NodeHashing {
  /** One-shot digest (Node 20.12+), encoded by Node. */
  hash(algorithm: 'sha256', data: Uint8Array, outputEncoding: 'hex' | 'base64url'): string
}

/** `node:crypto`'s one-shot `hash` on Node (20.16+: `process.getBuiltinModule`); null elsewhere (Deno, Bun, browsers). */
function loadNodeHashing(): NodeHashing | null {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { getBuiltinModule?: (id: string) => unknown } }
  if (g.Deno !== undefined || g.Bun !== undefined) return null
  try {
    const mod = g.process?.getBuiltinModule?.('node:crypto') as Partial<NodeHashing> | undefined
    return mod && typeof mod.hash === 'function' ? (mod as NodeHashing) : null
  } catch {
    return null
  }
}

/** Which implementation hashes: `node:crypto` where it loads, else `@noble/hashes` (tests switch it). */
export const hashing: { node: NodeHashing | null } = { node: loadNodeHashing() }

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
  const bytes = encoder.encode(verifier)
  return hashing.node ? hashing.node.hash('sha256', bytes, 'base64url') : toBase64Url(sha256(bytes))
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Sextet of each base64url character by char code, -1 for any other character. */
const B64URL_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64URL_VALUE[B64URL.charCodeAt(i)] = i

/** Base64url without padding (a table walk: no binary string, no `btoa`, no regex passes). */
export function toBase64Url(bytes: Uint8Array): string {
  let out = ''
  const n = bytes.length
  let i = 0
  for (; i + 2 < n; i += 3) {
    const v = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number)
    out += B64URL.charAt(v >> 18) + B64URL.charAt((v >> 12) & 63) + B64URL.charAt((v >> 6) & 63) + B64URL.charAt(v & 63)
  }
  if (n - i === 1) {
    const v = (bytes[i] as number) << 16
    out += B64URL.charAt(v >> 18) + B64URL.charAt((v >> 12) & 63)
  } else if (n - i === 2) {
    const v = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8)
    out += B64URL.charAt(v >> 18) + B64URL.charAt((v >> 12) & 63) + B64URL.charAt((v >> 6) & 63)
  }
  return out
}

/**
 * Decodes base64url (no padding); returns null for malformed input. Non-canonical encodings
 * are refused (unused low bits set in the last character, or a length that cannot occur):
 * otherwise several strings decode to the same bytes and a signed handle would be malleable.
 */
export function fromBase64Url(text: string): Uint8Array | null {
  const len = text.length
  const rest = len % 4
  if (rest === 1) return null
  const out = new Uint8Array(((len - rest) / 4) * 3 + (rest === 0 ? 0 : rest - 1))
  const at = (k: number): number => {
    const c = text.charCodeAt(k)
    return c < 128 ? (B64URL_VALUE[c] as number) : -1
  }
  let o = 0
  let i = 0
  for (; i + 3 < len; i += 4) {
    const a = at(i)
    const b = at(i + 1)
    const c = at(i + 2)
    const d = at(i + 3)
    if ((a | b | c | d) < 0) return null
    const v = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = v >> 16
    out[o++] = (v >> 8) & 255
    out[o++] = v & 255
  }
  if (rest === 2) {
    const a = at(i)
    const b = at(i + 1)
    if ((a | b) < 0 || (b & 15) !== 0) return null
    out[o] = (a << 2) | (b >> 4)
  } else if (rest === 3) {
    const a = at(i)
    const b = at(i + 1)
    const c = at(i + 2)
    if ((a | b | c) < 0 || (c & 3) !== 0) return null
    out[o++] = (a << 2) | (b >> 4)
    out[o] = ((b & 15) << 4) | (c >> 2)
  }
  return out
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
  const bytes = encoder.encode(text)
  return hashing.node ? hashing.node.hash('sha256', bytes, 'hex') : toHex(sha256(bytes))
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
