/**
 * ssoflow on Express 5: the whole integration (getSession + applySessionEffects). Memory storage
 * and the dummy provider keep it self-contained; swap in ssoflow/kysely and ssoflow/oidc.
 *
 *   npx tsx examples/express/main.ts   ->  http://localhost:3100/auth/sso/login/acme
 *
 * In your app, import from the package: 'ssoflow', 'ssoflow/http', 'ssoflow/express', ...
 */
import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import express, { type Request } from 'express'
import { dummyProvider } from '../../src/dummy/index.js'
import { type ExpressContext, ssoExpress } from '../../src/express/index.js'
import { createSsoHandler, ssoHandlerUrls } from '../../src/http/index.js'
import { createAuthPipeline } from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { makeOrganization, makeProvider } from '../../src/testing/index.js'

/** Your app's sessions (express-session or similar); here a Map behind a cookie. */
const sessions = new Map<string, { userId: string | null }>()
const sidOf = (req: Request) => /(?:^|;\s*)sid=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1] ?? null

export function startExpressExample(port: number): Promise<{ url: string; server: Server }> {
  const baseUrl = `http://localhost:${port}`
  const storage = createMemoryStorage()
  storage.seed({
    organizations: [makeOrganization({ id: 'acme', slug: 'acme', name: 'Acme' })],
    providers: [makeProvider({ id: 'p1', organizationId: 'acme', providerKey: 'dummy' })],
  })
  const http = { baseUrl, basePath: '/auth/sso' }
  const sso = createAuthPipeline({
    storage,
    mailer: { send: async (m) => console.log(`mail ${m.template} to ${m.to}`) },
    signals: { emit: async () => {} },
    providers: { dummy: dummyProvider() },
    secret: randomBytes(32),
    urls: { ...ssoHandlerUrls(http), orgLogin: () => '/', authSettings: () => '/', providerSettings: () => '/', afterLogin: () => '/' },
  })

  // ---- the glue: getSession and applySessionEffects
  const handler = createSsoHandler<ExpressContext<Request>>(sso, {
    ...http,
    getSession: (_request, { req }) => sessions.get(sidOf(req) ?? '') ?? null,
    applySessionEffects(effects, { context: { req } }) {
      const login = effects.find((e) => e.type === 'login')
      if (!login) return
      // an existing account was just proven (threat 2): end every other session of the user
      if (effects.some((e) => e.type === 'revokeOtherSessions')) {
        for (const [sid, s] of sessions) if (s.userId === login.userId) sessions.delete(sid)
      }
      sessions.delete(sidOf(req) ?? '') // rotate: a new session id on every login
      const sid = randomBytes(18).toString('base64url')
      sessions.set(sid, { userId: login.userId })
      return [['set-cookie', `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`]]
    },
  })
  // ---- end of the glue

  const app = express()
  app.use(ssoExpress(handler)) // before any body parser
  app.get('/', (req, res) => {
    res.type('text').send(`signed in as: ${sessions.get(sidOf(req) ?? '')?.userId ?? 'nobody'}`)
  })
  return new Promise((resolve) => {
    const server = app.listen(port, '127.0.0.1', () => {
      const address = server.address()
      const actual = typeof address === 'object' && address ? address.port : port
      resolve({ url: `http://localhost:${actual}`, server })
    })
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { url } = await startExpressExample(Number(process.env.PORT ?? 3100))
  console.log(`Express example: ${url}/auth/sso/login/acme`)
}
