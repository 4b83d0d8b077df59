// finishSetup and disableProvider on real SQL storage (Kysely adapter): PGlite and SQLite always,
// PostgreSQL and MariaDB when DATABASE_URL / MYSQL_URL are set (CI sets them). An in-memory store
// serialises everything; these runs check that one provider per org, rollback at the last write
// and one transaction per operation also hold with real unique indexes and row locks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveContext } from '../../src/engine/context.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipelineOptions } from '../../src/engine/types.js'
import type { KyselyStorage } from '../../src/kysely/index.js'
import type { AuditEntry } from '../../src/model/records.js'
import type { StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, sequentialIds } from '../../src/testing/fakes.js'
import { makeMember, makeUser } from '../../src/testing/fixtures.js'
import { DATABASES, freshStorage, reportSkip, type TestDatabase } from '../helpers/databases.js'
import { defaultRows, readySetup, SECRET, session, urls } from './harness.js'

const OWNERS = ['o1', 'o2', 'o3', 'o4', 'o5']

for (const database of DATABASES) {
  if (!database.enabled) {
    reportSkip(`setup on ${database.name}`, database.variable ?? '')
    continue
  }
  // PGlite compiles its WebAssembly on first use: allow slow first statements on a loaded machine.
  describe(`setup on ${database.name}`, { timeout: 120_000 }, () => {
    let db: TestDatabase
    beforeAll(async () => {
      db = await database.open()
    })
    afterAll(async () => {
      await db?.close()
    })

    async function world(failOn: Set<string> = new Set()) {
      const clock = fixedClock('2026-03-01T10:00:00.000Z')
      const fresh = await freshStorage(db, { clock })
      const storage: KyselyStorage = fresh.storage
      const rows = defaultRows()
      await storage.seed({
        organizations: rows.organizations,
        users: [...rows.users, ...OWNERS.map((id) => makeUser({ id }))],
        members: [
          ...rows.members,
          ...OWNERS.map((id) => makeMember({ id: `m-${id}`, organizationId: 'org-1', userId: id, role: 'owner' })),
        ],
      })
      const mailer = createRecordingMailer()
      const signals = createRecordingSignals()
      const options: AuthPipelineOptions = {
        storage,
        mailer,
        signals,
        audit: {
          async record(entry: AuditEntry, tx: StorageTx) {
            if (failOn.has(entry.event)) throw new Error(`audit ${entry.event} failed (injected)`)
            await tx.appendAudit(entry)
          },
        },
        providers: { dummy: dummyProvider() },
        secret: SECRET,
        urls,
        clock,
        ids: sequentialIds(`x${Math.random().toString(36).slice(2, 8)}`),
      }
      return { storage, mailer, signals, sso: createAuthPipeline(options), ctx: resolveContext(options), drop: fresh.drop }
    }

    it('verified domains: two orgs verifying one domain concurrently, exactly one wins (DOMAIN_TAKEN), one audit entry', async () => {
      const w = await world()
      try {
        expect((await w.sso.addDomain({ organizationId: 'org-1', session: session('admin'), domain: 'race.example' })).isOk()).toBe(true)
        expect((await w.sso.addDomain({ organizationId: 'org-2', session: session('admin2'), domain: 'race.example' })).isOk()).toBe(true)
        const results = await Promise.all([
          w.sso.verifyDomain({ organizationId: 'org-1', session: session('admin'), domain: 'race.example' }),
          w.sso.verifyDomain({ organizationId: 'org-2', session: session('admin2'), domain: 'race.example' }),
        ])
        expect(results.filter((r) => r.isOk())).toHaveLength(1)
        for (const r of results.filter((x) => x.isErr())) expect(r._unsafeUnwrapErr().code).toBe('DOMAIN_TAKEN')
        const snap = await w.storage.snapshot()
        const verified = snap.domains?.filter((d) => d.verifiedAt !== null) ?? []
        expect(verified).toHaveLength(1)
        expect(snap.audit.filter((a) => a.event === 'domain.verify')).toHaveLength(1)
        // Discovery on SQL: the winner's login starts (no provider yet: PROVIDER_NOT_CONFIGURED).
        const found = await w.sso.beginLogin({ email: 'ada@race.example', session: session(null) })
        expect(found.isErr() && found.error.code).toBe('PROVIDER_NOT_CONFIGURED')
        const [org, user] = verified[0]?.organizationId === 'org-1' ? ['org-1', 'admin'] : ['org-2', 'admin2']
        expect((await w.sso.removeDomain({ organizationId: org, session: session(user), domain: 'race.example' })).isOk()).toBe(true)
        const gone = await w.sso.beginLogin({ email: 'ada@race.example', session: session(null) })
        expect(gone.isErr() && gone.error.code).toBe('DOMAIN_UNKNOWN')
      } finally {
        await w.drop()
      }
    })

    it('verified domains: a failing audit write rolls the domain change back', async () => {
      const w = await world(new Set(['domain.verify']))
      try {
        expect((await w.sso.addDomain({ organizationId: 'org-1', session: session('admin'), domain: 'acme.example' })).isOk()).toBe(true)
        const before = await w.storage.snapshot()
        const result = await w.sso.verifyDomain({ organizationId: 'org-1', session: session('admin'), domain: 'acme.example' })
        expect(result.isErr() && result.error.code).toBe('STORAGE_UNAVAILABLE')
        const after = await w.storage.snapshot()
        expect(after.domains).toEqual(before.domains)
        expect(after.audit).toEqual(before.audit)
      } finally {
        await w.drop()
      }
    })

    it('five admins finishing concurrently: one provider, one identity, one sso.enable, one signal', async () => {
      const w = await world()
      try {
        const inputs = []
        for (const id of OWNERS) inputs.push(await readySetup(w, { user: id, form: { id: `ext-${id}`, email: `${id}@example.com` } }))
        const results = await Promise.all(inputs.map((input) => w.sso.finishSetup(input)))
        expect(results.filter((r) => r.isOk())).toHaveLength(1)
        for (const r of results.filter((x) => x.isErr())) expect(r._unsafeUnwrapErr().code).toBe('PROVIDER_EXISTS')
        const snap = await w.storage.snapshot()
        expect(snap.providers).toHaveLength(1)
        expect(snap.identities).toHaveLength(1)
        expect(snap.audit.filter((a) => a.event === 'sso.enable')).toHaveLength(1)
        expect(snap.organizations.find((o) => o.id === 'org-1')?.require2fa).toBe(false)
        expect(w.signals.emitted).toHaveLength(1)
        expect(snap.identities[0]?.userId).toBe(w.signals.emitted[0]?.payload.userId)
      } finally {
        await w.drop()
      }
    })

    it('a failure at the last write leaves require-2FA on and writes nothing', async () => {
      const w = await world(new Set(['sso.enable']))
      try {
        const input = await readySetup(w)
        const { pipelineStates: _a, ...before } = await w.storage.snapshot()
        const result = await w.sso.finishSetup(input)
        expect(result._unsafeUnwrapErr().code).toBe('STORAGE_UNAVAILABLE')
        const { pipelineStates: _b, ...after } = await w.storage.snapshot()
        expect(after).toEqual(before)
        expect(after.organizations.find((o) => o.id === 'org-1')?.require2fa).toBe(true)
        expect(w.mailer.sent).toEqual([])
        expect(w.signals.emitted).toEqual([])
      } finally {
        await w.drop()
      }
    })

    it('setup then disable: link flags cleared, identities and provider gone, one audit each', async () => {
      const w = await world()
      try {
        const outcome = (await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap()
        expect(outcome.linkRequestsQueued).toBe(true)
        expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ mailsSent: 3 + OWNERS.length, completed: 1 })
        const disabled = (await w.sso.disableProvider({ organizationId: 'org-1', session: session('admin') }))._unsafeUnwrap()
        expect(disabled.kind).toBe('providerDisabled')
        const snap = await w.storage.snapshot()
        expect(snap.providers).toEqual([])
        expect(snap.identities).toEqual([])
        expect(snap.members.filter((m) => m.organizationId === 'org-1').every((m) => !m.flags.ssoLinked && !m.flags.ssoInvalid)).toBe(true)
        expect(snap.members.find((m) => m.id === 'm-admin')?.flags.idpProvisioned).toBe(true)
        expect(snap.audit.map((a) => a.event)).toEqual(['org.edit', 'sso-identity.link', 'sso.enable', 'sso.disable'])
      } finally {
        await w.drop()
      }
    })
  })
}
