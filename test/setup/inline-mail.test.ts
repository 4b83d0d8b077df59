// A storage without an outbox (no `tx.enqueueWork` / `storage.pendingWork`) and without
// `listMemberRecipients`, as a host's own adapter may be (examples/custom-storage): setup, disable
// and resend send their member mails inline after commit, page by page through `listMembers` and
// `getUser`, to exactly the members the outbox path would mail. test/setup/pending-work.test.ts
// covers the outbox path.
import { describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { StoragePort, StorageTx } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, sequentialIds } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeUser, sentryStyleUrls } from '../../src/testing/fixtures.js'

const ORG = 'org1'
const admin = { id: 'sess-admin', userId: 'admin' }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

function withoutOutbox(storage: StoragePort): StoragePort {
  const hideTx = (tx: StorageTx): StorageTx =>
    new Proxy(tx, { get: (t, p, r) => (p === 'enqueueWork' ? undefined : Reflect.get(t, p, r)) }) as StorageTx
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'pendingWork' || prop === 'listMemberRecipients') return undefined
      if (prop === 'transaction') {
        return <T>(fn: (tx: StorageTx) => Promise<T>) => target.transaction((tx) => fn(hideTx(tx)))
      }
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  }) as StoragePort
}

function world() {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage = createMemoryStorage({ clock })
  const members = ['m1', 'm2', 'm3', 'm4']
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme', name: 'Acme' })],
    users: [
      makeUser({ id: 'admin', email: 'admin@acme.test' }),
      ...members.map((id) => makeUser({ id, email: `${id}@acme.test` })),
      makeUser({ id: 'gone', email: 'gone@acme.test', isActive: false }),
    ],
    members: [
      makeMember({ id: 'm-admin', organizationId: ORG, userId: 'admin', role: 'owner' }),
      ...members.map((id) => makeMember({ id: `m-${id}`, organizationId: ORG, userId: id })),
      makeMember({ id: 'm-gone', organizationId: ORG, userId: 'gone' }),
      makeMember({ id: 'm-invite', organizationId: ORG, email: 'invited@acme.test' }),
    ],
  })
  const mailer = createRecordingMailer()
  const sso = createAuthPipeline({
    storage: withoutOutbox(storage),
    mailer,
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 'inline mail test secret, at least 32 bytes long',
    clock,
    ids: sequentialIds('i'),
    urls: sentryStyleUrls('https://app.example.com'),
    // Two members a page: the fan-out pages through listMembers.
    policy: { memberPageSize: 2 },
  })
  return { sso, storage, mailer }
}

const recipients = (mailer: ReturnType<typeof createRecordingMailer>, template: string) =>
  mailer.sent
    .filter((m) => m.template === template)
    .map((m) => m.to)
    .sort()

describe('member mails without an outbox', () => {
  it('setup, resend and disable mail every active unlinked member inline, page by page; nobody else', async () => {
    const w = world()
    const step = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'dummy', session: admin }))._unsafeUnwrap() as {
      handle: string
    }
    const done = await w.sso.advance({
      handle: step.handle,
      session: admin,
      request: post({ id: 'admin-ext', email: 'admin@acme.test', email_verified: 'on' }),
    })
    expect(done._unsafeUnwrap().kind).toBe('setupComplete')
    const expected = ['m1@acme.test', 'm2@acme.test', 'm3@acme.test', 'm4@acme.test']
    // Sent before setup returned (no outbox to drain later): the admin who linked, the inactive
    // user and the invite get nothing.
    expect(recipients(w.mailer, 'ssoLinkRequest')).toEqual(expected)
    expect(w.storage.snapshot().pendingWork).toEqual([])
    const link = w.mailer.sent.find((m) => m.template === 'ssoLinkRequest')
    expect(JSON.stringify(link)).toContain('Acme')

    const resent = await w.sso.resendLinkRequests({ organizationId: ORG, session: admin })
    expect(resent._unsafeUnwrap()).toMatchObject({ kind: 'linkRequestsQueued' })
    expect(recipients(w.mailer, 'ssoLinkRequest')).toEqual([...expected, ...expected].sort())

    const disabled = await w.sso.disableProvider({ organizationId: ORG, session: admin })
    expect(disabled.isOk()).toBe(true)
    // Disable notices go to every accepted member whose user is active (not the inactive user,
    // not the invite).
    expect(recipients(w.mailer, 'ssoUnlinked')).toEqual(['admin@acme.test', ...expected])
    expect(w.storage.snapshot().providers).toEqual([])
  })

  it("a setup's failed inline mail is one of its warnings; the setup stays committed", async () => {
    const w = world()
    const step = (await w.sso.beginSetup({ organizationId: ORG, providerKey: 'dummy', session: admin }))._unsafeUnwrap() as {
      handle: string
    }
    w.mailer.failNext(1)
    const done = await w.sso.advance({ handle: step.handle, session: admin, request: post({ id: 'admin-ext', email: 'admin@acme.test' }) })
    const outcome = done._unsafeUnwrap()
    if (outcome.kind !== 'setupComplete') throw new Error(`expected setupComplete, got ${outcome.kind}`)
    expect(outcome.warnings.map((x) => x.code)).toEqual(['MAILER_FAILED'])
    expect(recipients(w.mailer, 'ssoLinkRequest')).toHaveLength(3)
    expect(w.storage.snapshot().providers).toHaveLength(1)
  })
})
