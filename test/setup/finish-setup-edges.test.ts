// finishSetup's edges (src/engine/setup.ts, issue 12 item 4): the input and session guards at
// their bounds, failures that are not the storage's (a throwing input, a throwing or malformed
// buildConfig), what happens to the claimed state after each failure, the provider's redaction
// and setup warnings hooks when they misbehave, the logger's warnings, and the outcome's fields.

import { errAsync } from 'neverthrow'
import { describe, expect, it, vi } from 'vitest'
import { REDACTED } from '../../src/core/setup/redact.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import { createSetupApi, type SetupApi } from '../../src/engine/setup.js'
import type { FinishSetupInput } from '../../src/engine/types.js'
import { type AuthError, authError } from '../../src/errors.js'
import { LIMITS } from '../../src/model/limits.js'
import type { StorageTx } from '../../src/ports/storage.js'
import { StorageConflictError } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider } from '../../src/providers/types.js'
import { makeProvider } from '../../src/testing/fixtures.js'
import { dataOf, expectCode, makeWorld, POST_FORM, readySetup, session, type World } from './harness.js'

/**
 * The setup API on the engine directly: createAuthPipeline's boundary (src/engine/inputs.ts)
 * checks every input first, so its suites never reach setup.ts's own guards, which hold for the
 * engine's callers inside (the step machine).
 */
function direct(w: World): SetupApi {
  return createSetupApi(w.ctx, { finishLogin: () => errAsync(authError('FLOW_MISMATCH')) })
}

/** A logger that keeps what it was told. */
function recordingLogger() {
  const warnings: { message: string; fields: unknown }[] = []
  return { warnings, warn: (message: string, fields?: unknown) => warnings.push({ message, fields }) }
}

/** The dummy provider with some of its hooks replaced. */
function custom(overrides: Partial<Provider>): Provider {
  return { ...dummyProvider({ key: 'custom', displayName: 'Custom' }), ...overrides }
}

/**
 * A buildConfig that answers `{}` to the step machine (which builds the config first, to build
 * the identity) and `later()` to finishSetup's own build, as an IdP's metadata that stopped
 * answering between the two.
 */
function secondBuild(later: () => ReturnType<Provider['buildConfig']>): Provider['buildConfig'] {
  let calls = 0
  return () => (++calls === 1 ? {} : later())
}

async function ready(w: World, opts: Parameters<typeof readySetup>[1] = {}): Promise<FinishSetupInput> {
  return readySetup(w, { providerKey: 'custom', ...opts })
}

/** Nothing of the setup was written, nothing sent. */
function expectNothingWritten(w: World, before: ReturnType<typeof dataOf>) {
  expect(dataOf(w.storage.snapshot())).toEqual(before)
  expect(w.mailer.sent).toEqual([])
  expect(w.signals.emitted).toEqual([])
}

