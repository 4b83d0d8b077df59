/**
 * Threat 62: a pipeline begun before its provider was disabled or replaced cannot finish.
 * (spec/threats.md 62; issue 16 item 1.) On memory, PGlite, SQLite, and PostgreSQL / MariaDB when
 * their URL is set.
 *
 * - sequential: begin, disable, finish; begin, disable, set up again, finish (these held before
 *   issue 16: the step machine and the finisher read the provider before finishing);
 * - raced: the finish read the provider row BEFORE the disable committed and runs its write
 *   transaction AFTER it (held at the transaction's start by a gate, no sleeps): the transaction
 *   re-reads the provider and ends with a typed error, writing nothing.
 *
 * Every path that writes is covered: a returning (linked) user, an attach by the signed-in
 * member, a new user confirmed by POST, and the anonymous confirmation page that stores a one-time token
 * and mails it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionInfo, Step } from '../../src/engine/types.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { StorageSnapshot } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { BACKENDS, makeWorld, type OpenBackend, type World } from '../helpers/worlds.js'

const ORG = makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme' })
const LINKED = { ...NO_FLAGS, ssoLinked: true }
const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

async function seed(w: World): Promise<void> {
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
async function prepare(w: World, path: LoginPath): Promise<() => ReturnType<World['sso']['finishLogin']>> {
  const begun = (await w.sso.beginLogin({ organizationId: ORG.id, session: path.session }))._unsafeUnwrap()
  const handle = handleOf(begun)
  if (!path.confirmPost) {
    return () => w.sso.advance({ handle, request: post(path.form), session: path.session }) as ReturnType<World['sso']['finishLogin']>
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

    async function world(): Promise<World> {
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
