// Link mails as durable background work (issue 16 item 2). The admin requests record the mail
// fan-out in the outbox inside their transaction and mail nothing; `runPendingWork` sends it a
// page at a time. What must hold, on memory, PGlite, SQLite and (with their URLs) PostgreSQL and
// MariaDB, with the interleavings forced by barriers, never sleeps:
// - no mail before the decision commits, none for a decision that rolled back;
// - the request reads no member (O(1) in the org's size);
// - two drains at once: every mail reaches the mailer once;
// - a worker that crashed after its claim, or after sending a page, is taken over when its lease
//   expires: every member is mailed, the redone page only with the same idempotency keys;
// - link requests of a provider disabled meanwhile are dropped; the unlink notices go out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, SessionInfo } from '../../src/engine/types.js'
import type { MailerPort, MailMessage } from '../../src/ports/mailer.js'
import type { PendingWorkStore, StoragePort } from '../../src/ports/storage.js'
import { makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { DRIZZLE_DATABASES, freshDrizzleStorage } from '../drizzle/databases.js'
import { reportSkip } from '../helpers/databases.js'
import { BACKENDS, type Backend, makeWorld, type OpenBackend, until, type World } from '../helpers/worlds.js'

/** `ssoflow/drizzle` over the same databases (its outbox, issue 19). */
const DRIZZLE_BACKENDS: readonly Backend[] = DRIZZLE_DATABASES.map((d) => ({
  name: `drizzle/${d.name}`,
  enabled: d.enabled,
  variable: d.variable,
  async open(): Promise<OpenBackend> {
    const database = await d.open()
    return {
      database: null,
      async fresh(clock) {
        const f = await freshDrizzleStorage(database, { clock })
        return { storage: f.storage, drop: f.drop, lockWaits: async () => 0 }
      },
      close: () => database.close(),
    }
  },
}))

const MEMBERS = 7
/** Who gets link requests or notices: every active member without ssoLinked, owners included. */
const ORG1 = MEMBERS + 1
const ORG2 = 3 + 1
const PAGE = 2
const admin: SessionInfo = { id: 'sess-admin', userId: 'admin', ip: '203.0.113.7' }

/** org-1 (provider ap-1) with an owner and MEMBERS unlinked members; org-2 (ap-2) with an owner and 3. */
async function seed(w: World): Promise<void> {
  const users = [makeUser({ id: 'admin' }), makeUser({ id: 'admin2' })]
  const members = [
    makeMember({ id: 'm-admin', organizationId: 'org-1', userId: 'admin', role: 'owner' }),
    makeMember({ id: 'm-admin2', organizationId: 'org-2', userId: 'admin2', role: 'owner' }),
  ]
  for (let i = 0; i < MEMBERS; i++) {
    users.push(makeUser({ id: `u${i}`, email: `u${i}@example.com` }))
    members.push(makeMember({ id: `m-${i}`, organizationId: 'org-1', userId: `u${i}` }))
  }
  for (let i = 0; i < 3; i++) {
    users.push(makeUser({ id: `v${i}`, email: `v${i}@example.com` }))
    members.push(makeMember({ id: `n-${i}`, organizationId: 'org-2', userId: `v${i}` }))
  }
  await w.storage.seed({
    organizations: [makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme' }), makeOrganization({ id: 'org-2', slug: 'other' })],
    users,
    members,
    providers: [
      makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'dummy' }),
      makeProvider({ id: 'ap-2', organizationId: 'org-2', providerKey: 'dummy' }),
    ],
  })
}

/** The storage's outbox (memory, Kysely and Drizzle have one). */
function outboxOf(storage: StoragePort): PendingWorkStore {
  if (!storage.pendingWork) throw new Error('this storage has no outbox')
  return storage.pendingWork
}

/** A second engine ("worker") on the same storage and policy, with its own mailer. */
function worker(w: World, mailer: MailerPort): AuthPipeline {
  return createAuthPipeline({ ...w.options, mailer })
}

/** A mailer that forwards to `to`, holding the first send until released. */
function heldMailer(to: MailerPort): { mailer: MailerPort; reached: Promise<void>; release(): void } {
  let reach: () => void = () => {}
  let go: () => void = () => {}
  const reached = new Promise<void>((r) => {
    reach = r
  })
  const released = new Promise<void>((r) => {
    go = r
  })
  let first = true
  return {
    reached,
    release: () => go(),
    mailer: {
      async send(message: MailMessage) {
        if (first) {
          first = false
          reach()
          await released
        }
        await to.send(message)
      },
    },
  }
}

const keys = (messages: readonly MailMessage[]) => messages.map((m) => m.idempotencyKey).sort()

