/**
 * ssoflow on Hono under Deno, with npm: specifiers (no build step, no node_modules needed):
 *
 *   deno run -A examples/hono-deno/main.ts            ->  http://localhost:3300/auth/sso/login/acme
 *   deno run -A examples/hono-deno/main.ts --smoke    (CI: serves on a free port, signs a new
 *                                                       user in through the handler, exits 0)
 *
 * The whole integration is getSession + applySessionEffects. Memory storage and the dummy
 * provider keep it self-contained; swap in ssoflow/kysely and ssoflow/oidc.
 */
import { type Context, Hono } from 'npm:hono@^4'
import { createAuthPipeline } from 'npm:ssoflow@^0.1'
import { dummyProvider } from 'npm:ssoflow@^0.1/dummy'
import { ssoHono } from 'npm:ssoflow@^0.1/hono'
import { createSsoHandler, ssoHandlerUrls } from 'npm:ssoflow@^0.1/http'
import { createMemoryStorage } from 'npm:ssoflow@^0.1/memory'
import { makeOrganization, makeProvider } from 'npm:ssoflow@^0.1/testing'

const smoke = Deno.args.includes('--smoke')
const sessions = new Map<string, { userId: string | null }>()
const sidOf = (c: Context) => /(?:^|;\s*)sid=([\w-]+)/.exec(c.req.header('cookie') ?? '')?.[1] ?? null
const random = (bytes: number) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes)))).replace(/[+/=]/g, '')

let serve: (request: Request) => Response | Promise<Response> = () => new Response('starting', { status: 503 })
const server = Deno.serve({ port: smoke ? 0 : Number(Deno.env.get('PORT') ?? 3300), hostname: '127.0.0.1', onListen: () => {} }, (r) =>
  serve(r),
)
const baseUrl = `http://localhost:${server.addr.port}`

const storage = createMemoryStorage()
storage.seed({
  organizations: [makeOrganization({ id: 'acme', slug: 'acme', name: 'Acme' })],
  providers: [makeProvider({ id: 'p1', organizationId: 'acme', providerKey: 'dummy' })],
})
const http = { baseUrl, basePath: '/auth/sso' }
const sso = createAuthPipeline({
  storage,
  mailer: { send: async () => {} },
  signals: { emit: async () => {} },
  providers: { dummy: dummyProvider() },
  secret: crypto.getRandomValues(new Uint8Array(32)),
  urls: { ...ssoHandlerUrls(http), orgLogin: () => '/', authSettings: () => '/', providerSettings: () => '/', afterLogin: () => '/' },
})

// ---- the glue: getSession and applySessionEffects
const handler = createSsoHandler<Context>(sso, {
  ...http,
  getSession: (_request, c) => sessions.get(sidOf(c) ?? '') ?? null,
  applySessionEffects(effects, { context: c }) {
    const login = effects.find((e) => e.type === 'login')
    if (!login) return
    // an existing account was just proven (threat 2): end every other session of the user
    if (effects.some((e) => e.type === 'revokeOtherSessions')) {
      for (const [sid, s] of sessions) if (s.userId === login.userId) sessions.delete(sid)
    }
    sessions.delete(sidOf(c) ?? '') // rotate: a new session id on every login
    const sid = random(18)
    sessions.set(sid, { userId: login.userId })
    return [['set-cookie', `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`]]
  },
})
// ---- end of the glue

const app = new Hono()
app.use(ssoHono(handler))
app.get('/', (c) => c.text(`signed in as: ${sessions.get(sidOf(c) ?? '')?.userId ?? 'nobody'}`))
serve = app.fetch

if (!smoke) {
  console.log(`Hono on Deno example: ${baseUrl}/auth/sso/login/acme`)
} else {
  // Play a browser: start, post the dummy form, choose "new user", land signed in.
  const origin = `http://127.0.0.1:${server.addr.port}`
  const jar = new Map<string, string>()
  const go = async (path: string, form?: Record<string, string>) => {
    const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') }
    if (form) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', origin: baseUrl })
    const res = await fetch(`${origin}${path}`, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form ? new URLSearchParams(form) : undefined,
      redirect: 'manual',
    })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const [k, v] = (pair ?? '').split('=')
      if (k) jar.set(k, v ?? '')
    }
    return res
  }
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
  const start = await go('/auth/sso/login/acme')
  const page = await go('/auth/sso/callback', { csrf: csrfOf(await start.text()), email: 'deno@acme.test', email_verified: 'on' })
  const done = await go('/auth/sso/confirm', { csrf: csrfOf(await page.text()), op: 'newuser' })
  const home = await (await go(done.headers.get('location') ?? '/')).text()
  await server.shutdown()
  if (done.status !== 303 || !home.startsWith('signed in as: ') || home.endsWith('nobody')) {
    console.error(`hono-deno smoke FAILED: ${done.status} ${home}`)
    Deno.exit(1)
  }
  console.log(`hono-deno smoke: ${home}`)
}
