// The HTTP conformance suite: runs unchanged against the handler in process and against each
// framework adapter over real HTTP on 127.0.0.1. `mount` starts an app for a world and returns
// its origin, a way to send requests, and a way to stop it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Browser, errorCode, formOf, type Send } from './client.js'
import { BASE_PATH, createWorld, hostSessionId, type World } from './world.js'

export interface Mounted {
  readonly world: World
  readonly origin: string
  readonly send: Send
  close(): Promise<void>
}

/** Starts an app: `build` makes the world once the origin is known. */
export type Mount = (build: (origin: string) => World) => Promise<Mounted>

const FORM = 'application/x-www-form-urlencoded'

export function conformanceSuite(name: string, mount: Mount): void {
  describe(`HTTP conformance: ${name}`, () => {
    let m: Mounted
    beforeAll(async () => {
      m = await mount((origin) => createWorld(origin))
    })
    afterAll(async () => {
      await m?.close()
    })
    const browser = () => new Browser(m.origin, m.send)
    const snapshot = () => JSON.stringify(m.world.storage.snapshot())

    /** Starts a login and returns the browser on the dummy form with its token. */
    async function started(b = browser(), query = ''): Promise<{ b: Browser; action: string; csrf: string }> {
      const res = await b.get(`${BASE_PATH}/login/acme${query}`)
      expect(res.status).toBe(200)
      const { action, csrf } = formOf(await res.text())
      expect(csrf).toMatch(/^[A-Za-z0-9_-]{22,64}$/)
      return { b, action, csrf }
    }

    async function signInNew(email: string, b = browser(), query = ''): Promise<{ b: Browser; res: Response }> {
      const s = await started(b, query)
      const page = await s.b.post(s.action, { csrf: s.csrf, id: `ext-${email}`, email, email_verified: 'on', name: 'New Person' })
      expect(page.status).toBe(200)
      const html = await page.text()
      expect(html).toContain('Create a new account')
      const confirm = formOf(html)
      const res = await s.b.post(confirm.action, { csrf: confirm.csrf, op: 'newuser' })
      return { b: s.b, res }
    }

    it('login start: the pipeline and browser cookies are HttpOnly, SameSite=Lax, path-scoped; no-store; a strict CSP', async () => {
      const b = browser()
      const res = await b.get(`${BASE_PATH}/login/acme`)
      expect(res.status).toBe(200)
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
      expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('referrer-policy')).toBe('same-origin')
      const html = await res.text()
      expect(html).not.toMatch(/<script|style=/i)
      expect(html).toContain('<label for=')
      for (const base of ['ssoflow-pipeline', 'ssoflow-browser']) {
        const c = b.cookie(base)
        expect(c, base).toBeDefined()
        expect(c?.httpOnly).toBe(true)
        expect(c?.sameSite).toBe('Lax')
        expect(c?.path).toBe(BASE_PATH)
        // Secure except on plain-http loopback, with the matching name prefix.
        const secure = m.origin.startsWith('https:')
        expect(c?.secure).toBe(secure)
        expect(b.cookieName(base)).toBe(secure ? `__Secure-${base}` : base)
      }
      const css = await b.get(`${BASE_PATH}/ssoflow.css`)
      expect(css.status).toBe(200)
      expect(css.headers.get('content-type')).toContain('text/css')
    })

    it('new user: form, confirmation page, op=newuser: signed in, session rotated, pipeline cookie gone', async () => {
      const before = m.world.storage.snapshot().users.length
      const b = browser()
      const s = await started(b)
      const browserIdBefore = b.cookie('ssoflow-browser')?.value
      const page = await b.post(s.action, { csrf: s.csrf, id: 'ext-new1', email: 'new1@acme.test', email_verified: 'on', name: 'New One' })
      expect(page.status).toBe(200)
      expect(page.headers.get('cache-control')).toBe('no-store')
      const confirm = formOf(await page.text())
      expect(confirm.action).toBe(`${BASE_PATH}/confirm`)
      const res = await b.post(confirm.action, { csrf: confirm.csrf, op: 'newuser' })
      expect(res.status).toBe(303)
      expect(res.headers.get('location')).toBe('/orgs/acme/')
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(m.world.storage.snapshot().users.length).toBe(before + 1)
      const hostId = hostSessionId(b.cookieHeader('/'))
      expect(hostId).not.toBeNull()
      const effects = m.world.applied.at(-1)?.map((e) => e.type)
      expect(effects).toEqual(expect.arrayContaining(['login', 'rotate', 'markSsoComplete', 'activeOrg', 'clearPipeline']))
      expect(b.cookie('ssoflow-pipeline')).toBeUndefined()
      expect(b.cookie('ssoflow-browser')?.value).not.toBe(browserIdBefore)
    })

    it('returning login: straight to the app; a login rotates the host session id', async () => {
      const first = await signInNew('back@acme.test')
      expect(first.res.status).toBe(303)
      const b = browser()
      // an existing (anonymous-to-ssoflow) host session that must be replaced on login
      const s = await started(b)
      const res = await b.post(s.action, { csrf: s.csrf, id: 'ext-back@acme.test', email: 'back@acme.test', email_verified: 'on' })
      expect(res.status).toBe(303)
      expect(res.headers.get('location')).toBe('/orgs/acme/')
      const id1 = hostSessionId(b.cookieHeader('/'))
      const again = await started(b)
      const res2 = await b.post(again.action, { csrf: again.csrf, id: 'ext-back@acme.test', email: 'back@acme.test', email_verified: 'on' })
      expect(res2.status).toBe(303)
      const id2 = hostSessionId(b.cookieHeader('/'))
      expect(id2).not.toBe(id1)
      expect(m.world.sessions.has(id1 ?? '')).toBe(false)
    })

    it('open next: an off-site next is dropped, a same-origin path is kept', async () => {
      const evil = await signInNew('next1@acme.test', browser(), `?next=${encodeURIComponent('//evil.example/x')}`)
      expect(evil.res.headers.get('location')).toBe('/orgs/acme/')
      const evil2 = await signInNew('next2@acme.test', browser(), `?next=${encodeURIComponent('https://evil.example/')}`)
      expect(evil2.res.headers.get('location')).toBe('/orgs/acme/')
      const ok = await signInNew('next3@acme.test', browser(), `?next=${encodeURIComponent('/orgs/acme/issues?q=1')}`)
      expect(ok.res.headers.get('location')).toBe('/orgs/acme/issues?q=1')
    })

    it('CSRF: a missing or foreign token is refused with 403 and nothing is written', async () => {
      const a = await started()
      const other = await started()
      const before = snapshot()
      const missing = await a.b.post(a.action, { id: 'x1', email: 'x1@acme.test' })
      expect(missing.status).toBe(403)
      expect(errorCode(await missing.text())).toBe('CSRF_INVALID')
      const foreign = await a.b.post(a.action, { csrf: other.csrf, id: 'x1', email: 'x1@acme.test' })
      expect(foreign.status).toBe(403)
      expect(errorCode(await foreign.text())).toBe('CSRF_INVALID')
      const confirm = await a.b.post(`${BASE_PATH}/confirm`, { op: 'newuser', csrf: 'nope' })
      expect(confirm.status).toBe(403)
      expect(snapshot()).toBe(before)
    })

    it('cross-site POSTs are refused (Origin, Sec-Fetch-Site) before the body is read', async () => {
      const a = await started()
      const before = snapshot()
      const refused: Record<string, string>[] = [
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ]
      for (const headers of refused) {
        const res = await a.b.post(a.action, { csrf: a.csrf, id: 'x2', email: 'x2@acme.test' }, headers)
        expect(res.status, JSON.stringify(headers)).toBe(403)
        expect(errorCode(await res.text())).toBe('CROSS_SITE_REQUEST')
      }
      expect(snapshot()).toBe(before)
    })

    it('forged, swapped and missing pipeline cookies: an error page, the right status, nothing written', async () => {
      const victim = await started()
      const attacker = await started()
      const before = snapshot()
      const pipelineName = attacker.b.cookieName('ssoflow-pipeline')!
      // forged: a handle that is not signed
      const forged = await attacker.b.request(attacker.action, {
        method: 'POST',
        body: new URLSearchParams({ csrf: attacker.csrf, email: 'f@acme.test' }).toString(),
        headers: {
          'content-type': FORM,
          origin: m.origin,
          cookie: `${pipelineName}=AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB~${attacker.csrf}`,
        },
      })
      expect(forged.status).toBe(400)
      expect(errorCode(await forged.clone().text())).toBe('STATE_INVALID')
      // forged without a token of its own
      const forgedNoToken = await attacker.b.request(attacker.action, {
        method: 'POST',
        body: new URLSearchParams({ csrf: attacker.csrf, email: 'f@acme.test' }).toString(),
        headers: {
          'content-type': FORM,
          origin: m.origin,
          cookie: `${pipelineName}=AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB`,
        },
      })
      expect(forgedNoToken.status).toBe(403)
      expect(errorCode(await forgedNoToken.text())).toBe('CSRF_INVALID')
      // swapped: the victim's whole pipeline cookie and its form token, stolen into the attacker's browser
      const victimHandle = victim.b.cookie('ssoflow-pipeline')!.value
      const attackerBrowser = attacker.b.cookie('ssoflow-browser')!
      const swapped = await attacker.b.request(victim.action, {
        method: 'POST',
        body: new URLSearchParams({ csrf: victim.csrf, id: 'sw', email: 'sw@acme.test', email_verified: 'on' }).toString(),
        headers: {
          'content-type': FORM,
          origin: m.origin,
          cookie: `${pipelineName}=${victimHandle}; ${attacker.b.cookieName('ssoflow-browser')}=${attackerBrowser.value}`,
        },
      })
      expect(swapped.status).toBe(403)
      expect(errorCode(await swapped.text())).toBe('STATE_SESSION_MISMATCH')
      // a forged handle on a GET callback (an IdP redirect that never came from this browser)
      const forgedGet = await attacker.b.request(`${BASE_PATH}/callback?code=x&state=y`, {
        headers: { cookie: `${pipelineName}=AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB` },
      })
      expect(forgedGet.status).toBe(400)
      expect(errorCode(await forgedGet.text())).toBe('STATE_INVALID')
      const garbage = await attacker.b.request(`${BASE_PATH}/callback`, { headers: { cookie: `${pipelineName}=%00<script>` } })
      expect(garbage.status).toBe(400)
      expect(errorCode(await garbage.text())).toBe('STATE_NOT_FOUND')
      const none = await browser().get(`${BASE_PATH}/callback?code=x`)
      expect(none.status).toBe(400)
      expect(errorCode(await none.text())).toBe('STATE_NOT_FOUND')
      expect(snapshot()).toBe(before)
    })

    it('bodies: oversized, malformed, bad encodings and wrong content types are refused; nothing written', async () => {
      const a = await started()
      const before = snapshot()
      const send = (body: string | Uint8Array, headers: Record<string, string>) =>
        a.b.request(a.action, { method: 'POST', body, headers: { origin: m.origin, 'sec-fetch-site': 'same-origin', ...headers } })
      // Provider forms on /callback take up to maxFormBytes (pasted IdP metadata); one byte over is refused.
      const limit = m.world.handler.maxFormBytes
      expect(limit).toBeGreaterThan(m.world.handler.maxBodyBytes)
      const big = await send(`csrf=${a.csrf}&email=${'a'.repeat(limit)}`, { 'content-type': FORM })
      expect(big.status).toBe(413)
      expect(errorCode(await big.text())).toBe('BODY_TOO_LARGE')
      // 40 KB passes the body limit and reaches the provider, which refuses the address: still nothing written.
      const roomy = await send(`csrf=${a.csrf}&email=${'a'.repeat(40_000)}`, { 'content-type': FORM })
      expect(errorCode(await roomy.text())).not.toBe('BODY_TOO_LARGE')
      const cases: [string | Uint8Array, Record<string, string>, number, string][] = [
        [`csrf=${a.csrf}&email=%zz`, { 'content-type': FORM }, 400, 'INPUT_INVALID'],
        [`csrf=${a.csrf}&email=a&email=b`, { 'content-type': FORM }, 400, 'INPUT_INVALID'],
        [new Uint8Array([0x63, 0x73, 0x72, 0x66, 0x3d, 0xff, 0xfe]), { 'content-type': FORM }, 400, 'INPUT_INVALID'],
        [JSON.stringify({ csrf: a.csrf, email: 'j@acme.test' }), { 'content-type': 'application/json' }, 415, 'CONTENT_TYPE_INVALID'],
        ['--x\r\n\r\n--x--', { 'content-type': 'multipart/form-data; boundary=x' }, 415, 'CONTENT_TYPE_INVALID'],
        [`csrf=${a.csrf}`, { 'content-type': `${FORM}; charset=iso-8859-1` }, 415, 'CONTENT_TYPE_INVALID'],
        [`csrf=${a.csrf}`, { 'content-type': FORM, 'content-encoding': 'gzip' }, 415, 'CONTENT_TYPE_INVALID'],
        [`csrf=${a.csrf}`, {}, 415, 'CONTENT_TYPE_INVALID'],
      ]
      for (const [body, headers, status, code] of cases) {
        const res = await send(body, headers)
        expect(res.status, `${JSON.stringify(headers)} ${String(body).slice(0, 40)}`).toBe(status)
        expect(errorCode(await res.text())).toBe(code)
        expect(res.headers.get('cache-control')).toBe('no-store')
      }
      expect(snapshot()).toBe(before)
      // the pipeline survived all of that: the real form still works
      const ok = await a.b.post(a.action, { csrf: a.csrf, id: 'ext-survivor', email: 'survivor@acme.test', email_verified: 'on' })
      expect(ok.status).toBe(200)
    })

    it('GET /login?email=: the org of the verified domain; one DOMAIN_UNKNOWN page for unknown and unverified domains', async () => {
      const b = browser()
      const found = await b.get(`${BASE_PATH}/login?email=${encodeURIComponent('Pat@ACME.test')}`)
      expect(found.status).toBe(200)
      expect(formOf(await found.text()).csrf).toMatch(/^[A-Za-z0-9_-]{22,64}$/)
      expect(b.cookie('ssoflow-pipeline')).toBeDefined()

      const before = snapshot()
      const pages: { status: number; code: string | null; text: string }[] = []
      for (const email of ['ada@nobody.test', 'ada@claimed.test']) {
        const fresh = browser()
        const res = await fresh.get(`${BASE_PATH}/login?email=${encodeURIComponent(email)}`)
        const text = await res.text()
        pages.push({ status: res.status, code: errorCode(text), text })
        expect(fresh.cookie('ssoflow-pipeline'), email).toBeUndefined()
      }
      expect(pages[0]?.status).toBe(404)
      expect(pages[0]?.code).toBe('DOMAIN_UNKNOWN')
      // No enumeration: the unverified (claimed) domain gets exactly the unknown domain's page.
      expect(pages[1]).toEqual(pages[0])
      expect(snapshot()).toBe(before)

      for (const email of ['ada@acme.test.', 'ada', '@acme.test', '']) {
        const res = await browser().get(`${BASE_PATH}/login?email=${encodeURIComponent(email)}`)
        expect(res.status, email).toBe(400)
        expect(errorCode(await res.text()), email).toBe('INPUT_INVALID')
      }
      expect(snapshot()).toBe(before)
    })

    it('unknown org slugs, routes and methods: 404/405 pages with their codes', async () => {
      const b = browser()
      const org = await b.get(`${BASE_PATH}/login/no-such-org`)
      expect(org.status).toBe(404)
      expect(errorCode(await org.text())).toBe('ORGANIZATION_NOT_FOUND')
      const route = await b.get(`${BASE_PATH}/nope`)
      expect(route.status).toBe(404)
      expect(errorCode(await route.text())).toBe('ROUTE_NOT_FOUND')
      const method = await b.request(`${BASE_PATH}/confirm`)
      expect(method.status).toBe(405)
      expect(method.headers.get('allow')).toBe('POST')
      const unconfigured = await b.get(`${BASE_PATH}/login/empty`)
      expect(unconfigured.status).toBe(404)
      expect(errorCode(await unconfigured.text())).toBe('PROVIDER_NOT_CONFIGURED')
      const error = await b.get(`${BASE_PATH}/error?code=STATE_EXPIRED`)
      expect(error.status).toBe(400)
      expect(await error.text()).toContain('Your sign-in session expired.')
    })

    it('a failing host hook is a 500 page, not a crash, and sets no cookie', async () => {
      m.world.failGetSession = true
      try {
        const b = browser()
        const res = await b.get(`${BASE_PATH}/login/acme`)
        expect(res.status).toBe(500)
        expect(errorCode(await res.text())).toBe('INTERNAL_ERROR')
        expect(res.headers.getSetCookie()).toEqual([])
      } finally {
        m.world.failGetSession = false
      }
    })
  })
}
