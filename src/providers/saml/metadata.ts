/**
 * IdP metadata at setup: XML pasted by the admin, XML fetched from a URL (timeout, size limit,
 * https only, no redirects), or the fields by hand. Validated: an IDPSSODescriptor, an
 * HTTP-Redirect SingleSignOnService at an https URL (http only on loopback), and at least one
 * signing certificate that parses (several are kept, for rotation).
 *
 * @module
 */
import { type AuthError, authError } from '../../errors.js'
import { type AddressPolicy, checkUrl, checkUrlSyntax, isLoopbackHost, type OutboundFetch, UrlRefusedError } from '../../net/policy.js'
import { MAX_CERTIFICATES, MAX_URI_LENGTH, normalizeCertificate, splitCertificates } from './config.js'
import { attr, children, descendants, NS, onlyChild, parseXml, textOf } from './xml.js'

const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'

/** What setup needs from the IdP. */
export interface IdpDescriptor {
  readonly entityId: string
  readonly ssoUrl: string
  /** Base64 DER certificates. */
  readonly certificates: readonly string[]
  /** The IdP wants signed AuthnRequests. */
  readonly wantsSignedRequests: boolean
}

export type MetadataResult = { readonly ok: true; readonly idp: IdpDescriptor } | { readonly ok: false; readonly error: AuthError }

const invalid = (reason: string, extra: Record<string, unknown> = {}, cause?: unknown): MetadataResult => ({
  ok: false,
  error: authError('SAML_METADATA_INVALID', { details: { reason, ...extra }, cause }),
})

/** An IdP single sign-on URL: https, or http on loopback; no credentials. */
export function validSsoUrl(value: string): boolean {
  if (value.length > MAX_URI_LENGTH) return false
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  if (url.username || url.password || url.hash) return false
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}

/** Checks an entity id: a non-empty URI-ish string without whitespace or control characters. */
function validEntityId(value: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  return value.length > 0 && value.length <= MAX_URI_LENGTH && !/[\s\u0000-\u001f\u007f]/.test(value)
}

/** Validates certificates given as text (base64 or PEM), keeping their order, without duplicates. */
export function checkCertificates(texts: readonly string[]): { ok: true; certificates: string[] } | { ok: false; error: AuthError } {
  if (texts.length === 0) return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'no-certificate' } }) }
  if (texts.length > MAX_CERTIFICATES)
    return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'too-many-certificates' } }) }
  const out: string[] = []
  for (const [index, text] of texts.entries()) {
    const checked = normalizeCertificate(text)
    if (!checked.ok)
      return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: `certificate-${checked.problem}`, index } }) }
    if (!out.includes(checked.base64)) out.push(checked.base64)
  }
  return { ok: true, certificates: out }
}

/** The fields typed by hand. */
export function idpFromFields(fields: { entityId: string; ssoUrl: string; certificate: string }): MetadataResult {
  if (!validEntityId(fields.entityId)) return invalid('entity-id')
  if (!validSsoUrl(fields.ssoUrl)) return invalid('sso-url')
  const certs = checkCertificates(splitCertificates(fields.certificate))
  if (!certs.ok) return { ok: false, error: certs.error }
  return {
    ok: true,
    idp: { entityId: fields.entityId, ssoUrl: fields.ssoUrl, certificates: certs.certificates, wantsSignedRequests: false },
  }
}

/** Parses IdP metadata XML (an EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP). */
export function parseIdpMetadata(xml: string, maxLength: number): MetadataResult {
  const parsed = parseXml(xml, { maxLength, maxDepth: 32, maxElements: 20_000 })
  if (!parsed.ok) return invalid(`xml-${parsed.reason}`, {}, parsed.cause)
  const root = parsed.doc.documentElement
  if (root.namespaceURI !== NS.metadata) return invalid('not-metadata')
  let entity: Element | null = null
  if (root.localName === 'EntityDescriptor') entity = root
  else if (root.localName === 'EntitiesDescriptor') {
    const idps = descendants(root, NS.metadata, 'EntityDescriptor').filter((e) => children(e, NS.metadata, 'IDPSSODescriptor').length > 0)
    if (idps.length !== 1) return invalid(idps.length === 0 ? 'no-idp' : 'several-idps')
    entity = idps[0] as Element
  } else return invalid('not-metadata')
  const entityId = attr(entity, 'entityID') ?? ''
  if (!validEntityId(entityId)) return invalid('entity-id')
  const descriptor = onlyChild(entity, NS.metadata, 'IDPSSODescriptor')
  if (!descriptor) return invalid('no-idp')
  const redirect = children(descriptor, NS.metadata, 'SingleSignOnService').find((s) => attr(s, 'Binding') === REDIRECT_BINDING)
  const ssoUrl = redirect ? (attr(redirect, 'Location') ?? '') : ''
  if (!redirect) return invalid('no-redirect-binding')
  if (!validSsoUrl(ssoUrl)) return invalid('sso-url')
  const texts: string[] = []
  for (const key of children(descriptor, NS.metadata, 'KeyDescriptor')) {
    const use = attr(key, 'use')
    if (use !== null && use !== 'signing') continue
    for (const cert of descendants(key, NS.dsig, 'X509Certificate')) texts.push(textOf(cert))
  }
  const certs = checkCertificates(texts)
  if (!certs.ok) return { ok: false, error: certs.error }
  return {
    ok: true,
    idp: {
      entityId,
      ssoUrl,
      certificates: certs.certificates,
      wantsSignedRequests: attr(descriptor, 'WantAuthnRequestsSigned') === 'true',
    },
  }
}

