/**
 * A synchronous check of an RS256 ID token signature with Node's `node:crypto`, for the common
 * case, before oauth4webapi's own check (`validateApplicationLevelSignature`, which verifies with
 * `crypto.subtle`: on Node an asynchronous job on libuv's thread pool and back, about 50-75 µs of
 * latency and WebIDL conversion per login for a 25 µs verification).
 *
 * It only ever answers "verified": for anything it does not handle exactly as oauth4webapi would
 * (another runtime, another algorithm, no fresh key set in the cache, not exactly one matching
 * key, a key it cannot import, a signature that does not verify), it answers `false` and the
 * caller runs oauth4webapi's check, which decides (and refetches the key set, or throws).
 *
 * The key set is the one oauth4webapi fetched and stored in the caller's `jwksCache`, used only
 * while oauth4webapi itself would use it (younger than 300 s); the key is chosen by oauth4webapi's
 * own rules for RSA keys (`kty`, `kid`, `alg`, `use`, `key_ops`), and must be at least 2048 bits.
 *
 * @module
 */

import type * as oauth from 'oauth4webapi'
import { fromBase64Url } from '../../state/crypto.js'

interface NodeKeyObject {
  readonly asymmetricKeyType?: string
  readonly asymmetricKeyDetails?: { readonly modulusLength?: number }
}

interface NodeCrypto {
  createPublicKey(input: { key: object; format: 'jwk' }): NodeKeyObject
  verify(algorithm: string, data: Uint8Array, key: NodeKeyObject, signature: Uint8Array): boolean
}

/** `node:crypto` on Node (20.16+: `process.getBuiltinModule`); null on other runtimes. */
function loadNodeCrypto(): NodeCrypto | null {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { getBuiltinModule?: (id: string) => unknown } }
  if (g.Deno !== undefined || g.Bun !== undefined) return null
  try {
    const mod = g.process?.getBuiltinModule?.('node:crypto') as Partial<NodeCrypto> | undefined
    return mod && typeof mod.createPublicKey === 'function' && typeof mod.verify === 'function' ? (mod as NodeCrypto) : null
  } catch {
    return null
  }
}

const nodeCrypto = loadNodeCrypto()
const encoder = new TextEncoder()
/** Imported keys, per JWK object of a cached key set (a refetched set brings new objects). */
const imported = new WeakMap<object, NodeKeyObject | null>()

function importRsaKey(crypto: NodeCrypto, jwk: Record<string, unknown>): NodeKeyObject | null {
  if (imported.has(jwk)) return imported.get(jwk) ?? null
  let key: NodeKeyObject | null = null
  // A public RSA key only: a set that publishes private parts goes the slow way (and fails there).
  if (typeof jwk.n === 'string' && typeof jwk.e === 'string' && jwk.d === undefined) {
    try {
      const k = crypto.createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' })
      const bits = k.asymmetricKeyDetails?.modulusLength
      if (k.asymmetricKeyType === 'rsa' && typeof bits === 'number' && bits >= 2048) key = k
    } catch {
      key = null
    }
  }
  imported.set(jwk, key)
  return key
}

/**
 * True when `jws` (a compact JWS, the ID token oauth4webapi has just validated) carries a valid
 * RS256 signature by the one key of the cached set that oauth4webapi would select. False means
 * "not decided here", never "invalid".
 */
export function verifiedRs256(jws: unknown, cache: oauth.JWKSCacheInput, nowMs: number): boolean {
  if (nodeCrypto === null || typeof jws !== 'string') return false
  const parts = jws.split('.')
  if (parts.length !== 3) return false
  const [protectedHeader = '', payload = '', encodedSignature = ''] = parts
  // oauth4webapi's freshness rule for a cached key set (`isFreshJwksCache`).
  const { uat, jwks } = cache as { uat?: unknown; jwks?: { keys?: unknown } }
  if (typeof uat !== 'number' || Math.floor(nowMs / 1000) - uat >= 300) return false
  const keys = jwks?.keys
  if (!Array.isArray(keys)) return false
  const headerBytes = fromBase64Url(protectedHeader)
  const signature = fromBase64Url(encodedSignature)
  if (!headerBytes || !signature) return false
  let header: { alg?: unknown; kid?: unknown; crit?: unknown }
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes)) as typeof header
  } catch {
    return false
  }
  if (header === null || typeof header !== 'object' || header.alg !== 'RS256' || header.crit !== undefined) return false
  const kid = header.kid
  // oauth4webapi's key selection (`getPublicSigKeyFromIssuerJwksUri`) for an RSA algorithm.
  const candidates = keys.filter((jwk: unknown) => {
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return false
    const k = jwk as { kty?: unknown; kid?: unknown; alg?: unknown; use?: unknown; key_ops?: unknown }
    if (k.kty !== 'RSA') return false
    if (kid !== undefined && kid !== k.kid) return false
    if (k.alg !== undefined && k.alg !== 'RS256') return false
    if (k.use !== undefined && k.use !== 'sig') return false
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) return false
    return true
  })
  if (candidates.length !== 1) return false
  const key = importRsaKey(nodeCrypto, candidates[0] as Record<string, unknown>)
  if (!key) return false
  try {
    return nodeCrypto.verify('sha256', encoder.encode(`${protectedHeader}.${payload}`), key, signature) === true
  } catch {
    return false
  }
}
