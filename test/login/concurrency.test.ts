// Threats 52, 53 and DESIGN 5: concurrent first logins, conflict retry, no identity steal.
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { StorageConflictError, type StorageTx } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeUser } from '../../src/testing/fixtures.js'
import { finishOk, ident, ORG, PROVIDER, session, start, world } from './harness.js'

describe('concurrency', () => {
  it('30 concurrent finishLogin calls for one new external id → one user, one identity, one membership', async () => {
    const w = world({ yieldOnRead: true })
    const handles = await Promise.all(Array.from({ length: 30 }, (_, i) => start(w, { sessionId: `s-${i}` })))
    const results = await Promise.all(
      handles.map((handle, i) =>
        w.login.finishLogin({
          handle,
          session: session({ id: `s-${i}` }),
          identity: ident({ id: 'ext-race', email: 'race@corp.example' }),
          op: 'newuser',
        }),
      ),
    )
    const snap = w.storage.snapshot()
    expect(snap.users).toHaveLength(1)
    expect(snap.identities).toHaveLength(1)
    expect(snap.members).toHaveLength(1)
    const userId = snap.users[0]?.id
    expect(snap.identities[0]?.userId).toBe(userId)
    expect(snap.members[0]?.userId).toBe(userId)
    for (const r of results) {
      if (r.isOk()) {
        expect(r.value.kind).toBe('signedIn')
        expect(r.value.kind === 'signedIn' && r.value.userId).toBe(userId)
      } else {
        expect(r.error.retryable).toBe(true)
      }
    }
    expect(results.filter((r) => r.isOk()).length).toBeGreaterThan(0)
    // exactly one signup side effect
    expect(w.signals.emitted.filter((s) => s.name === 'user_signup')).toHaveLength(1)
    expect(w.mailer.sent.filter((m) => m.template === 'newUserConfirmation')).toHaveLength(1)
    expect(snap.audit.filter((a) => a.event === 'member.add')).toHaveLength(1)
  })

  it('the same pipeline finished concurrently yields one decision; the others get STATE_CONFLICT / STATE_CONSUMED', async () => {
    const w = world({ yieldOnRead: true })
    const handle = await start(w)
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-1', email: 'a@corp.example' }), op: 'newuser' }),
      ),
    )
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    for (const r of results) if (r.isErr()) expect(['STATE_CONFLICT', 'STATE_CONSUMED']).toContain(r.error.code)
    expect(w.storage.snapshot().users).toHaveLength(1)
  })

  it('an adapter without tx.pipelineStates: the state is claimed before the transaction, one decision per state', async () => {
    const w = world({ yieldOnRead: true, legacyTx: true })
    for (let round = 0; round < 2; round++) {
      // Round 0 finds out that the transaction offers no tx.pipelineStates; round 1 knows it.
      const handle = await start(w, { sessionId: `legacy-${round}` })
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          w.login.finishLogin({
            handle,
            session: session({ id: `legacy-${round}` }),
            identity: ident({ id: 'ext-legacy', email: 'legacy@corp.example' }),
            op: round === 0 ? 'newuser' : null,
          }),
        ),
      )
      expect(results.filter((r) => r.isOk())).toHaveLength(1)
      for (const r of results) if (r.isErr()) expect(['STATE_CONFLICT', 'STATE_CONSUMED']).toContain(r.error.code)
      const states = w.storage.snapshot().pipelineStates
      expect(states.map((st) => JSON.parse(st.body).phase)).toEqual(states.map(() => 'consumed'))
    }
    expect(w.storage.snapshot().users).toHaveLength(1)
    expect(w.storage.snapshot().identities).toHaveLength(1)
  })

  it("threat 53: a uniqueness conflict never moves the owner's identity; the retry sees the existing identity", async () => {
    const v = makeUser({ id: 'v', email: 'v@corp.example' })
    const row = makeIdentity({ id: 'ai-v', authProviderId: PROVIDER.id, userId: 'v', ident: 'ext-v' })
    const w = world({
      users: [v],
      identities: [row],
      members: [makeMember({ id: 'm-v', organizationId: ORG.id, userId: 'v', flags: { ...NO_FLAGS, ssoLinked: true } })],
    })
    // The first transaction reads stale data: it does not see the identity (as if it was
    // inserted concurrently), so it decides "new user" and its insert conflicts.
    const original = w.storage.transaction.bind(w.storage)
    let calls = 0
    ;(w.storage as { transaction: typeof original }).transaction = (fn) => {
      calls++
      if (calls > 1) return original(fn)
      return original((tx) => {
        const stale: StorageTx = Object.create(tx)
        stale.getLinkedIdentity = async () => null
        return fn(stale)
      })
    }
    const handle = await start(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-v', email: 'new@corp.example' }),
      op: 'newuser',
    })
    expect(calls).toBe(2)
    expect(out.kind === 'signedIn' && out.userId).toBe('v')
    const snap = w.storage.snapshot()
    expect(snap.users).toEqual([v])
    expect(snap.identities).toEqual([expect.objectContaining({ id: 'ai-v', userId: 'v' })])
    expect(w.signals.emitted).toEqual([])
  })

  it('a STORAGE_CONFLICT is retried once, then reported (retryable)', async () => {
    const w = world()
    const original = w.storage.transaction.bind(w.storage)
    let calls = 0
    ;(w.storage as { transaction: typeof original }).transaction = () => {
      calls++
      return Promise.reject(new StorageConflictError('user.username'))
    }
    const handle = await start(w)
    const r = await w.login.finishLogin({
      handle,
      session: session(),
      identity: ident({ id: 'ext-1', email: 'a@corp.example' }),
      op: 'newuser',
    })
    expect(calls).toBe(2)
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_CONFLICT', retryable: true })
    ;(w.storage as { transaction: typeof original }).transaction = original
    expect((await finishOk(w, { handle, session: session(), op: 'newuser' })).kind).toBe('signedIn')
  })
})
