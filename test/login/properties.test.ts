// Property tests (fast-check): invariants of threats.md section 11 over random scenarios.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decideLogin } from '../../src/core/login/decide.js'
import type { LoginFacts } from '../../src/core/login/facts.js'
import { normalizeEmail } from '../../src/model/email.js'
import { parseIdentity } from '../../src/model/identity.js'
import { type AuthIdentity, type Member, NO_FLAGS, type User, type UserEmail } from '../../src/model/records.js'
import type { UserEmailMatch } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { runs } from '../helpers/runs.js'
import { dataOf, ident, ORG, PROVIDER, session, start, world } from './harness.js'

const EMAILS = ['e1@corp.example', 'e2@corp.example', 'E1@Corp.Example', 'e3@corp.example']
const IDENTS = ['x1', 'x2', 'x3']

const userArb = (id: string) =>
  fc
    .record({
      present: fc.boolean(),
      isActive: fc.boolean(),
      isSuspended: fc.boolean(),
      hasUsablePassword: fc.boolean(),
      has2fa: fc.boolean(),
      email: fc.constantFrom(...EMAILS),
      emailVerified: fc.boolean(),
      member: fc.boolean(),
      linkedTo: fc.option(fc.constantFrom(...IDENTS), { nil: null }),
    })
    .map((r) => ({ id, ...r }))

const scenarioArb = fc.record({
  users: fc.tuple(userArb('a'), userArb('b'), userArb('c')),
  sessionUser: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
  identity: fc.record({
    id: fc.constantFrom(...IDENTS),
    email: fc.constantFrom(...EMAILS),
    emailVerified: fc.boolean(),
    name: fc.string({ maxLength: 8 }),
    data: fc.dictionary(fc.constantFrom('role', 'groups', 'preferred_username'), fc.constantFrom('owner', 'admin', 'a')),
  }),
  op: fc.constantFrom(null, 'confirm' as const, 'newuser' as const),
  twoFactorUserId: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
})
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never

function seedOf(s: Scenario) {
  const users: User[] = []
  const userEmails: UserEmail[] = []
  const members: Member[] = []
  const identities: AuthIdentity[] = []
  const usedIdents = new Set<string>()
  for (const u of s.users) {
    if (!u.present) continue
    const user = makeUser({
      id: u.id,
      email: u.email,
      isActive: u.isActive,
      isSuspended: u.isSuspended,
      hasUsablePassword: u.hasUsablePassword,
      has2fa: u.has2fa,
    })
    users.push(user)
    userEmails.push({
      userId: u.id,
      email: u.email,
      emailNormalized: normalizeEmail(u.email),
      isVerified: u.emailVerified,
      isPrimary: true,
    })
    if (u.member)
      members.push(makeMember({ id: `m-${u.id}`, organizationId: ORG.id, userId: u.id, flags: { ...NO_FLAGS, ssoLinked: true } }))
    if (u.linkedTo && !usedIdents.has(u.linkedTo)) {
      usedIdents.add(u.linkedTo)
      identities.push(makeIdentity({ id: `ai-${u.id}`, authProviderId: PROVIDER.id, userId: u.id, ident: u.linkedTo }))
    }
  }
  return { users, userEmails, members, identities }
}

async function run(s: Scenario, override: Partial<Scenario['identity']> = {}) {
  const seed = seedOf(s)
  const w = world(seed)
  const sessionUser = s.sessionUser && seed.users.some((u) => u.id === s.sessionUser) ? s.sessionUser : null
  const handle = await start(w, { initiatorUserId: sessionUser })
  const before = w.storage.snapshot()
  const r = await w.login.finishLogin({
    handle,
    session: session({ userId: sessionUser, twoFactorUserId: s.twoFactorUserId }),
    identity: ident({ ...s.identity, ...override }),
    op: s.op,
  })
  return { w, r, before, after: w.storage.snapshot(), sessionUser }
}

describe('properties of finishLogin (memory storage)', () => {
  it('rejected, confirmation and 2FA outcomes write nothing (only a verification token), signal nothing', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const { w, r, before, after } = await run(s)
        if (r.isOk() && r.value.kind === 'signedIn') return
        const { oneTimeTokens: _a, ...b } = dataOf(before)
        const { oneTimeTokens: _b, ...a } = dataOf(after)
        expect(a).toEqual(b)
        expect(w.signals.emitted).toEqual([])
        expect(w.mailer.sent.every((m) => m.template === 'accountVerification')).toBe(true)
        // a verification mail only ever goes to a stored address of an existing user (threat 22)
        for (const m of w.mailer.sent) expect(before.userEmails.map((e) => e.email)).toContain(m.to)
      }),
      { numRuns: runs(150) },
    )
  })

  it('ownership: an identity only ever moves to its owner, the session user, or a brand-new user; never to an inactive or suspended user', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const { r, before, after, sessionUser } = await run(s)
        const newUsers = new Set(after.users.filter((u) => !before.users.some((b) => b.id === u.id)).map((u) => u.id))
        const keys = new Set<string>()
        const perUser = new Set<string>()
        for (const row of after.identities) {
          const k = `${row.authProviderId}|${row.ident}`
          expect(keys.has(k)).toBe(false)
          keys.add(k)
          const ku = `${row.authProviderId}|${row.userId}`
          expect(perUser.has(ku)).toBe(false)
          perUser.add(ku)
          const prev = before.identities.find((p) => p.id === row.id)
          if (prev && prev.userId === row.userId) continue
          expect(row.userId === sessionUser || newUsers.has(row.userId)).toBe(true)
        }
        if (r.isOk() && r.value.kind === 'signedIn') {
          const u = after.users.find((x) => x.id === (r.value.kind === 'signedIn' ? r.value.userId : ''))
          expect(u?.isActive).toBe(true)
          expect(u?.isSuspended).toBe(false)
          const row = after.identities.find((x) => x.ident === s.identity.id)
          expect(row?.userId).toBe(u?.id)
          // claims never rewrite a user (threat 4 / invariant 9)
          for (const b of before.users) expect(after.users.find((x) => x.id === b.id)).toEqual(b)
          // roles only from the org default (no invites in this model; threat 50)
          for (const m of after.members) expect(m.role).toBe('member')
        }
      }),
      { numRuns: runs(150) },
    )
  })

  it('threat 26: name and data never change which user the decision targets', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.string({ maxLength: 8 }), async (s, otherName) => {
        const one = await run(s)
        const two = await run(s, { name: otherName, data: { preferred_username: 'admin', role: 'owner' } })
        const view = (x: typeof one.r) =>
          x.isOk() ? [x.value.kind, x.value.kind === 'signedIn' ? x.value.userId : null] : ['err', x.error.code]
        expect(view(two.r)).toEqual(view(one.r))
      }),
      { numRuns: runs(60) },
    )
  })
})

