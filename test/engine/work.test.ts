// The background-work drain (src/engine/work.ts, issue 16 items 2 and 5; issue 12 item 4) on the
// memory store, driven through `runPendingWork` and the admin requests that record the work:
// the retry backoff of a failing page and its skip after the last attempt, the lease held while
// a page is sent and renewed after it, an item taken over after its lease expired, items of an
// unknown kind or with an unreadable payload, link requests of another organization's provider,
// the `limit` bound, storage failures at each step, and the inline fallback of a storage
// without an outbox. test/setup/pending-work.test.ts runs the common paths on every backend.
import { describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions } from '../../src/engine/types.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { MailerPort, MailMessage } from '../../src/ports/mailer.js'
import type { MemberPage, PendingWork, StoragePort, StorageTx } from '../../src/ports/storage.js'
import { fixedClock } from '../../src/testing/fakes.js'
import { makeIdentity, makeMember, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { defaultRows, makeWorld, readySetup, session, type World } from '../setup/harness.js'

const LINKED = { ssoLinked: true, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false }
const admin = session('admin')
const LEASE = 60_000

/**
 * org-1 ("Acme", provider ap-1 of key `corp`) with members by id: m-admin, m-inactive (user
 * inactive), m-invite (no user), m-linked (ssoLinked), m-manager, m-plain, m-victim; org-2 with
 * provider ap-2. Two members a page. Link requests go to admin, manager, plain, victim.
 */
function world(): World & { logs: [string, unknown][]; drain: (mailer?: MailerPort, storage?: StoragePort) => AuthPipeline } {
  const rows = defaultRows()
  const w = makeWorld({
    memberPageSize: 2,
    users: [...rows.users, makeUser({ id: 'linked' })],
    members: [...rows.members, makeMember({ id: 'm-linked', organizationId: 'org-1', userId: 'linked', flags: LINKED })],
  })
  w.storage.seed({
    providers: [
      makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'corp' }),
      makeProvider({ id: 'ap-2', organizationId: 'org-2', providerKey: 'dummy' }),
    ],
    identities: [makeIdentity({ id: 'ai-linked', authProviderId: 'ap-1', userId: 'linked' })],
  })
  const logs: [string, unknown][] = []
  const options: AuthPipelineOptions = { ...w.options, logger: { warn: (message, fields) => void logs.push([message, fields]) } }
  const drain = (mailer?: MailerPort, storage?: StoragePort) =>
    createAuthPipeline({ ...options, ...(mailer ? { mailer } : {}), ...(storage ? { storage } : {}) })
  return { ...w, sso: drain(), logs, drain }
}

const LINK_RECIPIENTS = ['admin', 'manager', 'plain', 'victim']

/** The users mailed (by the local part of their address), sorted. */
const mailedUsers = (messages: readonly MailMessage[]) => messages.map((m) => m.to.split('@')[0]).sort()

/** An item put into the outbox as another writer (a newer version, a damaged row) would. */
async function putWork(w: World, work: Partial<PendingWork> & Pick<PendingWork, 'id' | 'kind' | 'payload'>): Promise<void> {
  const now = w.clock.now()
  await w.storage.transaction(async (tx: StorageTx) => {
    const recorded = await tx.enqueueWork?.({
      organizationId: 'org-1',
      key: `${work.kind}:${work.id}`,
      cursor: null,
      attempts: 0,
      availableAt: now,
      claimToken: null,
      createdAt: now,
      ...work,
    })
    expect(recorded).toBe(true)
  })
}

const payload = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, authProviderId: 'ap-1', organizationName: 'Acme', providerName: 'Corp', reason: 'setup', at: 0, ...fields })

/** A mailer over the world's recording mailer that refuses the addresses in `failing`. */
function refusing(w: World, failing: Set<string>): MailerPort {
  return {
    async send(message) {
      if (failing.has(message.to)) throw new Error('mailer refused (injected)')
      await w.mailer.send(message)
    },
  }
}

