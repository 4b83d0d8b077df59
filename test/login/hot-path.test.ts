// Issue 10 item 2: a returning login makes no id, no username and no verification token; a new
// user's login makes what it uses. Counted at the ports (IdGenerator, urls.verifyAccount).
import { describe, expect, it } from 'vitest'
import { dummyProvider } from '../../src/dummy/index.js'
import { type AuthPipelineOptions, createAuthPipeline, type SessionInfo } from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { fixedClock, makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'

function setup(newUser: 'confirm' | 'create') {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage = createMemoryStorage({ clock })
  const recent = new Date('2026-03-01T11:59:00.000Z')
  storage.seed({
    organizations: [makeOrganization({ id: 'org', slug: 'acme' })],
    providers: [makeProvider({ id: 'ap', organizationId: 'org', providerKey: 'dummy' })],
    users: [makeUser({ id: 'u1', email: 'u1@acme.test' })],
    members: [makeMember({ id: 'm1', organizationId: 'org', userId: 'u1', flags: { ...NO_FLAGS, ssoLinked: true } })],
    identities: [makeIdentity({ id: 'i1', authProviderId: 'ap', userId: 'u1', ident: 'ext-u1', lastVerified: recent, lastSynced: recent })],
  })
  const drawn: string[] = []
  const links: string[] = []
  let n = 0
  const options: AuthPipelineOptions = {
    storage,
    mailer: { send: async () => {} },
    signals: { emit: async () => {} },
    providers: { dummy: dummyProvider() },
    secret: 'hot path test secret, thirty-two bytes or more',
    clock,
    ids: {
      next: () => {
        const id = `id-${++n}`
        drawn.push(id)
        return id
      },
    },
    urls: {
      baseUrl: 'https://app.example.com',
      orgLogin: () => '/',
      authSettings: () => '/',
      providerSettings: () => '/',
      afterLogin: () => '/',
      pipelineCallback: () => 'https://app.example.com/cb',
      verifyAccount: (token) => {
        links.push(token)
        return `https://app.example.com/v/${token}`
      },
    },
    policy: { newUser },
  }
  return { sso: createAuthPipeline(options), storage, drawn, links }
}

async function login(sso: ReturnType<typeof setup>['sso'], form: Record<string, string>, sessionId: string) {
  const session: SessionInfo = { id: sessionId }
  const begun = (await sso.beginLogin({ organizationId: 'org', session }))._unsafeUnwrap()
  if (!('handle' in begun) || typeof begun.handle !== 'string') throw new Error(begun.kind)
  return (await sso.advance({ handle: begun.handle, session, request: { method: 'POST', query: {}, form } }))._unsafeUnwrap()
}

describe('what a login makes (issue 10 item 2)', () => {
  it('a returning login draws no id and mints no username or verification token', async () => {
    const w = setup('confirm')
    const before = w.storage.snapshot()
    const out = await login(w.sso, { id: 'ext-u1', email: 'u1@acme.test' }, 's1')
    expect(out.kind).toBe('signedIn')
    expect(w.drawn).toEqual([])
    expect(w.links).toEqual([])
    // Nothing written but the state (fresh identity: not rewritten).
    const after = w.storage.snapshot()
    expect(after.identities).toEqual(before.identities)
    expect(after.users).toEqual(before.users)
    expect(after.members).toEqual(before.members)
    expect(after.audit).toEqual(before.audit)
  })

  it('a just-in-time sign-up draws the ids its rows take, in order, and no verification token', async () => {
    const w = setup('create')
    const out = await login(w.sso, { id: 'ext-new', email: 'new@acme.test', email_verified: 'on' }, 's2')
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
    const snap = w.storage.snapshot()
    const created = [
      ...snap.users.map((u) => u.id),
      ...snap.identities.map((i) => i.id),
      ...snap.members.map((m) => m.id),
      ...snap.audit.map((a) => a.id),
    ]
    for (const id of w.drawn) expect(created).toContain(id)
    expect(w.drawn.length).toBeGreaterThan(0)
    expect(w.links).toEqual([])
  })

  it('the confirmation page for an account with a password mints no verification token (no link can go out)', async () => {
    const w = setup('confirm')
    // u1 has a password: no link can go out, none is minted.
    const out = await login(w.sso, { id: 'ext-other', email: 'u1@acme.test' }, 's3')
    expect(out.kind).toBe('confirmationRequired')
    expect(w.links).toEqual([])
  })
})
