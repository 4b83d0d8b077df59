// planMembership / linkFixup as pure functions (shared with the setup pipeline).
import { describe, expect, it } from 'vitest'
import { linkFixup, type MembershipFacts, planIds, planMembership } from '../../src/core/membership.js'
import { NO_FLAGS } from '../../src/model/records.js'
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
