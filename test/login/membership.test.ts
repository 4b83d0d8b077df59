// Spec 3.9 + threats 46-51: memberships and invites.
import { describe, expect, it } from 'vitest'
import { LIMITS } from '../../src/model/limits.js'
import { type Member, NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, finishOk, ident, ORG, OTHER_ORG, PROVIDER, session, sha256Hex, start, world } from './harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const FUTURE = new Date('2026-04-01T00:00:00.000Z')
const PAST = new Date('2026-02-01T00:00:00.000Z')

async function invite(partial: Partial<Member> = {}): Promise<Member> {
  return makeMember({
    id: 'inv',
    organizationId: ORG.id,
    email: 'alice@corp.example',
    role: 'admin',
    inviteTokenHash: await sha256Hex('invite-token'),
    inviteExpiresAt: FUTURE,
    ...partial,
  })
}

async function loginWith(
  inv: Member | null,
  sessionInvite: { memberId: string; token: string; organizationId: string } | null,
  opts: { email?: string; addressVerified?: boolean } = {},
) {
  const userEmails = [
    { userId: 'alice', email: alice.email, emailNormalized: alice.email, isVerified: opts.addressVerified ?? true, isPrimary: true },
  ]
  const w = world({ users: [alice], userEmails, identities: [aliceIdentity], members: inv ? [inv] : [] })
  const handle = await start(w)
  const before = w.storage.snapshot()
  const out = await finishOk(w, {
    handle,
    session: session({ invite: sessionInvite }),
    identity: ident({ id: 'ext-alice', email: opts.email ?? 'alice@corp.example' }),
  })
  if (out.kind !== 'signedIn') throw new Error(out.kind)
  return { w, out, d: diff(before, w.storage.snapshot()), before }
}

