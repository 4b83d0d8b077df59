// The engine's crypto helpers are synchronous (@noble/hashes) since issue 10; these tests pin them
// to WebCrypto's results, so handles, bindings and token hashes written before the change still
// verify after it (and on every runtime), and to RFC 7636's PKCE vector.
import fc from 'fast-check'
import * as oauth from 'oauth4webapi'
import { describe, expect, it } from 'vitest'
import {
  createKeyring,
  fillRandom,
  fromBase64Url,
  hashing,
  pkceChallenge,
  randomToken,
  sha256Hex,
  timingSafeEqual,
  toHex,
} from '../../src/state/crypto.js'

const enc = new TextEncoder()
const SECRET = 'a-secret-of-at-least-thirty-two-bytes!!'

async function webCryptoHmac(secret: string, purpose: string, message: string): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey('raw', enc.encode(secret), 'HKDF', false, ['deriveKey'])
  const key = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: enc.encode('ssoflow/v1'), info: enc.encode(purpose) },
    material,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  )
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(message)))
}

describe('state/crypto', () => {
  it('sha256Hex equals WebCrypto SHA-256, for ASCII, Unicode and empty input', async () => {
    for (const text of ['', 'abc', 'ssoflow:session:s1', 'Zoë ✓ \u{1F600}', 'x'.repeat(1000)]) {
      const web = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(text))))
      expect(sha256Hex(text)).toBe(web)
    }
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('keyring signatures equal WebCrypto HKDF → HMAC-SHA-256 per purpose (handles from before stay valid)', async () => {
    const ring = createKeyring(SECRET)
    for (const purpose of ['pipeline-handle', 'one-time-token', 'session-binding'] as const) {
      for (const message of ['id-1', '', 'ü'.repeat(300)]) {
        const sig = ring.sign(purpose, message)
        expect(fromBase64Url(sig)).toEqual(await webCryptoHmac(SECRET, purpose, message))
        expect(ring.verify(purpose, message, sig)).toBe(true)
      }
    }
    // A purpose's signature never verifies for another purpose, another message or another secret.
    const sig = ring.sign('pipeline-handle', 'id-1')
    expect(ring.verify('one-time-token', 'id-1', sig)).toBe(false)
    expect(ring.verify('pipeline-handle', 'id-2', sig)).toBe(false)
    expect(createKeyring(`${SECRET}?`).verify('pipeline-handle', 'id-1', sig)).toBe(false)
    // Signing twice gives the same result (the per-purpose HMAC state is cloned, never consumed).
    expect(ring.sign('pipeline-handle', 'id-1')).toBe(sig)
  })

  it('keyring.verify refuses truncated, extended, non-canonical and flipped signatures', () => {
    const ring = createKeyring(enc.encode(SECRET))
    const sig = ring.sign('one-time-token', 'm')
    expect(ring.verify('one-time-token', 'm', sig.slice(0, -1))).toBe(false)
    expect(ring.verify('one-time-token', 'm', `${sig}A`)).toBe(false)
    expect(ring.verify('one-time-token', 'm', '')).toBe(false)
    const bytes = fromBase64Url(sig) as Uint8Array
    for (const i of [0, 15, 31]) {
      const flipped = bytes.slice()
      flipped[i] = (flipped[i] as number) ^ 1
      let b = ''
      for (const x of flipped) b += String.fromCharCode(x)
      const text = btoa(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
      expect(ring.verify('one-time-token', 'm', text)).toBe(false)
    }
  })

  it('a secret shorter than 32 bytes throws', () => {
    expect(() => createKeyring('x'.repeat(31))).toThrow(RangeError)
    expect(() => createKeyring(new Uint8Array(31))).toThrow(RangeError)
  })

  it('pkceChallenge is RFC 7636 S256 (appendix B vector) and equals oauth4webapi', async () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
    const verifier = oauth.generateRandomCodeVerifier()
    expect(pkceChallenge(verifier)).toBe(await oauth.calculatePKCECodeChallenge(verifier))
  })

  it('fillRandom hands out fresh bytes across pool refills and for large requests', () => {
    const seen = new Set<string>()
    // 400 draws of 24 bytes cross the 4096-byte pool twice.
    for (let i = 0; i < 400; i++) seen.add(toHex(fillRandom(new Uint8Array(24))))
    expect(seen.size).toBe(400)
    const big = fillRandom(new Uint8Array(70_000))
    expect(big.byteLength).toBe(70_000)
    // Both halves (two getRandomValues calls of at most 65 536 bytes) are filled.
    expect(big.subarray(0, 1024).some((b) => b !== 0)).toBe(true)
    expect(big.subarray(69_000).some((b) => b !== 0)).toBe(true)
    expect(randomToken(32)).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(randomToken(16)).not.toBe(randomToken(16))
  })

  it('timingSafeEqual compares whole strings', () => {
    expect(timingSafeEqual('abc', 'abc')).toBe(true)
    expect(timingSafeEqual('abc', 'abd')).toBe(false)
    expect(timingSafeEqual('abc', 'ab')).toBe(false)
    expect(timingSafeEqual('', '')).toBe(true)
    expect(timingSafeEqual('é', 'e')).toBe(false)
  })

  // On Node, SHA-256 is node:crypto's; @noble/hashes elsewhere. Both must give the same bytes for
  // every input (a binding or token hash written on one runtime is found on the other).
  it('node:crypto is used on Node, and gives what @noble/hashes gives for any text', () => {
    const node = hashing.node
    expect(node).not.toBeNull()
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: 'binary', minLength: 200, maxLength: 2000 }),
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string(),
    )
    try {
      fc.assert(
        fc.property(text, (t) => {
          hashing.node = node
          const fast = [sha256Hex(t), pkceChallenge(t)]
          hashing.node = null
          const slow = [sha256Hex(t), pkceChallenge(t)]
          expect(fast).toEqual(slow)
        }),
        { numRuns: 1000 },
      )
      // The fallback against the fixed vectors as well.
      hashing.node = null
      expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
      expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
    } finally {
      hashing.node = node
    }
  })
})
