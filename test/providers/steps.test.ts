import { errAsync } from 'neverthrow'
import { describe, expect, it } from 'vitest'
import { buildState, storeNewState } from '../../src/engine/pipeline-state.js'
import { createStepApi } from '../../src/engine/steps.js'
import type { HookOptions, PolicyOptions } from '../../src/engine/types.js'
import { authError } from '../../src/errors.js'
import { DUMMY_STEP_ID, dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider, ProviderStep, StepContext, StepResult } from '../../src/providers/types.js'
import { stepFingerprint } from '../../src/state/codec.js'
import { harness, recordingFinish } from '../state/harness.js'

const anon = { id: 'sess-anon' }
const adminSession = { id: 'sess-admin', userId: 'admin' }
const GET = { method: 'GET' as const, query: {}, form: {} }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

function setup(extra: Record<string, Provider> = {}, hooks?: HookOptions, policy?: PolicyOptions) {
  const h = harness({ dummy: dummyProvider(), ...extra }, { hooks, ...(policy ? { policy } : {}) })
  const api = createStepApi(h.ctx)
  const finish = recordingFinish()
  return { ...h, api, finish }
}

async function begin(s: ReturnType<typeof setup>, session: { id: string; userId?: string } = anon, next?: string) {
  const step = (await s.api.beginLogin({ organizationId: 'org-1', session, next, referrer: 'ref' }))._unsafeUnwrap()
  if (step.kind !== 'render') throw new Error(`expected render, got ${step.kind}`)
  return step
}

function storedState(s: ReturnType<typeof setup>) {
  const rows = [...s.states.rows.values()]
  expect(rows).toHaveLength(1)
  return JSON.parse(rows[0]!.body) as Record<string, unknown>
}

describe('beginLogin', () => {
  it('stores a bound login state and renders the dummy form', async () => {
    const s = setup()
    const step = await begin(s, { id: 'sess-1', userId: 'admin' }, '/organizations/org-1/issues/')
    expect(step.view).toBe('dummy-form')
    expect(step.model).toMatchObject({ action: 'https://app.example.com/auth/sso/', method: 'POST' })
    const state = storedState(s)
    expect(state).toMatchObject({
      flow: 'login',
      organizationId: 'org-1',
      authProviderId: 'ap-1',
      providerKey: 'dummy',
      initiatorUserId: 'admin',
      step: 0,
      phase: 'open',
      next: '/organizations/org-1/issues/',
      referrer: 'ref',
      fingerprint: await stepFingerprint('dummy', 'login', [DUMMY_STEP_ID]),
    })
    expect(s.finish.logins).toHaveLength(0)
  })

  it('anonymous session: initiator is null; a hostile next is dropped', async () => {
    const s = setup()
    await begin(s, anon, '//evil.com/phish')
    expect(storedState(s)).toMatchObject({ initiatorUserId: null, next: null })
  })

  it.each([
    ['org-missing', 'ORGANIZATION_NOT_FOUND'],
    ['org-new', 'PROVIDER_NOT_CONFIGURED'],
    ['org-2', 'PROVIDER_UNKNOWN'],
  ])('org %s -> %s, nothing stored', async (organizationId, code) => {
    const s = setup()
    const e = (await s.api.beginLogin({ organizationId, session: anon }))._unsafeUnwrapErr()
    expect(e.code).toBe(code)
    expect(s.states.writes).toBe(0)
  })

  it.each([
    [{ organizationId: '', session: anon }],
    [{ organizationId: 'org-1', session: {} }],
    [{ organizationId: 'x'.repeat(256), session: anon }],
    [null],
  ])('bad input %j -> INPUT_INVALID', async (input) => {
    const s = setup()
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    expect((await s.api.beginLogin(input as any))._unsafeUnwrapErr().code).toBe('INPUT_INVALID')
    expect(s.states.writes).toBe(0)
  })

  it('a throwing storage read becomes STORAGE_UNAVAILABLE', async () => {
    const s = setup()
    s.storage.getOrganization = async () => {
      throw new Error('db down')
    }
    const e = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrapErr()
    expect(e.code).toBe('STORAGE_UNAVAILABLE')
    expect(e.retryable).toBe(true)
  })
})

describe('advance (login, dummy provider)', () => {
  it('GET re-renders the form without writing', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const writes = s.states.writes
    const step = (await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'render', view: 'dummy-form', handle })
    expect(s.states.writes).toBe(writes)
  })

  it('POST without email re-renders with an error and does not advance', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const step = (await s.api.advance({ handle, request: post({ email: '  ' }), session: anon }, s.finish))._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'render', model: { error: 'email is required' } })
    expect(storedState(s).step).toBe(0)
    expect(s.finish.logins).toHaveLength(0)
  })

  it('POST with an email binds, advances and hands the identity to finishLogin', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const step = (await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: anon }, s.finish))._unsafeUnwrap()
    expect(step.kind).toBe('signedIn')
    expect(s.finish.logins).toEqual([
      { handle, session: anon, identity: { id: 'a@example.com', email: 'a@example.com', emailVerified: false, name: 'Dummy', data: {} } },
    ])
    expect(storedState(s)).toMatchObject({ step: 1, phase: 'open', data: { email: 'a@example.com' } })
  })

  it.each([
    ['on', true],
    ['true', true],
    ['1', true],
    ['TRUE', true],
    ['false', false],
    ['yes', false],
    ['', false],
    ['0', false],
  ])('email_verified=%j -> %s', async (value, expected) => {
    const s = setup()
    const { handle } = await begin(s)
    await s.api.advance({ handle, request: post({ email: 'a@example.com', email_verified: value }), session: anon }, s.finish)
    expect(s.finish.logins[0]?.identity?.emailVerified).toBe(expected)
  })

  it('posted id, legacy id and name are used', async () => {
    const s = setup()
    const { handle } = await begin(s)
    await s.api.advance(
      { handle, request: post({ email: 'a@example.com', id: 'ext-1', legacy_id: 'old-1', name: 'Ann' }), session: anon },
      s.finish,
    )
    expect(s.finish.logins[0]?.identity).toMatchObject({ id: { id: 'ext-1', legacyId: 'old-1' }, name: 'Ann' })
  })

  it('another host session -> STATE_SESSION_MISMATCH, nothing written, finish not called', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const writes = s.states.writes
    const e = (
      await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: { id: 'other' } }, s.finish)
    )._unsafeUnwrapErr()
    expect(e.code).toBe('STATE_SESSION_MISMATCH')
    expect(e.redirect).toBe('orgLogin')
    expect(s.states.writes).toBe(writes)
    expect(s.finish.logins).toHaveLength(0)
  })

  it('expired pipeline -> STATE_EXPIRED', async () => {
    const s = setup()
    const { handle } = await begin(s)
    s.clock.advance(3600 * 1000)
    expect(
      (await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: anon }, s.finish))._unsafeUnwrapErr().code,
    ).toBe('STATE_EXPIRED')
    expect(s.finish.logins).toHaveLength(0)
  })

  it('provider steps changed mid-flow -> STATE_FINGERPRINT', async () => {
    let steps: ProviderStep[] = [{ id: 'one', handle: async () => ({ type: 'render', view: 'v', model: {} }) }]
    const changing: Provider = { ...dummyProvider({ key: 'changing' }), loginSteps: () => steps }
    const s = setup({ changing })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'changing' }
    const step = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap()
    steps = [{ id: 'two', handle: async () => ({ type: 'next' }) }]
    const e = (
      await s.api.advance({ handle: (step as { handle: string }).handle, request: GET, session: anon }, s.finish)
    )._unsafeUnwrapErr()
    expect(e.code).toBe('STATE_FINGERPRINT')
  })

  it('provider row deleted mid-flow -> PROVIDER_NOT_CONFIGURED; re-keyed -> PROVIDER_MISMATCH', async () => {
    // Read on every request (configCacheMs: 0): with the engine's short-lived copy, a row changed
    // behind the engine is refused by the login transaction instead (test/engine/config-cache.test.ts).
    const s = setup({ other: dummyProvider({ key: 'other' }) }, undefined, { configCacheMs: 0 })
    const { handle } = await begin(s)
    const row = s.world.providers[0]!
    s.world.providers[0] = { ...row, providerKey: 'other' }
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr().code).toBe('PROVIDER_MISMATCH')
    s.world.providers.splice(0, 1)
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr().code).toBe('PROVIDER_NOT_CONFIGURED')
  })

  it('concurrent final POSTs: exactly one reaches finishLogin, the others get STATE_CONFLICT', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        s.api.advance({ handle, request: post({ email: `u${i}@example.com` }), session: anon }, s.finish),
      ),
    )
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    for (const r of results.filter((r) => r.isErr())) expect(r._unsafeUnwrapErr().code).toBe('STATE_CONFLICT')
    expect(s.finish.logins).toHaveLength(1)
  })

  it('a step error keeps its code and gets the flow redirect; a throwing step is PROVIDER_ERROR', async () => {
    const failing: Provider = {
      ...dummyProvider({ key: 'failing' }),
      loginSteps: () => [
        {
          id: 'f',
          handle: async (ctx) => {
            if (ctx.request.query.boom) throw new Error('kaboom')
            if (ctx.request.method === 'POST') return { type: 'error', error: authError('PROVIDER_ERROR', { cause: 'idp said no' }) }
            return { type: 'render', view: 'v', model: {} }
          },
        },
      ],
    }
    const s = setup({ failing })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'failing' }
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    const e = (await s.api.advance({ handle, request: post({}), session: anon }, s.finish))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'orgLogin' })
    expect(e.cause).toBe('idp said no')
    expect(JSON.stringify(e)).not.toContain('idp said no')
    const thrown = (
      await s.api.advance({ handle, request: { method: 'GET', query: { boom: '1' }, form: {} }, session: anon }, s.finish)
    )._unsafeUnwrapErr()
    expect(thrown).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'orgLogin', details: { step: 'f' } })
    expect((thrown.cause as Error).message).toBe('kaboom')
    expect(storedState(s).step).toBe(0)
  })

  it('oversized bound data -> PROVIDER_RESPONSE_INVALID, nothing written', async () => {
    const big: Provider = {
      ...dummyProvider({ key: 'big' }),
      loginSteps: () => [
        { id: 'b', handle: async () => ({ type: 'redirect', url: 'https://idp/', bind: { blob: 'x'.repeat(70 * 1024) } }) },
      ],
    }
    const s = setup({ big })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'big' }
    const e = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID', redirect: 'orgLogin', details: { step: 'b', reason: 'data-too-large' } })
    // The state of a login begun in this request is stored once, after its first step: a step
    // that fails stores none.
    expect([...s.states.rows.values()]).toEqual([])
  })

  describe("a later step sends the pipeline back to an earlier form step ('back')", () => {
    // A two-step provider: a form, then a step that judges the POST and sends the browser back to
    // the form with a field error bound in data (what the OIDC setup does on a refused client).
    const formThenCheck = (target = 'form'): Provider => ({
      ...dummyProvider({ key: 'formy' }),
      loginSteps: () => [
        {
          id: 'form',
          handle: async (ctx): Promise<StepResult> => {
            if (ctx.request.method === 'POST') return { type: 'next', bind: { typed: ctx.request.form.name ?? '' } }
            return { type: 'render', view: 'form', model: { errors: ctx.data.errors ?? [] }, bind: { errors: null } }
          },
        },
        {
          id: 'check',
          handle: async (ctx) =>
            ctx.data.typed === 'ok'
              ? { type: 'next' }
              : { type: 'back', step: target, bind: { errors: [{ field: 'name', message: `not ${String(ctx.data.typed)}` }] } },
        },
      ],
    })

    it('re-renders the earlier step with the errors, keeps the state open at that step, and a corrected POST finishes', async () => {
      const s = setup({ formy: formThenCheck() })
      s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'formy' }
      const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
      const again = (await s.api.advance({ handle, request: post({ name: 'bad' }), session: anon }, s.finish))._unsafeUnwrap()
      expect(again).toMatchObject({ kind: 'render', view: 'form', handle, model: { errors: [{ field: 'name', message: 'not bad' }] } })
      expect(storedState(s)).toMatchObject({ step: 0, phase: 'open', data: { typed: 'bad', errors: null } })
      expect(s.finish.logins).toHaveLength(0)
      // The form step ran with an empty GET (the POST belonged to the later step).
      const done = await s.api.advance({ handle, request: post({ name: 'ok' }), session: anon }, s.finish)
      expect(done.isOk()).toBe(true)
      expect(s.finish.logins).toHaveLength(1)
    })

    it.each([
      ['itself', 'check'],
      ['an unknown step', 'nope'],
    ])('going back to %s is a programmer error -> PROVIDER_ERROR, state unchanged', async (_name, target) => {
      const s = setup({ formy: formThenCheck(target) })
      s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'formy' }
      const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
      const e = (await s.api.advance({ handle, request: post({ name: 'bad' }), session: anon }, s.finish))._unsafeUnwrapErr()
      expect(e).toMatchObject({ code: 'PROVIDER_ERROR', details: { reason: 'invalid-back-target' } })
      expect(storedState(s).step).toBe(0)
    })

    it('two steps sending each other back cannot loop: bounded, PROVIDER_ERROR', async () => {
      const looping: Provider = {
        ...dummyProvider({ key: 'loopy' }),
        loginSteps: () => [
          {
            id: 'a',
            handle: async (ctx) =>
              ctx.request.method === 'POST' || ctx.data.seen ? { type: 'next' } : { type: 'render', view: 'v', model: {} },
          },
          { id: 'b', handle: async () => ({ type: 'back', step: 'a', bind: { seen: true } }) },
        ],
      }
      const s = setup({ loopy: looping })
      s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'loopy' }
      const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
      const e = (await s.api.advance({ handle, request: post({}), session: anon }, s.finish))._unsafeUnwrapErr()
      expect(e).toMatchObject({ code: 'PROVIDER_ERROR', details: { reason: 'step-loop' } })
      expect(s.finish.logins).toHaveLength(0)
    })
  })

  it('finishLogin errors pass through unchanged', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const finish = { ...s.finish, finishLogin: () => errAsync(authError('USER_SUSPENDED', { redirect: 'orgLogin' })) }
    expect(
      (await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: anon }, finish))._unsafeUnwrapErr().code,
    ).toBe('USER_SUSPENDED')
  })

  it.each([
    [{ method: 'PUT', query: {}, form: {} }],
    [{ method: 'POST', query: { a: ['x'] }, form: {} }],
    [{ method: 'POST', query: {}, form: { email: 'x'.repeat(9000) } }],
    [null],
  ])('malformed request %j -> INPUT_INVALID', async (request) => {
    const s = setup()
    const { handle } = await begin(s)
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    expect((await s.api.advance({ handle, request: request as any, session: anon }, s.finish))._unsafeUnwrapErr().code).toBe(
      'INPUT_INVALID',
    )
  })
})

