/**
 * Web-standard crypto helpers (WebCrypto + TextEncoder only; runs on Node 20+, Deno, Bun).
 * @module
 */

const encoder = new TextEncoder()

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
  const buf = new Uint8Array(bytes)
  crypto.getRandomValues(buf)
  return toBase64Url(buf)
}

/** Hex SHA-256 of a UTF-8 string. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
  let hex = ''
  for (const b of digest) hex += b.toString(16).padStart(2, '0')
  return hex
}

/**
 * Constant-time string comparison (time depends only on the lengths). Use for tokens, hashes
 * and anything an attacker could probe byte by byte.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const ab = encoder.encode(a)
  const bb = encoder.encode(b)
  let diff = ab.length ^ bb.length
  const n = Math.max(ab.length, bb.length)
  for (let i = 0; i < n; i++) diff |= (ab[i] ?? 0) ^ (bb[i] ?? 0)
  return diff === 0
}

/** Purposes for which keys are derived from the engine secret. */
export type KeyPurpose = 'pipeline-handle' | 'one-time-token' | 'session-binding'

/**
 * Purpose-bound HMAC keys derived from the engine secret with HKDF-SHA-256, so a value signed
 * for one purpose never verifies for another.
 */
export interface Keyring {
  sign(purpose: KeyPurpose, message: string): Promise<string>
  verify(purpose: KeyPurpose, message: string, signature: string): Promise<boolean>
}

/** Minimum secret length in bytes. */
export const MIN_SECRET_BYTES = 32

/** Creates a {@link Keyring} from a secret of at least 32 bytes. Throws for a short secret. */
export function createKeyring(secret: string | Uint8Array): Keyring {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : secret
  if (raw.byteLength < MIN_SECRET_BYTES) {
    throw new RangeError(`secret must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  const material = crypto.subtle.importKey('raw', raw as BufferSource, 'HKDF', false, ['deriveKey'])
  const keys = new Map<KeyPurpose, Promise<CryptoKey>>()
  const keyFor = (purpose: KeyPurpose): Promise<CryptoKey> => {
    let key = keys.get(purpose)
    if (!key) {
      key = material.then((m) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('ssoflow/v1'), info: encoder.encode(purpose) },
          m,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign', 'verify'],
        ),
      )
      keys.set(purpose, key)
    }
    return key
  }
  return {
    async sign(purpose, message) {
      const sig = await crypto.subtle.sign('HMAC', await keyFor(purpose), encoder.encode(message))
      return toBase64Url(new Uint8Array(sig))
    },
    async verify(purpose, message, signature) {
      const bytes = fromBase64Url(signature)
      if (bytes?.byteLength !== 32) return false
      // WebCrypto's HMAC verify compares in constant time.
      return crypto.subtle.verify('HMAC', await keyFor(purpose), bytes as BufferSource, encoder.encode(message))
    },
  }
}
