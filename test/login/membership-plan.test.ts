// planMembership / linkFixup as pure functions (shared with the setup pipeline).
import { describe, expect, it } from 'vitest'
import { linkFixup, type MembershipFacts, planIds, planMembership, type SessionInviteFacts } from '../../src/core/membership.js'
import { type Member, NO_FLAGS } from '../../src/model/records.js'
import { makeMember } from '../../src/testing/fixtures.js'
import { ORG } from './harness.js'

const NOW = new Date('2026-03-01T12:00:00.000Z')
const facts = (partial: Partial<MembershipFacts> = {}): MembershipFacts => ({
  organization: ORG,
  user: { id: 'u', email: 'u@corp.example' },
  member: null,
  sessionInvite: null,
  emailInvite: null,
  verifiedEmails: [],
  identityEmailNormalized: 'u@corp.example',
  memberLimitReached: false,
  now: NOW,
  ip: '198.51.100.1',
  ...partial,
})

describe('linkFixup', () => {
  it('writes only when ssoInvalid is set or ssoLinked unset, and keeps the other flags', () => {
    const base = makeMember({ id: 'm', organizationId: ORG.id, userId: 'u' })
    expect(linkFixup({ ...base, flags: { ...NO_FLAGS, ssoLinked: true } })).toBeNull()
    expect(linkFixup({ ...base, flags: { ...NO_FLAGS, ssoLinked: true, ssoInvalid: true, idpProvisioned: true } })).toEqual({
      flags: { ...NO_FLAGS, ssoLinked: true, ssoInvalid: false, idpProvisioned: true },
    })
    expect(linkFixup({ ...base, flags: { ...NO_FLAGS, memberLimitRestricted: true } })).toEqual({
      flags: { ...NO_FLAGS, ssoLinked: true, memberLimitRestricted: true },
    })
  })
})

describe('planMembership', () => {
  it('new membership: default role, ssoLinked, restricted when over the limit, member.add audit with ip', () => {
    const plan = planMembership(facts({ memberLimitReached: true }), planIds(['m1', 'a1']))
    expect(plan.created).toBe(true)
    expect(plan.member).toEqual({
      id: 'm1',
      organizationId: ORG.id,
      userId: 'u',
      email: null,
      emailNormalized: null,
      role: 'member',
      flags: { ...NO_FLAGS, ssoLinked: true, memberLimitRestricted: true },
      inviteTokenHash: null,
      inviteExpiresAt: null,
      inviteStatus: 'approved',
      createdAt: NOW,
    })
    expect(plan.txEffects).toEqual([
      { type: 'member.create', member: plan.member },
      {
        type: 'audit.record',
        entry: {
          id: 'a1',
          event: 'member.add',
          actorUserId: 'u',
          organizationId: ORG.id,
          targetId: 'm1',
          targetUserId: 'u',
          ip: '198.51.100.1',
          data: { memberId: 'm1', email: 'u@corp.example', userId: 'u', role: 'member', inviteStatus: 'approved' },
          createdAt: NOW,
        },
      },
    ])
    expect(plan.afterCommit).toEqual([])
  })

  it('existing, already linked membership: no effects at all', () => {
    const member = makeMember({ id: 'm', organizationId: ORG.id, userId: 'u', flags: { ...NO_FLAGS, ssoLinked: true } })
    const plan = planMembership(facts({ member }), planIds([]))
    expect(plan).toMatchObject({ member, created: false, acceptedInviteId: null, txEffects: [], afterCommit: [] })
  })

  it('never takes more ids than it needs, and fails loudly (programmer error) when short', () => {
    expect(() => planMembership(facts(), planIds(['m1']))).toThrow(/pre-allocated/)
  })
})

