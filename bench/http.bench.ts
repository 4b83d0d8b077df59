/**
 * What the HTTP handler adds per request (issue 9: at most 0.3 ms), side by side in one run: a
 * returning user's login (start, then the provider form's POST that finishes it) driven (a)
 * through the engine directly and (b) through `createSsoHandler(...).fetch` with real `Request`
 * objects: routing, cookies, CSRF (one SHA-256), strict form parsing, the page HTML and the
 * `Response`. Memory storage and the dummy provider, so the engine's own cost is small and the
 * handler's share is visible. Each iteration is two requests: overhead per request =
 * (mean b - mean a) / 2.
 *
 * Run: `npx vitest bench --run bench/http.bench.ts` (also part of `npm run bench`).
 */
import { bench, describe } from 'vitest'
import { dummyProvider } from '../src/dummy/index.js'
import { createSsoHandler, ssoHandlerUrls } from '../src/http/index.js'
import { createAuthPipeline, type SessionInfo } from '../src/index.js'
import { createMemoryStorage } from '../src/memory/index.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../src/testing/index.js'

const ORIGIN = 'https://app.example.com'
const OPTIONS = { time: 4_000, warmupTime: 500 }
const http = { baseUrl: ORIGIN, basePath: '/auth/sso' }

const storage = createMemoryStorage()
storage.seed({
  organizations: [makeOrganization({ id: 'org', slug: 'acme' })],
  providers: [makeProvider({ id: 'ap', organizationId: 'org', providerKey: 'dummy' })],
  users: [makeUser({ id: 'u1', email: 'u1@acme.test' })],
  members: [makeMember({ id: 'm1', organizationId: 'org', userId: 'u1' })],
  identities: [makeIdentity({ id: 'i1', authProviderId: 'ap', userId: 'u1', ident: 'ext-u1' })],
})
const sso = createAuthPipeline({
  storage,
  mailer: { send: async () => {} },
  signals: { emit: async () => {} },
  providers: { dummy: dummyProvider() },
  secret: 'a bench secret of at least thirty-two bytes',
  urls: { ...ssoHandlerUrls(http), orgLogin: () => '/', authSettings: () => '/', providerSettings: () => '/', afterLogin: () => '/' },
})
const handler = createSsoHandler(sso, {
  ...http,
  resolveOrganization: (slug) => (slug === 'acme' ? 'org' : null),
  getSession: () => null,
  applySessionEffects: () => [['set-cookie', 'sid=new; Path=/; HttpOnly']],
})
const FORM = { id: 'ext-u1', email: 'u1@acme.test', email_verified: 'on' }
let n = 0

describe('returning login, two requests: engine direct vs through the HTTP handler', () => {
  bench(
    'engine direct (beginLogin + advance)',
    async () => {
      const session: SessionInfo = { id: `s-${++n}` }
      const begun = await sso.beginLogin({ organizationId: 'org', session })
      if (begun.isErr() || begun.value.kind !== 'render') throw new Error('begin failed')
      const done = await sso.advance({ handle: begun.value.handle, session, request: { method: 'POST', query: {}, form: FORM } })
      if (done.isErr() || done.value.kind !== 'signedIn') throw new Error('finish failed')
    },
    OPTIONS,
  )

  bench(
    'HTTP handler (GET /login/acme + POST /callback)',
    async () => {
      const start = await handler.fetch(new Request(`${ORIGIN}/auth/sso/login/acme`))
      const html = await start.text()
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
      const cookie = start.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ')
      const done = await handler.fetch(
        new Request(`${ORIGIN}/auth/sso/callback`, {
          method: 'POST',
          headers: { cookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, ...FORM }).toString(),
        }),
      )
      if (done.status !== 303) throw new Error(`finish failed: ${done.status}`)
    },
    OPTIONS,
  )
})
