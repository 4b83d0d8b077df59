// Section 10b of the threat catalog: added after the 2026-11 review (entries 60-63).
//
// Here: 62 (a disabled or replaced provider never completes an open pipeline; was
// threat-62-disabled-provider.test.ts) and 63 (a second factor counts only for the user who
// passed it; was threat-63-second-factor.test.ts). Named by number elsewhere: 60 in
// test/providers/oidc-address-policy.test.ts, test/providers/oidc.test.ts, test/net/ and
// test/saml/setup.test.ts; 61 in test/providers/oidc.test.ts (both need a fake IdP's HTTP).
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoginOutcome, SessionInfo, Step } from '../../src/index.js'
import { type Member, NO_FLAGS } from '../../src/model/records.js'
import type { StorageSnapshot } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { runs } from '../helpers/runs.js'
import { BACKENDS, type World as BackendWorld, makeWorld, type OpenBackend } from '../helpers/worlds.js'
import {
  dataOf,
  diff,
  expectNoWrites,
  finishErr,
  finishOk,
  ident,
  ORG,
  PROVIDER,
  session,
  sha256Hex,
  start,
  type World,
  world,
} from '../login/harness.js'

describe('threat 62: a disabled or replaced provider still completes an open pipeline', () => {
  const ORG = makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme' })
  const LINKED = { ...NO_FLAGS, ssoLinked: true }
  const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

  async function seed(w: BackendWorld): Promise<void> {
    await w.raw.seed({
      organizations: [ORG],
      providers: [makeProvider({ id: 'ap-1', organizationId: ORG.id, providerKey: 'dummy' })],
      users: [
        makeUser({ id: 'admin' }),
        makeUser({ id: 'linked' }),
        makeUser({ id: 'mem' }),
        // A passwordless account: an anonymous login asserting its address gets the confirmation
        // page, which stores a one-time token and mails the link.
        makeUser({ id: 'owner', email: 'owner@corp.example', hasUsablePassword: false }),
      ],
      members: [
        makeMember({ id: 'm-admin', organizationId: ORG.id, userId: 'admin', role: 'owner', flags: LINKED }),
        makeMember({ id: 'm-linked', organizationId: ORG.id, userId: 'linked', flags: LINKED }),
        makeMember({ id: 'm-mem', organizationId: ORG.id, userId: 'mem' }),
        makeMember({ id: 'm-owner', organizationId: ORG.id, userId: 'owner' }),
      ],
      identities: [
        makeIdentity({ id: 'ai-admin', authProviderId: 'ap-1', userId: 'admin', ident: 'ext-admin' }),
        makeIdentity({ id: 'ai-linked', authProviderId: 'ap-1', userId: 'linked', ident: 'ext-linked' }),
      ],
    })
  }

  const ADMIN: SessionInfo = { id: 'sess-admin', userId: 'admin', ip: '203.0.113.7' }

  /** A login path: who starts it, what the IdP asserts, and how it is finished. */
  interface LoginPath {
    readonly name: string
    readonly session: SessionInfo
    readonly form: Record<string, string>
    /** Finish with `op=newuser` after the confirmation page (the page itself is shown before). */
    readonly confirmPost?: boolean
  }

  const PATHS: readonly LoginPath[] = [
    { name: 'returning linked user', session: { id: 's-linked' }, form: { id: 'ext-linked', email: 'linked@example.com' } },
    {
      name: 'attach by the signed-in member',
      session: { id: 's-mem', userId: 'mem' },
      form: { id: 'ext-mem', email: 'mem@example.com', email_verified: 'on' },
    },
    {
      name: 'new user confirmed by POST',
      session: { id: 's-new' },
      form: { id: 'ext-new', email: 'new@corp.example', email_verified: 'on' },
      confirmPost: true,
    },
    {
      name: 'anonymous confirmation page (one-time token + mail)',
      session: { id: 's-owner' },
      form: { id: 'ext-owner', email: 'owner@corp.example', email_verified: 'on' },
    },
  ]

  function handleOf(step: Step): string {
    if (!('handle' in step) || typeof step.handle !== 'string') throw new Error(`no handle on ${step.kind}`)
    return step.handle
  }

  /** Everything but pipeline states (the caller's own state may change when it is refused). */
  function data(s: StorageSnapshot): Omit<StorageSnapshot, 'pipelineStates'> {
    const { pipelineStates: _p, ...rest } = s
    return rest
  }

  /**
   * Begins the login and takes it to the point where the next call finishes it. Returns the call
   * that finishes it (the IdP callback through `advance`, or the confirmation page's POST).
   */
  async function prepare(w: BackendWorld, path: LoginPath): Promise<() => ReturnType<BackendWorld['sso']['finishLogin']>> {
    const begun = (await w.sso.beginLogin({ organizationId: ORG.id, session: path.session }))._unsafeUnwrap()
    const handle = handleOf(begun)
    if (!path.confirmPost) {
      return () =>
        w.sso.advance({ handle, request: post(path.form), session: path.session }) as ReturnType<BackendWorld['sso']['finishLogin']>
    }
    const page = (await w.sso.advance({ handle, request: post(path.form), session: path.session }))._unsafeUnwrap()
    expect(page.kind).toBe('confirmationRequired')
    return () => w.sso.finishLogin({ handle, session: path.session, op: 'newuser' })
  }

  for (const backend of BACKENDS) {
    if (!backend.enabled) {
      reportSkip(`threat 62 on ${backend.name}`, backend.variable ?? '')
      continue
    }
    describe(`threat 62 on ${backend.name}`, { timeout: 120_000 }, () => {
      let open: OpenBackend
      beforeAll(async () => {
        open = await backend.open()
      })
      afterAll(async () => {
        await open?.close()
      })

      async function world(): Promise<BackendWorld> {
        const w = await makeWorld(open)
        await seed(w)
        return w
      }

      for (const path of PATHS) {
        it(`${path.name}: begin, disable, finish -> PROVIDER_MISMATCH, no session, no rows`, async () => {
          const w = await world()
          try {
            const finish = await prepare(w, path)
            ;(await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN }))._unsafeUnwrap()
            const before = await w.snapshot()
            w.mailer.clear()
            const out = await finish()
            // The step machine finds the state's provider row gone (PROVIDER_NOT_CONFIGURED), or the
            // finisher finds it is not the org's provider (PROVIDER_MISMATCH): typed either way.
            expect(out.isErr() && out.error.code).toMatch(/^PROVIDER_(MISMATCH|NOT_CONFIGURED)$/)
            expect(data(await w.snapshot())).toEqual(data(before))
            expect(w.mailer.sent).toEqual([])
            expect(w.signals.emitted).toEqual([])
          } finally {
            await w.drop()
          }
        })

        it(`${path.name}: begin, disable, set up again, finish -> PROVIDER_MISMATCH, no session, no rows`, async () => {
          const w = await world()
          try {
            const finish = await prepare(w, path)
            ;(await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN }))._unsafeUnwrap()
            const setup = (await w.sso.beginSetup({ organizationId: ORG.id, providerKey: 'dummy', session: ADMIN }))._unsafeUnwrap()
            const done = (
              await w.sso.advance({
                handle: handleOf(setup),
                request: post({ id: 'ext-admin-2', email: 'admin@example.com' }),
                session: ADMIN,
              })
            )._unsafeUnwrap()
            expect(done.kind).toBe('setupComplete')
            const before = await w.snapshot()
            expect(before.providers).toHaveLength(1)
            expect(before.providers[0]?.id).not.toBe('ap-1')
            w.mailer.clear()
            w.signals.clear()
            const out = await finish()
            // The step machine finds the state's provider row gone (PROVIDER_NOT_CONFIGURED), or the
            // finisher finds it is not the org's provider (PROVIDER_MISMATCH): typed either way.
            expect(out.isErr() && out.error.code).toMatch(/^PROVIDER_(MISMATCH|NOT_CONFIGURED)$/)
            expect(data(await w.snapshot())).toEqual(data(before))
            expect(w.mailer.sent).toEqual([])
            expect(w.signals.emitted).toEqual([])
          } finally {
            await w.drop()
          }
        })

        it(`${path.name}: the finish read the provider before the disable committed -> PROVIDER_MISMATCH, nothing written`, async () => {
          const w = await world()
          try {
            const finish = await prepare(w, path)
            // The finish loads state, org and provider, then waits at the start of its transaction.
            const gate = w.gates.holdNextTransaction()
            const finishing = finish()
            await gate.reached
            ;(await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN }))._unsafeUnwrap()
            const before = await w.snapshot()
            w.mailer.clear()
            gate.release()
            const out = await finishing
            expect(out.isErr() && out.error.code).toBe('PROVIDER_MISMATCH')
            const after = await w.snapshot()
            expect(data(after)).toEqual(data(before))
            // In particular: no identity of the deleted provider, nobody linked again, no link audit.
            expect(after.identities).toEqual([])
            expect(after.members.filter((m) => m.flags.ssoLinked)).toEqual([])
            expect(after.audit.map((a) => a.event)).toEqual(['sso.disable'])
            expect(after.oneTimeTokens).toEqual([])
            expect(w.mailer.sent).toEqual([])
            expect(w.signals.emitted).toEqual([])
          } finally {
            await w.drop()
          }
        })
      }
    })
  }
})

