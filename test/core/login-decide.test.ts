// The login decision's trace (what `explain()` and logs show) and the verified addresses a user is
// credited with: assertions the mutation run (npm run mutate, issue 12 item 4) found missing.
import { describe, expect, it } from 'vitest'
import { twoFactorPlan, verifiedEmailsFor } from '../../src/core/login/common.js'
import { decideLogin } from '../../src/core/login/decide.js'
import type { LoginFacts } from '../../src/core/login/facts.js'
import { NO_FLAGS, type User } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { ORG, PROVIDER } from '../login/harness.js'
import { facts, identity, trust } from './login-facts.js'

const ada = makeUser({ id: 'ada', email: 'ada@corp.example' })
const row = makeIdentity({ id: 'ai-ada', authProviderId: PROVIDER.id, userId: 'ada', ident: 'ext-ada' })
const member = makeMember({ id: 'm-ada', organizationId: ORG.id, userId: 'ada', flags: { ...NO_FLAGS, ssoLinked: true } })
const rules = (f: LoginFacts) => decideLogin(f).trace.map((t) => t.rule)

describe('decideLogin: the first trace entries', () => {
  it('a linked active member: login.existing-identity with the ids, and no trust entry', () => {
    const plan = decideLogin(
      facts({ linked: { identity: row, user: ada, via: 'ident' }, members: new Map([['ada', member]]), trust: trust() }),
    )
    expect(plan.trace[0]).toEqual({ rule: 'login.existing-identity', detail: 'identity ai-ada is linked to user ada' })
    expect(plan.trace.map((t) => t.rule)).not.toContain('trust.email')
  })

  it('a link found through the legacy id: login.existing-identity.legacy', () => {
    const f = facts({ linked: { identity: row, user: ada, via: 'legacy' }, members: new Map([['ada', member]]) })
    expect(rules(f)[0]).toBe('login.existing-identity.legacy')
  })

  it('a linked active user who is not a member: the trust entry follows (a membership is planned)', () => {
    const f = facts({ linked: { identity: row, user: ada, via: 'ident' }, members: new Map([['ada', null]]), trust: trust() })
    expect(rules(f).slice(0, 2)).toEqual(['login.existing-identity', 'trust.email'])
  })

  it('a link to an inactive user: login.inactive-owner (N8), then the trust entry', () => {
    const gone = makeUser({ id: 'gone', isActive: false })
    const plan = decideLogin(facts({ linked: { identity: { ...row, userId: 'gone' }, user: gone, via: 'ident' }, trust: trust() }))
    expect(plan.trace.slice(0, 2)).toEqual([
      { rule: 'login.inactive-owner', detail: 'identity ai-ada belongs to inactive user gone: treated as unknown (N8)' },
      {
        rule: 'trust.email',
        detail: "trust policy 'strict': the address counts as verified (the IdP says so); it may match an invite sent to it",
      },
    ])
  })

  it('no link: login.unknown-identity; the trust entry says what does not count', () => {
    const plan = decideLogin(facts({ trust: trust({ emailVerified: false, inviteMatch: false, reason: 'unknown domain' }) }))
    expect(plan.trace.slice(0, 2)).toEqual([
      { rule: 'login.unknown-identity', detail: 'no identity is linked to this external id' },
      {
        rule: 'trust.email',
        detail: "trust policy 'strict': the address does not count as verified (unknown domain); it may not match an invite sent to it",
      },
    ])
  })

  it('no trust judgement: no trust entry', () => {
    expect(rules(facts())).not.toContain('trust.email')
  })
})

describe('twoFactorPlan', () => {
  it('writes nothing and says why', () => {
    const trace: { rule: string; detail: string }[] = []
    expect(twoFactorPlan('ada', trace)).toEqual({
      decision: { kind: 'twoFactor', userId: 'ada' },
      txEffects: [],
      afterCommit: [],
      trace: [{ rule: 'two-factor.required', detail: 'user ada has a second factor this session has not passed: nothing is written' }],
    })
  })
})

describe('verifiedEmailsFor', () => {
  const email = (userId: string, emailNormalized: string, isVerified: boolean) => ({
    userId,
    email: emailNormalized,
    emailNormalized,
    isVerified,
    isPrimary: false,
  })
  const match = (user: User, emailNormalized: string, isVerified: boolean) => ({ user, email: email(user.id, emailNormalized, isVerified) })
  const bob = makeUser({ id: 'bob', email: 'bob@corp.example' })

  it('only the user’s own verified rows count', () => {
    const f = facts({
      identity: identity('ada@corp.example', false),
      emailMatches: [match(ada, 'ada@corp.example', true), match(bob, 'bob@corp.example', true), match(ada, 'ada2@corp.example', false)],
    })
    expect(verifiedEmailsFor(f, ada)).toEqual(['ada@corp.example'])
    expect(verifiedEmailsFor(f, bob)).toEqual(['bob@corp.example'])
  })

  it('adds the loaded verified addresses, sorted', () => {
    const f = facts({
      identity: identity('x@corp.example', false),
      verifiedAddresses: new Map([['ada', ['z@corp.example', 'b@corp.example']]]),
    })
    expect(verifiedEmailsFor(f, ada)).toEqual(['b@corp.example', 'z@corp.example'])
    expect(verifiedEmailsFor(f, bob)).toEqual([])
  })

  it("the identity's verified address counts for the user whose address it is, or a new user", () => {
    const f = facts({ identity: identity('ADA@corp.example') })
    expect(verifiedEmailsFor(f, makeUser({ id: 'ada', email: 'Ada@Corp.Example' }))).toEqual(['ada@corp.example'])
    expect(verifiedEmailsFor(f, bob)).toEqual([])
    expect(verifiedEmailsFor(f, bob, true)).toEqual(['ada@corp.example'])
  })

  it("not when the identity's address is unverified, or the trust policy lets it match no invite", () => {
    expect(verifiedEmailsFor(facts({ identity: identity('ada@corp.example', false) }), ada)).toEqual([])
    expect(verifiedEmailsFor(facts({ trust: trust({ inviteMatch: false }) }), ada)).toEqual([])
    expect(verifiedEmailsFor(facts({ trust: trust({ inviteMatch: false }) }), bob, true)).toEqual([])
    expect(verifiedEmailsFor(facts({ trust: trust() }), ada)).toEqual(['ada@corp.example'])
  })
})
