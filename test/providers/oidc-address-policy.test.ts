// Threat 60 through the OIDC provider: an SSO admin's issuer, and every endpoint a discovery
// document names, pass the address policy before any request leaves. Refusals re-render the setup
// form with a typed URL_NOT_ALLOWED error on the field; nothing is fetched from a refused target.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { JsonObject } from '../../src/model/identity.js'
import type { AddressPolicy, HostResolver } from '../../src/net/index.js'
import { createPinnedFetch } from '../../src/node/index.js'
import { type OidcFetch, oidcProvider } from '../../src/oidc/index.js'
import type { StepResult } from '../../src/providers/types.js'
import { CONFIG, ctx, ISSUER, type Script, scriptedIdp } from './scripted-idp.js'

const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
const setupCtx = (form: Record<string, string>) => ctx({ flow: 'setup', config: {}, request: post(form) })

const resolver =
  (table: Record<string, readonly string[]>): HostResolver =>
  async (hostname) => {
    const found = table[hostname]
    if (!found) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return found
  }

/** A customFetch that records every URL it is asked for. */
function recording(inner?: OidcFetch): { fetch: OidcFetch; calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    fetch: async (url, init) => {
      calls.push(url)
      return inner ? inner(url, init) : new Response('unexpected', { status: 500 })
    },
  }
}

function formError(result: StepResult) {
  expect(result).toMatchObject({ type: 'render', view: 'oidc-setup-form' })
  return (result as unknown as { model: { errors: { field: string; code: string; message: string }[] } }).model.errors
}

