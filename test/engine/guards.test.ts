// The engine's small guards (src/engine/trust.ts, single-use.ts, redirect.ts): a provider's trust
// policy checked for its config, the shape and recording of single-use IdP responses (threat
// 40), and the exit page an error is sent to. Issue 12 item 4.
import { describe, expect, it } from 'vitest'
import type { EngineContext } from '../../src/engine/context.js'
import { stateErrorRedirect, withRedirect } from '../../src/engine/redirect.js'
import { recordSingleUse, SINGLE_USE_PURPOSE, validSingleUse } from '../../src/engine/single-use.js'
import { resolveTrust } from '../../src/engine/trust.js'
import { authError } from '../../src/errors.js'
import { DEFAULT_TRUST_POLICY } from '../../src/model/trust.js'
import { type OneTimeTokenRecord, StorageConflictError } from '../../src/ports/storage.js'
import type { Provider } from '../../src/providers/types.js'
import { sha256Hex } from '../../src/state/crypto.js'

const withPolicy = (trustPolicy?: Provider['trustPolicy']) => ({ key: 'p', trustPolicy }) as unknown as Provider

describe('resolveTrust', () => {
  it('a provider without a policy: the default', () => {
    expect(resolveTrust(withPolicy(), {}, 'orgLogin')._unsafeUnwrap()).toBe(DEFAULT_TRUST_POLICY)
  })

  it("the provider's policy for this config, parsed", () => {
    let seen: unknown = null
    const policy = { name: 'acme', emailVerified: 'claim', domains: ['acme.com'], inviteMatch: false } as const
    const config = { issuer: 'x' }
    const out = resolveTrust(
      withPolicy((c) => {
        seen = c
        return { ...policy, domains: [...policy.domains] }
      }),
      config,
      'orgLogin',
    )
    expect(seen).toBe(config)
    expect(out._unsafeUnwrap()).toEqual(policy)
  })

  it('the same policy object is parsed once, and again whenever it changed (issue 10 item 2)', () => {
    const shared: Record<string, unknown> = { name: 'acme', emailVerified: 'claim', domains: ['acme.com'], inviteMatch: false }
    const provider = withPolicy(() => shared as never)
    const first = resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrap()
    expect(resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrap()).toBe(first)
    expect(Object.isFrozen(first) && Object.isFrozen(first.domains)).toBe(true)
    // Changed in place: parsed again, and refused when it no longer parses.
    shared.inviteMatch = true
    expect(resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrap()).toMatchObject({ inviteMatch: true })
    shared.emailVerified = 'never'
    expect(resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrapErr()).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED' })
    shared.emailVerified = 'claim'
    shared.extra = undefined // an unknown key, even one JSON text leaves out
    expect(resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrapErr()).toMatchObject({ details: { reason: 'trust-policy' } })
    delete shared.extra
    ;(shared.domains as string[]).push('ACME.org')
    expect(resolveTrust(provider, {}, 'orgLogin')._unsafeUnwrapErr()).toMatchObject({ details: { field: 'trust.domains.1' } })
  })

  it('a policy that throws: PROVIDER_ERROR at the stage, with the cause', () => {
    const boom = new Error('bad config')
    const e = resolveTrust(
      withPolicy(() => {
        throw boom
      }),
      {},
      'authSettings',
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', redirect: 'authSettings', details: { stage: 'trustPolicy' } })
    expect(e.cause).toBe(boom)
  })

  it("a policy that returns an AuthError: that error, sent to the call's exit page", () => {
    const refused = authError('PROVIDER_NOT_CONFIGURED', { redirect: 'root', details: { why: 'x' } })
    const e = resolveTrust(
      withPolicy(() => refused),
      {},
      'orgLogin',
    )._unsafeUnwrapErr()
    expect(e).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', redirect: 'orgLogin', details: { why: 'x' } })
  })

  it('a policy that does not parse: PROVIDER_NOT_CONFIGURED at login, INPUT_INVALID at setup, naming the fields', () => {
    const bad = () => ({ name: 'x', emailVerified: 'never', inviteMatch: true }) as never
    const atLogin = resolveTrust(withPolicy(bad), {}, 'orgLogin')._unsafeUnwrapErr()
    expect(atLogin).toMatchObject({
      code: 'PROVIDER_NOT_CONFIGURED',
      redirect: 'orgLogin',
      details: { reason: 'trust-policy', field: 'trust.inviteMatch' },
    })
    expect(atLogin.details?.issues).toEqual([expect.objectContaining({ field: 'trust.inviteMatch' })])
    const atSetup = resolveTrust(withPolicy(bad), {}, 'authSettings')._unsafeUnwrapErr()
    expect(atSetup).toMatchObject({
      code: 'INPUT_INVALID',
      redirect: 'authSettings',
      details: { reason: 'trust-policy', field: 'trust.inviteMatch' },
    })
  })

  it('at most ten issues are reported', () => {
    const domains = Array.from({ length: 30 }, (_, i) => `-bad${i}-`)
    const e = resolveTrust(
      withPolicy(() => ({ name: 'x', emailVerified: 'claim', inviteMatch: true, domains }) as never),
      {},
      'orgLogin',
    )
    const issues = e._unsafeUnwrapErr().details?.issues as { field: string }[]
    expect(issues).toHaveLength(10)
    expect(e._unsafeUnwrapErr().details?.field).toBe(issues[0]?.field)
  })
})

describe('single-use responses', () => {
  it('validSingleUse: a key of 1-1024 characters and a finite expiry', () => {
    expect(validSingleUse({ key: 'k', expiresAt: 0 })).toBe(true)
    expect(validSingleUse({ key: 'k'.repeat(1024), expiresAt: 1 })).toBe(true)
    for (const bad of [
      null,
      undefined,
      'k',
      42,
      {},
      { key: '', expiresAt: 1 },
      { key: 'k'.repeat(1025), expiresAt: 1 },
      { key: 7, expiresAt: 1 },
      { key: 'k' },
      { key: 'k', expiresAt: '1' },
      { key: 'k', expiresAt: Number.NaN },
      { key: 'k', expiresAt: Number.POSITIVE_INFINITY },
    ]) {
      expect(validSingleUse(bad), JSON.stringify(bad) ?? String(bad)).toBe(false)
    }
  })

  function ctxWith(now: number, create: (t: OneTimeTokenRecord) => Promise<void>): EngineContext {
    return { clock: { now: () => new Date(now) }, tokens: { create } } as unknown as EngineContext
  }

  it('records a hash of provider and key (never the key), held at least a minute', async () => {
    const rows: OneTimeTokenRecord[] = []
    const now = Date.parse('2026-01-01T00:00:00Z')
    const ctx = ctxWith(now, async (t) => {
      rows.push(t)
    })
    expect((await recordSingleUse(ctx, 'saml', { key: 'assertion-1', expiresAt: now + 10_000 }, 'orgLogin')).isOk()).toBe(true)
    expect((await recordSingleUse(ctx, 'saml', { key: 'assertion-2', expiresAt: now + 600_000 }, 'orgLogin')).isOk()).toBe(true)
    expect(rows[0]).toEqual({
      hash: await sha256Hex('ssoflow:single-use:saml\u0000assertion-1'),
      purpose: SINGLE_USE_PURPOSE,
      payload: '{}',
      expiresAt: new Date(now + 60_000),
    })
    expect(rows[1]?.expiresAt).toEqual(new Date(now + 600_000))
    expect(JSON.stringify(rows)).not.toContain('assertion')
    expect(SINGLE_USE_PURPOSE).toBe('single-use-response')
  })

  it('recorded before: ASSERTION_REPLAYED; a store failure: STORAGE_UNAVAILABLE; both to the given page', async () => {
    const conflict = ctxWith(0, async () => {
      throw new StorageConflictError('one_time_token.hash')
    })
    expect((await recordSingleUse(conflict, 'saml', { key: 'a', expiresAt: 0 }, 'orgLogin'))._unsafeUnwrapErr()).toMatchObject({
      code: 'ASSERTION_REPLAYED',
      redirect: 'orgLogin',
    })
    const down = ctxWith(0, async () => {
      throw new Error('redis down')
    })
    expect((await recordSingleUse(down, 'saml', { key: 'a', expiresAt: 0 }, 'authSettings'))._unsafeUnwrapErr()).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      redirect: 'authSettings',
    })
  })
})