describe('beginSetup', () => {
  it.each([
    [{ id: 's' }, 'org-new', 'dummy', 'NOT_AUTHENTICATED'],
    [{ id: 's', userId: 'ghost' }, 'org-new', 'dummy', 'NOT_AUTHENTICATED'],
    [{ id: 's', userId: 'outsider' }, 'org-new', 'dummy', 'NOT_A_MEMBER'],
    [{ id: 's', userId: 'plain' }, 'org-new', 'dummy', 'NOT_AUTHORIZED'],
    [adminSession, 'org-missing', 'dummy', 'ORGANIZATION_NOT_FOUND'],
    [adminSession, 'org-new', 'saml-nope', 'PROVIDER_UNKNOWN'],
    [adminSession, 'org-1', 'dummy', 'PROVIDER_EXISTS'],
  ])('%j on %s with %s -> %s, nothing stored', async (session, organizationId, providerKey, code) => {
    const s = setup()
    const e = (await s.api.beginSetup({ organizationId, providerKey, session }))._unsafeUnwrapErr()
    expect(e.code).toBe(code)
    // An organization that does not exist has no settings page: the root (docs/errors.md).
    expect(e.redirect).toBe(code === 'ORGANIZATION_NOT_FOUND' ? 'root' : 'authSettings')
    expect(s.states.writes).toBe(0)
  })

  it('disabled provider -> PROVIDER_DISABLED, nothing stored', async () => {
    const s = setup({}, { isProviderEnabled: (_org, key) => key !== 'dummy' })
    expect(
      (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession }))._unsafeUnwrapErr().code,
    ).toBe('PROVIDER_DISABLED')
    expect(s.states.writes).toBe(0)
  })

  it('stores a setup state bound to the admin and finishes with the bound data', async () => {
    const s = setup()
    const step = (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession }))._unsafeUnwrap()
    expect(step.kind).toBe('render')
    const handle = (step as { handle: string }).handle
    expect(storedState(s)).toMatchObject({ flow: 'setup', authProviderId: null, initiatorUserId: 'admin', organizationId: 'org-new' })

    // Another signed-in user with the same browser session cannot continue it.
    const e = (
      await s.api.advance({ handle, request: post({ email: 'x@example.com' }), session: { id: 'sess-admin', userId: 'plain' } }, s.finish)
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'UID_MISMATCH', redirect: 'authSettings' })
    const anonymous = (
      await s.api.advance({ handle, request: post({ email: 'x@example.com' }), session: { id: 'sess-admin' } }, s.finish)
    )._unsafeUnwrapErr()
    expect(anonymous.code).toBe('UID_MISMATCH')
    expect(s.finish.setups).toHaveLength(0)

    const done = (
      await s.api.advance({ handle, request: post({ email: 'admin@example.com' }), session: adminSession }, s.finish)
    )._unsafeUnwrap()
    expect(done.kind).toBe('setupComplete')
    expect(s.finish.setups).toHaveLength(1)
    expect(s.finish.setups[0]).toMatchObject({
      handle,
      session: adminSession,
      identity: { email: 'admin@example.com' },
      data: { email: 'admin@example.com' },
    })
    expect(s.finish.logins).toHaveLength(0)
  })

  it('a login pipeline only ever reaches finishLogin', async () => {
    const s = setup()
    const { handle } = await begin(s, adminSession)
    await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: adminSession }, s.finish)
    expect(s.finish.setups).toHaveLength(0)
    expect(s.finish.logins).toHaveLength(1)
  })
})

