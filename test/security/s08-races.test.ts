// Threats 10 and 52: two active accounts for one email. RACERS anonymous visitors, each with a
// different external id asserting the same address (in different cases), confirm `op=newuser`
// at once. Exactly one account is created; the others get IDENTITY_CONFLICT and nothing of
// theirs is written. The host's users table has no unique email index (ssoflow's own has none
// either): the engine must serialize on the normalized address itself. On PostgreSQL and
// MariaDB every racer is inside its transaction before any of them reads (barrier at the start).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionInfo } from '../../src/engine/types.js'
import { normalizeEmail } from '../../src/model/email.js'
import { makeOrganization, makeProvider } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { BACKENDS, engineOn, handleOf, newClock, post, RACERS, unwrap } from './race.js'

const ORG = makeOrganization({ id: 'org1', slug: 'acme', name: 'Acme' })
const PROVIDER = makeProvider({ id: 'ap1', organizationId: ORG.id, providerKey: 'dummy' })
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
