// Spec 3.7 (N2) + threats 13, 25: attaching an identity.
import { describe, expect, it } from 'vitest'
import { type AttachFacts, defaultMergeIdentityData, planAttach } from '../../src/core/attach.js'
import { planIds } from '../../src/core/membership.js'
import { parseIdentity } from '../../src/model/identity.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, finishOk, ident, ORG, PROVIDER, session, start, world } from './harness.js'

const NOW = new Date('2026-03-01T12:00:00.000Z')
const s = makeUser({ id: 's', email: 's@corp.example' })
const identity = parseIdentity({ id: 'ext-x', email: 'x@corp.example', data: { t: 1 } })._unsafeUnwrap()

function facts(partial: Partial<AttachFacts> = {}): AttachFacts {
  return {
    authProviderId: PROVIDER.id,
    organizationId: ORG.id,
    identity,
    target: s,
    sessionUserId: 's',
    byIdent: null,
    byUser: null,
    previousOwnerMember: null,
    allowRekey: true,
    now: NOW,
    ip: null,
    ...partial,
  }
}

describe('planAttach (pure)', () => {
  it('N2: session user differs from the target → SESSION_USER_MISMATCH and no effects', () => {
    const r = planAttach(facts({ sessionUserId: 'someone-else' }), planIds(['i1', 'a1']))
    expect(r._unsafeUnwrapErr().code).toBe('SESSION_USER_MISMATCH')
  })

  it('new link: create + sso-identity.link audit (user id and ident only, never tokens)', () => {
    const plan = planAttach(facts(), planIds(['i1', 'a1']))._unsafeUnwrap()
    expect(plan.isNew).toBe(true)
    expect(plan.txEffects.map((e) => e.type)).toEqual(['identity.create', 'audit.record'])
    const audit = plan.txEffects[1]
    expect(audit?.type === 'audit.record' && audit.entry).toMatchObject({
      event: 'sso-identity.link',
      targetId: 'i1',
      data: { userId: 's', ident: 'ext-x' },
    })
  })

  it('re-attach of the same user: refresh only, no audit', () => {
    const row = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-x', data: { refresh_token: 'r' } })
    const plan = planAttach(facts({ byIdent: row, byUser: row }), planIds([]))._unsafeUnwrap()
    expect(plan.isNew).toBe(false)
    expect(plan.txEffects).toEqual([
      {
        type: 'identity.update',
        id: 'ai',
        patch: { userId: 's', ident: 'ext-x', data: { t: 1, refresh_token: 'r' }, lastVerified: NOW, lastSynced: NOW },
      },
    ])
  })

  it("re-point from another user: wipe the target's other identities, mark the previous owner ssoInvalid", () => {
    const row = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'old', ident: 'ext-x' })
    const prev = makeMember({
      id: 'm-old',
      organizationId: ORG.id,
      userId: 'old',
      flags: { ...NO_FLAGS, ssoLinked: true, idpProvisioned: true },
    })
    const plan = planAttach(facts({ byIdent: row, previousOwnerMember: prev }), planIds([]))._unsafeUnwrap()
    expect(plan.previousOwnerId).toBe('old')
    expect(plan.txEffects).toEqual([
      { type: 'identity.deleteForUser', authProviderId: PROVIDER.id, userId: 's', exceptId: 'ai' },
      { type: 'member.update', id: 'm-old', patch: { flags: { ...NO_FLAGS, ssoLinked: false, ssoInvalid: true, idpProvisioned: true } } },
      { type: 'identity.update', id: 'ai', patch: { userId: 's', ident: 'ext-x', data: { t: 1 }, lastVerified: NOW, lastSynced: NOW } },
    ])
  })

  it('threat 13: re-key only when allowed', () => {
    const mine = makeIdentity({ id: 'mine', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-old' })
    expect(planAttach(facts({ byUser: mine, allowRekey: false }), planIds([]))._unsafeUnwrapErr().code).toBe('IDENTITY_CONFLICT')
    const plan = planAttach(facts({ byUser: mine }), planIds([]))._unsafeUnwrap()
    expect(plan.rekeyed).toBe(true)
    expect(plan.txEffects.map((e) => e.type)).toEqual(['identity.update'])
  })

  it('default merge keeps a refresh token the new data lacks, and only then', () => {
    expect(defaultMergeIdentityData({ a: 1 }, { refresh_token: 'r', b: 2 })).toEqual({ a: 1, refresh_token: 'r' })
    expect(defaultMergeIdentityData({ refresh_token: 'n' }, { refresh_token: 'r' })).toEqual({ refresh_token: 'n' })
  })
})