// Issue 12 item 4: what the step machine gives a step and keeps between requests, asserted where
// the mutation run of src/engine/steps.ts found it unchecked.
describe('step machine details', () => {
  /** A one-provider setup whose login steps are `steps`; `seen` collects each step context. */
  function scriptedLogin(steps: ProviderStep[], policy?: PolicyOptions) {
    const s = setup({ scripted: { ...dummyProvider({ key: 'scripted' }), loginSteps: () => steps } }, undefined, policy)
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'scripted' }
    return s
  }
  const render = async (): Promise<StepResult> => ({ type: 'render', view: 'v', model: {} })

  it('ids and session ids of up to 255 characters are accepted, longer or empty ones are INPUT_INVALID', async () => {
    const s = setup()
    const id255 = 'o'.repeat(255)
    expect((await s.api.beginLogin({ organizationId: id255, session: anon }))._unsafeUnwrapErr().code).toBe('ORGANIZATION_NOT_FOUND')
    const longSession = { id: 's'.repeat(255), userId: 'u'.repeat(255) }
    expect((await s.api.beginLogin({ organizationId: 'org-1', session: longSession })).isOk()).toBe(true)
    for (const session of [{ id: 's'.repeat(256) }, { id: 's', userId: 'u'.repeat(256) }, { id: 's', userId: '' }, { id: '' }]) {
      const e = (await s.api.beginLogin({ organizationId: 'org-1', session }))._unsafeUnwrapErr()
      expect(e).toMatchObject({ code: 'INPUT_INVALID', details: { field: 'session' } })
    }
  })

  it('a session whose userId is null is an anonymous session', async () => {
    const s = setup()
    // biome-ignore lint/suspicious/noExplicitAny: a host passing null for "no user"
    const session = { id: 'sess-null', userId: null } as any
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session }))._unsafeUnwrap() as { handle: string }
    expect(storedState(s)).toMatchObject({ initiatorUserId: null })
    expect((await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session }, s.finish)).isOk()).toBe(true)
    expect(s.finish.logins).toHaveLength(1)
  })

  it('a step gets a GET on begin, the callback URL, the clock, 32 random bytes and unsolicited false', async () => {
    const seen: StepContext[] = []
    const s = scriptedLogin([
      {
        id: 'look',
        handle: async (ctx) => {
          seen.push(ctx)
          return render()
        },
      },
    ])
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    s.clock.advance(1000)
    await s.api.advance({ handle, request: post({ a: 'b' }), session: anon }, s.finish)
    expect(seen).toHaveLength(2)
    expect(seen[0]).toMatchObject({
      flow: 'login',
      request: { method: 'GET', query: {}, form: {} },
      callbackUrl: 'https://app.example.com/auth/sso/',
      now: new Date('2026-01-01T00:00:00.000Z'),
      unsolicited: false,
      loginHint: null,
    })
    expect(seen[1]).toMatchObject({ request: { method: 'POST', query: {}, form: { a: 'b' } }, now: new Date('2026-01-01T00:00:01.000Z') })
    const random = seen[0]!.random()
    expect(random).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(seen[0]!.random()).not.toBe(random)
  })

  it.each([
    ['trimmed', '  ann@example.com ', 'ann@example.com'],
    ['320 characters', 'a'.repeat(320), 'a'.repeat(320)],
    ['321 characters', 'a'.repeat(321), null],
    ['blank', '   ', null],
    ['with a control character', 'ann\u0007@example.com', null],
    ['ending in a line separator (trimmed)', 'ann@example.com\u2028', 'ann@example.com'],
    ['with a paragraph separator', 'ann\u2029x@example.com', null],
    ['with a C1 control character', 'ann\u0085@example.com', null],
    ['not a string', 42, null],
  ])('a loginHint %s reaches the first step as it should, and no later request', async (_name, loginHint, expected) => {
    const hints: (string | null | undefined)[] = []
    const s = scriptedLogin([
      {
        id: 'hint',
        handle: async (ctx) => {
          hints.push(ctx.loginHint)
          return render()
        },
      },
    ])
    // biome-ignore lint/suspicious/noExplicitAny: hostile hint values
    const step = await s.api.beginLogin({ organizationId: 'org-1', session: anon, loginHint: loginHint as any })
    const { handle } = step._unsafeUnwrap() as { handle: string }
    await s.api.advance({ handle, request: GET, session: anon }, s.finish)
    expect(hints).toEqual([expected, null])
  })

  it('step fingerprints are remembered per flow, provider and step list, and at most 1000 of them', async () => {
    let ids = ['a', 'b']
    const s = setup({
      scripted: {
        ...dummyProvider({ key: 'scripted' }),
        loginSteps: () => ids.map((id) => ({ id, handle: render })),
        setupSteps: () => [
          { id: 'a', handle: render },
          { id: 'b', handle: render },
        ],
      },
    })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'scripted' }
    // The setup flow's fingerprint of the same provider and ids is not reused for a login.
    await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'scripted', session: adminSession })
    const size = s.ctx.memo.size
    expect(size).toBe(1)
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    expect(s.ctx.memo.size).toBe(size + 1)
    const login = [...s.states.rows.values()].map((r) => JSON.parse(r.body)).find((b) => b.flow === 'login')
    expect(login.fingerprint).toBe(await stepFingerprint('scripted', 'login', ['a', 'b']))
    // Steps ['a', 'b'] renamed ['ab'] mid-flow are another pipeline.
    ids = ['ab']
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr().code).toBe('STATE_FINGERPRINT')

    // Full: fingerprints are still computed, no longer remembered.
    const full = setup()
    for (let i = 0; i < 1000; i++) full.ctx.memo.set(`filler-${i}`, 'x')
    const step = (await full.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    expect(full.ctx.memo.size).toBe(1000)
    expect(storedState(full).fingerprint).toBe(await stepFingerprint('dummy', 'login', [DUMMY_STEP_ID]))
    expect((await full.api.advance({ handle: step.handle, request: GET, session: anon }, full.finish)).isOk()).toBe(true)
    full.ctx.memo.delete('filler-0')
    await full.api.beginLogin({ organizationId: 'org-1', session: anon })
    expect(full.ctx.memo.size).toBe(1000)
  })

  it('one request runs at most four times as many steps as the provider has', async () => {
    let runs = 0
    const s = scriptedLogin([
      {
        id: 'a',
        handle: async (ctx) => {
          runs++
          return ctx.request.method === 'POST' || ctx.data.seen ? { type: 'next' } : render()
        },
      },
      {
        id: 'b',
        handle: async () => {
          runs++
          return { type: 'back', step: 'a', bind: { seen: true } }
        },
      },
    ])
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    runs = 0
    const e = (await s.api.advance({ handle, request: post({}), session: anon }, s.finish))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'orgLogin', details: { reason: 'step-loop', step: 'a' } })
    expect(runs).toBe(8)
  })

  it('a step that moves on and a later one that renders: the state is stored at the later step', async () => {
    const s = scriptedLogin([
      { id: 'first', handle: async (ctx) => (ctx.request.method === 'POST' ? { type: 'next' } : render()) },
      { id: 'second', handle: render },
    ])
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    expect(storedState(s).step).toBe(0)
    const step = (await s.api.advance({ handle, request: post({}), session: anon }, s.finish))._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'render', handle })
    expect(storedState(s)).toMatchObject({ step: 1, data: {} })
  })

  it("a 'back' to a step that renders without binding stores the earlier step and the back step's data", async () => {
    const s = scriptedLogin([
      { id: 'form', handle: async (ctx) => (ctx.request.method === 'POST' ? { type: 'next', bind: { typed: 'x' } } : render()) },
      { id: 'check', handle: async () => ({ type: 'back', step: 'form', bind: { error: 'try again' } }) },
    ])
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    const step = (await s.api.advance({ handle, request: post({}), session: anon }, s.finish))._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'render', handle })
    expect(storedState(s)).toMatchObject({ step: 0, data: { typed: 'x', error: 'try again' } })
  })

  it('a step that binds and renders stores its data; two such requests at once: one wins, the other is STATE_CONFLICT', async () => {
    const s = scriptedLogin([
      { id: 'form', handle: async (ctx) => ({ type: 'render', view: 'v', model: {}, bind: { n: ctx.request.query.n ?? null } }) },
    ])
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    expect(storedState(s).data).toEqual({ n: null })
    const results = await Promise.all(
      ['1', '2'].map((n) => s.api.advance({ handle, request: { method: 'GET', query: { n }, form: {} }, session: anon }, s.finish)),
    )
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    expect(results.find((r) => r.isErr())?._unsafeUnwrapErr().code).toBe('STATE_CONFLICT')
    const won = results.findIndex((r) => r.isOk())
    expect(storedState(s).data).toEqual({ n: String(won + 1) })
  })

  it('a singleUse on a result that does not move on is not spent', async () => {
    const use = { key: 'response-1', expiresAt: Date.parse('2026-01-01T01:00:00.000Z') }
    const s = scriptedLogin([
      {
        id: 'once',
        handle: async (ctx) =>
          // A provider written in JavaScript can put singleUse on any result; only `next` spends it.
          (ctx.request.method === 'POST'
            ? { type: 'next', singleUse: use }
            : { type: 'render', view: 'v', model: {}, singleUse: use }) as StepResult,
      },
    ])
    const recorded: string[] = []
    Object.assign(s.ctx.tokens, { create: async (token: { purpose: string }) => void recorded.push(token.purpose) })
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish)).isOk()).toBe(true)
    expect(recorded).toEqual([])
    expect((await s.api.advance({ handle, request: post({}), session: anon }, s.finish)).isOk()).toBe(true)
    expect(recorded).toHaveLength(1)
    expect(s.finish.logins).toHaveLength(1)
  })

  it('a session that is not an object is INPUT_INVALID', async () => {
    const s = setup()
    for (const session of [null, undefined, 'sess-1']) {
      // biome-ignore lint/suspicious/noExplicitAny: hostile session values
      const e = (await s.api.beginLogin({ organizationId: 'org-1', session: session as any }))._unsafeUnwrapErr()
      expect(e).toMatchObject({ code: 'INPUT_INVALID', details: { field: 'session' } })
    }
    expect(s.states.writes).toBe(0)
  })

  it('a provider that throws outside its steps: an AuthError passes through, anything else is STORAGE_UNAVAILABLE', async () => {
    let thrown: unknown = new Error('steps unavailable')
    const s = setup({
      broken: {
        ...dummyProvider({ key: 'broken' }),
        loginSteps: () => {
          throw thrown
        },
      },
    })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'broken' }
    const e = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin', retryable: true })
    thrown = authError('PROVIDER_UNAVAILABLE', { redirect: 'root' })
    expect((await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrapErr()).toBe(thrown)
  })

  it('a malformed singleUse stops the pipeline with PROVIDER_ERROR naming the step', async () => {
    const s = scriptedLogin([{ id: 'receive', handle: async () => ({ type: 'next', singleUse: { key: '', expiresAt: Number.NaN } }) }])
    const e = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'orgLogin', details: { step: 'receive', reason: 'single-use-shape' } })
    expect(s.states.writes).toBe(0)
  })

  it('steps that need no browser: begin stores the state after them and redirects to the pipeline callback; advance finishes', async () => {
    const s = scriptedLogin([{ id: 'auto', handle: async () => ({ type: 'next', bind: { id: 'x-1', email: 'auto@example.com' } }) }])
    const step = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap()
    expect(step).toEqual({ kind: 'redirect', url: 'https://app.example.com/auth/sso/', handle: expect.any(String) })
    expect(storedState(s)).toMatchObject({ step: 1, data: { email: 'auto@example.com' } })
    expect(s.finish.logins).toHaveLength(0)
    const done = (
      await s.api.advance({ handle: (step as { handle: string }).handle, request: GET, session: anon }, s.finish)
    )._unsafeUnwrap()
    expect(done.kind).toBe('signedIn')
    expect(s.finish.logins[0]?.identity).toMatchObject({ id: 'x-1', email: 'auto@example.com' })
  })
})