for (const backend of [...BACKENDS, ...DRIZZLE_BACKENDS]) {
  if (!backend.enabled) {
    reportSkip(`pending work on ${backend.name}`, backend.variable ?? '')
    continue
  }
  describe(`pending work on ${backend.name}`, { timeout: 120_000 }, () => {
    let open: OpenBackend
    beforeAll(async () => {
      open = await backend.open()
    })
    afterAll(async () => {
      await open?.close()
    })
    async function world(): Promise<World> {
      const w = await makeWorld(open, { policy: { memberPageSize: PAGE } })
      await seed(w)
      return w
    }

    it('no mail before the decision commits; the request reads no member; the drain mails each member once', async () => {
      const w = await world()
      try {
        const reads: string[] = []
        const counting = new Proxy(w.storage, {
          get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver)
            if (typeof value !== 'function') return value
            return (...args: unknown[]) => {
              if (prop === 'listMembers' || prop === 'listMemberRecipients' || prop === 'getUser') reads.push(String(prop))
              return (value as (...a: unknown[]) => unknown).apply(target, args)
            }
          },
        }) as StoragePort
        const sso = createAuthPipeline({ ...w.options, storage: counting })
        // Hold the disable inside its transaction, right after it recorded the work.
        const held = w.gates.holdAfter('enqueueWork')
        const disabling = sso.disableProvider({ organizationId: 'org-1', session: admin })
        await held.reached
        // A drain meanwhile: on a server it finds nothing committed; a serial store (memory,
        // SQLite, PGlite) queues it behind the open transaction. Either way, no mail yet.
        let finished = false
        const during = w.sso.runPendingWork().then((r) => {
          finished = true
          return r._unsafeUnwrap()
        })
        if (/(^|\/)(postgres|mysql)$/.test(backend.name)) await until(() => finished, 'the concurrent drain finished')
        else {
          for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 1))
          expect(finished).toBe(false)
        }
        expect(w.mailer.sent).toEqual([])
        held.release()
        expect((await disabling)._unsafeUnwrap()).toEqual({ kind: 'providerDisabled', unlinkMailsQueued: true })
        await during
        expect(reads).toEqual([])
        await w.sso.runPendingWork()
        expect(keys(w.mailer.sent)).toEqual(
          ['ap-1:m-admin', ...Array.from({ length: MEMBERS }, (_, i) => `ap-1:m-${i}`)].map((k) => `sso-unlinked:${k}`).sort(),
        )
        expect(w.mailer.duplicates).toEqual([])
        expect((await w.snapshot()).pendingWork).toEqual([])
        expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0, mailsSent: 0 })
      } finally {
        await w.drop()
      }
    })

    it('a decision that rolls back leaves no work and no mail', async () => {
      const w = await world()
      try {
        w.audit.failNext(1)
        const failed = await w.sso.disableProvider({ organizationId: 'org-1', session: admin })
        expect(failed.isErr()).toBe(true)
        const snap = await w.snapshot()
        expect(snap.pendingWork).toEqual([])
        expect(snap.providers.map((p) => p.id)).toEqual(['ap-1', 'ap-2'])
        expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0, mailsSent: 0 })
        expect(w.mailer.sent).toEqual([])
      } finally {
        await w.drop()
      }
    })

    it('two drains at once (one held mid-page): no item is worked twice, every mail reaches the mailer once', async () => {
      const w = await world()
      try {
        expect((await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin }))._unsafeUnwrap().queued).toBe(true)
        w.clock.advance(1)
        expect(
          (await w.sso.resendLinkRequests({ organizationId: 'org-2', session: { ...admin, userId: 'admin2' } }))._unsafeUnwrap().queued,
        ).toBe(true)
        const a = heldMailer(w.mailer)
        const first = worker(w, a.mailer).runPendingWork()
        await a.reached // worker A claimed org-1's item and is sending its first page
        const second = (await worker(w, w.mailer).runPendingWork())._unsafeUnwrap()
        // Worker B got org-2's item only: org-1's is under A's lease.
        expect(second).toMatchObject({ completed: 1, mailsSent: ORG2 })
        expect((await worker(w, w.mailer).runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0 })
        a.release()
        expect((await first)._unsafeUnwrap()).toMatchObject({ completed: 1, mailsSent: ORG1 })
        expect(w.mailer.sent).toHaveLength(ORG1 + ORG2)
        expect(new Set(keys(w.mailer.sent)).size).toBe(ORG1 + ORG2)
        expect(w.mailer.duplicates).toEqual([])
        expect((await w.snapshot()).pendingWork).toEqual([])
      } finally {
        await w.drop()
      }
    })

    it('two drains started together on one item: one works it, the other finds nothing', async () => {
      const w = await world()
      try {
        await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
        const a = heldMailer(w.mailer)
        const b = heldMailer(w.mailer)
        const runs = [worker(w, a.mailer).runPendingWork(), worker(w, b.mailer).runPendingWork()]
        // Exactly one of them reaches its first send; the other ends with nothing claimed.
        const winner = await Promise.race([a.reached.then(() => 'a'), b.reached.then(() => 'b')])
        const loserRun = winner === 'a' ? runs[1] : runs[0]
        expect((await loserRun)?._unsafeUnwrap()).toMatchObject({ pages: 0, mailsSent: 0 })
        a.release()
        b.release()
        const reports = await Promise.all(runs)
        expect(reports.map((r) => r._unsafeUnwrap().mailsSent).sort()).toEqual([0, ORG1])
        expect(new Set(keys(w.mailer.sent)).size).toBe(ORG1)
        expect(w.mailer.duplicates).toEqual([])
      } finally {
        await w.drop()
      }
    })

    it('a worker that crashed between claim and send: its lease expires and the next drain mails everyone once', async () => {
      const w = await world()
      try {
        await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
        const now = w.clock.now()
        const crashed = await outboxOf(w.storage).claim(now, new Date(now.getTime() + 60_000), 'crashed-worker')
        expect(crashed?.organizationId).toBe('org-1')
        expect((await w.sso.runPendingWork({ leaseMs: 60_000 }))._unsafeUnwrap()).toMatchObject({ pages: 0, mailsSent: 0 })
        w.clock.advance(60_000)
        expect((await w.sso.runPendingWork({ leaseMs: 60_000 }))._unsafeUnwrap()).toMatchObject({ completed: 1, mailsSent: ORG1 })
        expect(new Set(keys(w.mailer.sent)).size).toBe(ORG1)
        expect(w.mailer.duplicates).toEqual([])
        // The crashed worker comes back: its claim is gone.
        expect(await outboxOf(w.storage).complete(crashed?.id ?? '', 'crashed-worker')).toBe(false)
      } finally {
        await w.drop()
      }
    })

    it('a worker that crashed after sending a page (before moving on): the page is redone with the same keys only', async () => {
      const w = await world()
      try {
        await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
        // The worker dies when it writes its progress after the first page.
        const dying = new Proxy(w.storage, {
          get(target, prop, receiver) {
            if (prop === 'pendingWork') {
              const store = outboxOf(target)
              return {
                claim: store.claim.bind(store),
                advance: async () => {
                  throw new Error('worker crashed (injected)')
                },
                complete: store.complete.bind(store),
              }
            }
            const value: unknown = Reflect.get(target, prop, receiver)
            return typeof value === 'function' ? value.bind(target) : value
          },
        }) as StoragePort
        const died = await createAuthPipeline({ ...w.options, storage: dying }).runPendingWork({ leaseMs: 60_000 })
        expect(died._unsafeUnwrapErr().code).toBe('STORAGE_UNAVAILABLE')
        expect(w.mailer.sent).toHaveLength(PAGE)
        const firstPage = keys(w.mailer.sent)
        expect((await w.sso.runPendingWork({ leaseMs: 60_000 }))._unsafeUnwrap()).toMatchObject({ pages: 0 })
        w.clock.advance(60_000)
        expect((await w.sso.runPendingWork({ leaseMs: 60_000 }))._unsafeUnwrap()).toMatchObject({ completed: 1 })
        expect(new Set(keys(w.mailer.sent)).size).toBe(ORG1)
        expect(w.mailer.sent).toHaveLength(ORG1)
        // Only the redone page reached the mailer again, with the keys it had: dropped there.
        expect(keys(w.mailer.duplicates)).toEqual(firstPage)
      } finally {
        await w.drop()
      }
    })

    it('link requests of a provider disabled before the drain are dropped; its unlink notices go out', async () => {
      const w = await world()
      try {
        await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
        await w.sso.disableProvider({ organizationId: 'org-1', session: admin })
        const report = (await w.sso.runPendingWork())._unsafeUnwrap()
        expect(report).toMatchObject({ completed: 2, mailsSent: ORG1 })
        expect(w.mailer.sent.every((m) => m.template === 'ssoUnlinked')).toBe(true)
      } finally {
        await w.drop()
      }
    })

    it('limit bounds one call; the item is handed back at once and the next call carries on', async () => {
      const w = await world()
      try {
        await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
        const first = (await w.sso.runPendingWork({ limit: 2 }))._unsafeUnwrap()
        expect(first).toMatchObject({ pages: 2, mailsSent: 2 * PAGE, more: true, completed: 0 })
        const rest = (await w.sso.runPendingWork({ limit: 100 }))._unsafeUnwrap()
        expect(rest).toMatchObject({ mailsSent: ORG1 - 2 * PAGE, completed: 1 })
        expect(new Set(keys(w.mailer.sent)).size).toBe(ORG1)
        expect(w.mailer.duplicates).toEqual([])
        await until(async () => (await w.snapshot()).pendingWork.length === 0, 'the outbox is empty')
      } finally {
        await w.drop()
      }
    })
  })
}
