// An in-process OpenID provider (panva's oidc-provider 8.8, certified) on 127.0.0.1:0, with a
// scripted login interaction (no UI) and a tiny cookie-jar "browser" that follows redirects by
// hand and stops at the app's callback URL.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { type OidcContext } from 'oidc-provider'

export interface TestAccount {
  readonly sub: string
  readonly email: string
  readonly email_verified: unknown
  readonly name: string
}

export interface TestOp {
  readonly issuer: string
  readonly clients: { readonly app: { id: string; secret: string }; readonly other: { id: string; secret: string } }
  /** Accounts known to the OP, by sub. */
  readonly accounts: Map<string, TestAccount>
  /** The account the next login interaction signs in (else the `login_hint`). */
  nextLogin: string | null
  close(): Promise<void>
}

export async function startOp(redirectUri: string): Promise<TestOp> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const issuer = `http://127.0.0.1:${port}`
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' }
  const accounts = new Map<string, TestAccount>()
  const clients = {
    app: { id: 'ssoflow-app', secret: randomBytes(24).toString('hex') },
    other: { id: 'other-app', secret: randomBytes(24).toString('hex') },
  }
  const clientMeta = (c: { id: string; secret: string }) => ({
    client_id: c.id,
    client_secret: c.secret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })
  const op = new Provider(issuer, {
    clients: [clientMeta(clients.app), clientMeta(clients.other)],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Put the requested claims in the ID token (not only in userinfo), like most enterprise IdPs.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    issueRefreshToken: async () => true,
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, RefreshToken: 3600, IdToken: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accounts.get(sub)
      if (!account) return undefined
      return {
        accountId: sub,
        claims: async () => ({ sub, email: account.email, email_verified: account.email_verified, name: account.name }),
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
  const state: TestOp = {
    issuer,
    clients,
    accounts,
    nextLogin: null,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  const handle = op.callback()
  server.on('request', (req, res) => {
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
    handle(req, res)
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
