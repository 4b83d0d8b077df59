// Unit tests of the OIDC provider against a scripted IdP (customFetch): claim mapping, setup
// validation, refresh, config handling. The real-IdP flows are in test/e2e/oidc.test.ts.
import { describe, expect, it } from 'vitest'
import { isAuthError } from '../../src/errors.js'
import type { JsonObject } from '../../src/model/identity.js'
import { type OidcFetch, oidcProvider } from '../../src/oidc/index.js'
import type { StepResult } from '../../src/providers/types.js'
import { makeIdentity } from '../../src/testing/fixtures.js'
import { CONFIG, ctx, ISSUER, type Script, scriptedIdp, signJwt } from './scripted-idp.js'

/** Runs authorize then callback; the scripted ID token echoes the nonce unless claims override. */
async function login(
  claims: Record<string, unknown>,
  options: { userinfo?: boolean | 'auto' } = {},
  extra: Pick<Script, 'userinfo' | 'metadata'> = {},
) {
  const script: Script = { calls: [], ...extra }
  const provider = oidcProvider({ customFetch: scriptedIdp(script), ...options })
  const [authorize, callback] = provider.loginSteps(CONFIG)
  const first = (await authorize!.handle(ctx({}))) as Extract<StepResult, { type: 'redirect' }>
  expect(first.type).toBe('redirect')
  const bound = first.bind as { oidc: { state: string; nonce: string } }
  script.claims = { sub: 'sub-1', nonce: bound.oidc.nonce, ...claims }
  const result = await callback!.handle(
    ctx({ data: first.bind, request: { method: 'GET', query: { code: 'c', state: bound.oidc.state }, form: {} } }),
  )
  return { provider, first, result, script }
}

