/**
 * Issue 16 item 1: the provider's lifecycle is transactional. Two admins and logins racing on
 * one provider, each interleaving forced with gates (no sleeps), on memory, PGlite, SQLite, and
 * PostgreSQL / MariaDB when their URL is set:
 *
 * - a login inside its transaction holds the provider: a concurrent disable waits for it and
 *   then removes what the login wrote (no identity of a deleted provider, nobody linked again,
 *   the link audit before `sso.disable`);
 * - two disables at once: one wins, the other gets PROVIDER_NOT_CONFIGURED and writes nothing
 *   (one `sso.disable` audit, each notice once);
 * - updateSettings and refreshIdentity against a disable: each either commits before the disable
 *   or ends with a typed error, writing nothing.
 *
 * (The finish that read the provider before the disable committed is threat 62:
 * test/security/s10b-idp-config-lifecycle-2fa.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionInfo, Step } from '../../src/engine/types.js'
import { NO_FLAGS } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { BACKENDS, makeWorld, type OpenBackend, until, type World } from '../helpers/worlds.js'

const ORG = makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme' })
const LINKED = { ...NO_FLAGS, ssoLinked: true }
const MEMBERS = 6
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })
const ADMIN: SessionInfo = { id: 'sess-admin', userId: 'admin', ip: '203.0.113.7' }
const ADMIN2: SessionInfo = { id: 'sess-admin2', userId: 'admin2', ip: '203.0.113.8' }

async function seed(w: World): Promise<void> {
  const extra = Array.from({ length: MEMBERS }, (_, i) => `u${i}`)
  await w.raw.seed({
    organizations: [ORG],
    providers: [makeProvider({ id: 'ap-1', organizationId: ORG.id, providerKey: 'dummy' })],
    users: [makeUser({ id: 'admin' }), makeUser({ id: 'admin2' }), makeUser({ id: 'mem' }), ...extra.map((id) => makeUser({ id }))],
    members: [
      makeMember({ id: 'm-admin', organizationId: ORG.id, userId: 'admin', role: 'owner', flags: LINKED }),
      makeMember({ id: 'm-admin2', organizationId: ORG.id, userId: 'admin2', role: 'owner' }),
      makeMember({ id: 'm-mem', organizationId: ORG.id, userId: 'mem' }),
      ...extra.map((id) => makeMember({ id: `m-${id}`, organizationId: ORG.id, userId: id })),
    ],
    identities: [makeIdentity({ id: 'ai-admin', authProviderId: 'ap-1', userId: 'admin', ident: 'ext-admin' })],
  })
}

function handleOf(step: Step): string {
  if (!('handle' in step) || typeof step.handle !== 'string') throw new Error(`no handle on ${step.kind}`)
  return step.handle
}

for (const backend of BACKENDS) {
  if (!backend.enabled) {
    reportSkip(`provider races on ${backend.name}`, backend.variable ?? '')
    continue
  }
  describe(`provider lifecycle races on ${backend.name}`, { timeout: 120_000 }, () => {
    let open: OpenBackend
    beforeAll(async () => {
      open = await backend.open()
    })
    afterAll(async () => {
      await open?.close()
    })

    async function world(): Promise<World> {
      const w = await makeWorld(open)
      await seed(w)
      return w
    }

    it('a login inside its transaction holds the provider: the disable waits, then removes what the login wrote', async () => {
      const w = await world()
      try {
        const session: SessionInfo = { id: 's-mem', userId: 'mem' }
        const begun = (await w.sso.beginLogin({ organizationId: ORG.id, session }))._unsafeUnwrap()
        // The login stops inside its transaction right after it locked the identity (and the provider).
        const inside = w.gates.holdAfter('lockIdentity')
        const login = w.sso.advance({
          handle: handleOf(begun),
          request: post({ id: 'ext-mem', email: 'mem@example.com', email_verified: 'on' }),
          session,
        })
        await inside.reached
        let disableSettled = false
        const disable = (async () => {
          const r = await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN })
          disableSettled = true
          return r
        })()
        // Go on once the disable is provably waiting for the login (or, if it does not wait, done).
        await until(async () => disableSettled || (await w.blocked()) >= 1, 'the disable waits for the login or finishes')
        inside.release()
        const out = (await login)._unsafeUnwrap()
        expect(out).toMatchObject({ kind: 'signedIn', userId: 'mem', linked: true })
        expect((await disable)._unsafeUnwrap().kind).toBe('providerDisabled')
        const after = await w.snapshot()
        expect(after.providers).toEqual([])
        expect(after.identities).toEqual([])
        expect(after.members.filter((m) => m.flags.ssoLinked || m.flags.ssoInvalid)).toEqual([])
        // Committed in this order: the login's link audit, then the disable.
        expect(w.audit.recorded.map((a) => a.event)).toEqual(['sso-identity.link', 'sso.disable'])
        expect(after.audit.map((a) => a.event).sort()).toEqual(['sso-identity.link', 'sso.disable'])
      } finally {
        await w.drop()
      }
    })

    it('two disables at once: one wins, the other gets PROVIDER_NOT_CONFIGURED and writes nothing', async () => {
      const w = await world()
      try {
        // Each disable stops right after its transaction read (or locked) the provider row; both go
        // on once both are there, or once one of them is provably blocked behind the other.
        const first = w.gates.holdAfter('getAuthProvider', 'lockAuthProvider')
        const second = w.gates.holdAfter('getAuthProvider', 'lockAuthProvider')
        const results = [
          w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN }),
          w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN2 }),
        ]
        let arrived = 0
        void first.reached.then(() => arrived++)
        void second.reached.then(() => arrived++)
        await until(async () => arrived === 2 || (arrived === 1 && (await w.blocked()) >= 1), 'both disables read the provider')
        first.release()
        second.release()
        const [a, b] = await Promise.all(results)
        const outcomes = [a, b]
          .map((r) =>
            r?.match(
              (v) => v.kind as string,
              (e) => e.code as string,
            ),
          )
          .sort()
        expect(outcomes).toEqual(['PROVIDER_NOT_CONFIGURED', 'providerDisabled'])
        const after = await w.snapshot()
        expect(after.audit.filter((e) => e.event === 'sso.disable')).toHaveLength(1)
        expect(after.providers).toEqual([])
        // One disable's notices were recorded (the loser wrote nothing): drained, every active
        // member is told once: nothing sent twice, no duplicate dropped by the mailer.
        expect(after.pendingWork.map((x) => x.kind)).toEqual(['unlink-notices'])
        expect((await w.sso.runPendingWork())._unsafeUnwrap().mailsSent).toBe(MEMBERS + 3)
        const notices = [...w.mailer.sent, ...w.mailer.duplicates].filter((m) => m.template === 'ssoUnlinked')
        expect(notices).toHaveLength(MEMBERS + 3)
        expect(new Set(notices.map((m) => m.to)).size).toBe(MEMBERS + 3)
      } finally {
        await w.drop()
      }
    })

    it('updateSettings against a disable: commits before it, or PROVIDER_NOT_CONFIGURED writing nothing', async () => {
      const w = await world()
      try {
        const inside = w.gates.holdAfter('getAuthProvider', 'lockAuthProvider')
        const settings = w.sso.updateSettings({ organizationId: ORG.id, session: ADMIN2, settings: { defaultRole: 'admin' } })
        await inside.reached
        let disableSettled = false
        const disable = (async () => {
          const r = await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN })
          disableSettled = true
          return r
        })()
        await until(async () => disableSettled || (await w.blocked()) >= 1, 'the disable waits for the settings change or finishes')
        inside.release()
        const s = await settings
        expect((await disable)._unsafeUnwrap().kind).toBe('providerDisabled')
        const after = await w.snapshot()
        // The order the entries were written in (ids were allocated before either transaction).
        const events = w.audit.recorded.map((a) => a.event)
        expect(after.audit.map((a) => a.event).sort()).toEqual([...events].sort())
        if (s.isOk()) {
          // Serial order: the change, then the disable.
          expect(events).toEqual(['sso.edit', 'sso.disable'])
          expect(after.organizations[0]?.defaultRole).toBe('admin')
        } else {
          expect(s.error.code).toBe('PROVIDER_NOT_CONFIGURED')
          expect(events).toEqual(['sso.disable'])
          expect(after.organizations[0]?.defaultRole).toBe('member')
        }
      } finally {
        await w.drop()
      }
    })

    it('refreshIdentity against a disable: never re-links a member after the disable', async () => {
      const w = await world()
      try {
        // ai-admin's member is linked; make it invalid so an "ok" refresh would switch it back on.
        await w.raw.transaction((tx) => tx.updateMember('m-admin', { flags: { ...NO_FLAGS, ssoInvalid: true } }))
        // Hold the refresh inside its transaction after its first read or lock.
        const inside = w.gates.holdAfter('getIdentityById', 'lockIdentity')
        const refresh = w.sso.refreshIdentity({ identityId: 'ai-admin' })
        await inside.reached
        let disableSettled = false
        const disable = (async () => {
          const r = await w.sso.disableProvider({ organizationId: ORG.id, session: ADMIN })
          disableSettled = true
          return r
        })()
        await until(async () => disableSettled || (await w.blocked()) >= 1, 'the disable waits for the refresh or finishes')
        inside.release()
        const r = await refresh
        expect((await disable)._unsafeUnwrap().kind).toBe('providerDisabled')
        if (r.isErr()) expect(['PROVIDER_NOT_CONFIGURED', 'STORAGE_CONFLICT']).toContain(r.error.code)
        const after = await w.snapshot()
        expect(after.identities).toEqual([])
        expect(after.members.filter((m) => m.flags.ssoLinked || m.flags.ssoInvalid)).toEqual([])
      } finally {
        await w.drop()
      }
    })
  })
}
