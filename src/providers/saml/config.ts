/**
 * The stored SAML provider config (the auth provider row's `config`) and IdP certificates.
 *
 * @module
 */
import { X509Certificate } from 'node:crypto'
import { z } from 'zod'
import type { JsonObject } from '../../model/identity.js'
import type { SamlAttributeMapping, SamlPreset } from './mapping.js'

/** Most IdP signing certificates kept at once (rotation: the old and the new, with room to spare). */
export const MAX_CERTIFICATES = 10
/** Longest entity id or URL accepted. */
export const MAX_URI_LENGTH = 1024
/** Longest base64 certificate accepted. */
const MAX_CERTIFICATE_LENGTH = 16 * 1024
const MAX_ATTRIBUTE_NAME = 256

/**
 * Stored config of the SAML provider. Contains no secret: IdP certificates are public, and the
 * SP's own keys live in the provider options, never in storage.
 * @group Providers
 */
export interface SamlConfig {
  readonly v: 1
  readonly idp: {
    readonly entityId: string
    /** HTTP-Redirect binding SingleSignOnService location. */
    readonly ssoUrl: string
    /** Signing certificates, base64 DER; a signature by any of them is accepted (rotation). */
    readonly certificates: readonly string[]
  }
  /** Our entity id as given to the IdP at setup (the `Audience` we require). */
  readonly sp: { readonly entityId: string }
  readonly preset: SamlPreset | 'custom'
  readonly mapping: SamlAttributeMapping
  readonly nameIdFormat: string
  /** SHA-1 signatures and digests accepted (off unless the admin chose it; a setup warning). */
  readonly allowSha1: boolean
  /** IdP-initiated (unsolicited) responses accepted (off unless the admin chose it). */
  readonly idpInitiated: boolean
}

const uri = z.string().min(1).max(MAX_URI_LENGTH)
const attributeName = z.string().min(1).max(MAX_ATTRIBUTE_NAME)

const configSchema = z.strictObject({
  v: z.literal(1),
  idp: z.strictObject({
    entityId: uri,
    ssoUrl: uri,
    certificates: z.array(z.string().min(1).max(MAX_CERTIFICATE_LENGTH)).min(1).max(MAX_CERTIFICATES),
  }),
  sp: z.strictObject({ entityId: uri }),
  preset: z.enum(['okta', 'entra', 'google', 'onelogin', 'jumpcloud', 'custom']),
  mapping: z.strictObject({
    id: attributeName,
    email: attributeName,
    firstName: attributeName.nullable(),
    lastName: attributeName.nullable(),
    displayName: attributeName.nullable(),
  }),
  nameIdFormat: uri,
  allowSha1: z.boolean(),
  idpInitiated: z.boolean(),
})

/** Reads a stored config; null when malformed. */
export function parseSamlConfig(value: unknown): SamlConfig | null {
  const parsed = configSchema.safeParse(value)
  return parsed.success ? (parsed.data as SamlConfig) : null
}

/** The config as stored JSON. */
export function samlConfigJson(config: SamlConfig): JsonObject {
  return {
    v: config.v,
    idp: { entityId: config.idp.entityId, ssoUrl: config.idp.ssoUrl, certificates: [...config.idp.certificates] },
    sp: { entityId: config.sp.entityId },
    preset: config.preset,
    mapping: { ...config.mapping },
    nameIdFormat: config.nameIdFormat,
    allowSha1: config.allowSha1,
    idpInitiated: config.idpInitiated,
  }
}

/** Why a certificate was refused. */
export type CertificateProblem = 'not-base64' | 'unparseable' | 'weak-key'

/**
 * Checks one certificate (PEM, or the base64 DER of `ds:X509Certificate`): it must parse as
 * X.509 and carry an RSA key of at least 2048 bits or an EC key. Returns the base64 DER.
 */
export function normalizeCertificate(text: string): { ok: true; base64: string } | { ok: false; problem: CertificateProblem } {
  const body = text
    .replace(/-----BEGIN CERTIFICATE-----/g, '')
    .replace(/-----END CERTIFICATE-----/g, '')
    .replace(/\s+/g, '')
  if (body.length === 0 || body.length > MAX_CERTIFICATE_LENGTH || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    return { ok: false, problem: 'not-base64' }
  }
  let cert: X509Certificate
  try {
    cert = new X509Certificate(Buffer.from(body, 'base64'))
  } catch {
    return { ok: false, problem: 'unparseable' }
  }
  const key = cert.publicKey
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
    if (bits < 2048) return { ok: false, problem: 'weak-key' }
  } else if (key.asymmetricKeyType !== 'ec') return { ok: false, problem: 'weak-key' }
  return { ok: true, base64: cert.raw.toString('base64') }
}

/** A base64 DER certificate as PEM. */
export function certificatePem(base64: string): string {
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`
}

/** Splits pasted text holding one or more certificates (PEM blocks, or one bare base64 body). */
export function splitCertificates(text: string): string[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)
  if (blocks && blocks.length > 0) return blocks
  const trimmed = text.trim()
  return trimmed.length > 0 ? [trimmed] : []
}
