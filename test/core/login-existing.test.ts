// decideExisting (spec 3.2-3.3) through decideLogin, as a pure function: the refresh window and
// its data comparison, the legacy id rewrite, rejoining, the decision and its trace. Issue 12
// item 4 (mutation run).
import { describe, expect, it } from 'vitest'
import { decideLogin } from '../../src/core/login/decide.js'
import type { LinkedFacts, LoginFacts } from '../../src/core/login/facts.js'
import type { JsonObject } from '../../src/model/identity.js'
import { type Member, NO_FLAGS, type User } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { ORG, PROVIDER } from '../login/harness.js'
import { facts, NOW } from './login-facts.js'

const ada = makeUser({ id: 'ada', email: 'ada@corp.example' })
const member = makeMember({ id: 'm-ada', organizationId: ORG.id, userId: 'ada', flags: { ...NO_FLAGS, ssoLinked: true } })
const ago = (s: number) => new Date(NOW.getTime() - s * 1000)
const row = (over: Partial<LinkedFacts['identity']> = {}) =>
  makeIdentity({ id: 'ai-ada', authProviderId: PROVIDER.id, userId: 'ada', ident: 'ext-ada', data: { a: 1 }, ...over })

function linkedFacts(
  o: {
    user?: User
    via?: LinkedFacts['via']
    identity?: Partial<LinkedFacts['identity']>
    member?: Member | null
    policy?: Partial<LoginFacts['policy']>
    extra?: Partial<LoginFacts>
  } = {},
): LoginFacts {
  const base = facts()
  return facts({
    linked: { identity: row(o.identity), user: o.user ?? ada, via: o.via ?? 'ident' },
    members: new Map([['ada', o.member === undefined ? member : o.member]]),
    policy: { ...base.policy, ...o.policy },
    ...o.extra,
  })
}
const fresh = (data: JsonObject, stored: JsonObject, over: Partial<LinkedFacts['identity']> = {}, seconds = 60) =>
  decideLogin(
    linkedFacts({
      identity: { data: stored, lastVerified: ago(10), lastSynced: ago(10), ...over },
      policy: { identityRefreshSeconds: seconds },
    }),
    () => data,
  )
const isFresh = (...args: Parameters<typeof fresh>) => fresh(...args).txEffects.length === 0

