/**
 * Validation of a SAML `Response` posted to the ACS. Signature verification is node-saml's (which
 * reads the assertion only from the bytes xml-crypto verified); everything around it is checked
 * here, on the same parser, before and after: size, base64, DTD and entities, depth, comments,
 * exactly one assertion directly under the response, the algorithm lists, then on the VERIFIED
 * assertion: issuer, audience, bearer recipient, destination, InResponseTo, validity window with
 * the configured skew, and the fields the identity is built from.
 *
 * @module
 */
import { SAML, SamlStatusError, ValidateInResponseTo } from '@node-saml/node-saml'
import * as xmlenc from 'xml-encryption'
import { type AuthError, type AuthErrorCode, authError } from '../../errors.js'
import { refusedAlgorithm } from './algorithms.js'
import { certificatePem, type SamlConfig } from './config.js'
import type { AssertionSubject } from './mapping.js'
import { attr, children, descendantsNamed, NS, onlyChild, parseXml, textOf, type XmlLimits, type XmlRefusal } from './xml.js'

const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success'
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer'
const MAX_ATTRIBUTES = 500
const MAX_VALUES = 100
const MAX_VALUE_LENGTH = 4096

/** An SP key pair (PEM), for decrypting assertions or signing requests. @group Providers */
export interface SamlKeyPair {
  readonly privateKey: string
  readonly certificate: string
}

/** What the ACS check needs besides the posted response. */
export interface ResponseExpectations {
  readonly config: SamlConfig
  /** Our ACS URL: the response's `Destination` and the bearer `Recipient` must equal it. */
  readonly acsUrl: string
  /** The id of the AuthnRequest this pipeline sent; null for an unsolicited response. */
  readonly requestId: string | null
  readonly now: Date
  readonly skewMs: number
  readonly limits: XmlLimits
  readonly maxBase64Length: number
  readonly decryption: SamlKeyPair | null
}

/** A verified assertion: what the identity is built from, and how long its id must be remembered. */
export interface VerifiedAssertion {
  readonly assertionId: string
  readonly issuer: string
  readonly subject: AssertionSubject
  readonly nameIdFormat: string | null
  readonly sessionIndex: string | null
  /** Last moment (epoch ms) the assertion could still be accepted: remember its id until then. */
  readonly acceptableUntil: number
}

function fail(code: AuthErrorCode, details: Record<string, unknown>, cause?: unknown): { ok: false; error: AuthError } {
  return { ok: false, error: authError(code, { details, cause }) }
}

type Checked<T> = { ok: true; value: T } | { ok: false; error: AuthError }

/** Maps a refusal of the XML layer to its code: tampering markers are ASSERTION_UNVERIFIED. */
function xmlRefusal(reason: XmlRefusal, cause?: unknown): { ok: false; error: AuthError } {
  if (reason === 'comment' || reason === 'processing-instruction') return fail('ASSERTION_UNVERIFIED', { reason: `xml-${reason}` })
  return fail('SAML_RESPONSE_INVALID', { reason }, cause)
}

/** Strict base64 (whitespace allowed between groups), decoded as strict UTF-8. */
function decode(value: string, maxLength: number): Checked<string> {
  if (value.length > maxLength) return fail('SAML_RESPONSE_INVALID', { reason: 'too-large' })
  const compact = value.replace(/[\r\n\t ]+/g, '')
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    return fail('SAML_RESPONSE_INVALID', { reason: 'base64' })
  }
  try {
    return { ok: true, value: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64')) }
  } catch (cause) {
    return fail('SAML_RESPONSE_INVALID', { reason: 'encoding' }, cause)
  }
}

/** Parses an xsd:dateTime; null when absent or malformed. */
function instant(value: string | null): number | null {
  if (value === null) return null
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return Number.NaN
  const ms = Date.parse(value)
  return Number.isFinite(ms) ? ms : Number.NaN
}

/** The window check (NotBefore <= now + skew, now - skew < NotOnOrAfter). */
function windowProblem(el: Element, now: number, skew: number, requireEnd: boolean): string | null {
  const notBefore = instant(attr(el, 'NotBefore'))
  const notOnOrAfter = instant(attr(el, 'NotOnOrAfter'))
  if (Number.isNaN(notBefore) || Number.isNaN(notOnOrAfter)) return 'malformed-time'
  if (notOnOrAfter === null && requireEnd) return 'no-expiry'
  if (notBefore !== null && now + skew < notBefore) return 'not-yet-valid'
  if (notOnOrAfter !== null && now - skew >= notOnOrAfter) return 'expired'
  return null
}

/**
 * IssueInstant present and well-formed; every Conditions and SubjectConfirmationData that has
 * attributes carries a well-formed NotOnOrAfter (threat 40: no unbounded assertion).
 */
