// The engine's extension points for signed-response providers (SAML): single-use responses
// (threat 40), unsolicited entry (threat 39), per-provider field limits, service metadata and
// setup warnings. Driven through createAuthPipeline on memory storage with a scripted provider
// whose receiving step accepts a posted "response" { rid, id, email }.
import { describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, SessionInfo, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { JsonObject } from '../../src/model/identity.js'
import type { Provider, ProviderStep } from '../../src/providers/types.js'
import { createRecordingMailer, createRecordingSignals, fixedClock } from '../../src/testing/fakes.js'
import {
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  primaryEmailOf,
  sentryStyleUrls,
} from '../../src/testing/fixtures.js'

const ORG = makeOrganization({ id: 'org-1', slug: 'acme' })
const clock = fixedClock('2026-03-01T12:00:00.000Z')

/** A provider: `go` redirects to the IdP, `receive` takes the posted response. */
function scripted(extra: Partial<Provider> = {}): Provider {
  const go: ProviderStep = {
    id: 'x.go',
    // A callback landing here (the browser is back from the IdP): let the receiving step judge it.
    handle: async (ctx) =>
      ctx.request.method === 'POST' ? { type: 'next' } : { type: 'redirect', url: 'https://idp.example/sso', bind: { asked: true } },
  }
  const receive: ProviderStep = {
    id: 'x.receive',
    handle: async (ctx) => {
      const f = ctx.request.form
      if (!ctx.unsolicited && ctx.data.asked !== true)
        return { type: 'error', error: { kind: 'authError', code: 'STATE_INVALID', message: 'x', redirect: 'root', retryable: false } }
      return {
        type: 'next',
        bind: { id: f.id ?? '', email: f.email ?? '', unsolicited: ctx.unsolicited === true },
        singleUse: { key: `rid:${f.rid}`, expiresAt: ctx.now.getTime() + 300_000 },
      }
    },
  }
  return {
    key: 'x',
    displayName: 'Scripted',
    loginSteps: () => [go, receive],
    setupSteps: () => [go, receive],
    buildIdentity: (data: JsonObject) => ({
      id: String(data.id),
      email: String(data.email),
      data: { unsolicited: data.unsolicited ?? null },
    }),
    buildConfig: () => ({ unsolicited: false }),
    callbackMethod: 'POST',
    unsolicited: { stepId: 'x.receive', enabled: (config) => config.unsolicited === true },
    ...extra,
  }
}

interface World {
  readonly storage: MemoryStorage
  readonly sso: AuthPipeline
}

function world(options: { provider?: Provider; unsolicited?: boolean } = {}): World {
  const storage = createMemoryStorage({ clock })
  const alice = makeUser({ id: 'u-alice', email: 'alice@acme.test' })
  const bob = makeUser({ id: 'u-bob', email: 'bob@acme.test' })
  const carol = makeUser({ id: 'u-carol', email: 'carol@acme.test' })
  storage.seed({
    organizations: [ORG],
    providers: [
      makeProvider({ id: 'ap-1', organizationId: ORG.id, providerKey: 'x', config: { unsolicited: options.unsolicited === true } }),
    ],
    users: [alice, bob, carol],
    userEmails: [primaryEmailOf(alice), primaryEmailOf(bob), primaryEmailOf(carol)],
    members: [
      makeMember({ id: 'm-alice', organizationId: ORG.id, userId: alice.id, email: alice.email }),
      makeMember({ id: 'm-bob', organizationId: ORG.id, userId: bob.id, email: bob.email }),
      // Carol is linked but not a member; an invite for her address is pending.
      makeMember({ id: 'm-carol-invite', organizationId: ORG.id, email: carol.email }),
    ],
    identities: [
      makeIdentity({ id: 'i-alice', authProviderId: 'ap-1', userId: alice.id, ident: 'ext-alice' }),
      makeIdentity({ id: 'i-carol', authProviderId: 'ap-1', userId: carol.id, ident: 'ext-carol' }),
    ],
  })
  const sso = createAuthPipeline({
    storage,
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { x: options.provider ?? scripted() },
    secret: 'extension points secret of at least 32 bytes',
    clock,
    urls: sentryStyleUrls('https://app.example.com'),
  })
  return { storage, sso }
}

const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

async function begin(w: World, session: SessionInfo): Promise<string> {
  const step = (await w.sso.beginLogin({ organizationId: ORG.id, session }))._unsafeUnwrap()
  if (step.kind !== 'redirect') throw new Error(`expected redirect, got ${step.kind}`)
  return step.handle
}

function code(r: { isErr(): boolean; _unsafeUnwrapErr(): AuthError }): string {
  return r.isErr() ? r._unsafeUnwrapErr().code : 'ok'
}

/** Waits until `n` callers arrived, then lets them all go on (forces the race, no sleeps). */
function barrier(n: number): () => Promise<void> {
  let arrived = 0
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  return async () => {
    arrived += 1
    if (arrived >= n) open()
    await gate
  }
}

describe('single-use responses (threat 40)', () => {
  it('a response accepted once is refused in another pipeline with ASSERTION_REPLAYED, writing nothing', async () => {
    const w = world()
    const s1 = { id: 'sess-1' }
    const first = await w.sso.advance({
      handle: await begin(w, s1),
      session: s1,
      request: post({ rid: 'r1', id: 'ext-alice', email: 'alice@acme.test' }),
    })
    expect(first._unsafeUnwrap().kind).toBe('signedIn')
    const s2 = { id: 'sess-2' }
    const handle = await begin(w, s2)
    const before = w.storage.snapshot()
    const again = await w.sso.advance({ handle, session: s2, request: post({ rid: 'r1', id: 'ext-alice', email: 'alice@acme.test' }) })
    expect(again._unsafeUnwrapErr()).toMatchObject({ code: 'ASSERTION_REPLAYED', redirect: 'orgLogin' })
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('20 concurrent pipelines posting one response: exactly one signs in', async () => {
    const w = world()
    const sessions = Array.from({ length: 20 }, (_, i) => ({ id: `sess-${i}` }))
    const handles = await Promise.all(sessions.map((s) => begin(w, s)))
    const create = w.storage.oneTimeTokens.create.bind(w.storage.oneTimeTokens)
    const wait = barrier(20)
    ;(w.storage.oneTimeTokens as { create: typeof create }).create = async (token) => {
      await wait()
      return create(token)
    }
    const results = await Promise.all(
      handles.map((handle, i) =>
        w.sso.advance({ handle, session: sessions[i]!, request: post({ rid: 'same', id: 'ext-new', email: 'new@acme.test' }) }),
      ),
    )
    const codes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
    expect(codes.filter((c) => c === 'ASSERTION_REPLAYED')).toHaveLength(19)
    expect(codes.filter((c) => c !== 'ASSERTION_REPLAYED')).toHaveLength(1)
    expect(w.storage.snapshot().identities.filter((i) => i.ident === 'ext-new')).toHaveLength(0) // the winner got a confirmation page
  })

  it('a malformed singleUse is a PROVIDER_ERROR and records nothing', async () => {
    const bad = scripted()
    const steps = bad.loginSteps({})
    const receive: ProviderStep = { id: 'x.receive', handle: async () => ({ type: 'next', singleUse: { key: '', expiresAt: Number.NaN } }) }
    const w = world({ provider: { ...bad, loginSteps: () => [steps[0]!, receive] } })
    const s = { id: 'sess' }
    const handle = await begin(w, s)
    const before = w.storage.snapshot()
    expect(code(await w.sso.advance({ handle, session: s, request: post({}) }))).toBe('PROVIDER_ERROR')
    expect(w.storage.snapshot()).toEqual(before)
  })
})

describe('per-provider field limit', () => {
  it('default 8192: a longer value is INPUT_INVALID before the step runs', async () => {
    const w = world()
    const s = { id: 'sess' }
    const handle = await begin(w, s)
    const r = await w.sso.advance({
      handle,
      session: s,
      request: post({ rid: 'a', id: 'ext-alice', email: 'alice@acme.test', pad: 'x'.repeat(9000) }),
    })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'INPUT_INVALID', redirect: 'orgLogin' })
  })

  it('a provider declaring maxFieldLength gets longer values; 1 MiB stays the ceiling', async () => {
    const w = world({ provider: scripted({ maxFieldLength: 64 * 1024 }) })
    const s = { id: 'sess' }
    const handle = await begin(w, s)
    const ok = await w.sso.advance({
      handle,
      session: s,
      request: post({ rid: 'a', id: 'ext-alice', email: 'alice@acme.test', pad: 'x'.repeat(60_000) }),
    })
    expect(ok._unsafeUnwrap().kind).toBe('signedIn')
    const big = world({ provider: scripted({ maxFieldLength: 10 * 1024 * 1024 }) })
    const h2 = await begin(big, s)
    const r = await big.sso.advance({ handle: h2, session: s, request: post({ rid: 'b', pad: 'x'.repeat(1024 * 1024 + 1) }) })
    expect(code(r)).toBe('INPUT_INVALID')
  })
})

describe('beginUnsolicitedLogin (threat 39)', () => {
  const response = (form: Record<string, string>) => post({ rid: `r-${Math.random()}`, ...form })

  it('disabled in the config, or a provider without an unsolicited entry: UNSOLICITED_RESPONSE, nothing written', async () => {
    for (const w of [world(), world({ provider: scripted({ unsolicited: undefined }), unsolicited: true })]) {
      const before = w.storage.snapshot()
      const r = await w.sso.beginUnsolicitedLogin({
        organizationId: ORG.id,
        session: { id: 's' },
        request: response({ id: 'ext-alice', email: 'alice@acme.test' }),
      })
      expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'UNSOLICITED_RESPONSE', redirect: 'orgLogin', details: { reason: 'disabled' } })
      expect(w.storage.snapshot()).toEqual(before)
    }
  })

  it('enabled: signs in the linked member; the state is marked unsolicited and consumed', async () => {
    const w = world({ unsolicited: true })
    const r = await w.sso.beginUnsolicitedLogin({
      organizationId: ORG.id,
      session: { id: 's' },
      request: response({ id: 'ext-alice', email: 'alice@acme.test' }),
    })
    const step = r._unsafeUnwrap() as Step & { kind: 'signedIn' }
    expect(step).toMatchObject({ kind: 'signedIn', userId: 'u-alice', linked: false, acceptedInviteId: null })
    const states = w.storage.snapshot().pipelineStates.map((row) => JSON.parse(row.body))
    expect(states).toHaveLength(1)
    expect(states[0]).toMatchObject({ initiation: 'unsolicited', initiatorUserId: null, phase: 'consumed', next: null })
    expect(w.storage.snapshot().identities.find((i) => i.id === 'i-alice')?.data).toEqual({ unsolicited: true })
  })

  it.each([
    ['an unknown identity (would create an account)', { id: 'ext-new', email: 'new@acme.test' }, { id: 's' }, 'not-linked'],
    [
      'an unknown identity whose email is the signed-in user (would attach)',
      { id: 'ext-bob2', email: 'bob@acme.test' },
      { id: 's', userId: 'u-bob' },
      'not-linked',
    ],
    [
      'a linked user who is not a member (would accept her invite)',
      { id: 'ext-carol', email: 'carol@acme.test' },
      { id: 's' },
      'not-a-member',
    ],
  ])('enabled, %s: UNSOLICITED_RESPONSE, nothing written', async (_name, form, session, reason) => {
    const w = world({ unsolicited: true })
    const before = w.storage.snapshot()
    const r = await w.sso.beginUnsolicitedLogin({ organizationId: ORG.id, session, request: response(form) })
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'UNSOLICITED_RESPONSE', details: { reason } })
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('the same unsolicited response twice, and 20 at once: one sign-in, the others ASSERTION_REPLAYED', async () => {
    const w = world({ unsolicited: true })
    const request = post({ rid: 'fixed', id: 'ext-alice', email: 'alice@acme.test' })
    const first = await w.sso.beginUnsolicitedLogin({ organizationId: ORG.id, session: { id: 's0' }, request })
    expect(first._unsafeUnwrap().kind).toBe('signedIn')
    const before = w.storage.snapshot()
    expect(code(await w.sso.beginUnsolicitedLogin({ organizationId: ORG.id, session: { id: 's1' }, request }))).toBe('ASSERTION_REPLAYED')
    expect(w.storage.snapshot()).toEqual(before)

    const w2 = world({ unsolicited: true })
    const burst = post({ rid: 'burst', id: 'ext-alice', email: 'alice@acme.test' })
    const create = w2.storage.oneTimeTokens.create.bind(w2.storage.oneTimeTokens)
    const wait = barrier(20)
    ;(w2.storage.oneTimeTokens as { create: typeof create }).create = async (token) => {
      await wait()
      return create(token)
    }
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        w2.sso.beginUnsolicitedLogin({ organizationId: ORG.id, session: { id: `b${i}` }, request: burst }),
      ),
    )
    const codes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
    expect(codes.filter((c) => c === 'signedIn')).toHaveLength(1)
    expect(codes.filter((c) => c === 'ASSERTION_REPLAYED')).toHaveLength(19)
    expect(w2.storage.snapshot().pipelineStates).toHaveLength(1)
  })

  it('a second factor still applies; the resumed unsolicited state takes no confirmation op', async () => {
    const w = world({ unsolicited: true })
    w.storage.seed({ users: [makeUser({ id: 'u-dave', email: 'dave@acme.test', has2fa: true })] })
    w.storage.seed({
      members: [makeMember({ id: 'm-dave', organizationId: ORG.id, userId: 'u-dave', email: 'dave@acme.test' })],
      identities: [makeIdentity({ id: 'i-dave', authProviderId: 'ap-1', userId: 'u-dave', ident: 'ext-dave' })],
    })
    const session = { id: 's' }
    const r = (
      await w.sso.beginUnsolicitedLogin({ organizationId: ORG.id, session, request: response({ id: 'ext-dave', email: 'dave@acme.test' }) })
    )._unsafeUnwrap()
    if (r.kind !== 'twoFactorRequired') throw new Error(r.kind)
    expect(code(await w.sso.finishLogin({ handle: r.resumeHandle, session, op: 'confirm' }))).toBe('OP_NOT_ALLOWED')
    const done = await w.sso.finishLogin({ handle: r.resumeHandle, session: { ...session, twoFactorUserId: 'u-dave' } })
    expect(done._unsafeUnwrap()).toMatchObject({ kind: 'signedIn', userId: 'u-dave' })
  })

  it.each([
    [{ organizationId: 'org-missing' }, 'ORGANIZATION_NOT_FOUND'],
    [{ organizationId: '' }, 'INPUT_INVALID'],
  ])('%j -> %s', async (input, expected) => {
    const w = world({ unsolicited: true })
    const r = await w.sso.beginUnsolicitedLogin({ session: { id: 's' }, request: response({}), ...input })
    expect(code(r)).toBe(expected)
  })
})