describe('existing identity: the refresh window (policy.identityRefreshSeconds)', () => {
  it('fresh: no write, the trace says why', () => {
    const plan = fresh({ a: 1 }, { a: 1 })
    expect(plan.txEffects).toEqual([])
    expect(plan.trace).toContainEqual({
      rule: 'existing.fresh',
      detail: 'identity ai-ada unchanged and verified less than 60 s ago: not rewritten',
    })
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'existing', userId: 'ada', memberId: 'm-ada' })
  })

  it('the data comparison ignores key order and looks into nested objects and arrays', () => {
    expect(isFresh({ a: 1, b: { c: [1, { d: 'x' }], e: null } }, { b: { e: null, c: [1, { d: 'x' }] }, a: 1 })).toBe(true)
    expect(isFresh({ a: [] }, { a: [] })).toBe(true)
    expect(isFresh({}, {})).toBe(true)
  })

  it('any difference in the data rewrites the row', () => {
    const changed: [JsonObject, JsonObject][] = [
      [{ a: 1 }, { a: 2 }],
      [{ a: 1 }, { a: '1' }],
      [{ a: 1 }, { a: 1, b: 2 }],
      [{ a: 1, b: 2 }, { a: 1 }],
      [
        { a: 1, b: null },
        { a: 1, c: null },
      ],
      [{ a: { b: 1 } }, { a: { b: 2 } }],
      [{ a: { b: 1 } }, { a: { b: 1, c: 1 } }],
      [{ a: { b: 1, c: 1 } }, { a: { b: 1, d: 1 } }],
      [{ a: [1, 2] }, { a: [1] }],
      [{ a: [1] }, { a: [1, 2] }],
      [{ a: [1, 2] }, { a: [2, 1] }],
      [{ a: [{ b: 1 }] }, { a: [{ b: 2 }] }],
      [{ a: [1, 2] }, { a: [1, 3] }],
      [{ a: 1 }, { a: {} }],
      [{ a: {} }, { a: 1 }],
      [{ a: 'xy' }, { a: { 0: 'x', 1: 'y' } }],
      [{ a: { 0: 'x', 1: 'y' } }, { a: 'xy' }],
      [{ a: [] }, { a: {} }],
      [{ a: {} }, { a: [] }],
      [{ a: { 0: 1 } }, { a: [1] }],
      [{ a: null }, { a: {} }],
      [{ a: {} }, { a: null }],
      [{ a: 'x' }, { a: { x: 1 } }],
      [{ a: { x: 1 } }, { a: 'x' }],
    ]
    for (const [next, stored] of changed) expect(isFresh(next, stored), JSON.stringify([next, stored])).toBe(false)
  })

  it('a `__proto__` key in the IdP data is data: compared as an own key, never through the prototype', () => {
    const hostile = JSON.parse('{"__proto__": {}}') as JsonObject
    expect(isFresh(hostile, { z: 1 })).toBe(false)
    expect(isFresh(hostile, JSON.parse('{"__proto__": {}}') as JsonObject)).toBe(true)
  })

  it('the window is strict, counts seconds, and needs both lastVerified and lastSynced within it', () => {
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(59), lastSynced: ago(59) })).toBe(true)
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(60), lastSynced: ago(10) })).toBe(false)
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(10), lastSynced: ago(60) })).toBe(false)
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(0.5), lastSynced: ago(0.5) }, 1)).toBe(true)
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(1), lastSynced: ago(0.5) }, 1)).toBe(false)
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(0), lastSynced: ago(0) })).toBe(true)
  })

  it('a lastVerified in the future is not fresh (a clock that went back, or a forged row)', () => {
    expect(isFresh({ a: 1 }, { a: 1 }, { lastVerified: ago(-1), lastSynced: ago(10) })).toBe(false)
  })

  it('no window (0 or unset): always rewritten', () => {
    expect(isFresh({ a: 1 }, { a: 1 }, {}, 0)).toBe(false)
    const plan = decideLogin(linkedFacts({ identity: { lastVerified: ago(1), lastSynced: ago(1) } }), () => ({ a: 1 }))
    expect(plan.txEffects).toHaveLength(1)
  })

  it('a row found by its legacy id is always rewritten, window or not', () => {
    const plan = decideLogin(
      linkedFacts({
        via: 'legacy',
        identity: { ident: 'old-id', lastVerified: ago(1), lastSynced: ago(1) },
        policy: { identityRefreshSeconds: 60 },
      }),
      () => ({ a: 1 }),
    )
    expect(plan.txEffects).toEqual([
      { type: 'identity.update', id: 'ai-ada', patch: { ident: 'ext-ada', data: { a: 1 }, lastVerified: NOW, lastSynced: NOW } },
    ])
    expect(plan.trace).toContainEqual({
      rule: 'existing.legacy-id-rewritten',
      detail: 'identity ai-ada found by its legacy id: ident rewritten to the new id, data refreshed',
    })
  })
})

