// The handler in process (Request -> Response), with the conformance suite and the behaviours
// that need no framework: https cookie prefixes, config checks, render hooks, the emailed
// verification link, second factor, setup, login_hint, escaping.
import { describe, expect, it } from 'vitest'
import { createSsoHandler } from '../../src/http/index.js'
import type { StepContext } from '../../src/providers/types.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { Browser, errorCode, formOf } from './client.js'
import { conformanceSuite } from './conformance.js'
import { BASE_PATH, createWorld, INVITE_TOKEN, ORG_ID, signIn } from './world.js'

conformanceSuite('handler in process (https origin)', async (build) => {
  const world = build('https://app.example.com')
  return { world, origin: world.baseUrl, send: (r) => world.handler.fetch(r, undefined), close: async () => {} }
})

conformanceSuite('handler in process (http loopback origin)', async (build) => {
  const world = build('http://127.0.0.1:3999')
  return { world, origin: world.baseUrl, send: (r) => world.handler.fetch(r, undefined), close: async () => {} }
})

const ORIGIN = 'https://app.example.com'
const inProcess = (world = createWorld(ORIGIN)) => ({ world, b: new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined)) })

async function toConfirmation(b: Browser, identity: Record<string, string>, query = '') {
  const start = formOf(await (await b.get(`${BASE_PATH}/login/acme${query}`)).text())
  return b.post(start.action, { csrf: start.csrf, email_verified: 'on', ...identity })
}

describe('createSsoHandler options', () => {
  it('refuses plain http off loopback, a relative baseUrl, a bad basePath and missing hooks', () => {
    const { world } = inProcess()
    const hooks = { getSession: () => null, applySessionEffects: () => undefined }
    expect(() => createSsoHandler(world.sso, { baseUrl: 'http://app.example.com', basePath: '/a', ...hooks })).toThrow(/https/)
    expect(() => createSsoHandler(world.sso, { baseUrl: '/relative', basePath: '/a', ...hooks })).toThrow(/absolute/)
    expect(() => createSsoHandler(world.sso, { baseUrl: ORIGIN, basePath: 'auth', ...hooks })).toThrow(/basePath/)
    expect(() => createSsoHandler(world.sso, { baseUrl: ORIGIN, basePath: '/a//b', ...hooks })).toThrow(/basePath/)
    expect(() => createSsoHandler(world.sso, { baseUrl: ORIGIN, basePath: '/a' } as never)).toThrow(/getSession/)
    for (const loopback of ['http://localhost:3000', 'http://127.0.0.1', 'http://[::1]:8080']) {
      expect(() => createSsoHandler(world.sso, { baseUrl: loopback, basePath: '/a', ...hooks })).not.toThrow()
    }
  })

  it('uses __Host- cookies when the handler lives at the root path', async () => {
    const world = createWorld(ORIGIN, { basePath: '/' })
    const b = new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined))
    const res = await b.get('/login/acme')
    expect(res.status).toBe(200)
    expect(b.cookieName('ssoflow-pipeline')).toBe('__Host-ssoflow-pipeline')
    expect(b.cookie('ssoflow-pipeline')?.path).toBe('/')
    expect(b.cookie('ssoflow-pipeline')?.secure).toBe(true)
  })

  it('matches, loginUrl and setupUrl', () => {
    const { world } = inProcess()
    const h = world.handler
    expect(h.matches(`${ORIGIN}/auth/sso/login/acme`)).toBe(true)
    expect(h.matches('/auth/sso')).toBe(true)
    expect(h.matches('/auth/ssoX/login')).toBe(false)
    expect(h.matches('/other')).toBe(false)
    expect(h.loginUrl('acme', { next: '/x', loginHint: 'a@b.c' })).toBe('/auth/sso/login/acme?next=%2Fx&login_hint=a%40b.c')
    expect(h.setupUrl('acme', 'oidc')).toBe('/auth/sso/setup/acme?provider=oidc')
  })
})

