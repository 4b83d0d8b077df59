// decideUnknown (spec 3.4-3.6, 3.12, threats 2, 3, 18, 28, 29) through decideLogin, as a pure
// function: the pages, the auto-link, the emailed link (V) and its binding, the claim, the
// verification mail and its limits, and the trace. Issue 12 item 4 (mutation run).
import { describe, expect, it } from 'vitest'
import { decideLogin } from '../../src/core/login/decide.js'
import type { LoginFacts, VerificationBinding } from '../../src/core/login/facts.js'
import { mayCreateAtOnce, verificationMatches } from '../../src/core/login/unknown.js'
import { VERIFICATION_WINDOW_MS } from '../../src/core/login/verification-limit.js'
import { mailText } from '../../src/core/mail.js'
import { type AuthIdentity, NO_FLAGS, type User } from '../../src/model/records.js'
import type { UserEmailMatch } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { ORG, PROVIDER } from '../login/harness.js'
import { facts, identity, NOW, trust } from './login-facts.js'

const ada = makeUser({ id: 'ada', email: 'ada@corp.example', name: 'Ada', hasUsablePassword: false })
const bob = makeUser({ id: 'bob', email: 'bob@corp.example', name: 'Bob' })
const match = (u: User, isVerified = true, email = 'ada@corp.example'): UserEmailMatch => ({
  user: u,
  email: { userId: u.id, email, emailNormalized: email, isVerified, isPrimary: true },
})
const memberOf = (u: User) => makeMember({ id: `m-${u.id}`, organizationId: ORG.id, userId: u.id, flags: { ...NO_FLAGS, ssoLinked: true } })
const binding = (over: Partial<VerificationBinding> = {}): VerificationBinding => ({
  userId: 'ada',
  email: 'ada@corp.example',
  organizationId: ORG.id,
  authProviderId: PROVIDER.id,
  ident: 'ext-ada',
  pipelineId: 'p1',
  ...over,
})
const rules = (f: LoginFacts) => decideLogin(f).trace.map((t) => t.rule)
const signedIn = (u: User, partial: Partial<LoginFacts> = {}) =>
  facts({ sessionUser: u, session: { userId: u.id, twoFactorUserId: null, ip: '192.0.2.1' }, ...partial })
const PAGE_BASE = {
  organization: { name: ORG.name, slug: ORG.slug },
  provider: 'IdP',
  identityDisplayName: 'ada@corp.example',
  identityIdentifier: 'ada@corp.example',
}

describe('verificationMatches (V, threat 18)', () => {
  const f = (over: Partial<VerificationBinding> = {}) => facts({ verification: binding(over) })
  it('holds when every bound field matches', () => {
    expect(verificationMatches(f(), ada)).toBe(true)
  })
  it('fails for any one field that differs, for no token and for no target', () => {
    for (const over of [
      { userId: 'bob' },
      { email: 'bob@corp.example' },
      { organizationId: 'org2' },
      { authProviderId: 'ap2' },
      { ident: 'ext-bob' },
      { pipelineId: 'p2' },
    ]) {
      expect(verificationMatches(f(over), ada), JSON.stringify(over)).toBe(false)
    }
    expect(verificationMatches(facts(), ada)).toBe(false)
    expect(verificationMatches(f(), null)).toBe(false)
  })
})

describe('mayCreateAtOnce (just-in-time creation)', () => {
  const base = { policy: { newUser: 'create' as const }, op: null, session: { userId: null }, sessionUser: null, linked: null }
  it('only for a choice-less, sessionless request of an identity without a row, under newUser create', () => {
    expect(mayCreateAtOnce(base)).toBe(true)
    expect(mayCreateAtOnce({ ...base, policy: { newUser: 'confirm' } })).toBe(false)
    expect(mayCreateAtOnce({ ...base, op: 'newuser' })).toBe(false)
    expect(mayCreateAtOnce({ ...base, session: { userId: 'x' } })).toBe(false)
    expect(mayCreateAtOnce({ ...base, sessionUser: makeUser({ id: 'x', isActive: false }) })).toBe(false)
    expect(mayCreateAtOnce({ ...base, linked: {} })).toBe(false)
  })
})

