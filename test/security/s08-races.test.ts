// Threats 10 and 52: two active accounts for one email. RACERS anonymous visitors, each with a
// different external id asserting the same address (in different cases), confirm `op=newuser`
// at once. Exactly one account is created; the others get IDENTITY_CONFLICT and nothing of
// theirs is written. The host's users table has no unique email index (ssoflow's own has none
// either): the engine must serialize on the normalized address itself. On PostgreSQL and
// MariaDB every racer is inside its transaction before any of them reads (barrier at the start).
import type { Result } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PolicyOptions, SessionInfo } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { normalizeEmail } from '../../src/model/email.js'
import type { StorageSeedData } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { freshStorage, openMysql, openPostgres, reportSkip, type TestDatabase } from '../helpers/databases.js'
import { BACKENDS, type Backend, createBarrier, engineOn, handleOf, newClock, post, RACERS, type RaceStorage, unwrap } from './race.js'

const ORG = makeOrganization({ id: 'org1', slug: 'acme', name: 'Acme' })
const PROVIDER = makeProvider({ id: 'ap1', organizationId: ORG.id, providerKey: 'dummy' })
const ORG2 = makeOrganization({ id: 'org2', slug: 'beta', name: 'Beta' })
const SPELLINGS = ['Race@Corp.Example', 'race@corp.example', 'RACE@CORP.EXAMPLE', 'rAcE@corp.EXAMPLE']

for (const backend of BACKENDS) {
  if (!backend.enabled) reportSkip(`threats 10/52 (${backend.name})`, backend.variable ?? '')
  describe.skipIf(!backend.enabled)(`threats 10/52 on ${backend.name}`, () => {
    let opened: Awaited<ReturnType<typeof backend.open>>
    beforeAll(async () => {
      opened = await backend.open()
    })
    afterAll(async () => {
      await opened?.close()
    })

    it(`${RACERS} new-user confirmations from different identities with one address: one account, the rest IDENTITY_CONFLICT`, async () => {
      const clock = newClock()
      const { storage: raw, drop } = await opened.fresh(clock)
      try {
        await raw.seed({ organizations: [ORG], providers: [PROVIDER] })
        const e = engineOn(raw, backend, clock, { at: 'tx-start' })
        const sessions: SessionInfo[] = Array.from({ length: RACERS }, (_, i) => ({ id: `visitor-${i}` }))
        const handles: string[] = []
        for (const [i, session] of sessions.entries()) {
          const begun = await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session }))
          const page = await unwrap(
            e.sso.advance({
              handle: handleOf(begun),
              request: post({ id: `ext-${i}`, email: SPELLINGS[i % SPELLINGS.length] as string, email_verified: 'on' }),
              session,
            }),
          )
          // No account has the address yet: every visitor is offered "create a new account".
          expect(page).toMatchObject({ kind: 'confirmationRequired', allowedOps: ['newuser'] })
          handles.push(handleOf(page))
        }
        const before = await e.snapshot()

        e.storage.arm()
        const results = await Promise.all(
          handles.map((handle, i) => e.sso.finishLogin({ handle, session: sessions[i] as SessionInfo, op: 'newuser' })),
        )
        const after = await e.snapshot()

        const created = results.flatMap((r) => (r.isOk() && r.value.kind === 'signedIn' ? [r.value] : []))
        expect(created).toHaveLength(1)
        expect(created[0]?.created).toEqual({ user: true, identity: true, member: true })
        for (const r of results) {
          if (r.isErr()) expect(r.error.code).toBe('IDENTITY_CONFLICT')
        }
        // One account, one address row, one identity, one membership; nothing of the losers.
        const address = normalizeEmail('race@corp.example')
        expect(after.users).toHaveLength(1)
        expect(after.users[0]?.id).toBe(created[0]?.userId)
        expect(after.userEmails.filter((x) => x.emailNormalized === address)).toHaveLength(1)
        expect(after.identities).toHaveLength(1)
        expect(after.identities[0]?.userId).toBe(created[0]?.userId)
        expect(after.members).toEqual([expect.objectContaining({ userId: created[0]?.userId })])
        expect(after.audit.filter((a) => a.event === 'member.add')).toHaveLength(1)
        expect(e.signals.emitted.filter((s) => s.name === 'user_signup')).toHaveLength(1)
        expect(e.mailer.sent.filter((m) => m.template === 'newUserConfirmation')).toHaveLength(1)
        expect(after.providers).toEqual(before.providers)
        // A loser's pipeline stays open: it may sign in to the new account and link instead.
        const loser = results.findIndex((r) => r.isErr())
        const again = await e.sso.finishLogin({ handle: handles[loser] as string, session: sessions[loser] as SessionInfo, op: 'newuser' })
        expect(again._unsafeUnwrapErr().code).toBe('IDENTITY_CONFLICT')
      } finally {
        await drop()
      }
    })

    it(`policy.newUser 'create': ${RACERS} first logins (callbacks) of different identities with one address create one account; the rest get the page`, async () => {
      const clock = newClock()
      const { storage: raw, drop } = await opened.fresh(clock)
      try {
        await raw.seed({ organizations: [ORG], providers: [PROVIDER] })
        const e = engineOn(raw, backend, clock, { at: 'tx-start' }, { policy: { newUser: 'create' } })
        const sessions: SessionInfo[] = Array.from({ length: RACERS }, (_, i) => ({ id: `visitor-${i}` }))
        const handles: string[] = []
        for (const session of sessions) handles.push(handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session }))))

        e.storage.arm()
        const results = await Promise.all(
          handles.map((handle, i) =>
            e.sso.advance({
              handle,
              request: post({ id: `ext-${i}`, email: SPELLINGS[i % SPELLINGS.length] as string, email_verified: 'on' }),
              session: sessions[i] as SessionInfo,
            }),
          ),
        )
        const after = await e.snapshot()

        // The first to hold the address's lock signs up at once (no page); every other visitor
        // then finds an account with the email, and an email match always asks (sign in to link).
        const created = results.flatMap((r) => (r.isOk() && r.value.kind === 'signedIn' ? [r.value] : []))
        expect(created).toHaveLength(1)
        expect(created[0]?.created).toEqual({ user: true, identity: true, member: true })
        expect(created[0]?.trace.map((t) => t.rule)).toContain('unknown.jit')
        for (const r of results) {
          const v = r._unsafeUnwrap()
          if (v.kind !== 'signedIn') {
            expect(v).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-identity' } })
            expect('trace' in v && v.trace.map((t) => t.rule)).toContain('target.email-match')
          }
        }
        const address = normalizeEmail('race@corp.example')
        expect(after.users).toHaveLength(1)
        expect(after.userEmails.filter((x) => x.emailNormalized === address)).toHaveLength(1)
        expect(after.identities).toHaveLength(1)
        expect(after.members).toEqual([expect.objectContaining({ userId: created[0]?.userId })])
        expect(e.signals.emitted.filter((s) => s.name === 'user_signup')).toHaveLength(1)
      } finally {
        await drop()
      }
    })
  })
}