describe('oidcProvider: login steps', () => {
  it('authorize redirects with PKCE S256, state, nonce and the configured client', async () => {
    const { first } = await login({})
    const url = new URL(first.url)
    expect(url.origin + url.pathname).toBe(`${ISSUER}/authorize`)
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'client-1',
      response_type: 'code',
      redirect_uri: 'https://app.example.com/auth/sso/',
      code_challenge_method: 'S256',
      scope: 'openid email profile',
    })
    const bound = (first.bind as { oidc: Record<string, string> }).oidc
    expect(url.searchParams.get('state')).toBe(bound.state)
    expect(url.searchParams.get('nonce')).toBe(bound.nonce)
    expect(url.searchParams.get('code_challenge')).not.toBe(bound.verifier)
    expect(url.searchParams.has('code_verifier')).toBe(false)
  })

  it.each([
    [true, true],
    ['true', false],
    [1, false],
    [undefined, false],
    [null, false],
  ])('email_verified claim %j -> %s (strict boolean)', async (claim, expected) => {
    const { provider, result } = await login({ email: 'a@example.com', email_verified: claim, name: 'Ann' })
    expect(result.type).toBe('next')
    const data = { ...(result as { bind: JsonObject }).bind }
    const identity = await provider.buildIdentity(data, CONFIG)
    expect(isAuthError(identity)).toBe(false)
    expect(identity).toMatchObject({ id: 'sub-1', email: 'a@example.com', emailVerified: expected, name: 'Ann' })
  })

  it('keeps tokens in identity data and drops the spent state/nonce/verifier', async () => {
    const { provider, result } = await login({ email: 'a@example.com' })
    const bind = (result as { bind: JsonObject }).bind
    expect(bind.oidc).toBeNull()
    const identity = (await provider.buildIdentity(bind, CONFIG)) as { data: JsonObject }
    expect(identity.data).toMatchObject({ sub: 'sub-1', access_token: 'at-1', refresh_token: 'rt-1', token_type: 'bearer' })
    expect(JSON.stringify(identity.data)).not.toContain('nonce')
  })

  it('a callback with a state that does not match -> STATE_INVALID, no token request', async () => {
    const script: Script = { calls: [] }
    const provider = oidcProvider({ customFetch: scriptedIdp(script) })
    const [authorize, callback] = provider.loginSteps(CONFIG)
    const first = (await authorize!.handle(ctx({}))) as Extract<StepResult, { type: 'redirect' }>
    const result = await callback!.handle(
      ctx({ data: first.bind, request: { method: 'GET', query: { code: 'c', state: 'nope' }, form: {} } }),
    )
    expect(result).toMatchObject({ type: 'error', error: { code: 'STATE_INVALID' } })
    expect(script.calls.some((u) => u.endsWith('/token'))).toBe(false)
  })

  it('a callback without a pending authorization -> STATE_INVALID', async () => {
    const provider = oidcProvider({ customFetch: scriptedIdp({ calls: [] }) })
    const callback = provider.loginSteps(CONFIG)[1]!
    const result = await callback.handle(ctx({ request: { method: 'GET', query: { code: 'c', state: 's' }, form: {} } }))
    expect(result).toMatchObject({ type: 'error', error: { code: 'STATE_INVALID' } })
  })

  it('an ID token without sub or with a non-string name -> PROVIDER_RESPONSE_INVALID', async () => {
    expect((await login({ sub: undefined })).result).toMatchObject({ type: 'error', error: { code: 'PROVIDER_RESPONSE_INVALID' } })
    expect((await login({ name: { first: 'x' } })).result).toMatchObject({ type: 'error', error: { code: 'PROVIDER_RESPONSE_INVALID' } })
    expect((await login({ email: 'e'.repeat(400) })).result).toMatchObject({ type: 'error', error: { code: 'PROVIDER_RESPONSE_INVALID' } })
  })

  it('issue 13: no email in the ID token nor userinfo -> IDENTITY_INVALID naming the missing claim and the claims that arrived', async () => {
    const noUserinfo = await login({ name: 'Ann' })
    expect(noUserinfo.result).toMatchObject({
      type: 'error',
      error: {
        code: 'IDENTITY_INVALID',
        details: {
          claim: 'email',
          idTokenClaims: expect.arrayContaining(['sub', 'name', 'nonce']),
          userinfoClaims: null,
          userinfo: 'no-endpoint',
        },
      },
    })
    const withUserinfo = await login({ name: 'Ann' }, {}, { userinfo: { sub: 'sub-1', given_name: 'Ann' } })
    expect(withUserinfo.result).toMatchObject({
      type: 'error',
      error: { code: 'IDENTITY_INVALID', details: { claim: 'email', userinfoClaims: ['given_name', 'sub'], userinfo: 'fetched' } },
    })
  })

  it('unreachable IdP -> PROVIDER_UNAVAILABLE', async () => {
    const provider = oidcProvider({
      customFetch: async () => {
        throw new TypeError('fetch failed')
      },
    })
    const result = await provider.loginSteps(CONFIG)[0]!.handle(ctx({}))
    expect(result).toMatchObject({ type: 'error', error: { code: 'PROVIDER_UNAVAILABLE', retryable: true } })
  })

  it.each([500, 502, 503])('an IdP answering HTTP %i -> PROVIDER_UNAVAILABLE (retryable), never a protocol error', async (status) => {
    const provider = oidcProvider({ customFetch: async () => Response.json({ error: 'server_error' }, { status }) })
    const result = await provider.loginSteps(CONFIG)[0]!.handle(ctx({}))
    expect(result).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_UNAVAILABLE', retryable: true, details: { stage: 'discovery', reason: 'server-error', status } },
    })
  })

  it('discovery is cached between logins', async () => {
    const script: Script = { calls: [] }
    const provider = oidcProvider({ customFetch: scriptedIdp(script) })
    const authorize = provider.loginSteps(CONFIG)[0]!
    await authorize.handle(ctx({}))
    await authorize.handle(ctx({}))
    expect(script.calls.filter((u) => u.includes('.well-known'))).toHaveLength(1)
  })

  it.each([
    ['omitted', undefined],
    ['plain only', ['plain']],
  ])(
    'PKCE S256 not advertised (%s): no code_challenge (never plain), nonce still sent; the code exchange sends no verifier',
    async (_n, methods) => {
      const token = async (body: URLSearchParams) => {
        expect(body.has('code_verifier')).toBe(false)
        const now = Math.floor(Date.now() / 1000)
        return Response.json({
          access_token: 'at',
          token_type: 'Bearer',
          id_token: await signJwt({
            iss: ISSUER,
            aud: 'client-1',
            iat: now,
            exp: now + 300,
            sub: 's',
            nonce: nonceSeen,
            email: 'a@x.test',
          }),
        })
      }
      let nonceSeen = ''
      const script: Script = { calls: [], metadata: { code_challenge_methods_supported: methods }, token }
      const provider = oidcProvider({ customFetch: scriptedIdp(script) })
      const [authorize, callback] = provider.loginSteps(CONFIG)
      const first = (await authorize!.handle(ctx({}))) as Extract<StepResult, { type: 'redirect' }>
      const url = new URL(first.url)
      expect(url.searchParams.has('code_challenge')).toBe(false)
      expect(url.searchParams.has('code_challenge_method')).toBe(false)
      expect(url.searchParams.get('nonce')?.length).toBeGreaterThan(40)
      const bound = first.bind as { oidc: { state: string; nonce: string; verifier: string | null } }
      expect(bound.oidc.verifier).toBeNull()
      nonceSeen = bound.oidc.nonce
      const result = await callback!.handle(
        ctx({ data: first.bind, request: { method: 'GET', query: { code: 'c', state: bound.oidc.state }, form: {} } }),
      )
      expect(result.type).toBe('next')
    },
  )

  it('requirePkce refuses a provider that does not advertise S256 in the setup form', async () => {
    const script: Script = { calls: [], metadata: { code_challenge_methods_supported: undefined } }
    const configure = oidcProvider({ customFetch: scriptedIdp(script), requirePkce: true }).setupSteps()[0]!
    const result = await configure.handle(
      ctx({
        flow: 'setup',
        config: {},
        request: { method: 'POST', query: {}, form: { issuer: ISSUER, client_id: 'c', client_secret: 's' } },
      }),
    )
    expect(result).toMatchObject({ type: 'render', model: { errors: [{ field: 'issuer', message: expect.stringContaining('PKCE') }] } })
  })
})

