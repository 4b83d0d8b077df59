// Issue 17 item 5 and issue 13's two OIDC defects: oidc-provider 8.8 on loopback, configured to
// behave like providers nobody here wrote. Each setup ends in a working setup, or in the setup
// form with a message that says exactly what to change, never in a dead end; the client
// authentication that worked is stored and used by login and refresh.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, SessionInfo, Step } from '../../src/engine/types.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { type OidcProviderOptions, type OidcSetupFormModel, oidcProvider } from '../../src/oidc/index.js'
import { createRecordingMailer, createRecordingSignals } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeUser } from '../../src/testing/fixtures.js'
import { Browser, type OpBehaviour, startOp, type TestOp } from './op.js'

const BASE = 'https://app.example.com'
const CALLBACK = `${BASE}/auth/sso/`
const ORG = 'org-acme'
const admin: SessionInfo = { id: 'browser-admin', userId: 'user-admin' }

interface World {
  readonly op: TestOp
  readonly storage: MemoryStorage
  readonly sso: AuthPipeline
}

const opened: TestOp[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((op) => op.close()))
})

async function world(behaviour: OpBehaviour = {}, options: OidcProviderOptions = {}): Promise<World> {
  const op = await startOp(CALLBACK, behaviour)
  opened.push(op)
  op.accounts.set('op-admin', { sub: 'op-admin', email: 'admin@acme.test', email_verified: true, name: 'Ada Admin' })
  op.accounts.set('op-alice', { sub: 'op-alice', email: 'alice@acme.test', email_verified: true, name: 'Alice' })
  const storage = createMemoryStorage()
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme' })],
    users: [makeUser({ id: 'user-admin', email: 'admin@acme.test' })],
    members: [makeMember({ id: 'member-admin', organizationId: ORG, userId: 'user-admin', role: 'owner' })],
  })
  const sso = createAuthPipeline({
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { oidc: oidcProvider({ dangerouslyAllowInsecureLoopbackHttp: true, fetchTimeoutMs: 5000, ...options }) },
    secret: randomBytes(32),
    urls: {
      baseUrl: BASE,
      orgLogin: (o) => `${BASE}/auth/login/${o.slug}/`,
      authSettings: (o) => `${BASE}/settings/${o.slug}/auth/`,
      providerSettings: (o) => `${BASE}/settings/${o.slug}/auth/provider/`,
      afterLogin: (o) => `${BASE}/organizations/${o.slug}/`,
      pipelineCallback: () => CALLBACK,
      verifyAccount: (t) => `${BASE}/auth/verify/${t}/`,
    },
  })
  return { op, storage, sso }
}

const get = (url: URL) => ({ method: 'GET' as const, query: Object.fromEntries(url.searchParams), form: {} })
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

function modelOf(step: Step): OidcSetupFormModel {
  if (step.kind !== 'render' || step.view !== 'oidc-setup-form') throw new Error(`expected the setup form, got ${step.kind}`)
  return step.model as unknown as OidcSetupFormModel
}

/**
 * Plays an admin through setup: the form is posted with `form`; every time the provider sends the
 * browser out, the admin signs in there; a notice page is continued. Stops at the first form
 * shown again (returned with the handle) or at the end of the setup.
 */
async function runSetup(w: World, form: Record<string, string>, handle?: string): Promise<{ step: Step; handle: string; authUrls: URL[] }> {
  let current = handle
  if (!current) {
    const begun = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'oidc', session: admin }))._unsafeUnwrap()
    current = (begun as { handle: string }).handle
  }
  const authUrls: URL[] = []
  let step = (await w.sso.advance({ handle: current, session: admin, request: post(form) }))._unsafeUnwrap()
  for (let i = 0; i < 4; i++) {
    if (step.kind === 'redirect') {
      authUrls.push(new URL(step.url))
      w.op.nextLogin = 'op-admin'
      const callback = await new Browser().follow(step.url, CALLBACK)
      step = (await w.sso.advance({ handle: current, session: admin, request: get(callback) }))._unsafeUnwrap()
      continue
    }
    if (step.kind === 'render' && modelOf(step).fields.length === 0) {
      // A notice page ("go round the provider once more"): continue.
      step = (await w.sso.advance({ handle: current, session: admin, request: post({}) }))._unsafeUnwrap()
      continue
    }
    break
  }
  return { step, handle: current, authUrls }
}