// Issue 12 item 4, the mutation run of src/engine/steps.ts lines 251-350: finishing, and what
// `advance` re-reads of the org and its provider row.
describe('finishing and re-reading the provider', () => {
  function withProvider(provider: Provider, policy?: PolicyOptions) {
    const s = setup({ [provider.key]: provider }, undefined, policy)
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: provider.key }
    return s
  }
  const auto = (overrides: Partial<Provider> = {}): Provider => ({
    ...dummyProvider({ key: 'auto' }),
    loginSteps: () => [{ id: 'auto', handle: async () => ({ type: 'next', bind: { id: 'x-1', email: 'auto@example.com' } }) }],
    setupSteps: () => [{ id: 'auto', handle: async () => ({ type: 'next', bind: { id: 'x-1', email: 'auto@example.com' } }) }],
    ...overrides,
  })

  it('a finisher that failed can be retried; two retries at once reach it once, the other is STATE_CONFLICT', async () => {
    const s = setup()
    const { handle } = await begin(s)
    let calls = 0
    const flaky = {
      ...s.finish,
      finishLogin: (input: Parameters<typeof s.finish.finishLogin>[0]) =>
        ++calls === 1 ? errAsync(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin' })) : s.finish.finishLogin(input),
    }
    const first = (await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: anon }, flaky))._unsafeUnwrapErr()
    expect(first.code).toBe('STORAGE_UNAVAILABLE')
    expect(storedState(s)).toMatchObject({ step: 1, phase: 'open' })
    const retries = await Promise.all([0, 1].map(() => s.api.advance({ handle, request: GET, session: anon }, flaky)))
    expect(retries.filter((r) => r.isOk())).toHaveLength(1)
    expect(retries.find((r) => r.isErr())?._unsafeUnwrapErr().code).toBe('STATE_CONFLICT')
    expect(calls).toBe(2)
    expect(s.finish.logins).toHaveLength(1)
  })

  it('setup: buildConfig that throws is PROVIDER_ERROR, one that refuses keeps its code; the built config reaches buildIdentity', async () => {
    const configs: unknown[] = []
    let mode: 'throw' | 'refuse' | 'ok' = 'throw'
    const provider = auto({
      buildConfig: () => {
        if (mode === 'throw') throw new Error('no config')
        if (mode === 'refuse') return authError('PROVIDER_RESPONSE_INVALID')
        return { built: true }
      },
      buildIdentity: (data, config) => {
        configs.push(config)
        return { id: String(data.id), email: String(data.email), emailVerified: false, name: 'A', data: {} }
      },
    })
    const s = withProvider(provider)
    const begun = (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'auto', session: adminSession }))._unsafeUnwrap()
    expect(begun).toMatchObject({ kind: 'redirect', url: 'https://app.example.com/auth/sso/' })
    const handle = (begun as { handle: string }).handle
    const thrown = (await s.api.advance({ handle, request: GET, session: adminSession }, s.finish))._unsafeUnwrapErr()
    expect(thrown).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'authSettings', details: { stage: 'buildConfig' } })
    expect((thrown.cause as Error).message).toBe('no config')
    mode = 'refuse'
    const refused = (await s.api.advance({ handle, request: GET, session: adminSession }, s.finish))._unsafeUnwrapErr()
    expect(refused).toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID', redirect: 'authSettings' })
    expect(configs).toEqual([])
    mode = 'ok'
    expect((await s.api.advance({ handle, request: GET, session: adminSession }, s.finish))._unsafeUnwrap().kind).toBe('setupComplete')
    expect(configs).toEqual([{ built: true }])
    expect(s.finish.setups[0]).toMatchObject({ identity: { id: 'x-1' }, data: { id: 'x-1', email: 'auto@example.com' } })
  })

  it('buildIdentity that throws is IDENTITY_INVALID, one that refuses keeps its code; a login gets the row config', async () => {
    const configs: unknown[] = []
    let mode: 'throw' | 'refuse' | 'ok' = 'throw'
    const s = withProvider(
      auto({
        buildIdentity: (data, config) => {
          configs.push(config)
          if (mode === 'throw') throw new Error('bad claims')
          if (mode === 'refuse') return authError('IDENTITY_NOT_ALLOWED')
          return { id: String(data.id), email: String(data.email), emailVerified: false, name: 'A', data: {} }
        },
      }),
    )
    s.world.providers[0] = { ...s.world.providers[0]!, config: { tenant: 't-1' } }
    const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
    const thrown = (await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr()
    expect(thrown).toMatchObject({ code: 'IDENTITY_INVALID', redirect: 'orgLogin' })
    expect((thrown.cause as Error).message).toBe('bad claims')
    mode = 'refuse'
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr()).toMatchObject({
      code: 'IDENTITY_NOT_ALLOWED',
      redirect: 'orgLogin',
    })
    mode = 'ok'
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrap().kind).toBe('signedIn')
    expect(configs).toEqual([{ tenant: 't-1' }, { tenant: 't-1' }, { tenant: 't-1' }])
    expect(s.finish.setups).toHaveLength(0)
  })

  it('setup: an org deleted or a provider unregistered mid-flow -> ORGANIZATION_NOT_FOUND (root), PROVIDER_UNKNOWN', async () => {
    const s = setup()
    const step = (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession }))._unsafeUnwrap()
    const handle = (step as { handle: string }).handle
    ;(s.ctx.providers as Map<string, Provider>).delete('dummy')
    expect((await s.api.advance({ handle, request: GET, session: adminSession }, s.finish))._unsafeUnwrapErr()).toMatchObject({
      code: 'PROVIDER_UNKNOWN',
      redirect: 'authSettings',
    })
    s.world.organizations = s.world.organizations.filter((o) => o.id !== 'org-new')
    expect((await s.api.advance({ handle, request: GET, session: adminSession }, s.finish))._unsafeUnwrapErr()).toMatchObject({
      code: 'ORGANIZATION_NOT_FOUND',
      redirect: 'root',
    })
  })

  it('login: the provider row moved to another org -> ORG_MISMATCH; org deleted -> ORGANIZATION_NOT_FOUND; key unregistered -> PROVIDER_UNKNOWN', async () => {
    const s = setup({}, undefined, { configCacheMs: 0 })
    const { handle } = await begin(s)
    const advance = async () => (await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr()
    const row = s.world.providers[0]!
    s.world.providers[0] = { ...row, organizationId: 'org-new' }
    expect(await advance()).toMatchObject({ code: 'ORG_MISMATCH', redirect: 'orgLogin' })
    s.world.providers[0] = { ...row, id: 'ap-9' }
    expect(await advance()).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', redirect: 'orgLogin' })
    // The state's row still exists in the same org, but is not the org's provider any more.
    s.world.providers.push(row)
    expect(await advance()).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', redirect: 'orgLogin' })
    s.world.providers.pop()
    s.world.providers[0] = { ...row, providerKey: 'other' }
    expect(await advance()).toMatchObject({ code: 'PROVIDER_MISMATCH', redirect: 'orgLogin' })
    s.world.providers[0] = row
    ;(s.ctx.providers as Map<string, Provider>).delete('dummy')
    expect(await advance()).toMatchObject({ code: 'PROVIDER_UNKNOWN', redirect: 'orgLogin' })
    s.world.organizations = s.world.organizations.filter((o) => o.id !== 'org-1')
    expect(await advance()).toMatchObject({ code: 'ORGANIZATION_NOT_FOUND', redirect: 'root' })
  })

  it("a copy of the org naming another provider row than the state's is read again", async () => {
    const s = setup()
    const { handle } = await begin(s)
    const row = s.world.providers[0]!
    // The org set up anew (row ap-9) and the engine's copy refreshed with it...
    s.world.providers[0] = { ...row, id: 'ap-9' }
    s.clock.advance(6000)
    await s.api.beginLogin({ organizationId: 'org-1', session: anon })
    // ...then the pipeline begun with ap-1 comes back while ap-1 is the org's row again.
    s.world.providers[0] = row
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrap()).toMatchObject({ kind: 'render' })
    // The same for a copy of the same row under another provider key.
    s.world.providers[0] = { ...row, providerKey: 'other' }
    s.clock.advance(6000)
    await s.api.beginLogin({ organizationId: 'org-1', session: anon })
    s.world.providers[0] = row
    expect((await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrap()).toMatchObject({ kind: 'render' })
  })

  it('a login state that names no provider row is STATE_INVALID', async () => {
    const s = setup()
    const { handle, state } = await buildState(s.ctx, {
      flow: 'login',
      organizationId: 'org-1',
      authProviderId: null,
      providerKey: 'dummy',
      initiatorUserId: null,
      fingerprint: await stepFingerprint('dummy', 'login', [DUMMY_STEP_ID]),
      next: null,
      referrer: null,
      sessionId: anon.id,
    })
    expect((await storeNewState(s.ctx, state)).isOk()).toBe(true)
    const e = (await s.api.advance({ handle, request: GET, session: anon }, s.finish))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STATE_INVALID', redirect: 'orgLogin' })
    expect(s.finish.logins).toHaveLength(0)
  })

  it('a storage read that fails while re-reading the org or the provider row is STORAGE_UNAVAILABLE', async () => {
    const down = async () => {
      throw new Error('db down')
    }
    const login = setup({}, undefined, { configCacheMs: 0 })
    const { handle } = await begin(login)
    const advance = async () => (await login.api.advance({ handle, request: GET, session: anon }, login.finish))._unsafeUnwrapErr()
    const getOrganization = login.storage.getOrganization
    login.storage.getOrganization = down
    expect(await advance()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    login.storage.getOrganization = getOrganization
    login.world.providers[0] = { ...login.world.providers[0]!, id: 'ap-9' }
    login.storage.getAuthProviderById = down
    expect(await advance()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })

    const s = setup()
    const step = (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession }))._unsafeUnwrap()
    s.storage.getOrganization = down
    const e = (
      await s.api.advance({ handle: (step as { handle: string }).handle, request: GET, session: adminSession }, s.finish)
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'authSettings' })
  })
})