describe('unknown identity, signed in', () => {
  it('a suspended session user: USER_SUSPENDED, the pipeline ends, nothing written', () => {
    const plan = decideLogin(signedIn({ ...bob, isSuspended: true }, { op: 'confirm' }))
    expect(plan.decision).toMatchObject({ kind: 'reject', keepState: false, error: { code: 'USER_SUSPENDED' } })
    expect(plan.txEffects).toEqual([])
    expect(plan.trace.at(-1)).toEqual({ rule: 'unknown.session-user-suspended', detail: 'the session user bob is suspended' })
  })

  it('an inactive session user is anonymous (no suspension check, the anonymous page)', () => {
    const plan = decideLogin(signedIn({ ...bob, isActive: false, isSuspended: true }))
    expect(plan.decision).toMatchObject({ kind: 'confirm', page: { page: 'confirm-identity' }, allowedOps: ['newuser'] })
  })

  it('confirm: attach to the session user, a new identity and a membership; no claim for a user signed in from the start', () => {
    const f = signedIn(bob, { op: 'confirm', pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: 'bob' } })
    const plan = decideLogin(f)
    expect(plan.decision).toEqual({
      kind: 'signIn',
      path: 'attach',
      userId: 'bob',
      memberId: 'n3',
      created: { user: false, identity: true, member: true },
      linked: true,
      acceptedInviteId: null,
      consumesVerification: false,
      claim: null,
    })
    expect(plan.txEffects.map((e) => e.type)).toEqual(['identity.create', 'audit.record', 'member.create', 'audit.record'])
    expect(plan.txEffects[1]).toMatchObject({ entry: { event: 'sso-identity.link', ip: '192.0.2.1', actorUserId: 'bob' } })
    expect(plan.trace.map((t) => t.rule)).toEqual([
      'login.unknown-identity',
      'target.session-user',
      'unknown.confirm',
      'attach.new',
      'membership.new',
    ])
    expect(plan.trace[2]).toEqual({ rule: 'unknown.confirm', detail: 'the signed-in user bob confirmed the link' })
  })

  it('confirm by a session user who signed in during an anonymous pipeline is a claim (proof signIn)', () => {
    const plan = decideLogin(signedIn(bob, { op: 'confirm', members: new Map([['bob', memberOf(bob)]]) }))
    expect(plan.decision).toMatchObject({ claim: { proof: 'signIn', identitiesKept: [], identitiesRemoved: [] } })
    expect(plan.trace.at(-1)).toEqual({
      rule: 'claim.signIn',
      detail: "an anonymous pipeline proved user bob (signIn): the account's other sessions are to be revoked; no other identity on it",
    })
  })

  it('the session user’s existing row for this provider is re-keyed (a session proves it, threat 13)', () => {
    const old = makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'old-subject' })
    const plan = decideLogin(
      signedIn(bob, {
        op: 'confirm',
        identitiesByUser: new Map([['bob', old]]),
        members: new Map([['bob', memberOf(bob)]]),
        pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: 'bob' },
      }),
    )
    expect(plan.decision).toMatchObject({ kind: 'signIn', created: { identity: false } })
    expect(plan.txEffects).toEqual([{ type: 'identity.update', id: 'ai-bob', patch: expect.objectContaining({ ident: 'ext-ada' }) }])
  })

  it('an identity of an inactive owner re-pointed to the session user marks the old owner’s membership ssoInvalid', () => {
    const ghost = makeUser({ id: 'ghost', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'ext-ada' })
    const plan = decideLogin(
      signedIn(bob, {
        op: 'confirm',
        linked: { identity: row, user: ghost, via: 'ident' },
        members: new Map([
          ['bob', memberOf(bob)],
          ['ghost', memberOf(ghost)],
        ]),
        pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: 'bob' },
      }),
    )
    expect(plan.txEffects).toEqual([
      { type: 'identity.deleteForUser', authProviderId: PROVIDER.id, userId: 'bob', exceptId: 'ai-ghost' },
      { type: 'member.update', id: 'm-ghost', patch: { flags: { ...NO_FLAGS, ssoInvalid: true } } },
      { type: 'identity.update', id: 'ai-ghost', patch: expect.objectContaining({ userId: 'bob' }) },
    ])
  })

  it('the row belongs to the session user already (inactive user is the same): refreshed, no wipe', () => {
    const row = makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'ext-ada' })
    const inactiveBob = { ...bob, isActive: false }
    const f = signedIn(bob, {
      op: 'confirm',
      linked: { identity: row, user: inactiveBob, via: 'ident' },
      members: new Map([['bob', memberOf(bob)]]),
      pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: 'bob' },
    })
    expect(decideLogin(f).txEffects.map((e) => e.type)).toEqual(['identity.update'])
  })

  it('newuser: a new user even when signed in', () => {
    expect(decideLogin(signedIn(bob, { op: 'newuser' })).decision).toMatchObject({ kind: 'signIn', path: 'newUser' })
  })

  it('auto-link: own address, verified by the IdP, a member; the trace names the trust policy', () => {
    const a = { ...ada, hasUsablePassword: true }
    const plan = decideLogin(signedIn(a, { emailMatches: [match(a)], members: new Map([['ada', memberOf(a)]]), trust: trust() }))
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'attach', userId: 'ada', claim: { proof: 'signIn' } })
    expect(plan.trace).toContainEqual({
      rule: 'unknown.auto-link.session',
      detail: "the IdP verified an address of the signed-in member (trust policy 'strict'): linked without asking",
    })
    const noTrust = decideLogin(signedIn(a, { emailMatches: [match(a)], members: new Map([['ada', memberOf(a)]]) }))
    expect(noTrust.trace).toContainEqual({
      rule: 'unknown.auto-link.session',
      detail: 'the IdP verified an address of the signed-in member: linked without asking',
    })
  })

  it('auto-link re-keys the session user’s row for this provider (the session proves it, threat 13)', () => {
    const a = { ...ada, hasUsablePassword: true }
    const old = makeIdentity({ id: 'ai-ada', authProviderId: PROVIDER.id, userId: 'ada', ident: 'old-subject' })
    const plan = decideLogin(
      signedIn(a, { emailMatches: [match(a)], members: new Map([['ada', memberOf(a)]]), identitiesByUser: new Map([['ada', old]]) }),
    )
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'attach', created: { identity: false } })
    expect(plan.txEffects[0]).toEqual({ type: 'identity.update', id: 'ai-ada', patch: expect.objectContaining({ ident: 'ext-ada' }) })
  })

  it('an attach that accepts an invite emits member_joined after commit', () => {
    const invite = makeMember({ id: 'inv', organizationId: ORG.id, email: 'bob@corp.example', inviteStatus: 'approved' })
    const plan = decideLogin(
      signedIn(bob, {
        op: 'confirm',
        invitesByEmail: new Map([['bob@corp.example', invite]]),
        verifiedAddresses: new Map([['bob', ['bob@corp.example']]]),
      }),
    )
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'attach', memberId: 'inv', acceptedInviteId: 'inv' })
    expect(plan.afterCommit).toEqual([
      { type: 'signal.emit', signal: { name: 'member_joined', payload: { organizationId: ORG.id, userId: 'bob', memberId: 'inv' } } },
    ])
  })

  it('no auto-link without each of the three: the confirm-link page, newuser offered unless the address is the user’s own', () => {
    const a = { ...ada, hasUsablePassword: true }
    const page = (f: LoginFacts) => decideLogin(f)
    const notMember = page(signedIn(a, { emailMatches: [match(a)], members: new Map([['ada', null]]) }))
    expect(notMember.decision).toEqual({
      kind: 'confirm',
      page: { page: 'confirm-link', ...PAGE_BASE, currentUser: { id: 'ada', email: 'ada@corp.example', name: 'Ada' } },
      allowedOps: ['confirm'],
      verification: null,
    })
    expect(notMember.txEffects).toEqual([])
    expect(notMember.afterCommit).toEqual([])
    expect(notMember.trace.at(-1)).toEqual({ rule: 'confirm.confirm-link', detail: 'confirmation page confirm-link; allowed ops: confirm' })
    const unverified = page(
      signedIn(a, { identity: identity('ada@corp.example', false), emailMatches: [match(a)], members: new Map([['ada', memberOf(a)]]) }),
    )
    expect(unverified.decision).toMatchObject({ kind: 'confirm', allowedOps: ['confirm'] })
    const other = page(signedIn(bob, { emailMatches: [match(ada)], members: new Map([['bob', memberOf(bob)]]) }))
    expect(other.decision).toMatchObject({ kind: 'confirm', page: { page: 'confirm-link' }, allowedOps: ['confirm', 'newuser'] })
    expect(other.trace.at(-1)?.detail).toBe('confirmation page confirm-link; allowed ops: confirm, newuser')
  })
})