describe('pages', () => {
  it('escapes every value the IdP or the org controls', async () => {
    const { b } = inProcess()
    const res = await toConfirmation(b, { id: 'ext-x', email: 'x@acme.test', name: '<img src=x onerror=alert(1)>"\'' })
    const html = await res.text()
    expect(html).not.toContain('<img')
    expect(html).toContain('&lt;img src&#61;x onerror&#61;alert(1)&gt;&quot;&#39;')
    expect(html).toContain('Acme &lt;Inc&gt;')
  })

  it('a render hook replaces a page with HTML or a Response, and receives the typed model', async () => {
    const seen: string[] = []
    const world = createWorld(ORIGIN, {
      render(page) {
        seen.push(page.page)
        if (page.page === 'provider-form') return `<p>custom form ${page.fields.map((f) => f.name).join(',')} ${page.form.csrf.length}</p>`
        if (page.page === 'error') return new Response(`custom ${page.code}`, { status: 418 })
        return undefined
      },
    })
    const b = new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined))
    const form = await b.get(`${BASE_PATH}/login/acme`)
    expect(await form.text()).toBe('<p>custom form id,legacy_id,email,email_verified,name 24</p>')
    expect(form.headers.get('content-security-policy')).toContain("default-src 'none'")
    const err = await b.get(`${BASE_PATH}/login/nope`)
    expect(err.status).toBe(418)
    expect(await err.text()).toBe('custom ORGANIZATION_NOT_FOUND')
    expect(err.headers.get('cache-control')).toBe('no-store')
    expect(seen).toEqual(['provider-form', 'error'])
  })

  it('a render hook that throws gives the 500 page', async () => {
    const world = createWorld(ORIGIN, {
      render: () => {
        throw new Error('template bug')
      },
    })
    const res = await world.handler.fetch(new Request(`${ORIGIN}${BASE_PATH}/login/acme`), undefined)
    expect(res.status).toBe(500)
    expect(res.headers.getSetCookie()).toEqual([])
  })
})

