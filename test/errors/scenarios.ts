// THE ERROR-CODE TABLE: one row per code of ERROR_CODES (src/errors.ts), each with the public
// calls that return it. test/errors/codes.test.ts runs every scenario and checks the code, the
// default message, `retryable` and `redirect`, that nothing but the pipeline state was written
// and no mail or signal went out; it also checks docs/errors.md against the `redirect` column
// here, so the two cannot drift.
//
// Adding a code? Add it to ERROR_CODES and docs/errors.md, then a row here:
//
//   MY_CODE: {
//     redirect: 'flow',                       // what docs/errors.md's Redirect column says
//     scenarios: {
//       'what the caller did': {
//         flow: 'login',                      // the flow of the call: 'login', 'setup' (setup and
//                                             // admin calls) or null (no organization known yet)
//         async arrange(h) {                  // set up with the harness (test/errors/harness.ts)...
//           const handle = await h.beginLogin()
//           return () => h.sso.finishLogin({ handle, session: h.session() })   // ...return the act
//         },
//       },
//     },
//   },
//
// `redirect` is one of: 'flow' (login -> orgLogin, setup -> authSettings), 'root',
// 'flow, else root' (flow when the call's organization is known, else root), 'orgLogin',
// 'authSettings', or 'thrown' (only thrown as SsoflowError, by `throws`). A code that no public
// call can produce is `deprecated` (say why); the test then checks that src/ never produces it
// (outside errors.ts and the files listed in `onlyIn`) and that docs/errors.md marks it.
import { err, ok, ResultAsync } from 'neverthrow'
import { createSsoHandler, type HostSession } from '../../src/http/index.js'
import { type AuthError, type AuthErrorCode, StorageConflictError } from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { oidcProvider } from '../../src/oidc/index.js'
import { samlProvider } from '../../src/saml/index.js'
import {
  DUMMY_STEP_ID,
  dummyProvider,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
} from '../../src/testing/index.js'
import { b64, type ResponseFields, type SignOptions, TestIdp } from '../helpers/saml-idp.js'
import { scriptedIdp, signJwt } from '../providers/scripted-idp.js'
import { ACME, BARE, type Harness, POST } from './harness.js'

/** What a scenario's act returns: a public call's `ResultAsync`. */
export type Act = () => ResultAsync<unknown, AuthError>

export interface Scenario {
  /** The flow of the call: login, setup (setup and admin calls), or null when no organization is known. */
  readonly flow: 'login' | 'setup' | null
  /** Prepares the world and returns the call under test (only the act is checked for writes). */
  arrange(h: Harness): Promise<Act>
}

export type RedirectRule = 'flow' | 'root' | 'flow, else root' | 'orgLogin' | 'authSettings'

export type Row =
  | { readonly redirect: RedirectRule; readonly scenarios: Readonly<Record<string, Scenario>> }
  | { readonly redirect: 'thrown'; readonly throws: Readonly<Record<string, (h: Harness) => unknown>> }
  | { readonly deprecated: string; readonly onlyIn?: readonly string[] }

/**
 * The HTTP handler over the harness's engine. `act` sends one request and returns the error the
 * handler answered with (its `onResult` event) as the call's result: the handler's codes come
 * from a `Response`, not a `ResultAsync`.
 */
function web(h: Harness, options: { readonly getSession?: () => HostSession | null } = {}) {
  const origin = 'https://app.example.com'
  let last: AuthError | null = null
  let cookie = ''
  const handler = createSsoHandler(h.sso, {
    baseUrl: origin,
    basePath: '/sso',
    resolveOrganization: (slug) => (slug === 'acme' ? ACME : null),
    getSession: options.getSession ?? (() => null),
    applySessionEffects: () => undefined,
    onResult: (event) => {
      last = event.error
    },
  })
  const request = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers)
    if (cookie) headers.set('cookie', cookie)
    return new Request(`${origin}${path}`, { ...init, headers })
  }
  return {
    /** Starts a login at acme (the dummy form), keeping its cookies. */
    async start(): Promise<void> {
      const res = await handler.fetch(request('/sso/login/acme'))
      cookie = res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ')
    },
    act(path: string, init: RequestInit = {}): Act {
      return () =>
        new ResultAsync(
          (async () => {
            last = null
            await handler.fetch(request(path, init))
            return last ? err(last) : ok(null)
          })(),
        )
    },
  }
}

const FORM_POST = (body: string, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://app.example.com', ...headers },
})

/** A provider whose only step binds data over the 64 KiB limit, or throws. */
function brokenProvider(mode: 'oversized' | 'throws') {
  const base = dummyProvider()
  return {
    ...base,
    loginSteps: () => [
      {
        id: 'broken',
        handle: async () => {
          if (mode === 'throws') throw new Error('provider bug')
          return { type: 'next' as const, bind: { blob: 'x'.repeat(70 * 1024) } }
        },
      },
    ],
  }
}

/** An oidc provider whose IdP answers every request with `status`, or cannot be reached. */
function oidcDown(status: number | 'refused') {
  return oidcProvider({
    customFetch: async () => {
      if (status === 'refused') throw new TypeError('fetch failed')
      return new Response('unavailable', { status })
    },
  })
}

/** An oidc provider whose discovery document names another issuer (a mix-up). */
function oidcMixUp() {
  return oidcProvider({
    customFetch: async () =>
      Response.json({
        issuer: 'https://evil.example.com',
        authorization_endpoint: 'https://evil.example.com/auth',
        token_endpoint: 'https://evil.example.com/token',
      }),
  })
}