describe('finishSetup: the input guards', () => {
  it('a missing or non-object input is INPUT_INVALID on "input", redirected to the settings page', async () => {
    const w = makeWorld()
    for (const input of [null, undefined, 'handle', 42]) {
      const error = expectCode(await direct(w).finishSetup(input as unknown as FinishSetupInput), 'INPUT_INVALID')
      expect(error.details).toEqual({ field: 'input' })
      expect(error.redirect).toBe('authSettings')
    }
  })

  it('a malformed session is INPUT_INVALID on "session" and writes nothing', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const bad: unknown[] = [
      null,
      'sess-admin',
      { ...input.session, id: '' },
      { ...input.session, id: 7 },
      { ...input.session, id: 's'.repeat(LIMITS.id + 1) },
      { ...input.session, ip: 7 },
      { ...input.session, ip: '1'.repeat(LIMITS.ip + 1) },
      { ...input.session, userId: '' },
      { ...input.session, userId: 'u'.repeat(LIMITS.id + 1) },
      { ...input.session, userId: 42 },
      // Not strings, though they have a length; not an object, though it has the fields.
      { ...input.session, id: [input.session.id] },
      { ...input.session, userId: ['admin'] },
      Object.assign(() => undefined, input.session),
    ]
    for (const s of bad) {
      const error = expectCode(await direct(w).finishSetup({ ...input, session: s as FinishSetupInput['session'] }), 'INPUT_INVALID')
      expect(error.details).toEqual({ field: 'session' })
      expect(error.redirect).toBe('authSettings')
    }
    expectNothingWritten(w, before)
    // The state was never opened: the real session still finishes.
    expect((await w.sso.finishSetup(input)).isOk()).toBe(true)
  })

  it('a session id of exactly the id limit and an address of exactly the ip limit are accepted', async () => {
    const w = makeWorld()
    const sess = session('admin', 's'.repeat(LIMITS.id), '1'.repeat(LIMITS.ip))
    const outcome = (await w.sso.finishSetup(await readySetup(w, { sess })))._unsafeUnwrap()
    expect(outcome.kind).toBe('setupComplete')
    expect(w.storage.snapshot().audit.find((a) => a.event === 'sso.enable')?.ip).toBe('1'.repeat(LIMITS.ip))
  })

  it('a session without an address (undefined or null) finishes, audited with a null ip', async () => {
    for (const ip of [undefined, null]) {
      const w = makeWorld()
      const sess = { id: 'sess-noip', userId: 'admin', ...(ip === null ? { ip: null } : {}) }
      const outcome = (await w.sso.finishSetup(await readySetup(w, { sess })))._unsafeUnwrap()
      expect(outcome.kind).toBe('setupComplete')
      const audit = w.storage.snapshot().audit
      expect(audit.map((a) => a.event)).toEqual(['org.edit', 'sso-identity.link', 'sso.enable'])
      for (const entry of audit) expect(entry.ip).toBeNull()
    }
  })

  it('a session whose user id is left out is NOT_AUTHENTICATED (not a malformed session) and writes nothing', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const { userId: _userId, ...anonymous } = input.session
    const error = expectCode(await w.sso.finishSetup({ ...input, session: anonymous }), 'NOT_AUTHENTICATED')
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
  })
})

describe('finishSetup: failures that are not the storage', () => {
  it('an input that throws while read is STORAGE_UNAVAILABLE to the settings page; a thrown AuthError comes out as it is', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const throwing = (thrown: unknown) =>
      ({
        ...input,
        get handle(): string {
          throw thrown
        },
      }) as FinishSetupInput
    const plain = expectCode(await direct(w).finishSetup(throwing(new Error('getter exploded'))), 'STORAGE_UNAVAILABLE')
    expect(plain.redirect).toBe('authSettings')
    expect(plain.retryable).toBe(true)
    const own = authError('RATE_LIMITED', { redirect: 'root', details: { marker: 'mine' } })
    expect((await direct(w).finishSetup(throwing(own)))._unsafeUnwrapErr()).toBe(own)
    expectNothingWritten(w, before)
  })

  it('a failed read before the claim is STORAGE_UNAVAILABLE and leaves the state open', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const lost = new Error('connection reset (injected)')
    const spy = vi.spyOn(w.storage, 'getAuthProvider').mockRejectedValueOnce(lost)
    const error = expectCode(await w.sso.finishSetup(input), 'STORAGE_UNAVAILABLE')
    spy.mockRestore()
    expect(error.redirect).toBe('authSettings')
    expect(error.cause).toBe(lost)
    expectNothingWritten(w, before)
    expect((await w.sso.finishSetup(input)).isOk()).toBe(true)
  })

  it('the organization deleted between begin and finish keeps its root redirect', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const getOrganization = vi.spyOn(w.storage, 'getOrganization').mockResolvedValue(null)
    const error = (await w.sso.finishSetup(input))._unsafeUnwrapErr()
    getOrganization.mockRestore()
    expect(error.code).toBe('ORGANIZATION_NOT_FOUND')
    expect(error.redirect).toBe('root')
    expect(w.storage.snapshot().providers).toEqual([])
  })

  it('a unique conflict on another row than the provider is STORAGE_CONFLICT, not PROVIDER_EXISTS', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const realTransaction = w.storage.transaction.bind(w.storage)
    const spy = vi.spyOn(w.storage, 'transaction').mockImplementation((fn) =>
      realTransaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop, receiver) {
              if (prop === 'createIdentity') return async () => Promise.reject(new StorageConflictError('auth_identity.provider_ident'))
              return Reflect.get(target, prop, receiver)
            },
          }) as StorageTx,
        ),
      ),
    )
    const error = expectCode(await w.sso.finishSetup(input), 'STORAGE_CONFLICT')
    spy.mockRestore()
    expect(error.details).toEqual({ constraint: 'auth_identity.provider_ident' })
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
  })

  it('a STORAGE_CONFLICT without details (thrown by the audit port) stays STORAGE_CONFLICT and releases the state', async () => {
    let fail = true
    const w = makeWorld({
      audit: {
        async record(entry, tx) {
          if (fail) throw authError('STORAGE_CONFLICT', { message: 'audit sink busy (injected)' })
          await tx.appendAudit(entry)
        },
      },
    })
    const input = await readySetup(w)
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.finishSetup(input), 'STORAGE_CONFLICT')
    expect(error.redirect).toBe('authSettings')
    expect(error.message).toBe('audit sink busy (injected)')
    expectNothingWritten(w, before)
    fail = false
    expect((await w.sso.finishSetup(input))._unsafeUnwrap().kind).toBe('setupComplete')
  })

  it("PROVIDER_EXISTS from a unique conflict on the provider row carries the conflict's cause", async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const cause = new Error('duplicate key value (injected)')
    const realTransaction = w.storage.transaction.bind(w.storage)
    const spy = vi.spyOn(w.storage, 'transaction').mockImplementation((fn) =>
      realTransaction((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop, receiver) {
              if (prop === 'createAuthProvider')
                return async () => Promise.reject(new StorageConflictError('auth_provider.organization', { cause }))
              return Reflect.get(target, prop, receiver)
            },
          }) as StorageTx,
        ),
      ),
    )
    const error = expectCode(await w.sso.finishSetup(input), 'PROVIDER_EXISTS')
    spy.mockRestore()
    expect(error.redirect).toBe('authSettings')
    expect(error.cause).toBeInstanceOf(StorageConflictError)
    expect((error.cause as StorageConflictError).cause).toBe(cause)
  })
})