describe('invites (spec 3.9)', () => {
  it('a valid session invite is accepted: row claimed, token fields cleared, ssoLinked, audit + member_joined', async () => {
    const inv = await invite()
    const { w, out, d } = await loginWith(inv, { memberId: 'inv', token: 'invite-token', organizationId: ORG.id })
    expect(out.acceptedInviteId).toBe('inv')
    expect(out.memberId).toBe('inv')
    expect(out.created.member).toBe(false)
    expect(d.members?.changed).toEqual([
      {
        before: inv,
        after: {
          ...inv,
          userId: 'alice',
          email: null,
          emailNormalized: null,
          inviteTokenHash: null,
          inviteExpiresAt: null,
          role: 'admin',
          flags: { ...NO_FLAGS, ssoLinked: true },
        },
      },
    ])
    expect(d.members?.added).toEqual([])
    expect((d.audit?.added ?? []).map((a) => (a as { event: string }).event)).toEqual(['member.accept-invite'])
    expect(w.signals.emitted).toEqual([{ name: 'member_joined', payload: { organizationId: ORG.id, userId: 'alice', memberId: 'inv' } }])
    expect(w.mailer.sent).toEqual([])
  })

  const rejected: [string, () => Promise<[Member, { memberId: string; token: string; organizationId: string }]>][] = [
    [
      'another org (threat 47)',
      async () => [
        await invite({ organizationId: OTHER_ORG.id }),
        { memberId: 'inv', token: 'invite-token', organizationId: OTHER_ORG.id },
      ],
    ],
    [
      'org id forged in the session',
      async () => [await invite({ organizationId: OTHER_ORG.id }), { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }],
    ],
    ['wrong token', async () => [await invite(), { memberId: 'inv', token: 'guess', organizationId: ORG.id }]],
    [
      'expired (threat 48)',
      async () => [await invite({ inviteExpiresAt: PAST }), { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }],
    ],
    [
      'addressed to someone else (threat 46)',
      async () => [await invite({ email: 'boss@corp.example' }), { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }],
    ],
    [
      'already accepted (threat 49)',
      async () => [await invite({ userId: 'someone', email: null }), { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }],
    ],
  ]
  for (const [name, make] of rejected) {
    it(`a session invite is ignored when ${name}: default membership, invite row unchanged`, async () => {
      const [inv, si] = await make()
      // the address is unverified so that only the session path could accept the invite
      const { w, out, d, before } = await loginWith(inv, si, { addressVerified: false })
      expect(out.acceptedInviteId).toBeNull()
      expect(out.trace.map((t) => t.rule)).toContain('membership.invite.session-ignored')
      expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(before.members.find((m) => m.id === 'inv'))
      expect(d.members?.added).toEqual([
        expect.objectContaining({ userId: 'alice', role: 'member', flags: { ...NO_FLAGS, ssoLinked: true } }),
      ])
      expect(w.signals.emitted).toEqual([])
    })
  }

  it('a session invite whose member id is exactly LIMITS.id characters long is accepted', async () => {
    const id = 'i'.repeat(LIMITS.id)
    const inv = await invite({ id })
    // the address is unverified so that only the session path could accept the invite
    const { out } = await loginWith(inv, { memberId: id, token: 'invite-token', organizationId: ORG.id }, { addressVerified: false })
    expect(out.acceptedInviteId).toBe(id)
    expect(out.memberId).toBe(id)
  })

  it('an unapproved session invite is ignored; an unapproved request for another address is not deleted', async () => {
    const inv = await invite({ inviteStatus: 'requested_to_join', email: 'bob@corp.example' })
    const { w, before } = await loginWith(inv, { memberId: 'inv', token: 'invite-token', organizationId: ORG.id })
    expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(before.members.find((m) => m.id === 'inv'))
  })

  it("a pending invite to the user's verified address is accepted without a session invite", async () => {
    const { out, d } = await loginWith(await invite(), null)
    expect(out.acceptedInviteId).toBe('inv')
    expect(d.members?.changed).toHaveLength(1)
  })

  it("threat 46: a pending invite to the user's UNVERIFIED address is not accepted", async () => {
    const inv = await invite()
    const { out, w } = await loginWith(inv, null, { addressVerified: false })
    expect(out.acceptedInviteId).toBeNull()
    expect(out.trace.map((t) => t.rule)).toContain('membership.invite.email-unverified')
    expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(inv)
  })

  it("threat 46: another account's verified copy of the address does not let the user take the invite", async () => {
    const inv = await invite()
    const eve = makeUser({ id: 'eve', email: 'eve@corp.example' })
    const w = world({
      users: [alice, eve],
      userEmails: [
        { userId: 'alice', email: alice.email, emailNormalized: alice.email, isVerified: false, isPrimary: true },
        { userId: 'eve', email: alice.email, emailNormalized: alice.email, isVerified: true, isPrimary: false },
      ],
      identities: [aliceIdentity],
      members: [inv],
    })
    const handle = await start(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: alice.email }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.userId).toBe('alice')
    expect(out.acceptedInviteId).toBeNull()
    expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(inv)
  })

  it("the user's own unapproved request is deleted and replaced by a new membership", async () => {
    const inv = await invite({ inviteStatus: 'requested_to_be_invited' })
    const { out, d } = await loginWith(inv, null)
    expect(out.acceptedInviteId).toBeNull()
    expect(d.members?.removed).toEqual([inv])
    expect(d.members?.added).toEqual([expect.objectContaining({ userId: 'alice', role: 'member' })])
  })

  it('threat 46: a new user with an UNVERIFIED IdP email does not take the invite addressed to it', async () => {
    const inv = await invite({ email: 'boss@corp.example', role: 'owner' })
    const w = world({ members: [inv] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-b', email: 'boss@corp.example' }),
      op: 'newuser',
    })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.acceptedInviteId).toBeNull()
    const members = w.storage.snapshot().members
    expect(members.find((m) => m.id === 'inv')).toEqual(inv)
    expect(members.find((m) => m.userId === out.userId)?.role).toBe('member')
  })

  it('a new user whose IdP verified the invited address takes the invite (its role, not IdP data)', async () => {
    const inv = await invite({ email: 'boss@corp.example', role: 'manager' })
    const w = world({ members: [inv] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-b', email: 'boss@corp.example', emailVerified: true, data: { role: 'owner' } }),
      op: 'newuser',
    })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out.acceptedInviteId).toBe('inv')
    expect(w.storage.snapshot().members).toEqual([expect.objectContaining({ id: 'inv', userId: out.userId, role: 'manager' })])
  })

  it('an existing membership is kept: the invite is not touched', async () => {
    const inv = await invite({ id: 'inv' })
    const own = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
    const w = world({
      users: [alice],
      identities: [aliceIdentity],
      members: [own, { ...inv, email: 'alice2@corp.example', emailNormalized: 'alice2@corp.example' }],
    })
    const handle = await start(w)
    const before = w.storage.snapshot()
    await finishOk(w, {
      handle,
      session: session({ invite: { memberId: 'inv', token: 'invite-token', organizationId: ORG.id } }),
      identity: ident({ id: 'ext-alice' }),
    })
    expect(w.storage.snapshot().members).toEqual(before.members)
  })
})
