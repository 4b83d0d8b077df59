// Section 7 of the threat catalog: invitations and membership (entries 46-51).
// Named by number elsewhere: 46, 47, 48, 50 in test/login/membership.test.ts and
// test/login/new-user.test.ts. Here: 51, and 49 (was threat-49-invite-race.test.ts):
//
// Threat 49: one invite accepted several times. RACERS different identities (each linked to its
// own user, none a member yet) carry ONE valid session invite and their IdP callbacks finish at
// once. Exactly one accepts the invite; the others get the default-role membership (never a
// false `acceptedInviteId`), one `member.accept-invite` audit, the invite row owned by the user
// told so. On PostgreSQL and MariaDB every racer has read the invite as pending before any of
// them writes (barrier after the read, inside the transaction).

import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionInfo } from '../../src/engine/types.js'
import { isAuthError } from '../../src/errors.js'
import type { Member } from '../../src/model/records.js'
import { sha256Hex } from '../../src/state/crypto.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { ORG as HARNESS_ORG, ident, world as loginWorld, session, start } from '../login/harness.js'
import { BACKENDS, engineOn, handleOf, newClock, post, RACERS, unwrap } from './race.js'

const ORG = makeOrganization({ id: 'org1', slug: 'acme', name: 'Acme' })
const PROVIDER = makeProvider({ id: 'ap1', organizationId: ORG.id, providerKey: 'dummy' })
const INVITE_TOKEN = 'invite-token-0123456789abcdef'
const INVITE_EMAIL = 'invited@corp.example'

for (const backend of BACKENDS) {
  if (!backend.enabled) reportSkip(`threat 49 (${backend.name})`, backend.variable ?? '')
  describe.skipIf(!backend.enabled)(`threat 49 on ${backend.name}`, () => {
    let opened: Awaited<ReturnType<typeof backend.open>>
    beforeAll(async () => {
      opened = await backend.open()
    })
    afterAll(async () => {
      await opened?.close()
    })

    it(`${RACERS} identities finishing at once with one session invite: it is accepted once, the rest get the default role`, async () => {
      const clock = newClock()
      const { storage: raw, drop } = await opened.fresh(clock)
      try {
        const users = Array.from({ length: RACERS }, (_, i) =>
          makeUser({ id: `u${String(i).padStart(2, '0')}`, email: `u${i}@corp.example` }),
        )
        const invite = makeMember({
          id: 'm-invite',
          organizationId: ORG.id,
          email: INVITE_EMAIL,
          role: 'admin',
          inviteTokenHash: await sha256Hex(INVITE_TOKEN),
          inviteExpiresAt: new Date('2026-04-01T00:00:00.000Z'),
        })
        await raw.seed({
          organizations: [ORG],
          providers: [PROVIDER],
          users,
          identities: users.map((u) => makeIdentity({ id: `i-${u.id}`, authProviderId: PROVIDER.id, userId: u.id, ident: `ext-${u.id}` })),
          members: [invite],
        })
        const e = engineOn(raw, backend, clock, { at: 'after-read', read: 'getMemberById' })
        const sessionInvite = { memberId: invite.id, token: INVITE_TOKEN, organizationId: ORG.id }
        const sessions: SessionInfo[] = users.map((u) => ({ id: `s-${u.id}`, invite: sessionInvite }))
        const handles: string[] = []
        for (const session of sessions) handles.push(handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session }))))
        const before = await e.snapshot()

        e.storage.arm()
        // Every IdP callback at once: each identity is linked to its own user and asserts the
        // invite's address, so each session invite is addressed to it.
        const results = await Promise.all(
          users.map((u, i) =>
            e.sso.advance({
              handle: handles[i] as string,
              request: post({ id: `ext-${u.id}`, email: INVITE_EMAIL, email_verified: 'on' }),
              session: sessions[i] as SessionInfo,
            }),
          ),
        )
        const after = await e.snapshot()

        const signedIn = results.flatMap((r) => (r.isOk() && r.value.kind === 'signedIn' ? [r.value] : []))
        for (const r of results) {
          if (r.isErr()) {
            expect(isAuthError(r.error)).toBe(true)
            expect(r.error.code).toBe('STORAGE_CONFLICT')
          } else expect(r.value.kind).toBe('signedIn')
        }
        // Exactly one caller is told it accepted the invite, and it did.
        const accepted = signedIn.filter((o) => o.acceptedInviteId !== null)
        expect(accepted).toHaveLength(1)
        const winner = accepted[0]
        expect(winner?.memberId).toBe(invite.id)
        const inviteRow = after.members.find((m) => m.id === invite.id)
        expect(inviteRow).toMatchObject({ userId: winner?.userId, role: 'admin', email: null, inviteTokenHash: null })
        expect(after.audit.filter((a) => a.event === 'member.accept-invite')).toEqual([
          expect.objectContaining({ targetId: invite.id, targetUserId: winner?.userId }),
        ])
        expect(e.signals.emitted.filter((s) => s.name === 'member_joined' && s.payload.memberId === invite.id)).toHaveLength(1)
        // Everyone else who signed in holds their own membership with the org's default role.
        for (const o of signedIn) {
          const row = after.members.find((m) => m.id === o.memberId)
          expect(row?.userId).toBe(o.userId)
          if (o !== winner) {
            expect(row?.role).toBe(ORG.defaultRole)
            expect(o.trace.map((t) => t.rule)).toContain('membership.new')
          }
        }
        // One membership per user, no orphan rows, nothing else touched.
        const memberUsers = after.members.map((m) => m.userId)
        expect(new Set(memberUsers).size).toBe(memberUsers.length)
        expect(after.members).toHaveLength(signedIn.length)
        expect(after.users).toEqual(before.users)
        expect(after.audit.filter((a) => a.event === 'member.add')).toHaveLength(signedIn.length - 1)
      } finally {
        await drop()
      }
    })
  })
}

