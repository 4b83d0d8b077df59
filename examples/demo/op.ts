/**
 * The demo's identity provider: panva's oidc-provider 8.8 (a certified OpenID provider) running in
 * this process on loopback, with small login and consent screens of its own (no external fonts
 * or scripts, so a strict browser console stays clean). Whatever address you type at its login
 * screen is the account: any password is accepted. It is a stand-in for Okta, Entra ID, Google...
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import Provider, { type InteractionDetails } from 'oidc-provider'

export interface DemoOp {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  close(): Promise<void>
}

/** People the IdP knows by name (anyone else gets a name made from the address). */
const NAMES: Readonly<Record<string, string>> = {
  'ada@acme.test': 'Ada Admin',
  'bob@acme.test': 'Bob Builder',
  'carol@acme.test': 'Carol Invited',
  'dave@acme.test': 'Dave Passwordless',
  'erin@acme.test': 'Erin Newcomer',
}

const CSS = `body{margin:0;background:#eef1f6;color:#1d2330;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:12px;border:1px solid #d9dde5}
.brand{font-weight:700;color:#0b6e4f;margin:0 0 1rem;letter-spacing:.02em}
h1{font-size:1.35rem;margin:0 0 1rem}label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;font:inherit;padding:.55rem .7rem;border:1px solid #c5cbd6;border-radius:8px}
button{font:inherit;margin-top:1.25rem;padding:.6rem 1.1rem;border-radius:8px;border:1px solid #0b6e4f;background:#0b6e4f;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b6e4f;margin-left:.5rem}.hint{color:#5b6475;font-size:.9rem}ul{padding-left:1.2rem}`

function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><link rel="stylesheet" href="/op.css"></head><body><main><p class="brand">Demo IdP</p>${body}</main></body></html>`
}

function loginPage(details: InteractionDetails): string {
  const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
  return page(
    'Sign in to Demo IdP',
    `<h1>Sign in</h1>
<form method="post" action="/interaction/${esc(details.uid)}/login">
<label for="login">Email</label><input id="login" name="login" type="email" required value="${esc(hint)}"${hint ? '' : ' autofocus'}>
<label for="password">Password</label><input id="password" name="password" type="password" required${hint ? ' autofocus' : ''}>
<p class="hint">Demo IdP: any address is an account, any password works.</p>
<button type="submit">Sign in</button>
</form>`,
  )
}

function consentPage(details: InteractionDetails, clientName: string): string {
  return page(
    'Authorize',
    `<h1>Allow ${esc(clientName)}?</h1>
<p>${esc(clientName)} asks to know who you are:</p>
<ul><li>your email address</li><li>your name</li></ul>
<form method="post" action="/interaction/${esc(details.uid)}/confirm">
<button type="submit" autofocus>Allow</button><button type="submit" class="secondary" formaction="/interaction/${esc(details.uid)}/abort">Cancel</button>
</form>`,
  )
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > 8192) break
  }
  return new URLSearchParams(body)
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'self'",
  })
  res.end(body)
}

/** Starts the IdP on 127.0.0.1:`port` (0 for any free port) for a client whose callback is `redirectUri`. */
export async function startDemoOp(port: number, redirectUri: string): Promise<DemoOp> {
  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const issuer = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const clientId = 'acme-app'
  const clientSecret = randomBytes(18).toString('base64url')
  const op = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        client_name: 'Acme App',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'demo', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({
        sub,
        email: sub,
        email_verified: true,
        name: NAMES[sub] ?? sub.split('@')[0]?.replace(/^./, (c) => c.toUpperCase()) ?? sub,
      }),
    }),
    ttl: { Interaction: 600, Grant: 3600, Session: 3600, AccessToken: 600, RefreshToken: 3600, IdToken: 600, AuthorizationCode: 60 },
  })
  // The demo IdP is chatty about its dev defaults; keep the console for the app.
  op.on('server_error', (_ctx: unknown, error: unknown) => console.error('demo IdP error:', error))
  const callback = op.callback()
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer)
    if (url.pathname === '/op.css') return send(res, 200, 'text/css; charset=utf-8', CSS)
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204)
      res.end()
      return
    }
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(url.pathname)
    if (!m) return callback(req, res)
    void (async () => {
      try {
        const details = await op.interactionDetails(req, res)
        const action = m[2]
        if (!action && req.method === 'GET') {
          const html = details.prompt.name === 'login' ? loginPage(details) : consentPage(details, 'Acme App')
          return send(res, 200, 'text/html; charset=utf-8', html)
        }
        if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed')
        if (action === 'abort') {
          return await op.interactionFinished(
            req,
            res,
            { error: 'access_denied', error_description: 'cancelled' },
            { mergeWithLastSubmission: false },
          )
        }
        if (action === 'login') {
          const form = await readForm(req)
          const login = (form.get('login') ?? '').trim().toLowerCase()
          if (!/^[^@\s]{1,64}@[^@\s]{1,190}$/.test(login)) return send(res, 400, 'text/html; charset=utf-8', loginPage(details))
          return await op.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false })
        }
        // consent: grant what the client asked for
        const grant = details.grantId
          ? await op.Grant.find(details.grantId)
          : new op.Grant({ accountId: details.session?.accountId ?? '', clientId })
        if (!grant) throw new Error('grant not found')
        const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] }
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims)
        const grantId = await grant.save()
        return await op.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
      } catch (e) {
        send(res, 400, 'text/plain; charset=utf-8', `Demo IdP: ${(e as Error).message}`)
      }
    })()
  })
  return {
    issuer,
    clientId,
    clientSecret,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
