/**
 * The demo's SAML 2.0 identity provider, in this process on loopback: it reads the app's
 * AuthnRequest (HTTP-Redirect binding), shows a login screen, and answers with a Response whose
 * assertion it signs (RSA-SHA256, exclusive C14N, xml-crypto) with a key pair and certificate made
 * at start, posted back to the app's ACS by an auto-submitted form (HTTP-POST binding). It sends the
 * attributes Okta sends (`id`, `email`, `firstName`, `lastName`). A stand-in for Okta, Entra ID or
 * Google Workspace: whatever address you type is the account, any password works.
 *
 * It runs on 127.0.0.1 while the app is on localhost: another site, so the browser's post to the
 * ACS is a real cross-site form post (no SameSite=Lax cookies), as with a hosted IdP.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { inflateRawSync } from 'node:zlib'
import { DOMParser } from '@xmldom/xmldom'
import { SignedXml } from 'xml-crypto'
import { type DemoCertificate, makeCertificate } from './x509.js'

export interface DemoSamlIdp {
  /** The IdP's entity id (also its metadata URL). */
  readonly entityId: string
  readonly metadataUrl: string
  readonly ssoUrl: string
  close(): Promise<void>
}

const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol'
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion'

/** People the IdP knows by name (anyone else gets a name made from the address). */
const NAMES: Readonly<Record<string, readonly [string, string]>> = {
  'gina@globex.test': ['Gina', 'Globex'],
  'hana@globex.test': ['Hana', 'Invited'],
  'ivan@globex.test': ['Ivan', 'Newcomer'],
}

const CSS = `body{margin:0;background:#f3eefb;color:#1d2330;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:12px;border:1px solid #dcd3ee}
.brand{font-weight:700;color:#6b2fb3;margin:0 0 1rem;letter-spacing:.02em}
h1{font-size:1.35rem;margin:0 0 1rem}label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;font:inherit;padding:.55rem .7rem;border:1px solid #c9bfdc;border-radius:8px}
button{font:inherit;margin-top:1.25rem;padding:.6rem 1.1rem;border-radius:8px;border:1px solid #6b2fb3;background:#6b2fb3;color:#fff;cursor:pointer}
.hint{color:#5b6475;font-size:.9rem}`

const esc = (value: unknown): string => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
const newId = () => `_${randomBytes(16).toString('hex')}`

function page(title: string, body: string, nonce: string | null = null): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><link rel="stylesheet" href="/saml/idp.css"></head><body><main><p class="brand">Demo SAML IdP</p>${body}</main>${
    nonce ? `<script nonce="${esc(nonce)}">document.forms[0].submit()</script>` : ''
  }</body></html>`
}

function send(res: ServerResponse, status: number, type: string, body: string, nonce: string | null = null): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'self'${nonce ? `; script-src 'nonce-${nonce}'` : ''}`,
  })
  res.end(body)
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > 8192) break
  }
  return new URLSearchParams(body)
}

/** What the app asked for, read from its AuthnRequest. */
interface Pending {
  readonly requestId: string
  readonly acsUrl: string
  readonly audience: string
  readonly relayState: string
}

function readAuthnRequest(url: URL): Omit<Pending, 'relayState'> | null {
  const encoded = url.searchParams.get('SAMLRequest')
  if (!encoded || encoded.length > 16_384) return null
  try {
    const xml = inflateRawSync(Buffer.from(encoded, 'base64'), { maxOutputLength: 65_536 }).toString('utf8')
    if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return null
    const root = new DOMParser().parseFromString(xml, 'text/xml').documentElement as unknown as Element | null
    if (root?.localName !== 'AuthnRequest' || root.namespaceURI !== SAMLP) return null
    const issuer = root.getElementsByTagNameNS(SAML, 'Issuer')[0]?.textContent ?? ''
    const requestId = root.getAttribute('ID') ?? ''
    const acsUrl = root.getAttribute('AssertionConsumerServiceURL') ?? ''
    return requestId && acsUrl && issuer ? { requestId, acsUrl, audience: issuer } : null
  } catch {
    return null
  }
}

