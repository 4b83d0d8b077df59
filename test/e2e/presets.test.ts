// Issue 13 items 1 and 2: the OIDC presets and the trust policy against oidc-provider 8.8 on
// loopback, configured to behave like each IdP: Entra ID's tenant-bound and tenant-templated
// issuers (`tid`, `oid`), Google Workspace's `hd`, an IdP that never sends `email_verified`.
// Every refusal leaves storage as it was.
import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, LoginOutcome, SessionInfo, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { JsonObject } from '../../src/model/identity.js'
import { type OidcProviderOptions, oidcProvider } from '../../src/oidc/index.js'
import { createRecordingMailer, createRecordingSignals } from '../../src/testing/fakes.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { Browser, type OpBehaviour, startOp, type TestAccount, type TestOp } from './op.js'

const BASE = 'https://app.example.com'
const CALLBACK = `${BASE}/auth/sso/`
const ORG = 'org-acme'
const T1 = '11111111-1111-4111-8111-111111111111'
const T2 = '22222222-2222-4222-8222-222222222222'
const OID = 'aaaaaaaa-0000-4000-8000-000000000001'
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

const inviteToken = randomBytes(32).toString('base64url')

/**
 * An OP behaving as `behaviour`, an org whose provider row is `config(op)` (null: none, for
 * setup), an admin, and pending invites by email for bob, carol, dave and eve.
 */
