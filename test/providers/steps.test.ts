import { errAsync } from 'neverthrow'
import { describe, expect, it } from 'vitest'
import { createStepApi } from '../../src/engine/steps.js'
import type { HookOptions, PolicyOptions } from '../../src/engine/types.js'
import { authError } from '../../src/errors.js'
import { DUMMY_STEP_ID, dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider, ProviderStep, StepResult } from '../../src/providers/types.js'
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
    expect(thrown.code).toBe('PROVIDER_ERROR')
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
    expect(e.code).toBe('PROVIDER_RESPONSE_INVALID')
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
