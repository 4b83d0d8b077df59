// Section 2 of the threat catalog: trusting IdP claims for user resolution (entries 6-15).
//
// Entries tested elsewhere (named by number there, not repeated here): 8 in
// test/setup/finish-setup.test.ts, 10 in test/login/properties.test.ts, 13 in
// test/login/attach.test.ts and test/login/verification.test.ts, 14 in test/login/attach.test.ts.
import { describe, expect, it } from 'vitest'
import type { IdentityInput } from '../../src/model/identity.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import {
  expectNoWrites,
  finishErr,
  finishOk,
  ident,
  ORG,
  OTHER_ORG,
  OTHER_PROVIDER,
  PROVIDER,
  session,
  start,
  world,
} from '../login/harness.js'

const victim = makeUser({ id: 'v', email: 'v@corp.example', name: 'Victim' })
const victimMember = makeMember({ id: 'm-v', organizationId: ORG.id, userId: 'v', flags: { ...NO_FLAGS, ssoLinked: true } })
const victimIdentity = makeIdentity({ id: 'ai-v', authProviderId: PROVIDER.id, userId: 'v', ident: 'ext-victim' })

describe('threat 6: nOAuth: the email is never the key', () => {
  it('threat 6: an unknown subject asserting the victim’s verified address is not signed in as the victim; nothing written', async () => {
    for (const newUser of ['confirm', 'create'] as const) {
      const w = world({ users: [victim], members: [victimMember], identities: [victimIdentity], policy: { newUser } })
      const handle = await start(w)
      const before = w.storage.snapshot()
      const out = await finishOk(w, {
        handle,
        session: session(),
        identity: ident({ id: 'ext-attacker', email: 'v@corp.example', emailVerified: true }),
      })
      expect(out.kind).toBe('confirmationRequired')
      expectNoWrites(w, before)
    }
  })

  it('threat 6: an external id spelled as the victim’s address, or the victim’s id in another case, is a different identity', async () => {
    for (const id of ['v@corp.example', 'EXT-VICTIM', 'ext-victim ', ' ext-victim']) {
      const w = world({ users: [victim], members: [victimMember], identities: [victimIdentity] })
      const handle = await start(w)
      const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id, email: 'x@attacker.example' }) })
      if (r.isOk()) expect(r.value.kind === 'signedIn' && r.value.userId).not.toBe('v')
      expect(w.storage.snapshot().identities.filter((i) => i.userId === 'v')).toEqual([victimIdentity])
    }
  })
})

describe('threat 7: a cross-tenant IdP asserting the victim’s email', () => {
  it('threat 7: another org’s IdP asserting a member’s verified address never signs in as them nor touches the victim’s org', async () => {
    const w = world({ users: [victim], members: [victimMember], identities: [victimIdentity] })
    const handle = await start(w, { organization: OTHER_ORG, provider: OTHER_PROVIDER })
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-victim', email: 'v@corp.example', emailVerified: true }),
    })
    expect(out.kind).toBe('confirmationRequired')
    expectNoWrites(w, before)
    // a confirm without proof is refused; the victim's org is untouched
    const e = await finishErr(w, { handle, session: session(), op: 'confirm' })
    expect(e.code).toBe('MERGE_FAILED')
    expectNoWrites(w, before)
  })
})

describe('threat 9: an orphaned identity of an inactive user', () => {
  it('threat 9: the identity behaves as unknown; a confirm without proof re-attaches nothing and the user stays inactive', async () => {
    const inactive = { ...victim, isActive: false }
    const w = world({ users: [inactive], members: [victimMember], identities: [victimIdentity] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-victim', email: 'v@corp.example', emailVerified: true }),
    })
    expect(out.kind).toBe('confirmationRequired')
    expectNoWrites(w, before)
    expect((await finishErr(w, { handle, session: session(), op: 'confirm' })).code).toBe('MERGE_FAILED')
    expectNoWrites(w, before)
    // op=newuser creates a NEW account; the inactive user is neither revived nor signed in
    const created = await finishOk(w, { handle, session: session(), op: 'newuser' })
    if (created.kind !== 'signedIn') throw new Error(created.kind)
    expect(created.userId).not.toBe('v')
    expect(w.storage.snapshot().users.find((u) => u.id === 'v')).toEqual(inactive)
  })
})

describe('threat 11: empty, absent or placeholder email', () => {
  it('threat 11: an empty or malformed address is IDENTITY_INVALID; an absent one matches nobody; nothing written', async () => {
    const blank = makeUser({ id: 'blank', email: '', hasUsablePassword: false })
    for (const email of ['', ' ', 'none', '@', 'a@', '@b']) {
      const w = world({ users: [blank, victim], members: [victimMember] })
      const handle = await start(w)
      const before = w.storage.snapshot()
      const e = await finishErr(w, { handle, session: session(), identity: { id: 'ext-x', email } })
      expect(e.code).toBe('IDENTITY_INVALID')
      expectNoWrites(w, before)
    }
    const w = world({ users: [blank, victim], members: [victimMember] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    // a plain-JS caller (or a provider) that sends no address at all
    const r = await w.login.finishLogin({ handle, session: session(), identity: { id: 'ext-x' } as unknown as IdentityInput })
    if (r.isOk()) {
      expect(r.value.kind).toBe('confirmationRequired')
      expect(r.value.trace).not.toContainEqual(expect.objectContaining({ detail: expect.stringContaining('blank') }))
    } else expect(r.error.code).toBe('IDENTITY_INVALID')
    expectNoWrites(w, before)
  })
})

describe('threat 12: provider namespace confusion', () => {
  it('threat 12: the same external id under another org’s instance of the same provider kind is not this identity', async () => {
    const onOther = makeIdentity({ id: 'ai-other', authProviderId: OTHER_PROVIDER.id, userId: 'v', ident: 'ext-shared' })
    const otherMember = makeMember({ id: 'm-v2', organizationId: OTHER_ORG.id, userId: 'v' })
    const w = world({ users: [victim], members: [otherMember], identities: [onOther] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-shared', email: 'x@attacker.example' }) })
    expect(out.kind).toBe('confirmationRequired')
    expectNoWrites(w, before)
  })
})

describe('threat 15: SSO completion is per organisation', () => {
  it('threat 15: a login through org 1’s provider marks SSO complete for org 1 only, even for a member of both orgs', async () => {
    const w = world({
      users: [victim],
      members: [victimMember, makeMember({ id: 'm-v2', organizationId: OTHER_ORG.id, userId: 'v' })],
      identities: [victimIdentity],
    })
    const out = await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-victim' }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    const marks = out.session.filter((e) => e.type === 'markSsoComplete' || e.type === 'activeOrg')
    expect(marks).toEqual([
      { type: 'markSsoComplete', organizationId: ORG.id, at: '2026-03-01T12:00:00.000Z' },
      { type: 'activeOrg', organizationId: ORG.id, slug: ORG.slug },
    ])
    expect(out.organizationId).toBe(ORG.id)
  })
})