describe('properties of decideLogin (pure)', () => {
  function factsOf(s: Scenario): LoginFacts {
    const seed = seedOf(s)
    const identity = parseIdentity(ident(s.identity))._unsafeUnwrap()
    const byId = new Map(seed.users.map((u) => [u.id, u]))
    const linkedRow = seed.identities.find((i) => i.ident === identity.id) ?? null
    const matches: UserEmailMatch[] = seed.userEmails
      .filter((e) => e.emailNormalized === identity.emailNormalized && byId.get(e.userId)?.isActive)
      .map((e) => ({ user: byId.get(e.userId) as User, email: e }))
    const members = new Map<string, Member | null>(seed.users.map((u) => [u.id, seed.members.find((m) => m.userId === u.id) ?? null]))
    const sessionUser = s.sessionUser ? (byId.get(s.sessionUser) ?? null) : null
    return {
      now: new Date('2026-03-01T12:00:00.000Z'),
      ids: ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8'],
      newUsername: '0'.repeat(32),
      organization: ORG,
      provider: { id: PROVIDER.id, key: 'dummy', displayName: 'IdP' },
      pipeline: { id: 'p1', referrer: null, verificationSentAt: null, initiatorUserId: null },
      identity,
      op: s.op,
      session: { userId: sessionUser?.id ?? null, twoFactorUserId: s.twoFactorUserId, ip: null },
      sessionUser,
      linked: linkedRow ? { identity: linkedRow, user: byId.get(linkedRow.userId) as User, via: 'ident' } : null,
      emailMatches: matches,
      members,
      identitiesByUser: new Map(seed.users.map((u) => [u.id, seed.identities.find((i) => i.userId === u.id) ?? null])),
      identitiesOfUser: new Map(),
      invitesByEmail: new Map(),
      verifiedAddresses: new Map(),
      sessionInvite: null,
      verification: null,
      memberLimitReached: false,
      loginUrl: '/login',
      newVerification: { tokenHash: 'h'.repeat(64), url: 'https://app/verify' },
      verificationSends: null,
      policy: {
        verificationTtlSeconds: 600,
        verificationResendSeconds: 600,
        verificationDailyLimit: 5,
        newUser: 'confirm',
        identitiesOnClaim: 'keep',
      },
    }
  }

  it('identical facts give identical plans; only signIn carries transaction effects', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const facts = factsOf(s)
        const a = decideLogin(facts)
        const b = decideLogin(factsOf(s))
        expect(b).toEqual(a)
        if (a.decision.kind !== 'signIn') {
          expect(a.txEffects).toEqual([])
          expect(a.afterCommit.every((e) => e.type === 'mail.send' && e.message.template === 'accountVerification')).toBe(true)
        }
        // the trace never carries the verification token url
        expect(JSON.stringify(a.trace)).not.toContain('https://app/verify')
      }),
      { numRuns: runs(500) },
    )
  })

  it("policy.newUser 'create' changes only the anonymous, no-match, no-row page: into what op=newuser decides", () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const confirm = factsOf(s)
        const create: LoginFacts = { ...confirm, policy: { ...confirm.policy, newUser: 'create' } }
        const asked = decideLogin(confirm)
        const jit = decideLogin(create)
        if (JSON.stringify(jit.decision) === JSON.stringify(asked.decision)) return
        // The only branch that differs: nobody signed in, no op, no identity row, no account
        // with the email, where 'confirm' offers exactly "create a new account".
        expect(asked.decision).toMatchObject({
          kind: 'confirm',
          allowedOps: ['newuser'],
          page: { page: 'confirm-identity' },
        })
        expect(confirm.op).toBeNull()
        expect(confirm.session.userId).toBeNull()
        expect(confirm.linked).toBeNull()
        expect(confirm.emailMatches).toEqual([])
        // ...and it does exactly what choosing "create a new account" does.
        const chosen = decideLogin({ ...confirm, op: 'newuser' })
        expect(jit.decision).toEqual(chosen.decision)
        expect(jit.txEffects).toEqual(chosen.txEffects)
        expect(jit.afterCommit).toEqual(chosen.afterCommit)
        expect(jit.trace.map((t) => t.rule)).toContain('unknown.jit')
      }),
      { numRuns: runs(500) },
    )
  })

  it('the decision does not depend on the order of email matches (threat 10)', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const facts = factsOf(s)
        const reversed = { ...facts, emailMatches: [...facts.emailMatches].reverse() }
        expect(decideLogin(reversed).decision).toEqual(decideLogin(facts).decision)
      }),
      { numRuns: runs(300) },
    )
  })
})