describe('finishSetup: buildConfig and the claimed state', () => {
  it('a throwing buildConfig is PROVIDER_ERROR (stage buildConfig) and consumes the state: nothing written', async () => {
    const thrown = new Error('IdP metadata unreachable')
    const logger = recordingLogger()
    const w = makeWorld({
      logger,
      providers: {
        custom: custom({
          buildConfig: secondBuild(() => {
            throw thrown
          }),
        }),
      },
    })
    const input = await ready(w)
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.finishSetup(input), 'PROVIDER_ERROR')
    expect(error.details).toEqual({ stage: 'buildConfig' })
    expect(error.cause).toBe(thrown)
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
    expectCode(await w.sso.finishSetup(input), 'STATE_CONSUMED')
    // The state was settled (consumed) without a hitch: nothing logged.
    expect(logger.warnings).toEqual([])
  })

  it("buildConfig's own error goes to the settings page; a retryable one releases the state for a retry", async () => {
    let answer: AuthError | null = authError('PROVIDER_UNAVAILABLE', { redirect: 'orgLogin', details: { why: 'busy' } })
    let calls = 0
    const w = makeWorld({ providers: { custom: custom({ buildConfig: () => (++calls === 2 && answer) || {} }) } })
    const input = await ready(w)
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.finishSetup(input), 'PROVIDER_UNAVAILABLE')
    expect(error.redirect).toBe('authSettings')
    expect(error.details).toEqual({ why: 'busy' })
    expectNothingWritten(w, before)
    answer = null
    expect((await w.sso.finishSetup(input))._unsafeUnwrap().kind).toBe('setupComplete')
  })

  it('a non-retryable error of buildConfig consumes the state', async () => {
    const w = makeWorld({
      providers: { custom: custom({ buildConfig: secondBuild(() => authError('INPUT_INVALID', { details: { field: 'metadata' } })) }) },
    })
    const input = await ready(w)
    const error = expectCode(await w.sso.finishSetup(input), 'INPUT_INVALID')
    expect(error.redirect).toBe('authSettings')
    expect(error.details).toEqual({ field: 'metadata' })
    expectCode(await w.sso.finishSetup(input), 'STATE_CONSUMED')
  })

  it('a config that is not a JSON object within the limits is PROVIDER_RESPONSE_INVALID, nothing stored', async () => {
    const tooDeep: Record<string, unknown> = {}
    let node = tooDeep
    for (let i = 0; i < 200; i++) {
      const next: Record<string, unknown> = {}
      node.n = next
      node = next
    }
    for (const built of [null, 'config', 42, [{ a: 1 }], tooDeep]) {
      const w = makeWorld({ providers: { custom: custom({ buildConfig: secondBuild(() => built as never) }) } })
      const input = await ready(w)
      const before = dataOf(w.storage.snapshot())
      const error = expectCode(await w.sso.finishSetup(input), 'PROVIDER_RESPONSE_INVALID')
      expect(error.details).toEqual({ stage: 'buildConfig' })
      expect(error.redirect).toBe('authSettings')
      expectNothingWritten(w, before)
      expectCode(await w.sso.finishSetup(input), 'STATE_CONSUMED')
    }
  })

  it('a state that cannot be settled after a failure is logged (when there is a logger); the failure is still the answer', async () => {
    for (const logger of [recordingLogger(), undefined]) {
      const w = makeWorld({
        logger,
        providers: {
          custom: custom({
            buildConfig: secondBuild(() => {
              throw new Error('broken')
            }),
          }),
        },
      })
      const input = await ready(w)
      const states = w.storage.pipelineStates
      const cas = states.compareAndSet.bind(states)
      let calls = 0
      // The claim goes through; the consume after the failure is lost.
      const spy = vi.spyOn(states, 'compareAndSet').mockImplementation(async (...args) => {
        calls++
        if (calls === 2) throw new Error('state store down (injected)')
        return cas(...args)
      })
      expectCode(await w.sso.finishSetup(input), 'PROVIDER_ERROR')
      spy.mockRestore()
      expect(calls).toBe(2)
      expect(logger?.warnings ?? []).toEqual(
        logger ? [{ message: 'ssoflow: could not settle setup state', fields: { code: 'STORAGE_UNAVAILABLE' } }] : [],
      )
    }
  })

  it('a setup whose state is not consumed after commit is logged and still complete', async () => {
    const logger = recordingLogger()
    const w = makeWorld({ logger })
    const input = await readySetup(w)
    const states = w.storage.pipelineStates
    const cas = states.compareAndSet.bind(states)
    let calls = 0
    const spy = vi.spyOn(states, 'compareAndSet').mockImplementation(async (...args) => {
      calls++
      if (calls === 2) return false
      return cas(...args)
    })
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    spy.mockRestore()
    expect(outcome.kind).toBe('setupComplete')
    expect(w.storage.snapshot().providers).toHaveLength(1)
    expect(logger.warnings).toEqual([
      { message: 'ssoflow: setup committed but its state was not consumed', fields: { code: 'STATE_CONFLICT' } },
    ])
  })

  it('a successful setup logs nothing', async () => {
    const logger = recordingLogger()
    const w = makeWorld({ logger })
    expect((await w.sso.finishSetup(await readySetup(w))).isOk()).toBe(true)
    expect(logger.warnings).toEqual([])
  })
})