/** A storage whose named methods (on the storage or its outbox) throw. */
function failingStorage(w: World, fail: { storage?: string[]; outbox?: string[] }): StoragePort {
  return new Proxy(w.storage, {
    get(target, prop, receiver) {
      if (prop === 'pendingWork' && target.pendingWork) {
        const store = target.pendingWork
        return new Proxy(store, {
          get(s, p) {
            if (typeof p === 'string' && fail.outbox?.includes(p)) {
              return async () => {
                throw new Error(`outbox ${p} failed (injected)`)
              }
            }
            const v = Reflect.get(s, p)
            return typeof v === 'function' ? v.bind(s) : v
          },
        })
      }
      if (typeof prop === 'string' && fail.storage?.includes(prop)) {
        return async () => {
          throw new Error(`storage ${prop} failed (injected)`)
        }
      }
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  }) as StoragePort
}

describe('runPendingWork: a page the mailer refuses', () => {
  it('is retried with a doubling delay from 5 s, the cursor kept; after the 8th attempt it is skipped and the drain goes on', async () => {
    const w = world()
    expect((await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin }))._unsafeUnwrap().queued).toBe(true)
    // Pages of the unlinked members: [m-admin, m-inactive], [m-manager, m-plain], [m-victim].
    const sso = w.drain(refusing(w, new Set(['manager@example.com'])))
    const first = (await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
    expect(first).toMatchObject({ pages: 2, mailsSent: 2, mailsFailed: 1, completed: 0, more: true })
    expect(first.warnings.map((x) => x.code)).toEqual(['MAILER_FAILED'])
    expect(mailedUsers(w.mailer.sent)).toEqual(['admin', 'plain'])
    // Attempts 2 to 7, each after twice the delay of the one before: not a millisecond earlier.
    for (const delay of [5_000, 10_000, 20_000, 40_000, 80_000, 160_000]) {
      w.clock.advance(delay - 1)
      expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 0, mailsFailed: 0, more: false })
      w.clock.advance(1)
      const retry = (await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
      // The page after the cursor of the last page done, again: plain's mail (same key) is
      // dropped by the mailer, the admin's page is not redone.
      expect(retry).toMatchObject({ pages: 1, mailsSent: 1, mailsFailed: 1, completed: 0, more: true })
      expect(mailedUsers(w.mailer.duplicates).at(-1)).toBe('plain')
    }
    expect(new Set(mailedUsers(w.mailer.duplicates))).toEqual(new Set(['plain']))
    expect(w.logs).toEqual([])
    // The 8th attempt, 320 s later: the page is skipped (logged, counted failed), the rest mailed.
    w.clock.advance(320_000 - 1)
    expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 0 })
    w.clock.advance(1)
    const last = (await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
    expect(last).toMatchObject({ pages: 2, mailsSent: 2, mailsFailed: 1, completed: 1, more: false })
    expect(last.warnings).toHaveLength(1)
    expect(w.logs).toEqual([
      [
        'ssoflow: background mail page skipped after repeated failures',
        { id: expect.any(String), kind: 'link-requests', after: 'm-inactive' },
      ],
    ])
    expect(mailedUsers(w.mailer.sent)).toEqual(['admin', 'plain', 'victim'])
    expect(w.storage.snapshot().pendingWork).toEqual([])
  })

  it('a page that succeeds after failures resets the attempts: the next page gets its own 8 attempts', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
    const failing = new Set(['admin@example.com'])
    const sso = w.drain(refusing(w, failing))
    let delay = 5_000
    for (let i = 0; i < 6; i++) {
      expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 1, mailsFailed: 1 })
      w.clock.advance(delay)
      delay *= 2
    }
    failing.clear()
    failing.add('manager@example.com')
    // The first page now goes through; the second fails and starts over at 5 s.
    expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 2, mailsSent: 2, mailsFailed: 1 })
    w.clock.advance(4_999)
    expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 0 })
    w.clock.advance(1)
    expect((await sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 1, mailsFailed: 1 })
    expect(w.logs).toEqual([])
  })
})

