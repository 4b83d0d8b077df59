/**
 * A real signing SAML IdP for tests: reads the AuthnRequest from the SP's redirect URL, builds a
 * Response the way Okta/Entra do (Issuer, Status, one Assertion with Subject/NameID, a bearer
 * SubjectConfirmation, Conditions with an AudienceRestriction, an AuthnStatement and attributes),
 * signs it with xml-crypto using a key pair and certificate made at test time, optionally
 * encrypts the assertion for the SP (xml-encryption), and base64-encodes it for the ACS POST.
 * Every field can be overridden to build the hostile variants.
 */
import { randomBytes, X509Certificate } from 'node:crypto'
import { inflateRawSync } from 'node:zlib'
import { DOMParser } from '@xmldom/xmldom'
import { SignedXml } from 'xml-crypto'
import * as xmlenc from 'xml-encryption'
import { makeCertificate, type TestCertificate } from './x509.js'

const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol'
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion'

export const ALG = {
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
} as const

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
const newId = () => `_${randomBytes(16).toString('hex')}`

/** What the SP asked for, read from its HTTP-Redirect AuthnRequest URL. */
export interface ReadRequest {
  readonly id: string
  readonly acsUrl: string
  readonly issuer: string
  readonly relayState: string
  readonly nameIdFormat: string | null
  readonly signed: boolean
}

/** Every field of a response; defaults answer `request` for `user` now. */
export interface ResponseFields {
  readonly nameId: string
  readonly nameIdFormat?: string
  readonly attributes?: Readonly<Record<string, string | readonly string[]>>
  readonly inResponseTo?: string | null
  readonly scdInResponseTo?: string | null
  readonly destination?: string | null
  readonly recipient?: string
  readonly audience?: string
  readonly issuer?: string
  readonly responseIssuer?: string | null
  readonly assertionId?: string
  readonly responseId?: string
  readonly issueInstant?: Date
  readonly notBefore?: Date | null
  readonly notOnOrAfter?: Date | null
  readonly scdNotOnOrAfter?: Date | null
  readonly status?: string
  readonly sessionIndex?: string
}

export interface SignOptions {
  /** What carries the signature. @defaultValue 'assertion' */
  readonly target?: 'assertion' | 'response' | 'both' | 'none'
  readonly signatureAlgorithm?: string
  readonly digestAlgorithm?: string
  /** Sign with this key pair instead of the IdP's. */
  readonly cert?: TestCertificate
  /** Encrypt the (signed) assertion for this SP certificate (PEM). */
  readonly encryptFor?: string
  readonly encryptionAlgorithm?: string
}

export class TestIdp {
  readonly entityId: string
  readonly ssoUrl: string
  readonly cert: TestCertificate
  /** The clock the IdP stamps responses with. */
  now: () => Date = () => new Date()

  constructor(options: { entityId?: string; ssoUrl?: string; cert?: TestCertificate } = {}) {
    this.entityId = options.entityId ?? 'https://idp.example.test/saml/metadata'
    this.ssoUrl = options.ssoUrl ?? 'https://idp.example.test/saml/sso'
    this.cert = options.cert ?? makeCertificate('idp.example.test')
  }

  /** IdP metadata XML naming `certs` (default: the IdP's own) as signing keys. */
  metadata(certs: readonly TestCertificate[] = [this.cert], extra: { wantSigned?: boolean; ssoUrl?: string } = {}): string {
    const keys = certs
      .map(
        (c) =>
          `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${c.certificateBase64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
      )
      .join('')
    return (
      `<?xml version="1.0" encoding="UTF-8"?>` +
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(this.entityId)}">` +
      `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"${extra.wantSigned ? ' WantAuthnRequestsSigned="true"' : ''}>${keys}` +
      `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(extra.ssoUrl ?? this.ssoUrl)}"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${escapeXml(extra.ssoUrl ?? this.ssoUrl)}"/>` +
      `</md:IDPSSODescriptor></md:EntityDescriptor>`
    )
  }

  /** Reads the AuthnRequest the SP put in its redirect URL (deflated, base64, HTTP-Redirect). */
  static readRequest(redirectUrl: string): ReadRequest {
    const url = new URL(redirectUrl)
    const encoded = url.searchParams.get('SAMLRequest')
    if (!encoded) throw new Error('no SAMLRequest in the redirect')
    const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8')
    const doc = new DOMParser().parseFromString(xml, 'text/xml')
    const root = doc.documentElement as unknown as Element
    const issuer = root.getElementsByTagNameNS(SAML, 'Issuer')[0]?.textContent ?? ''
    const policy = root.getElementsByTagNameNS(SAMLP, 'NameIDPolicy')[0]
    return {
      id: root.getAttribute('ID') ?? '',
      acsUrl: root.getAttribute('AssertionConsumerServiceURL') ?? '',
      issuer,
      relayState: url.searchParams.get('RelayState') ?? '',
      nameIdFormat: policy?.getAttribute('Format') ?? null,
      signed: url.searchParams.has('Signature'),
    }
  }

