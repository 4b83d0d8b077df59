// SAML setup: IdP metadata as XML, from a URL (a loopback server: timeout, size limit, no
// redirects) or by hand; metadata validation; the admin's real SAML login that finishes setup;
// warnings in the setup outcome; the SP metadata the IdP admin is given.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DOMParser } from '@xmldom/xmldom'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionInfo, Step } from '../../src/engine/types.js'
import type { SamlProviderOptions } from '../../src/saml/index.js'
import { TestIdp } from '../helpers/saml-idp.js'
import { makeCertificate } from '../helpers/x509.js'
import { BASE, BETA, post, type SamlWorld, world } from './harness.js'

const admin: SessionInfo = { id: 'sess-admin', userId: 'u-admin' }
const BETA_ACS = `${BASE}/auth/sso/beta/`
const BETA_ENTITY = `${BASE}/saml/metadata/beta/`
const ADMIN = { nameId: 'admin@acme.test', attributes: { id: 'okta-admin', email: 'admin@acme.test', firstName: 'Ada', lastName: 'Admin' } }

async function beginSetup(w: SamlWorld): Promise<{ handle: string; step: Step & { kind: 'render' } }> {
  const step = (await w.sso.beginSetup({ organizationId: BETA, providerKey: 'saml', session: admin }))._unsafeUnwrap()
  if (step.kind !== 'render') throw new Error(`expected the setup form, got ${step.kind}`)
  return { handle: step.handle, step }
}

/** Posts the form; on a redirect to the IdP, the IdP answers for the admin; the final step. */
async function runSetup(w: SamlWorld, form: Record<string, string>, idp: TestIdp = w.idp) {
  const { handle } = await beginSetup(w)
  const toIdp = await w.sso.advance({ handle, session: admin, request: post(form) })
  if (toIdp.isErr() || toIdp.value.kind !== 'redirect') return { handle, result: toIdp }
  const request = TestIdp.readRequest(toIdp.value.url)
  const xml = await idp.respond(request, ADMIN)
  const result = await w.sso.advance({
    handle,
    session: admin,
    request: post({ SAMLResponse: Buffer.from(xml).toString('base64'), RelayState: request.relayState }),
  })
  return { handle, result, request }
}

function snapshot(w: SamlWorld) {
  return w.memory!.snapshot()
}

let server: Server
let origin = ''
const routes = new Map<string, (res: import('node:http').ServerResponse) => void>()

