// Spec 3.4-3.6 and Appendix A (N column): unknown identity, one test per row.
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeMember, makeUser } from '../../src/testing/fixtures.js'
import { diff, expectNoWrites, finishErr, finishOk, ident, ORG, PROVIDER, session, start, world } from './harness.js'

const victim = makeUser({ id: 'u', email: 'u@corp.example', name: 'Victim Name' })
const member = (userId: string) =>
  makeMember({ id: `m-${userId}`, organizationId: ORG.id, userId, flags: { ...NO_FLAGS, ssoLinked: true } })
const X = (partial: { emailVerified?: boolean; email?: string } = {}) =>
  ident({ id: 'ext-new', email: partial.email ?? 'u@corp.example', emailVerified: partial.emailVerified })

type Row = {
  name: string
  user?: Partial<typeof victim>
  memberOf?: boolean
  emailVerified?: boolean
  expect: 'confirm-identity' | 'link-mailed' | 'confirm-identity-none'
}

describe('Appendix A, anonymous rows without a verified link (N3: the IdP claim never links)', () => {
  const rows: Row[] = [
    { name: 'anon / U anon', user: undefined, expect: 'confirm-identity-none' },
    { name: 'anon / real / E F / P T', user: {}, expect: 'confirm-identity' },
    { name: 'anon / real / E F / P F → the page, and a link mailed', user: { hasUsablePassword: false }, expect: 'link-mailed' },
    {
      name: 'anon / real / E T / M T / no 2FA → N: confirm-identity',
      user: {},
      memberOf: true,
      emailVerified: true,
      expect: 'confirm-identity',
    },
    {
      name: 'anon / real / E T / M T / P T / 2FA → N: confirm-identity (no TWO_FA before ownership)',
      user: { has2fa: true },
      memberOf: true,
      emailVerified: true,
      expect: 'confirm-identity',
    },
    {
      name: 'anon / real / E T / M T / P F / 2FA → the page, and a link mailed',
      user: { has2fa: true, hasUsablePassword: false },
      memberOf: true,
      emailVerified: true,
      expect: 'link-mailed',
    },
    { name: 'anon / real / E T / M F / P T → confirm-identity', user: {}, emailVerified: true, expect: 'confirm-identity' },
    {
      name: 'anon / real / E T / M F / P F → the page, and a link mailed',
      user: { hasUsablePassword: false },
      emailVerified: true,
      expect: 'link-mailed',
    },
  ]
  for (const row of rows) {
    it(row.name, async () => {
      const users = row.user ? [{ ...victim, ...row.user }] : []
      const w = world({ users, members: row.memberOf ? [member('u')] : [] })
      const handle = await start(w)
      const before = w.storage.snapshot()
      const out = await finishOk(w, { handle, session: session(), identity: X({ emailVerified: row.emailVerified }) })
      if (out.kind !== 'confirmationRequired') throw new Error(out.kind)
      expect(out.handle).toBe(handle)
      expect(out.session).toEqual([])
      const base = {
        organization: { name: ORG.name, slug: ORG.slug },
        provider: 'IdP dummy',
        identityDisplayName: 'u@corp.example',
        identityIdentifier: 'u@corp.example',
        loginUrl: '/auth/login/acme/',
      }
      // One page for every anonymous row (threat 29): only the mail differs.
      expect(out.confirmation).toEqual({ page: 'confirm-identity', ...base })
      expect(out.allowedOps).toEqual(['newuser'])
      if (row.expect === 'link-mailed') {
        // one token row (hash only), one mail to the account's own address; nothing else
        const d = diff(before, w.storage.snapshot())
        expect(Object.keys(d)).toEqual(['oneTimeTokens'])
        expect(w.mailer.sent).toHaveLength(1)
        expect(w.mailer.sent[0]).toMatchObject({ template: 'accountVerification', to: 'u@corp.example' })
        expect(w.signals.emitted).toEqual([])
      } else {
        expectNoWrites(w, before)
      }
      // the anonymous page never carries the account's id, name or username (threat 29)
      const text = JSON.stringify(out.confirmation)
      expect(text).not.toContain('Victim Name')
      expect(text).not.toContain('"u"')
    })
  }
})

