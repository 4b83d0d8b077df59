// The engine's write and after-commit layer (src/engine/apply.ts, src/engine/transaction.ts,
// src/engine/tokens.ts) against recording ports: which port call each effect becomes, the one
// batched insert of a new account's rows (an adapter with `tx.createRows`, e.g. Kysely on
// PostgreSQL: the memory store does not offer it), guarded writes that lost, after-commit
// failures as warnings, and the one-time tokens a failed transaction puts back. Issue 12 item 4.
import { err, ok } from 'neverthrow'
import { describe, expect, it, vi } from 'vitest'
import type { TxEffect } from '../../src/core/effects.js'
import { applyTxEffects, applyTxEffectsAndSettle, runAfterCommit } from '../../src/engine/apply.js'
import type { EngineContext } from '../../src/engine/context.js'
import { txTokens } from '../../src/engine/tokens.js'
import { fromStorage, GuardedWriteLost, inTransaction, readOrganizationWithProvider, storageFailure } from '../../src/engine/transaction.js'
import { authError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { AuditPort } from '../../src/ports/audit.js'
import {
  type OneTimeTokenRecord,
  type OneTimeTokenStore,
  type PipelineStateStore,
  type StateSwap,
  StorageConflictError,
  type StorageTx,
} from '../../src/ports/storage.js'

type Call = [string, ...unknown[]]

/** A transaction handle that records every call; `answers` gives a method's result (default undefined). */
function recordingTx(options: { batch?: boolean; settle?: boolean; answers?: Record<string, unknown> } = {}): {
  tx: StorageTx
  calls: Call[]
} {
  const calls: Call[] = []
  const tx = new Proxy({} as Record<string, unknown>, {
    get(_t, name) {
      if (typeof name !== 'string') return undefined
      if (name === 'createRows' && !options.batch) return undefined
      if (name === 'createRowsAndSettle' && !options.settle) return undefined
      if (name === 'then') return undefined
      return async (...args: unknown[]) => {
        calls.push([name, ...args])
        return options.answers?.[name]
      }
    },
  })
  return { tx: tx as unknown as StorageTx, calls }
}

function recordingAudit(): { audit: AuditPort; entries: unknown[][] } {
  const entries: unknown[][] = []
  return {
    audit: {
      async record(entry, tx) {
        entries.push([entry, tx])
      },
    },
    entries,
  }
}

const user = { id: 'u1' } as never
const email = { email: 'a@example.test' } as never
const identity = { id: 'i1' } as never
const member = { id: 'm1' } as never
const entry = { action: 'member.join' } as never
const entry2 = { action: 'identity.link' } as never

const newAccount: TxEffect[] = [
  { type: 'user.create', user, email },
  { type: 'identity.create', identity },
  { type: 'member.create', member },
  { type: 'audit.record', entry },
]

describe('applyTxEffects: one port call per effect', () => {
  it('every effect type becomes its own call, in order, with its arguments', async () => {
    const { tx, calls } = recordingTx({ answers: { acceptInvite: true, updateAuthProvider: true, deleteAuthProvider: true } })
    const { audit, entries } = recordingAudit()
    const effects: TxEffect[] = [
      { type: 'user.create', user, email },
      { type: 'identity.create', identity },
      { type: 'identity.update', id: 'i1', patch: { email: 'b@example.test' } as never },
      { type: 'identity.delete', id: 'i2' },
      { type: 'identity.deleteForUser', authProviderId: 'ap', userId: 'u1', exceptId: 'i1' },
      { type: 'identity.deleteForProvider', authProviderId: 'ap' },
      { type: 'member.create', member },
      { type: 'member.update', id: 'm1', patch: { role: 'admin' } as never },
      { type: 'member.acceptInvite', id: 'm2', acceptance: { userId: 'u1' } as never },
      { type: 'member.delete', id: 'm3' },
      { type: 'member.setFlagsForOrganization', organizationId: 'o1', flags: { ssoLinked: false } as never },
      { type: 'provider.create', provider: { id: 'ap' } as never },
      { type: 'provider.update', id: 'ap', patch: { config: {} } as never },
      { type: 'provider.delete', id: 'ap' },
      { type: 'organization.update', id: 'o1', patch: { requireSso: true } as never },
      { type: 'audit.record', entry },
    ]
    await applyTxEffects(tx, audit, effects)
    expect(calls).toEqual([
      ['createUser', user, email],
      ['createIdentity', identity],
      ['updateIdentity', 'i1', { email: 'b@example.test' }],
      ['deleteIdentity', 'i2'],
      ['deleteIdentitiesForUser', 'ap', 'u1', 'i1'],
      ['deleteIdentitiesForProvider', 'ap'],
      ['createMember', member],
      ['updateMember', 'm1', { role: 'admin' }],
      ['acceptInvite', 'm2', { userId: 'u1' }],
      ['deleteMember', 'm3'],
      ['setFlagsForOrganization', 'o1', { ssoLinked: false }],
      ['createAuthProvider', { id: 'ap' }],
      ['updateAuthProvider', 'ap', { config: {} }],
      ['deleteAuthProvider', 'ap'],
      ['updateOrganization', 'o1', { requireSso: true }],
    ])
    expect(entries).toEqual([[entry, tx]])
  })

  it('an effect of an unknown type is refused before any later effect is written', async () => {
    const { tx, calls } = recordingTx()
    const thrown = await applyTxEffects(tx, recordingAudit().audit, [
      { type: 'member.delete', id: 'm1' },
      { type: 'member.purge', id: 'm2' } as unknown as TxEffect,
      { type: 'member.delete', id: 'm3' },
    ]).catch((e: unknown) => e)
    expect((thrown as Error).message).toBe('unknown effect {"type":"member.purge","id":"m2"}')
    expect(calls).toEqual([['deleteMember', 'm1']])
  })

  it('an invite accepted by someone else first: GuardedWriteLost, nothing after it written', async () => {
    const { tx, calls } = recordingTx({ answers: { acceptInvite: false } })
    const { audit, entries } = recordingAudit()
    const thrown = await applyTxEffects(tx, audit, [
      { type: 'member.acceptInvite', id: 'm2', acceptance: {} as never },
      { type: 'member.update', id: 'm1', patch: {} as never },
      { type: 'audit.record', entry },
    ]).catch((e: unknown) => e)
    expect(thrown).toBeInstanceOf(GuardedWriteLost)
    expect((thrown as GuardedWriteLost).reason).toBe('invite-taken')
    expect(calls.map((c) => c[0])).toEqual(['acceptInvite'])
    expect(entries).toEqual([])
    expect(storageFailure(thrown, 'orgLogin')).toMatchObject({
      code: 'STORAGE_CONFLICT',
      redirect: 'orgLogin',
      retryable: true,
      details: { reason: 'invite-taken' },
    })
  })

  for (const type of ['provider.update', 'provider.delete'] as const) {
    it(`${type} of a provider row that is gone: PROVIDER_NOT_CONFIGURED to the auth settings, nothing after it`, async () => {
      const { tx, calls } = recordingTx({ answers: { updateAuthProvider: false, deleteAuthProvider: false } })
      const effect: TxEffect = type === 'provider.update' ? { type, id: 'ap', patch: {} as never } : { type, id: 'ap' }
      const thrown = await applyTxEffects(tx, recordingAudit().audit, [effect, { type: 'member.delete', id: 'm1' }]).catch(
        (e: unknown) => e,
      )
      expect(thrown).toMatchObject({ kind: 'authError', code: 'PROVIDER_NOT_CONFIGURED', redirect: 'authSettings' })
      expect(calls).toHaveLength(1)
      // An AuthError thrown inside a transaction comes out as it is.
      expect(storageFailure(thrown, 'root')).toBe(thrown)
    })
  }
})

describe('applyTxEffects: a new account in one tx.createRows call', () => {
  it('the leading inserts, the audit entry included when the audit port is the storage', async () => {
    const { tx, calls } = recordingTx({ batch: true })
    const { audit, entries } = recordingAudit()
    await applyTxEffects(
      tx,
      audit,
      [...newAccount, { type: 'member.update', id: 'm1', patch: {} as never }, { type: 'audit.record', entry: entry2 }],
      true,
    )
    expect(calls).toEqual([
      ['createRows', { users: [{ user, email }], identities: [identity], members: [member], audit: [entry] }],
      ['updateMember', 'm1', {}],
    ])
    // Only the audit entry after the batch goes through the audit port.
    expect(entries).toEqual([[entry2, tx]])
  })

  it("a host's audit port is always called: the batch stops at the first audit entry", async () => {
    const { tx, calls } = recordingTx({ batch: true })
    const { audit, entries } = recordingAudit()
    await applyTxEffects(tx, audit, newAccount, false)
    expect(calls).toEqual([['createRows', { users: [{ user, email }], identities: [identity], members: [member], audit: [] }]])
    expect(entries).toEqual([[entry, tx]])
  })

  it('the default is a host audit port', async () => {
    const { tx, calls } = recordingTx({ batch: true })
    const { audit, entries } = recordingAudit()
    await applyTxEffects(tx, audit, [
      { type: 'user.create', user, email },
      { type: 'identity.create', identity },
      { type: 'audit.record', entry },
      { type: 'member.create', member },
    ])
    expect(calls).toEqual([
      ['createRows', { users: [{ user, email }], identities: [identity], members: [], audit: [] }],
      ['createMember', member],
    ])
    expect(entries).toEqual([[entry, tx]])
  })

  it('one insert alone is not batched', async () => {
    const { tx, calls } = recordingTx({ batch: true })
    const { audit, entries } = recordingAudit()
    await applyTxEffects(
      tx,
      audit,
      [
        { type: 'identity.create', identity },
        { type: 'member.update', id: 'm1', patch: {} as never },
      ],
      true,
    )
    expect(calls).toEqual([
      ['createIdentity', identity],
      ['updateMember', 'm1', {}],
    ])
    expect(entries).toEqual([])
  })

  it('two leading inserts are batched; an insert after another write is not', async () => {
    const { tx, calls } = recordingTx({ batch: true })
    await applyTxEffects(
      tx,
      recordingAudit().audit,
      [
        { type: 'identity.create', identity },
        { type: 'member.create', member },
        { type: 'member.delete', id: 'm9' },
        { type: 'identity.create', identity },
      ],
      true,
    )
    expect(calls).toEqual([
      ['createRows', { users: [], identities: [identity], members: [member], audit: [] }],
      ['deleteMember', 'm9'],
      ['createIdentity', identity],
    ])
  })

  it('an adapter without createRows: one call each', async () => {
    const { tx, calls } = recordingTx()
    const { audit, entries } = recordingAudit()
    await applyTxEffects(tx, audit, newAccount, true)
    expect(calls.map((c) => c[0])).toEqual(['createUser', 'createIdentity', 'createMember'])
    expect(entries).toEqual([[entry, tx]])
  })
})

describe("applyTxEffectsAndSettle: the state's compare-and-set, in the rows' statement when it can", () => {
  const swap: StateSwap = { id: 's1', expectedVersion: 3, next: { id: 's1', version: 4, body: 'b', expiresAt: new Date(0) } }
  /** The transaction's state store, recording into the transaction's calls. */
  const statesOf = (calls: Call[], answer: boolean): PipelineStateStore =>
    ({
      compareAndSet: async (...args: unknown[]) => {
        calls.push(['compareAndSet', ...args])
        return answer
      },
    }) as unknown as PipelineStateStore
  const rows = { users: [{ user, email }], identities: [identity], members: [member], audit: [entry] }

  for (const answer of [true, false]) {
    it(`a new account's rows alone: one tx.createRowsAndSettle call, its answer (${answer})`, async () => {
      const { tx, calls } = recordingTx({ batch: true, settle: true, answers: { createRowsAndSettle: answer } })
      const { audit, entries } = recordingAudit()
      expect(await applyTxEffectsAndSettle(tx, statesOf(calls, !answer), audit, newAccount, true, swap)).toBe(answer)
      expect(calls).toEqual([['createRowsAndSettle', rows, swap]])
      expect(entries).toEqual([])
    })
  }

  it("a host's audit port: the rows, the audit port, then the compare-and-set apart", async () => {
    const { tx, calls } = recordingTx({ batch: true, settle: true })
    const { audit, entries } = recordingAudit()
    expect(await applyTxEffectsAndSettle(tx, statesOf(calls, true), audit, newAccount, false, swap)).toBe(true)
    expect(calls).toEqual([
      ['createRows', { ...rows, audit: [] }],
      ['compareAndSet', 's1', 3, swap.next],
    ])
    expect(entries).toEqual([[entry, tx]])
  })

  it('another write after the rows: each effect, then the compare-and-set and its answer', async () => {
    const { tx, calls } = recordingTx({ batch: true, settle: true })
    const effects: TxEffect[] = [...newAccount, { type: 'member.update', id: 'm1', patch: {} as never }]
    expect(await applyTxEffectsAndSettle(tx, statesOf(calls, false), recordingAudit().audit, effects, true, swap)).toBe(false)
    expect(calls).toEqual([
      ['createRows', rows],
      ['updateMember', 'm1', {}],
      ['compareAndSet', 's1', 3, swap.next],
    ])
  })

  it('no effects (a returning login): the compare-and-set alone', async () => {
    const { tx, calls } = recordingTx({ batch: true, settle: true })
    expect(await applyTxEffectsAndSettle(tx, statesOf(calls, true), recordingAudit().audit, [], true, swap)).toBe(true)
    expect(calls).toEqual([['compareAndSet', 's1', 3, swap.next]])
  })

  it('an adapter without createRowsAndSettle: createRows, then the compare-and-set', async () => {
    const { tx, calls } = recordingTx({ batch: true })
    expect(await applyTxEffectsAndSettle(tx, statesOf(calls, true), recordingAudit().audit, newAccount, true, swap)).toBe(true)
    expect(calls).toEqual([
      ['createRows', rows],
      ['compareAndSet', 's1', 3, swap.next],
    ])
  })

  it('an adapter with createRowsAndSettle but without createRows: one call per row, then the compare-and-set', async () => {
    const { tx, calls } = recordingTx({ settle: true })
    expect(await applyTxEffectsAndSettle(tx, statesOf(calls, true), recordingAudit().audit, newAccount, true, swap)).toBe(true)
    expect(calls.map((c) => c[0])).toEqual(['createUser', 'createIdentity', 'createMember', 'compareAndSet'])
  })
})

describe('runAfterCommit: a failed or silent port is a warning', () => {
  const mail = { type: 'mail.send', message: { template: 'verify-account', to: 'a@example.test' } as never } as const
  const signal = { type: 'signal.emit', signal: { name: 'sso.linked' } as never } as const

  it('every effect runs in order, the failures after one that failed too', async () => {
    const seen: string[] = []
    const warnings = await runAfterCommit(
      {
        mailer: {
          send: async () => {
            seen.push('mail')
            throw new Error('smtp down')
          },
        },
        signals: {
          emit: (s) => {
            seen.push(`signal ${s.name}`)
            throw new Error('sync throw')
          },
        },
      },
      [mail, signal],
    )
    expect(seen).toEqual(['mail', 'signal sso.linked'])
    expect(warnings).toEqual([
      { code: 'MAILER_FAILED', effect: 'mail.send', detail: 'verify-account', reason: 'error' },
      { code: 'SIGNAL_FAILED', effect: 'signal.emit', detail: 'sso.linked', reason: 'error' },
    ])
  })

  it('no warning when the ports answer', async () => {
    const warnings = await runAfterCommit(
      { mailer: { send: async () => {} }, signals: { emit: async () => {} }, policy: { afterCommitTimeoutMs: 1000 } },
      [mail, signal],
    )
    expect(warnings).toEqual([])
  })

  it('a port that does not answer within afterCommitTimeoutMs: a timeout warning, the next effect still runs', async () => {
    let emitted = 0
    const started = Date.now()
    const warnings = await runAfterCommit(
      {
        mailer: { send: () => new Promise<void>(() => {}) },
        signals: {
          emit: async () => {
            emitted++
          },
        },
        policy: { afterCommitTimeoutMs: 50 },
      },
      [mail, signal],
    )
    expect(warnings).toEqual([{ code: 'MAILER_FAILED', effect: 'mail.send', detail: 'verify-account', reason: 'timeout' }])
    expect(emitted).toBe(1)
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('a slow port within the limit, or with no limit, is no warning', async () => {
    const slow = { send: () => new Promise<void>((resolve) => setTimeout(resolve, 30)) }
    expect(
      await runAfterCommit({ mailer: slow, signals: { emit: async () => {} }, policy: { afterCommitTimeoutMs: 2000 } }, [mail]),
    ).toEqual([])
    expect(await runAfterCommit({ mailer: slow, signals: { emit: async () => {} } }, [mail])).toEqual([])
    expect(await runAfterCommit({ mailer: slow, signals: { emit: async () => {} }, policy: {} }, [mail])).toEqual([])
  })
})

describe('runAfterCommit: no timer left behind', () => {
  it('an answered port clears its timeout (a host process is not kept alive for afterCommitTimeoutMs)', async () => {
    vi.useFakeTimers()
    try {
      const warnings = await runAfterCommit(
        { mailer: { send: async () => {} }, signals: { emit: async () => {} }, policy: { afterCommitTimeoutMs: 10_000 } },
        [{ type: 'signal.emit', signal: { name: 'sso.linked' } as never }],
      )
      expect(warnings).toEqual([])
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('storageFailure and inTransaction', () => {
  it("a conflict on the host's users' address is IDENTITY_CONFLICT (not retryable), any other conflict STORAGE_CONFLICT", () => {
    const taken = new StorageConflictError('user.email')
    expect(storageFailure(taken, 'orgLogin')).toMatchObject({
      code: 'IDENTITY_CONFLICT',
      redirect: 'orgLogin',
      retryable: false,
      details: { constraint: 'user.email' },
    })
    expect(storageFailure(new StorageConflictError('auth_identity.provider_ident'), 'authSettings')).toMatchObject({
      code: 'STORAGE_CONFLICT',
      redirect: 'authSettings',
      retryable: true,
      details: { constraint: 'auth_identity.provider_ident' },
    })
    // A conflict from another package copy (duck-typed).
    expect(storageFailure({ conflict: true, constraint: 'member.organization_user' })).toMatchObject({
      code: 'STORAGE_CONFLICT',
      redirect: 'root',
    })
    expect(storageFailure(new Error('connection reset'))).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'root', retryable: true })
    expect(storageFailure(new Error('connection reset'), 'authSettings')).toMatchObject({ redirect: 'authSettings' })
  })

  it('an Err returned inside rolls back and comes out unchanged; a throw is mapped with the redirect', async () => {
    const storage = createMemoryStorage()
    const refused = authError('NOT_A_MEMBER', { redirect: 'authSettings' })
    const newUser = { id: 'u1', isActive: true, isSuspended: false } as never
    const out = await inTransaction(storage, async (tx) => {
      await tx.createUser(newUser, { userId: 'u1', email: 'a@example.test', isPrimary: true, isVerified: true } as never)
      return err(refused)
    })
    expect(out._unsafeUnwrapErr()).toBe(refused)
    expect(await storage.getUser('u1')).toBeNull()
    const thrown = await inTransaction(
      storage,
      async () => {
        throw new Error('boom')
      },
      'orgLogin',
    )
    expect(thrown._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin' })
    const thrownRoot = await inTransaction(storage, async () => {
      throw new StorageConflictError('member.organization_user')
    })
    expect(thrownRoot._unsafeUnwrapErr()).toMatchObject({ code: 'STORAGE_CONFLICT', redirect: 'root' })
    const fine = await inTransaction(storage, async (tx) => {
      await tx.createUser(newUser, { userId: 'u1', email: 'a@example.test', isPrimary: true, isVerified: true } as never)
      return ok(42)
    })
    expect(fine._unsafeUnwrap()).toBe(42)
    expect(await storage.getUser('u1')).toMatchObject({ id: 'u1' })
  })

  it('fromStorage: a value, or the failure mapped (root by default), a synchronous throw included', async () => {
    expect((await fromStorage(async () => 7))._unsafeUnwrap()).toBe(7)
    expect((await fromStorage(() => Promise.reject(new Error('down'))))._unsafeUnwrapErr()).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      redirect: 'root',
    })
    const sync = await fromStorage(() => {
      throw new StorageConflictError('user.email')
    }, 'orgLogin')
    expect(sync._unsafeUnwrapErr()).toMatchObject({ code: 'IDENTITY_CONFLICT', redirect: 'orgLogin' })
  })

  it('readOrganizationWithProvider: two reads when the adapter lacks the joined read', async () => {
    const storage = createMemoryStorage()
    storage.seed({ organizations: [{ id: 'o1', slug: 'o1', name: 'O', defaultRole: 'member', require2fa: false }] })
    const reads: string[] = []
    const plain = new Proxy(storage, {
      get(target, name, receiver) {
        if (name === 'getOrganizationWithProvider') return undefined
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          reads.push(String(name))
          return value.apply(target, args)
        }
      },
    })
    const found = await readOrganizationWithProvider(plain, 'o1')
    expect(found).toMatchObject({ organization: { id: 'o1' }, provider: null })
    expect(reads).toEqual(['getOrganization', 'getAuthProvider'])
    reads.length = 0
    expect(await readOrganizationWithProvider(plain, 'nope')).toBeNull()
    expect(reads).toEqual(['getOrganization'])
    // An adapter with the joined read: one round trip.
    const joined: string[] = []
    const counted = new Proxy(storage, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          joined.push(String(name))
          return value.apply(target, args)
        }
      },
    })
    expect(await readOrganizationWithProvider(counted, 'o1')).toMatchObject({ organization: { id: 'o1' }, provider: null })
    expect(joined).toEqual(['getOrganizationWithProvider'])
  })
})

describe('txTokens: a failed transaction puts one-time tokens back', () => {
  const now = new Date('2026-01-01T00:00:00Z')
  const later = new Date('2026-01-02T00:00:00Z')
  const token = (hash: string): OneTimeTokenRecord => ({ hash, purpose: 'verify', payload: '{"u":1}', expiresAt: later })

  function separateStore(): OneTimeTokenStore & { rows: Map<string, OneTimeTokenRecord>; failCreate: unknown } {
    const rows = new Map<string, OneTimeTokenRecord>()
    const store = {
      rows,
      failCreate: null as unknown,
      async create(t: OneTimeTokenRecord) {
        if (store.failCreate) throw store.failCreate
        if (rows.has(t.hash)) throw new StorageConflictError('one_time_token.hash')
        rows.set(t.hash, t)
      },
      async consume(hash: string, purpose: string, at: Date) {
        const t = rows.get(hash)
        if (!t || t.purpose !== purpose || t.expiresAt <= at) return null
        rows.delete(hash)
        return t
      },
      async peek(hash: string, purpose: string, at: Date) {
        const t = rows.get(hash)
        return t && t.purpose === purpose && t.expiresAt > at ? t : null
      },
    }
    return store
  }

  function ctxWith(tokens: OneTimeTokenStore, tokensInStorage: boolean, warnings: unknown[][] = []): EngineContext {
    return { tokens, tokensInStorage, logger: { warn: (...a: unknown[]) => warnings.push(a) } } as unknown as EngineContext
  }

  it('a separate store: what was created is removed, what was consumed is back, in reverse order', async () => {
    const base = separateStore()
    base.rows.set('old', token('old'))
    const warnings: unknown[][] = []
    const t = txTokens(ctxWith(base, false, warnings), { oneTimeTokens: undefined } as unknown as StorageTx)
    await t.store.create(token('new'))
    expect(await t.store.peek('new', 'verify', now)).toEqual(token('new'))
    expect(await t.store.consume('old', 'verify', now)).toEqual(token('old'))
    expect(await t.store.consume('absent', 'verify', now)).toBeNull()
    expect([...base.rows.keys()]).toEqual(['new'])
    await t.restore()
    expect([...base.rows.keys()]).toEqual(['old'])
    // Nothing to put back for the absent token: no failed restore step.
    expect(warnings).toEqual([])
    // The journal is spent: a second restore changes nothing.
    base.rows.set('other', token('other'))
    await t.restore()
    expect([...base.rows.keys()].sort()).toEqual(['old', 'other'])
  })

  it('a token created and consumed in one failed transaction is gone after restore (undone last change first)', async () => {
    const base = separateStore()
    const t = txTokens(ctxWith(base, false), {} as StorageTx)
    await t.store.create(token('both'))
    expect(await t.store.consume('both', 'verify', now)).toEqual(token('both'))
    await t.restore()
    expect([...base.rows.keys()]).toEqual([])
  })

  it('without a logger, a failed restore step is skipped quietly and the rest restored', async () => {
    const base = separateStore()
    base.rows.set('x', token('x'))
    const ctx = { tokens: base, tokensInStorage: false, logger: null } as unknown as EngineContext
    const t = txTokens(ctx, {} as StorageTx)
    await t.store.consume('x', 'verify', now)
    await t.store.create(token('new'))
    const create = base.create
    let calls = 0
    base.create = async (r) => {
      calls++
      throw new Error(`down ${r.hash}`)
    }
    await expect(t.restore()).resolves.toBeUndefined()
    expect(calls).toBe(1)
    // The created token was removed before the failed put-back.
    expect(base.rows.has('new')).toBe(false)
    base.create = create
  })

  it('the storage store on a transaction that offers it: the transaction undoes, restore does nothing', async () => {
    const base = separateStore()
    const inTx = separateStore()
    const t = txTokens(ctxWith(base, true), { oneTimeTokens: inTx } as unknown as StorageTx)
    await t.store.create(token('a'))
    expect([...inTx.rows.keys()]).toEqual(['a'])
    expect([...base.rows.keys()]).toEqual([])
    await t.restore()
    expect([...inTx.rows.keys()]).toEqual(['a'])
  })

  it('the storage store on a transaction without tx.oneTimeTokens, or a separate store on one with it: journaled', async () => {
    for (const [inStorage, txStore] of [
      [true, undefined],
      [false, separateStore()],
    ] as const) {
      const base = separateStore()
      const t = txTokens(ctxWith(base, inStorage), { oneTimeTokens: txStore } as unknown as StorageTx)
      await t.store.create(token('a'))
      expect([...base.rows.keys()]).toEqual(['a'])
      await t.restore()
      expect([...base.rows.keys()]).toEqual([])
    }
  })

  it('a token already back (conflict) is fine; any other failure is logged and the rest still restored', async () => {
    const base = separateStore()
    base.rows.set('x', token('x'))
    base.rows.set('y', token('y'))
    const warnings: unknown[][] = []
    const t = txTokens(ctxWith(base, false, warnings), {} as StorageTx)
    await t.store.consume('x', 'verify', now)
    await t.store.consume('y', 'verify', now)
    base.rows.set('y', token('y')) // already back
    await t.restore()
    expect([...base.rows.keys()].sort()).toEqual(['x', 'y'])
    expect(warnings).toEqual([])

    await t.store.consume('x', 'verify', now)
    await t.store.consume('y', 'verify', now)
    base.failCreate = new Error('redis down')
    await t.restore()
    expect(warnings).toEqual([
      ['ssoflow: could not restore a one-time token after a failed transaction', { error: 'redis down' }],
      ['ssoflow: could not restore a one-time token after a failed transaction', { error: 'redis down' }],
    ])
    base.failCreate = 'not an error'
    await t.store.consume('absent', 'verify', now)
    base.rows.set('z', token('z'))
    await t.store.consume('z', 'verify', now)
    await t.restore()
    expect(warnings.at(-1)).toEqual(['ssoflow: could not restore a one-time token after a failed transaction', { error: 'not an error' }])
  })
})