describe("finishSetup: the provider's hooks", () => {
  const config = { issuer: 'https://idp.example.com', clientSecret: 'top-secret-value', tenantHint: 'acme-internal' }

  it("the provider's redaction runs before the default one", async () => {
    const w = makeWorld({
      providers: {
        custom: custom({
          buildConfig: () => config,
          redactConfig: ({ tenantHint: _hidden, ...rest }) => rest,
        }),
      },
    })
    const outcome = (await w.sso.finishSetup(await ready(w)))._unsafeUnwrap()
    const snap = w.storage.snapshot()
    expect(snap.audit.find((a) => a.event === 'sso.enable')?.data).toEqual({
      provider: 'custom',
      config: { issuer: 'https://idp.example.com', clientSecret: REDACTED },
    })
    expect(snap.providers.find((p) => p.id === outcome.authProviderId)?.config).toEqual(config)
  })

  it('a throwing redaction falls back to the default one over the whole config', async () => {
    const w = makeWorld({
      providers: {
        custom: custom({
          buildConfig: () => config,
          redactConfig: () => {
            throw new Error('redaction bug')
          },
        }),
      },
    })
    expect((await w.sso.finishSetup(await ready(w))).isOk()).toBe(true)
    expect(w.storage.snapshot().audit.find((a) => a.event === 'sso.enable')?.data).toEqual({
      provider: 'custom',
      config: { issuer: 'https://idp.example.com', clientSecret: REDACTED, tenantHint: 'acme-internal' },
    })
  })

  it('setupWarnings: the well-formed warnings, code and message only, about the stored config', async () => {
    const seen: unknown[] = []
    const w = makeWorld({
      providers: {
        custom: custom({
          buildConfig: () => config,
          setupWarnings: (c) => {
            seen.push(c)
            return [
              { code: 'X_WEAK', message: 'weak algorithm', extra: 'dropped' },
              null,
              { code: 7, message: 'numeric code' },
              { code: 'X_NO_MESSAGE' },
              { code: 'X_SECOND', message: 'second' },
            ] as never
          },
        }),
      },
    })
    const outcome = (await w.sso.finishSetup(await ready(w)))._unsafeUnwrap()
    expect(outcome.providerWarnings).toEqual([
      { code: 'X_WEAK', message: 'weak algorithm' },
      { code: 'X_SECOND', message: 'second' },
    ])
    expect(seen).toEqual([config])
  })

  it('a throwing setupWarnings gives no warnings and the setup completes; no hook gives none', async () => {
    const w = makeWorld({
      providers: {
        custom: custom({
          setupWarnings: () => {
            throw new Error('warnings bug')
          },
        }),
      },
    })
    const outcome = (await w.sso.finishSetup(await ready(w)))._unsafeUnwrap()
    expect(outcome.providerWarnings).toEqual([])
    expect(w.storage.snapshot().providers).toHaveLength(1)
    const plain = makeWorld()
    expect((await plain.sso.finishSetup(await readySetup(plain)))._unsafeUnwrap().providerWarnings).toEqual([])
  })

  it('the outcome: the session instructions, the settings page and the ids of what was written', async () => {
    const w = makeWorld()
    const outcome = (await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap()
    const snap = w.storage.snapshot()
    expect(outcome.session).toEqual([
      { type: 'markSsoComplete', organizationId: 'org-1', at: '2026-03-01T10:00:00.000Z' },
      { type: 'clearPipeline' },
    ])
    expect(outcome.redirect).toBe('/settings/acme/auth/provider/')
    expect(outcome.authProviderId).toBe(snap.providers[0]?.id)
    expect(outcome.providerKey).toBe('dummy')
    // Five distinct ids: the provider, the identity and the three audit entries.
    const ids = [snap.providers[0]?.id, snap.identities[0]?.id, ...snap.audit.map((a) => a.id)]
    expect(new Set(ids).size).toBe(5)
  })
})

describe('finishSetup: the checks before the claim leave the state open', () => {
  it('another user of the same browser session is UID_MISMATCH to the settings page; the admin then finishes', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const error = expectCode(await w.sso.finishSetup({ ...input, session: { ...input.session, userId: 'manager' } }), 'UID_MISMATCH')
    expect(error.redirect).toBe('authSettings')
    expect(w.storage.snapshot().providers).toEqual([])
    expect((await w.sso.finishSetup(input))._unsafeUnwrap().kind).toBe('setupComplete')
  })

  it('a provider that appeared is PROVIDER_EXISTS to the settings page; once it is gone the same setup finishes', async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    await w.storage.transaction((tx) =>
      tx.createAuthProvider(makeProvider({ id: 'ap-other', organizationId: 'org-1', providerKey: 'corp' })),
    )
    const error = expectCode(await w.sso.finishSetup(input), 'PROVIDER_EXISTS')
    expect(error.redirect).toBe('authSettings')
    await w.storage.transaction((tx) => tx.deleteAuthProvider('ap-other'))
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(w.storage.snapshot().providers.map((p) => p.id)).toEqual([outcome.authProviderId])
  })

  it("a failed read in the authorization pre-check is STORAGE_UNAVAILABLE with the storage's own cause", async () => {
    const w = makeWorld()
    const input = await readySetup(w)
    const lost = new Error('users table unreachable (injected)')
    const spy = vi.spyOn(w.storage, 'getUser').mockRejectedValueOnce(lost)
    const error = expectCode(await w.sso.finishSetup(input), 'STORAGE_UNAVAILABLE')
    spy.mockRestore()
    expect(error.cause).toBe(lost)
    expect(error.redirect).toBe('authSettings')
    expect((await w.sso.finishSetup(input)).isOk()).toBe(true)
  })
})

