/**
 * The short lists of XML signature and encryption algorithms a SAML response may use. Checked on
 * every `ds:Signature` and `xenc:EncryptionMethod` of the response (and of a decrypted assertion)
 * before any signature is verified. SHA-1 (signature and digest) only when the provider config
 * says `allowSha1`; never HMAC, RSA 1.5 key transport or 3DES.
 *
 * @module
 */
import { descendants, NS, onlyChild } from './xml.js'

const SHA1_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1'
const SHA1_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1'

/** Signature methods accepted (RSA PKCS#1 v1.5 with SHA-256/512, RSA-PSS with SHA-256). */
export const SIGNATURE_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
]

/** Reference digests accepted. */
export const DIGEST_ALGORITHMS: readonly string[] = ['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmlenc#sha512']

/** Canonicalizations accepted (none "with comments"). */
export const CANONICALIZATION_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
]

/** Reference transforms accepted. */
export const TRANSFORM_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  ...CANONICALIZATION_ALGORITHMS,
]

/** Key transport for encrypted assertions: RSA-OAEP only. */
export const KEY_TRANSPORT_ALGORITHMS: readonly string[] = ['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p']

/** Content encryption for encrypted assertions: AES-GCM, and AES-CBC (common at IdPs). */
export const BLOCK_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
]

/** An algorithm that is not allowed, where it was found. */
export interface RefusedAlgorithm {
  readonly algorithm: string
  readonly use: 'signature' | 'digest' | 'canonicalization' | 'transform' | 'key-transport' | 'encryption'
}

function allowed(list: readonly string[], value: string | null, sha1: string | null, allowSha1: boolean): boolean {
  if (value === null) return false
  if (list.includes(value)) return true
  return allowSha1 && sha1 !== null && value === sha1
}

/**
 * The first algorithm under `root` that is not on the lists (null when all are): every
 * `ds:Signature` (SignedInfo canonicalization and signature method, each reference's transforms
 * and digest) and every `xenc:EncryptionMethod` (block cipher of EncryptedData, key transport of
 * EncryptedKey). A signature without a SignedInfo, method or algorithm attribute counts as refused.
 */
export function refusedAlgorithm(root: Node, allowSha1: boolean): RefusedAlgorithm | null {
  for (const signature of descendants(root, NS.dsig, 'Signature')) {
    const signedInfo = onlyChild(signature, NS.dsig, 'SignedInfo')
    if (!signedInfo) return { algorithm: '(no SignedInfo)', use: 'signature' }
    const c14n = onlyChild(signedInfo, NS.dsig, 'CanonicalizationMethod')?.getAttribute('Algorithm') ?? null
    if (!allowed(CANONICALIZATION_ALGORITHMS, c14n, null, false)) return { algorithm: c14n ?? '(none)', use: 'canonicalization' }
    const method = onlyChild(signedInfo, NS.dsig, 'SignatureMethod')?.getAttribute('Algorithm') ?? null
    if (!allowed(SIGNATURE_ALGORITHMS, method, SHA1_SIGNATURE, allowSha1)) return { algorithm: method ?? '(none)', use: 'signature' }
    for (const reference of descendants(signedInfo, NS.dsig, 'Reference')) {
      for (const transform of descendants(reference, NS.dsig, 'Transform')) {
        const t = transform.getAttribute('Algorithm')
        if (!allowed(TRANSFORM_ALGORITHMS, t, null, false)) return { algorithm: t ?? '(none)', use: 'transform' }
      }
      const digest = onlyChild(reference, NS.dsig, 'DigestMethod')?.getAttribute('Algorithm') ?? null
      if (!allowed(DIGEST_ALGORITHMS, digest, SHA1_DIGEST, allowSha1)) return { algorithm: digest ?? '(none)', use: 'digest' }
    }
  }
  for (const method of descendants(root, NS.xenc, 'EncryptionMethod')) {
    const parent = method.parentNode as Element | null
    const algorithm = method.getAttribute('Algorithm')
    if (parent?.localName === 'EncryptedKey') {
      if (!allowed(KEY_TRANSPORT_ALGORITHMS, algorithm, null, false)) return { algorithm: algorithm ?? '(none)', use: 'key-transport' }
    } else if (!allowed(BLOCK_ALGORITHMS, algorithm, null, false)) return { algorithm: algorithm ?? '(none)', use: 'encryption' }
  }
  return null
}