describe('runPendingWork: leases', () => {
  it('an item being drained is not claimable by another worker, during its first page or after its lease was renewed', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
    const other = w.drain()
    const seen: unknown[] = []
    let sends = 0
    const mailer: MailerPort = {
      async send(message) {
        sends++
        // Another worker, well inside the lease, at the first page's send and at a later page's.
        if (sends === 1 || sends === 3) {
          w.clock.advance(LEASE - 1_000)
          seen.push((await other.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap().pages)
        }
        await w.mailer.send(message)
      },
    }
    const report = (await w.drain(mailer).runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
    expect(report).toMatchObject({ pages: 3, mailsSent: 4, completed: 1 })
    expect(seen).toEqual([0, 0])
    expect(mailedUsers(w.mailer.sent)).toEqual(LINK_RECIPIENTS)
    expect(w.mailer.duplicates).toEqual([])
  })

  it('a worker whose lease expired mid-page stops when it finds the item taken over; the new holder mails everyone', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
    const other = w.drain()
    let taken: unknown = null
    const slow: MailerPort = {
      async send(message) {
        if (taken === null) {
          // This send takes longer than the lease: another worker claims the item and finishes it.
          w.clock.advance(LEASE)
          taken = (await other.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
        }
        await w.mailer.send(message)
      },
    }
    const report = (await w.drain(slow).runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
    expect(taken).toMatchObject({ pages: 3, mailsSent: 4, completed: 1 })
    expect(report).toMatchObject({ pages: 1, mailsSent: 1, completed: 0, more: false })
    expect(w.logs).toEqual([['ssoflow: background work taken over by another worker', { id: expect.any(String) }]])
    expect(mailedUsers(w.mailer.sent)).toEqual(LINK_RECIPIENTS)
    // The slow worker's one late send had the key the new holder used: dropped by the mailer.
    expect(mailedUsers(w.mailer.duplicates)).toEqual(['admin'])
  })

  it('limit: a call that reaches it says more even when its item just ended; the next item waits for the next call', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
    await w.sso.resendLinkRequests({ organizationId: 'org-2', session: session('admin2') })
    // org-1's item takes 3 pages.
    const first = (await w.sso.runPendingWork({ limit: 3 }))._unsafeUnwrap()
    expect(first).toMatchObject({ pages: 3, mailsSent: 4, completed: 1, more: true })
    expect(w.storage.snapshot().pendingWork.map((x) => x.organizationId)).toEqual(['org-2'])
    const one = (await w.sso.runPendingWork({ limit: 1 }))._unsafeUnwrap()
    expect(one).toMatchObject({ pages: 1, mailsSent: 1, completed: 1, more: true })
    expect(mailedUsers(w.mailer.sent)).toEqual([...LINK_RECIPIENTS, 'admin2'].sort())
    expect((await w.sso.runPendingWork({ limit: 1 }))._unsafeUnwrap()).toMatchObject({ pages: 0, more: false })
  })
})

describe('runPendingWork: items it cannot or must not work', () => {
  it('an item of an unknown kind is left for a worker that knows it, claimable again when the lease ends', async () => {
    const w = world()
    await putWork(w, { id: 'w-future', kind: 'future-kind', payload: payload() })
    await w.sso.disableProvider({ organizationId: 'org-2', session: session('admin2') })
    const report = (await w.sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
    // org-2's unlink notice went out; the unknown item is untouched but for its lease.
    expect(report).toMatchObject({ pages: 1, mailsSent: 1, completed: 1 })
    expect(w.mailer.sent.map((m) => m.template)).toEqual(['ssoUnlinked'])
    expect(w.logs).toEqual([['ssoflow: skipping background work of an unknown kind', { id: 'w-future', kind: 'future-kind' }]])
    const [left] = w.storage.snapshot().pendingWork
    expect(left).toMatchObject({ id: 'w-future', cursor: null, attempts: 0, availableAt: new Date(w.clock.now().getTime() + LEASE) })
    w.clock.advance(LEASE)
    expect((await w.sso.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 0, completed: 0 })
    expect(w.logs).toHaveLength(2)
    expect(w.storage.snapshot().pendingWork.map((x) => x.id)).toEqual(['w-future'])
  })

  it('an unreadable payload is dropped and logged; nothing is mailed', async () => {
    const w = world()
    await putWork(w, { id: 'w-1', kind: 'link-requests', payload: '{not json' })
    await putWork(w, { id: 'w-2', kind: 'unlink-notices', payload: payload({ v: 2 }) })
    const report = (await w.sso.runPendingWork())._unsafeUnwrap()
    expect(report).toMatchObject({ pages: 0, mailsSent: 0, completed: 2, more: false })
    expect(w.logs).toEqual([
      ['ssoflow: dropping unreadable background work', { id: 'w-1', kind: 'link-requests' }],
      ['ssoflow: dropping unreadable background work', { id: 'w-2', kind: 'unlink-notices' }],
    ])
    expect(w.storage.snapshot().pendingWork).toEqual([])
    expect(w.mailer.sent).toEqual([])
  })

  it('link requests naming another organization`s provider are dropped unsent', async () => {
    const w = world()
    await putWork(w, { id: 'w-1', kind: 'link-requests', payload: payload({ authProviderId: 'ap-2' }) })
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0, mailsSent: 0, completed: 1 })
    expect(w.storage.snapshot().pendingWork).toEqual([])
    expect(w.mailer.sent).toEqual([])
  })

  it('the payload decides the mails: setup keys, the provider and organization names, the login URL', async () => {
    const w = world()
    await putWork(w, { id: 'w-1', kind: 'link-requests', payload: payload({ organizationName: 'Acme Corp', providerName: 'Okta' }) })
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 3, mailsSent: 4, completed: 1 })
    const [mail] = w.mailer.sent
    expect(mail).toEqual({
      template: 'ssoLinkRequest',
      to: 'admin@example.com',
      data: { organizationName: 'Acme Corp', providerName: 'Okta', loginUrl: '' },
      idempotencyKey: 'sso-link-request:ap-1:m-admin',
    })
  })
})

