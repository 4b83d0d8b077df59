// An in-process OpenID provider (panva's oidc-provider 8.8, certified) on 127.0.0.1:0, with a
// scripted login interaction (no UI) and a tiny cookie-jar "browser" that follows redirects by
// hand and stops at the app's callback URL.
//
// `startOp(redirectUri, behaviour)` can make the OP behave like providers nobody here wrote
// (issue 17): a token endpoint that compares Basic credentials without decoding them, PKCE
// switched off and not advertised (code_challenge refused), an issuer under a path with or
// without a trailing slash, claims only in userinfo. Those behaviours sit in a small proxy in
// front of the real OP (the OP itself listens on a second loopback port).
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { type OidcContext } from 'oidc-provider'

export interface TestAccount {
  readonly sub: string
  readonly email: string
  readonly email_verified: unknown
  readonly name: string
  /** More claims in the ID token (Entra's `tid`/`oid`, Google's `hd`). */
  readonly extra?: Readonly<Record<string, unknown>>
}

export interface TestClient {
  readonly id: string
  readonly secret: string
  /** How the OP registered the client. @defaultValue 'client_secret_basic' */
  readonly auth?: 'client_secret_basic' | 'client_secret_post'
}

/** How the OP behaves. */
export interface OpBehaviour {
  /** Path of the issuer under the origin, e.g. `/op` or `/op/`. @defaultValue '' */
  readonly issuerPath?: string
  /** More clients (ids and secrets may contain any character). */
  readonly clients?: readonly TestClient[]
  /**
   * The token endpoint compares HTTP Basic credentials byte for byte without form-decoding them
   * (refusing encoded ones with 401 invalid_client, like the C provider of issue 17), and still
   * accepts client_secret_post.
   */
  readonly rawBasic?: boolean
  /**
   * `'off'`: PKCE switched off: discovery does not advertise it and an authorization request with
   * a code_challenge is answered with error=invalid_request. `'refused'`: advertised, yet refused
   * the same way. @defaultValue 'required'
   */
  readonly pkce?: 'required' | 'off' | 'refused'
  /** Scope claims only from userinfo (OIDC Core 5.4), not in the ID token. @defaultValue false */
  readonly claimsOnlyInUserinfo?: boolean
  /**
   * The token endpoint accepts only the method each client is registered for (oidc-provider 8.8
   * itself accepts basic and post for any secret client), answering 401 invalid_client otherwise.
   */
  readonly strictAuthMethod?: boolean
  /** With rawBasic: a refused client authentication also spends the code (later uses get invalid_grant). */
  readonly spendCodeOnRefusedClient?: boolean
  /**
   * Like Entra ID's multi-tenant endpoint: the OP's discovery document is also served at
   * `<origin><path>/.well-known/openid-configuration` (e.g. `/organizations/v2.0`) with its issuer
   * replaced by the template `<origin>/{tenantid}/v2.0` and without RFC 9207's
   * `authorization_response_iss_parameter_supported`; the OP itself is one tenant (its
   * `issuerPath` is `/<tenant id>/v2.0`).
   */
  readonly multiTenantPath?: string
}

export interface TestOp {
  readonly issuer: string
  readonly origin: string
  readonly clients: { readonly app: { id: string; secret: string }; readonly other: { id: string; secret: string } }
  /** Accounts known to the OP, by sub. */
  readonly accounts: Map<string, TestAccount>
  /** The account the next login interaction signs in (else the `login_hint`). */
  nextLogin: string | null
  /** Token requests the OP received: how each authenticated the client. */
  readonly tokenRequests: { readonly basic: boolean; readonly post: boolean; readonly grant: string | null }[]
  close(): Promise<void>
}

function listen(server: Server): Promise<number> {
  return new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)))
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

