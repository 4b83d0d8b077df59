// Issue 12 item 4 (src/engine/login.ts lines 649-855, `finish`): where and when a login settles
// its pipeline state. With states in the storage (tx.pipelineStates) the state is settled inside
// the login transaction; on an adapter without it the state is claimed before the transaction and
// settled after the commit. What a failed settle, a lost race and an early failure leave behind.
import { describe, expect, it } from 'vitest'
import { authError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { NO_FLAGS } from '../../src/model/records.js'
import type { PipelineStateStore } from '../../src/ports/storage.js'
import { fixedClock } from '../../src/testing/fakes.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { finishErr, finishOk, ident, ORG, PROVIDER, session, start, type World, type WorldOptions, world } from './harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
const seededRows = { users: [alice], identities: [aliceIdentity], members: [aliceMember] }

function recordingLogger() {
  const warnings: { message: string; fields: unknown }[] = []
  return { warnings, logger: { warn: (message: string, fields?: unknown) => warnings.push({ message, fields }) } }
}

/** The stored state of a handle: its phase, version and stored identity. */
function stateOf(w: World, handle: string) {
  const row = w.storage.snapshot().pipelineStates.find((s) => s.id === handle.split('.')[0])
  if (!row) throw new Error('no state')
  const body = JSON.parse(row.body) as { phase: string; identity?: { id: unknown } }
  return { phase: body.phase, version: row.version, identity: body.identity ?? null }
}

/** A legacy adapter's world whose engine already knows the transactions lack tx.pipelineStates. */
async function legacyWorld(logger?: ReturnType<typeof recordingLogger>['logger'], hooks?: WorldOptions['hooks']) {
  const w = world({ ...seededRows, legacyTx: true, logger, hooks })
  const warm = await w.login.finishLogin({
    handle: await start(w, { sessionId: 'warm' }),
    session: session({ id: 'warm' }),
    identity: ident({ id: 'ext-alice' }),
  })
  expect(warm._unsafeUnwrap().kind).toBe('signedIn')
  return w
}

describe('settling the pipeline state (finish)', () => {
  it("an adapter without tx.pipelineStates: a settle after the commit that fails keeps the outcome and is reported to the host's logger", async () => {
    const log = recordingLogger()
    const w = await legacyWorld(log.logger)
    const handle = await start(w)
    const states = w.ctx.states as { -readonly [K in keyof PipelineStateStore]: PipelineStateStore[K] }
    const cas = states.compareAndSet.bind(states)
    let calls = 0
    states.compareAndSet = async (...args) => {
      calls++
      // The first write is the claim before the transaction; the second the settle after it.
      if (calls === 2) throw new Error('state store down')
      return cas(...args)
    }
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    expect(calls).toBe(2)
    expect(log.warnings).toEqual([{ message: 'ssoflow: could not settle a pipeline state', fields: { code: 'STORAGE_UNAVAILABLE' } }])
    // Claimed, never settled: no second finisher can take it.
    expect(stateOf(w, handle).phase).toBe('finishing')
    states.compareAndSet = cas
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('STATE_CONFLICT')
  })

  it('an adapter without tx.pipelineStates: the settled state is consumed, one version after the claim, and no warning', async () => {
    const log = recordingLogger()
    const w = await legacyWorld(log.logger)
    const handle = await start(w)
    const opened = stateOf(w, handle)
    await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(stateOf(w, handle)).toMatchObject({ phase: 'consumed', version: opened.version + 2 })
    expect(log.warnings).toEqual([])
  })

  it('a finisher that lost the race to another (STATE_CONFLICT in its transaction) leaves the winner’s state alone: no write, no warning', async () => {
    const log = recordingLogger()
    const w = world({ ...seededRows, logger: log.logger })
    const handle = await start(w)
    const input = { handle, session: session(), identity: ident({ id: 'ext-alice' }) }
    const original = w.storage.transaction.bind(w.storage)
    const race: { winner?: Awaited<ReturnType<typeof w.login.finishLogin>> } = {}
    let raced = false
    ;(w.storage as { transaction: typeof original }).transaction = async (fn) => {
      // Another finisher of the same state runs to its end after this one read the state.
      if (!raced) {
        raced = true
        race.winner = await w.login.finishLogin(input)
      }
      return original(fn)
    }
    const e = await finishErr(w, input)
    expect(e.code).toBe('STATE_CONFLICT')
    expect(race.winner?._unsafeUnwrap().kind).toBe('signedIn')
    const settled = stateOf(w, handle)
    expect(settled.phase).toBe('consumed')
    expect(log.warnings).toEqual([])
    // The loser wrote nothing more: the state is the winner's, at the winner's version.
    expect(stateOf(w, handle).version).toBe(settled.version)
  })

  it('states in the storage: a failure before the transaction (the member-limit hook) writes nothing, the state not even claimed', async () => {
    let failing = true
    const w = world({
      ...seededRows,
      hooks: {
        isMemberLimitReached: () => {
          if (failing) throw new Error('limit service down')
          return false
        },
      },
    })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: { hook: 'isMemberLimitReached' } })
    expect(w.storage.snapshot()).toEqual(before)
    failing = false
    // The identity was not stored: a follow-up must bring it.
    expect((await finishErr(w, { handle, session: session() })).code).toBe('IDENTITY_INVALID')
    expect((await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).kind).toBe('signedIn')
  })

  it('an adapter without tx.pipelineStates: a failure after the claim (the member-limit hook) releases the state, open with the identity stored', async () => {
    let failing = false
    const w = await legacyWorld(undefined, {
      isMemberLimitReached: () => {
        if (failing) throw new Error('limit service down')
        return false
      },
    })
    const handle = await start(w)
    const opened = stateOf(w, handle)
    failing = true
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: { hook: 'isMemberLimitReached' } })
    // Claimed, then released: two versions on, open, with the identity a follow-up will use.
    expect(stateOf(w, handle)).toMatchObject({ phase: 'open', version: opened.version + 2, identity: { id: 'ext-alice' } })
    failing = false
    const out = await finishOk(w, { handle, session: session() })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
  })

  it('an adapter without tx.pipelineStates and no logger: a failed settle after the commit is not a failed login', async () => {
    const w = await legacyWorld()
    const handle = await start(w)
    const states = w.ctx.states as { -readonly [K in keyof PipelineStateStore]: PipelineStateStore[K] }
    const cas = states.compareAndSet.bind(states)
    let calls = 0
    states.compareAndSet = async (...args) => {
      calls++
      if (calls === 2) throw new Error('state store down')
      return cas(...args)
    }
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    expect(calls).toBe(2)
  })

  it('an adapter without tx.pipelineStates, not yet known as such: a finisher whose claim loses to another writes nothing (STATE_CONFLICT)', async () => {
    const log = recordingLogger()
    const w = world({ legacyTx: true, logger: log.logger })
    const handle = await start(w)
    const input = { handle, session: session(), identity: ident({ id: 'ext-race', email: 'race@corp.example' }), op: 'newuser' as const }
    // The engine's storage port (the legacy adapter's, whose transactions lack tx.pipelineStates).
    const port = w.ctx.storage as { transaction: typeof w.storage.transaction }
    const original = port.transaction.bind(port)
    const race: { winner?: Awaited<ReturnType<typeof w.login.finishLogin>> } = {}
    let raced = false
    let transactions = 0
    port.transaction = async (fn) => {
      transactions++
      // The other finisher learns the adapter lacks tx.pipelineStates, claims the state and
      // finishes, all after this one read the state and before its first transaction.
      if (!raced) {
        raced = true
        race.winner = await w.login.finishLogin(input)
      }
      return original(fn)
    }
    const e = await finishErr(w, input)
    expect(e.code).toBe('STATE_CONFLICT')
    expect(race.winner?._unsafeUnwrap().kind).toBe('signedIn')
    // This finisher's one transaction was the one that found no tx.pipelineStates; the winner had two.
    expect(transactions).toBe(3)
    expect(w.storage.snapshot().users).toHaveLength(1)
    expect(w.signals.emitted.filter((x) => x.name === 'user_signup')).toHaveLength(1)
    expect(stateOf(w, handle).phase).toBe('consumed')
    expect(log.warnings).toEqual([])
  })

  it('states in a store apart from the storage (as Redis): claimed before the transaction, consumed after it', async () => {
    const log = recordingLogger()
    const apart = createMemoryStorage({ clock: fixedClock('2026-03-01T12:00:00.000Z') }).pipelineStates
    const w = world({ ...seededRows, states: apart, logger: log.logger })
    const handle = await start(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    // Nothing in the storage's own state table; the store apart holds the consumed state.
    expect(w.storage.snapshot().pipelineStates).toEqual([])
    const stored = await apart.load(handle.split('.')[0] ?? '')
    expect(stored && JSON.parse(stored.body).phase).toBe('consumed')
    expect(stored?.version).toBe(2 + 1 + 1)
    expect(log.warnings).toEqual([])
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('STATE_CONSUMED')
  })

  it("threat 62: the provider row changed behind the engine's copy → PROVIDER_MISMATCH in the transaction, the pipeline consumed", async () => {
    const w = world({ ...seededRows })
    await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })
    const handle = await start(w)
    await w.storage.transaction((tx) => tx.updateAuthProvider(PROVIDER.id, { config: { changed: true } }))
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e).toMatchObject({ code: 'PROVIDER_MISMATCH', details: { reason: 'provider-changed' } })
    expect(stateOf(w, handle).phase).toBe('consumed')
    expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })).code).toBe('STATE_CONSUMED')
  })

  it("a storage whose transaction throws ssoflow's own STORAGE_CONFLICT without details: retried once, then reported", async () => {
    const w = world({ ...seededRows })
    const original = w.storage.transaction.bind(w.storage)
    let calls = 0
    ;(w.storage as { transaction: typeof original }).transaction = async () => {
      calls++
      throw authError('STORAGE_CONFLICT')
    }
    const handle = await start(w)
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(e.code).toBe('STORAGE_CONFLICT')
    expect(calls).toBe(2)
    ;(w.storage as { transaction: typeof original }).transaction = original
    expect((await finishOk(w, { handle, session: session() })).kind).toBe('signedIn')
  })
})

describe("the host's mail limiter is asked only for the anonymous visitor's page (finish)", () => {
  it('a returning member signs in without the limiter being asked, even one that would answer true', async () => {
    const asked: unknown[] = []
    const w = world({
      ...seededRows,
      hooks: {
        isRateLimited: (r) => {
          asked.push(r)
          return true
        },
      },
    })
    const out = await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-alice' }) })
    expect(out.kind === 'signedIn' && out.userId).toBe('alice')
    expect(asked).toEqual([])
  })

  it("a signed-in member's confirm-link page is not limited: no question asked", async () => {
    const asked: unknown[] = []
    const w = world({
      ...seededRows,
      hooks: {
        isRateLimited: (r) => {
          asked.push(r)
          return true
        },
      },
    })
    const handle = await start(w, { initiatorUserId: 'alice' })
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 'alice' }),
      identity: ident({ id: 'ext-new', email: 'alice@corp.example' }),
    })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-link')
    expect(asked).toEqual([])
    expect(w.mailer.sent).toEqual([])
  })
})