function timeFieldsProblem(assertion: Element): { ok: false; error: AuthError } | null {
  const issued = instant(attr(assertion, 'IssueInstant'))
  if (issued === null || Number.isNaN(issued)) return fail('SAML_RESPONSE_INVALID', { reason: 'issue-instant' })
  const bounded: [Element, string][] = [
    ...children(assertion, NS.assertion, 'Conditions').map((c): [Element, string] => [c, 'conditions']),
    ...children(assertion, NS.assertion, 'Subject').flatMap((subject) =>
      children(subject, NS.assertion, 'SubjectConfirmation').flatMap((c) =>
        children(c, NS.assertion, 'SubjectConfirmationData').map((d): [Element, string] => [d, 'subject-confirmation']),
      ),
    ),
  ]
  for (const [el, where] of bounded) {
    if (el.attributes.length === 0 && where === 'conditions') continue
    const notBefore = instant(attr(el, 'NotBefore'))
    const notOnOrAfter = instant(attr(el, 'NotOnOrAfter'))
    if (Number.isNaN(notBefore) || Number.isNaN(notOnOrAfter)) return fail('SAML_RESPONSE_INVALID', { reason: 'malformed-time', where })
    if (notOnOrAfter === null) return fail('ASSERTION_EXPIRED', { reason: 'no-expiry', where })
  }
  return null
}

/** The status code of the response (and its second-level code), bounded. */
function statusOf(root: Element): { code: string | null; sub: string | null } {
  const status = onlyChild(root, NS.protocol, 'Status')
  const code = status ? onlyChild(status, NS.protocol, 'StatusCode') : null
  const sub = code ? onlyChild(code, NS.protocol, 'StatusCode') : null
  const short = (v: string | null) => (v === null ? null : v.slice(0, 200))
  return { code: short(code ? attr(code, 'Value') : null), sub: short(sub ? attr(sub, 'Value') : null) }
}

/** The one assertion (plain or encrypted) a response may carry, directly under its root. */
function theAssertion(root: Element): Checked<{ element: Element; encrypted: boolean }> {
  const all = [...descendantsNamed(root, 'Assertion'), ...descendantsNamed(root, 'EncryptedAssertion')]
  if (all.length !== 1) return fail('ASSERTION_UNVERIFIED', { reason: all.length === 0 ? 'no-assertion' : 'assertion-count' })
  const element = all[0] as Element
  if (element.parentNode !== root || element.namespaceURI !== NS.assertion) {
    return fail('ASSERTION_UNVERIFIED', { reason: 'assertion-position' })
  }
  return { ok: true, value: { element, encrypted: element.localName === 'EncryptedAssertion' } }
}

/** Decrypts an EncryptedAssertion for inspection (the signature inside is checked by node-saml). */
async function decryptForInspection(encrypted: Element, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    xmlenc.decrypt(
      encrypted.toString(),
      { key, disallowDecryptionWithInsecureAlgorithm: true, warnInsecureAlgorithm: false },
      (error: Error | null, result?: string) =>
        error || typeof result !== 'string' ? reject(error ?? new Error('no plaintext')) : resolve(result),
    )
  })
}

/** Attribute name -> values of the verified assertion's attribute statements, bounded. */
function attributesOf(assertion: Element): Checked<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  let count = 0
  for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
    for (const attribute of children(statement, NS.assertion, 'Attribute')) {
      count += 1
      if (count > MAX_ATTRIBUTES) return fail('SAML_RESPONSE_INVALID', { reason: 'too-many-attributes' })
      const name = attr(attribute, 'Name')
      if (name === null || name.length === 0 || name.length > 1024) continue
      const values = children(attribute, NS.assertion, 'AttributeValue')
        .slice(0, MAX_VALUES)
        .map((v) => textOf(v).slice(0, MAX_VALUE_LENGTH))
      out.set(name, [...(out.get(name) ?? []), ...values])
    }
  }
  return { ok: true, value: out }
}

/**
 * Validates a posted `SAMLResponse`. Every failure is a typed error; nothing here writes or
 * fetches anything (the DTD refusal comes before parsing, and xmldom never loads entities).
 */
