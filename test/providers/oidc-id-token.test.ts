// Threat 34 and issue 10 item 4: the ID token's signature is verified against the provider's JWKS,
// cached per issuer, refetched on an unknown `kid` at most once per interval, bounded in size;
// `none` and HS* are refused.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { JsonObject } from '../../src/model/identity.js'
import { type OidcFetch, type OidcProviderOptions, oidcProvider } from '../../src/oidc/index.js'
import type { StepResult } from '../../src/providers/types.js'
import { CONFIG, ctx, ISSUER, JWKS, type Script, scriptedIdp, signJwt } from './scripted-idp.js'

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** A second RSA key (the IdP's next key after a rotation). */
const next = await crypto.subtle.generateKey(
  { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  true,
  ['sign', 'verify'],
)
const nextJwk = { ...(await crypto.subtle.exportKey('jwk', next.publicKey)), kid: 'k2', use: 'sig', alg: 'RS256' }
async function signWithNext(claims: Record<string, unknown>, kid = 'k2') {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(claims)}`
  const sig = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', next.privateKey, new TextEncoder().encode(input))
  return `${input}.${Buffer.from(sig).toString('base64url')}`
}

type Mint = (claims: Record<string, unknown>) => Promise<string>

/** A provider over a scripted IdP whose token endpoint mints ID tokens with `mint` and whose JWKS is `jwks()`. */
function idp(options: { mint?: Mint; jwks?: () => unknown; metadata?: Record<string, unknown> } & Partial<OidcProviderOptions> = {}) {
  const script: Script = { calls: [], ...(options.metadata ? { metadata: options.metadata } : {}) }
  const scripted = scriptedIdp(script)
  let nonce = ''
  const mint: Mint = options.mint ?? ((c) => signJwt(c))
  const fetch: OidcFetch = async (url, init) => {
    if (url === `${ISSUER}/jwks` && options.jwks) {
      script.calls.push(url)
      return Response.json(options.jwks())
    }
    if (url === `${ISSUER}/token`) {
      script.calls.push(url)
      const now = Math.floor(Date.now() / 1000)
      const id_token = await mint({ iss: ISSUER, aud: 'client-1', iat: now, exp: now + 300, sub: 'sub-1', nonce, email: 'a@x.test' })
      return Response.json({ access_token: 'at', token_type: 'Bearer', id_token })
    }
    return scripted(url, init)
  }
  const provider = oidcProvider({ ...options, customFetch: fetch })
  const [authorize, callback] = provider.loginSteps(CONFIG)
  const login = async (): Promise<StepResult> => {
    const first = (await authorize!.handle(ctx({}))) as { bind: JsonObject; type: string }
    if (first.type !== 'redirect') return first as unknown as StepResult
    const bound = first.bind.oidc as { state: string; nonce: string }
    nonce = bound.nonce
    return callback!.handle(ctx({ data: first.bind, request: { method: 'GET', query: { code: 'c', state: bound.state }, form: {} } }))
  }
  return { provider, login, script, jwksFetches: () => script.calls.filter((u) => u.endsWith('/jwks')).length }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('threat 34: ID token signature', () => {
  it('a correctly signed token passes', async () => {
    expect((await idp().login()).type).toBe('next')
  })

  it.each([
    ['junk signature', async (c: Record<string, unknown>) => `${(await signJwt(c)).split('.').slice(0, 2).join('.')}.${b64('junk')}`],
    [
      'payload rewritten (sub changed) under the original signature',
      async (c: Record<string, unknown>) => {
        const [h, , s] = (await signJwt(c)).split('.')
        return `${h}.${b64({ ...c, sub: 'victim' })}.${s}`
      },
    ],
    ['signed by a key the provider does not publish', (c: Record<string, unknown>) => signWithNext(c, 'k1')],
  ])('%s -> PROVIDER_RESPONSE_INVALID (id-token-signature)', async (_name, mint) => {
    expect(await idp({ mint }).login()).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_RESPONSE_INVALID', details: { stage: 'token', check: 'id-token-signature' } },
    })
  })

  it.each([
    ['alg none', async (c: Record<string, unknown>) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(c)}.`],
    [
      'HS256 keyed with the client secret',
      async (c: Record<string, unknown>) => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(c)}.${b64('mac')}`,
    ],
  ])('%s -> refused even when discovery advertises it', async (_name, mint) => {
    const result = await idp({ mint, metadata: { id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'] } }).login()
    expect(result).toMatchObject({ type: 'error', error: { code: 'PROVIDER_RESPONSE_INVALID', details: { check: 'id-token-alg' } } })
  })

  it('a provider advertising only none/HS* cannot be set up: the form says which algorithm to configure', async () => {
    const { provider } = idp({ metadata: { id_token_signing_alg_values_supported: ['HS256', 'none'] } })
    const result = await provider.setupSteps()[0]!.handle(
      ctx({
        flow: 'setup',
        config: {},
        request: { method: 'POST', query: {}, form: { issuer: ISSUER, client_id: 'c', client_secret: 's' } },
      }),
    )
    expect(result).toMatchObject({
      type: 'render',
      model: { errors: [{ field: 'issuer', code: 'PROVIDER_RESPONSE_INVALID', message: expect.stringContaining('RS256') }] },
    })
  })

  it('an algorithm outside the advertised list is refused (ES256 token, provider advertises RS256)', async () => {
    const mint: Mint = async (c) => `${b64({ alg: 'ES256', typ: 'JWT', kid: 'k1' })}.${b64(c)}.${b64('x')}`
    expect(await idp({ mint, metadata: { id_token_signing_alg_values_supported: ['RS256'] } }).login()).toMatchObject({
      type: 'error',
      error: { details: { check: 'id-token-alg' } },
    })
  })
})

describe('issue 10 item 2: the synchronous RS256 check over the cached key set (node:crypto)', () => {
  /** A provider whose token endpoint mints with whatever `use` holds; one good login fills the key cache. */
  async function warm() {
    const use: { mint: Mint } = { mint: (c) => signJwt(c) }
    const h = idp({ mint: (c) => use.mint(c) })
    expect((await h.login()).type).toBe('next')
    return { ...h, use }
  }

  it('a correctly signed token passes without a WebCrypto verification once the key set is cached', async () => {
    const h = await warm()
    const verify = vi.spyOn(crypto.subtle, 'verify')
    try {
      for (let i = 0; i < 3; i++) expect((await h.login()).type).toBe('next')
      expect(verify).not.toHaveBeenCalled()
    } finally {
      verify.mockRestore()
    }
    expect(h.jwksFetches()).toBe(1)
  })

  it.each([
    ['junk signature', async (c: Record<string, unknown>) => `${(await signJwt(c)).split('.').slice(0, 2).join('.')}.${b64('junk')}`],
    [
      'payload rewritten (sub changed) under the original signature',
      async (c: Record<string, unknown>) => {
        const [h, , s] = (await signJwt(c)).split('.')
        return `${h}.${b64({ ...c, sub: 'victim' })}.${s}`
      },
    ],
    ['signed by a key the provider does not publish, naming its kid', (c: Record<string, unknown>) => signWithNext(c, 'k1')],
    [
      'a signature with one bit flipped',
      async (c: Record<string, unknown>) => {
        const [h, p, s = ''] = (await signJwt(c)).split('.')
        const bytes = Buffer.from(s, 'base64url')
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
        return `${h}.${p}.${bytes.toString('base64url')}`
      },
    ],
  ])('%s, after a good login -> PROVIDER_RESPONSE_INVALID (id-token-signature)', async (_name, mint) => {
    const h = await warm()
    h.use.mint = mint
    expect(await h.login()).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_RESPONSE_INVALID', details: { stage: 'token', check: 'id-token-signature' } },
    })
    h.use.mint = (c) => signJwt(c)
    expect((await h.login()).type).toBe('next')
  })

  it('a key set older than 300 s is not used: oauth4webapi refetches it', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const h = await warm()
    vi.setSystemTime(Date.now() + 301_000)
    expect((await h.login()).type).toBe('next')
    expect(h.jwksFetches()).toBe(2)
  })
})

describe('issue 10 item 4: the JWKS cache', () => {
  it('is fetched once for many logins of one issuer', async () => {
    const h = idp()
    for (let i = 0; i < 5; i++) expect((await h.login()).type).toBe('next')
    expect(h.jwksFetches()).toBe(1)
  })

  it('key rotation: an unknown kid refetches, at most once per interval; a flood of unknown kids costs no more requests', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const t0 = new Date('2026-12-01T00:00:00Z').getTime()
    vi.setSystemTime(t0)
    let keys: unknown[] = [...JWKS.keys]
    let useNext = false
    const h = idp({ jwks: () => ({ keys }), mint: (c) => (useNext ? signWithNext(c) : signJwt(c)) })
    expect((await h.login()).type).toBe('next')
    expect(h.jwksFetches()).toBe(1)

    // The IdP rotates to k2 and signs with it 10 s later: inside the interval, no refetch, refused.
    keys = [...JWKS.keys, nextJwk]
    useNext = true
    vi.setSystemTime(t0 + 10_000)
    expect(await h.login()).toMatchObject({ type: 'error', error: { details: { check: 'id-token-signature' } } })
    expect(h.jwksFetches()).toBe(1)

    // After the interval the unknown kid triggers one refetch, which finds k2.
    vi.setSystemTime(t0 + 61_000)
    expect((await h.login()).type).toBe('next')
    expect(h.jwksFetches()).toBe(2)

    // Tokens naming kids that do not exist, many of them, right after: no further requests.
    const bogus: Mint = async (c) => signWithNext(c, `kid-${Math.random()}`)
    const flood = idp({ jwks: () => ({ keys }), mint: bogus })
    expect((await flood.login()).type).toBe('error')
    vi.setSystemTime(t0 + 62_000)
    for (let i = 0; i < 20; i++) expect((await flood.login()).type).toBe('error')
    expect(flood.jwksFetches()).toBe(1)
  })

  it('JWKS caches are per provider instance and JWKS URI: another provider with other keys does not accept k1', async () => {
    const a = idp()
    const b = idp({ jwks: () => ({ keys: [nextJwk] }) })
    expect((await a.login()).type).toBe('next')
    // b's JWKS does not contain k1: a token signed with k1 is refused for b.
    expect(await b.login()).toMatchObject({ type: 'error', error: { details: { check: 'id-token-signature' } } })
  })

  it('a JWKS with more keys than jwksMaxKeys is refused', async () => {
    const many = Array.from({ length: 6 }, (_, i) => ({ ...JWKS.keys[0], kid: `k${i === 0 ? 1 : i + 10}` }))
    expect(await idp({ jwks: () => ({ keys: many }), jwksMaxKeys: 5 }).login()).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_RESPONSE_INVALID', details: { check: 'id-token-signature', reason: 'too-large' } },
    })
    expect((await idp({ jwks: () => ({ keys: many }), jwksMaxKeys: 6 }).login()).type).toBe('next')
  })

  it('a JWKS larger than maxResponseBytes is refused', async () => {
    const padded = { keys: [...JWKS.keys], padding: 'x'.repeat(300 * 1024) }
    expect(await idp({ jwks: () => padded }).login()).toMatchObject({
      type: 'error',
      error: { code: 'PROVIDER_RESPONSE_INVALID', details: { reason: 'too-large' } },
    })
  })
})