describe('threat 50: role injection from assertion data', () => {
  it('threat 50: whatever the IdP sends in data and name, a new membership has the org default role, or the accepted invite’s', async () => {
    const invited: Member = {
      ...makeMember({ id: 'inv', organizationId: HARNESS_ORG.id, userId: null, role: 'manager' }),
      email: 'boss@corp.example',
      emailNormalized: 'boss@corp.example',
      inviteTokenHash: await sha256Hex('invite-token'),
      inviteExpiresAt: new Date('2026-04-01T00:00:00.000Z'),
    }
    const roleish = fc.dictionary(
      fc.constantFrom('role', 'roles', 'groups', 'orgRole', 'sentry_role', 'member_role', '__proto__', 'constructor'),
      fc.oneof(
        fc.constantFrom('owner', 'admin', 'manager', 'superuser', 'billing'),
        fc.array(fc.constantFrom('owner', 'admin'), { maxLength: 3 }),
      ),
    )
    await fc.assert(
      fc.asyncProperty(roleish, fc.constantFrom('owner', 'admin', 'Owner'), fc.boolean(), async (data, name, withInvite) => {
        const w = loginWorld({ members: withInvite ? [invited] : [] })
        const email = withInvite ? 'boss@corp.example' : 'new@corp.example'
        const out = await w.login.finishLogin({
          handle: await start(w),
          session: session(),
          identity: ident({ id: 'ext-n', email, emailVerified: true, name, data: JSON.parse(JSON.stringify(data)) }),
          op: 'newuser',
        })
        if (out.isErr()) throw new Error(out.error.code)
        if (out.value.kind !== 'signedIn') throw new Error(out.value.kind)
        const userId = out.value.userId
        const roles = w.storage
          .snapshot()
          .members.filter((m) => m.userId === userId)
          .map((m) => m.role)
        expect(roles).toEqual([withInvite ? 'manager' : HARNESS_ORG.defaultRole])
      }),
      { numRuns: 60, seed: 50 },
    )
  })
})