describe('attach through finishLogin', () => {
  it("signed-in confirm re-points an inactive user's identity, wipes S's old identity, invalidates the old member", async () => {
    const ghost = makeUser({ id: 'ghost', email: 'ghost@corp.example', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'ext-x' })
    const sOld = makeIdentity({ id: 'ai-s-old', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-s-old' })
    const ghostMember = makeMember({ id: 'm-ghost', organizationId: ORG.id, userId: 'ghost', flags: { ...NO_FLAGS, ssoLinked: true } })
    const sMember = makeMember({ id: 'm-s', organizationId: ORG.id, userId: 's', flags: { ...NO_FLAGS, ssoLinked: true } })
    const w = world({ users: [ghost, s], identities: [row, sOld], members: [ghostMember, sMember] })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-x', email: 'x@corp.example' }),
      op: 'confirm',
    })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out).toMatchObject({ userId: 's', memberId: 'm-s', linked: true, created: { user: false, identity: false, member: false } })
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['identities', 'members'])
    expect(d.identities?.removed).toEqual([sOld])
    expect(d.identities?.changed).toEqual([{ before: row, after: { ...row, userId: 's', data: {}, lastVerified: NOW, lastSynced: NOW } }])
    expect(d.members?.changed).toEqual([{ before: ghostMember, after: { ...ghostMember, flags: { ...NO_FLAGS, ssoInvalid: true } } }])
    // no sso-identity.link audit: the link was not new
    expect(w.storage.snapshot().audit).toEqual([])
  })

  it("signed-in confirm re-keys the session user's own identity when the IdP subject changed", async () => {
    const sOld = makeIdentity({ id: 'ai-s', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-old' })
    const w = world({
      users: [s],
      identities: [sOld],
      members: [makeMember({ id: 'm-s', organizationId: ORG.id, userId: 's', flags: { ...NO_FLAGS, ssoLinked: true } })],
    })
    const handle = await start(w, { initiatorUserId: 's' })
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-new', email: 'x@corp.example' }),
      op: 'confirm',
    })
    expect(out.kind === 'signedIn' && out.linked).toBe(true)
    expect(w.storage.snapshot().identities).toEqual([expect.objectContaining({ id: 'ai-s', ident: 'ext-new', userId: 's' })])
  })
})

describe('attach guards through finishLogin', () => {
  it('threat 14: a confirm by a session user with an unpassed second factor writes nothing until 2FA passed', async () => {
    const s2 = { ...s, has2fa: true }
    const w = world({ users: [s2] })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-x', email: 'x@corp.example' }),
      op: 'confirm',
    })
    expect(out.kind).toBe('twoFactorRequired')
    expect(w.storage.snapshot().identities).toEqual(before.identities)
    expect(w.storage.snapshot().members).toEqual(before.members)
    const done = await finishOk(w, { handle, session: session({ userId: 's', twoFactorUserId: 's' }), op: 'confirm' })
    expect(done.kind === 'signedIn' && done.userId).toBe('s')
  })

  it('a suspended session user cannot link: USER_SUSPENDED, nothing written', async () => {
    const w = world({ users: [{ ...s, isSuspended: true }] })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const r = await w.login.finishLogin({
      handle,
      session: session({ userId: 's' }),
      identity: ident({ id: 'ext-x', email: 'x@corp.example' }),
      op: 'confirm',
    })
    expect(r._unsafeUnwrapErr().code).toBe('USER_SUSPENDED')
    expect(w.storage.snapshot().identities).toEqual(before.identities)
  })
})