// Issue 12 item 4, the mutation run of src/engine/steps.ts lines 351-407: `start` and `beginLogin`'s
// own checks (which field, which redirect), the referrer's bound and discovery on a redirect step.
describe('beginLogin details', () => {
  /** `findVerifiedDomains` on the memory storage: `acme.test` verified by org-1; `reads` counts calls. */
  function withDomains(s: ReturnType<typeof setup>) {
    const reads: string[] = []
    const storage = s.storage as unknown as Record<string, unknown>
    storage.listOrganizationDomains = async () => []
    storage.findVerifiedDomains = async (domain: string) => {
      reads.push(domain)
      return domain === 'acme.test'
        ? [{ id: 'd-1', organizationId: 'org-1', domain, verificationToken: 't', verifiedAt: new Date(0), createdAt: new Date(0) }]
        : []
    }
    return reads
  }

  it('a refused input names its field and goes to the root page', async () => {
    const s = setup()
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    const refused = async (input: unknown) => (await s.api.beginLogin(input as any))._unsafeUnwrapErr()
    for (const input of [null, 'org-1', 42]) {
      expect(await refused(input)).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'input' } })
    }
    expect(await refused({ organizationId: '', session: anon })).toMatchObject({
      code: 'INPUT_INVALID',
      redirect: 'root',
      details: { field: 'organizationId' },
    })
    expect(await refused({ organizationId: 'org-1', session: {} })).toMatchObject({
      code: 'INPUT_INVALID',
      redirect: 'orgLogin',
      details: { field: 'session' },
    })
    expect(s.states.writes).toBe(0)
  })

  it('discovery with a bad session is refused to the root before the domain is read', async () => {
    const s = setup()
    const reads = withDomains(s)
    const e = (await s.api.beginLogin({ email: 'ada@acme.test', session: {} as never }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'session' } })
    expect(reads).toEqual([])
    expect(s.states.writes).toBe(0)
  })

  it('a referrer of up to 255 characters is stored, a longer one dropped', async () => {
    for (const [referrer, stored] of [
      ['r'.repeat(255), 'r'.repeat(255)],
      ['r'.repeat(256), null],
    ] as const) {
      const s = setup()
      ;(await s.api.beginLogin({ organizationId: 'org-1', session: anon, referrer }))._unsafeUnwrap()
      expect(storedState(s).referrer).toBe(stored)
    }
  })

  it('discovery whose steps need no browser: the redirect carries the discovery', async () => {
    const s = setup({
      auto: {
        ...dummyProvider({ key: 'auto' }),
        loginSteps: () => [{ id: 'auto', handle: async () => ({ type: 'next', bind: { id: 'x-1', email: 'auto@example.com' } }) }],
      },
    })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'auto' }
    const reads = withDomains(s)
    const step = (await s.api.beginLogin({ email: 'ada@acme.test', session: anon }))._unsafeUnwrap()
    expect(step).toEqual({
      kind: 'redirect',
      url: 'https://app.example.com/auth/sso/',
      handle: expect.any(String),
      discovery: {
        domain: 'acme.test',
        organizationId: 'org-1',
        trace: [{ rule: 'discovery.verified-domain', detail: 'acme.test is verified by organization org-1' }],
      },
    })
    expect(reads).toEqual(['acme.test'])
  })
})