async function world(
  behaviour: OpBehaviour,
  options: (op: TestOp) => OidcProviderOptions,
  config: ((op: TestOp) => JsonObject) | null,
  accounts: readonly TestAccount[] = [],
): Promise<World> {
  const op = await startOp(CALLBACK, behaviour)
  opened.push(op)
  for (const a of accounts) op.accounts.set(a.sub, a)
  const storage = createMemoryStorage()
  const invite = (name: string, domain = 'acme.test') =>
    makeMember({
      id: `member-${name}`,
      organizationId: ORG,
      email: `${name}@${domain}`,
      inviteTokenHash: createHash('sha256').update(`${inviteToken}-${name}`).digest('hex'),
      inviteExpiresAt: new Date(Date.now() + 7 * 24 * 3600 * 1000),
    })
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme' })],
    users: [makeUser({ id: 'user-admin', email: 'admin@acme.test' }), makeUser({ id: 'user-frank', email: 'frank@acme.test' })],
    members: [
      makeMember({ id: 'member-admin', organizationId: ORG, userId: 'user-admin', role: 'owner' }),
      invite('bob'),
      invite('carol'),
      invite('dave'),
      invite('eve', 'other.test'),
    ],
    providers: config
      ? [
          makeProvider({
            id: 'ap-1',
            organizationId: ORG,
            providerKey: 'oidc',
            config: { clientId: op.clients.app.id, clientSecret: op.clients.app.secret, clientAuth: 'client_secret_basic', ...config(op) },
          }),
        ]
      : [],
  })
  const sso = createAuthPipeline({
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { oidc: oidcProvider({ key: 'oidc', dangerouslyAllowInsecureLoopbackHttp: true, fetchTimeoutMs: 5000, ...options(op) }) },
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

/** Begins a login, plays the browser at the OP as `account`, delivers the callback. */
async function callback(
  w: World,
  account: string,
  tamper: (callback: URL) => void = () => {},
): Promise<{ authUrl: URL; session: SessionInfo; result: Awaited<ReturnType<AuthPipeline['advance']>> }> {
  const session: SessionInfo = { id: `browser-${randomBytes(6).toString('hex')}` }
  const begun = (await w.sso.beginLogin({ organizationId: ORG, session }))._unsafeUnwrap()
  if (begun.kind !== 'redirect') throw new Error(begun.kind)
  w.op.nextLogin = account
  const back = await new Browser().follow(begun.url, CALLBACK)
  tamper(back)
  return { authUrl: new URL(begun.url), session, result: await w.sso.advance({ handle: begun.handle, session, request: get(back) }) }
}

/** A login that must succeed: a confirmation page gets the "new user" choice. */
async function signIn(w: World, account: string): Promise<LoginOutcome> {
  const { result, session } = await callback(w, account)
  const step: Step = result._unsafeUnwrap()
  if (step.kind === 'confirmationRequired')
    return (await w.sso.finishLogin({ handle: step.handle, session, op: 'newuser' }))._unsafeUnwrap()
  if (step.kind !== 'signedIn') throw new Error(step.kind)
  return step
}

/** A login that must fail with `code`, writing nothing but pipeline state. */
async function refused(w: World, account: string, code: AuthError['code'], tamper?: (u: URL) => void): Promise<AuthError> {
  const before = w.storage.snapshot()
  const { result } = await callback(w, account, tamper)
  expect(result.isErr()).toBe(true)
  const error = result._unsafeUnwrapErr()
  expect(error.code).toBe(code)
  const { pipelineStates: _a, ...after } = w.storage.snapshot()
  const { pipelineStates: _b, ...was } = before
  expect(after).toEqual(was)
  return error
}

const identities = (w: World) => w.storage.snapshot().identities.map((i) => ({ ident: i.ident, userId: i.userId }))
const memberOf = (w: World, id: string) => w.storage.snapshot().members.find((m) => m.id === id)

const entraAccount = (sub: string, email: string, tid: string, extra: Record<string, unknown> = {}): TestAccount => ({
  sub,
  email,
  email_verified: undefined,
  name: sub,
  extra: { tid, oid: OID, ...extra },
})

describe('entra preset, tenant-bound', () => {
  const make = (accounts: TestAccount[], trust?: OidcProviderOptions['trust']) =>
    world(
      { issuerPath: `/${T1}/v2.0` },
      (op) => ({ preset: { name: 'entra', tenant: T1, authority: op.origin }, ...(trust ? { trust } : {}) }),
      (op) => ({ issuer: op.issuer, preset: 'entra' }),
      accounts,
    )

  it('signs in with tid/oid as the subject, never the email; email unverified by default, so no invite matches', async () => {
    const w = await make([entraAccount('pairwise-sub-1', 'bob@acme.test', T1)])
    const out = await signIn(w, 'pairwise-sub-1')
    expect(out.kind).toBe('signedIn')
    expect(identities(w)).toEqual([{ ident: `${T1}/${OID}`, userId: expect.any(String) }])
    // Default Entra trust: email never verified, so bob's invite by email stays pending.
    expect(memberOf(w, 'member-bob')?.userId).toBeNull()
  })

  it('an identity stored under the pairwise sub (older config, another library) is found and re-keyed to tid/oid', async () => {
    const w = await make([entraAccount('pairwise-sub-9', 'frank@acme.test', T1)])
    w.storage.seed({
      identities: [makeIdentity({ id: 'ident-frank', authProviderId: 'ap-1', userId: 'user-frank', ident: 'pairwise-sub-9' })],
    })
    w.storage.seed({ members: [makeMember({ id: 'member-frank', organizationId: ORG, userId: 'user-frank' })] })
    const out = await signIn(w, 'pairwise-sub-9')
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'user-frank', created: { user: false, identity: false } })
    expect(identities(w)).toEqual([{ ident: `${T1}/${OID}`, userId: 'user-frank' }])
  })

  it('a token from the tenant issuer naming another tid -> IDENTITY_NOT_ALLOWED, nothing written', async () => {
    const w = await make([entraAccount('s-2', 'bob@acme.test', T2)])
    const e = await refused(w, 's-2', 'IDENTITY_NOT_ALLOWED')
    expect(e.details).toMatchObject({ preset: 'entra', claim: 'tid', reason: 'another-tenant' })
  })

  it('a token without oid -> refused naming the claim', async () => {
    const w = await make([{ sub: 's-3', email: 'bob@acme.test', email_verified: true, name: 'B', extra: { tid: T1 } }])
    const e = await refused(w, 's-3', 'PROVIDER_RESPONSE_INVALID')
    expect(e.details).toMatchObject({ claim: 'oid' })
  })

  it("trust 'asserted' for acme.test: bob's address counts (no email_verified sent) and matches his invite; eve's domain does not", async () => {
    const w = await make(
      [
        entraAccount('s-bob', 'bob@acme.test', T1),
        { ...entraAccount('s-eve', 'eve@other.test', T1), extra: { tid: T1, oid: 'aaaaaaaa-0000-4000-8000-000000000002' } },
      ],
      { name: 'acme-entra', emailVerified: 'asserted', domains: ['acme.test'], inviteMatch: true },
    )
    // The provider row was seeded without a stored policy: the provider's own applies.
    await signIn(w, 's-bob')
    expect(memberOf(w, 'member-bob')?.userId).not.toBeNull()
    await signIn(w, 's-eve')
    expect(memberOf(w, 'member-eve')?.userId).toBeNull()
  })

  it("an anonymous visitor whose IdP asserts an existing account's address is never linked to it", async () => {
    const w = await make([entraAccount('s-frank', 'frank@acme.test', T1)], {
      name: 'acme-entra',
      emailVerified: 'asserted',
      domains: ['acme.test'],
      inviteMatch: true,
    })
    const { result } = await callback(w, 's-frank')
    const step = result._unsafeUnwrap()
    expect(step.kind).toBe('confirmationRequired')
    expect(identities(w)).toEqual([])
    const explained = (await w.sso.explain({ handle: (step as { handle: string }).handle, session: { id: 'other' } })).isErr()
    expect(explained).toBe(true) // another browser cannot even read the decision
  })
})

