// Issue 12 item 4 (src/engine/context.ts): what resolveContext fills in. The documented defaults
// of every policy value and hook (src/engine/types.ts, @defaultValue), the values a host gives
// kept as given, and where the states, one-time tokens and audit rows go (the storage's own
// stores, used inside its transactions, or stores apart).
import { describe, expect, it } from 'vitest'
import { resolveContext } from '../../src/engine/context.js'
import type { AuthPipelineOptions } from '../../src/engine/types.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { Member, Organization } from '../../src/model/records.js'
import { systemClock, ulidIds } from '../../src/ports/clock.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  dummyProvider,
  fixedClock,
  makeMember,
  makeOrganization,
  sentryStyleUrls,
  sequentialIds,
} from '../../src/testing/index.js'

function options(extra: Partial<AuthPipelineOptions> = {}): AuthPipelineOptions {
  return {
    storage: createMemoryStorage(),
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 'context test secret of thirty-two bytes or more',
    urls: sentryStyleUrls('https://app.example.com'),
    ...extra,
  }
}

const org: Organization = makeOrganization({ id: 'org1', slug: 'acme', name: 'Acme' })
const memberAs = (role: string): Member => makeMember({ id: `m-${role}`, organizationId: org.id, userId: `u-${role}`, role })

describe('resolveContext', () => {
  it('fills the documented policy defaults', () => {
    expect(resolveContext(options()).policy).toEqual({
      stateTtlSeconds: 3600,
      verificationTtlSeconds: 600,
      verificationResendSeconds: 600,
      verificationDailyLimit: 5,
      memberPageSize: 500,
      newUser: 'confirm',
      identitiesOnClaim: 'keep',
      rejoinOnLogin: true,
      afterCommitTimeoutMs: 10_000,
      identityRefreshSeconds: 3600,
      configCacheMs: 5000,
    })
  })

  it('keeps every policy value a host gives, the falsy ones (0, false) included', () => {
    const policy = {
      stateTtlSeconds: 60,
      verificationTtlSeconds: 120,
      verificationResendSeconds: 30,
      verificationDailyLimit: 2,
      memberPageSize: 7,
      newUser: 'create',
      identitiesOnClaim: 'remove',
      rejoinOnLogin: false,
      afterCommitTimeoutMs: 250,
      identityRefreshSeconds: 0,
      configCacheMs: 0,
    } as const
    expect(resolveContext(options({ policy })).policy).toEqual(policy)
  })

  it('default hooks: only owners and managers may set up SSO; every provider enabled; no member limit; no rate limit', async () => {
    const { hooks } = resolveContext(options())
    const allowed = await Promise.all(
      ['owner', 'manager', 'admin', 'member', 'billing'].map(async (role) => [
        role,
        await hooks.authorize({ member: memberAs(role), organization: org } as never),
      ]),
    )
    expect(allowed).toEqual([
      ['owner', true],
      ['manager', true],
      ['admin', false],
      ['member', false],
      ['billing', false],
    ])
    expect(await hooks.isProviderEnabled(org, 'dummy')).toBe(true)
    // The engine counts only an answer of exactly true as reached or limited.
    expect(await hooks.isMemberLimitReached(org)).not.toBe(true)
    expect(await hooks.isRateLimited({ action: 'accountVerificationMail' } as never)).not.toBe(true)
  })

  it("a host's hooks, clock, ids and logger are used as given; without them the system clock, ULIDs and no logger", () => {
    const authorize = () => true
    const isProviderEnabled = () => false
    const isMemberLimitReached = () => true
    const isRateLimited = () => true
    const clock = fixedClock('2026-03-01T12:00:00.000Z')
    const ids = sequentialIds('t')
    const logger = { warn: () => {} }
    const ctx = resolveContext(
      options({ hooks: { authorize, isProviderEnabled, isMemberLimitReached, isRateLimited }, clock, ids, logger }),
    )
    expect(ctx.hooks).toEqual({ authorize, isProviderEnabled, isMemberLimitReached, isRateLimited })
    expect(ctx.clock).toBe(clock)
    expect(ctx.ids).toBe(ids)
    expect(ctx.logger).toBe(logger)
    const bare = resolveContext(options())
    expect(bare.clock).toBe(systemClock)
    expect(bare.ids).toBe(ulidIds)
    expect(bare.logger).toBeNull()
  })

  it("states and one-time tokens: the storage's own stores unless others are given (then used outside its transactions)", () => {
    const storage = createMemoryStorage()
    const own = resolveContext(options({ storage }))
    expect(own.states).toBe(storage.pipelineStates)
    expect(own.tokens).toBe(storage.oneTimeTokens)
    expect(own.statesInStorage).toBe(true)
    expect(own.tokensInStorage).toBe(true)
    // The storage's own stores passed explicitly are still the storage's.
    const same = resolveContext(options({ storage, states: storage.pipelineStates, tokens: storage.oneTimeTokens }))
    expect(same.statesInStorage).toBe(true)
    expect(same.tokensInStorage).toBe(true)
    const other = createMemoryStorage()
    const apart = resolveContext(options({ storage, states: other.pipelineStates, tokens: other.oneTimeTokens }))
    expect(apart.states).toBe(other.pipelineStates)
    expect(apart.tokens).toBe(other.oneTimeTokens)
    expect(apart.statesInStorage).toBe(false)
    expect(apart.tokensInStorage).toBe(false)
  })

  it("audit rows: through the storage's transaction by default; a host's audit port is used as given", async () => {
    const ctx = resolveContext(options())
    expect(ctx.auditInStorage).toBe(true)
    const appended: unknown[] = []
    const entry = { event: 'member.add' } as never
    await ctx.audit.record(entry, { appendAudit: async (e: unknown) => void appended.push(e) } as never)
    expect(appended).toEqual([entry])
    const audit = { record: async () => {} }
    const hosted = resolveContext(options({ audit }))
    expect(hosted.audit).toBe(audit)
    expect(hosted.auditInStorage).toBe(false)
  })

  it('the providers are keyed as registered; the storage, mailer, signals and urls are the ones given', () => {
    const o = options({ providers: { dummy: dummyProvider(), other: dummyProvider({ key: 'other' }) } })
    const ctx = resolveContext(o)
    expect([...ctx.providers.keys()]).toEqual(['dummy', 'other'])
    expect(ctx.providers.get('other')).toBe(o.providers.other)
    expect(ctx.storage).toBe(o.storage)
    expect(ctx.mailer).toBe(o.mailer)
    expect(ctx.signals).toBe(o.signals)
    expect(ctx.urls).toBe(o.urls)
  })
})