/** How metadata URLs are fetched. */
export interface MetadataFetchOptions {
  /** Whole-request timeout. */
  readonly timeoutMs: number
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number
  /** The host's fetch (tests, proxies); when absent, `policy.fetch` or the global fetch. */
  readonly fetch: OutboundFetch | undefined
  /** Which URLs may be fetched (threat 60): https, no internal or reserved address. */
  readonly policy: AddressPolicy
}

function networkReason(cause: unknown): 'timeout' | 'network' {
  const name = typeof cause === 'object' && cause !== null ? (cause as { name?: unknown }).name : undefined
  return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network'
}

const unavailable = (reason: string, cause?: unknown, status?: number) =>
  ({
    ok: false,
    error: authError('PROVIDER_UNAVAILABLE', { details: { stage: 'saml-metadata', reason, ...(status ? { status } : {}) }, cause }),
  }) as const

/**
 * Fetches metadata XML from an admin-supplied URL: the URL passes the address policy first
 * (`URL_NOT_ALLOWED`: not https, credentials, an internal or reserved address as a literal or
 * after resolution), then one GET with no redirect followed, an overall timeout, and a body cap
 * enforced while reading. With a policy that brings a pinned fetch (`ssoflow/node`), the
 * connection goes to the checked address. The one place where SAML reaches the network.
 */
export async function fetchMetadata(
  value: string,
  options: MetadataFetchOptions,
): Promise<{ ok: true; xml: string } | { ok: false; error: AuthError }> {
  if (value.length > MAX_URI_LENGTH)
    return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'metadata-url' } }) }
  const { policy } = options
  const pinned = options.fetch === undefined && policy.fetch !== undefined
  const send: OutboundFetch = options.fetch ?? policy.fetch ?? ((url, init) => fetch(url, init as RequestInit))
  const signal = AbortSignal.timeout(options.timeoutMs)
  const checked = pinned
    ? checkUrlSyntax(value, policy, 'metadata_url').map((url) => ({ url }))
    : await checkUrl(value, policy, { field: 'metadata_url', signal })
  if (checked.isErr()) return { ok: false, error: checked.error }
  let res: Response
  try {
    res = await send(checked.value.url.href, {
      method: 'GET',
      redirect: 'manual',
      headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' },
      signal,
    })
  } catch (cause) {
    // A pinned fetch refuses an address at connect time (DNS answered differently since the check).
    if (cause instanceof UrlRefusedError) return { ok: false, error: cause.error }
    return unavailable(networkReason(cause), cause)
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {})
    if (res.status >= 500) return unavailable('status', undefined, res.status)
    return {
      ok: false,
      error: authError('SAML_METADATA_INVALID', { details: { stage: 'saml-metadata', reason: 'status', status: res.status } }),
    }
  }
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await res.body?.cancel().catch(() => {})
    return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'too-large' } }) }
  }
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    const reader = res.body?.getReader()
    while (reader) {
      const { done, value: chunk } = await reader.read()
      if (done) break
      total += chunk.byteLength
      if (total > options.maxBytes) {
        await reader.cancel().catch(() => {})
        return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'too-large' } }) }
      }
      chunks.push(chunk)
    }
  } catch (cause) {
    return unavailable(networkReason(cause), cause)
  }
  try {
    return { ok: true, xml: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)) }
  } catch (cause) {
    return { ok: false, error: authError('SAML_METADATA_INVALID', { details: { reason: 'encoding' }, cause }) }
  }
}