// Issue 12 item 7: the races of section 8 and their neighbours, forced with barriers (no sleeps)
// on every backend (memory, PGlite, SQLite always; PostgreSQL and MariaDB when DATABASE_URL /
// MYSQL_URL are set). Each race has exactly one winner; the others get a typed error (or, where
// the serial outcome says so, the winner's result), and nothing is left half-written.
const FIFTY = 50
/** Backends for up to FIFTY racers: every racer holds a connection at the barrier. */
const WIDE: readonly Backend[] = BACKENDS.map((b) =>
  b.name === 'postgres'
    ? { ...b, open: wide(() => openPostgres({ max: FIFTY + 10 })) }
    : b.name === 'mysql'
      ? { ...b, open: wide(() => openMysql({ connectionLimit: FIFTY + 10 })) }
      : b,
)
function wide(open: () => Promise<TestDatabase>): Backend['open'] {
  return async () => {
    const database = await open()
    return {
      async fresh(clock) {
        const f = await freshStorage(database, { clock })
        return { storage: f.storage, drop: () => f.drop() }
      },
      close: () => database.close(),
    }
  }
}

/** Makes the first `n` calls of `pipelineStates.compareAndSet` wait for each other (double callback). */
function casBarrier<S extends RaceStorage>(raw: S, n: number): S {
  const barrier = createBarrier(n)
  const states = raw.pipelineStates
  const gated = {
    ...states,
    compareAndSet: async (...args: Parameters<typeof states.compareAndSet>) => {
      await barrier.arrive()
      return states.compareAndSet(...args)
    },
  }
  bindAll(gated, states)
  return new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop === 'pipelineStates') return gated
      const v: unknown = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}
function bindAll(out: Record<string, unknown>, from: object): void {
  for (const [k, v] of Object.entries(out)) if (typeof v === 'function' && k !== 'compareAndSet') out[k] = v.bind(from)
}

