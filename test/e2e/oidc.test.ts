// End to end against a real OpenID provider (panva's oidc-provider 8.8) on loopback: real
// discovery, authorization redirects, code exchange and ID token validation, driven with fetch.
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ResultAsync } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, LoginOutcome, SessionInfo, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { type OidcFetch, oidcProvider } from '../../src/oidc/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeUser } from '../../src/testing/fixtures.js'
import { Browser, startOp, type TestOp } from './op.js'

const BASE = 'https://app.example.com'
const CALLBACK = `${BASE}/auth/sso/`
const ORG = 'org-acme'
const ORG_B = 'org-beta'

type Hook = (url: string, init: Parameters<OidcFetch>[1], real: OidcFetch) => Promise<Response>

let op: TestOp
let stub: Server
let stubIssuer: string
let storage: MemoryStorage
let sso: AuthPipeline
let hook: Hook | null = null
const clock = fixedClock(new Date())
const inviteToken = randomBytes(32).toString('base64url')

const realFetch: OidcFetch = (url, init) => fetch(url, init as RequestInit)

beforeAll(async () => {
  op = await startOp(CALLBACK)
  op.accounts.set('op-admin', { sub: 'op-admin', email: 'admin@acme.test', email_verified: true, name: 'Ada Admin' })
  op.accounts.set('op-alice', { sub: 'op-alice', email: 'alice@acme.test', email_verified: true, name: 'Alice' })
  op.accounts.set('op-carol', { sub: 'op-carol', email: 'carol@acme.test', email_verified: true, name: 'Carol' })

  // A host that serves the real OP's metadata under its own origin: discovery must refuse it.
  const metadata = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).text()
  stub = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(metadata)
  })
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve))
  stubIssuer = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`

  storage = createMemoryStorage({ clock })
  const admin = makeUser({ id: 'user-admin', email: 'admin@acme.test' })
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme' }), makeOrganization({ id: ORG_B, slug: 'beta' })],
    users: [admin],
    members: [
      makeMember({ id: 'member-admin', organizationId: ORG, userId: admin.id, role: 'owner' }),
      makeMember({ id: 'member-admin-b', organizationId: ORG_B, userId: admin.id, role: 'owner' }),
      makeMember({
        id: 'member-carol',
        organizationId: ORG,
        email: 'carol@acme.test',
        inviteTokenHash: createHash('sha256').update(inviteToken).digest('hex'),
        inviteExpiresAt: new Date(Date.now() + 7 * 24 * 3600 * 1000),
      }),
    ],
  })
  sso = createAuthPipeline({
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: {
      oidc: oidcProvider({
        dangerouslyAllowInsecureLoopbackHttp: true,
        fetchTimeoutMs: 2000,
        customFetch: (url, init) => (hook ? hook(url, init, realFetch) : realFetch(url, init)),
      }),
    },
    secret: randomBytes(32),
    clock,
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
})

afterAll(async () => {
  await op?.close()
  await new Promise<void>((resolve) => (stub ? stub.close(() => resolve()) : resolve()))
})

const get = (url: URL) => ({ method: 'GET' as const, query: Object.fromEntries(url.searchParams), form: {} })

function expectRedirect(step: Step): { url: string; handle: string } {
  if (step.kind !== 'redirect') throw new Error(`expected a redirect, got ${step.kind}`)
  return step
}

/** Starts a login and plays the browser at the OP; returns what the app's callback would get. */
async function toCallback(
  account: string,
  session: SessionInfo,
  tamperAuthorize: (url: URL) => void = () => {},
): Promise<{ handle: string; callback: URL }> {
  const begun = expectRedirect((await sso.beginLogin({ organizationId: ORG, session }))._unsafeUnwrap())
  expect(begun.url.startsWith(`${op.issuer}/auth?`)).toBe(true)
  const authUrl = new URL(begun.url)
  tamperAuthorize(authUrl)
  op.nextLogin = account
  const callback = await new Browser().follow(authUrl.href, CALLBACK)
  return { handle: begun.handle, callback }
}

/** Finishes a login the way a user would: a confirmation page gets the "new user" choice. */
async function complete(step: Step, session: SessionInfo): Promise<LoginOutcome> {
  if (step.kind === 'confirmationRequired') {
    expect(step.allowedOps).toContain('newuser')
    const done = (await sso.finishLogin({ handle: step.handle, session, op: 'newuser' }))._unsafeUnwrap()
    return done
  }
  if (step.kind !== 'signedIn') throw new Error(`unexpected step ${step.kind}`)
  return step
}

/** Runs `attack` and asserts it fails with `code` and that storage did not change at all. */
async function rejectsWithoutWrites(code: AuthError['code'], attack: () => ResultAsync<unknown, AuthError>) {
  const before = storage.snapshot()
  const result = await attack()
  expect(result.isErr()).toBe(true)
  const error = result._unsafeUnwrapErr()
  expect(error.code).toBe(code)
  expect(storage.snapshot()).toEqual(before)
  return error
}

describe('OIDC against a real OpenID provider on loopback', () => {
  const adminSession: SessionInfo = { id: 'browser-admin', userId: 'user-admin' }

  it('setup by an admin: discovery validated, admin logs in at the IdP, provider stored and linked to the admin', async () => {
    const form = (await sso.beginSetup({ organizationId: ORG, providerKey: 'oidc', session: adminSession }))._unsafeUnwrap()
    expect(form).toMatchObject({ kind: 'render', view: 'oidc-setup-form' })
    const handle = (form as { handle: string }).handle
    // An http issuer on a non-loopback host is refused by the form (no request is made).
    const refused = (
      await sso.advance({
        handle,
        session: adminSession,
        request: { method: 'POST', query: {}, form: { issuer: 'http://idp.example.com', client_id: 'x', client_secret: 'y' } },
      })
    )._unsafeUnwrap()
    expect(refused).toMatchObject({ kind: 'render', model: { error: expect.stringContaining('https') } })

    const toIdp = expectRedirect(
      (
        await sso.advance({
          handle,
          session: adminSession,
          request: {
            method: 'POST',
            query: {},
            form: { issuer: op.issuer, client_id: op.clients.app.id, client_secret: op.clients.app.secret },
          },
        })
      )._unsafeUnwrap(),
    )
    const authUrl = new URL(toIdp.url)
    expect(authUrl.origin).toBe(op.issuer)
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256')
    expect(authUrl.searchParams.get('redirect_uri')).toBe(CALLBACK)
    for (const p of ['state', 'nonce', 'code_challenge']) expect(authUrl.searchParams.get(p)?.length).toBeGreaterThanOrEqual(43)
    expect(storage.snapshot().providers).toHaveLength(0)

    op.nextLogin = 'op-admin'
    const callback = await new Browser().follow(toIdp.url, CALLBACK)
    expect(callback.searchParams.get('iss')).toBe(op.issuer)
    const done = (await sso.advance({ handle, session: adminSession, request: get(callback) }))._unsafeUnwrap()
    expect(done.kind).toBe('setupComplete')

    const snap = storage.snapshot()
    expect(snap.providers).toHaveLength(1)
    expect(snap.providers[0]).toMatchObject({
      organizationId: ORG,
      providerKey: 'oidc',
      config: { issuer: op.issuer, clientId: op.clients.app.id, clientSecret: op.clients.app.secret, clientAuth: 'client_secret_basic' },
    })
    const identity = snap.identities.find((i) => i.ident === 'op-admin')
    expect(identity?.userId).toBe('user-admin')
    expect(typeof identity?.data.access_token).toBe('string')
    // The secret never reaches the audit log.
    expect(JSON.stringify(snap.audit)).not.toContain(op.clients.app.secret)
  })

  it('setup with an issuer whose discovery document names another issuer (mix-up): the form again, with the name the provider uses, before any redirect and with no writes', async () => {
    const form = (await sso.beginSetup({ organizationId: ORG_B, providerKey: 'oidc', session: adminSession }))._unsafeUnwrap()
    const handle = (form as { handle: string }).handle
    const before = storage.snapshot()
    const step = (
      await sso.advance({
        handle,
        session: adminSession,
        request: {
          method: 'POST',
          query: {},
          form: { issuer: stubIssuer, client_id: op.clients.app.id, client_secret: op.clients.app.secret },
        },
      })
    )._unsafeUnwrap()
    expect(step).toMatchObject({
      kind: 'render',
      view: 'oidc-setup-form',
      model: {
        errors: [{ field: 'issuer', code: 'PROVIDER_RESPONSE_INVALID' }],
        suggestions: [{ field: 'issuer', value: op.issuer, message: `The provider calls itself ${op.issuer}: use exactly that.` }],
      },
    })
    expect(JSON.stringify(step)).not.toContain(op.clients.app.secret)
    expect(storage.snapshot()).toEqual(before)
  })

  let aliceId = ''

  it('first login creates the user, identity and membership', async () => {
    const session: SessionInfo = { id: 'browser-alice-1' }
    const { handle, callback } = await toCallback('op-alice', session)
    const outcome = await complete((await sso.advance({ handle, session, request: get(callback) }))._unsafeUnwrap(), session)
    expect(outcome.kind).toBe('signedIn')
    if (outcome.kind !== 'signedIn') return
    expect(outcome.created).toEqual({ user: true, identity: true, member: true })
    aliceId = outcome.userId
    const snap = storage.snapshot()
    expect(snap.users.find((u) => u.id === aliceId)?.email).toBe('alice@acme.test')
    const identity = snap.identities.find((i) => i.ident === 'op-alice')
    expect(identity?.userId).toBe(aliceId)
    expect(typeof identity?.data.refresh_token).toBe('string')
  })

  it('returning login signs the same user in and creates nothing', async () => {
    const session: SessionInfo = { id: 'browser-alice-2' }
    const { handle, callback } = await toCallback('op-alice', session)
    const usersBefore = storage.snapshot().users
    const outcome = (await sso.advance({ handle, session, request: get(callback) }))._unsafeUnwrap()
    expect(outcome).toMatchObject({ kind: 'signedIn', userId: aliceId, created: { user: false, identity: false, member: false } })
    expect(storage.snapshot().users).toEqual(usersBefore)
  })

  it('home-realm discovery: beginLogin({ email }) sends login_hint; the OP signs in that account; an unverified domain is DOMAIN_UNKNOWN', async () => {
    // The OP signs in the account its login_hint names (no account picked by the test).
    op.accounts.set('dana@acme.test', { sub: 'op-dana', email: 'dana@acme.test', email_verified: true, name: 'Dana' })
    await sso.addDomain({ organizationId: ORG, session: adminSession, domain: 'acme.test' })
    const beforeVerify = storage.snapshot()
    await rejectsWithoutWrites('DOMAIN_UNKNOWN', () => sso.beginLogin({ email: 'dana@acme.test', session: { id: 'browser-dana-0' } }))
    expect(storage.snapshot()).toEqual(beforeVerify)
    ;(await sso.verifyDomain({ organizationId: ORG, session: adminSession, domain: 'acme.test' }))._unsafeUnwrap()

    const session: SessionInfo = { id: 'browser-dana-1' }
    const begun = (await sso.beginLogin({ email: 'dana@acme.test', session }))._unsafeUnwrap()
    const toIdp = expectRedirect(begun)
    expect(begun.kind === 'redirect' && begun.discovery?.organizationId).toBe(ORG)
    const authUrl = new URL(toIdp.url)
    expect(authUrl.origin).toBe(op.issuer)
    expect(authUrl.searchParams.get('login_hint')).toBe('dana@acme.test')
    op.nextLogin = null
    const callback = await new Browser().follow(authUrl.href, CALLBACK)
    const outcome = await complete((await sso.advance({ handle: toIdp.handle, session, request: get(callback) }))._unsafeUnwrap(), session)
    expect(outcome).toMatchObject({ kind: 'signedIn', organizationId: ORG })
    // The OP signed in the account login_hint named: a new user with Dana's address.
    const user = storage.snapshot().users.find((u) => u.id === (outcome.kind === 'signedIn' ? outcome.userId : null))
    expect(user?.email).toBe('dana@acme.test')
  })

  it('refreshIdentity uses the stored refresh token at the real IdP; a revoked/unknown token makes the identity invalid', async () => {
    const before = storage.snapshot().identities.find((i) => i.ident === 'op-alice')
    expect(typeof before?.data.refresh_token).toBe('string')
    const ok = (await sso.refreshIdentity({ identityId: before?.id ?? '' }))._unsafeUnwrap()
    expect(ok.kind).toBe('valid')
    const after = storage.snapshot().identities.find((i) => i.ident === 'op-alice')
    expect(after?.data.access_token).not.toBe(before?.data.access_token)
    expect(typeof after?.data.refresh_token).toBe('string')

    // The IdP refuses a refresh token it does not know (invalid_grant): the identity is invalid.
    const bogus = makeUser({ id: 'user-bogus', email: 'bogus@acme.test' })
    const providerRow = storage.snapshot().providers[0]
    storage.seed({
      users: [bogus],
      identities: [
        {
          id: 'identity-bogus',
          authProviderId: providerRow?.id ?? '',
          userId: bogus.id,
          ident: 'op-bogus',
          data: { refresh_token: 'not-a-real-token' },
          lastVerified: new Date(),
          lastSynced: new Date(),
          createdAt: new Date(),
        },
      ],
    })
    // The provider reports `invalid` (invalid_grant); the engine then removes the identity.
    const invalid = (await sso.refreshIdentity({ identityId: 'identity-bogus' }))._unsafeUnwrap()
    expect(invalid).toEqual({ kind: 'identityDeleted' })
    expect(storage.snapshot().identities.some((i) => i.id === 'identity-bogus')).toBe(false)
  })

  it('an invited user signs in and the invite is accepted', async () => {
    const session: SessionInfo = { id: 'browser-carol', invite: { memberId: 'member-carol', token: inviteToken, organizationId: ORG } }
    const { handle, callback } = await toCallback('op-carol', session)
    const outcome = await complete((await sso.advance({ handle, session, request: get(callback) }))._unsafeUnwrap(), session)
    expect(outcome).toMatchObject({ kind: 'signedIn', acceptedInviteId: 'member-carol', memberId: 'member-carol' })
    const member = storage.snapshot().members.find((m) => m.id === 'member-carol')
    expect(member?.userId).toBe(outcome.kind === 'signedIn' ? outcome.userId : null)
  })

  describe('attacks: each rejected with its code and no writes', () => {
    it('threat 35: tampered state parameter -> STATE_INVALID', async () => {
      const session: SessionInfo = { id: 'browser-x1' }
      const { handle, callback } = await toCallback('op-alice', session)
      callback.searchParams.set('state', `${callback.searchParams.get('state')}x`)
      await rejectsWithoutWrites('STATE_INVALID', () => sso.advance({ handle, session, request: get(callback) }))
    })

    it('tampered pipeline handle -> STATE_INVALID', async () => {
      const session: SessionInfo = { id: 'browser-x2' }
      const { handle, callback } = await toCallback('op-alice', session)
      const forged = `${handle.slice(0, 5)}${handle[5] === 'A' ? 'B' : 'A'}${handle.slice(6)}`
      await rejectsWithoutWrites('STATE_INVALID', () => sso.advance({ handle: forged, session, request: get(callback) }))
    })

    it('callback replayed in another browser session -> STATE_SESSION_MISMATCH', async () => {
      const session: SessionInfo = { id: 'browser-x3' }
      const { handle, callback } = await toCallback('op-alice', session)
      await rejectsWithoutWrites('STATE_SESSION_MISMATCH', () =>
        sso.advance({ handle, session: { id: 'attacker' }, request: get(callback) }),
      )
    })

    it('threat 30: replayed callback (same code and state, second use) -> STATE_CONSUMED', async () => {
      const session: SessionInfo = { id: 'browser-x4' }
      const { handle, callback } = await toCallback('op-alice', session)
      expect((await sso.advance({ handle, session, request: get(callback) }))._unsafeUnwrap().kind).toBe('signedIn')
      await rejectsWithoutWrites('STATE_CONSUMED', () => sso.advance({ handle, session, request: get(callback) }))
    })

    it('concurrent double callback: exactly one login, the other rejected', async () => {
      const session: SessionInfo = { id: 'browser-x5' }
      const { handle, callback } = await toCallback('op-alice', session)
      const results = await Promise.all([0, 1].map(() => sso.advance({ handle, session, request: get(callback) })))
      expect(results.filter((r) => r.isOk())).toHaveLength(1)
      const loser = results.find((r) => r.isErr())!._unsafeUnwrapErr()
      // Either the state CAS caught it, or the IdP refused the second use of the code.
      expect(['STATE_CONFLICT', 'STATE_CONSUMED', 'PROVIDER_ERROR']).toContain(loser.code)
    })

    it('threat 32: wrong issuer in the authorization response (RFC 9207 mix-up) -> PROVIDER_RESPONSE_INVALID', async () => {
      const session: SessionInfo = { id: 'browser-x6' }
      const { handle, callback } = await toCallback('op-alice', session)
      callback.searchParams.set('iss', 'https://evil.example')
      await rejectsWithoutWrites('PROVIDER_RESPONSE_INVALID', () => sso.advance({ handle, session, request: get(callback) }))
    })

    it.each([
      ['wrong issuer', 'OAUTH_JWT_CLAIM_COMPARISON_FAILED', (c: Record<string, unknown>) => ({ ...c, iss: 'https://evil.example' })],
      ['wrong audience', 'OAUTH_JWT_CLAIM_COMPARISON_FAILED', (c: Record<string, unknown>) => ({ ...c, aud: 'other-app' })],
      ['missing nonce', 'OAUTH_INVALID_RESPONSE', (c: Record<string, unknown>) => ({ ...c, nonce: undefined })],
      ['wrong nonce', 'OAUTH_JWT_CLAIM_COMPARISON_FAILED', (c: Record<string, unknown>) => ({ ...c, nonce: 'n'.repeat(43) })],
      [
        'expired',
        'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
        (c: Record<string, unknown>) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 3600 }),
      ],
    ])('ID token with %s -> PROVIDER_RESPONSE_INVALID (%s)', async (_name, reason, edit) => {
      const session: SessionInfo = { id: `browser-idt-${_name}` }
      const { handle, callback } = await toCallback('op-alice', session)
      hook = async (url, init, real) => {
        const res = await real(url, init)
        if (!url.endsWith('/token')) return res
        const body = (await res.json()) as { id_token: string }
        const [h, p, s] = body.id_token.split('.') as [string, string, string]
        const claims = edit(JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>)
        body.id_token = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
        return new Response(JSON.stringify(body), { status: res.status, headers: { 'content-type': 'application/json' } })
      }
      try {
        const error = await rejectsWithoutWrites('PROVIDER_RESPONSE_INVALID', () =>
          sso.advance({ handle, session, request: get(callback) }),
        )
        expect(error.details).toMatchObject({ stage: 'token', reason })
      } finally {
        hook = null
      }
    })

    it('threat 34: token response rewritten in transit (sub changed to the victim, junk signature) -> PROVIDER_RESPONSE_INVALID, nobody signed in', async () => {
      // The attacker logs in as themself; the token response is rewritten to carry the victim's
      // sub (alice, who has an account) under a signature that is not the OP's.
      const session: SessionInfo = { id: 'browser-threat-34' }
      const { handle, callback } = await toCallback('op-carol', session)
      hook = async (url, init, real) => {
        const res = await real(url, init)
        if (!url.endsWith('/token')) return res
        const body = (await res.json()) as { id_token: string }
        const [h, p] = body.id_token.split('.') as [string, string, string]
        const claims = { ...(JSON.parse(Buffer.from(p, 'base64url').toString()) as object), sub: 'op-alice' }
        body.id_token = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${randomBytes(256).toString('base64url')}`
        return Response.json(body)
      }
      try {
        const error = await rejectsWithoutWrites('PROVIDER_RESPONSE_INVALID', () =>
          sso.advance({ handle, session, request: get(callback) }),
        )
        expect(error.details).toMatchObject({ stage: 'token', check: 'id-token-signature' })
      } finally {
        hook = null
      }
    })

    it('threat 33: nonce stripped from the authorization request (IdP issues a token without nonce) -> PROVIDER_RESPONSE_INVALID', async () => {
      const session: SessionInfo = { id: 'browser-x7' }
      const { handle, callback } = await toCallback('op-alice', session, (u) => u.searchParams.delete('nonce'))
      const error = await rejectsWithoutWrites('PROVIDER_RESPONSE_INVALID', () => sso.advance({ handle, session, request: get(callback) }))
      // oauth4webapi: the expected "nonce" claim is missing from the ID token.
      expect(error.details).toMatchObject({ stage: 'token', reason: 'OAUTH_INVALID_RESPONSE' })
    })

    it('threat 33: PKCE verifier mismatch (code bound to another challenge) -> PROVIDER_ERROR invalid_grant', async () => {
      const session: SessionInfo = { id: 'browser-x8' }
      const otherChallenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url')
      const { handle, callback } = await toCallback('op-alice', session, (u) => u.searchParams.set('code_challenge', otherChallenge))
      const error = await rejectsWithoutWrites('PROVIDER_ERROR', () => sso.advance({ handle, session, request: get(callback) }))
      expect(error.details).toMatchObject({ stage: 'token', idpError: 'invalid_grant' })
      expect(error.message).not.toMatch(/grant|pkce|verifier/i)
    })

    it('code issued to another client (audience of the code) -> PROVIDER_ERROR invalid_grant', async () => {
      const session: SessionInfo = { id: 'browser-x9' }
      const { handle, callback } = await toCallback('op-alice', session, (u) => u.searchParams.set('client_id', op.clients.other.id))
      const error = await rejectsWithoutWrites('PROVIDER_ERROR', () => sso.advance({ handle, session, request: get(callback) }))
      expect(error.details).toMatchObject({ stage: 'token', idpError: 'invalid_grant' })
    })

    it("IdP error response (prompt=none without an IdP session) -> PROVIDER_ERROR with the provider's code, text and a likely cause", async () => {
      const session: SessionInfo = { id: 'browser-x10' }
      const begun = expectRedirect((await sso.beginLogin({ organizationId: ORG, session }))._unsafeUnwrap())
      const authUrl = new URL(begun.url)
      authUrl.searchParams.set('prompt', 'none')
      const callback = await new Browser().follow(authUrl.href, CALLBACK)
      expect(callback.searchParams.get('error')).toBe('login_required')
      const error = await rejectsWithoutWrites('PROVIDER_ERROR', () =>
        sso.advance({ handle: begun.handle, session, request: get(callback) }),
      )
      expect(error.details).toEqual({
        stage: 'callback',
        idpError: 'login_required',
        idpErrorDescription: 'End-User authentication is required',
        likelyCause: 'interaction',
      })
      // The message stays ours; the provider's text is in details (plain text) and cause.
      expect(error.message).toBe('The identity provider returned an error.')
      expect(String((error.cause as Error).message)).toContain('authorization response from the server is an error')
    })

    it('expired pipeline -> STATE_EXPIRED', async () => {
      const session: SessionInfo = { id: 'browser-x11' }
      const { handle, callback } = await toCallback('op-alice', session)
      const start = clock.now()
      clock.advance(3600 * 1000)
      try {
        await rejectsWithoutWrites('STATE_EXPIRED', () => sso.advance({ handle, session, request: get(callback) }))
      } finally {
        clock.set(start)
      }
    })
  })

  describe('hostile IdP responses end in a typed error, nothing written', () => {
    const tokenEndpoint =
      (respond: (init: Parameters<OidcFetch>[1]) => Promise<Response>): Hook =>
      async (url, init, real) =>
        url.endsWith('/token') ? respond(init) : real(url, init)

    it.each([
      [
        'non-JSON body',
        'PROVIDER_RESPONSE_INVALID',
        async () => new Response('<html>oops</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
      ],
      ['JSON of the wrong shape', 'PROVIDER_RESPONSE_INVALID', async () => Response.json({ access_token: 42, token_type: ['bearer'] })],
      [
        'oversized body',
        'PROVIDER_RESPONSE_INVALID',
        async () => Response.json({ access_token: 'x'.repeat(300 * 1024), token_type: 'bearer' }),
      ],
      ['server error (500)', 'PROVIDER_UNAVAILABLE', async () => new Response('boom', { status: 500 })],
      ['bad gateway (502) with a JSON body', 'PROVIDER_UNAVAILABLE', async () => Response.json({ error: 'server_error' }, { status: 502 })],
      [
        'token endpoint OAuth error',
        'PROVIDER_ERROR',
        async () => Response.json({ error: 'invalid_client', error_description: 'secret <b>wrong</b>' }, { status: 401 }),
      ],
      [
        'response that never arrives (timeout)',
        'PROVIDER_UNAVAILABLE',
        (init: Parameters<OidcFetch>[1]) =>
          new Promise<Response>((_resolve, reject) => {
            init.signal?.addEventListener('abort', () => reject(init.signal?.reason))
          }),
      ],
    ])('%s -> %s', async (_name, code, respond) => {
      const session: SessionInfo = { id: `browser-bad-${_name}` }
      const { handle, callback } = await toCallback('op-alice', session)
      hook = tokenEndpoint(respond)
      try {
        const error = await rejectsWithoutWrites(code as AuthError['code'], () => sso.advance({ handle, session, request: get(callback) }))
        expect(JSON.stringify(error)).not.toContain('<b>wrong</b>')
        expect(error.retryable).toBe(code === 'PROVIDER_UNAVAILABLE')
      } finally {
        hook = null
      }
    })

    it('oversized claims in the ID token -> PROVIDER_RESPONSE_INVALID', async () => {
      const session: SessionInfo = { id: 'browser-bad-claims' }
      const { handle, callback } = await toCallback('op-alice', session)
      hook = async (url, init, real) => {
        const res = await real(url, init)
        if (!url.endsWith('/token')) return res
        const body = (await res.json()) as { id_token: string }
        const [h, p, s] = body.id_token.split('.') as [string, string, string]
        const claims = { ...(JSON.parse(Buffer.from(p, 'base64url').toString()) as object), sub: 's'.repeat(10_000) }
        body.id_token = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
        return Response.json(body)
      }
      try {
        await rejectsWithoutWrites('PROVIDER_RESPONSE_INVALID', () => sso.advance({ handle, session, request: get(callback) }))
      } finally {
        hook = null
      }
    })
  })
})