/** A member signs in (first login creates the user); returns the outcome kind. */
async function login(w: World, account: string): Promise<string> {
  const session: SessionInfo = { id: `browser-${account}-${randomBytes(4).toString('hex')}` }
  const begun = (await w.sso.beginLogin({ organizationId: ORG, session }))._unsafeUnwrap()
  if (begun.kind !== 'redirect') throw new Error(begun.kind)
  w.op.nextLogin = account
  const callback = await new Browser().follow(begun.url, CALLBACK)
  const step = (await w.sso.advance({ handle: begun.handle, session, request: get(callback) }))._unsafeUnwrap()
  if (step.kind === 'confirmationRequired') {
    return (await w.sso.finishLogin({ handle: step.handle, session, op: 'newuser' }))._unsafeUnwrap().kind
  }
  return step.kind
}

function storedConfig(w: World) {
  return w.storage.snapshot().providers[0]?.config
}

describe('issue 17.1 / 13: client authentication chosen, tried and remembered', () => {
  it('raw Basic comparison, id and secret with - _ . *: client_secret_basic works at once (no encoded bytes sent)', async () => {
    const client = { id: 'my-client.app_1', secret: 'Se-cr_et.x*9-long_enough.secret' }
    const w = await world({ rawBasic: true, clients: [client] })
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: client.id, client_secret: client.secret })
    expect(step.kind).toBe('setupComplete')
    expect(storedConfig(w)).toMatchObject({ clientId: client.id, clientAuth: 'client_secret_basic' })
    expect(w.op.tokenRequests).toEqual([{ basic: true, post: false, grant: 'authorization_code' }])
  })

  it('raw Basic comparison, secret with ~ + / =: Basic refused (401), the same code retried with client_secret_post, post stored and used by login and refresh', async () => {
    const client = { id: 'raw-client', secret: 'a~b+c/d=e~secret', auth: 'client_secret_post' as const }
    const w = await world({ rawBasic: true, clients: [client] })
    const { step, authUrls } = await runSetup(w, { issuer: w.op.issuer, client_id: client.id, client_secret: client.secret })
    expect(step.kind).toBe('setupComplete')
    expect(authUrls).toHaveLength(1)
    expect(storedConfig(w)).toMatchObject({ clientAuth: 'client_secret_post' })
    expect(w.op.tokenRequests).toEqual([
      { basic: true, post: false, grant: 'authorization_code' },
      { basic: false, post: true, grant: 'authorization_code' },
    ])

    // Login and refresh use the stored method only.
    w.op.tokenRequests.length = 0
    expect(await login(w, 'op-alice')).toBe('signedIn')
    const identity = w.storage.snapshot().identities.find((i) => i.ident === 'op-alice')
    expect((await w.sso.refreshIdentity({ identityId: identity?.id ?? '' }))._unsafeUnwrap().kind).toBe('valid')
    expect(w.op.tokenRequests).toEqual([
      { basic: false, post: true, grant: 'authorization_code' },
      { basic: false, post: true, grant: 'refresh_token' },
    ])
  })

  it('a client registered for client_secret_post only: Basic refused, post works with the same code; login and refresh use post', async () => {
    const client = { id: 'post-only', secret: randomBytes(16).toString('hex'), auth: 'client_secret_post' as const }
    const w = await world({ strictAuthMethod: true, clients: [client] })
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: client.id, client_secret: client.secret })
    expect(step.kind).toBe('setupComplete')
    expect(storedConfig(w)).toMatchObject({ clientAuth: 'client_secret_post' })
    expect(w.op.tokenRequests.map((t) => [t.basic, t.post])).toEqual([
      [true, false],
      [false, true],
    ])
    w.op.tokenRequests.length = 0
    expect(await login(w, 'op-alice')).toBe('signedIn')
    const identity = w.storage.snapshot().identities.find((i) => i.ident === 'op-alice')
    expect((await w.sso.refreshIdentity({ identityId: identity?.id ?? '' }))._unsafeUnwrap().kind).toBe('valid')
    expect(w.op.tokenRequests.map((t) => [t.basic, t.post])).toEqual([
      [false, true],
      [false, true],
    ])
  })

  it('the code spent by the refused attempt: a notice, once more round the provider with the other method, then a working setup', async () => {
    const client = { id: 'spender', secret: 'x~y~z', auth: 'client_secret_post' as const }
    const w = await world({ rawBasic: true, spendCodeOnRefusedClient: true, clients: [client] })
    const begun = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'oidc', session: admin }))._unsafeUnwrap()
    const handle = (begun as { handle: string }).handle
    const toIdp = (
      await w.sso.advance({
        handle,
        session: admin,
        request: post({ issuer: w.op.issuer, client_id: client.id, client_secret: client.secret }),
      })
    )._unsafeUnwrap()
    if (toIdp.kind !== 'redirect') throw new Error(toIdp.kind)
    w.op.nextLogin = 'op-admin'
    const callback = await new Browser().follow(toIdp.url, CALLBACK)
    const notice = modelOf((await w.sso.advance({ handle, session: admin, request: get(callback) }))._unsafeUnwrap())
    expect(notice.fields).toEqual([])
    expect(notice.notice).toContain('client_secret_basic got HTTP 401')
    expect(notice.notice).toContain('client_secret_post')
    expect(w.storage.snapshot().providers).toHaveLength(0)
    const { step, authUrls } = await runSetup(w, {}, handle)
    expect(authUrls).toHaveLength(1)
    expect(step.kind).toBe('setupComplete')
    expect(storedConfig(w)).toMatchObject({ clientAuth: 'client_secret_post' })
  })

  it('both methods refused (wrong secret): the form names each method and the status it got; nothing stored', async () => {
    const w = await world()
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: 'wrong-secret' })
    const model = modelOf(step)
    expect(model.errors).toHaveLength(1)
    expect(model.errors[0]).toMatchObject({ field: 'client_secret', code: 'PROVIDER_ERROR' })
    expect(model.errors[0]?.message).toMatch(
      /client_secret_basic got HTTP 401 invalid_client, client_secret_post got HTTP 401 invalid_client/,
    )
    expect(model.fields.find((f) => f.name === 'issuer')?.value).toBe(w.op.issuer)
    expect(w.storage.snapshot().providers).toHaveLength(0)
  })

  it('an admin who picks client_secret_basic against a raw-comparing provider gets the message, with the other method suggested', async () => {
    const client = { id: 'raw-client', secret: 'a~b+c', auth: 'client_secret_post' as const }
    const w = await world({ rawBasic: true, clients: [client] })
    const { step } = await runSetup(w, {
      issuer: w.op.issuer,
      client_id: client.id,
      client_secret: client.secret,
      client_auth: 'client_secret_basic',
    })
    const model = modelOf(step)
    expect(model.errors[0]).toMatchObject({ field: 'client_auth' })
    expect(model.errors[0]?.message).toContain('client_secret_basic got HTTP 401')
    expect(model.errors[0]?.message).toContain('without decoding')
    expect(model.fields.find((f) => f.name === 'client_auth')?.value).toBe('client_secret_basic')
    // Choosing post (the secret may be left empty: it is kept) completes the setup.
    const fixed = await runSetup(
      w,
      { issuer: w.op.issuer, client_id: client.id, client_secret: '', client_auth: 'client_secret_post' },
      (step as { handle: string }).handle,
    )
    expect(fixed.step.kind).toBe('setupComplete')
    expect(storedConfig(w)).toMatchObject({ clientAuth: 'client_secret_post', clientSecret: client.secret })
  })
})