describe('finishSetup after the engine was configured anew (same storage and secret)', () => {
  it('a provider no longer registered is PROVIDER_UNKNOWN to the settings page, nothing written', async () => {
    const w = makeWorld({ providers: { custom: custom({}) } })
    const input = await ready(w)
    const before = dataOf(w.storage.snapshot())
    const redeployed = createAuthPipeline({ ...w.options, providers: { dummy: dummyProvider() } })
    const error = expectCode(await redeployed.finishSetup(input), 'PROVIDER_UNKNOWN')
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
  })

  it('a provider whose setup steps changed (same count, another id) refuses the old state, nothing written', async () => {
    const w = makeWorld({ providers: { custom: custom({}) } })
    const input = await ready(w)
    const before = dataOf(w.storage.snapshot())
    const [step] = custom({}).setupSteps()
    if (!step) throw new Error('the dummy provider has one setup step')
    const changed = custom({ setupSteps: () => [{ ...step, id: 'custom.ask-email-v2' }] })
    const redeployed = createAuthPipeline({ ...w.options, providers: { custom: changed } })
    const error = (await redeployed.finishSetup(input))._unsafeUnwrapErr()
    expect(error.code).toMatch(/^STATE_/)
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
  })
})

describe("finishSetup: the config's trust policy (issue 13)", () => {
  it('a config whose trust policy is refused is never stored: INPUT_INVALID, the state consumed', async () => {
    const w = makeWorld({ providers: { custom: custom({ trustPolicy: () => ({ name: 'x', emailVerified: 'sometimes' }) as never }) } })
    const input = await ready(w)
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.finishSetup(input), 'INPUT_INVALID')
    expect(error.redirect).toBe('authSettings')
    expectNothingWritten(w, before)
    expectCode(await w.sso.finishSetup(input), 'STATE_CONSUMED')
  })
})