// Threat 51: Sentry re-creates the membership of a removed member whose identity still logs in
// (spec 3.3), and that stays the default. `policy.rejoinOnLogin: false` refuses it: NOT_A_MEMBER,
// nothing written, the pipeline ended; an invite sent again still brings the user back.
describe('threat 51: a removed member silently rejoins', () => {
  const removed = makeUser({ id: 'r', email: 'r@corp.example' })
  const removedIdentity = makeIdentity({ id: 'ai-r', authProviderId: 'ap1', userId: 'r', ident: 'ext-r' })
  const R = ident({ id: 'ext-r', email: 'r@corp.example' })

  it('threat 51: by default (Sentry) the login re-creates the membership and audits member.add', async () => {
    const w = loginWorld({ users: [removed], identities: [removedIdentity] })
    const out = await w.login.finishLogin({ handle: await start(w), session: session(), identity: R })
    expect(out.isOk() && out.value.kind === 'signedIn' && out.value.created.member).toBe(true)
    expect(w.storage.snapshot().audit.map((a) => a.event)).toContain('member.add')
  })

  it('threat 51: rejoinOnLogin false: NOT_A_MEMBER, no membership, nothing written, the pipeline ended', async () => {
    const w = loginWorld({ users: [removed], identities: [removedIdentity], policy: { rejoinOnLogin: false } })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await w.login.finishLogin({ handle, session: session(), identity: R })
    expect(out.isErr() && out.error.code).toBe('NOT_A_MEMBER')
    const { pipelineStates: _b, ...data } = before
    const { pipelineStates: _a, ...after } = w.storage.snapshot()
    expect(after).toEqual(data)
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
    const again = await w.login.finishLogin({ handle, session: session(), identity: R })
    expect(again.isErr() && again.error.code).toBe('STATE_CONSUMED')
  })

  it('threat 51: rejoinOnLogin false: asked before any second factor, so a removed user is not prompted for one', async () => {
    const w = loginWorld({ users: [{ ...removed, has2fa: true }], identities: [removedIdentity], policy: { rejoinOnLogin: false } })
    const out = await w.login.finishLogin({ handle: await start(w), session: session(), identity: R })
    expect(out.isErr() && out.error.code).toBe('NOT_A_MEMBER')
  })

  it('threat 51: rejoinOnLogin false: a member signs in as before, and a removed user invited again joins through the invite', async () => {
    const member = makeMember({ id: 'm-r', organizationId: HARNESS_ORG.id, userId: 'r' })
    const w1 = loginWorld({ users: [removed], identities: [removedIdentity], members: [member], policy: { rejoinOnLogin: false } })
    const back = await w1.login.finishLogin({ handle: await start(w1), session: session(), identity: R })
    expect(back.isOk() && back.value.kind === 'signedIn' && back.value.userId).toBe('r')
    const invitedAgain: Member = {
      ...makeMember({ id: 'inv-r', organizationId: HARNESS_ORG.id, userId: null, role: 'admin' }),
      email: 'r@corp.example',
      emailNormalized: 'r@corp.example',
      inviteTokenHash: await sha256Hex('invite-token'),
      inviteExpiresAt: new Date('2026-04-01T00:00:00.000Z'),
    }
    const w2 = loginWorld({ users: [removed], identities: [removedIdentity], members: [invitedAgain], policy: { rejoinOnLogin: false } })
    const joined = await w2.login.finishLogin({ handle: await start(w2), session: session(), identity: R })
    expect(joined.isOk() && joined.value.kind === 'signedIn' && joined.value.acceptedInviteId).toBe('inv-r')
    expect(w2.storage.snapshot().members.find((m) => m.id === 'inv-r')?.userId).toBe('r')
  })
})