export async function startOp(redirectUri: string, behaviour: OpBehaviour = {}): Promise<TestOp> {
  const internal: Server = createServer()
  const front: Server = createServer()
  const internalPort = await listen(internal)
  const port = await listen(front)
  const origin = `http://127.0.0.1:${port}`
  const issuerPath = behaviour.issuerPath ?? ''
  const mount = issuerPath.replace(/\/$/, '')
  const issuer = `${origin}${issuerPath}`
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' }
  const accounts = new Map<string, TestAccount>()
  const clients = {
    app: { id: 'ssoflow-app', secret: randomBytes(24).toString('hex') },
    other: { id: 'other-app', secret: randomBytes(24).toString('hex') },
  }
  const allClients: TestClient[] = [clients.app, clients.other, ...(behaviour.clients ?? [])]
  const clientMeta = (c: TestClient) => ({
    client_id: c.id,
    client_secret: c.secret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.auth ?? 'client_secret_basic',
  })
  const pkce = behaviour.pkce ?? 'required'
  const op = new Provider(issuer, {
    clients: allClients.map(clientMeta),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => pkce !== 'off', methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub', 'tid', 'oid', 'hd'], email: ['email', 'email_verified'], profile: ['name'] },
    // By default the requested claims are put in the ID token (not only in userinfo), like most
    // enterprise IdPs; claimsOnlyInUserinfo restores the OIDC Core 5.4 default.
    conformIdTokenClaims: behaviour.claimsOnlyInUserinfo === true,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    issueRefreshToken: async () => true,
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, RefreshToken: 3600, IdToken: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accounts.get(sub)
      if (!account) return undefined
      return {
        accountId: sub,
        claims: async () => ({ ...account.extra, sub, email: account.email, email_verified: account.email_verified, name: account.name }),
      }
    },
    // Consent is implied (a first-party enterprise app): grant the requested scopes.
    loadExistingGrant: async (ctx: OidcContext) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)
      if (grantId) return ctx.oidc.provider.Grant.find(grantId)
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
      grant.addOIDCScope('openid email profile offline_access')
      await grant.save()
      return grant
    },
  })
  const tokenRequests: TestOp['tokenRequests'][number][] = []
  const state: TestOp = {
    issuer,
    origin,
    clients,
    accounts,
    nextLogin: null,
    tokenRequests,
    close: async () => {
      for (const s of [front, internal]) {
        s.closeAllConnections()
        await new Promise<void>((resolve) => s.close(() => resolve()))
      }
    },
  }

  // The real OP, mounted under the issuer's path.
  const handle = op.callback()
  internal.on('request', (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      void (async () => {
        try {
          const details = await op.interactionDetails(req, res)
          const accountId = state.nextLogin ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : null)
          if (!accountId) throw new Error('no account chosen for the login interaction')
          await op.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false })
        } catch (e) {
          res.statusCode = 500
          res.end(String(e))
        }
      })()
      return
    }
    if (mount && req.url?.startsWith(mount)) {
      const r = req as IncomingMessage & { originalUrl?: string }
      r.originalUrl = req.url
      req.url = req.url.slice(mount.length) || '/'
    }
    handle(req, res)
  })

  /** Forwards a request to the real OP, with `body` and `headers` possibly rewritten. */
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, headers = req.headers, rewrite?: (text: string) => string) => {
    const upstream = request({ host: '127.0.0.1', port: internalPort, method: req.method, path: req.url, headers }, (up) => {
      if (!rewrite) {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
        return
      }
      void readBody(up).then((b) => {
        const text = rewrite(b.toString())
        const h = { ...up.headers, 'content-length': String(Buffer.byteLength(text)) }
        res.writeHead(up.statusCode ?? 502, h)
        res.end(text)
      })
    })
    upstream.end(body)
  }

  // The proxy in front: the behaviours of issue 17.
  const spent = new Set<string>()
  front.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin)
      const body = await readBody(req)
      if (behaviour.multiTenantPath && url.pathname === `${behaviour.multiTenantPath}/.well-known/openid-configuration`) {
        const real = await fetch(`${issuer}/.well-known/openid-configuration`)
        const doc = (await real.json()) as Record<string, unknown>
        // Entra's document does not advertise RFC 9207 either.
        delete doc.authorization_response_iss_parameter_supported
        json(res, 200, { ...doc, issuer: `${origin}/{tenantid}/v2.0` })
        return
      }
      const path = url.pathname.slice(mount.length)
      if (path === '/.well-known/openid-configuration' && pkce === 'off') {
        forward(req, res, body, req.headers, (text) => {
          const doc = JSON.parse(text) as Record<string, unknown>
          delete doc.code_challenge_methods_supported
          return JSON.stringify(doc)
        })
        return
      }
      if (path === '/auth' && pkce !== 'required' && url.searchParams.has('code_challenge')) {
        const back = new URL(url.searchParams.get('redirect_uri') ?? redirectUri)
        back.searchParams.set('error', 'invalid_request')
        back.searchParams.set('error_description', 'code_challenge is not supported')
        const st = url.searchParams.get('state')
        if (st) back.searchParams.set('state', st)
        back.searchParams.set('iss', issuer)
        res.writeHead(303, { location: back.href })
        res.end()
        return
      }
      if (path === '/token' && req.method === 'POST') {
        const authorization = req.headers.authorization
        const form = new URLSearchParams(body.toString())
        tokenRequests.push({ basic: authorization !== undefined, post: form.has('client_secret'), grant: form.get('grant_type') })
        const code = form.get('code')
        if (code !== null && spent.has(code)) {
          json(res, 400, { error: 'invalid_grant', error_description: 'authorization code already used' })
          return
        }
        if (behaviour.strictAuthMethod) {
          const basic = authorization?.toLowerCase().startsWith('basic ') === true
          const id = basic
            ? decodeURIComponent(
                (Buffer.from(authorization!.slice(6), 'base64').toString('utf8').split(':')[0] ?? '').replace(/\+/g, '%20'),
              )
            : form.get('client_id')
          const registered = allClients.find((c) => c.id === id)?.auth ?? 'client_secret_basic'
          if ((basic ? 'client_secret_basic' : 'client_secret_post') !== registered) {
            json(res, 401, {
              error: 'invalid_client',
              error_description: 'the provided authentication mechanism does not match the registered client authentication method',
            })
            return
          }
        }
        if (behaviour.rawBasic && authorization?.toLowerCase().startsWith('basic ')) {
          // Compare byte for byte, as sent: no form-decoding.
          const raw = Buffer.from(authorization.slice(6), 'base64').toString('utf8')
          const colon = raw.indexOf(':')
          const client = allClients.find((c) => c.id === raw.slice(0, colon) && c.secret === raw.slice(colon + 1))
          if (colon < 0 || !client) {
            if (behaviour.spendCodeOnRefusedClient && code !== null) spent.add(code)
            json(
              res,
              401,
              { error: 'invalid_client', error_description: 'client authentication failed' },
              { 'www-authenticate': 'Basic realm="op"' },
            )
            return
          }
          // Accepted: hand it to the real OP the way that client is registered there.
          const headers = { ...req.headers }
          delete headers.authorization
          let next = form
          if ((client.auth ?? 'client_secret_basic') === 'client_secret_basic') {
            headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`
          } else {
            next = new URLSearchParams(form)
            next.set('client_id', client.id)
            next.set('client_secret', client.secret)
          }
          const rewritten = Buffer.from(next.toString())
          headers['content-length'] = String(rewritten.byteLength)
          forward(req, res, rewritten, headers)
          return
        }
      }
      forward(req, res, body)
    })().catch((e: unknown) => {
      res.statusCode = 500
      res.end(String(e))
    })
  })
  return state
}

/** A browser: a cookie jar for the OP and manual redirect following. */
export class Browser {
  readonly cookies = new Map<string, string>()

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      if (eq <= 0) continue
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1] ?? '').getTime() < Date.now())
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /**
   * Follows redirects from `url` until one points at `stopAt` (the app's callback), and returns
   * that URL. Throws when the chain ends elsewhere.
   */
  async follow(url: string, stopAt: string): Promise<URL> {
    let current = url
    for (let i = 0; i < 12; i++) {
      if (current.startsWith(stopAt)) return new URL(current)
      const res = await fetch(current, { redirect: 'manual', headers: { cookie: this.cookieHeader() } })
      this.store(res)
      const location = res.headers.get('location')
      if (res.status < 300 || res.status >= 400 || !location) {
        throw new Error(`redirect chain ended at ${current} with ${res.status}: ${(await res.text()).slice(0, 300)}`)
      }
      await res.body?.cancel()
      current = new URL(location, current).href
    }
    throw new Error('too many redirects')
  }
}