describe('entra preset, multi-tenant (tenant-templated issuer)', () => {
  const make = (allowedTenants: string[], accounts: TestAccount[]) =>
    world(
      { issuerPath: `/${T2}/v2.0`, multiTenantPath: '/organizations/v2.0' },
      (op) => ({ preset: { name: 'entra', tenant: 'organizations', allowedTenants, authority: op.origin } }),
      (op) => ({ issuer: `${op.origin}/organizations/v2.0`, preset: 'entra' }),
      accounts,
    )

  it("discovery names {tenantid}; the token's iss is the template filled with its tid; an allowed tenant signs in", async () => {
    const w = await make([T2], [entraAccount('s-1', 'bob@acme.test', T2)])
    expect((await signIn(w, 's-1')).kind).toBe('signedIn')
    expect(identities(w)[0]?.ident).toBe(`${T2}/${OID}`)
  })

  it('the same without the RFC 9207 iss parameter (Entra does not send it): the tenant comes from the token', async () => {
    const w = await make([T2], [entraAccount('s-1', 'bob@acme.test', T2)])
    const { result, session } = await callback(w, 's-1', (u) => u.searchParams.delete('iss'))
    const step = result._unsafeUnwrap()
    expect(step.kind).toBe('confirmationRequired')
    expect((await w.sso.finishLogin({ handle: (step as { handle: string }).handle, session, op: 'newuser' }))._unsafeUnwrap().kind).toBe(
      'signedIn',
    )
  })

  it('a tenant outside allowedTenants -> IDENTITY_NOT_ALLOWED, nothing written', async () => {
    const w = await make([T1], [entraAccount('s-1', 'bob@acme.test', T2)])
    const e = await refused(w, 's-1', 'IDENTITY_NOT_ALLOWED')
    expect(e.details).toMatchObject({ claim: 'tid', reason: 'tenant-not-allowed' })
  })

  it('a tid claim naming another (allowed) tenant than the issuer it came from -> refused, nothing written', async () => {
    const w = await make([T1, T2], [entraAccount('s-1', 'bob@acme.test', T1)])
    await refused(w, 's-1', 'IDENTITY_NOT_ALLOWED')
    await refused(w, 's-1', 'PROVIDER_RESPONSE_INVALID', (u) => u.searchParams.delete('iss'))
  })

  it('setup stores the organizations address, the preset and its trust policy', async () => {
    const w = await world(
      { issuerPath: `/${T2}/v2.0`, multiTenantPath: '/organizations/v2.0' },
      (op) => ({ preset: { name: 'entra', tenant: 'organizations', allowedTenants: [T2], authority: op.origin } }),
      null,
      [entraAccount('op-admin', 'admin@acme.test', T2)],
    )
    const begun = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'oidc', session: admin }))._unsafeUnwrap() as {
      handle: string
    }
    // The issuer is fixed by the preset: the admin may leave it empty.
    const form = { issuer: '', client_id: w.op.clients.app.id, client_secret: w.op.clients.app.secret }
    let step = (await w.sso.advance({ handle: begun.handle, session: admin, request: { method: 'POST', query: {}, form } }))._unsafeUnwrap()
    if (step.kind !== 'redirect') throw new Error(JSON.stringify(step))
    w.op.nextLogin = 'op-admin'
    const back = await new Browser().follow(step.url, CALLBACK)
    step = (await w.sso.advance({ handle: begun.handle, session: admin, request: get(back) }))._unsafeUnwrap()
    expect(step.kind).toBe('setupComplete')
    expect(w.storage.snapshot().providers[0]?.config).toMatchObject({
      issuer: `${w.op.origin}/organizations/v2.0`,
      preset: 'entra',
      trust: { name: 'entra', emailVerified: 'never', inviteMatch: false },
    })
    expect(identities(w)).toEqual([{ ident: `${T2}/${OID}`, userId: 'user-admin' }])
  })
})