function responseXml(idp: { entityId: string; cert: DemoCertificate }, pending: Pending, email: string): string {
  const now = new Date()
  const [first, last] = NAMES[email] ?? [(email.split('@')[0] ?? email).replace(/^./, (c) => c.toUpperCase()), 'Demo']
  const attributes: Record<string, string> = { id: `demo-saml-${email}`, email, firstName: first, lastName: last }
  const attrs = Object.entries(attributes)
    .map(
      ([name, value]) =>
        `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"><saml:AttributeValue>${esc(value)}</saml:AttributeValue></saml:Attribute>`,
    )
    .join('')
  const expires = iso(new Date(now.getTime() + 5 * 60_000))
  const assertion =
    `<saml:Assertion xmlns:saml="${SAML}" ID="${newId()}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${esc(idp.entityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${esc(email)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${esc(pending.requestId)}" NotOnOrAfter="${expires}" Recipient="${esc(pending.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(new Date(now.getTime() - 30_000))}" NotOnOrAfter="${expires}"><saml:AudienceRestriction><saml:Audience>${esc(pending.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${newId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement>${attrs}</saml:AttributeStatement></saml:Assertion>`
  const signer = new SignedXml({
    privateKey: idp.cert.privateKeyPem,
    publicCert: idp.cert.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  })
  const target = "//*[local-name(.)='Assertion']"
  signer.addReference({
    xpath: target,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  })
  signer.computeSignature(assertion, { prefix: 'ds', location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' } })
  return (
    `<samlp:Response xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${newId()}" Version="2.0" IssueInstant="${iso(now)}" Destination="${esc(pending.acsUrl)}" InResponseTo="${esc(pending.requestId)}">` +
    `<saml:Issuer>${esc(idp.entityId)}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    signer.getSignedXml() +
    `</samlp:Response>`
  )
}

/**
 * Starts the IdP on 127.0.0.1:`port` (0 for any free port). It answers only AuthnRequests whose
 * ACS URL `acsAllowed` accepts (the app's, as an IdP admin would register it).
 */
export async function startDemoSamlIdp(port: number, acsAllowed: (acsUrl: string) => boolean): Promise<DemoSamlIdp> {
  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`
  const idp = { entityId: `${origin}/saml/metadata`, cert: makeCertificate('demo-saml-idp.localhost') }
  const ssoUrl = `${origin}/saml/sso`
  const pending = new Map<string, Pending>()
  const metadata =
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${esc(idp.entityId)}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${idp.cert.certificateBase64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${esc(ssoUrl)}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`

  server.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin)
      if (url.pathname === '/saml/idp.css') return send(res, 200, 'text/css; charset=utf-8', CSS)
      if (url.pathname === '/saml/metadata') return send(res, 200, 'application/samlmetadata+xml', metadata)
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204)
        res.end()
        return
      }
      if (url.pathname === '/saml/sso' && req.method === 'GET') {
        const request = readAuthnRequest(url)
        if (!request || !acsAllowed(request.acsUrl))
          return send(res, 400, 'text/plain; charset=utf-8', 'Demo SAML IdP: not an AuthnRequest of the demo app')
        const uid = randomBytes(16).toString('base64url')
        pending.set(uid, { ...request, relayState: (url.searchParams.get('RelayState') ?? '').slice(0, 256) })
        return send(
          res,
          200,
          'text/html; charset=utf-8',
          page(
            'Sign in to Demo SAML IdP',
            `<h1>Sign in</h1>
<form method="post" action="/saml/login/${esc(uid)}">
<label for="login">Email</label><input id="login" name="login" type="email" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<p class="hint">Demo SAML IdP: any address is an account, any password works.</p>
<button type="submit">Sign in</button>
</form>`,
          ),
        )
      }
      const login = /^\/saml\/login\/([A-Za-z0-9_-]{10,64})$/.exec(url.pathname)
      if (login && req.method === 'POST') {
        const request = pending.get(login[1] as string)
        if (!request) return send(res, 400, 'text/plain; charset=utf-8', 'Demo SAML IdP: this sign-in expired; start again at the app')
        const form = await readForm(req)
        const email = (form.get('login') ?? '').trim().toLowerCase()
        if (!/^[^@\s]{1,64}@[^@\s]{1,190}$/.test(email))
          return send(res, 400, 'text/plain; charset=utf-8', 'Demo SAML IdP: enter an address')
        pending.delete(login[1] as string)
        const samlResponse = Buffer.from(responseXml(idp, request, email), 'utf8').toString('base64')
        const nonce = randomBytes(16).toString('base64url')
        // The HTTP-POST binding: a form to the app's ACS, submitted at once.
        return send(
          res,
          200,
          'text/html; charset=utf-8',
          page(
            'Signing you in',
            `<h1>Signing you in to the app</h1>
<form method="post" action="${esc(request.acsUrl)}">
<input type="hidden" name="SAMLResponse" value="${esc(samlResponse)}">
${request.relayState ? `<input type="hidden" name="RelayState" value="${esc(request.relayState)}">` : ''}
<button type="submit">Continue</button>
</form>`,
            nonce,
          ),
          nonce,
        )
      }
      send(res, 404, 'text/plain; charset=utf-8', 'not found')
    })().catch((error: unknown) => send(res, 500, 'text/plain; charset=utf-8', `Demo SAML IdP: ${(error as Error).message}`))
  })
  return {
    entityId: idp.entityId,
    metadataUrl: idp.entityId,
    ssoUrl,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