// Issue 12 item 4, the mutation run of src/engine/steps.ts lines 408-500: the engine's own checks
// in beginSetup, advance and beginUnsolicitedLogin (createSso's boundary refuses most of these
// inputs first), which field and which redirect each refusal names, and failed storage reads.
describe('beginSetup, advance and beginUnsolicitedLogin details', () => {
  const down = async (): Promise<never> => {
    throw new Error('db down')
  }
  // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
  const loose = (input: unknown) => input as any

  it('beginSetup: a refused input names its field and goes to the settings page; nothing is read or stored', async () => {
    const s = setup()
    const refused = async (input: unknown) => (await s.api.beginSetup(loose(input)))._unsafeUnwrapErr()
    for (const input of [null, 'org-new', 42]) {
      expect(await refused(input)).toMatchObject({ code: 'INPUT_INVALID', redirect: 'authSettings', details: { field: 'input' } })
    }
    const good = { organizationId: 'org-new', providerKey: 'dummy', session: adminSession }
    for (const [field, value] of [
      ['organizationId', ''],
      ['organizationId', 'o'.repeat(256)],
      ['session', {}],
      ['session', { id: 's', userId: '' }],
      ['providerKey', 7],
      ['providerKey', undefined],
    ] as const) {
      expect(await refused({ ...good, [field]: value })).toMatchObject({
        code: 'INPUT_INVALID',
        redirect: 'authSettings',
        details: { field },
      })
    }
    expect(s.storage.reads).toBe(0)
    expect(s.states.writes).toBe(0)
  })

  it('beginSetup: failed reads are STORAGE_UNAVAILABLE to the settings page, nothing stored', async () => {
    const input = { organizationId: 'org-new', providerKey: 'dummy', session: adminSession }
    const a = setup()
    a.storage.getUser = down
    const failed = (await a.api.beginSetup(input))._unsafeUnwrapErr()
    expect(failed).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'authSettings' })
    expect((failed.cause as Error).message).toBe('db down')
    const b = setup({}, { isProviderEnabled: down })
    expect((await b.api.beginSetup(input))._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'authSettings' })
    const c = setup()
    c.storage.getAuthProvider = down
    expect((await c.api.beginSetup(input))._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'authSettings' })
    for (const x of [a, b, c]) expect(x.states.writes).toBe(0)
  })

  it('beginSetup: only isProviderEnabled answering true enables; the refusals go to the settings page', async () => {
    const input = { organizationId: 'org-new', providerKey: 'dummy', session: adminSession }
    // biome-ignore lint/suspicious/noExplicitAny: a host hook answering something other than a boolean
    const s = setup({}, { isProviderEnabled: (() => 'yes') as any })
    expect((await s.api.beginSetup(input))._unsafeUnwrapErr()).toMatchObject({ code: 'PROVIDER_DISABLED', redirect: 'authSettings' })
    const unknown = (await setup().api.beginSetup({ ...input, providerKey: 'nope' }))._unsafeUnwrapErr()
    expect(unknown).toMatchObject({ code: 'PROVIDER_UNKNOWN', redirect: 'authSettings' })
    const exists = (await setup().api.beginSetup({ ...input, organizationId: 'org-1', session: adminSession }))._unsafeUnwrapErr()
    expect(exists).toMatchObject({ code: 'PROVIDER_EXISTS', redirect: 'authSettings' })
  })

  it('beginSetup: a provider whose setup step list throws is STORAGE_UNAVAILABLE to the settings page', async () => {
    const s = setup({
      broken: {
        ...dummyProvider({ key: 'broken' }),
        setupSteps: () => {
          throw new Error('steps')
        },
      },
    })
    const e = (await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'broken', session: adminSession }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'authSettings' })
    expect((e.cause as Error).message).toBe('steps')
    expect(s.states.writes).toBe(0)
  })

  it('beginSetup: the stored state has no next, no referrer and no login hint', async () => {
    const s = setup()
    ;(await s.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession }))._unsafeUnwrap()
    expect(storedState(s)).toMatchObject({ flow: 'setup', next: null, referrer: null })
  })

  it('advance: a refused input names its field and goes to the root page; nothing is read or stored', async () => {
    const s = setup()
    const { handle } = await begin(s)
    const reads = s.storage.reads
    const writes = s.states.writes
    const refused = async (input: unknown) => (await s.api.advance(loose(input), s.finish))._unsafeUnwrapErr()
    for (const input of [null, 'x', 42]) {
      expect(await refused(input)).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'input' } })
    }
    expect(await refused({ handle, request: GET, session: { id: '' } })).toMatchObject({
      code: 'INPUT_INVALID',
      redirect: 'root',
      details: { field: 'session' },
    })
    for (const request of [null, undefined, 'GET', { method: 'PUT', query: {}, form: {} }, { method: 'GET', query: { a: 1 }, form: {} }]) {
      expect(await refused({ handle, request, session: anon })).toMatchObject({
        code: 'INPUT_INVALID',
        redirect: 'root',
        details: { field: 'request' },
      })
    }
    // An input whose session cannot even be read is a failure of the call, to the root page.
    const hostile = {
      handle,
      request: GET,
      get session(): never {
        throw new Error('getter')
      },
    }
    expect(await refused(hostile)).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'root' })
    expect(s.storage.reads).toBe(reads)
    expect(s.states.writes).toBe(writes)
    expect(s.finish.logins).toHaveLength(0)
  })

  it("advance: only a setup is refused here for another user; a login's initiator is the finisher's check (threat 17)", async () => {
    const s = setup()
    const { handle } = await begin(s, adminSession)
    const other = { id: adminSession.id, userId: 'plain' }
    expect((await s.api.advance({ handle, request: post({ email: 'a@example.com' }), session: other }, s.finish)).isOk()).toBe(true)
    expect(s.finish.logins).toHaveLength(1)
    expect(s.finish.logins[0]!.session).toEqual(other)
  })

  it("advance: a value over the provider's field limit is refused to the flow's page", async () => {
    const s = setup()
    const { handle } = await begin(s)
    const e = (await s.api.advance({ handle, request: post({ email: 'x'.repeat(8193) }), session: anon }, s.finish))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'INPUT_INVALID', redirect: 'orgLogin', details: { field: 'request' } })
    const setupRun = setup()
    const step = (
      await setupRun.api.beginSetup({ organizationId: 'org-new', providerKey: 'dummy', session: adminSession })
    )._unsafeUnwrap() as { handle: string }
    const e2 = (
      await setupRun.api.advance(
        { handle: step.handle, request: { method: 'GET', query: { q: 'x'.repeat(8193) }, form: {} }, session: adminSession },
        setupRun.finish,
      )
    )._unsafeUnwrapErr()
    expect(e2).toMatchObject({ code: 'INPUT_INVALID', redirect: 'authSettings', details: { field: 'request' } })
    expect(setupRun.finish.setups).toHaveLength(0)
  })

  /**
   * org-1's provider row names `uns`, whose unsolicited entry receives at `uns.receive` (after an
   * interactive `uns.go`); `linked` answers getLinkedIdentity; `calls` records its arguments.
   */
  function unsolicitedSetup(options: { steps?: ProviderStep[]; provider?: Partial<Provider>; linked?: (ident: string) => unknown } = {}) {
    const ran: string[] = []
    const steps = options.steps ?? [
      {
        id: 'uns.go',
        handle: async () => {
          ran.push('uns.go')
          return { type: 'redirect', url: 'https://idp.example/' } as StepResult
        },
      },
      {
        id: 'uns.receive',
        handle: async (c: StepContext) => {
          ran.push('uns.receive')
          return { type: 'next', bind: { id: c.request.form.id ?? '', email: c.request.form.email ?? '' } } as StepResult
        },
      },
    ]
    const provider: Provider = {
      ...dummyProvider({ key: 'uns' }),
      loginSteps: () => steps,
      unsolicited: { stepId: 'uns.receive', enabled: () => true },
      ...options.provider,
    }
    const s = setup({ uns: provider })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'uns' }
    const calls: unknown[][] = []
    const linkedOf =
      options.linked ??
      ((ident: string) =>
        ident === 'ext-admin'
          ? { identity: {}, user: { id: 'admin', isActive: true }, member: { id: 'm-admin1', organizationId: 'org-1', userId: 'admin' } }
          : null)
    ;(s.storage as unknown as Record<string, unknown>).getLinkedIdentity = async (...args: unknown[]) => {
      calls.push(args)
      return linkedOf(args[1] as string)
    }
    const begin = (input: unknown) => s.api.beginUnsolicitedLogin(loose(input), s.finish)
    const form = (f: Record<string, string>) => ({ organizationId: 'org-1', session: anon, request: post(f) })
    return { ...s, ran, calls, begin, form }
  }

  it('beginUnsolicitedLogin: a refused input names its field; the input and organization go to the root page, the rest to the login page', async () => {
    const s = unsolicitedSetup()
    const refused = async (input: unknown) => (await s.begin(input))._unsafeUnwrapErr()
    for (const input of [null, 'org-1', 42]) {
      expect(await refused(input)).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'input' } })
    }
    const good = s.form({ id: 'ext-admin', email: 'admin@example.com' })
    for (const [field, value, redirect] of [
      ['organizationId', '', 'root'],
      ['organizationId', 'o'.repeat(256), 'root'],
      ['session', {}, 'orgLogin'],
      ['session', { id: 's', userId: 'u'.repeat(256) }, 'orgLogin'],
      ['request', null, 'orgLogin'],
      ['request', { method: 'PUT', query: {}, form: {} }, 'orgLogin'],
    ] as const) {
      expect(await refused({ ...good, [field]: value })).toMatchObject({ code: 'INPUT_INVALID', redirect, details: { field } })
    }
    expect(s.storage.reads).toBe(0)
    expect(s.ran).toEqual([])
    expect(s.states.writes).toBe(0)
  })

  it('beginUnsolicitedLogin: the organization and its provider row', async () => {
    const s = unsolicitedSetup()
    const input = s.form({ id: 'ext-admin', email: 'admin@example.com' })
    const refused = async (input: unknown) => (await s.begin(input))._unsafeUnwrapErr()
    expect(await refused({ ...input, organizationId: 'org-missing' })).toMatchObject({ code: 'ORGANIZATION_NOT_FOUND', redirect: 'root' })
    expect(await refused({ ...input, organizationId: 'org-new' })).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', redirect: 'orgLogin' })
    // org-2's row names a provider this engine does not have.
    expect(await refused({ ...input, organizationId: 'org-2' })).toMatchObject({ code: 'PROVIDER_UNKNOWN', redirect: 'orgLogin' })
    // A value over the provider's field limit (8192 by default) once the provider is known.
    expect(await refused(s.form({ id: 'ext-admin', email: 'x'.repeat(8193) }))).toMatchObject({
      code: 'INPUT_INVALID',
      redirect: 'orgLogin',
      details: { field: 'request' },
    })
    expect(s.ran).toEqual([])
    expect(s.states.writes).toBe(0)
    expect(s.finish.logins).toHaveLength(0)
    const failing = unsolicitedSetup()
    failing.storage.getOrganization = down
    expect((await failing.begin(input))._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'root' })
  })

  it('beginUnsolicitedLogin: enabled only when the entry answers true; a throwing entry is disabled; a missing step is PROVIDER_ERROR', async () => {
    const input = { organizationId: 'org-1', session: anon, request: post({ id: 'ext-admin', email: 'admin@example.com' }) }
    const throwing = () => {
      throw new Error('bad config')
    }
    for (const enabled of [() => 'yes', () => 1, () => false, throwing]) {
      // biome-ignore lint/suspicious/noExplicitAny: an entry answering something other than a boolean
      const s = unsolicitedSetup({ provider: { unsolicited: { stepId: 'uns.receive', enabled: enabled as any } } })
      expect((await s.begin(input))._unsafeUnwrapErr()).toMatchObject({
        code: 'UNSOLICITED_RESPONSE',
        redirect: 'orgLogin',
        details: { reason: 'disabled' },
      })
      expect(s.ran).toEqual([])
    }
    const none = unsolicitedSetup({ provider: { unsolicited: undefined } })
    expect((await none.begin(input))._unsafeUnwrapErr()).toMatchObject({ code: 'UNSOLICITED_RESPONSE', details: { reason: 'disabled' } })
    const seenConfig: unknown[] = []
    const configured = unsolicitedSetup({
      provider: {
        unsolicited: {
          stepId: 'uns.receive',
          enabled: (config) => {
            seenConfig.push(config)
            return true
          },
        },
      },
    })
    expect((await configured.begin(input)).isOk()).toBe(true)
    expect(seenConfig).toEqual([configured.world.providers[0]!.config])
    const missing = unsolicitedSetup({ provider: { unsolicited: { stepId: 'uns.elsewhere', enabled: () => true } } })
    expect((await missing.begin(input))._unsafeUnwrapErr()).toMatchObject({
      code: 'PROVIDER_ERROR',
      redirect: 'orgLogin',
      details: { reason: 'unsolicited-step-missing' },
    })
    expect(missing.ran).toEqual([])
    for (const x of [none, missing]) expect(x.states.writes).toBe(0)
  })

  it('beginUnsolicitedLogin: the steps run from the receiving one; the state is stored after the last step and finished', async () => {
    const s = unsolicitedSetup()
    const step = (await s.begin(s.form({ id: 'ext-admin', email: 'admin@example.com' })))._unsafeUnwrap()
    expect(step.kind).toBe('signedIn')
    expect(s.ran).toEqual(['uns.receive'])
    expect(storedState(s)).toMatchObject({ flow: 'login', initiation: 'unsolicited', step: 2, initiatorUserId: null })
    expect(s.finish.logins).toHaveLength(1)
    expect(s.finish.logins[0]).toMatchObject({ identity: { id: 'ext-admin', email: 'admin@example.com' } })
  })

  it('beginUnsolicitedLogin: what each step is given, and the data bound across steps', async () => {
    const seen: StepContext[] = []
    const steps: ProviderStep[] = [
      { id: 'a.go', handle: async () => ({ type: 'redirect', url: 'https://idp.example/' }) },
      {
        id: 'a.receive',
        handle: async (c) => {
          seen.push(c)
          return { type: 'next', bind: { id: c.request.form.id ?? '', kept: 'yes' } }
        },
      },
      {
        id: 'a.nothing',
        handle: async (c) => {
          seen.push(c)
          return { type: 'next' }
        },
      },
      {
        id: 'a.email',
        handle: async (c) => {
          seen.push(c)
          return { type: 'next', bind: { email: 'admin@example.com', kept: 'overwritten' } }
        },
      },
    ]
    const s = unsolicitedSetup({ steps, provider: { unsolicited: { stepId: 'a.receive', enabled: () => true } } })
    const request = { method: 'POST' as const, query: { q: '1' }, form: { id: 'ext-admin' } }
    expect((await s.begin({ organizationId: 'org-1', session: anon, request }))._unsafeUnwrap().kind).toBe('signedIn')
    expect(seen.map((c) => c.data)).toEqual([{}, { id: 'ext-admin', kept: 'yes' }, { id: 'ext-admin', kept: 'yes' }])
    for (const c of seen) {
      expect(c).toMatchObject({
        flow: 'login',
        request,
        config: s.world.providers[0]!.config,
        organization: { id: 'org-1' },
        callbackUrl: 'https://app.example.com/auth/sso/',
        now: s.clock.now(),
        unsolicited: true,
      })
      expect(c.random()).toMatch(/^[A-Za-z0-9_-]{43}$/)
    }
    expect(storedState(s)).toMatchObject({
      flow: 'login',
      organizationId: 'org-1',
      authProviderId: 'ap-1',
      providerKey: 'uns',
      initiatorUserId: null,
      next: null,
      referrer: null,
      initiation: 'unsolicited',
      step: 4,
      fingerprint: await stepFingerprint('uns', 'login', ['a.go', 'a.receive', 'a.nothing', 'a.email']),
      data: { id: 'ext-admin', kept: 'overwritten', email: 'admin@example.com' },
    })
    expect(s.finish.logins[0]).toMatchObject({ session: anon, identity: { id: 'ext-admin', email: 'admin@example.com' } })
  })

  it('beginUnsolicitedLogin: a POST-answered provider gets the host postCallback URL when there is one', async () => {
    const seen: string[] = []
    const steps: ProviderStep[] = [
      {
        id: 'uns.receive',
        handle: async (c) => {
          seen.push(c.callbackUrl)
          return { type: 'next', bind: { id: 'ext-admin', email: 'admin@example.com' } }
        },
      },
    ]
    const plain = unsolicitedSetup({ steps, provider: { callbackMethod: 'POST' } })
    ;(await plain.begin(plain.form({})))._unsafeUnwrap()
    const post = unsolicitedSetup({ steps, provider: { callbackMethod: 'POST' } })
    const urls = post.ctx.urls as { postCallback?: (o: { slug: string }) => string }
    urls.postCallback = (o) => `https://app.example.com/acs/${o.slug}/`
    ;(await post.begin(post.form({})))._unsafeUnwrap()
    const get = unsolicitedSetup({ steps })
    ;(get.ctx.urls as typeof urls).postCallback = urls.postCallback
    ;(await get.begin(get.form({})))._unsafeUnwrap()
    expect(seen).toEqual([
      'https://app.example.com/auth/sso/',
      `https://app.example.com/acs/${post.world.organizations[0]!.slug}/`,
      'https://app.example.com/auth/sso/',
    ])
  })

  it('beginUnsolicitedLogin: a step that throws, refuses, wants the browser or binds too much: nothing written, finish not called', async () => {
    const cases: [StepContext['request']['form'], Record<string, unknown>][] = [
      [{ mode: 'throw' }, { code: 'PROVIDER_ERROR', redirect: 'orgLogin', details: { step: 'uns.receive' } }],
      [{ mode: 'error' }, { code: 'STATE_INVALID', redirect: 'orgLogin' }],
      [
        { mode: 'render' },
        { code: 'UNSOLICITED_RESPONSE', redirect: 'orgLogin', details: { reason: 'interactive-step', step: 'uns.receive' } },
      ],
      [{ mode: 'redirect' }, { code: 'UNSOLICITED_RESPONSE', details: { reason: 'interactive-step', step: 'uns.receive' } }],
      [
        { mode: 'big' },
        { code: 'PROVIDER_RESPONSE_INVALID', redirect: 'orgLogin', details: { step: 'uns.receive', reason: 'data-too-large' } },
      ],
    ]
    const steps: ProviderStep[] = [
      {
        id: 'uns.receive',
        handle: async (c): Promise<StepResult> => {
          const mode = c.request.form.mode
          if (mode === 'throw') throw new Error('boom')
          if (mode === 'error')
            return { type: 'error', error: { kind: 'authError', code: 'STATE_INVALID', message: 'x', redirect: 'root', retryable: false } }
          if (mode === 'render') return { type: 'render', view: 'v', model: {} }
          if (mode === 'redirect') return { type: 'redirect', url: 'https://idp.example/' }
          return { type: 'next', bind: { id: 'ext-admin', email: 'admin@example.com', pad: 'x'.repeat(70_000) } }
        },
      },
    ]
    for (const [form, expected] of cases) {
      const s = unsolicitedSetup({ steps })
      expect((await s.begin(s.form(form)))._unsafeUnwrapErr()).toMatchObject(expected)
      expect(s.calls).toEqual([])
      expect(s.states.writes).toBe(0)
      expect(s.finish.logins).toHaveLength(0)
    }
  })

  it('beginUnsolicitedLogin: buildIdentity gets the data and the row config; a throw, a refusal or an invalid identity writes nothing', async () => {
    const seen: unknown[][] = []
    const ok = unsolicitedSetup({
      provider: {
        buildIdentity: (data, config) => {
          seen.push([data, config])
          return { id: String(data.id), email: String(data.email) }
        },
      },
    })
    ;(await ok.begin(ok.form({ id: 'ext-admin', email: 'admin@example.com' })))._unsafeUnwrap()
    // Here, and once more when the stored state is finished.
    expect(seen[0]).toEqual([{ id: 'ext-admin', email: 'admin@example.com' }, ok.world.providers[0]!.config])
    const cases: [Partial<Provider>, Record<string, unknown>][] = [
      [
        {
          buildIdentity: () => {
            throw new Error('boom')
          },
        },
        { code: 'IDENTITY_INVALID', redirect: 'orgLogin' },
      ],
      [
        { buildIdentity: () => authError('IDENTITY_NOT_ALLOWED', { redirect: 'root' }) },
        { code: 'IDENTITY_NOT_ALLOWED', redirect: 'orgLogin' },
      ],
      [
        { buildIdentity: () => ({ id: '', email: 'admin@example.com' }) },
        { code: 'IDENTITY_INVALID', redirect: 'orgLogin', details: { issues: expect.any(Array) } },
      ],
    ]
    for (const [provider, expected] of cases) {
      const s = unsolicitedSetup({ provider })
      expect((await s.begin(s.form({ id: 'ext-admin', email: 'admin@example.com' })))._unsafeUnwrapErr()).toMatchObject(expected)
      expect(s.calls).toEqual([])
      expect(s.states.writes).toBe(0)
    }
    const thrown = unsolicitedSetup({
      provider: {
        buildIdentity: () => {
          throw new Error('boom')
        },
      },
    })
    const e = (await thrown.begin(thrown.form({})))._unsafeUnwrapErr()
    expect((e.cause as Error).message).toBe('boom')
  })

  it('beginUnsolicitedLogin: the linked identity is looked up by id, then by legacy id only when the id finds nothing', async () => {
    const legacy = (provider: Partial<Provider>, linked?: (ident: string) => unknown) =>
      unsolicitedSetup({
        provider: {
          buildIdentity: (data) => ({ id: { id: String(data.id), legacyId: 'old-admin' }, email: 'admin@example.com' }),
          ...provider,
        },
        ...(linked ? { linked } : {}),
      })
    const member = { identity: {}, user: { id: 'admin', isActive: true }, member: { id: 'm-admin1' } }
    const byLegacy = legacy({}, (ident) => (ident === 'old-admin' ? member : null))
    expect((await byLegacy.begin(byLegacy.form({ id: 'ext-new' })))._unsafeUnwrap().kind).toBe('signedIn')
    expect(byLegacy.calls).toEqual([
      ['ap-1', 'ext-new', 'org-1'],
      ['ap-1', 'old-admin', 'org-1'],
    ])
    const byId = legacy({})
    expect((await byId.begin(byId.form({ id: 'ext-admin' })))._unsafeUnwrap().kind).toBe('signedIn')
    expect(byId.calls).toEqual([['ap-1', 'ext-admin', 'org-1']])
    const noLegacy = unsolicitedSetup()
    expect((await noLegacy.begin(noLegacy.form({ id: 'ext-new', email: 'new@example.com' })))._unsafeUnwrapErr()).toMatchObject({
      code: 'UNSOLICITED_RESPONSE',
      redirect: 'orgLogin',
      details: { reason: 'not-linked' },
    })
    expect(noLegacy.calls).toEqual([['ap-1', 'ext-new', 'org-1']])
  })

  it('beginUnsolicitedLogin: an inactive or non-member owner, or a failed read, writes nothing and spends nothing', async () => {
    const creates: unknown[] = []
    const cases: [(ident: string) => unknown, Record<string, unknown>][] = [
      [() => ({ identity: {}, user: { id: 'admin', isActive: false }, member: { id: 'm' } }), { details: { reason: 'not-linked' } }],
      [() => ({ identity: {}, user: { id: 'admin', isActive: true }, member: null }), { details: { reason: 'not-a-member' } }],
      [
        () => {
          throw new Error('db down')
        },
        { code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' },
      ],
    ]
    const steps: ProviderStep[] = [
      {
        id: 'uns.receive',
        handle: async () => ({
          type: 'next',
          bind: { id: 'ext-admin', email: 'admin@example.com' },
          singleUse: { key: 'r-1', expiresAt: 0 },
        }),
      },
    ]
    for (const [linked, expected] of cases) {
      const s = unsolicitedSetup({ steps, linked })
      s.storage.oneTimeTokens.create = async (token) => {
        creates.push(token)
      }
      expect((await s.begin(s.form({})))._unsafeUnwrapErr()).toMatchObject({
        code: 'UNSOLICITED_RESPONSE',
        redirect: 'orgLogin',
        ...expected,
      })
      expect(s.states.writes).toBe(0)
    }
    expect(creates).toEqual([])
  })

  it('beginUnsolicitedLogin: each single use is spent after the checks; a malformed, replayed or unrecorded one stores no state', async () => {
    const steps: ProviderStep[] = [
      {
        id: 'uns.receive',
        handle: async (c) => ({
          type: 'next',
          bind: { id: 'ext-admin', email: 'admin@example.com' },
          singleUse: c.request.form.bad ? ({ key: 7 } as never) : { key: 'r-1', expiresAt: 0 },
        }),
      },
      { id: 'uns.more', handle: async () => ({ type: 'next', singleUse: { key: 'r-2', expiresAt: 0 } }) },
    ]
    const ok = unsolicitedSetup({ steps })
    const creates: string[] = []
    ok.storage.oneTimeTokens.create = async (token) => {
      creates.push(token.hash)
    }
    expect((await ok.begin(ok.form({})))._unsafeUnwrap().kind).toBe('signedIn')
    expect(creates).toHaveLength(2)
    expect(new Set(creates).size).toBe(2)

    const bad = unsolicitedSetup({ steps })
    expect((await bad.begin(bad.form({ bad: '1' })))._unsafeUnwrapErr()).toMatchObject({
      code: 'PROVIDER_ERROR',
      redirect: 'orgLogin',
      details: { step: 'uns.receive', reason: 'single-use-shape' },
    })
    expect(bad.states.writes).toBe(0)
    const failing = unsolicitedSetup({ steps })
    failing.storage.oneTimeTokens.create = down
    expect((await failing.begin(failing.form({})))._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    expect(failing.states.writes).toBe(0)
    expect(failing.finish.logins).toHaveLength(0)
  })

  it('beginUnsolicitedLogin: a state that cannot be stored is STORAGE_UNAVAILABLE and finish is not called', async () => {
    const s = unsolicitedSetup()
    s.states.create = down
    const e = (await s.begin(s.form({ id: 'ext-admin', email: 'admin@example.com' })))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    expect((e.cause as Error).message).toBe('db down')
    expect(s.finish.logins).toHaveLength(0)
  })

  /** org-1 on a provider whose one step records the request it is given and renders. */
  function recordingRequests(maxFieldLength?: unknown) {
    const seen: StepContext['request'][] = []
    const step: ProviderStep = {
      id: 'rec',
      handle: async (c) => {
        seen.push(c.request)
        return { type: 'render', view: 'v', model: {} }
      },
    }
    const provider = { ...dummyProvider({ key: 'rec' }), loginSteps: () => [step], maxFieldLength } as Provider
    const s = setup({ rec: provider })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'rec' }
    const send = async (request: unknown) => {
      const { handle } = (await s.api.beginLogin({ organizationId: 'org-1', session: anon }))._unsafeUnwrap() as { handle: string }
      seen.length = 0
      const r = await s.api.advance(loose({ handle, request, session: anon }), s.finish)
      if (r.isOk()) return seen[0]
      expect(r.error).toMatchObject({ code: 'INPUT_INVALID', details: { field: 'request' } })
      expect(seen).toEqual([])
      return 'refused'
    }
    return send
  }

  it('the request: GET or POST, query and form default to empty, at most 64 single string values, keys of at most 256 characters', async () => {
    const send = recordingRequests()
    expect(await send({ method: 'GET' })).toEqual({ method: 'GET', query: {}, form: {} })
    expect(await send({ method: 'POST', query: null, form: null })).toEqual({ method: 'POST', query: {}, form: {} })
    expect(await send({ method: 'POST', query: { a: '1' }, form: { b: '2' }, extra: 'x' })).toEqual({
      method: 'POST',
      query: { a: '1' },
      form: { b: '2' },
    })
    for (const method of ['get', 'PUT', undefined]) expect(await send({ method })).toBe('refused')
    for (const bad of [[], ['a'], 'a=1', 7, true]) {
      expect(await send({ method: 'GET', query: bad })).toBe('refused')
      expect(await send({ method: 'POST', form: bad })).toBe('refused')
    }
    const params = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, 'v']))
    expect(await send({ method: 'GET', query: params(64), form: params(64) })).toEqual({
      method: 'GET',
      query: params(64),
      form: params(64),
    })
    expect(await send({ method: 'GET', query: params(65) })).toBe('refused')
    expect(await send({ method: 'POST', form: params(65) })).toBe('refused')
    expect(await send({ method: 'GET', query: { ['k'.repeat(256)]: 'v' } })).toMatchObject({ query: { ['k'.repeat(256)]: 'v' } })
    expect(await send({ method: 'GET', query: { ['k'.repeat(257)]: 'v' } })).toBe('refused')
    expect(await send({ method: 'POST', form: { ['k'.repeat(257)]: 'v' } })).toBe('refused')
    for (const v of [1, null, ['a'], { a: 'b' }]) {
      expect(await send({ method: 'GET', query: { a: v } })).toBe('refused')
      expect(await send({ method: 'POST', form: { a: 'ok', b: v } })).toBe('refused')
    }
  })

  it("the request's values: the provider's maxFieldLength (a positive integer, default 8192, at most 1 MiB) and 2 MiB in all", async () => {
    const MiB = 1024 * 1024
    const fits = async (send: ReturnType<typeof recordingRequests>, length: number) => {
      const q = await send({ method: 'GET', query: { a: 'x'.repeat(length) } })
      const f = await send({ method: 'POST', form: { a: 'x'.repeat(length) } })
      expect(q === 'refused').toBe(f === 'refused')
      return q !== 'refused'
    }
    const ten = recordingRequests(10)
    expect(await fits(ten, 10)).toBe(true)
    expect(await fits(ten, 11)).toBe(false)
    expect(await ten({ method: 'POST', query: { a: 'x'.repeat(10) }, form: { a: 'x'.repeat(11) } })).toBe('refused')
    const one = recordingRequests(1)
    expect(await fits(one, 1)).toBe(true)
    expect(await fits(one, 2)).toBe(false)
    for (const declared of [undefined, 0, -5, 1.5, '10', Number.NaN]) {
      const send = recordingRequests(declared)
      expect(await fits(send, 8192)).toBe(true)
      expect(await fits(send, 8193)).toBe(false)
    }
    const big = recordingRequests(4 * MiB)
    expect(await fits(big, MiB)).toBe(true)
    expect(await fits(big, MiB + 1)).toBe(false)
    // Two values of 1 MiB are 2 MiB in all; one more character is too much.
    expect(await big({ method: 'POST', query: { a: 'x'.repeat(MiB) }, form: { b: 'x'.repeat(MiB) } })).not.toBe('refused')
    expect(await big({ method: 'POST', query: { a: 'x'.repeat(MiB) }, form: { b: 'x'.repeat(MiB), c: 'x' } })).toBe('refused')
    expect(await big({ method: 'POST', form: { a: 'x'.repeat(MiB), b: 'x'.repeat(MiB), c: 'x' } })).toBe('refused')
    expect(await big({ method: 'GET', query: { a: 'x'.repeat(MiB), b: 'x'.repeat(MiB), c: 'x' } })).toBe('refused')
  })
})