describe('issue 17.2: PKCE stated honestly', () => {
  it('PKCE switched off and not advertised: no code_challenge is sent, setup and login work (nonce still checked)', async () => {
    const w = await world({ pkce: 'off' })
    const { step, authUrls } = await runSetup(w, {
      issuer: w.op.issuer,
      client_id: w.op.clients.app.id,
      client_secret: w.op.clients.app.secret,
    })
    expect(step.kind).toBe('setupComplete')
    expect(authUrls[0]?.searchParams.has('code_challenge')).toBe(false)
    expect(authUrls[0]?.searchParams.get('nonce')?.length).toBeGreaterThanOrEqual(43)
    expect(await login(w, 'op-alice')).toBe('signedIn')
  })

  it('requirePkce: a provider without PKCE is refused in the form, before the admin leaves', async () => {
    const w = await world({ pkce: 'off' }, { requirePkce: true })
    const { step, authUrls } = await runSetup(w, {
      issuer: w.op.issuer,
      client_id: w.op.clients.app.id,
      client_secret: w.op.clients.app.secret,
    })
    expect(authUrls).toHaveLength(0)
    expect(modelOf(step).errors[0]?.message).toContain('PKCE')
  })

  it('PKCE advertised but the provider refuses code_challenge: the form names PKCE and what to change; nothing stored', async () => {
    const w = await world({ pkce: 'refused' })
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret })
    const model = modelOf(step)
    expect(model.errors[0]?.code).toBe('PROVIDER_ERROR')
    expect(model.errors[0]?.message).toContain('invalid_request: "code_challenge is not supported"')
    expect(model.errors[0]?.message).toContain('Enable PKCE with S256 for this client')
    expect(w.storage.snapshot().providers).toHaveLength(0)
  })
})