describe('serviceMetadata and setup warnings', () => {
  it('serves the provider document with the org, callback URL and (when configured) its stored config', async () => {
    const seen: unknown[] = []
    const w = world({
      provider: scripted({
        serviceMetadata: (input) => {
          seen.push(input)
          return { contentType: 'application/samlmetadata+xml', body: `<md org="${input.organization.slug}"/>` }
        },
      }),
      unsolicited: true,
    })
    const doc = (await w.sso.serviceMetadata({ organizationId: ORG.id, providerKey: 'x' }))._unsafeUnwrap()
    expect(doc).toEqual({ contentType: 'application/samlmetadata+xml', body: '<md org="acme"/>' })
    expect(seen[0]).toMatchObject({ callbackUrl: 'https://app.example.com/auth/sso/', config: { unsolicited: true } })
    expect(code(await w.sso.serviceMetadata({ organizationId: ORG.id, providerKey: 'nope' }))).toBe('PROVIDER_UNKNOWN')
    expect(code(await w.sso.serviceMetadata({ organizationId: 'org-missing', providerKey: 'x' }))).toBe('ORGANIZATION_NOT_FOUND')
    const plain = world()
    expect(code(await plain.sso.serviceMetadata({ organizationId: ORG.id, providerKey: 'x' }))).toBe('PROVIDER_UNKNOWN')
  })

  it('setup returns the provider warnings about the new config', async () => {
    const w = world({ provider: scripted({ setupWarnings: (config) => [{ code: 'X_WEAK', message: `weak ${JSON.stringify(config)}` }] }) })
    const org2 = makeOrganization({ id: 'org-2', slug: 'beta' })
    w.storage.seed({
      organizations: [org2],
      members: [makeMember({ id: 'm-owner', organizationId: org2.id, userId: 'u-bob', role: 'owner' })],
    })
    const session = { id: 's-admin', userId: 'u-bob' }
    const step = (await w.sso.beginSetup({ organizationId: org2.id, providerKey: 'x', session }))._unsafeUnwrap()
    if (step.kind !== 'redirect') throw new Error(step.kind)
    const done = await w.sso.advance({
      handle: step.handle,
      session,
      request: post({ rid: 'setup', id: 'ext-bob', email: 'bob@acme.test' }),
    })
    expect(done._unsafeUnwrap()).toMatchObject({
      kind: 'setupComplete',
      providerWarnings: [{ code: 'X_WEAK', message: 'weak {"unsolicited":false}' }],
    })
  })
})