// Issue 12 item 4, the mutation run of src/engine/steps.ts lines 501-662: serviceMetadata's own
// checks and reads, a provider that throws outside its steps, and a state that cannot be stored.
describe('serviceMetadata and the last checks', () => {
  const down = async (): Promise<never> => {
    throw new Error('db down')
  }
  // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
  const loose = (input: unknown) => input as any

  /** org-1's row names `meta`, a provider with a service metadata document; `seen` collects its inputs. */
  function metadataSetup(serviceMetadata?: Provider['serviceMetadata']) {
    const seen: unknown[] = []
    const provider: Provider = {
      ...dummyProvider({ key: 'meta' }),
      serviceMetadata:
        serviceMetadata ??
        ((input) => {
          seen.push(input)
          return { contentType: 'text/xml', body: `<md ${input.organization.id}/>` }
        }),
    }
    const s = setup({ meta: provider })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'meta', config: { k: 'v' } }
    const get = (input: unknown) => s.api.serviceMetadata(loose(input))
    return { ...s, seen, get }
  }

  it('serviceMetadata: a refused input names its field and goes to the root page; nothing is read', async () => {
    const s = metadataSetup()
    const refused = async (input: unknown) => (await s.get(input))._unsafeUnwrapErr()
    for (const input of [null, 'org-1', 42]) {
      expect(await refused(input)).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'input' } })
    }
    for (const [field, value] of [
      ['organizationId', ''],
      ['organizationId', 'o'.repeat(256)],
      ['providerKey', 7],
      ['providerKey', undefined],
    ] as const) {
      expect(await refused({ organizationId: 'org-1', providerKey: 'meta', [field]: value })).toMatchObject({
        code: 'INPUT_INVALID',
        redirect: 'root',
        details: { field },
      })
    }
    expect(await refused({ organizationId: 'org-1', providerKey: 'dummy' })).toMatchObject({ code: 'PROVIDER_UNKNOWN', redirect: 'root' })
    expect(await refused({ organizationId: 'org-1', providerKey: 'nope' })).toMatchObject({ code: 'PROVIDER_UNKNOWN', redirect: 'root' })
    expect(s.storage.reads).toBe(0)
    // An input whose field cannot even be read is a failure of the call, to the root page.
    const hostile = {
      organizationId: 'org-1',
      get providerKey(): string {
        throw new Error('getter')
      },
    }
    expect(await refused(hostile)).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'root' })
  })

  it("serviceMetadata: the organization, and the stored config only when the org's row is this provider's", async () => {
    const s = metadataSetup()
    const doc = (await s.get({ organizationId: 'org-1', providerKey: 'meta' }))._unsafeUnwrap()
    expect(doc).toEqual({ contentType: 'text/xml', body: '<md org-1/>' })
    // org-2's row names another provider, org-new has none.
    ;(await s.get({ organizationId: 'org-2', providerKey: 'meta' }))._unsafeUnwrap()
    ;(await s.get({ organizationId: 'org-new', providerKey: 'meta' }))._unsafeUnwrap()
    expect(s.seen).toEqual([
      { organization: expect.objectContaining({ id: 'org-1' }), callbackUrl: 'https://app.example.com/auth/sso/', config: { k: 'v' } },
      { organization: expect.objectContaining({ id: 'org-2' }), callbackUrl: 'https://app.example.com/auth/sso/', config: null },
      { organization: expect.objectContaining({ id: 'org-new' }), callbackUrl: 'https://app.example.com/auth/sso/', config: null },
    ])
    expect((await s.get({ organizationId: 'org-missing', providerKey: 'meta' }))._unsafeUnwrapErr()).toMatchObject({
      code: 'ORGANIZATION_NOT_FOUND',
      redirect: 'root',
    })
    const noOrg = metadataSetup()
    noOrg.storage.getOrganization = down
    expect((await noOrg.get({ organizationId: 'org-1', providerKey: 'meta' }))._unsafeUnwrapErr()).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      redirect: 'root',
    })
    const noRow = metadataSetup()
    noRow.storage.getAuthProvider = down
    expect((await noRow.get({ organizationId: 'org-1', providerKey: 'meta' }))._unsafeUnwrapErr()).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      redirect: 'root',
    })
    for (const x of [noOrg, noRow]) expect(x.seen).toEqual([])
  })

  it('serviceMetadata: a document that throws is PROVIDER_ERROR with its cause; a refusal passes through unchanged', async () => {
    const thrown = metadataSetup(() => {
      throw new Error('no keys')
    })
    const e = (await thrown.get({ organizationId: 'org-1', providerKey: 'meta' }))._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'root', details: { stage: 'serviceMetadata' } })
    expect((e.cause as Error).message).toBe('no keys')
    const refusal = authError('PROVIDER_NOT_CONFIGURED', { redirect: 'orgLogin' })
    const refused = metadataSetup(() => refusal)
    expect((await refused.get({ organizationId: 'org-1', providerKey: 'meta' }))._unsafeUnwrapErr()).toBe(refusal)
  })

  it('beginUnsolicitedLogin: a provider whose step list throws, and a state that cannot be stored, are STORAGE_UNAVAILABLE to the login page', async () => {
    const s = setup({
      uns: {
        ...dummyProvider({ key: 'uns' }),
        loginSteps: () => {
          throw new Error('steps')
        },
        unsolicited: { stepId: 'uns.receive', enabled: () => true },
      },
    })
    s.world.providers[0] = { ...s.world.providers[0]!, providerKey: 'uns' }
    const e = (
      await s.api.beginUnsolicitedLogin({ organizationId: 'org-1', session: anon, request: post({}) }, s.finish)
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    expect((e.cause as Error).message).toBe('steps')
  })
})