describe('error redirects', () => {
  it("withRedirect: the call's page, code, message, details and cause kept", () => {
    const cause = new Error('x')
    const e = authError('NOT_A_MEMBER', { redirect: 'root', message: 'custom', details: { a: 1 }, cause })
    const moved = withRedirect(e, 'authSettings')
    expect(moved).toMatchObject({ code: 'NOT_A_MEMBER', redirect: 'authSettings', message: 'custom', details: { a: 1 } })
    expect(moved.cause).toBe(cause)
    // Already there: the same error.
    expect(withRedirect(moved, 'authSettings')).toBe(moved)
  })

  it('errors about an unknown organization keep root', () => {
    for (const code of ['ORGANIZATION_NOT_FOUND', 'STATE_NOT_FOUND', 'STATE_VERSION'] as const) {
      const e = authError(code, { redirect: 'root' })
      expect(withRedirect(e, 'orgLogin')).toBe(e)
    }
    expect(withRedirect(authError('STATE_EXPIRED', { redirect: 'root' }), 'orgLogin').redirect).toBe('orgLogin')
  })

  it('stateErrorRedirect: an unreadable state keeps root; a readable one goes to the flow page', () => {
    const unreadable = authError('STATE_INVALID', { redirect: 'root' })
    expect(stateErrorRedirect(unreadable, 'orgLogin')).toBe(unreadable)
    const readable = authError('STATE_EXPIRED', { redirect: 'orgLogin' })
    expect(stateErrorRedirect(readable, 'authSettings').redirect).toBe('authSettings')
  })
})
