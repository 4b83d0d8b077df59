/**
 * ssoflow on Fastify 5: the whole integration (getSession + applySessionEffects). Memory storage
 * and the dummy provider keep it self-contained; swap in ssoflow/kysely and ssoflow/oidc.
 *
 *   npx tsx examples/fastify/main.ts   ->  http://localhost:3200/auth/sso/login/acme
 *
 * In your app, import from the package: 'ssoflow', 'ssoflow/http', 'ssoflow/fastify', ...
 */
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { dummyProvider } from '../../src/dummy/index.js'
import { type FastifyContext, ssoFastify } from '../../src/fastify/index.js'
import { createSsoHandler, ssoHandlerUrls } from '../../src/http/index.js'
import { createAuthPipeline } from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { makeOrganization, makeProvider } from '../../src/testing/index.js'

/** Your app's sessions (@fastify/session or similar); here a Map behind a cookie. */
const sessions = new Map<string, { userId: string | null }>()
const sidOf = (request: FastifyRequest) => /(?:^|;\s*)sid=([\w-]+)/.exec(request.headers.cookie ?? '')?.[1] ?? null

export async function startFastifyExample(port: number, host = 'localhost'): Promise<{ url: string; app: FastifyInstance }> {
  const baseUrl = `http://${host}:${port}`
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
  const handler = createSsoHandler<FastifyContext>(sso, {
    ...http,
    getSession: (_request, { request }) => sessions.get(sidOf(request) ?? '') ?? null,
    applySessionEffects(effects, { context: { request } }) {
      const login = effects.find((e) => e.type === 'login')
      if (!login) return
      // an existing account was just proven (threat 2): end every other session of the user
      if (effects.some((e) => e.type === 'revokeOtherSessions')) {
        for (const [sid, s] of sessions) if (s.userId === login.userId) sessions.delete(sid)
      }
      sessions.delete(sidOf(request) ?? '') // rotate: a new session id on every login
      const sid = randomBytes(18).toString('base64url')
      sessions.set(sid, { userId: login.userId })
      return [['set-cookie', `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`]]
    },
  })
  // ---- end of the glue

  const app = Fastify()
  await app.register(ssoFastify, { handler })
  app.get('/', async (request) => `signed in as: ${sessions.get(sidOf(request) ?? '')?.userId ?? 'nobody'}`)
  await app.listen({ port, host: '127.0.0.1' })
  return { url: baseUrl, app }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { url } = await startFastifyExample(Number(process.env.PORT ?? 3200))
  console.log(`Fastify example: ${url}/auth/sso/login/acme`)
}