describe('runPendingWork: storage failures end the call with STORAGE_UNAVAILABLE', () => {
  const cases: [string, { storage?: string[]; outbox?: string[] }][] = [
    ['claiming', { outbox: ['claim'] }],
    ['reading the provider', { storage: ['getAuthProviderById'] }],
    ['reading a page', { storage: ['listMemberRecipients'] }],
    ['completing', { outbox: ['complete'] }],
    ['sweeping states', { storage: ['pipelineStates'] }],
  ]
  for (const [what, fail] of cases) {
    it(what, async () => {
      const w = world()
      if (what !== 'sweeping states') await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
      const storage = failingStorage(w, fail)
      const sso = what === 'sweeping states' ? createAuthPipeline({ ...w.options, states: failingStates() }) : w.drain(undefined, storage)
      const error = (await sso.runPendingWork({ limit: 100 }))._unsafeUnwrapErr()
      expect(error.code).toBe('STORAGE_UNAVAILABLE')
      // The storage's own error is the cause (not a TypeError from carrying on without the result).
      expect(String(error.cause)).toMatch(/failed \(injected\)$/)
    })
  }

  it('sweeping tokens', async () => {
    const w = world()
    const base = w.storage.oneTimeTokens
    const sso = createAuthPipeline({
      ...w.options,
      tokens: {
        create: (t) => base.create(t),
        consume: (h, p, n) => base.consume(h, p, n),
        peek: (h, p, n) => base.peek(h, p, n),
        deleteExpired: async () => {
          throw new Error('token sweep failed (injected)')
        },
      },
    })
    const error = (await sso.runPendingWork())._unsafeUnwrapErr()
    expect(error.code).toBe('STORAGE_UNAVAILABLE')
    expect(String(error.cause)).toBe('Error: token sweep failed (injected)')
    // Without the sweep the same call succeeds.
    expect((await sso.runPendingWork({ sweep: false })).isOk()).toBe(true)
  })
})