describe('oidcProvider: setup form', () => {
  const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

  it.each([
    [{ issuer: 'http://idp.example.com', client_id: 'c', client_secret: 's' }],
    [{ issuer: 'http://127.0.0.1:9999', client_id: 'c', client_secret: 's' }],
    [{ issuer: 'https://idp.example.com?x=1', client_id: 'c', client_secret: 's' }],
    [{ issuer: 'javascript:alert(1)', client_id: 'c', client_secret: 's' }],
    [{ issuer: ISSUER, client_id: '', client_secret: 's' }],
    [{ issuer: ISSUER, client_id: 'c', client_secret: '' }],
  ])('re-renders the form for %j without contacting anyone', async (form) => {
    const script: Script = { calls: [] }
    const configure = oidcProvider({ customFetch: scriptedIdp(script) }).setupSteps()[0]!
    const result = await configure.handle(ctx({ flow: 'setup', config: {}, request: post(form) }))
    expect(result).toMatchObject({ type: 'render', view: 'oidc-setup-form' })
    expect(JSON.stringify(result)).not.toContain('"s"')
    expect(script.calls).toHaveLength(0)
  })

  it('loopback http is accepted only with the alarmingly named option', async () => {
    const configure = oidcProvider({
      dangerouslyAllowInsecureLoopbackHttp: true,
      customFetch: async () =>
        Response.json({
          issuer: 'http://127.0.0.1:9999',
          authorization_endpoint: 'http://127.0.0.1:9999/a',
          token_endpoint: 'http://127.0.0.1:9999/t',
          jwks_uri: 'http://127.0.0.1:9999/k',
        }),
    }).setupSteps()[0]!
    const result = await configure.handle(
      ctx({ flow: 'setup', config: {}, request: post({ issuer: 'http://127.0.0.1:9999', client_id: 'c', client_secret: 's' }) }),
    )
    expect(result).toMatchObject({
      type: 'next',
      bind: { oidc_config: { issuer: 'http://127.0.0.1:9999', clientId: 'c', clientSecret: 's' } },
    })
  })

  it('binds the validated config; the setup login steps then use it', async () => {
    const script: Script = { calls: [], metadata: { token_endpoint_auth_methods_supported: ['client_secret_post'] } }
    const provider = oidcProvider({ customFetch: scriptedIdp(script) })
    const [configure, authorize] = provider.setupSteps()
    const configured = (await configure!.handle(
      ctx({ flow: 'setup', config: {}, request: post({ issuer: ISSUER, client_id: 'client-9', client_secret: 'x' }) }),
    )) as {
      bind: JsonObject
    }
    expect(configured.bind.oidc_config).toEqual({
      issuer: ISSUER,
      clientId: 'client-9',
      clientSecret: 'x',
      clientAuth: 'client_secret_post',
    })
    const redirect = (await authorize!.handle(ctx({ flow: 'setup', config: {}, data: configured.bind }))) as { url: string }
    expect(new URL(redirect.url).searchParams.get('client_id')).toBe('client-9')
    // The stored config carries the preset and its trust policy (issue 13).
    expect(provider.buildConfig(configured.bind)).toEqual({
      ...(configured.bind.oidc_config as object),
      preset: 'oidc',
      trust: { name: 'oidc', emailVerified: 'claim', inviteMatch: true },
    })
    expect(provider.setupSteps().map((s) => s.id)).toEqual(['oidc.configure', 'oidc.authorize', 'oidc.callback'])
  })
})