describe('planMembership: invites (reasons and traces; issue 12 item 4)', () => {
  const TOKEN = 't'.repeat(64)
  const invite = (over: Partial<Member> = {}): Member =>
    makeMember({
      id: 'inv',
      organizationId: ORG.id,
      email: 'u@corp.example',
      role: 'admin',
      inviteStatus: 'approved',
      inviteTokenHash: TOKEN,
      inviteExpiresAt: new Date(NOW.getTime() + 1000),
      flags: { ...NO_FLAGS, idpProvisioned: true, ssoInvalid: true },
      ...over,
    })
  const session = (member: Member | null, over: Partial<SessionInviteFacts> = {}): SessionInviteFacts => ({
    organizationId: ORG.id,
    tokenHash: TOKEN,
    member,
    ...over,
  })
  const ignoredBecause = (f: Partial<MembershipFacts>) => {
    const plan = planMembership(facts(f), planIds(['m1', 'a1']))
    expect(plan).toMatchObject({ created: true, acceptedInviteId: null, member: { id: 'm1', role: 'member' } })
    return plan.trace.find((t) => t.rule === 'membership.invite.session-ignored')?.detail
  }

  it('a session invite is accepted: the whole plan', () => {
    const inv = invite()
    const plan = planMembership(facts({ sessionInvite: session(inv) }), planIds(['a1']))
    const flags = { ...NO_FLAGS, idpProvisioned: true, ssoLinked: true }
    const member = { ...inv, userId: 'u', email: null, emailNormalized: null, inviteTokenHash: null, inviteExpiresAt: null, flags }
    expect(plan).toEqual({
      member,
      created: false,
      acceptedInviteId: 'inv',
      txEffects: [
        { type: 'member.acceptInvite', id: 'inv', acceptance: { userId: 'u', flags } },
        {
          type: 'audit.record',
          entry: {
            id: 'a1',
            event: 'member.accept-invite',
            actorUserId: 'u',
            organizationId: ORG.id,
            targetId: 'inv',
            targetUserId: 'u',
            ip: '198.51.100.1',
            data: { memberId: 'inv', email: 'u@corp.example', userId: 'u', role: 'admin', inviteStatus: 'approved' },
            createdAt: NOW,
          },
        },
      ],
      afterCommit: [
        { type: 'signal.emit', signal: { name: 'member_joined', payload: { organizationId: ORG.id, userId: 'u', memberId: 'inv' } } },
      ],
      trace: [{ rule: 'membership.invite.accepted.session', detail: 'invite inv accepted (session); role admin from the invite' }],
    })
  })

  it('a session invite may be addressed to the identity’s address instead of the user’s; no expiry is no expiry', () => {
    const inv = invite({ email: 'idp@corp.example', inviteExpiresAt: null })
    const plan = planMembership(facts({ sessionInvite: session(inv), identityEmailNormalized: 'idp@corp.example' }), planIds(['a1']))
    expect(plan.acceptedInviteId).toBe('inv')
    // the session invite is accepted whatever the trust policy: no trust note in its trace
    const withTrust = planMembership(facts({ sessionInvite: session(invite()), trustPolicy: 'okta' }), planIds(['a1']))
    expect(withTrust.trace).toEqual([
      { rule: 'membership.invite.accepted.session', detail: 'invite inv accepted (session); role admin from the invite' },
    ])
  })

  it('each reason a session invite is ignored is named in the trace', () => {
    const cases: [string, Partial<MembershipFacts>][] = [
      ['other-org', { sessionInvite: session(invite(), { organizationId: 'org2' }) }],
      ['not-found', { sessionInvite: session(null) }],
      ['other-org', { sessionInvite: session(invite({ organizationId: 'org2' })) }],
      ['already-accepted', { sessionInvite: session(invite({ userId: 'someone' })) }],
      ['not-approved', { sessionInvite: session(invite({ inviteStatus: 'requested_to_be_invited' })) }],
      ['expired', { sessionInvite: session(invite({ inviteExpiresAt: NOW })) }],
      ['expired', { sessionInvite: session(invite({ inviteExpiresAt: new Date(NOW.getTime() - 1) })) }],
      ['token', { sessionInvite: session(invite(), { tokenHash: 'x'.repeat(64) }) }],
      ['token', { sessionInvite: session(invite({ inviteTokenHash: null })) }],
      ['addressed-to-someone-else', { sessionInvite: session(invite({ email: 'boss@corp.example' })) }],
      ['addressed-to-someone-else', { sessionInvite: session(invite({ email: null })) }],
      ['addressed-to-someone-else', { sessionInvite: session(invite({ email: null })), identityEmailNormalized: null }],
    ]
    for (const [reason, f] of cases) expect(ignoredBecause(f), reason).toBe(`session invite ignored: ${reason}`)
    // no session invite at all: nothing to say
    expect(ignoredBecause({})).toBeUndefined()
  })

  it('an invite by email to a verified address is accepted, and the trace names the trust policy', () => {
    const inv = invite({ inviteTokenHash: null })
    const plan = planMembership(facts({ emailInvite: inv, verifiedEmails: ['u@corp.example'], trustPolicy: 'okta' }), planIds(['a1']))
    expect(plan).toMatchObject({ created: false, acceptedInviteId: 'inv', member: { id: 'inv', userId: 'u', role: 'admin' } })
    expect(plan.trace).toEqual([
      {
        rule: 'membership.invite.accepted.email',
        detail: "invite inv accepted (email); role admin from the invite; the address counted as verified under trust policy 'okta'",
      },
    ])
    const plain = planMembership(facts({ emailInvite: inv, verifiedEmails: ['u@corp.example'] }), planIds(['a1']))
    expect(plain.trace[0]?.detail).toBe('invite inv accepted (email); role admin from the invite')
  })

  it('an invite by email that is not this user’s pending invite in this org is not looked at', () => {
    for (const inv of [invite({ organizationId: 'org2' }), invite({ userId: 'someone' }), invite({ email: 'other@corp.example' })]) {
      const plan = planMembership(
        facts({ emailInvite: inv, verifiedEmails: ['u@corp.example', 'other@corp.example'] }),
        planIds(['m1', 'a1']),
      )
      expect(plan.created).toBe(true)
      expect(plan.txEffects.map((e) => e.type)).toEqual(['member.create', 'audit.record'])
      expect(plan.trace.map((t) => t.rule)).toEqual(['membership.new'])
    }
  })

  it('the user’s own unapproved request is deleted and replaced', () => {
    const inv = invite({ inviteStatus: 'requested_to_be_invited' })
    const plan = planMembership(facts({ emailInvite: inv, verifiedEmails: ['u@corp.example'] }), planIds(['m1', 'a1']))
    expect(plan.txEffects.map((e) => e.type)).toEqual(['member.delete', 'member.create', 'audit.record'])
    expect(plan.txEffects[0]).toEqual({ type: 'member.delete', id: 'inv' })
    expect(plan.trace).toEqual([
      { rule: 'membership.invite.request-deleted', detail: "the user's own requested_to_be_invited request inv is deleted and replaced" },
      { rule: 'membership.new', detail: 'new membership with the org default role member' },
    ])
  })

  it('an expired invite by email, or one to an unverified address, is ignored with its reason', () => {
    const expired = planMembership(
      facts({ emailInvite: invite({ inviteExpiresAt: NOW }), verifiedEmails: ['u@corp.example'] }),
      planIds(['m1', 'a1']),
    )
    expect(expired.trace[0]).toEqual({ rule: 'membership.invite.email-ignored', detail: 'invite by email ignored: expired' })
    expect(expired.created).toBe(true)
    const unverified = planMembership(facts({ emailInvite: invite(), verifiedEmails: ['x@corp.example'] }), planIds(['m1', 'a1']))
    expect(unverified.trace[0]).toEqual({
      rule: 'membership.invite.email-unverified',
      detail: 'invite by email ignored: the address is not verified',
    })
    expect(unverified.txEffects.map((e) => e.type)).toEqual(['member.create', 'audit.record'])
    const underPolicy = planMembership(facts({ emailInvite: invite(), trustPolicy: 'okta' }), planIds(['m1', 'a1']))
    expect(underPolicy.trace[0]?.detail).toBe("invite by email ignored: the address is not verified (trust policy 'okta')")
  })

  it('the user’s address is compared normalized', () => {
    const plan = planMembership(
      facts({ user: { id: 'u', email: 'U@Corp.Example' }, emailInvite: invite(), verifiedEmails: ['u@corp.example'] }),
      planIds(['a1']),
    )
    expect(plan.acceptedInviteId).toBe('inv')
    const si = planMembership(
      facts({ user: { id: 'u', email: 'U@Corp.Example' }, identityEmailNormalized: null, sessionInvite: session(invite()) }),
      planIds(['a1']),
    )
    expect(si.acceptedInviteId).toBe('inv')
  })

  it('an existing membership needing the fix-up: the patched member and its trace', () => {
    const m = makeMember({ id: 'm', organizationId: ORG.id, userId: 'u', flags: { ...NO_FLAGS, ssoInvalid: true } })
    const plan = planMembership(facts({ member: m, sessionInvite: session(invite()) }), planIds([]))
    expect(plan).toEqual({
      member: { ...m, flags: { ...NO_FLAGS, ssoLinked: true } },
      created: false,
      acceptedInviteId: null,
      txEffects: [{ type: 'member.update', id: 'm', patch: { flags: { ...NO_FLAGS, ssoLinked: true } } }],
      afterCommit: [],
      trace: [{ rule: 'membership.link-fixup', detail: 'existing membership: ssoLinked on, ssoInvalid off' }],
    })
    const linked = planMembership(facts({ member: { ...m, flags: { ...NO_FLAGS, ssoLinked: true } } }), planIds([]))
    expect(linked.trace).toEqual([{ rule: 'membership.already-linked', detail: 'existing membership already linked: no write' }])
  })

  it('the member limit is named in the trace', () => {
    expect(planMembership(facts({ memberLimitReached: true }), planIds(['m1', 'a1'])).trace).toEqual([
      { rule: 'membership.new', detail: 'new membership with the org default role member, member limit reached: restricted' },
    ])
  })

  it('planIds gives the ids in order and says how many there were', () => {
    const ids = planIds(['x', 'y'])
    expect([ids.next(), ids.next()]).toEqual(['x', 'y'])
    expect(() => ids.next()).toThrow('planIds: 2 pre-allocated ids were not enough')
  })
})