describe('threat 63: a second factor passed by someone else', () => {
  const FUTURE = new Date('2026-06-01T00:00:00.000Z')

  // A: the attacker, signed in to their own account with their own second factor passed.
  const attacker = makeUser({ id: 'a', email: 'a@corp.example', has2fa: true })
  const attackerMember = makeMember({ id: 'm-a', organizationId: ORG.id, userId: 'a', flags: { ...NO_FLAGS, ssoLinked: true } })
  // B: the victim, with 2FA on; the attacker holds B's IdP session.
  const victim = makeUser({ id: 'b', email: 'b@corp.example', has2fa: true, hasUsablePassword: false })
  const victimIdentity = makeIdentity({ id: 'ai-b', authProviderId: PROVIDER.id, userId: 'b', ident: 'ext-b' })
  const victimMember = makeMember({ id: 'm-b', organizationId: ORG.id, userId: 'b', flags: { ...NO_FLAGS, ssoLinked: true } })

  /**
   * The session of `userId` whose second factor `passedBy` passed. It also carries the removed
   * `twoFactorPassed: true` flag, as a host (or a plain-JS caller) that has not migrated yet would
   * send it: that flag must count for nobody.
   */
  function passed(passedBy: string, partial: Partial<SessionInfo> = {}): SessionInfo {
    const legacy = { twoFactorPassed: true } as Partial<SessionInfo>
    return session({ ...legacy, twoFactorUserId: passedBy, ...partial })
  }

  function expectTwoFactorFor(out: LoginOutcome, userId: string, handle: string): void {
    expect(out).toMatchObject({
      kind: 'twoFactorRequired',
      userId,
      resumeHandle: handle,
      session: [{ type: 'pendingTwoFactor', userId, organizationId: ORG.id, resumeHandle: handle }],
    })
  }

  describe('threat 63: a second factor counts only for the user who passed it', () => {
    it('existing identity: A (2FA passed) finishing with B’s identity gets twoFactorRequired for B, nothing written; B’s own factor resumes it', async () => {
      const w = world({ users: [attacker, victim], identities: [victimIdentity], members: [attackerMember, victimMember] })
      const handle = await start(w, { initiatorUserId: 'a' })
      const before = w.storage.snapshot()
      const out = await finishOk(w, {
        handle,
        session: passed('a', { userId: 'a' }),
        identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
      })
      expectTwoFactorFor(out, 'b', handle)
      expectNoWrites(w, before)
      // The same pipeline, resumed after B's second factor passed: signed in as B.
      const done = await finishOk(w, { handle, session: passed('b', { userId: 'a' }) })
      expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', memberId: 'm-b' })
    })

    it('a plain-JS caller still sending the removed twoFactorPassed flag gets no pass for anyone (and a warning)', async () => {
      const warnings: string[] = []
      const w = world({ users: [victim], identities: [victimIdentity], members: [victimMember], logger: { warn: (m) => warnings.push(m) } })
      const handle = await start(w)
      const before = w.storage.snapshot()
      for (const legacy of [{ twoFactorPassed: true }, { twoFactorUserId: true }, { twoFactorUserId: 1 }, { twoFactorUserId: ['b'] }]) {
        const out = await finishOk(w, {
          handle,
          session: session(legacy as unknown as Partial<SessionInfo>),
          identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
        })
        expectTwoFactorFor(out, 'b', handle)
      }
      expectNoWrites(w, before)
      expect(warnings.filter((m) => m.includes('twoFactorPassed is no longer read'))).toHaveLength(1)
    })

    it('attach by the signed-in user: a factor passed by another user does not count for the session user', async () => {
      const w = world({ users: [attacker], members: [attackerMember] })
      const handle = await start(w, { initiatorUserId: 'a' })
      const before = w.storage.snapshot()
      const X = ident({ id: 'ext-a', email: 'a@corp.example' })
      const out = await finishOk(w, { handle, session: passed('someone-else', { userId: 'a' }), identity: X, op: 'confirm' })
      expectTwoFactorFor(out, 'a', handle)
      expectNoWrites(w, before)
      const done = await finishOk(w, { handle, session: passed('a', { userId: 'a' }), op: 'confirm' })
      expect(done).toMatchObject({ kind: 'signedIn', userId: 'a', linked: true, created: { identity: true } })
    })

    it('attach by the emailed link (V): a stale factor of A in the session does not let the link sign in as B; the token is kept for the resume', async () => {
      const w = world({ users: [victim], members: [victimMember] })
      const X = ident({ id: 'ext-new', email: 'b@corp.example' })
      const handle = await start(w)
      await finishOk(w, { handle, session: session(), identity: X })
      const mail = w.mailer.sent[0]
      if (mail?.template !== 'accountVerification') throw new Error('no verification mail')
      const token = /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] ?? ''
      w.mailer.clear()
      const before = w.storage.snapshot()
      const out = await finishOk(w, { handle, session: passed('a', { verificationToken: token }) })
      expectTwoFactorFor(out, 'b', handle)
      expectNoWrites(w, before)
      expect(w.storage.snapshot().oneTimeTokens).toEqual(before.oneTimeTokens)
      const done = await finishOk(w, { handle, session: passed('b', { verificationToken: token }) })
      expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', linked: true })
    })

    it('new user: A’s factor is neither needed nor carried over; B’s address is never signed in as B', async () => {
      const w = world({ users: [attacker, victim], members: [attackerMember, victimMember] })
      // op=newuser with the victim's address: IDENTITY_CONFLICT, nothing created (not a sign-in as B).
      const h1 = await start(w, { initiatorUserId: 'a' })
      const before = w.storage.snapshot()
      const conflict = await finishErr(w, {
        handle: h1,
        session: passed('a', { userId: 'a' }),
        identity: ident({ id: 'ext-x', email: 'b@corp.example' }),
        op: 'newuser',
      })
      expect(conflict.code).toBe('IDENTITY_CONFLICT')
      expectNoWrites(w, before)
      // op=newuser with a fresh address: a new account, which has no second factor to ask for.
      const h2 = await start(w, { initiatorUserId: 'a' })
      const out = await finishOk(w, {
        handle: h2,
        session: passed('a', { userId: 'a' }),
        identity: ident({ id: 'ext-fresh', email: 'fresh@corp.example' }),
        op: 'newuser',
      })
      expect(out).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
      if (out.kind !== 'signedIn') return
      expect(['a', 'b']).not.toContain(out.userId)
      const created = w.storage.snapshot().users.find((u) => u.id === out.userId)
      expect(created?.has2fa).toBe(false)
    })

    it('invite: B’s login with A’s factor does not accept the invite the session carries until B’s own factor passed', async () => {
      const inviteRow: Member = makeMember({
        id: 'inv',
        organizationId: ORG.id,
        email: 'b@corp.example',
        inviteTokenHash: await sha256Hex('invite-token'),
        inviteExpiresAt: FUTURE,
      })
      const w = world({ users: [attacker, victim], identities: [victimIdentity], members: [attackerMember, inviteRow] })
      const invite = { memberId: 'inv', token: 'invite-token', organizationId: ORG.id }
      const handle = await start(w, { initiatorUserId: 'a' })
      const before = w.storage.snapshot()
      const out = await finishOk(w, {
        handle,
        session: passed('a', { userId: 'a', invite }),
        identity: ident({ id: 'ext-b', email: 'b@corp.example' }),
      })
      expectTwoFactorFor(out, 'b', handle)
      expectNoWrites(w, before)
      expect(w.storage.snapshot().members.find((m) => m.id === 'inv')).toEqual(inviteRow)
      const done = await finishOk(w, { handle, session: passed('b', { userId: 'a', invite }) })
      expect(done).toMatchObject({ kind: 'signedIn', userId: 'b', memberId: 'inv', acceptedInviteId: 'inv' })
      const d = diff(before, w.storage.snapshot())
      expect(d.members?.changed.map((c) => (c.after as Member).userId)).toEqual(['b'])
    })
  })

  describe('threat 63, property: whoever signs in with 2FA on is the user whose factor the session passed', () => {
    const userArb = (id: string) =>
      fc
        .record({ has2fa: fc.boolean(), member: fc.boolean(), linked: fc.boolean(), hasUsablePassword: fc.boolean() })
        .map((r) => ({ id, ...r }))

    it('signedIn as U with has2fa implies session.twoFactorUserId === U; twoFactorRequired writes nothing', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.tuple(userArb('a'), userArb('b')),
          fc.option(fc.constantFrom('a', 'b'), { nil: null }),
          fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
          fc.constantFrom('ext-a', 'ext-b', 'ext-new'),
          fc.constantFrom('a@corp.example', 'b@corp.example', 'new@corp.example'),
          fc.constantFrom(null, 'confirm' as const, 'newuser' as const),
          fc.boolean(),
          async (users, sessionUser, factorOf, identId, email, op, legacyFlag) => {
            const w: World = world({
              users: users.map((u) =>
                makeUser({ id: u.id, email: `${u.id}@corp.example`, has2fa: u.has2fa, hasUsablePassword: u.hasUsablePassword }),
              ),
              identities: users
                .filter((u) => u.linked)
                .map((u) => makeIdentity({ id: `ai-${u.id}`, authProviderId: PROVIDER.id, userId: u.id, ident: `ext-${u.id}` })),
              members: users
                .filter((u) => u.member)
                .map((u) => makeMember({ id: `m-${u.id}`, organizationId: ORG.id, userId: u.id, flags: { ...NO_FLAGS, ssoLinked: true } })),
            })
            const handle = await start(w, { initiatorUserId: sessionUser })
            const before = w.storage.snapshot()
            const extra = legacyFlag ? ({ twoFactorPassed: true } as Partial<SessionInfo>) : {}
            const r = await w.login.finishLogin({
              handle,
              session: session({ ...extra, userId: sessionUser, twoFactorUserId: factorOf }),
              identity: ident({ id: identId, email, emailVerified: true }),
              op,
            })
            if (r.isErr()) return
            const after = w.storage.snapshot()
            if (r.value.kind === 'signedIn') {
              const u = after.users.find((x) => x.id === (r.value.kind === 'signedIn' ? r.value.userId : ''))
              if (u?.has2fa) expect(factorOf).toBe(u.id)
            }
            if (r.value.kind === 'twoFactorRequired') {
              expect(r.value.userId).not.toBe(factorOf)
              expect(dataOf(after)).toEqual(dataOf(before))
            }
          },
        ),
        { numRuns: runs(200) },
      )
    })
  })
})
