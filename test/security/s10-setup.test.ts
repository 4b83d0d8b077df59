// Section 10 of the threat catalog: setup authorisation and side effects (entries 58-59).
//
// Named by number elsewhere, with the setup pipeline's own harness: 58 (demoted between begin
// and finish, the authorize hook at finish time) and 59 (the require-2FA switch-off reported and
// audited) in test/setup/finish-setup.test.ts; 54 and 8 there too.
import { describe, expect, it } from 'vitest'
import { makeOrganization } from '../../src/testing/fixtures.js'
import { dataOf, defaultRows, expectCode, makeWorld, readySetup, session, unwrapStep } from '../setup/harness.js'

describe('threat 58: setup by an actor who is not (or no longer) allowed', () => {
  it('threat 58: a member without SSO rights cannot begin setup, nor finish one an admin began (in their own session or the admin’s)', async () => {
    const w = makeWorld()
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'dummy', session: session('plain') }), 'NOT_AUTHORIZED')
    const input = await readySetup(w)
    // the plain member replays the admin's handle from their own session, then with the admin's session id
    expectCode(await w.sso.finishSetup({ ...input, session: session('plain') }), 'STATE_SESSION_MISMATCH')
    const stolen = await w.sso.finishSetup({ ...input, session: { ...input.session, userId: 'plain' } })
    expect(stolen.isErr()).toBe(true)
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
    // the admin still finishes it
    expect((await w.sso.finishSetup(input)).isOk()).toBe(true)
  })

  it('threat 58: an admin of ANOTHER org cannot set up this org', async () => {
    const w = makeWorld()
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'dummy', session: session('admin2') }), 'NOT_A_MEMBER')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })
})

describe('threat 59: security-policy side effects of setup', () => {
  it('threat 59: on an org without required 2FA, setup changes no org policy and reports none; it writes only the provider, the admin’s identity and flags, audits', async () => {
    const rows = defaultRows()
    const organizations = rows.organizations.map((o) => (o.id === 'org-1' ? makeOrganization({ ...o, require2fa: false }) : o))
    const w = makeWorld({ organizations })
    const before = w.storage.snapshot()
    const outcome = unwrapStep((await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap())
    expect(outcome.policyChanges ?? []).toEqual([])
    const after = w.storage.snapshot()
    expect(after.organizations).toEqual(before.organizations)
    expect(after.users).toEqual(before.users)
    expect(after.providers.map((p) => p.organizationId)).toEqual(['org-1'])
    expect(after.identities.map((i) => i.userId)).toEqual(['admin'])
    const changedMembers = after.members.filter((m) => JSON.stringify(m) !== JSON.stringify(before.members.find((b) => b.id === m.id)))
    expect(changedMembers.map((m) => m.id)).toEqual(['m-admin'])
    expect(after.audit.map((a) => a.event)).toEqual(['sso-identity.link', 'sso.enable'])
  })
})