const OIDC_FORM = { issuer: 'https://idp.example.com', client_id: 'client', client_secret: 'secret' }

/**
 * An oidc provider whose discovery works and whose token endpoint behaves as `token` says
 * (throw: cannot be reached). Discovery and form failures re-render the setup form; failures at
 * the setup's own code exchange end the setup with an error.
 */
function oidcToken(token: () => Response) {
  return oidcProvider({
    customFetch: async (url) => {
      if (url.endsWith('/.well-known/openid-configuration')) {
        return Response.json({
          issuer: 'https://idp.example.com',
          authorization_endpoint: 'https://idp.example.com/auth',
          token_endpoint: 'https://idp.example.com/token',
          jwks_uri: 'https://idp.example.com/jwks',
        })
      }
      return token()
    },
  })
}

/** A setup at org-bare driven to the IdP's callback; returns the act that delivers the callback. */
async function oidcSetupCallback(h: Harness, provider: ReturnType<typeof oidcProvider>): Promise<Act> {
  const sso = h.engine({ providers: { dummy: dummyProvider(), oidc: provider } })
  const session = h.session('owner')
  const form = (await sso.beginSetup({ organizationId: BARE, providerKey: 'oidc', session }))._unsafeUnwrap()
  if (form.kind !== 'render') throw new Error(form.kind)
  const toIdp = (await sso.advance({ handle: form.handle, session, request: POST(OIDC_FORM) }))._unsafeUnwrap()
  if (toIdp.kind !== 'redirect') throw new Error(toIdp.kind)
  const state = new URL(toIdp.url).searchParams.get('state') ?? ''
  return () => sso.advance({ handle: form.handle, session, request: { method: 'GET', query: { code: 'code-1', state }, form: {} } })
}

/** Seeds org-oidc with an oidc provider row (config as setup stores it). */
function seedOidcOrg(h: Harness): void {
  h.storage.seed({
    organizations: [makeOrganization({ id: 'org-oidc', slug: 'oidc' })],
    providers: [
      makeProvider({
        id: 'ap-oidc',
        organizationId: 'org-oidc',
        providerKey: 'oidc',
        config: { issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's', clientAuth: 'client_secret_basic' },
      }),
    ],
  })
}

/**
 * A Google preset (hosted domain acme.com) over a scripted IdP at idp.example.com whose ID token
 * carries `hd` (signed, nonce echoed); returns the act that delivers the IdP's callback to a
 * login begun at org-oidc.
 */
async function googleLogin(h: Harness, hd: string): Promise<Act> {
  seedOidcOrg(h)
  let nonce = ''
  const script = scriptedIdp({ calls: [] })
  const provider = oidcProvider({
    key: 'oidc',
    preset: { name: 'google', hostedDomain: 'acme.com', issuer: 'https://idp.example.com' },
    customFetch: async (url, init) => {
      if (url === 'https://idp.example.com/token') {
        const now = Math.floor(Date.now() / 1000)
        const id_token = await signJwt({
          iss: 'https://idp.example.com',
          aud: 'c',
          iat: now,
          exp: now + 300,
          sub: 's-1',
          nonce,
          hd,
          email: 'ann@other.com',
          email_verified: true,
        })
        return Response.json({ access_token: 'at', token_type: 'Bearer', id_token })
      }
      return script(url, init)
    },
  })
  const sso = h.engine({ providers: { oidc: provider } })
  const session = h.session()
  const begun = (await sso.beginLogin({ organizationId: 'org-oidc', session }))._unsafeUnwrap()
  if (begun.kind !== 'redirect') throw new Error(begun.kind)
  const url = new URL(begun.url)
  nonce = url.searchParams.get('nonce') ?? ''
  const state = url.searchParams.get('state') ?? ''
  return () => sso.advance({ handle: begun.handle, session, request: { method: 'GET', query: { code: 'code-1', state }, form: {} } })
}

/**
 * org-saml with a SAML provider configured for a TestIdp (a signing IdP made in the test), an
 * engine that knows the saml provider, and `post(fields, sign)`: a login begun there and the
 * act that posts the IdP's response for it to the ACS.
 */
function samlOrg(h: Harness) {
  const idp = new TestIdp()
  idp.now = () => h.clock.now()
  h.storage.seed({
    organizations: [makeOrganization({ id: 'org-saml', slug: 'saml' })],
    providers: [
      makeProvider({
        id: 'ap-saml',
        organizationId: 'org-saml',
        providerKey: 'saml',
        config: {
          v: 1,
          idp: { entityId: idp.entityId, ssoUrl: idp.ssoUrl, certificates: [idp.cert.certificateBase64] },
          sp: { entityId: 'https://app.example.com/saml/metadata/saml/' },
          preset: 'okta',
          mapping: { id: 'id', email: 'email', firstName: null, lastName: null, displayName: null },
          nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
          allowSha1: false,
          idpInitiated: false,
        },
      }),
    ],
  })
  const sso = h.engine({ providers: { dummy: dummyProvider(), saml: samlProvider() } })
  return {
    sso,
    idp,
    async post(fields: Partial<ResponseFields>, sign: SignOptions = {}, raw?: string, relayState?: string): Promise<Act> {
      const step = await sso.beginLogin({ organizationId: 'org-saml', session: h.session() })
      if (step.isErr() || step.value.kind !== 'redirect') throw new Error('arrange: no redirect to the IdP')
      const handle = step.value.handle
      const request = TestIdp.readRequest(step.value.url)
      const xml = await idp.respond(
        request,
        { nameId: 'x@corp.example', attributes: { id: 'x', email: 'x@corp.example' }, ...fields },
        sign,
      )
      const form = { SAMLResponse: raw ?? b64(xml), RelayState: relayState ?? request.relayState }
      return () => sso.advance({ handle, session: h.session(), request: POST(form) })
    },
  }
}