/** A pipeline-state store whose sweep throws. */
function failingStates(): NonNullable<AuthPipelineOptions['states']> {
  return {
    create: async () => {},
    load: async () => null,
    compareAndSet: async () => false,
    delete: async () => {},
    deleteExpired: async () => {
      throw new Error('state sweep failed (injected)')
    },
  }
}

/**
 * The world's storage as an adapter without parts of the outbox: `outbox` (storage.pendingWork),
 * `txEnqueue` (tx.enqueueWork), `recipients` (listMemberRecipients); `listMembers` records each
 * call's page and may throw.
 */
function adapter(
  base: MemoryStorage,
  has: { outbox: boolean; txEnqueue: boolean; recipients: boolean },
  pages: MemberPage[] = [],
  failListing = false,
): MemoryStorage {
  const hideTx = (tx: StorageTx): StorageTx =>
    new Proxy(tx, { get: (t, p, r) => (p === 'enqueueWork' && !has.txEnqueue ? undefined : Reflect.get(t, p, r)) }) as StorageTx
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'pendingWork' && !has.outbox) return undefined
      if (prop === 'listMemberRecipients' && !has.recipients) return undefined
      if (prop === 'transaction') return <T>(fn: (tx: StorageTx) => Promise<T>) => target.transaction((tx) => fn(hideTx(tx)))
      if (prop === 'listMembers') {
        return async (organizationId: string, page: MemberPage) => {
          pages.push(page)
          if (failListing) throw new Error('listing failed (injected)')
          return target.listMembers(organizationId, page)
        }
      }
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  }) as MemoryStorage
}

/** org-1 as in `world()`, on `wrap(memory storage)`, with a logger. */
function inlineWorld(wrap: (s: MemoryStorage) => MemoryStorage): World & { logs: [string, unknown][] } {
  const rows = defaultRows()
  const clock = fixedClock('2026-03-01T10:00:00.000Z')
  const w = makeWorld({
    memberPageSize: 2,
    storage: wrap(createMemoryStorage({ clock })),
    users: [...rows.users, makeUser({ id: 'linked' })],
    members: [...rows.members, makeMember({ id: 'm-linked', organizationId: 'org-1', userId: 'linked', flags: LINKED })],
  })
  const logs: [string, unknown][] = []
  const sso = createAuthPipeline({ ...w.options, clock, logger: { warn: (message, fields) => void logs.push([message, fields]) } })
  return { ...w, clock, sso, logs }
}