const TYPED = new Set([
  'STATE_CONFLICT',
  'STATE_CONSUMED',
  'IDENTITY_CONFLICT',
  'PROVIDER_EXISTS',
  'PROVIDER_MISMATCH',
  'PROVIDER_NOT_CONFIGURED',
  'STORAGE_CONFLICT',
])

for (const backend of WIDE) {
  describe.skipIf(!backend.enabled)(`races forced with barriers on ${backend.name} (issue 12 item 7)`, { timeout: 120_000 }, () => {
    let opened: Awaited<ReturnType<typeof backend.open>>
    beforeAll(async () => {
      opened = await backend.open()
    })
    afterAll(async () => {
      await opened?.close()
    })
    async function fresh(
      seed: StorageSeedData,
      meet: Parameters<typeof engineOn>[3] = { at: 'tx-start' },
      wrap?: (s: RaceStorage) => RaceStorage,
      policy?: PolicyOptions,
    ) {
      const clock = newClock()
      const f = await opened.fresh(clock)
      await f.storage.seed({ organizations: [ORG], providers: [PROVIDER], ...seed })
      const raw = wrap ? wrap(f.storage) : f.storage
      return { e: engineOn(raw, backend, clock, meet, { policy }), drop: f.drop }
    }
    const errorsOf = (results: readonly Result<unknown, AuthError>[]) => results.flatMap((r) => (r.isErr() ? [r.error.code] : []))

    it(`threat 52: ${FIFTY} parallel first logins of one identity: one user, identity and membership; every caller that signs in is that user`, async () => {
      const { e, drop } = await fresh({}, { at: 'tx-start' }, undefined, { newUser: 'create' })
      try {
        const sessions = Array.from({ length: FIFTY }, (_, i): SessionInfo => ({ id: `tab-${i}` }))
        const handles = await Promise.all(
          sessions.map(async (session) => handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session })))),
        )
        e.storage.arm(FIFTY)
        const results = await Promise.all(
          handles.map((handle, i) =>
            e.sso.advance({ handle, session: sessions[i] as SessionInfo, request: post({ id: 'ext-one', email: 'one@corp.example' }) }),
          ),
        )
        const after = await e.snapshot()
        expect(after.users).toHaveLength(1)
        expect(after.identities).toHaveLength(1)
        expect(after.members).toHaveLength(1)
        const user = after.users[0]?.id
        const signedIn = results.flatMap((r) => (r.isOk() && r.value.kind === 'signedIn' ? [r.value] : []))
        expect(signedIn.filter((o) => o.created.user)).toHaveLength(1)
        for (const o of signedIn) expect(o.userId).toBe(user)
        for (const code of errorsOf(results)) expect(TYPED).toContain(code)
        expect(signedIn.length + errorsOf(results).length).toBe(FIFTY)
        expect(e.signals.emitted.filter((s) => s.name === 'user_signup')).toHaveLength(1)
      } finally {
        await drop()
      }
    })

    it('threat 30: a double callback (one pipeline posted twice at once): one decision, the other STATE_CONFLICT or STATE_CONSUMED', async () => {
      const { e, drop } = await fresh({}, { at: 'tx-start' }, (raw) => casBarrier(raw, 2), { newUser: 'create' })
      try {
        const session: SessionInfo = { id: 'tab' }
        const handle = handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session })))
        const results = await Promise.all(
          [0, 1].map(() => e.sso.advance({ handle, session, request: post({ id: 'ext-double', email: 'double@corp.example' }) })),
        )
        const ok = results.filter((r) => r.isOk())
        expect(ok).toHaveLength(1)
        expect(errorsOf(results).every((c) => c === 'STATE_CONFLICT' || c === 'STATE_CONSUMED')).toBe(true)
        const after = await e.snapshot()
        expect(after.users).toHaveLength(1)
        expect(after.identities).toHaveLength(1)
      } finally {
        await drop()
      }
    })

    it('threat 54: concurrent setup by two admins: one provider and one admin identity; the other PROVIDER_EXISTS', async () => {
      const admins = ['a1', 'a2'].map((id) => makeUser({ id, email: `${id}@corp.example` }))
      const members = admins.map((u) => makeMember({ id: `m-${u.id}`, organizationId: ORG2.id, userId: u.id, role: 'owner' }))
      const clock = newClock()
      const f = await opened.fresh(clock)
      try {
        await f.storage.seed({ organizations: [ORG2], users: admins, members })
        const e = engineOn(f.storage, backend, clock, { at: 'tx-start' })
        const sessions = admins.map((u): SessionInfo => ({ id: `s-${u.id}`, userId: u.id }))
        const handles = await Promise.all(
          sessions.map(async (session) =>
            handleOf(await unwrap(e.sso.beginSetup({ organizationId: ORG2.id, providerKey: 'dummy', session }))),
          ),
        )
        e.storage.arm(2)
        const results = await Promise.all(
          handles.map((handle, i) =>
            e.sso.advance({
              handle,
              session: sessions[i] as SessionInfo,
              request: post({ id: `ext-a${i + 1}`, email: `a${i + 1}@corp.example` }),
            }),
          ),
        )
        expect(results.filter((r) => r.isOk() && r.value.kind === 'setupComplete')).toHaveLength(1)
        expect(errorsOf(results)).toEqual(['PROVIDER_EXISTS'])
        const after = await f.storage.snapshot()
        expect(after.providers).toHaveLength(1)
        expect(after.identities).toHaveLength(1)
        expect(after.audit.filter((a) => a.event === 'sso.enable')).toHaveLength(1)
      } finally {
        await f.drop()
      }
    })

    it('threats 25, 52: attach by a signed-in user racing a new user for the same identity: one owner, no orphan account', async () => {
      const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
      const { e, drop } = await fresh(
        { users: [alice], members: [makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice' })] },
        { at: 'tx-start' },
      )
      try {
        const signedIn: SessionInfo = { id: 'alice-tab', userId: 'alice' }
        const anon: SessionInfo = { id: 'anon-tab' }
        const form = post({ id: 'ext-shared', email: 'shared@corp.example' })
        const h1 = handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session: signedIn })))
        const h2 = handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session: anon })))
        // both reach their confirmation page; nothing is written yet
        handleOf(await unwrap(e.sso.advance({ handle: h1, session: signedIn, request: form })))
        handleOf(await unwrap(e.sso.advance({ handle: h2, session: anon, request: form })))
        e.storage.arm(2)
        const results = await Promise.all([
          e.sso.finishLogin({ handle: h1, session: signedIn, op: 'confirm' }),
          e.sso.finishLogin({ handle: h2, session: anon, op: 'newuser' }),
        ])
        const after = await e.snapshot()
        const rows = after.identities.filter((i) => i.ident === 'ext-shared')
        expect(rows).toHaveLength(1)
        const owner = rows[0]?.userId
        // no account without the identity it was made for
        const made = after.users.filter((u) => u.id !== 'alice')
        expect(made.every((u) => u.id === owner)).toBe(true)
        for (const r of results) {
          if (r.isOk()) expect(r.value.kind === 'signedIn' && r.value.userId).toBe(owner)
          else expect(TYPED).toContain(r.error.code)
        }
      } finally {
        await drop()
      }
    })

    it('threat 62: disable racing a returning login: the login commits first or is refused; afterwards no identity of the provider remains', async () => {
      const admin = makeUser({ id: 'admin', email: 'admin@corp.example' })
      const bob = makeUser({ id: 'bob', email: 'bob@corp.example' })
      const { e, drop } = await fresh(
        {
          users: [admin, bob],
          members: [
            makeMember({ id: 'm-admin', organizationId: ORG.id, userId: 'admin', role: 'owner' }),
            makeMember({ id: 'm-bob', organizationId: ORG.id, userId: 'bob' }),
          ],
          identities: [makeIdentity({ id: 'ai-bob', authProviderId: PROVIDER.id, userId: 'bob', ident: 'ext-bob' })],
        },
        { at: 'tx-start' },
      )
      try {
        const bobSession: SessionInfo = { id: 'bob-tab' }
        const handle = handleOf(await unwrap(e.sso.beginLogin({ organizationId: ORG.id, session: bobSession })))
        e.storage.arm(2)
        const [login, disable] = await Promise.all([
          e.sso.advance({ handle, session: bobSession, request: post({ id: 'ext-bob', email: 'bob@corp.example' }) }),
          e.sso.disableProvider({ organizationId: ORG.id, session: { id: 'admin-tab', userId: 'admin' } }),
        ])
        expect(disable.isOk()).toBe(true)
        if (login.isErr()) expect(TYPED).toContain(login.error.code)
        else expect(login.value.kind === 'signedIn' && login.value.userId).toBe('bob')
        const after = await e.snapshot()
        expect(after.providers).toEqual([])
        expect(after.identities).toEqual([])
      } finally {
        await drop()
      }
    })
  })
}