describe('threat 60: the issuer an admin types', () => {
  it.each([
    'https://169.254.169.254/latest/meta-data/',
    'https://[::ffff:169.254.169.254]/',
    'https://10.0.0.5:8443/admin',
    'https://0x0a000005/',
    'https://localhost:9200/',
    'https://127.1/',
    'https://2130706433/',
    'https://[::1]/',
    'https://100.64.0.1/',
    'https://192.168.0.1/',
    'https://[fe80::1]/',
    'https://224.0.0.1/',
    'https://0.0.0.0/',
    'https://192.0.2.1/',
    'https://[fd00:ec2::254]/',
  ])('%s: the form again with URL_NOT_ALLOWED on the issuer, no request', async (issuer) => {
    const { fetch, calls } = recording()
    const configure = oidcProvider({ customFetch: fetch }).setupSteps()[0]!
    const errors = formError(await configure.handle(setupCtx({ issuer, client_id: 'c', client_secret: 's' })))
    expect(errors).toEqual([{ field: 'issuer', code: 'URL_NOT_ALLOWED', message: expect.stringContaining('internal') }])
    expect(calls).toEqual([])
  })

  it.each([
    ['loopback', '127.0.0.1'],
    ['private', '10.1.2.3'],
    ['link-local', '169.254.10.10'],
    ['metadata', '169.254.169.254'],
    ['CGNAT', '100.64.1.1'],
    ['multicast', '239.1.1.1'],
    ['unspecified', '0.0.0.0'],
    ['IPv4-mapped metadata', '::ffff:a9fe:a9fe'],
    ['ULA', 'fd00::1'],
  ])('a name resolving to a %s address (%s): refused, no request', async (_range, address) => {
    const { fetch, calls } = recording()
    const configure = oidcProvider({
      customFetch: fetch,
      addressPolicy: { resolver: resolver({ 'idp.tenant.test': [address] }) },
    }).setupSteps()[0]!
    const errors = formError(await configure.handle(setupCtx({ issuer: 'https://idp.tenant.test/', client_id: 'c', client_secret: 's' })))
    expect(errors[0]).toMatchObject({ field: 'issuer', code: 'URL_NOT_ALLOWED', message: expect.stringContaining('resolves to') })
    expect(calls).toEqual([])
  })

  describe('no connection is attempted (a real server on 127.0.0.1 counts them)', () => {
    let server: Server
    let port = 0
    let connections = 0
    beforeAll(async () => {
      server = createServer((_req, res) => res.end('{}'))
      server.on('connection', () => {
        connections++
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      port = (server.address() as AddressInfo).port
    })
    afterAll(async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    })
    beforeEach(() => {
      connections = 0
    })

    const table = resolver({ 'internal.tenant.test': ['127.0.0.1'] })
    it.each([
      ['the global fetch after resolve-and-check', { resolver: table } satisfies AddressPolicy],
      ['the pinned fetch', { resolver: table, fetch: createPinnedFetch({ policy: { resolver: table } }) } satisfies AddressPolicy],
    ])('%s', async (_name, addressPolicy) => {
      const configure = oidcProvider({ addressPolicy }).setupSteps()[0]!
      for (const issuer of [`https://internal.tenant.test:${port}/`, `https://127.0.0.1:${port}/`, `https://localhost:${port}/`]) {
        const errors = formError(await configure.handle(setupCtx({ issuer, client_id: 'c', client_secret: 's' })))
        expect(errors[0]?.code, issuer).toBe('URL_NOT_ALLOWED')
      }
      expect(connections).toBe(0)
    })
  })

  it('the host allows a named internal IdP with the allow hook; others stay refused', async () => {
    const internal = 'https://sso.corp.internal'
    const script: Script = { calls: [] }
    const idp = scriptedIdp(script)
    const fetch: OidcFetch = (url, init) =>
      idp(url.replace(internal, ISSUER), init).then(async (res) => {
        if (!url.endsWith('openid-configuration')) return res
        return Response.json(JSON.parse((await res.text()).replaceAll(ISSUER, internal)))
      })
    const addressPolicy: AddressPolicy = {
      resolver: resolver({ 'sso.corp.internal': ['10.20.30.40'], 'other.corp.internal': ['10.20.30.41'] }),
      allow: ({ hostname }) => hostname === 'sso.corp.internal',
    }
    const [configure, authorize] = oidcProvider({ customFetch: fetch, addressPolicy }).setupSteps()
    const ok = await configure!.handle(setupCtx({ issuer: internal, client_id: 'c', client_secret: 's' }))
    expect(ok.type).toBe('next')
    const redirect = await authorize!.handle(ctx({ flow: 'setup', config: {}, data: (ok as { bind: JsonObject }).bind }))
    expect(redirect).toMatchObject({ type: 'redirect', url: expect.stringMatching(/^https:\/\/sso\.corp\.internal\/authorize\?/) })
    const refused = formError(
      await configure!.handle(setupCtx({ issuer: 'https://other.corp.internal', client_id: 'c', client_secret: 's' })),
    )
    expect(refused[0]?.code).toBe('URL_NOT_ALLOWED')
  })
})

describe('threat 60: endpoints named by a discovery document', () => {
  const addressPolicy: AddressPolicy = {
    resolver: resolver({
      'idp.example.com': ['93.184.216.34'],
      'internal.idp.example.com': ['10.0.0.7'],
      'meta.example.com': ['169.254.169.254'],
    }),
  }

  it.each([
    ['token_endpoint', 'https://10.0.0.5/token'],
    ['token_endpoint', 'https://internal.idp.example.com/token'],
    ['token_endpoint', 'http://idp.example.com/token'],
    ['jwks_uri', 'https://meta.example.com/jwks'],
    ['jwks_uri', 'https://[::ffff:7f00:1]/jwks'],
    ['userinfo_endpoint', 'https://192.168.1.1/userinfo'],
    ['userinfo_endpoint', 'http://idp.example.com/userinfo'],
    ['authorization_endpoint', 'javascript:alert(document.cookie)'],
    ['authorization_endpoint', 'data:text/html,<script>alert(1)</script>'],
    ['authorization_endpoint', 'http://idp.example.com/authorize'],
    ['authorization_endpoint', 'https://127.0.0.1/authorize'],
  ])('%s %s: setup form error naming it; login error; nothing sent there, never a redirect to it', async (attribute, url) => {
    const script: Script = { calls: [], metadata: { [attribute]: url } }
    const provider = oidcProvider({ customFetch: scriptedIdp(script), addressPolicy })
    const errors = formError(await provider.setupSteps()[0]!.handle(setupCtx({ issuer: ISSUER, client_id: 'c', client_secret: 's' })))
    expect(errors).toEqual([{ field: 'issuer', code: 'URL_NOT_ALLOWED', message: expect.stringContaining(attribute) }])
    const login = await provider.loginSteps(CONFIG)[0]!.handle(ctx({}))
    expect(login).toMatchObject({ type: 'error', error: { code: 'URL_NOT_ALLOWED', details: { field: attribute, stage: 'discovery' } } })
    expect(script.calls.every((u) => u === `${ISSUER}/.well-known/openid-configuration`)).toBe(true)
  })

  it('a stored issuer that now resolves internally (DNS changed after setup): the login refuses before discovery', async () => {
    const script: Script = { calls: [] }
    const provider = oidcProvider({
      customFetch: scriptedIdp(script),
      addressPolicy: { resolver: resolver({ 'idp.example.com': ['10.9.9.9'] }) },
    })
    const login = await provider.loginSteps(CONFIG)[0]!.handle(ctx({}))
    expect(login).toMatchObject({ type: 'error', error: { code: 'URL_NOT_ALLOWED', details: { field: 'issuer' } } })
    expect(script.calls).toEqual([])
  })
})