describe('member mails without an outbox (sent inline after commit)', () => {
  for (const has of [
    { outbox: false, txEnqueue: true, recipients: false },
    { outbox: true, txEnqueue: false, recipients: false },
  ]) {
    it(`an adapter with ${has.outbox ? 'storage.pendingWork but no tx.enqueueWork' : 'tx.enqueueWork but no storage.pendingWork'}: mailed at once, page by page`, async () => {
      const pages: MemberPage[] = []
      const w = inlineWorld((s) => adapter(s, has, pages))
      w.storage.seed({ providers: [makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'corp' })] })
      expect((await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin }))._unsafeUnwrap()).toEqual({
        kind: 'linkRequestsQueued',
        queued: true,
      })
      expect(mailedUsers(w.mailer.sent)).toEqual(LINK_RECIPIENTS)
      expect(w.storage.snapshot().pendingWork).toEqual([])
      // The unlinked members only, two at a time, each page after the last member of the one before.
      expect(pages).toEqual([
        { after: null, limit: 2, unlinkedOnly: true },
        { after: 'm-inactive', limit: 2, unlinkedOnly: true },
        { after: 'm-plain', limit: 2, unlinkedOnly: true },
      ])
      pages.length = 0
      expect((await w.sso.disableProvider({ organizationId: 'org-1', session: admin }))._unsafeUnwrap()).toEqual({
        kind: 'providerDisabled',
        unlinkMailsQueued: true,
      })
      // Every member for the notices (the linked one and the invite too): 7 rows.
      expect(pages.map((p) => [p.after, p.unlinkedOnly])).toEqual([
        [null, false],
        ['m-inactive', false],
        ['m-linked', false],
        ['m-plain', false],
      ])
      expect(mailedUsers(w.mailer.sent.filter((m) => m.template === 'ssoUnlinked'))).toEqual([
        'admin',
        'linked',
        'manager',
        'plain',
        'victim',
      ])
      expect(w.logs).toEqual([])
    })
  }

  it('a member listing that fails after setup committed: a MAILER_FAILED warning and a log line, the setup stands', async () => {
    const w = inlineWorld((s) => adapter(s, { outbox: false, txEnqueue: false, recipients: false }, [], true))
    const input = await readySetup(w)
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(outcome.kind).toBe('setupComplete')
    expect(outcome.linkRequestsQueued).toBe(true)
    expect(outcome.warnings).toEqual([{ code: 'MAILER_FAILED', effect: 'mail.send', detail: 'member listing failed' }])
    expect(w.logs).toEqual([
      ['ssoflow: member paging failed after commit', { organizationId: 'org-1', error: 'Error: listing failed (injected)' }],
    ])
    expect(w.mailer.sent).toEqual([])
    expect(w.storage.snapshot().providers).toHaveLength(1)
    // Without a logger: the same warning, nothing thrown.
    const quiet = inlineWorld((s) => adapter(s, { outbox: false, txEnqueue: false, recipients: false }, [], true))
    const silent = createAuthPipeline({ ...quiet.options, clock: quiet.clock })
    const again = (await silent.finishSetup(await readySetup({ sso: silent, ctx: quiet.ctx })))._unsafeUnwrap()
    expect(again.warnings).toEqual([{ code: 'MAILER_FAILED', effect: 'mail.send', detail: 'member listing failed' }])
  })

  it('a last page that is full ends with one empty read; no user is read for an invite', async () => {
    const pages: MemberPage[] = []
    const w = inlineWorld((s) => adapter(s, { outbox: false, txEnqueue: false, recipients: false }, pages))
    const userReads: unknown[] = []
    const getUser = w.storage.getUser.bind(w.storage)
    const storage = new Proxy(w.storage, {
      get: (t, p, r) =>
        p === 'getUser'
          ? (id: string) => {
              userReads.push(id)
              return getUser(id)
            }
          : Reflect.get(t, p, r),
    })
    w.storage.seed({ providers: [makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'corp' })] })
    // 5 unlinked members, 5 a page: one full page, then an empty one.
    const five = createAuthPipeline({ ...w.options, storage, clock: w.clock, policy: { memberPageSize: 5 } })
    expect((await five.resendLinkRequests({ organizationId: 'org-1', session: admin })).isOk()).toBe(true)
    expect(pages.map((p) => p.after)).toEqual([null, 'm-victim'])
    expect(mailedUsers(w.mailer.sent)).toEqual(LINK_RECIPIENTS)
    // The notices read every member, the invite (no user id) included: its user is not asked for.
    userReads.length = 0
    expect((await five.disableProvider({ organizationId: 'org-1', session: admin })).isOk()).toBe(true)
    expect(userReads).not.toContain(null)
    expect(userReads).toHaveLength(6)
  })
})

describe('the recorded work', () => {
  it('names the provider by its display name (by its key when the engine lacks it); a login URL for link requests only', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-1', session: admin })
    // ap-2's key (dummy) is not among this engine's providers: its key names it.
    const { dummy: _dummy, ...others } = w.options.providers
    const disabled = await createAuthPipeline({ ...w.options, providers: others }).disableProvider({
      organizationId: 'org-2',
      session: session('admin2'),
    })
    expect(disabled._unsafeUnwrap().unlinkMailsQueued).toBe(true)
    const items = w.storage.snapshot().pendingWork
    expect(items.map((x) => [x.kind, x.key, x.organizationId, x.cursor, x.attempts, x.claimToken])).toEqual([
      ['link-requests', 'link-requests:ap-1', 'org-1', null, 0, null],
      ['unlink-notices', 'unlink-notices:ap-2', 'org-2', null, 0, null],
    ])
    expect(items.map((x) => JSON.parse(x.payload))).toEqual([
      {
        v: 1,
        authProviderId: 'ap-1',
        organizationName: 'Acme',
        providerName: 'Corp corp',
        loginUrl: '/auth/login/acme/',
        reason: 'resend',
        at: w.clock.now().getTime(),
      },
      { v: 1, authProviderId: 'ap-2', organizationName: 'Other', providerName: 'dummy', reason: 'disable', at: w.clock.now().getTime() },
    ])
  })
})