describe('unknown identity, anonymous', () => {
  const anon = (partial: Partial<LoginFacts> = {}) =>
    facts({ session: { userId: null, twoFactorUserId: null, ip: '192.0.2.9' }, ...partial })
  const linkFacts = (partial: Partial<LoginFacts> = {}) =>
    anon({ emailMatches: [match(ada)], verification: binding(), members: new Map([['ada', memberOf(ada)]]), ...partial })

  it('one page for everyone: confirm-identity, newuser offered, no effects (threat 29)', () => {
    for (const f of [anon(), anon({ emailMatches: [match(bob, true, 'ada@corp.example')] }), anon({ emailMatches: [match(ada, false)] })]) {
      const plan = decideLogin(f)
      expect(plan.decision).toEqual({
        kind: 'confirm',
        page: { page: 'confirm-identity', ...PAGE_BASE, loginUrl: '/login' },
        allowedOps: ['newuser'],
        verification: null,
      })
      expect(plan.txEffects).toEqual([])
      expect(plan.afterCommit).toEqual([])
      expect(plan.trace.at(-1)).toEqual({
        rule: 'confirm.confirm-identity',
        detail: 'confirmation page confirm-identity; allowed ops: newuser',
      })
    }
  })

  it('the page names the identity by its name and address; an unnamed provider is a space', () => {
    const plan = decideLogin(
      anon({
        identity: identity('ada@corp.example', true, { name: 'Ada L' }),
        provider: { id: PROVIDER.id, key: 'dummy', displayName: '' },
      }),
    )
    expect(plan.decision).toMatchObject({
      page: { provider: ' ', identityDisplayName: 'Ada L', identityIdentifier: 'ada@corp.example' },
    })
  })

  it('confirm without a session or a link: MERGE_FAILED, the pipeline stays (N4)', () => {
    const plan = decideLogin(anon({ op: 'confirm' }))
    expect(plan.decision).toMatchObject({ kind: 'reject', keepState: true, error: { code: 'MERGE_FAILED' } })
    expect(plan.trace.at(-1)).toEqual({
      rule: 'unknown.confirm-anonymous',
      detail: 'confirm without a signed-in user or a verified link (N4)',
    })
  })

  it('newuser: a new user', () => {
    expect(decideLogin(anon({ op: 'newuser' })).decision).toMatchObject({ kind: 'signIn', path: 'newUser' })
  })

  it('just-in-time: a new user at once under newUser create when nobody has the address, the trace says why', () => {
    const plan = decideLogin(anon({ policy: { ...facts().policy, newUser: 'create' } }))
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'newUser' })
    expect(plan.trace).toContainEqual({
      rule: 'unknown.jit',
      detail: "policy.newUser is 'create' and the email matches no account: the user is created without a confirmation page",
    })
    // an account has the address, or the identity has an inactive owner's row: the page
    const ghost = makeUser({ id: 'ghost', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'ext-ada' })
    const policy = { ...facts().policy, newUser: 'create' as const }
    expect(decideLogin(anon({ policy, emailMatches: [match(bob, false, 'ada@corp.example')] })).decision.kind).toBe('confirm')
    expect(decideLogin(anon({ policy, linked: { identity: row, user: ghost, via: 'ident' } })).decision.kind).toBe('confirm')
  })

  it('the emailed link (V): attach to its user, consumes the token, a claim by emailLink', () => {
    const plan = decideLogin(linkFacts())
    expect(plan.decision).toEqual({
      kind: 'signIn',
      path: 'attach',
      userId: 'ada',
      memberId: 'm-ada',
      created: { user: false, identity: true, member: false },
      linked: true,
      acceptedInviteId: null,
      consumesVerification: true,
      claim: { proof: 'emailLink', identitiesKept: [], identitiesRemoved: [] },
    })
    expect(plan.trace).toContainEqual({ rule: 'unknown.verified-link', detail: 'the emailed link proves ownership of user ada (V)' })
    expect(plan.txEffects.at(-1)).toEqual({
      type: 'audit.record',
      entry: {
        id: 'n3',
        event: 'sso-identity.claim',
        actorUserId: 'ada',
        organizationId: ORG.id,
        targetId: 'n1',
        targetUserId: 'ada',
        ip: '192.0.2.9',
        data: { proof: 'emailLink', identitiesKept: [], identitiesRemoved: [] },
        createdAt: NOW,
      },
    })
  })

  it('the link works for a visitor whose session user is inactive (treated as anonymous, no session mismatch)', () => {
    const gone = makeUser({ id: 'gone', isActive: false })
    const plan = decideLogin(linkFacts({ sessionUser: gone, session: { userId: 'gone', twoFactorUserId: null, ip: null } }))
    expect(plan.decision).toMatchObject({ kind: 'signIn', path: 'attach', userId: 'ada', consumesVerification: true })
  })

  it('a link that does not match: ignored with a trace entry, the page', () => {
    const plan = decideLogin(linkFacts({ verification: binding({ pipelineId: 'p0' }) }))
    expect(plan.decision.kind).toBe('confirm')
    expect(plan.trace).toContainEqual({
      rule: 'unknown.verification-ignored',
      detail: 'the session verification token does not match this user, identity, org, provider and pipeline',
    })
    expect(rules(anon())).not.toContain('unknown.verification-ignored')
  })

  it('the link does not re-key the user’s row for this provider: IDENTITY_CONFLICT with its reason (threat 13)', () => {
    const old = makeIdentity({ id: 'ai-ada', authProviderId: PROVIDER.id, userId: 'ada', ident: 'old-subject' })
    const plan = decideLogin(linkFacts({ identitiesByUser: new Map([['ada', old]]) }))
    expect(plan.decision).toMatchObject({
      kind: 'reject',
      keepState: true,
      error: { code: 'IDENTITY_CONFLICT', details: { reason: 'rekey-requires-session' } },
    })
    expect(plan.txEffects).toEqual([])
    expect(plan.trace.at(-1)).toEqual({ rule: 'attach.rejected', detail: 'IDENTITY_CONFLICT' })
  })

  it('the link’s user is suspended: USER_SUSPENDED; has a second factor: twoFactor, nothing written', () => {
    const suspended = { ...ada, isSuspended: true }
    const s = decideLogin(linkFacts({ emailMatches: [match(suspended)] }))
    expect(s.decision).toMatchObject({ kind: 'reject', keepState: false, error: { code: 'USER_SUSPENDED' } })
    expect(s.trace.at(-1)).toEqual({ rule: 'attach.suspended', detail: 'user ada is suspended' })
    const twoFa = { ...ada, has2fa: true }
    expect(decideLogin(linkFacts({ emailMatches: [match(twoFa)] })).decision).toEqual({ kind: 'twoFactor', userId: 'ada' })
  })

  it('the claim reports the other providers’ identities, sorted, or removes them (threats 2, 3)', () => {
    const other = (id: string, authProviderId = 'ap9', userId = 'ada'): AuthIdentity =>
      makeIdentity({ id, authProviderId, userId, ident: `x-${id}`, createdAt: new Date('2026-01-01T00:00:00.000Z') })
    const ofUser = new Map([
      ['ada', [other('i-c'), other('i-a'), other('i-same', PROVIDER.id), other('i-b'), other('i-bob', 'ap9', 'bob')]],
    ])
    const shown = (id: string) => ({ id, authProviderId: 'ap9', ident: `x-${id}`, createdAt: '2026-01-01T00:00:00.000Z' })
    const kept = decideLogin(linkFacts({ identitiesOfUser: ofUser }))
    expect(kept.decision).toMatchObject({
      claim: { proof: 'emailLink', identitiesKept: [shown('i-a'), shown('i-b'), shown('i-c')], identitiesRemoved: [] },
    })
    expect(kept.txEffects.filter((e) => e.type === 'identity.delete')).toEqual([])
    expect(kept.trace.at(-1)?.detail).toBe(
      "an anonymous pipeline proved user ada (emailLink): the account's other sessions are to be revoked; 3 other identities kept and reported",
    )
    const policy = { ...facts().policy, identitiesOnClaim: 'remove' as const }
    const removed = decideLogin(linkFacts({ identitiesOfUser: ofUser, policy }))
    expect(removed.decision).toMatchObject({
      claim: { identitiesKept: [], identitiesRemoved: [shown('i-a'), shown('i-b'), shown('i-c')] },
    })
    expect(removed.txEffects.filter((e) => e.type === 'identity.delete')).toEqual([
      { type: 'identity.delete', id: 'i-a' },
      { type: 'identity.delete', id: 'i-b' },
      { type: 'identity.delete', id: 'i-c' },
    ])
    expect(removed.txEffects.at(-1)).toMatchObject({
      entry: { event: 'sso-identity.claim', data: { proof: 'emailLink', identitiesKept: [], identitiesRemoved: ['i-a', 'i-b', 'i-c'] } },
    })
    expect(removed.trace.at(-1)?.detail).toMatch(/; 3 other identities removed$/)
    const one = decideLogin(linkFacts({ identitiesOfUser: new Map([['ada', [other('i-z')]]]) }))
    expect(one.trace.at(-1)?.detail).toMatch(/; 1 other identity kept and reported$/)
    expect(one.txEffects.at(-1)).toMatchObject({ entry: { data: { identitiesKept: ['i-z'], identitiesRemoved: [] } } })
  })
})