/** The dummy provider whose form step marks every posted response single-use (one fixed key). */
function singleUseProvider() {
  const base = dummyProvider()
  const [form] = base.loginSteps({})
  return {
    ...base,
    loginSteps: () => [
      {
        id: 'single-use',
        handle: async (ctx: Parameters<NonNullable<typeof form>['handle']>[0]) => {
          const result = await form!.handle(ctx)
          return result.type === 'next' ? { ...result, singleUse: { key: 'response-1', expiresAt: ctx.now.getTime() + 300_000 } } : result
        },
      },
    ],
  }
}

export const ERROR_TABLE: Readonly<Record<AuthErrorCode, Row>> = {
  INPUT_INVALID: {
    redirect: 'flow, else root',
    scenarios: {
      'beginLogin with a number as organizationId': {
        flow: null,
        arrange: async (h) => () => h.sso.beginLogin({ organizationId: 42 as unknown as string, session: h.session() }),
      },
      'beginSetup with a session without id': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: BARE, providerKey: 'dummy', session: {} as never }),
      },
      'finishLogin(null) (was a retryable STORAGE_UNAVAILABLE)': {
        flow: null,
        arrange: async (h) => () => h.sso.finishLogin(null as never),
      },
      'explain(null) (was a retryable STORAGE_UNAVAILABLE)': {
        flow: null,
        arrange: async (h) => () => h.sso.explain(null as never),
      },
      'verifyAccountLink(null) (was a rejected promise)': {
        flow: null,
        arrange: async (h) => () => h.sso.verifyAccountLink(null as never),
      },
      'finishLogin with an op that does not exist': {
        flow: null,
        async arrange(h) {
          const { handle } = await h.login({ email: 'alice@corp.example' })
          return () => h.sso.finishLogin({ handle, session: h.session(), op: 'merge' as never })
        },
      },
      'advance with a form field that is not a string': {
        flow: null,
        async arrange(h) {
          const handle = await h.beginLogin()
          return () =>
            h.sso.advance({ handle, session: h.session(), request: { method: 'POST', query: {}, form: { email: ['a', 'b'] as never } } })
        },
      },
      'refreshIdentity for an identity that does not exist': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.refreshIdentity({ identityId: 'i-missing' }),
      },
    },
  },
  CONFIG_INVALID: {
    redirect: 'thrown',
    throws: {
      'createAuthPipeline with a short secret': (h) => h.engine({ secret: 'short' }),
      'oidcProvider: a trust policy with an unknown field': () =>
        oidcProvider({ trust: { name: 'x', emailVerified: 'claim', inviteMatch: true, linkAnonymous: true } as never }),
      'oidcProvider: email trusted from a multi-tenant Entra app without allowedTenants': () =>
        oidcProvider({
          preset: { name: 'entra', tenant: 'organizations' },
          trust: { name: 'x', emailVerified: 'claim', inviteMatch: true },
        }),
      'oidcProvider: a Google hosted domain with a trailing dot': () =>
        oidcProvider({ preset: { name: 'google', hostedDomain: 'acme.com.' } }),
      'createAuthPipeline without urls.pipelineCallback': (h) => {
        const { pipelineCallback: _missing, ...urls } = h.options.urls
        return h.engine({ urls: urls as typeof h.options.urls })
      },
      'createAuthPipeline with a policy that is not a positive integer': (h) => h.engine({ policy: { stateTtlSeconds: -1 } }),
    },
  },
  IDENTITY_INVALID: {
    redirect: 'flow',
    scenarios: {
      'login: the IdP asserts an invalid email': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          return () => h.sso.advance({ handle, session: h.session(), request: POST({ email: 'not an email' }) })
        },
      },
      'setup: the IdP asserts an invalid email': {
        flow: 'setup',
        async arrange(h) {
          const handle = await h.beginSetup()
          return () => h.sso.advance({ handle, session: h.session('owner'), request: POST({ email: 'not an email' }) })
        },
      },
    },
  },
  IDENTITY_NOT_ALLOWED: {
    redirect: 'flow',
    scenarios: {
      "login: Google preset for acme.com, the ID token's hd is another Workspace domain": {
        flow: 'login',
        arrange: (h) => googleLogin(h, 'other.com'),
      },
    },
  },
  STATE_INVALID: {
    redirect: 'flow, else root',
    scenarios: {
      'advance with a forged handle': {
        flow: null,
        arrange: async (h) => () => h.sso.advance({ handle: 'forged.handle', session: h.session(), request: POST({}) }),
      },
      'finishSetup with a forged handle': {
        flow: null,
        arrange: async (h) => () =>
          h.sso.finishSetup({ handle: 'x'.repeat(32), session: h.session('owner'), identity: { id: 'a', email: 'a@example.com' } }),
      },
      'finishLogin before the provider steps ran': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          return () => h.sso.finishLogin({ handle, session: h.session(), identity: { id: 'x', email: 'x@example.com' } })
        },
      },
    },
  },
  STATE_NOT_FOUND: {
    redirect: 'root',
    scenarios: {
      'a genuine handle whose state is not in this storage': {
        flow: null,
        async arrange(h) {
          const handle = await h.beginLogin()
          const elsewhere = h.engine({ storage: createMemoryStorage({ clock: h.clock }) })
          return () => elsewhere.advance({ handle, session: h.session(), request: POST({}) })
        },
      },
    },
  },
  STATE_EXPIRED: {
    redirect: 'flow',
    scenarios: {
      'login: advance after the TTL': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          h.clock.advance(3600 * 1000 + 1)
          return () => h.sso.advance({ handle, session: h.session(), request: POST({ email: 'x@example.com' }) })
        },
      },
      'setup: advance after the TTL': {
        flow: 'setup',
        async arrange(h) {
          const handle = await h.beginSetup()
          h.clock.advance(3600 * 1000 + 1)
          return () => h.sso.advance({ handle, session: h.session('owner'), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  STATE_CONSUMED: {
    redirect: 'flow',
    scenarios: {
      'login: the finished handle replayed': {
        flow: 'login',
        async arrange(h) {
          const { handle, step } = await h.login({ email: 'new@corp.example' })
          if (step.kind !== 'confirmationRequired') throw new Error(step.kind)
          const done = await h.sso.finishLogin({ handle, session: h.session(), op: 'newuser' })
          if (done.isErr()) throw new Error(done.error.code)
          return () => h.sso.finishLogin({ handle, session: h.session(), op: 'newuser' })
        },
      },
    },
  },
  STATE_VERSION: {
    redirect: 'root',
    scenarios: {
      'a state written by a future codec version': {
        flow: null,
        async arrange(h) {
          const handle = await h.beginLogin()
          const real = h.storage.pipelineStates
          const future = h.engine({
            states: {
              ...real,
              load: async (id) => {
                const row = await real.load(id)
                return row && { ...row, body: JSON.stringify({ ...JSON.parse(row.body), v: 2 }) }
              },
            },
          })
          return () => future.advance({ handle, session: h.session(), request: POST({}) })
        },
      },
    },
  },
  STATE_FINGERPRINT: {
    redirect: 'flow',
    scenarios: {
      "login: the provider's steps changed in flight": {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          const changed = h.engine({ providers: { dummy: brokenProvider('throws') } })
          return () => changed.advance({ handle, session: h.session(), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  STATE_SESSION_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'login: the handle used from another browser session': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          return () => h.sso.advance({ handle, session: h.session(null, 'other-browser'), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  STATE_CONFLICT: {
    redirect: 'flow',
    scenarios: {
      'login: another request won the compare-and-set': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          const real = h.storage.pipelineStates
          const lost = h.engine({ states: { ...real, compareAndSet: async () => false } })
          return () => lost.advance({ handle, session: h.session(), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  FLOW_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'setup: finishSetup with a login handle': {
        flow: 'setup',
        async arrange(h) {
          const handle = await h.beginLogin(h.session('owner'))
          return () => h.sso.finishSetup({ handle, session: h.session('owner'), identity: { id: 'a', email: 'owner@example.com' } })
        },
      },
      'login: finishLogin with a setup handle': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginSetup('owner')
          return () => h.sso.finishLogin({ handle, session: h.session('owner'), identity: { id: 'a', email: 'owner@example.com' } })
        },
      },
    },
  },
  ORG_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      "login: the state's provider row id now belongs to another organization": {
        flow: 'login',
        async arrange(h) {
          h.storage.seed({ providers: [makeProvider({ id: 'ap-bare', organizationId: BARE, providerKey: 'dummy' })] })
          const handle = (await h.sso.beginLogin({ organizationId: BARE, session: h.session() }))._unsafeUnwrap()
          if (handle.kind !== 'render') throw new Error(handle.kind)
          // The host disables bare's provider and re-uses the row id for acme's (host-chosen ids).
          const owner = h.session('owner')
          ;(await h.sso.disableProvider({ organizationId: BARE, session: owner }))._unsafeUnwrap()
          ;(await h.sso.disableProvider({ organizationId: ACME, session: owner }))._unsafeUnwrap()
          h.storage.seed({ providers: [makeProvider({ id: 'ap-bare', organizationId: ACME, providerKey: 'dummy' })] })
          return () => h.sso.advance({ handle: handle.handle, session: h.session(), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  PROVIDER_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      "login: the org's provider was re-created since begin": {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          ;(await h.sso.disableProvider({ organizationId: ACME, session: h.session('owner') }))._unsafeUnwrap()
          h.storage.seed({ providers: [makeProvider({ id: 'ap-acme-2', organizationId: ACME, providerKey: 'dummy' })] })
          return () => h.sso.finishLogin({ handle, session: h.session(), identity: { id: 'x', email: 'x@example.com' } })
        },
      },
    },
  },
  PROVIDER_UNKNOWN: {
    redirect: 'flow',
    scenarios: {
      'setup: a provider key that is not registered': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: BARE, providerKey: 'nope', session: h.session('owner') }),
      },
      "login: the org's provider key is not registered": {
        flow: 'login',
        async arrange(h) {
          const other = h.engine({ providers: { other: dummyProvider({ key: 'other' }) } })
          return () => other.beginLogin({ organizationId: ACME, session: h.session() })
        },
      },
    },
  },
  PROVIDER_DISABLED: {
    redirect: 'flow',
    scenarios: {
      'setup: the isProviderEnabled hook says no': {
        flow: 'setup',
        async arrange(h) {
          const off = h.engine({ hooks: { isProviderEnabled: () => false } })
          return () => off.beginSetup({ organizationId: BARE, providerKey: 'dummy', session: h.session('owner') })
        },
      },
    },
  },
  PROVIDER_NOT_CONFIGURED: {
    redirect: 'flow',
    scenarios: {
      'login: beginLogin for an org without a provider': {
        flow: 'login',
        arrange: async (h) => () => h.sso.beginLogin({ organizationId: BARE, session: h.session() }),
      },
      "login: the org's stored OIDC config is unusable": {
        flow: 'login',
        async arrange(h) {
          h.storage.seed({
            organizations: [makeOrganization({ id: 'org-broken', slug: 'broken' })],
            providers: [makeProvider({ id: 'ap-broken', organizationId: 'org-broken', providerKey: 'oidc', config: { issuer: 42 } })],
          })
          const sso = h.engine({ providers: { dummy: dummyProvider(), oidc: oidcDown(503) } })
          return () => sso.beginLogin({ organizationId: 'org-broken', session: h.session() })
        },
      },
      'admin: resendLinkRequests for an org without a provider': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.resendLinkRequests({ organizationId: BARE, session: h.session('owner') }),
      },
      'admin: disableProvider for an org without a provider': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.disableProvider({ organizationId: BARE, session: h.session('owner') }),
      },
    },
  },
  PROVIDER_EXISTS: {
    redirect: 'authSettings',
    scenarios: {
      'setup: beginSetup for an org that has a provider': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: ACME, providerKey: 'dummy', session: h.session('owner') }),
      },
    },
  },
  PROVIDER_ERROR: {
    redirect: 'flow',
    scenarios: {
      'login: a provider step throws': {
        flow: 'login',
        async arrange(h) {
          const broken = h.engine({ providers: { dummy: brokenProvider('throws') } })
          return () => broken.beginLogin({ organizationId: ACME, session: h.session() })
        },
      },
    },
  },
  PROVIDER_UNAVAILABLE: {
    redirect: 'flow',
    scenarios: {
      'login: the IdP answers 503': {
        flow: 'login',
        async arrange(h) {
          seedOidcOrg(h)
          const sso = h.engine({ providers: { oidc: oidcDown(503) } })
          return () => sso.beginLogin({ organizationId: 'org-oidc', session: h.session() })
        },
      },
      "setup: the token endpoint cannot be reached at the setup's code exchange": {
        flow: 'setup',
        arrange: (h) =>
          oidcSetupCallback(
            h,
            oidcToken(() => {
              throw new TypeError('fetch failed')
            }),
          ),
      },
    },
  },
  PROVIDER_RESPONSE_INVALID: {
    redirect: 'flow',
    scenarios: {
      "setup: the token response at the setup's code exchange carries a malformed ID token": {
        flow: 'setup',
        arrange: (h) =>
          oidcSetupCallback(
            h,
            oidcToken(() => Response.json({ access_token: 'a', token_type: 'bearer', id_token: 'x.y.z' })),
          ),
      },
      'login: the discovery document names another issuer (a mix-up)': {
        flow: 'login',
        async arrange(h) {
          seedOidcOrg(h)
          const sso = h.engine({ providers: { oidc: oidcMixUp() } })
          return () => sso.beginLogin({ organizationId: 'org-oidc', session: h.session() })
        },
      },
      'login: a provider step binds more than 64 KiB': {
        flow: 'login',
        async arrange(h) {
          const big = h.engine({ providers: { dummy: brokenProvider('oversized') } })
          return () => big.beginLogin({ organizationId: ACME, session: h.session() })
        },
      },
    },
  },
  URL_NOT_ALLOWED: {
    redirect: 'flow',
    scenarios: {
      'login: the stored issuer is a private address (threat 60)': {
        flow: 'login',
        async arrange(h) {
          h.storage.seed({
            organizations: [makeOrganization({ id: 'org-ssrf', slug: 'ssrf' })],
            providers: [
              makeProvider({
                id: 'ap-ssrf',
                organizationId: 'org-ssrf',
                providerKey: 'oidc',
                config: { issuer: 'https://10.0.0.5:8443/admin', clientId: 'c', clientSecret: 's', clientAuth: 'client_secret_basic' },
              }),
            ],
          })
          const sso = h.engine({ providers: { oidc: oidcDown(500) } })
          return () => sso.beginLogin({ organizationId: 'org-ssrf', session: h.session() })
        },
      },
      'login: the discovery document names an internal token endpoint (threat 60)': {
        flow: 'login',
        async arrange(h) {
          seedOidcOrg(h)
          const internal = oidcProvider({
            customFetch: async () =>
              Response.json({
                issuer: 'https://idp.example.com',
                authorization_endpoint: 'https://idp.example.com/auth',
                token_endpoint: 'https://169.254.169.254/token',
                jwks_uri: 'https://idp.example.com/jwks',
              }),
          })
          const sso = h.engine({ providers: { oidc: internal } })
          return () => sso.beginLogin({ organizationId: 'org-oidc', session: h.session() })
        },
      },
    },
  },
  DOMAIN_UNKNOWN: {
    redirect: 'flow, else root',
    scenarios: {
      'beginLogin({ email }) for a domain no organization has verified': {
        flow: null,
        arrange: async (h) => () => h.sso.beginLogin({ email: 'ada@nobody.example', session: h.session() }),
      },
      'beginLogin({ email }) for a domain only claimed, not verified': {
        flow: null,
        async arrange(h) {
          await h.sso.addDomain({ organizationId: ACME, session: h.session('owner'), domain: 'acme.example' })
          return () => h.sso.beginLogin({ email: 'ada@acme.example', session: h.session() })
        },
      },
      'verifyDomain for a domain the organization has not claimed': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.verifyDomain({ organizationId: ACME, session: h.session('owner'), domain: 'acme.example' }),
      },
      'removeDomain for a domain the organization has not claimed': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.removeDomain({ organizationId: ACME, session: h.session('owner'), domain: 'acme.example' }),
      },
    },
  },
  DOMAIN_TAKEN: {
    redirect: 'authSettings',
    scenarios: {
      'verifyDomain for a domain another organization has verified': {
        flow: 'setup',
        async arrange(h) {
          const owner = h.session('owner')
          await h.sso.addDomain({ organizationId: BARE, session: owner, domain: 'acme.example' })
          await h.sso.verifyDomain({ organizationId: BARE, session: owner, domain: 'acme.example' })
          await h.sso.addDomain({ organizationId: ACME, session: owner, domain: 'acme.example' })
          return () => h.sso.verifyDomain({ organizationId: ACME, session: owner, domain: 'acme.example' })
        },
      },
    },
  },
  ORGANIZATION_NOT_FOUND: {
    redirect: 'root',
    scenarios: {
      'beginLogin for an unknown org': {
        flow: null,
        arrange: async (h) => () => h.sso.beginLogin({ organizationId: 'org-nope', session: h.session() }),
      },
      'beginSetup for an unknown org': {
        flow: null,
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: 'org-nope', providerKey: 'dummy', session: h.session('owner') }),
      },
      'updateSettings for an unknown org': {
        flow: null,
        arrange: async (h) => () =>
          h.sso.updateSettings({ organizationId: 'org-nope', session: h.session('owner'), settings: { requireSso: true } }),
      },
    },
  },
  SAML_RESPONSE_INVALID: {
    redirect: 'flow',
    scenarios: {
      'login: a SAMLResponse that is not base64': {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({}, {}, '%%% not base64 %%%'),
      },
    },
  },
  SAML_METADATA_INVALID: {
    redirect: 'flow',
    scenarios: {
      'setup: SAML metadata XML that is not metadata': {
        flow: 'setup',
        async arrange(h) {
          const { sso } = samlOrg(h)
          const step = await sso.beginSetup({ organizationId: BARE, providerKey: 'saml', session: h.session('owner') })
          if (step.isErr() || step.value.kind !== 'render') throw new Error('arrange: no setup form')
          const handle = step.value.handle
          return () => sso.advance({ handle, session: h.session('owner'), request: POST({ metadata_xml: '<html/>' }) })
        },
      },
    },
  },
  SAML_IN_RESPONSE_TO_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'login: a SAML response answering another request': {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({ inResponseTo: '_another-request' }),
      },
    },
  },
  ASSERTION_UNVERIFIED: {
    redirect: 'flow',
    scenarios: { 'login: an unsigned SAML response': { flow: 'login', arrange: (h) => samlOrg(h).post({}, { target: 'none' }) } },
  },
  ASSERTION_ALGORITHM_REFUSED: {
    redirect: 'flow',
    scenarios: {
      'login: a SAML response signed with RSA-SHA1': {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({}, { signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' }),
      },
    },
  },
  ASSERTION_ISSUER_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'login: a SAML assertion from another issuer': { flow: 'login', arrange: (h) => samlOrg(h).post({ issuer: 'https://evil.example' }) },
    },
  },
  ASSERTION_AUDIENCE_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'login: a SAML assertion for another audience': {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({ audience: 'https://other-sp.example' }),
      },
    },
  },
  ASSERTION_EXPIRED: {
    redirect: 'flow',
    scenarios: {
      'login: an expired SAML assertion': {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({ notOnOrAfter: new Date(h.clock.now().getTime() - 3600_000) }),
      },
    },
  },
  ASSERTION_REPLAYED: {
    redirect: 'flow',
    scenarios: {
      'login: a single-use response accepted in one pipeline is posted in another': {
        flow: 'login',
        async arrange(h) {
          const sso = h.engine({ providers: { dummy: singleUseProvider() } })
          const first = await sso.beginLogin({ organizationId: ACME, session: h.session() })
          if (first.isErr() || first.value.kind !== 'render') throw new Error('arrange: no form')
          await sso.advance({ handle: first.value.handle, session: h.session(), request: POST({ email: 'new@example.com' }) })
          const second = await sso.beginLogin({ organizationId: ACME, session: h.session() })
          if (second.isErr() || second.value.kind !== 'render') throw new Error('arrange: no form')
          const handle = second.value.handle
          return () => sso.advance({ handle, session: h.session(), request: POST({ email: 'new@example.com' }) })
        },
      },
    },
  },
  UNSOLICITED_RESPONSE: {
    redirect: 'orgLogin',
    scenarios: {
      'an IdP-initiated response for a provider that accepts none': {
        flow: 'login',
        async arrange(h) {
          return () =>
            h.sso.beginUnsolicitedLogin({ organizationId: ACME, session: h.session(), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  RELAY_STATE_INVALID: {
    redirect: 'flow',
    scenarios: {
      "login: a SAML response posted with a RelayState that is not its pipeline's": {
        flow: 'login',
        arrange: (h) => samlOrg(h).post({}, {}, undefined, 'not-our-relay-state'),
      },
      'handler: an ACS post with a RelayState in a browser that has no pipeline': {
        flow: 'login',
        async arrange(h) {
          return web(h).act('/sso/acs/acme', FORM_POST('SAMLResponse=PHg%2B&RelayState=someone-elses'))
        },
      },
    },
  },
  NOT_AUTHENTICATED: {
    redirect: 'authSettings',
    scenarios: {
      'setup: beginSetup anonymously': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: BARE, providerKey: 'dummy', session: h.session() }),
      },
      'admin: disableProvider anonymously': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.disableProvider({ organizationId: ACME, session: h.session() }),
      },
    },
  },
  NOT_AUTHORIZED: {
    redirect: 'authSettings',
    scenarios: {
      'setup: a plain member starts setup': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: ACME, providerKey: 'dummy', session: h.session('member') }),
      },
    },
  },
  UID_MISMATCH: {
    redirect: 'flow',
    scenarios: {
      'setup: another user continues the admin’s setup': {
        flow: 'setup',
        async arrange(h) {
          const handle = await h.beginSetup('owner')
          return () => h.sso.advance({ handle, session: h.session('member', 'sess-owner'), request: POST({ email: 'x@example.com' }) })
        },
      },
    },
  },
  NOT_A_MEMBER: {
    redirect: 'flow',
    scenarios: {
      'setup: a user who is not a member starts setup': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: BARE, providerKey: 'dummy', session: h.session('member') }),
      },
    },
  },
  SESSION_USER_MISMATCH: {
    deprecated: 'The session user is always the attach target (N1), so no public call can reach the refusal.',
    onlyIn: ['src/core/attach.ts'],
  },
  USER_SUSPENDED: {
    redirect: 'flow',
    scenarios: {
      'login: the linked user is suspended': {
        flow: 'login',
        async arrange(h) {
          const handle = await h.beginLogin()
          return () =>
            h.sso.advance({ handle, session: h.session(), request: POST({ id: 'ext-suspended', email: 'suspended@example.com' }) })
        },
      },
      'setup: a suspended owner starts setup': {
        flow: 'setup',
        arrange: async (h) => () => h.sso.beginSetup({ organizationId: ACME, providerKey: 'dummy', session: h.session('suspended') }),
      },
    },
  },
  IDENTITY_CONFLICT: {
    redirect: 'orgLogin',
    scenarios: {
      'login: "create a new account" with the email of an active account': {
        flow: 'login',
        async arrange(h) {
          const { handle } = await h.login({ email: 'alice@corp.example' })
          return () => h.sso.finishLogin({ handle, session: h.session(), op: 'newuser' })
        },
      },
    },
  },
  MERGE_FAILED: {
    redirect: 'orgLogin',
    scenarios: {
      'login: "link to my account" while anonymous': {
        flow: 'login',
        async arrange(h) {
          const { handle } = await h.login({ email: 'alice@corp.example' })
          return () => h.sso.finishLogin({ handle, session: h.session(), op: 'confirm' })
        },
      },
    },
  },
  OP_NOT_ALLOWED: {
    redirect: 'orgLogin',
    scenarios: {
      'login: a confirmation op posted to an IdP-initiated pipeline (resumed after 2FA)': {
        flow: 'login',
        async arrange(h) {
          h.storage.seed({
            users: [makeUser({ id: 'dave', email: 'dave@corp.example', has2fa: true })],
            members: [makeMember({ id: 'm-dave', organizationId: ACME, userId: 'dave' })],
            identities: [makeIdentity({ id: 'i-dave', authProviderId: 'ap-acme', userId: 'dave', ident: 'ext-dave' })],
          })
          const sso = h.engine({
            providers: { dummy: { ...dummyProvider(), unsolicited: { stepId: DUMMY_STEP_ID, enabled: () => true } } },
          })
          const request = POST({ id: 'ext-dave', email: 'dave@corp.example' })
          const step = (await sso.beginUnsolicitedLogin({ organizationId: ACME, session: h.session(), request }))._unsafeUnwrap()
          if (step.kind !== 'twoFactorRequired') throw new Error(step.kind)
          return () => sso.finishLogin({ handle: step.resumeHandle, session: h.session(), op: 'confirm' })
        },
      },
    },
  },
  VERIFICATION_INVALID: {
    redirect: 'flow, else root',
    scenarios: {
      'verifyAccountLink with an unknown token (no organization known)': {
        flow: null,
        arrange: async (h) => () => h.sso.verifyAccountLink({ token: 'unknown-token', session: h.session() }),
      },
      'login: the emailed link was used by another request between check and link': {
        flow: 'login',
        async arrange(h) {
          // A passwordless account: the anonymous login gets the confirmation page and a mailed link.
          h.storage.seed({
            users: [makeUser({ id: 'pat', email: 'pat@corp.example', hasUsablePassword: false })],
            members: [makeMember({ id: 'm-pat', organizationId: ACME, userId: 'pat' })],
          })
          const { handle, step } = await h.login({ id: 'ext-pat', email: 'pat@corp.example' })
          if (step.kind !== 'confirmationRequired' || step.confirmation.page !== 'confirm-identity') throw new Error(step.kind)
          const mail = h.mailer.sent.at(-1)
          const token = mail?.template === 'accountVerification' ? /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] : undefined
          if (!token) throw new Error('no verification mail')
          const session = { ...h.session(), verificationToken: token }
          const real = h.storage.oneTimeTokens
          const raced = h.engine({ tokens: { ...real, consume: async () => null } })
          return () => raced.finishLogin({ handle, session })
        },
      },
    },
  },
  RATE_LIMITED: {
    redirect: 'orgLogin',
    scenarios: {
      'login: the host’s isRateLimited hook refuses the verification mail': {
        flow: 'login',
        async arrange(h) {
          // A passwordless account: an anonymous login would mail it a verification link.
          h.storage.seed({ users: [makeUser({ id: 'pat', email: 'pat@corp.example', hasUsablePassword: false })] })
          const limited = h.engine({ hooks: { isRateLimited: () => true } })
          const session = h.session()
          const begun = await limited.beginLogin({ organizationId: ACME, session })
          const handle = begun.isOk() && 'handle' in begun.value ? String(begun.value.handle) : ''
          return () => limited.advance({ handle, session, request: POST({ id: 'ext-pat', email: 'pat@corp.example' }) })
        },
      },
      'login: the host’s isRateLimited hook refuses an anonymous visitor when no account has the address (threat 29)': {
        flow: 'login',
        async arrange(h) {
          const limited = h.engine({ hooks: { isRateLimited: () => true } })
          const session = h.session()
          const begun = await limited.beginLogin({ organizationId: ACME, session })
          const handle = begun.isOk() && 'handle' in begun.value ? String(begun.value.handle) : ''
          return () => limited.advance({ handle, session, request: POST({ id: 'ext-nobody', email: 'nobody@corp.example' }) })
        },
      },
    },
  },
  INVITE_INVALID: {
    deprecated: 'An invalid session invite is ignored with a trace entry and never blocks the login (docs/login-flow.md).',
  },
  CSRF_INVALID: {
    redirect: 'root',
    scenarios: {
      'handler: the provider form posted without its token': {
        flow: null,
        async arrange(h) {
          const w = web(h)
          await w.start()
          return w.act('/sso/callback', FORM_POST('email=a%40corp.example'))
        },
      },
    },
  },
  CROSS_SITE_REQUEST: {
    redirect: 'root',
    scenarios: {
      'handler: a POST from another origin': {
        flow: null,
        async arrange(h) {
          const w = web(h)
          await w.start()
          return w.act('/sso/callback', FORM_POST('email=a%40corp.example', { origin: 'https://evil.example' }))
        },
      },
    },
  },
  BODY_TOO_LARGE: {
    redirect: 'root',
    scenarios: {
      'handler: a confirmation form over 16 KiB': {
        flow: null,
        async arrange(h) {
          const w = web(h)
          await w.start()
          return w.act('/sso/confirm', FORM_POST(`op=newuser&pad=${'a'.repeat(20_000)}`))
        },
      },
      'handler: a provider form over 256 KiB': {
        flow: null,
        async arrange(h) {
          const w = web(h)
          await w.start()
          return w.act('/sso/callback', FORM_POST(`email=${'a'.repeat(300_000)}`))
        },
      },
    },
  },
  CONTENT_TYPE_INVALID: {
    redirect: 'root',
    scenarios: {
      'handler: a JSON body': {
        flow: null,
        async arrange(h) {
          const w = web(h)
          await w.start()
          return w.act('/sso/callback', FORM_POST('{}', { 'content-type': 'application/json' }))
        },
      },
    },
  },
  ROUTE_NOT_FOUND: {
    redirect: 'root',
    scenarios: {
      'handler: an unknown path under basePath': {
        flow: null,
        async arrange(h) {
          return web(h).act('/sso/nope')
        },
      },
    },
  },
  INTERNAL_ERROR: {
    redirect: 'root',
    scenarios: {
      "handler: the host's getSession throws": {
        flow: null,
        async arrange(h) {
          return web(h, {
            getSession: () => {
              throw new Error('session store down')
            },
          }).act('/sso/login/acme')
        },
      },
    },
  },
  STORAGE_CONFLICT: {
    redirect: 'flow, else root',
    scenarios: {
      'login: every attempt of the transaction hits a unique conflict': {
        flow: 'login',
        async arrange(h) {
          const { handle } = await h.login({ email: 'new@corp.example' })
          const storage = {
            ...h.storage,
            transaction: async () => {
              throw new StorageConflictError('member.organization_user')
            },
          }
          const conflicted = h.engine({ storage })
          return () => conflicted.finishLogin({ handle, session: h.session(), op: 'newuser' })
        },
      },
    },
  },
  STORAGE_UNAVAILABLE: {
    redirect: 'flow, else root',
    scenarios: {
      'beginLogin while the storage is down': {
        flow: null,
        async arrange(h) {
          const down = h.engine({
            storage: {
              ...h.storage,
              getOrganization: async () => {
                throw new Error('connection refused')
              },
              getOrganizationWithProvider: async () => {
                throw new Error('connection refused')
              },
            },
          })
          return () => down.beginLogin({ organizationId: ACME, session: h.session() })
        },
      },
      'login: the storage fails inside the transaction': {
        flow: 'login',
        async arrange(h) {
          const { handle } = await h.login({ email: 'new@corp.example' })
          const down = h.engine({
            storage: {
              ...h.storage,
              transaction: async () => {
                throw new Error('connection reset')
              },
            },
          })
          return () => down.finishLogin({ handle, session: h.session(), op: 'newuser' })
        },
      },
    },
  },
}