describe('runPendingWork: the housekeeping bound', () => {
  /** `states` expired pipeline states and `tokens` expired one-time tokens. */
  async function expired(w: World, states: number, tokens: number): Promise<void> {
    const soon = new Date(w.clock.now().getTime() + 1_000)
    for (let i = 0; i < states; i++) await w.storage.pipelineStates.create({ id: `st-${i}`, version: 1, body: 'x', expiresAt: soon })
    for (let i = 0; i < tokens; i++) {
      await w.storage.oneTimeTokens.create({
        hash: `${i}`.padStart(64, '0'),
        purpose: 'account-verification',
        payload: '{}',
        expiresAt: soon,
      })
    }
    w.clock.advance(1_000)
  }

  it('1,000 rows a batch by default: 1,001 of each take two batches and the call is complete', async () => {
    const w = world()
    await expired(w, 1_001, 1_001)
    const report = (await w.sso.runPendingWork())._unsafeUnwrap()
    expect(report.swept).toEqual({ pipelineStates: 1_001, oneTimeTokens: 1_001 })
    expect(report.more).toBe(false)
  })

  it('tokens alone at the bound of 10 batches say more; the next call sweeps the rest', async () => {
    const w = world()
    await expired(w, 0, 21)
    const first = (await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()
    expect(first).toMatchObject({ swept: { pipelineStates: 0, oneTimeTokens: 20 }, more: true })
    const second = (await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()
    expect(second).toMatchObject({ swept: { pipelineStates: 0, oneTimeTokens: 1 }, more: false })
  })

  it('states exactly filling 10 batches say more (the call cannot know nothing is left)', async () => {
    const w = world()
    await expired(w, 20, 0)
    expect((await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()).toMatchObject({
      swept: { pipelineStates: 20, oneTimeTokens: 0 },
      more: true,
    })
    expect((await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()).toMatchObject({ swept: { pipelineStates: 0 }, more: false })
  })
})

describe('runPendingWork: more cases', () => {
  it('a storage without an outbox: nothing to drain, the housekeeping still runs', async () => {
    const w = inlineWorld((st) => adapter(st, { outbox: false, txEnqueue: false, recipients: false }))
    const soon = new Date(w.clock.now().getTime() + 1_000)
    await w.storage.pipelineStates.create({ id: 'st', version: 1, body: 'x', expiresAt: soon })
    w.clock.advance(1_000)
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toEqual({
      kind: 'pendingWorkRan',
      pages: 0,
      mailsSent: 0,
      mailsFailed: 0,
      completed: 0,
      more: false,
      swept: { pipelineStates: 1, oneTimeTokens: 0 },
      warnings: [],
    })
  })

  it('pages of three: each page starts after the last member of the one before (drain and inline)', async () => {
    const w = world()
    const three = createAuthPipeline({ ...w.options, policy: { memberPageSize: 3 } })
    await three.resendLinkRequests({ organizationId: 'org-1', session: admin })
    // [m-admin, m-inactive, m-manager], [m-plain, m-victim]
    expect((await three.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 2, mailsSent: 4, completed: 1 })
    expect(mailedUsers(w.mailer.sent)).toEqual(LINK_RECIPIENTS)
    expect(w.mailer.duplicates).toEqual([])

    const pages: MemberPage[] = []
    const v = inlineWorld((st) => adapter(st, { outbox: false, txEnqueue: false, recipients: false }, pages))
    v.storage.seed({ providers: [makeProvider({ id: 'ap-1', organizationId: 'org-1', providerKey: 'corp' })] })
    await createAuthPipeline({ ...v.options, policy: { memberPageSize: 3 } }).resendLinkRequests({
      organizationId: 'org-1',
      session: admin,
    })
    expect(pages.map((p) => p.after)).toEqual([null, 'm-manager'])
    expect(mailedUsers(v.mailer.sent)).toEqual(LINK_RECIPIENTS)
    expect(v.mailer.duplicates).toEqual([])
  })

  it('the drain sends the unlink notices to every member with an active user, linked ones included', async () => {
    const w = world()
    await w.sso.disableProvider({ organizationId: 'org-1', session: admin })
    // 7 members, two a page.
    expect((await w.sso.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 4, mailsSent: 5, completed: 1 })
    expect(mailedUsers(w.mailer.sent)).toEqual(['admin', 'linked', 'manager', 'plain', 'victim'])
  })

  it('unlink notices drained after a new provider was set up still reach the members linked to it', async () => {
    const w = world()
    await w.sso.disableProvider({ organizationId: 'org-1', session: admin })
    // A new provider before the drain: the admin links to it in setup.
    const setup = (await w.sso.finishSetup(await readySetup(w)))._unsafeUnwrap()
    expect(setup.kind).toBe('setupComplete')
    expect(w.storage.snapshot().members.find((m) => m.id === 'm-admin')?.flags.ssoLinked).toBe(true)
    await w.sso.runPendingWork()
    const unlinked = w.mailer.sent.filter((m) => m.template === 'ssoUnlinked')
    expect(mailedUsers(unlinked)).toEqual(['admin', 'linked', 'manager', 'plain', 'victim'])
  })

  it('an item taken over at its last page is completed by the new holder only', async () => {
    const w = world()
    await w.sso.resendLinkRequests({ organizationId: 'org-2', session: session('admin2') })
    const other = w.drain()
    let taken = false
    let otherReport: unknown = null
    const slow: MailerPort = {
      async send(message) {
        if (!taken) {
          taken = true
          w.clock.advance(LEASE)
          otherReport = (await other.runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()
        }
        await w.mailer.send(message)
      },
    }
    expect((await w.drain(slow).runPendingWork({ leaseMs: LEASE }))._unsafeUnwrap()).toMatchObject({ pages: 1, completed: 0 })
    expect(otherReport).toMatchObject({ pages: 1, completed: 1 })
    expect(mailedUsers(w.mailer.sent)).toEqual(['admin2'])
  })

  it('the default lease is 5 minutes; without a logger, skipped and dropped items are handled the same', async () => {
    const w = world()
    const quiet = createAuthPipeline({ ...w.options })
    await putWork(w, { id: 'w-future', kind: 'future-kind', payload: payload() })
    await putWork(w, { id: 'w-bad', kind: 'link-requests', payload: 'null' })
    expect((await quiet.runPendingWork())._unsafeUnwrap()).toMatchObject({ pages: 0, completed: 1 })
    expect(w.storage.snapshot().pendingWork).toEqual([
      expect.objectContaining({ id: 'w-future', availableAt: new Date(w.clock.now().getTime() + 5 * 60_000) }),
    ])
    w.clock.advance(5 * 60_000 - 1)
    await quiet.runPendingWork()
    expect(w.storage.snapshot().pendingWork[0]?.availableAt).toEqual(new Date(w.clock.now().getTime() + 1))
    expect(w.logs).toEqual([])
  })

  it('setup without an outbox: a mail the mailer refuses is a warning of the outcome', async () => {
    const w = inlineWorld((st) => adapter(st, { outbox: false, txEnqueue: false, recipients: false }))
    const input = await readySetup(w)
    w.mailer.failNext(1)
    const outcome = (await w.sso.finishSetup(input))._unsafeUnwrap()
    expect(outcome.warnings.map((x) => [x.code, x.effect])).toEqual([['MAILER_FAILED', 'mail.send']])
    expect(mailedUsers(w.mailer.sent)).toEqual(['plain', 'victim'])
  })
})