describe('unknown identity, anonymous: the verification mail (threats 28, 29)', () => {
  const anon = (partial: Partial<LoginFacts> = {}) => facts({ emailMatches: [match(ada)], ...partial })
  const expiresAt = new Date(NOW.getTime() + 600_000)

  it('a passwordless account with the verified address: the same page, a link mailed to the account', () => {
    const plan = decideLogin(anon())
    expect(plan.decision).toEqual({
      kind: 'confirm',
      page: { page: 'confirm-identity', ...PAGE_BASE, loginUrl: '/login' },
      allowedOps: ['newuser'],
      verification: {
        tokenHash: 'h'.repeat(64),
        binding: binding(),
        expiresAt,
        sentAt: NOW.getTime(),
        revokeTokenHash: null,
        sends: { windowStart: NOW.getTime(), count: 1, lastByProvider: { [PROVIDER.id]: NOW.getTime() }, tokenHash: 'h'.repeat(64) },
        sendsKeepUntil: NOW.getTime() + VERIFICATION_WINDOW_MS,
      },
    })
    expect(plan.txEffects).toEqual([])
    expect(plan.afterCommit).toEqual([
      {
        type: 'mail.send',
        message: {
          template: 'accountVerification',
          to: 'ada@corp.example',
          data: {
            userName: 'Ada',
            organizationName: ORG.name,
            providerName: 'IdP',
            url: 'https://app/verify',
            expiresAt: expiresAt.toISOString(),
          },
          idempotencyKey: `account-verification:p1:${NOW.getTime()}`,
        },
      },
    ])
    expect(plan.trace.slice(-2)).toEqual([
      { rule: 'verification.sent', detail: "a one-time link is mailed to the account's own address" },
      { rule: 'confirm.confirm-identity', detail: 'confirmation page confirm-identity; allowed ops: newuser' },
    ])
  })

  it('the mail greets an unnamed account by its address; the expiry follows the policy', () => {
    const plan = decideLogin(
      anon({ emailMatches: [match({ ...ada, name: '' })], policy: { ...facts().policy, verificationTtlSeconds: 60 } }),
    )
    expect(plan.afterCommit[0]).toMatchObject({
      message: { data: { userName: mailText('ada@corp.example'), expiresAt: new Date(NOW.getTime() + 60_000).toISOString() } },
    })
  })

  it('no mail for an account with a password, or whose matching address is unverified (threat 1)', () => {
    const withPassword = decideLogin(anon({ emailMatches: [match({ ...ada, hasUsablePassword: true })] }))
    expect(withPassword.afterCommit).toEqual([])
    expect(withPassword.trace.map((t) => t.rule)).not.toContain('verification.unverified-address')
    const unverified = decideLogin(anon({ emailMatches: [match(ada, false)] }))
    expect(unverified.afterCommit).toEqual([])
    expect(unverified.decision).toMatchObject({ verification: null })
    expect(unverified.trace.at(-2)).toEqual({
      rule: 'verification.unverified-address',
      detail: 'the matching address is not verified on the account: no link is mailed (threat 1)',
    })
    // the verified row must be the target's own: an inactive user's verified row does not count
    const ghost = makeUser({ id: 'ghost', isActive: false, hasUsablePassword: false })
    expect(decideLogin(anon({ emailMatches: [match(ada, false), match(ghost, true)] })).afterCommit).toEqual([])
    const bobsRow = decideLogin(anon({ emailMatches: [match(ada, false), match(bob, true, 'other@corp.example')] }))
    expect(bobsRow.afterCommit).toEqual([])
  })

  it('this pipeline mailed within the resend window: the page, no mail; after it: mailed again', () => {
    const sentAt = (ms: number) => ({ id: 'p1', referrer: null, verificationSentAt: NOW.getTime() - ms, initiatorUserId: null })
    const recent = decideLogin(anon({ pipeline: sentAt(599_999) }))
    expect(recent.afterCommit).toEqual([])
    expect(recent.decision).toMatchObject({ kind: 'confirm', verification: null })
    expect(recent.trace.at(-2)).toEqual({
      rule: 'verification.rate-limited',
      detail: 'a link was mailed to this user through this provider recently (any pipeline): not sent again',
    })
    expect(decideLogin(anon({ pipeline: sentAt(600_000) })).afterCommit).toHaveLength(1)
    const shortWindow = { ...facts().policy, verificationResendSeconds: 1 }
    expect(decideLogin(anon({ pipeline: sentAt(1_000), policy: shortWindow })).afterCommit).toHaveLength(1)
  })

  it('another pipeline mailed this user through this provider recently: wait; the daily cap: capped, no mail', () => {
    const t = NOW.getTime()
    const wait = decideLogin(
      anon({ verificationSends: { windowStart: t - 1000, count: 1, lastByProvider: { [PROVIDER.id]: t - 1000 }, tokenHash: 'old' } }),
    )
    expect(wait.afterCommit).toEqual([])
    expect(wait.trace.at(-2)?.rule).toBe('verification.rate-limited')
    const capped = decideLogin(anon({ verificationSends: { windowStart: t - 3_600_000, count: 5, lastByProvider: {}, tokenHash: 'old' } }))
    expect(capped.afterCommit).toEqual([])
    expect(capped.decision).toMatchObject({ verification: null })
    expect(capped.trace.at(-2)).toEqual({
      rule: 'verification.daily-limit',
      detail: 'the user got the daily cap of verification mails: not sent (next in 82800 s)',
    })
    const next = decideLogin(anon({ verificationSends: { windowStart: t - 3_600_000, count: 2, lastByProvider: {}, tokenHash: 'old' } }))
    expect(next.decision).toMatchObject({
      verification: {
        revokeTokenHash: 'old',
        sends: { windowStart: t - 3_600_000, count: 3 },
        sendsKeepUntil: t - 3_600_000 + VERIFICATION_WINDOW_MS,
      },
    })
  })
})