describe('google preset (hd)', () => {
  const make = (accounts: TestAccount[]) =>
    world(
      {},
      (op) => ({ preset: { name: 'google', hostedDomain: 'acme.test', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer }),
      accounts,
    )
  const g = (sub: string, email: string, hd?: string): TestAccount => ({
    sub,
    email,
    email_verified: true,
    name: sub,
    extra: hd ? { hd } : {},
  })

  it('asks Google for the hosted domain and accepts its accounts; the verified address matches the invite', async () => {
    const w = await make([g('g-bob', 'bob@acme.test', 'acme.test')])
    const { authUrl } = await callback(w, 'g-bob')
    expect(authUrl.searchParams.get('hd')).toBe('acme.test')
    await signIn(w, 'g-bob')
    expect(memberOf(w, 'member-bob')?.userId).not.toBeNull()
  })

  it.each([
    ['another Workspace domain', g('g-x', 'bob@acme.test', 'other.test'), 'another-hosted-domain'],
    ['a consumer account (no hd)', g('g-y', 'bob@acme.test'), 'not-a-workspace-account'],
  ])('%s -> IDENTITY_NOT_ALLOWED, nothing written', async (_n, account, reason) => {
    const w = await make([account])
    const e = await refused(w, account.sub, 'IDENTITY_NOT_ALLOWED')
    expect(e.details).toMatchObject({ claim: 'hd', reason })
  })
})

describe('an IdP that never sends email_verified', () => {
  const acct = (sub: string, email: string, verified: unknown): TestAccount => ({ sub, email, email_verified: verified, name: sub })

  it("okta preset (trust 'claim'): no email_verified -> unverified, the invite stays pending; true -> accepted", async () => {
    const w = await world(
      {},
      (op) => ({ preset: { name: 'okta', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer }),
      [acct('o-bob', 'bob@acme.test', undefined), acct('o-carol', 'carol@acme.test', true)],
    )
    // Every decision that used the policy names it in the trace.
    const { result, session } = await callback(w, 'o-bob')
    const page = result._unsafeUnwrap() as { kind: string; handle: string }
    expect(page.kind).toBe('confirmationRequired')
    const x = (await w.sso.explain({ handle: page.handle, session, op: 'newuser' }))._unsafeUnwrap()
    expect(x.trace).toContainEqual({
      rule: 'trust.email',
      detail: expect.stringContaining("trust policy 'okta': the address does not count"),
    })
    expect(x.trace).toContainEqual({ rule: 'membership.invite.email-unverified', detail: expect.stringContaining("(trust policy 'okta')") })
    await w.sso.finishLogin({ handle: page.handle, session, op: 'newuser' })
    expect(memberOf(w, 'member-bob')?.userId).toBeNull()
    await signIn(w, 'o-carol')
    expect(memberOf(w, 'member-carol')?.userId).not.toBeNull()
  })

  it("jumpcloud preset: 'never' by default; the host's 'asserted' policy for its domain makes dave's address count", async () => {
    const plain = await world(
      {},
      (op) => ({ preset: { name: 'jumpcloud', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer }),
      [acct('j-dave', 'dave@acme.test', true)],
    )
    await signIn(plain, 'j-dave')
    expect(memberOf(plain, 'member-dave')?.userId).toBeNull()

    const asserted = await world(
      {},
      (op) => ({
        preset: { name: 'jumpcloud', issuer: op.issuer },
        trust: { name: 'acme-jumpcloud', emailVerified: 'asserted', domains: ['acme.test'], inviteMatch: true },
      }),
      (op) => ({ issuer: op.issuer }),
      [acct('j-dave', 'dave@acme.test', undefined)],
    )
    await signIn(asserted, 'j-dave')
    expect(memberOf(asserted, 'member-dave')?.userId).not.toBeNull()
  })

  it('the policy stored with the config wins, and a stored policy that does not parse fails the login naming the field', async () => {
    const stored = await world(
      {},
      (op) => ({ preset: { name: 'okta', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer, preset: 'okta', trust: { name: 'stored', emailVerified: 'never', inviteMatch: false } }),
      [acct('o-carol', 'carol@acme.test', true)],
    )
    await signIn(stored, 'o-carol')
    expect(memberOf(stored, 'member-carol')?.userId).toBeNull()

    const broken = await world(
      {},
      (op) => ({ preset: { name: 'okta', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer, preset: 'okta', trust: { name: 'stored', emailVerified: 'asserted', inviteMatch: true } }),
      [acct('o-carol', 'carol@acme.test', true)],
    )
    const e = await refused(broken, 'o-carol', 'PROVIDER_NOT_CONFIGURED')
    expect(e.details).toMatchObject({ reason: 'trust-policy', field: 'trust.domains' })
  })

  it('a config stored under another preset is refused at login, before the IdP is asked', async () => {
    const w = await world(
      {},
      (op) => ({ preset: { name: 'okta', issuer: op.issuer } }),
      (op) => ({ issuer: op.issuer, preset: 'auth0' }),
    )
    const r = await w.sso.beginLogin({ organizationId: ORG, session: { id: 'b' } })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', details: { field: 'preset' } })
  })
})
