/**
 * A self-signed X.509 certificate for the demo's SAML IdP, made at start with node:crypto: an RSA
 * key pair and a DER certificate built by hand (version 3, CN subject = issuer, SHA-256 signature),
 * checked by `crypto.X509Certificate`. A stand-in for the certificate Okta or Entra ID shows you.
 * (The tests use it too, through test/helpers/x509.ts.)
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto'

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts))
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts))
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'))
const nul = () => Buffer.from([0x05, 0x00])

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const out: number[] = [(a as number) * 40 + (b as number)]
  for (const n of rest) {
    const chunk: number[] = []
    let v = n
    chunk.unshift(v & 0x7f)
    v >>= 7
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80)
      v >>= 7
    }
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

function integer(bytes: Buffer): Buffer {
  const body = (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes
  return tlv(0x02, body)
}

function time(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0')
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`
  return tlv(0x17, Buffer.from(s, 'ascii'))
}

function name(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), utf8(cn))))
}

/** A key pair with its self-signed certificate, in the forms the IdP needs. */
export interface DemoCertificate {
  readonly privateKey: KeyObject
  readonly privateKeyPem: string
  readonly certificatePem: string
  /** The DER certificate in base64, as in `ds:X509Certificate` and metadata. */
  readonly certificateBase64: string
}

/** Makes a key pair and a self-signed certificate for `commonName`, valid from yesterday for `days`. */
export function makeCertificate(
  commonName: string,
  options: { days?: number; type?: 'rsa' | 'ec'; rsaBits?: number } = {},
): DemoCertificate {
  const type = options.type ?? 'rsa'
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: options.rsaBits ?? 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const algorithm = type === 'rsa' ? seq(oid('1.2.840.113549.1.1.11'), nul()) : seq(oid('1.2.840.10045.4.3.2'))
  const notBefore = new Date(Date.now() - 24 * 3600 * 1000)
  const notAfter = new Date(notBefore.getTime() + (options.days ?? 365) * 24 * 3600 * 1000)
  // A positive serial in minimal DER: the first byte is 0x01-0x7f (a leading 0x00 before a byte
  // under 0x80 would not be minimal, and OpenSSL refuses such a certificate).
  const serial = randomBytes(12)
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm,
    name(commonName),
    seq(time(notBefore), time(notAfter)),
    name(commonName),
    spki,
  )
  const signature = sign('sha256', tbs, privateKey)
  const der = seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])))
  const cert = new X509Certificate(der)
  if (!cert.verify(publicKey)) throw new Error('x509 demo helper: self-signature does not verify')
  const certificateBase64 = der.toString('base64')
  return {
    privateKey: createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificatePem: cert.toString(),
    certificateBase64,
  }
}
