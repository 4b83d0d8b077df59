// A spent proof survives a failed transaction (issue 12, item 2; threat 19, invariant 6): the
// emailed verification link is consumed inside the login transaction, so when that transaction
// fails after the consume (the store dies, a later write fails) the link is live again and works
// once. On memory (the adapter's `tx.oneTimeTokens` undoes the consume), on a separate token store
// (the engine puts the token back), and on the real PostgreSQL (the consume rolls back with the
// transaction).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipelineOptions, SessionInfo } from '../../src/engine/types.js'
import type { OneTimeTokenStore } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  makeOrganization,
  makeProvider,
  makeUser,
  sentryStyleUrls,
  validatingStorage,
} from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { failFirst, faultyStorage, InjectedFault } from './faults.js'
import { BACKENDS, handleOf, newClock, post, type RaceStorage, unwrap } from './race.js'

const ORG = makeOrganization({ id: 'org-a', slug: 'a', name: 'Org A' })
const PROVIDER = makeProvider({ id: 'ap-a', organizationId: ORG.id, providerKey: 'dummy' })
const owner = makeUser({ id: 'u', email: 'u@corp.example', name: 'Owner', hasUsablePassword: false })
const FORM = { id: 'ext-u', email: 'u@corp.example' }

/** The proof's consume, wherever the engine makes it (inside the transaction). */
const isLinkConsume = (args: readonly unknown[]) => args[1] === 'account-verification'

async function scenario(raw: RaceStorage, clock: ReturnType<typeof newClock>, separateTokens: boolean) {
  await raw.seed({ organizations: [ORG], providers: [PROVIDER], users: [owner] })
  const storage = faultyStorage(validatingStorage(raw))
  const mailer = createRecordingMailer()
  // A separate token store (a copy of the object: the engine cannot use tx.oneTimeTokens for it).
  const tokens: OneTimeTokenStore | undefined = separateTokens ? { ...storage.oneTimeTokens } : undefined
  const options: AuthPipelineOptions = {
    storage,
    tokens,
    mailer,
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 'proof rollback test secret, thirty-two bytes+',
    urls: sentryStyleUrls('https://app.example.com'),
    clock,
  }
  const sso = createAuthPipeline(options)
  const visitor: SessionInfo = { id: 'visitor' }
  const handle = handleOf(await unwrap(sso.beginLogin({ organizationId: ORG.id, session: visitor })))
  const page = await unwrap(sso.advance({ handle, session: visitor, request: post(FORM) }))
  expect(page.kind).toBe('confirmationRequired')
  const mail = mailer.sent.find((m) => m.template === 'accountVerification')
  const token = mail?.template === 'accountVerification' ? /\/auth\/verify\/([^/]+)\//.exec(mail.data.url)?.[1] : undefined
  if (!token) throw new Error('no link mailed')
  await unwrap(sso.verifyAccountLink({ token, session: { id: 'mail-browser' } }))
  return { sso, storage, token, handle, session: { ...visitor, verificationToken: token } satisfies SessionInfo }
}

type Kill = { name: string; plan: () => ReturnType<typeof failFirst> }
const KILLS: Kill[] = [
  { name: 'the consume itself fails after it happened', plan: () => failFirst(/oneTimeTokens\.consume$/, 'after', isLinkConsume) },
  { name: 'the identity insert after the consume fails', plan: () => failFirst('tx.createIdentity', 'before') },
  { name: 'the last write (the membership audit) fails', plan: () => failFirst('tx.appendAudit', 'before') },
  { name: 'the commit fails', plan: () => failFirst('transaction', 'after') },
]