describe('threat 60: the loopback-http opt-in covers loopback hosts only, for every endpoint', () => {
  const LOOP = 'http://127.0.0.1:9999'
  const LOOP_CONFIG: JsonObject = { issuer: LOOP, clientId: 'c', clientSecret: 'top-secret', clientAuth: 'client_secret_basic' }

  it.each([
    ['token_endpoint', { token_endpoint: 'http://idp.example.net/token' }],
    ['jwks_uri', { jwks_uri: 'http://idp.example.net/jwks' }],
    ['userinfo_endpoint', { userinfo_endpoint: 'http://idp.example.net/userinfo' }],
    ['authorization_endpoint', { authorization_endpoint: 'http://idp.example.net/authorize' }],
  ])('a loopback issuer whose discovery names a non-loopback http %s: refused, nothing sent there', async (_name, endpoints) => {
    const calls: { url: string; init: Parameters<OidcFetch>[1] }[] = []
    const provider = oidcProvider({
      dangerouslyAllowInsecureLoopbackHttp: true,
      userinfo: true,
      customFetch: async (url, init) => {
        calls.push({ url, init })
        if (url === `${LOOP}/.well-known/openid-configuration`) {
          return Response.json({
            issuer: LOOP,
            authorization_endpoint: `${LOOP}/authorize`,
            token_endpoint: `${LOOP}/token`,
            jwks_uri: `${LOOP}/jwks`,
            userinfo_endpoint: `${LOOP}/userinfo`,
            code_challenge_methods_supported: ['S256'],
            ...endpoints,
          })
        }
        return Response.json({ error: 'server_error' }, { status: 500 })
      },
    })
    const [authorize, callback] = provider.loginSteps(LOOP_CONFIG)
    let last = await authorize!.handle(ctx({ config: LOOP_CONFIG }))
    if (last.type === 'redirect') {
      // The browser is never sent to a non-loopback http authorization endpoint either.
      expect(new URL(last.url).hostname).toBe('127.0.0.1')
      const bound = last.bind as { oidc: { state: string } }
      last = await callback!.handle(
        ctx({ config: LOOP_CONFIG, data: last.bind, request: { method: 'GET', query: { code: 'c', state: bound.oidc.state }, form: {} } }),
      )
    }
    expect(last).toMatchObject({ type: 'error', error: { code: 'URL_NOT_ALLOWED' } })
    const leaked = calls.filter((c) => new URL(c.url).hostname !== '127.0.0.1')
    expect(leaked).toEqual([])
  })
})