describe('finishSetup and the engine copy of the organization (config-cache.ts)', () => {
  it('a setup drops the copy of the provider row it replaced: the next login uses the new provider', async () => {
    const w = makeWorld({ configCacheMs: 60_000 })
    await w.storage.transaction((tx) =>
      tx.createAuthProvider(makeProvider({ id: 'ap-old', organizationId: 'org-1', providerKey: 'corp', config: {} })),
    )
    // A login start keeps a copy of org-1 and its provider row.
    const first = (await w.sso.beginLogin({ organizationId: 'org-1', session: session(null, 'sess-a') }))._unsafeUnwrap()
    expect(first.kind).toBe('render')
    // The row goes behind the engine's back (another instance's disable); then a setup here.
    await w.storage.transaction((tx) => tx.deleteAuthProvider('ap-old'))
    const outcome = (await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap()
    expect(outcome.providerKey).toBe('dummy')
    // The admin signs in with the identity the setup linked, through the new provider.
    const sess = session('admin', 'sess-b')
    const begun = (await w.sso.beginLogin({ organizationId: 'org-1', session: sess }))._unsafeUnwrap()
    if (begun.kind !== 'render') throw new Error(`expected the form, got ${begun.kind}`)
    const done = await w.sso.advance({
      handle: begun.handle,
      request: POST_FORM({ id: 'ext-admin', email: 'admin@example.com' }),
      session: sess,
    })
    expect(done._unsafeUnwrap()).toMatchObject({ kind: 'signedIn', organizationId: 'org-1', userId: 'admin' })
  })
})