export async function validateResponse(samlResponse: string, expect: ResponseExpectations): Promise<Checked<VerifiedAssertion>> {
  const decoded = decode(samlResponse, expect.maxBase64Length)
  if (!decoded.ok) return decoded
  const parsed = parseXml(decoded.value, expect.limits)
  if (!parsed.ok) return xmlRefusal(parsed.reason, parsed.cause)
  const root = parsed.doc.documentElement
  if (root.namespaceURI !== NS.protocol || root.localName !== 'Response') return fail('SAML_RESPONSE_INVALID', { reason: 'not-a-response' })

  const status = statusOf(root)
  if (status.code !== SUCCESS) return fail('PROVIDER_ERROR', { stage: 'saml-status', status: status.code, subStatus: status.sub })

  const found = theAssertion(root)
  if (!found.ok) return found
  const { config } = expect
  const refused = refusedAlgorithm(root, config.allowSha1)
  if (refused) return fail('ASSERTION_ALGORITHM_REFUSED', { algorithm: refused.algorithm.slice(0, 200), use: refused.use })

  let documentAssertion = found.value.element
  if (found.value.encrypted) {
    if (!expect.decryption) return fail('SAML_RESPONSE_INVALID', { reason: 'encrypted-no-key' })
    // One answer for every failure on the encrypted path: no decryption or padding oracle.
    let plaintext: string
    try {
      plaintext = await decryptForInspection(found.value.element, expect.decryption.privateKey)
    } catch (cause) {
      return fail('ASSERTION_UNVERIFIED', { reason: 'encrypted-assertion' }, cause)
    }
    const inner = parseXml(plaintext, expect.limits)
    if (!inner.ok) return fail('ASSERTION_UNVERIFIED', { reason: 'encrypted-assertion' })
    const innerRoot = inner.doc.documentElement
    if (innerRoot.namespaceURI !== NS.assertion || innerRoot.localName !== 'Assertion') {
      return fail('ASSERTION_UNVERIFIED', { reason: 'encrypted-assertion' })
    }
    const innerRefused = refusedAlgorithm(innerRoot, config.allowSha1)
    if (innerRefused) return fail('ASSERTION_ALGORITHM_REFUSED', { algorithm: innerRefused.algorithm.slice(0, 200), use: innerRefused.use })
    documentAssertion = innerRoot
  }

  // Time fields node-saml needs to read (it throws on a missing NotOnOrAfter): refuse with our
  // codes first. The values are checked again, on the verified assertion, below.
  const timeProblem = timeFieldsProblem(documentAssertion)
  if (timeProblem) return timeProblem

  // The signature: node-saml accepts a signed response holding exactly one assertion, or a signed
  // assertion, by one of the configured certificates, and returns the assertion from the bytes
  // that were verified. Its own audience, time and InResponseTo checks are off: ours follow, on
  // those verified bytes, with the engine's clock.
  let verifiedXml: string
  try {
    const saml = new SAML({
      callbackUrl: expect.acsUrl,
      issuer: config.sp.entityId,
      idpCert: config.idp.certificates.map(certificatePem),
      audience: false,
      acceptedClockSkewMs: -1,
      validateInResponseTo: ValidateInResponseTo.never,
      wantAssertionsSigned: false,
      wantAuthnResponseSigned: false,
      ...(expect.decryption ? { decryptionPvk: expect.decryption.privateKey } : {}),
    })
    const result = await saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(decoded.value, 'utf8').toString('base64') })
    const xml = result.profile?.getAssertionXml?.()
    if (typeof xml !== 'string') return fail('ASSERTION_UNVERIFIED', { reason: 'no-verified-assertion' })
    verifiedXml = xml
  } catch (cause) {
    if (cause instanceof SamlStatusError) return fail('PROVIDER_ERROR', { stage: 'saml-status' }, cause)
    return fail('ASSERTION_UNVERIFIED', { reason: found.value.encrypted ? 'encrypted-assertion' : 'signature' }, cause)
  }
  const verified = parseXml(verifiedXml, expect.limits)
  if (!verified.ok) return fail('ASSERTION_UNVERIFIED', { reason: 'verified-unreadable' })
  const assertion = verified.doc.documentElement
  const assertionId = attr(assertion, 'ID')
  if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion' || !assertionId || assertionId.length > 256) {
    return fail('ASSERTION_UNVERIFIED', { reason: 'verified-unreadable' })
  }
  // What was verified is the assertion the document carries, not another one.
  if (attr(documentAssertion, 'ID') !== assertionId) return fail('ASSERTION_UNVERIFIED', { reason: 'verified-mismatch' })

  // Issuer: the assertion's (verified) and the response's, when it names one.
  const issuerEl = onlyChild(assertion, NS.assertion, 'Issuer')
  const issuer = issuerEl ? textOf(issuerEl) : null
  if (issuer !== config.idp.entityId) return fail('ASSERTION_ISSUER_MISMATCH', { where: 'assertion' })
  const responseIssuers = children(root, NS.assertion, 'Issuer')
  if (responseIssuers.length > 1 || (responseIssuers[0] && textOf(responseIssuers[0]) !== config.idp.entityId)) {
    return fail('ASSERTION_ISSUER_MISMATCH', { where: 'response' })
  }

  // Destination of the response: our ACS URL.
  if (attr(root, 'Destination') !== expect.acsUrl) return fail('ASSERTION_AUDIENCE_MISMATCH', { check: 'destination' })

  // InResponseTo of the response: our request, or none for an unsolicited response.
  const responseInResponseTo = attr(root, 'InResponseTo')
  if (responseInResponseTo !== expect.requestId) {
    return fail('SAML_IN_RESPONSE_TO_MISMATCH', { where: 'response', unsolicited: expect.requestId === null })
  }

  const now = expect.now.getTime()
  const skew = expect.skewMs
  const issueInstant = instant(attr(assertion, 'IssueInstant'))
  if (issueInstant === null || Number.isNaN(issueInstant)) return fail('SAML_RESPONSE_INVALID', { reason: 'issue-instant' })
  if (issueInstant > now + skew) return fail('ASSERTION_EXPIRED', { reason: 'issued-in-future' })

  // Conditions: exactly one; its window; every AudienceRestriction names our entity id.
  const conditions = children(assertion, NS.assertion, 'Conditions')
  if (conditions.length !== 1) return fail('ASSERTION_AUDIENCE_MISMATCH', { check: 'audience', reason: 'conditions' })
  const cond = conditions[0] as Element
  const condProblem = windowProblem(cond, now, skew, cond.attributes.length > 0)
  if (condProblem)
    return fail(condProblem === 'malformed-time' ? 'SAML_RESPONSE_INVALID' : 'ASSERTION_EXPIRED', {
      reason: condProblem,
      where: 'conditions',
    })
  const restrictions = children(cond, NS.assertion, 'AudienceRestriction')
  if (
    restrictions.length === 0 ||
    !restrictions.every((r) => children(r, NS.assertion, 'Audience').some((a) => textOf(a) === config.sp.entityId))
  ) {
    return fail('ASSERTION_AUDIENCE_MISMATCH', { check: 'audience' })
  }

  // Subject: the NameID and a bearer confirmation for us, now, answering our request.
  const subjectEl = onlyChild(assertion, NS.assertion, 'Subject')
  if (!subjectEl) return fail('SAML_RESPONSE_INVALID', { reason: 'no-subject' })
  if (children(subjectEl, NS.assertion, 'EncryptedID').length > 0) return fail('SAML_RESPONSE_INVALID', { reason: 'encrypted-nameid' })
  const nameIdEl = onlyChild(subjectEl, NS.assertion, 'NameID')
  const bearers = children(subjectEl, NS.assertion, 'SubjectConfirmation').filter((c) => attr(c, 'Method') === BEARER)
  if (bearers.length === 0) return fail('SAML_RESPONSE_INVALID', { reason: 'no-bearer-confirmation' })
  let firstProblem: { ok: false; error: AuthError } | null = null
  let confirmedUntil: number | null = null
  for (const bearer of bearers) {
    const data = onlyChild(bearer, NS.assertion, 'SubjectConfirmationData')
    let problem: { ok: false; error: AuthError } | null = null
    if (!data || attr(data, 'Recipient') !== expect.acsUrl) problem = fail('ASSERTION_AUDIENCE_MISMATCH', { check: 'recipient' })
    else if (attr(data, 'InResponseTo') !== expect.requestId) {
      problem = fail('SAML_IN_RESPONSE_TO_MISMATCH', { where: 'subject-confirmation', unsolicited: expect.requestId === null })
    } else {
      const p = windowProblem(data, now, skew, true)
      if (p)
        problem = fail(p === 'malformed-time' ? 'SAML_RESPONSE_INVALID' : 'ASSERTION_EXPIRED', { reason: p, where: 'subject-confirmation' })
    }
    if (problem) {
      firstProblem ??= problem
      continue
    }
    confirmedUntil = instant(attr(data as Element, 'NotOnOrAfter'))
    break
  }
  if (confirmedUntil === null) return firstProblem ?? fail('SAML_RESPONSE_INVALID', { reason: 'no-bearer-confirmation' })
  const conditionsUntil = instant(attr(cond, 'NotOnOrAfter'))
  const acceptableUntil = Math.min(confirmedUntil, conditionsUntil ?? confirmedUntil) + skew

  const attributes = attributesOf(assertion)
  if (!attributes.ok) return attributes
  const nameId = nameIdEl ? textOf(nameIdEl) : null
  const authn = children(assertion, NS.assertion, 'AuthnStatement')[0]
  return {
    ok: true,
    value: {
      assertionId,
      issuer,
      subject: { nameId: nameId !== null && nameId.length > 0 ? nameId.slice(0, 1024) : null, attributes: attributes.value },
      nameIdFormat: nameIdEl ? (attr(nameIdEl, 'Format')?.slice(0, 256) ?? null) : null,
      sessionIndex: authn ? (attr(authn, 'SessionIndex')?.slice(0, 256) ?? null) : null,
      acceptableUntil,
    },
  }
}