describe('oidcProvider: config, update and refresh', () => {
  it('redactConfig removes the secret; buildConfig rejects malformed data', () => {
    const provider = oidcProvider()
    expect(provider.redactConfig?.(CONFIG)).toEqual({ issuer: ISSUER, clientId: 'client-1', clientAuth: 'client_secret_basic' })
    expect(provider.buildConfig({ oidc_config: { issuer: ISSUER } })).toMatchObject({ code: 'INPUT_INVALID' })
  })

  it('updateIdentity keeps the refresh token when the new data has none', () => {
    const provider = oidcProvider()
    expect(provider.updateIdentity?.({ access_token: 'new' }, { access_token: 'old', refresh_token: 'rt' })).toEqual({
      access_token: 'new',
      refresh_token: 'rt',
    })
    expect(provider.updateIdentity?.({ access_token: 'new', refresh_token: 'rt2' }, { refresh_token: 'rt' })).toEqual({
      access_token: 'new',
      refresh_token: 'rt2',
    })
  })

  const identity = (data: JsonObject) => makeIdentity({ id: 'i', authProviderId: 'ap', userId: 'u', data })

  it('refresh without a refresh token -> invalid', async () => {
    expect(await oidcProvider().refreshIdentity!(identity({}), CONFIG)).toEqual({ kind: 'invalid', reason: 'no-refresh-token' })
  })

  it.each([
    ['invalid_grant (400)', () => Response.json({ error: 'invalid_grant' }, { status: 400 }), 'invalid'],
    // A refused client (our credentials) is an error that changes nothing, never "identity invalid".
    ['unauthorized client (401)', () => Response.json({ error: 'invalid_client' }, { status: 401 }), 'error'],
    ['server error (500)', () => new Response('down', { status: 500 }), 'error'],
    ['bad gateway (502)', () => Response.json({ error: 'invalid_grant' }, { status: 502 }), 'error'],
    ['not JSON', () => new Response('<html>', { status: 200, headers: { 'content-type': 'text/html' } }), 'error'],
  ])('refresh with %s -> %s', async (_name, token, kind) => {
    const provider = oidcProvider({ customFetch: scriptedIdp({ calls: [], token }) })
    const result = await provider.refreshIdentity!(identity({ refresh_token: 'rt' }), CONFIG)
    expect(result.kind).toBe(kind)
  })

  it('refresh success merges the new tokens and keeps the old refresh token when none is returned', async () => {
    let sent: URLSearchParams | null = null
    const provider = oidcProvider({
      customFetch: scriptedIdp({
        calls: [],
        token: (body) => {
          sent = body
          return Response.json({ access_token: 'at-2', token_type: 'Bearer', expires_in: 60 })
        },
      }),
    })
    const result = await provider.refreshIdentity!(identity({ sub: 's', access_token: 'at-1', refresh_token: 'rt' }), CONFIG)
    expect(result).toMatchObject({ kind: 'ok', data: { sub: 's', access_token: 'at-2', refresh_token: 'rt' } })
    expect(sent!.get('grant_type')).toBe('refresh_token')
    expect(sent!.get('refresh_token')).toBe('rt')
  })
})