type Open = (clock: ReturnType<typeof newClock>) => Promise<{ raw: RaceStorage; drop(): Promise<void> }>
const runOn = (label: string, open: Open, separateTokens: boolean) => {
  for (const kill of KILLS) {
    // A commit reported failed after it happened keeps the link: only the other kills roll back.
    const committed = kill.name === 'the commit fails'
    // A separate, non-transactional store that consumed the token but lost the answer: the engine
    // cannot know it happened, so the link is spent (fail closed; the visitor asks for a new one).
    if (separateTokens && kill.name === 'the consume itself fails after it happened') {
      it(`${label}: ${kill.name}: nothing is linked; the link is spent (fail closed)`, async () => {
        const clock = newClock()
        const { raw, drop } = await open(clock)
        try {
          const s = await scenario(raw, clock, separateTokens)
          const before = await raw.snapshot()
          s.storage.faults.plan = kill.plan()
          expect((await s.sso.finishLogin({ handle: s.handle, session: s.session }))._unsafeUnwrapErr().code).toBe('STORAGE_UNAVAILABLE')
          s.storage.faults.plan = null
          const after = await raw.snapshot()
          expect(after.identities).toEqual(before.identities)
          expect(after.members).toEqual(before.members)
          expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'x' } }))._unsafeUnwrapErr().code).toBe(
            'VERIFICATION_INVALID',
          )
          const again = await unwrap(s.sso.finishLogin({ handle: s.handle, session: s.session }))
          expect(again.kind).toBe('confirmationRequired')
          expect((await raw.snapshot()).identities).toEqual(before.identities)
        } finally {
          await drop()
        }
      })
      continue
    }
    it(`${label}: ${kill.name}: ${committed ? 'the login committed with its state; a new login signs in' : 'nothing is linked, the link is live again and works once'}`, async () => {
      const clock = newClock()
      const { raw, drop } = await open(clock)
      try {
        const s = await scenario(raw, clock, separateTokens)
        const before = await raw.snapshot()
        s.storage.faults.plan = kill.plan()
        const failed = await s.sso.finishLogin({ handle: s.handle, session: s.session })
        expect(failed._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true })
        expect(s.storage.faults.injected).toHaveLength(1)
        expect(s.storage.faults.injected[0]).toBeInstanceOf(InjectedFault)
        s.storage.faults.plan = null
        const after = await raw.snapshot()
        if (!committed) {
          // Nothing happened: no identity, no membership, the token row is back unchanged.
          expect(after.identities).toEqual(before.identities)
          expect(after.members).toEqual(before.members)
          expect(after.audit).toEqual(before.audit)
          expect(after.oneTimeTokens).toEqual(before.oneTimeTokens)
          expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'mail-browser' } })).isOk()).toBe(true)
        }
        let retried: unknown
        if (committed) {
          // The decision committed with its state (settled in the same transaction): the same
          // handle is spent, one final decision per state...
          expect((await s.sso.finishLogin({ handle: s.handle, session: s.session }))._unsafeUnwrapErr().code).toBe('STATE_CONSUMED')
          // ...and a new login signs in through the identity the committed one linked.
          const again: SessionInfo = { id: 'visitor-again' }
          const begun = handleOf(await unwrap(s.sso.beginLogin({ organizationId: ORG.id, session: again })))
          const step = await unwrap(s.sso.advance({ handle: begun, session: again, request: post(FORM) }))
          if (step.kind !== 'signedIn') throw new Error(`expected signedIn, got ${step.kind}`)
          retried = step
        } else {
          // The same request again: signed in, linked (once).
          retried = await unwrap(s.sso.finishLogin({ handle: s.handle, session: s.session }))
        }
        expect(retried).toMatchObject({ kind: 'signedIn', userId: 'u', linked: !committed })
        const linked = await raw.snapshot()
        expect(linked.identities).toEqual([expect.objectContaining({ userId: 'u', ident: 'ext-u', authProviderId: PROVIDER.id })])
        // Spent now: the link does not work a second time.
        if (!committed)
          expect((await s.sso.verifyAccountLink({ token: s.token, session: { id: 'x' } }))._unsafeUnwrapErr().code).toBe(
            'VERIFICATION_INVALID',
          )
      } finally {
        await drop()
      }
    })
  }
}

describe('a spent proof survives a failed transaction (issue 12 item 2, threat 19)', () => {
  const memory = BACKENDS.find((b) => b.name === 'memory')
  const postgres = BACKENDS.find((b) => b.name === 'postgres')
  if (!memory || !postgres) throw new Error('backends')
  const viaMemory: Open = async (clock) => {
    const o = await memory.open()
    const f = await o.fresh(clock)
    return { raw: f.storage, drop: f.drop }
  }
  describe('memory storage (tx.oneTimeTokens)', () => runOn('memory', viaMemory, false))
  describe('a separate token store (the engine restores it)', () => runOn('separate store', viaMemory, true))

  if (!postgres.enabled) reportSkip('proof rollback (postgres)', postgres.variable ?? '')
  describe.skipIf(!postgres.enabled)('PostgreSQL', () => {
    let opened: Awaited<ReturnType<typeof postgres.open>>
    beforeAll(async () => {
      opened = await postgres.open()
    })
    afterAll(async () => {
      await opened?.close()
    })
    runOn(
      'postgres',
      async (clock) => {
        const f = await opened.fresh(clock)
        return { raw: f.storage, drop: f.drop }
      },
      false,
    )
  })
})