describe('existing identity: the plan', () => {
  it('a refresh: the merged data, both dates, no ident key; the trace and the decision', () => {
    const plan = decideLogin(linkedFacts(), (next, current) => ({ next, current }))
    expect(plan.txEffects).toEqual([
      {
        type: 'identity.update',
        id: 'ai-ada',
        patch: { data: { next: facts().identity.data, current: { a: 1 } }, lastVerified: NOW, lastSynced: NOW },
      },
    ])
    expect(plan.trace.slice(1)).toEqual([
      { rule: 'existing.refresh', detail: 'identity ai-ada refreshed (data, lastVerified, lastSynced)' },
      { rule: 'membership.already-linked', detail: 'existing membership already linked: no write' },
    ])
    expect(plan.decision).toEqual({
      kind: 'signIn',
      path: 'existing',
      userId: 'ada',
      memberId: 'm-ada',
      created: { user: false, identity: false, member: false },
      linked: false,
      acceptedInviteId: null,
      consumesVerification: false,
      claim: null,
    })
    expect(plan.afterCommit).toEqual([])
  })

  it('suspended: USER_SUSPENDED, pipeline ends, nothing written', () => {
    const plan = decideLogin(linkedFacts({ user: { ...ada, isSuspended: true } }))
    expect(plan.decision).toMatchObject({ kind: 'reject', keepState: false, error: { code: 'USER_SUSPENDED' } })
    expect(plan.txEffects).toEqual([])
    expect(plan.trace.at(-1)).toEqual({ rule: 'existing.suspended', detail: 'user ada is suspended (N5)' })
  })

  it('second factor pending: nothing written; passed by this user: signed in', () => {
    const twoFa = { ...ada, has2fa: true }
    expect(decideLogin(linkedFacts({ user: twoFa })).decision).toEqual({ kind: 'twoFactor', userId: 'ada' })
    const passed = linkedFacts({ user: twoFa, extra: { session: { userId: null, twoFactorUserId: 'ada', ip: null } } })
    expect(decideLogin(passed).decision.kind).toBe('signIn')
  })

  it('no membership: a new one (rejoin) with its effects after the refresh, and the trace says so', () => {
    const plan = decideLogin(linkedFacts({ member: null }))
    expect(plan.decision).toMatchObject({ kind: 'signIn', memberId: 'n1', created: { user: false, identity: false, member: true } })
    expect(plan.txEffects.map((e) => e.type)).toEqual(['identity.update', 'member.create', 'audit.record'])
    const rules = plan.trace.map((t) => t.rule)
    expect(rules.slice(rules.indexOf('existing.refresh'))).toEqual(['existing.refresh', 'existing.rejoin', 'membership.new'])
    expect(plan.trace).toContainEqual({
      rule: 'existing.rejoin',
      detail: 'the user has no membership (removed earlier): a new one is created',
    })
  })

  it('policy.rejoinOnLogin false: a removed member is refused before the second factor (threat 51)', () => {
    const plan = decideLogin(linkedFacts({ member: null, user: { ...ada, has2fa: true }, policy: { rejoinOnLogin: false } }))
    expect(plan.decision).toMatchObject({ kind: 'reject', keepState: false, error: { code: 'NOT_A_MEMBER' } })
    expect(plan.txEffects).toEqual([])
    expect(plan.trace.at(-1)).toEqual({
      rule: 'existing.rejoin-refused',
      detail: 'user ada has no membership (removed earlier) and policy.rejoinOnLogin is false: refused (threat 51)',
    })
  })

  it('policy.rejoinOnLogin false does not refuse a member, nor a removed member who accepts an invite', () => {
    expect(decideLogin(linkedFacts({ policy: { rejoinOnLogin: false } })).decision.kind).toBe('signIn')
    const invite = makeMember({
      id: 'inv',
      organizationId: ORG.id,
      email: 'ada@corp.example',
      inviteStatus: 'approved',
    })
    const f = linkedFacts({
      member: null,
      policy: { rejoinOnLogin: false },
      extra: { invitesByEmail: new Map([['ada@corp.example', invite]]) },
    })
    const plan = decideLogin(f)
    expect(plan.decision).toMatchObject({ kind: 'signIn', memberId: 'inv', acceptedInviteId: 'inv' })
    expect(plan.afterCommit).toEqual([
      { type: 'signal.emit', signal: { name: 'member_joined', payload: { organizationId: ORG.id, userId: 'ada', memberId: 'inv' } } },
    ])
  })
})