describe('flows through the handler', () => {
  it('a signed-in user with the same verified address is linked without a page', async () => {
    const { world, b } = inProcess()
    const cookie = signIn(world, 'pat')
    const start = await b.request(`${BASE_PATH}/login/acme`, { headers: { cookie } })
    const f = formOf(await start.text())
    const res = await b.post(
      f.action,
      { csrf: f.csrf, id: 'ext-pat', email: 'pat@acme.test', email_verified: 'on' },
      { cookie: `${cookie}; ${b.cookieHeader(BASE_PATH)}` },
    )
    // pat is not a member: the session user confirms the link on the confirm-link page
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain('Link to my account')
    const c = formOf(html)
    const done = await b.post(c.action, { csrf: c.csrf, op: 'confirm' }, { cookie: `${cookie}; ${b.cookieHeader(BASE_PATH)}` })
    expect(done.status).toBe(303)
    expect(world.storage.snapshot().identities.some((i) => i.userId === 'pat')).toBe(true)
  })

  it('threat 29: an anonymous person gets the same response whether no account, a password account or a passwordless one has the address', async () => {
    const responses: { status: number; headers: string[]; html: string; mails: number }[] = []
    for (const account of [
      null,
      makeUser({ id: 'v', email: 'v@acme.test' }),
      makeUser({ id: 'v', email: 'v@acme.test', hasUsablePassword: false }),
    ]) {
      const { world, b } = inProcess()
      if (account) world.storage.seed({ users: [account] })
      const res = await toConfirmation(b, { id: 'ext-v', email: 'v@acme.test' })
      const random = /[A-Za-z0-9_-]{20,}/g
      responses.push({
        status: res.status,
        headers: [...res.headers.entries()].map(([k, v]) => `${k}: ${v.replace(random, '…')}`).sort(),
        html: (await res.text()).replace(random, '…'),
        mails: world.mailer.sent.length,
      })
    }
    const [none, password, passwordless] = responses
    expect(none?.status).toBe(200)
    expect(none?.html).toContain('Join Acme &lt;Inc&gt;')
    expect(none?.html).toContain('name="op"')
    expect(none?.html).toContain('href="/login/acme"')
    expect({ ...password, mails: 0 }).toEqual({ ...none, mails: 0 })
    expect({ ...passwordless, mails: 0 }).toEqual({ ...none, mails: 0 })
    // the mail, to the account's own address, is the only thing that differs
    expect(responses.map((r) => r.mails)).toEqual([0, 0, 1])
  })

  it('emailed link: the same page, the link in the same browser links and signs in; another browser gets a page', async () => {
    const { world, b } = inProcess()
    const res = await toConfirmation(b, { id: 'ext-nopass', email: 'nopass@acme.test' })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('we have sent a one-time link')
    const mail = world.mailer.sent.find((m) => m.template === 'accountVerification')
    expect(mail).toBeDefined()
    const url = new URL((mail!.data as { url: string }).url)
    expect(url.pathname.startsWith(`${BASE_PATH}/verify/`)).toBe(true)
    // a mail scanner or another browser: no pipeline there, nothing consumed
    const elsewhere = await new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined)).get(url.pathname)
    expect(elsewhere.status).toBe(400)
    expect(errorCode(await elsewhere.text())).toBe('STATE_NOT_FOUND')
    const done = await b.get(url.pathname)
    expect(done.status).toBe(302)
    expect(done.headers.get('location')).toBe('/orgs/acme/')
    expect(world.storage.snapshot().identities.find((i) => i.ident === 'ext-nopass')?.userId).toBe('nopass')
    expect(b.cookie('ssoflow-verify')).toBeUndefined()
    // single use
    const replay = await b.get(url.pathname)
    expect(errorCode(await replay.text())).toBe('VERIFICATION_INVALID')
  })

  it('threat 2: a claim through the emailed link ends the sessions someone held on the account before (the host hook applies it)', async () => {
    const { world, b } = inProcess()
    // Someone (the squatter) holds a session on the passwordless account.
    const squatter = signIn(world, 'nopass')
    await toConfirmation(b, { id: 'ext-nopass', email: 'nopass@acme.test' })
    const mail = world.mailer.sent.find((m) => m.template === 'accountVerification')
    const url = new URL((mail?.data as { url: string } | undefined)?.url ?? 'https://x.invalid/')
    expect((await b.get(url.pathname)).status).toBe(302)
    expect(world.applied.at(-1)).toContainEqual({ type: 'revokeOtherSessions', userId: 'nopass', reason: 'accountClaimed' })
    const left = [...world.sessions.values()].filter((s) => s.userId === 'nopass')
    expect(left).toHaveLength(1) // the claimant's new session only
    expect(world.sessions.has(squatter.split('=')[1] ?? '')).toBe(false)
  })

  it('a forged verification token is refused', async () => {
    const { b } = inProcess()
    const res = await b.get(`${BASE_PATH}/verify/${'A'.repeat(43)}`)
    expect(res.status).toBe(400)
    expect(errorCode(await res.text())).toBe('VERIFICATION_INVALID')
    const bad = await b.get(`${BASE_PATH}/verify/%E0%A4%A`)
    expect(errorCode(await bad.text())).toBe('VERIFICATION_INVALID')
  })

  it('invite carried by the host session is accepted on the first login', async () => {
    const { world, b } = inProcess()
    const invite = { memberId: 'm-carol', token: INVITE_TOKEN, organizationId: ORG_ID }
    const cookie = signIn(world, '', { userId: null, invite })
    const start = formOf(await (await b.request(`${BASE_PATH}/login/acme`, { headers: { cookie } })).text())
    const page = await b.post(
      start.action,
      { csrf: start.csrf, id: 'ext-carol', email: 'carol@acme.test', email_verified: 'on' },
      { cookie: `${cookie}; ${b.cookieHeader(BASE_PATH)}` },
    )
    const c = formOf(await page.text())
    const done = await b.post(c.action, { csrf: c.csrf, op: 'newuser' }, { cookie: `${cookie}; ${b.cookieHeader(BASE_PATH)}` })
    expect(done.status).toBe(303)
    const carol = world.storage.snapshot().members.find((m) => m.id === 'm-carol')
    expect(carol?.userId).not.toBeNull()
    expect(world.applied.at(-1)?.map((e) => e.type)).toContain('clearInvite')
  })

  it('setup: the admin starts setup, posts the provider form and lands on the provider settings', async () => {
    const world = createWorld(ORIGIN, {}, { withProvider: false })
    const b = new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined))
    const cookie = signIn(world, 'admin')
    const anon = await b.get(`${BASE_PATH}/setup/acme?provider=dummy`)
    expect(anon.status).toBe(401)
    expect(errorCode(await anon.text())).toBe('NOT_AUTHENTICATED')
    const start = await b.request(`${BASE_PATH}/setup/acme?provider=dummy`, { headers: { cookie } })
    expect(start.status).toBe(200)
    const f = formOf(await start.text())
    const done = await b.post(
      f.action,
      { csrf: f.csrf, email: 'admin@acme.test', email_verified: 'on' },
      { cookie: `${cookie}; ${b.cookieHeader(BASE_PATH)}` },
    )
    expect(done.status).toBe(303)
    expect(done.headers.get('location')).toBe('/settings/acme/auth/provider')
    expect(world.storage.snapshot().providers).toHaveLength(1)
  })

  it('second factor: redirect to twoFactorUrl, then /resume finishes once the host says it passed', async () => {
    const world = createWorld(ORIGIN)
    const user = makeUser({ id: 'tf', email: 'tf@acme.test', has2fa: true })
    world.storage.seed({
      users: [user],
      members: [makeMember({ id: 'm-tf', organizationId: ORG_ID, userId: 'tf' })],
      identities: [makeIdentity({ id: 'i-tf', authProviderId: 'ap-acme', userId: 'tf', ident: 'ext-tf' })],
    })
    const b2 = new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined))
    const start = formOf(await (await b2.get(`${BASE_PATH}/login/acme`)).text())
    const res = await b2.post(start.action, { csrf: start.csrf, id: 'ext-tf', email: 'tf@acme.test', email_verified: 'on' })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/2fa')
    expect(world.applied.at(-1)?.map((e) => e.type)).toEqual(['pendingTwoFactor'])
    const hostCookie = /host_session=[^;]+/.exec(b2.cookieHeader('/'))?.[0] ?? ''
    const hostId = hostCookie.split('=')[1]!
    // not passed yet: still asks for it
    const early = await b2.get(`${BASE_PATH}/resume`)
    expect(early.headers.get('location')).toBe('/2fa')
    // a second factor passed by someone else does not count (threat 63)
    world.sessions.get(hostId)!.twoFactorUserId = 'admin'
    expect((await b2.get(`${BASE_PATH}/resume`)).headers.get('location')).toBe('/2fa')
    world.sessions.get(hostId)!.twoFactorUserId = user.id
    const done = await b2.get(`${BASE_PATH}/resume`)
    expect(done.status).toBe(302)
    expect(done.headers.get('location')).toBe('/orgs/acme/')
  })

  it('login_hint (or email) reaches the provider step, bounded', async () => {
    const hints: (string | null | undefined)[] = []
    // a provider whose only step records what it was given
    const { createAuthPipeline } = await import('../../src/engine/create.js')
    const { createMemoryStorage } = await import('../../src/memory/index.js')
    const { makeOrganization, makeProvider } = await import('../../src/testing/fixtures.js')
    const storage = createMemoryStorage()
    storage.seed({
      organizations: [makeOrganization({ id: 'o', slug: 'o' })],
      providers: [makeProvider({ id: 'p', organizationId: 'o', providerKey: 'spy' })],
    })
    const sso = createAuthPipeline({
      storage,
      mailer: { send: async () => {} },
      signals: { emit: async () => {} },
      secret: 'x'.repeat(32),
      providers: {
        spy: {
          key: 'spy',
          displayName: 'Spy',
          loginSteps: () => [
            {
              id: 'spy',
              handle: async (ctx: StepContext) => {
                hints.push(ctx.loginHint)
                return { type: 'redirect', url: 'https://idp.example/' }
              },
            },
          ],
          setupSteps: () => [],
          buildIdentity: () => ({ id: 'x', email: 'x@x.x', emailVerified: false, name: null, data: {} }),
          buildConfig: () => ({}),
        },
      },
      urls: {
        baseUrl: ORIGIN,
        orgLogin: () => '/',
        authSettings: () => '/',
        providerSettings: () => '/',
        afterLogin: () => '/',
        pipelineCallback: () => `${ORIGIN}/cb`,
        verifyAccount: (t) => `${ORIGIN}/v/${t}`,
      },
    })
    const handler = createSsoHandler(sso, {
      baseUrl: ORIGIN,
      basePath: '/sso',
      getSession: () => null,
      applySessionEffects: () => undefined,
    })
    for (const q of ['?login_hint=a%40b.example', '?email=c%40d.example', '?login_hint=%01bad', `?login_hint=${'x'.repeat(400)}`, '']) {
      const res = await handler.fetch(new Request(`${ORIGIN}/sso/login/o${q}`))
      expect(res.status).toBe(302)
    }
    expect(hints).toEqual(['a@b.example', 'c@d.example', null, null, null])
  })
})