beforeAll(async () => {
  server = createServer((req, res) => {
    const route = routes.get(req.url ?? '')
    if (route) route(res)
    else {
      res.statusCode = 404
      res.end('not found')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('SAML setup', () => {
  it('the form shows the SP values to give the IdP (entity id, ACS URL, NameID format, metadata URL) and the presets', async () => {
    const w = world({ provider: { metadataUrl: (org) => `${BASE}/auth/saml/${org.slug}/metadata` } })
    const { step } = await beginSetup(w)
    expect(step.view).toBe('saml-setup-form')
    expect(step.model).toMatchObject({
      serviceProvider: {
        entityId: BETA_ENTITY,
        acsUrl: BETA_ACS,
        metadataUrl: `${BASE}/auth/saml/beta/metadata`,
        nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      },
      presets: [{ value: 'okta' }, { value: 'entra' }, { value: 'google' }, { value: 'onelogin' }, { value: 'jumpcloud' }],
    })
  })

  it('from metadata XML: a real SAML login of the admin finishes setup; the config and the admin link are stored', async () => {
    const w = world()
    const { result, request } = await runSetup(w, { metadata_xml: w.idp.metadata(), preset: 'okta' })
    expect(request).toMatchObject({ acsUrl: BETA_ACS, issuer: BETA_ENTITY })
    expect(result._unsafeUnwrap()).toMatchObject({ kind: 'setupComplete', organizationId: BETA, providerKey: 'saml', providerWarnings: [] })
    const snap = snapshot(w)
    const row = snap.providers.find((p) => p.organizationId === BETA)!
    expect(row.config).toEqual({
      v: 1,
      idp: { entityId: w.idp.entityId, ssoUrl: w.idp.ssoUrl, certificates: [w.idp.cert.certificateBase64] },
      sp: { entityId: BETA_ENTITY },
      preset: 'okta',
      mapping: { id: 'id', email: 'email', firstName: 'firstName', lastName: 'lastName', displayName: null },
      nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      allowSha1: false,
      idpInitiated: false,
    })
    expect(snap.identities.find((i) => i.authProviderId === row.id)).toMatchObject({ userId: 'u-admin', ident: 'okta-admin' })
  })

  it('from the fields by hand, with two certificates for rotation, and custom attribute names', async () => {
    const idp = new TestIdp()
    const next = makeCertificate('next.idp.test')
    const w = world({ idp })
    const { result } = await runSetup(w, {
      entity_id: idp.entityId,
      sso_url: idp.ssoUrl,
      certificate: `${idp.cert.certificatePem}\n${next.certificatePem}`,
      preset: 'custom',
      attr_id: 'id',
      attr_email: 'email',
    })
    expect(result._unsafeUnwrap().kind).toBe('setupComplete')
    const config = snapshot(w).providers.find((p) => p.organizationId === BETA)!.config as {
      idp: { certificates: string[] }
      mapping: object
    }
    expect(config.idp.certificates).toEqual([idp.cert.certificateBase64, next.certificateBase64])
    expect(config.mapping).toEqual({ id: 'id', email: 'email', firstName: null, lastName: null, displayName: null })
  })

  it('from a metadata URL (loopback, test-only option), fetched once', async () => {
    let hits = 0
    const idp = new TestIdp()
    routes.set('/idp-metadata', (res) => {
      hits += 1
      res.setHeader('content-type', 'application/samlmetadata+xml')
      res.end(idp.metadata())
    })
    const w = world({ idp, provider: { dangerouslyAllowInsecureLoopbackHttp: true } })
    const { result } = await runSetup(w, { metadata_url: `${origin}/idp-metadata`, preset: 'okta' })
    expect(result._unsafeUnwrap().kind).toBe('setupComplete')
    expect(hits).toBe(1)
  })

  it('allowing SHA-1 and IdP-initiated login: stored, with a warning for each in the setup outcome', async () => {
    const w = world()
    const { result } = await runSetup(w, { metadata_xml: w.idp.metadata(), preset: 'okta', allow_sha1: 'on', idp_initiated: 'on' })
    expect(result._unsafeUnwrap()).toMatchObject({
      kind: 'setupComplete',
      providerWarnings: [{ code: 'SAML_SHA1_ALLOWED' }, { code: 'SAML_IDP_INITIATED_ENABLED' }],
    })
    expect(snapshot(w).providers.find((p) => p.organizationId === BETA)!.config).toMatchObject({ allowSha1: true, idpInitiated: true })
  })

  it("a response that does not answer the setup's request (another request, or unsolicited) cannot finish it", async () => {
    const w = world()
    const { handle } = await beginSetup(w)
    const toIdp = (
      await w.sso.advance({ handle, session: admin, request: post({ metadata_xml: w.idp.metadata(), preset: 'okta' }) })
    )._unsafeUnwrap()
    const request = TestIdp.readRequest((toIdp as { url: string }).url)
    for (const inResponseTo of ['_another-request', null]) {
      const xml = await w.idp.respond(request, { ...ADMIN, inResponseTo })
      const before = snapshot(w)
      const r = await w.sso.advance({
        handle,
        session: admin,
        request: post({ SAMLResponse: Buffer.from(xml).toString('base64'), RelayState: request.relayState }),
      })
      expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'SAML_IN_RESPONSE_TO_MISMATCH', redirect: 'authSettings' })
      expect(snapshot(w)).toEqual(before)
    }
  })

  it.each([
    ['no source', {}, 'Paste the IdP metadata'],
    ['two sources', { metadata_xml: '<x/>', metadata_url: 'https://idp.example/md' }, 'Use one of'],
    ['an unknown preset', { metadata_xml: '<x/>', preset: 'ping' }, 'Unknown identity provider preset.'],
  ])('form: %s -> the form again with an error, nothing written', async (_name, form, error) => {
    const w = world()
    const { handle } = await beginSetup(w)
    const before = snapshot(w)
    const r = (await w.sso.advance({ handle, session: admin, request: post(form) }))._unsafeUnwrap()
    expect(r.kind).toBe('render')
    expect(String((r as Step & { kind: 'render' }).model.error)).toContain(error)
    expect(snapshot(w)).toEqual(before)
  })
})

describe('IdP metadata validation -> SAML_METADATA_INVALID, nothing written', () => {
  const idp = new TestIdp()
  const weak = makeCertificate('weak.idp.test', { rsaBits: 1024 })
  const md = (certs = [idp.cert], extra: { wantSigned?: boolean; ssoUrl?: string } = {}) => idp.metadata(certs, extra)
  const cases: [string, Record<string, string>, string, SamlProviderOptions?][] = [
    [
      'metadata without an HTTP-Redirect sign-on service',
      { metadata_xml: md().replace(/<md:SingleSignOnService Binding="[^"]*HTTP-Redirect"[^>]*\/>/, '') },
      'no-redirect-binding',
    ],
    ['an http sign-on URL outside loopback', { metadata_xml: md([idp.cert], { ssoUrl: 'http://idp.example.test/sso' }) }, 'sso-url'],
    ['no signing certificate', { metadata_xml: md([]) }, 'no-certificate'],
    [
      'a certificate that does not parse',
      { metadata_xml: md().replace(idp.cert.certificateBase64, Buffer.from('not a certificate').toString('base64')) },
      'certificate-unparseable',
    ],
    ['a 1024-bit RSA certificate', { metadata_xml: md([weak]) }, 'certificate-weak-key'],
    ['a DOCTYPE', { metadata_xml: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${md()}` }, 'xml-doctype'],
    ['XML that is not metadata', { metadata_xml: '<html/>' }, 'not-metadata'],
    [
      'an IdP that wants signed requests while the SP has no signing key',
      { metadata_xml: md([idp.cert], { wantSigned: true }) },
      'signed-requests-required',
    ],
    ['fields: an entity id with whitespace', { entity_id: 'a b', sso_url: idp.ssoUrl, certificate: idp.cert.certificatePem }, 'entity-id'],
    [
      'fields: a javascript: sign-on URL',
      { entity_id: idp.entityId, sso_url: 'javascript:alert(1)', certificate: idp.cert.certificatePem },
      'sso-url',
    ],
    [
      'fields: a certificate that is not base64',
      { entity_id: idp.entityId, sso_url: idp.ssoUrl, certificate: '-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----' },
      'certificate-not-base64',
    ],
  ]
  it.each(cases)('%s', async (_name, form, reason, options) => {
    const w = world({ idp, provider: options })
    const { handle } = await beginSetup(w)
    const before = snapshot(w)
    const r = await w.sso.advance({ handle, session: admin, request: post({ preset: 'okta', ...form }) })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'SAML_METADATA_INVALID', redirect: 'authSettings', details: { reason } })
    expect(snapshot(w)).toEqual(before)
  })
})

describe('metadata URL address policy (threat 60) -> URL_NOT_ALLOWED, no request made', () => {
  const resolver = async (hostname: string) => (hostname === 'idp.internal.test' ? ['10.0.0.5'] : ['93.184.216.34'])
  const cases: [string, string, SamlProviderOptions, Record<string, unknown>][] = [
    ['plain http', 'http://idp.example.test/metadata', {}, { reason: 'scheme', field: 'metadata_url' }],
    ['a loopback literal without the test opt-in', `http://127.0.0.1:9/metadata`, {}, { reason: 'scheme' }],
    ['https to a loopback literal without the test opt-in', 'https://127.0.0.1/metadata', {}, { reason: 'address', range: 'loopback' }],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data/', {}, { reason: 'address' }],
    ['a private address in another spelling', 'https://0x0a.0.0.1/metadata', {}, { reason: 'address', range: 'private' }],
    ['credentials in the URL', 'https://user:pass@idp.example.test/metadata', {}, { reason: 'credentials' }],
    [
      'a name that resolves to a private address',
      'https://idp.internal.test/metadata',
      { addressPolicy: { resolver } },
      { reason: 'resolved-address' },
    ],
  ]
  it.each(cases)('%s', async (_name, url, options, details) => {
    let fetched = 0
    const counting = async () => {
      fetched += 1
      return new Response('x')
    }
    const w = world({ provider: { ...options, metadataFetch: { fetch: counting } } })
    const { handle } = await beginSetup(w)
    const before = snapshot(w)
    const r = await w.sso.advance({ handle, session: admin, request: post({ metadata_url: url, preset: 'okta' }) })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'URL_NOT_ALLOWED', redirect: 'authSettings', details })
    expect(fetched).toBe(0)
    expect(snapshot(w)).toEqual(before)
  })

  it('the allow hook admits a named internal IdP', async () => {
    const idp = new TestIdp()
    const resolver = async () => ['10.0.0.5']
    const w = world({
      idp,
      provider: {
        addressPolicy: { resolver, allow: ({ hostname }) => hostname === 'idp.internal.test' },
        metadataFetch: { fetch: async () => new Response(idp.metadata(), { status: 200 }) },
      },
    })
    const { result } = await runSetup(w, { metadata_url: 'https://idp.internal.test/metadata', preset: 'okta' })
    expect(result._unsafeUnwrap().kind).toBe('setupComplete')
  })
})

describe('metadata URL fetch: timeout, size limit, no redirects', () => {
  const cases: [string, (res: import('node:http').ServerResponse) => void, string, Record<string, unknown>][] = [
    [
      'a redirect is not followed',
      (res) => {
        res.statusCode = 302
        res.setHeader('location', 'http://169.254.169.254/latest/meta-data/')
        res.end()
      },
      'SAML_METADATA_INVALID',
      { reason: 'status', status: 302 },
    ],
    ['a 404', (res) => res.writeHead(404).end('no'), 'SAML_METADATA_INVALID', { reason: 'status', status: 404 }],
    ['a 503', (res) => res.writeHead(503).end('down'), 'PROVIDER_UNAVAILABLE', { reason: 'status', status: 503 }],
    [
      'a body over the size limit (no content-length)',
      (res) => {
        res.write('x'.repeat(20_000))
        res.end('x'.repeat(20_000))
      },
      'SAML_METADATA_INVALID',
      { reason: 'too-large' },
    ],
    ['a server that never answers', () => {}, 'PROVIDER_UNAVAILABLE', { stage: 'saml-metadata', reason: 'timeout' }],
  ]
  it.each(cases)('%s', async (name, route, code, details) => {
    const path = `/case-${name.replace(/\W+/g, '-')}`
    routes.set(path, route)
    const w = world({ provider: { dangerouslyAllowInsecureLoopbackHttp: true, metadataFetch: { timeoutMs: 300, maxBytes: 16_000 } } })
    const { handle } = await beginSetup(w)
    const before = snapshot(w)
    const r = await w.sso.advance({ handle, session: admin, request: post({ metadata_url: `${origin}${path}`, preset: 'okta' }) })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code, details })
    expect(snapshot(w)).toEqual(before)
  })
})

describe('SP metadata (sso.serviceMetadata)', () => {
  const NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata'
  const read = (xml: string) => new DOMParser().parseFromString(xml, 'text/xml') as unknown as Document

  it('before setup: entity id, ACS URL (HTTP-POST), NameID format, signing and encryption certificates', async () => {
    const signing = makeCertificate('sp-signing.test')
    const decryption = makeCertificate('sp-encryption.test')
    const w = world({
      provider: {
        signing: { privateKey: signing.privateKeyPem, certificate: signing.certificatePem },
        decryption: { privateKey: decryption.privateKeyPem, certificate: decryption.certificatePem },
      },
    })
    const md = (await w.sso.serviceMetadata({ organizationId: BETA, providerKey: 'saml' }))._unsafeUnwrap()
    expect(md.contentType).toBe('application/samlmetadata+xml')
    expect(md.body).not.toContain('PRIVATE KEY')
    const doc = read(md.body)
    const root = doc.documentElement
    expect(root.getAttribute('entityID')).toBe(BETA_ENTITY)
    const sp = root.getElementsByTagNameNS(NS_MD, 'SPSSODescriptor')[0]!
    expect(sp.getAttribute('AuthnRequestsSigned')).toBe('true')
    expect(sp.getAttribute('WantAssertionsSigned')).toBe('true')
    const acs = sp.getElementsByTagNameNS(NS_MD, 'AssertionConsumerService')[0]!
    expect(acs.getAttribute('Location')).toBe(BETA_ACS)
    expect(acs.getAttribute('Binding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST')
    expect(sp.getElementsByTagNameNS(NS_MD, 'NameIDFormat')[0]!.textContent).toBe('urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified')
    const keys = [...Array.from(sp.getElementsByTagNameNS(NS_MD, 'KeyDescriptor'))].map((k) => ({
      use: k.getAttribute('use'),
      cert: k.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]!.textContent!.replace(/\s+/g, ''),
    }))
    expect(keys).toEqual([
      { use: 'signing', cert: signing.certificateBase64 },
      { use: 'encryption', cert: decryption.certificateBase64 },
    ])
  })

  it('after setup: the entity id stored at setup, even when the entityId option now says otherwise', async () => {
    const w = world({ provider: { entityId: () => 'urn:example:changed' } })
    const md = (await w.sso.serviceMetadata({ organizationId: 'org-acme', providerKey: 'saml' }))._unsafeUnwrap()
    expect(read(md.body).documentElement.getAttribute('entityID')).toBe(`${BASE}/saml/metadata/acme/`)
    expect(md.body).not.toContain('KeyDescriptor')
  })

  it('with an SP signing key the AuthnRequest is signed (RSA-SHA256)', async () => {
    const signing = makeCertificate('sp-signing.test')
    const w = world({ provider: { signing: { privateKey: signing.privateKeyPem, certificate: signing.certificatePem } } })
    const step = (await w.sso.beginLogin({ organizationId: 'org-acme', session: { id: 's' } }))._unsafeUnwrap() as { url: string }
    expect(TestIdp.readRequest(step.url).signed).toBe(true)
    expect(new URL(step.url).searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256')
  })
})