  /** The unsigned assertion XML. */
  assertionXml(fields: ResponseFields & { recipient: string; audience: string }): string {
    const now = fields.issueInstant ?? this.now()
    const notBefore = fields.notBefore === undefined ? new Date(now.getTime() - 30_000) : fields.notBefore
    const notOnOrAfter = fields.notOnOrAfter === undefined ? new Date(now.getTime() + 5 * 60_000) : fields.notOnOrAfter
    const scdNotOnOrAfter = fields.scdNotOnOrAfter === undefined ? new Date(now.getTime() + 5 * 60_000) : fields.scdNotOnOrAfter
    const inResponseTo = fields.scdInResponseTo === undefined ? fields.inResponseTo : fields.scdInResponseTo
    const attrs = Object.entries(fields.attributes ?? {})
      .map(([name, value]) => {
        const values = (typeof value === 'string' ? [value] : value)
          .map(
            (v) =>
              `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${escapeXml(v)}</saml:AttributeValue>`,
          )
          .join('')
        return `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">${values}</saml:Attribute>`
      })
      .join('')
    return (
      `<saml:Assertion xmlns:saml="${SAML}" ID="${fields.assertionId ?? newId()}" Version="2.0" IssueInstant="${iso(now)}">` +
      `<saml:Issuer>${escapeXml(fields.issuer ?? this.entityId)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${escapeXml(fields.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress')}">${escapeXml(fields.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData` +
      `${inResponseTo ? ` InResponseTo="${escapeXml(inResponseTo)}"` : ''}` +
      `${scdNotOnOrAfter ? ` NotOnOrAfter="${iso(scdNotOnOrAfter)}"` : ''} Recipient="${escapeXml(fields.recipient)}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions${notBefore ? ` NotBefore="${iso(notBefore)}"` : ''}${notOnOrAfter ? ` NotOnOrAfter="${iso(notOnOrAfter)}"` : ''}>` +
      `<saml:AudienceRestriction><saml:Audience>${escapeXml(fields.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${escapeXml(fields.sessionIndex ?? newId())}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
      `</saml:Assertion>`
    )
  }

  /** The response XML around `assertion` (an Assertion or EncryptedAssertion element). */
  responseXml(
    assertion: string,
    fields: {
      destination: string | null
      inResponseTo: string | null
      responseIssuer?: string | null
      responseId?: string
      status?: string
    },
  ): string {
    const now = this.now()
    const issuer = fields.responseIssuer === undefined ? this.entityId : fields.responseIssuer
    return (
      `<samlp:Response xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${fields.responseId ?? newId()}" Version="2.0" IssueInstant="${iso(now)}"` +
      `${fields.destination !== null ? ` Destination="${escapeXml(fields.destination)}"` : ''}` +
      `${fields.inResponseTo ? ` InResponseTo="${escapeXml(fields.inResponseTo)}"` : ''}>` +
      (issuer !== null ? `<saml:Issuer>${escapeXml(issuer)}</saml:Issuer>` : '') +
      `<samlp:Status><samlp:StatusCode Value="${escapeXml(fields.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success')}"/></samlp:Status>` +
      assertion +
      `</samlp:Response>`
    )
  }

  /** Signs the element named `localName` (enveloped, exc-c14n), placing the signature after its Issuer. */
  sign(xml: string, localName: 'Assertion' | 'Response', options: SignOptions = {}): string {
    const cert = options.cert ?? this.cert
    const sig = new SignedXml({
      privateKey: cert.privateKeyPem,
      publicCert: cert.certificatePem,
      signatureAlgorithm: options.signatureAlgorithm ?? ALG.rsaSha256,
      canonicalizationAlgorithm: ALG.excC14n,
    })
    const target = `//*[local-name(.)='${localName}']`
    sig.addReference({ xpath: target, transforms: [ALG.enveloped, ALG.excC14n], digestAlgorithm: options.digestAlgorithm ?? ALG.sha256 })
    sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' } })
    return sig.getSignedXml()
  }

  /** Encrypts an assertion for the SP (RSA-OAEP + AES-256-GCM by default). */
  static async encrypt(assertionXml: string, spCertificatePem: string, encryptionAlgorithm?: string): Promise<string> {
    const publicKey = new X509Certificate(spCertificatePem).publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const encrypted = await new Promise<string>((resolve, reject) =>
      xmlenc.encrypt(
        assertionXml,
        {
          rsa_pub: publicKey,
          pem: spCertificatePem,
          encryptionAlgorithm: (encryptionAlgorithm ??
            'http://www.w3.org/2009/xmlenc11#aes256-gcm') as 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
          keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
          warnInsecureAlgorithm: false,
        },
        (error, result) => (error ? reject(error) : resolve(result)),
      ),
    )
    return `<saml:EncryptedAssertion xmlns:saml="${SAML}">${encrypted}</saml:EncryptedAssertion>`
  }

  /**
   * A complete signed response answering `request` (or unsolicited when `request` is null) for
   * `fields`, as XML. `acsUrl` and `audience` default to what the request says.
   */
  async respond(
    request: Pick<ReadRequest, 'id' | 'acsUrl' | 'issuer'> | null,
    fields: ResponseFields & { acsUrl?: string; spEntityId?: string },
    options: SignOptions = {},
  ): Promise<string> {
    const acsUrl = fields.acsUrl ?? request?.acsUrl ?? ''
    const audience = fields.audience ?? fields.spEntityId ?? request?.issuer ?? ''
    const inResponseTo = fields.inResponseTo === undefined ? (request?.id ?? null) : fields.inResponseTo
    const target = options.target ?? 'assertion'
    let assertion = this.assertionXml({ ...fields, inResponseTo, recipient: fields.recipient ?? acsUrl, audience })
    if (target === 'assertion' || target === 'both') assertion = this.sign(assertion, 'Assertion', options)
    if (options.encryptFor) assertion = await TestIdp.encrypt(assertion, options.encryptFor, options.encryptionAlgorithm)
    let xml = this.responseXml(assertion, {
      destination: fields.destination === undefined ? acsUrl : fields.destination,
      inResponseTo,
      responseIssuer: fields.responseIssuer,
      responseId: fields.responseId,
      status: fields.status,
    })
    if (target === 'response' || target === 'both') xml = this.sign(xml, 'Response', options)
    return xml
  }
}

/** Base64 of an XML string, as the ACS form posts it. */
export function b64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64')
}