describe('issue 17.3: authorization-endpoint errors during login', () => {
  it("a typed PROVIDER_ERROR with the provider's code, text and a likely cause", async () => {
    const w = await world()
    expect(
      (await runSetup(w, { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret })).step.kind,
    ).toBe('setupComplete')
    const session: SessionInfo = { id: 'browser-denied' }
    const begun = (await w.sso.beginLogin({ organizationId: ORG, session }))._unsafeUnwrap()
    if (begun.kind !== 'redirect') throw new Error(begun.kind)
    // The request reaches the provider with a PKCE method it does not support.
    const url = new URL(begun.url)
    url.searchParams.set('code_challenge_method', 'plain')
    const callback = await new Browser().follow(url.href, CALLBACK)
    expect(callback.searchParams.get('error')).toBe('invalid_request')
    const before = w.storage.snapshot()
    const error = (await w.sso.advance({ handle: begun.handle, session, request: get(callback) }))._unsafeUnwrapErr()
    expect(error).toMatchObject({
      code: 'PROVIDER_ERROR',
      redirect: 'orgLogin',
      details: { stage: 'callback', idpError: 'invalid_request', likelyCause: 'pkce-refused' },
    })
    expect(w.storage.snapshot()).toEqual(before)
    expect(typeof error.details?.idpErrorDescription).toBe('string')
  })
})

describe('issue 17.4: the issuer compared as discovery requires', () => {
  it.each([
    ['without a trailing slash, typed with one', '/op', '/op/'],
    ['with a trailing slash, typed without', '/op/', '/op'],
  ])(
    'issuer under a path %s: the form again with "the provider calls itself X", which then works',
    async (_name, issuerPath, typedPath) => {
      const w = await world({ issuerPath })
      const typed = `${w.op.origin}${typedPath}`
      const first = await runSetup(w, { issuer: typed, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret })
      const model = modelOf(first.step)
      expect(first.authUrls).toHaveLength(0)
      expect(model.errors[0]).toMatchObject({ field: 'issuer', code: 'PROVIDER_RESPONSE_INVALID' })
      expect(model.suggestions).toEqual([
        { field: 'issuer', value: w.op.issuer, message: `The provider calls itself ${w.op.issuer}: use exactly that.` },
      ])
      expect(model.fields.find((f) => f.name === 'issuer')?.value).toBe(w.op.issuer)
      // The admin accepts the suggestion.
      const second = await runSetup(
        w,
        { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret },
        first.handle,
      )
      expect(second.step.kind).toBe('setupComplete')
      expect(storedConfig(w)).toMatchObject({ issuer: w.op.issuer })
      expect(await login(w, 'op-alice')).toBe('signedIn')
    },
  )

  it('an origin-only issuer typed with a trailing slash is the same URL: setup completes, the issuer stored as the provider names it', async () => {
    const w = await world()
    const { step } = await runSetup(w, {
      issuer: `${w.op.issuer}/`,
      client_id: w.op.clients.app.id,
      client_secret: w.op.clients.app.secret,
    })
    expect(step.kind).toBe('setupComplete')
    expect(storedConfig(w)).toMatchObject({ issuer: w.op.issuer })
  })
})

describe('issue 13: claims an OP returns only from userinfo (OIDC Core 5.4)', () => {
  it('userinfo is fetched because the ID token lacks email: setup and login work', async () => {
    const w = await world({ claimsOnlyInUserinfo: true })
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret })
    expect(step.kind).toBe('setupComplete')
    expect(await login(w, 'op-alice')).toBe('signedIn')
    expect(w.storage.snapshot().users.find((u) => u.email === 'alice@acme.test')).toBeDefined()
  })

  it('with userinfo switched off, login fails with IDENTITY_INVALID naming the missing claim and what arrived', async () => {
    const w = await world({ claimsOnlyInUserinfo: true }, { userinfo: false })
    const { step } = await runSetup(w, { issuer: w.op.issuer, client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret })
    const model = modelOf(step)
    expect(model.errors[0]).toMatchObject({ code: 'IDENTITY_INVALID' })
    expect(model.errors[0]?.message).toContain('did not send the email claim')
    expect(model.errors[0]?.message).toMatch(/The ID token had: .*sub/)
  })
})