describe('Appendix A, signed-in rows (N1: the session user is the target)', () => {
  it('auth (= U) / E T / M T → auto-link to the session user', async () => {
    const w = world({ users: [victim], members: [member('u')] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 'u' }), identity: X({ emailVerified: true }) })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out).toMatchObject({ userId: 'u', memberId: 'm-u', linked: true, created: { user: false, identity: true, member: false } })
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities'])
    expect(d.identities?.added).toEqual([expect.objectContaining({ userId: 'u', ident: 'ext-new', authProviderId: PROVIDER.id })])
    expect(d.audit?.added).toEqual([
      expect.objectContaining({ event: 'sso-identity.link', actorUserId: 'u', targetUserId: 'u', data: { userId: 'u', ident: 'ext-new' } }),
    ])
    expect(w.mailer.sent).toEqual([])
    expect(w.signals.emitted).toEqual([])
  })

  it('auth (= U) / E T / M F → confirm-link (no writes)', async () => {
    const w = world({ users: [victim] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 'u' }), identity: X({ emailVerified: true }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation).toEqual({
      page: 'confirm-link',
      organization: { name: ORG.name, slug: ORG.slug },
      provider: 'IdP dummy',
      identityDisplayName: 'u@corp.example',
      identityIdentifier: 'u@corp.example',
      currentUser: { id: 'u', email: 'u@corp.example', name: 'Victim Name' },
    })
    expect(out.kind === 'confirmationRequired' && out.allowedOps).toEqual(['confirm'])
    expectNoWrites(w, before)
  })

  it('auth (= U) / E F → confirm-link; op=confirm then links to S and creates the membership', async () => {
    const w = world({ users: [victim] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const first = await finishOk(w, { handle, session: session({ userId: 'u' }), identity: X() })
    expect(first.kind === 'confirmationRequired' && first.confirmation.page).toBe('confirm-link')
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 'u' }), op: 'confirm' })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    expect(out).toMatchObject({ userId: 'u', linked: true, created: { user: false, identity: true, member: true } })
    const d = diff(before, w.storage.snapshot())
    expect(Object.keys(d).sort()).toEqual(['audit', 'identities', 'members'])
    expect(d.audit?.added.map((a) => (a as { event: string }).event)).toEqual(['sso-identity.link', 'member.add'])
  })

  it("auth (≠ U) / the IdP email is another member's, verified → N: no session switch; confirm-link for S", async () => {
    const attacker = makeUser({ id: 'att', email: 'att@evil.example' })
    const w = world({ users: [victim, attacker], members: [member('u')] })
    const handle = await start(w, { initiatorUserId: 'att' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 'att' }), identity: X({ emailVerified: true }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-link')
    expect(out.kind === 'confirmationRequired' && out.confirmation).toMatchObject({ currentUser: { id: 'att' } })
    expectNoWrites(w, before)
  })

  it('auth (≠ U) / op=confirm links to S (never to the email owner), victim untouched', async () => {
    const other = makeUser({ id: 's', email: 's@corp.example' })
    const w = world({ users: [victim, other], members: [member('u'), member('s')] })
    const handle = await start(w, { initiatorUserId: 's' })
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session({ userId: 's' }), identity: X({ emailVerified: true }), op: 'confirm' })
    expect(out.kind === 'signedIn' && out.userId).toBe('s')
    const after = w.storage.snapshot()
    expect(after.identities).toEqual([expect.objectContaining({ userId: 's', ident: 'ext-new' })])
    expect(after.users).toEqual(before.users)
    expect(after.members.find((m) => m.userId === 'u')).toEqual(before.members.find((m) => m.userId === 'u'))
  })
})

describe('unknown identity: ops and edge cases (N4, threats 1, 10, 24)', () => {
  it('op=confirm while anonymous and unverified → MERGE_FAILED, no writes, pipeline still open', async () => {
    const w = world({ users: [victim], members: [member('u')] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: X({ emailVerified: true }), op: 'confirm' })
    expect(e.code).toBe('MERGE_FAILED')
    expectNoWrites(w, before)
    const again = await finishOk(w, { handle, session: session() })
    expect(again.kind).toBe('confirmationRequired')
  })

  it('op=newuser when an active account has the email → IDENTITY_CONFLICT, nothing created', async () => {
    const w = world({ users: [victim] })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: X(), op: 'newuser' })
    expect(e.code).toBe('IDENTITY_CONFLICT')
    expectNoWrites(w, before)
  })

  it('ambiguous email: no target is chosen, no mail, candidates in the trace', async () => {
    const a = makeUser({ id: 'a1', email: 'a1@x.example', hasUsablePassword: false })
    const b = makeUser({ id: 'a2', email: 'a2@x.example', hasUsablePassword: false })
    const rows = [a, b].map((u) => ({
      userId: u.id,
      email: 'shared@corp.example',
      emailNormalized: 'shared@corp.example',
      isVerified: true,
      isPrimary: false,
    }))
    const w = world({ users: [a, b], userEmails: rows })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'shared@corp.example' }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(out.trace).toContainEqual({ rule: 'target.email-ambiguous', detail: expect.stringContaining('a1, a2') })
    expectNoWrites(w, before)
  })

  it('narrowing: a verified address beats an unverified one', async () => {
    const a = makeUser({ id: 'a1', email: 'a1@x.example', hasUsablePassword: false })
    const b = makeUser({ id: 'a2', email: 'a2@x.example', hasUsablePassword: false })
    const w = world({
      users: [a, b],
      userEmails: [
        { userId: 'a1', email: 'shared@corp.example', emailNormalized: 'shared@corp.example', isVerified: false, isPrimary: false },
        { userId: 'a2', email: 'shared@corp.example', emailNormalized: 'shared@corp.example', isVerified: true, isPrimary: false },
      ],
    })
    const handle = await start(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'shared@corp.example' }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(w.mailer.sent.map((m) => m.to)).toEqual(['a2@x.example'])
  })

  it('threat 1: a passwordless account whose matching address is NOT verified gets no link mail', async () => {
    const squat = makeUser({ id: 'sq', email: 'sq@x.example', hasUsablePassword: false })
    const w = world({
      users: [squat],
      userEmails: [{ userId: 'sq', email: 'u@corp.example', emailNormalized: 'u@corp.example', isVerified: false, isPrimary: false }],
    })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: X({ emailVerified: true }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expectNoWrites(w, before)
  })

  it('threat 26: name and data never select a user', async () => {
    const admin = makeUser({ id: 'admin', email: 'admin@corp.example', name: 'admin', username: 'admin' })
    const w = world({ users: [admin], members: [member('admin')] })
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-x', email: 'nobody@corp.example', name: 'admin', data: { preferred_username: 'admin' } }),
    })
    expect(out.kind === 'confirmationRequired' && out.confirmation).toMatchObject({ page: 'confirm-identity' })
    expect(out.trace).toContainEqual(expect.objectContaining({ rule: 'target.email-none' }))
  })
})