// Mutation testing (issue 12 item 4): the plan's flags, its trace (what `explain()` shows), the
// error redirects and details, and when the previous owner's membership is (not) touched.
describe('planAttach: exact plans', () => {
  it('errors carry the caller’s redirect (orgLogin by default) and the re-key reason', () => {
    const mismatch = planAttach(facts({ sessionUserId: 'other' }), planIds([]))._unsafeUnwrapErr()
    expect([mismatch.code, mismatch.redirect]).toEqual(['SESSION_USER_MISMATCH', 'orgLogin'])
    expect(planAttach(facts({ sessionUserId: 'other', redirect: 'authSettings' }), planIds([]))._unsafeUnwrapErr().redirect).toBe(
      'authSettings',
    )
    const mine = makeIdentity({ id: 'mine', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-old' })
    const conflict = planAttach(facts({ byUser: mine, allowRekey: false, redirect: 'authSettings' }), planIds([]))._unsafeUnwrapErr()
    expect([conflict.code, conflict.redirect, conflict.details]).toEqual([
      'IDENTITY_CONFLICT',
      'authSettings',
      { reason: 'rekey-requires-session' },
    ])
  })

  it('an anonymous attach (no session user) is allowed', () => {
    expect(planAttach(facts({ sessionUserId: null }), planIds(['i1', 'a1'])).isOk()).toBe(true)
  })

  it('new link: the identity, flags and trace', () => {
    const plan = planAttach(facts(), planIds(['i1', 'a1']))._unsafeUnwrap()
    expect(plan.identity).toEqual({
      id: 'i1',
      authProviderId: PROVIDER.id,
      userId: 's',
      ident: 'ext-x',
      data: { t: 1 },
      lastVerified: NOW,
      lastSynced: NOW,
      createdAt: NOW,
    })
    expect([plan.isNew, plan.rekeyed, plan.previousOwnerId]).toEqual([true, false, null])
    expect(plan.trace).toEqual([{ rule: 'attach.new', detail: 'new identity linked to user s' }])
  })

  it('refresh: the identity, flags and trace', () => {
    const row = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-x' })
    const plan = planAttach(facts({ byIdent: row }), planIds([]))._unsafeUnwrap()
    expect(plan.identity).toEqual({ ...row, data: { t: 1 }, lastVerified: NOW, lastSynced: NOW })
    expect([plan.isNew, plan.rekeyed, plan.previousOwnerId]).toEqual([false, false, null])
    expect(plan.trace).toEqual([{ rule: 'attach.refresh', detail: 'identity ai already belongs to the target: refreshed' }])
  })

  it('re-point: the identity, flags and trace', () => {
    const row = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'old', ident: 'ext-x' })
    const plan = planAttach(facts({ byIdent: row }), planIds([]))._unsafeUnwrap()
    expect(plan.identity).toEqual({ ...row, userId: 's', data: { t: 1 }, lastVerified: NOW, lastSynced: NOW })
    expect([plan.isNew, plan.rekeyed, plan.previousOwnerId]).toEqual([false, false, 'old'])
    expect(plan.trace).toEqual([
      {
        rule: 'attach.repoint',
        detail:
          "identity ai moves from user old to s; the target's other identities for this provider are deleted and the previous owner's membership is marked ssoInvalid",
      },
    ])
  })

  it("re-point: the previous owner's membership is updated only when it is theirs and not already unlinked and invalid", () => {
    const row = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'old', ident: 'ext-x' })
    const member = (userId: string, ssoLinked: boolean, ssoInvalid: boolean) =>
      makeMember({ id: 'm-old', organizationId: ORG.id, userId, flags: { ...NO_FLAGS, ssoLinked, ssoInvalid } })
    const updates = (prev: ReturnType<typeof member>) =>
      planAttach(facts({ byIdent: row, previousOwnerMember: prev }), planIds([]))
        ._unsafeUnwrap()
        .txEffects.filter((e) => e.type === 'member.update').length
    expect(updates(member('old', false, true))).toBe(0) // already unlinked and invalid: no write
    expect(updates(member('someone-else', true, false))).toBe(0) // not the previous owner's
    expect(updates(member('old', true, true))).toBe(1)
    expect(updates(member('old', false, false))).toBe(1)
  })

  it('re-key: the identity, flags and trace', () => {
    const mine = makeIdentity({ id: 'mine', authProviderId: PROVIDER.id, userId: 's', ident: 'ext-old' })
    const plan = planAttach(facts({ byUser: mine }), planIds([]))._unsafeUnwrap()
    expect(plan.identity).toEqual({ ...mine, ident: 'ext-x', data: { t: 1 }, lastVerified: NOW, lastSynced: NOW })
    expect([plan.isNew, plan.rekeyed, plan.previousOwnerId]).toEqual([false, true, null])
    expect(plan.trace).toEqual([
      { rule: 'attach.rekey', detail: "the target's identity mine gets the new external id (the IdP changed it)" },
    ])
  })
})