describe('threat 61: claims merged across sources (ID token and userinfo)', () => {
  const identityOf = async (
    idClaims: Record<string, unknown>,
    userinfo: Record<string, unknown>,
    mode: boolean | 'auto' = true,
  ): Promise<unknown> => {
    const { provider, result } = await login(idClaims, { userinfo: mode }, { userinfo: { sub: 'sub-1', ...userinfo } })
    if (result.type !== 'next') return result
    return provider.buildIdentity((result as { bind: JsonObject }).bind, CONFIG)
  }

  it.each([
    [
      "ID token's verified address wins; userinfo's other address is ignored",
      { email: 'a@x.test', email_verified: true },
      { email: 'victim@y.test', email_verified: true },
      { email: 'a@x.test', emailVerified: true },
    ],
    [
      "the ID token's flag never applies to userinfo's address",
      { email_verified: true },
      { email: 'victim@y.test' },
      { email: 'victim@y.test', emailVerified: false },
    ],
    [
      "userinfo's flag for another address never applies to the ID token's address",
      { email: 'a@x.test' },
      { email: 'victim@y.test', email_verified: true },
      { email: 'a@x.test', emailVerified: false },
    ],
    [
      "userinfo's flag counts for the same address",
      { email: 'a@x.test' },
      { email: 'a@x.test', email_verified: true },
      { email: 'a@x.test', emailVerified: true },
    ],
    [
      'an address only in userinfo, with its own flag',
      {},
      { email: 'b@y.test', email_verified: true },
      { email: 'b@y.test', emailVerified: true },
    ],
    [
      'a string "true" from either source is not a verification',
      { email: 'a@x.test', email_verified: 'true' },
      { email: 'a@x.test', email_verified: 'true' },
      { email: 'a@x.test', emailVerified: false },
    ],
  ])('%s', async (_name, idClaims, userinfo, expected) => {
    expect(await identityOf(idClaims, userinfo)).toMatchObject(expected)
  })

  it("a userinfo sub that differs from the ID token's -> PROVIDER_RESPONSE_INVALID naming the claim and the source", async () => {
    const { result } = await login(
      {},
      { userinfo: 'auto' },
      { userinfo: { sub: 'someone-else', email: 'victim@y.test', email_verified: true } },
    )
    expect(result).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_RESPONSE_INVALID', details: { stage: 'userinfo', check: 'userinfo-sub', claim: 'sub', source: 'userinfo' } },
    })
  })
})

describe('issue 13: userinfo whenever the ID token lacks a claim the mapping needs', () => {
  it('auto (the default): an ID token with email and a boolean email_verified needs no userinfo call', async () => {
    const { result, script } = await login({ email: 'a@x.test', email_verified: false }, {}, { userinfo: { sub: 'sub-1' } })
    expect(result.type).toBe('next')
    expect(script.calls.some((u) => u.endsWith('/userinfo'))).toBe(false)
  })

  it.each([
    ['no email', {}],
    ['no email_verified', { email: 'a@x.test' }],
  ])('auto: %s in the ID token -> userinfo is called and its claims used', async (_name, idClaims) => {
    const { provider, result, script } = await login(
      idClaims,
      {},
      { userinfo: { sub: 'sub-1', email: 'a@x.test', email_verified: true, name: 'Ann' } },
    )
    expect(script.calls.filter((u) => u.endsWith('/userinfo'))).toHaveLength(1)
    expect(await provider.buildIdentity((result as { bind: JsonObject }).bind, CONFIG)).toMatchObject({
      email: 'a@x.test',
      emailVerified: true,
      name: 'Ann',
    })
  })

  it('userinfo: false never calls it (and says so in the error)', async () => {
    const { result, script } = await login({}, { userinfo: false }, { userinfo: { sub: 'sub-1', email: 'a@x.test' } })
    expect(script.calls.some((u) => u.endsWith('/userinfo'))).toBe(false)
    expect(result).toMatchObject({ type: 'error', error: { code: 'IDENTITY_INVALID', details: { claim: 'email', userinfo: 'disabled' } } })
  })
})
