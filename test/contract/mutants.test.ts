/**
 * The contract suite must be able to fail: each mutant below is the memory storage with one
 * deliberate bug, and the named cases must reject for it (while the healthy store passes
 * every case, see memory.test.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, expect, it } from 'vitest'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { normalizeEmail } from '../../src/model/email.js'
import type { JsonValue } from '../../src/model/identity.js'
import { isStorageConflict, StorageConflictError, type StorageTx } from '../../src/ports/storage.js'
import { type ContractStorage, type FixedClock, fixedClock, primaryEmailOf, storageContract } from '../../src/testing/index.js'

type Mutate = (storage: ContractStorage, clock: FixedClock) => ContractStorage

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

function healthy(clock: FixedClock): ContractStorage {
  const storage = createMemoryStorage({ clock, asyncContext: new AsyncLocalStorage() })
  return Object.assign(storage, { seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => storage.seed(data) })
}

/** Wraps every transaction handle with `patch`. */
function patchTx(s: ContractStorage, patch: (tx: StorageTx) => Partial<StorageTx>): ContractStorage {
  return { ...s, transaction: (fn) => s.transaction((tx) => fn({ ...tx, ...patch(tx) })) }
}

async function failingCases(mutate: Mutate): Promise<string[]> {
  const clock = fixedClock()
  const suite = storageContract({ name: 'mutant', clock, createStorage: () => mutate(healthy(clock), clock) })
  const failed: string[] = []
  for (const c of suite.cases) {
    try {
      await c.run()
    } catch {
      failed.push(c.name)
    }
  }
  return failed
}

const mutants: { name: string; mutate: Mutate; mustFail: RegExp[] }[] = [
  {
    name: 'commits on throw (no rollback)',
    mutate: (s) => ({
      ...s,
      async transaction(fn) {
        let thrown: { error: unknown } | null = null
        const value = await s.transaction(async (tx) => {
          try {
            return await fn(tx)
          } catch (error) {
            thrown = { error }
            return undefined as never
          }
        })
        if (thrown !== null) throw (thrown as { error: unknown }).error
        return value
      },
    }),
    mustFail: [/a throw rolls back/],
  },
  {
    name: 'swallows member conflicts',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        createMember: async (m) => {
          try {
            await tx.createMember(m)
          } catch {}
        },
      })),
    mustFail: [/member.organization_user on create/, /member.organization_email on create/, /member.invite_token on create/],
  },
  {
    name: 'case-insensitive, trimming email lookup (a MySQL _ci collation)',
    mutate: (s) => ({ ...s, findUsersByEmail: (e) => s.findUsersByEmail(e.trim().toLowerCase()) }),
    mustFail: [/findUsersByEmail/],
  },
  {
    name: 'accent-, width- and case-insensitive collation (utf8mb4_0900_ai_ci-like)',
    mutate: (s) => ({
      ...s,
      async findUsersByEmail(e) {
        const fold = (x: string) =>
          x
            .normalize('NFKD')
            .replace(/\p{M}/gu, '')
            .replace(/\u00DF/g, 'ss')
            .toLowerCase()
            .trimEnd()
        const out = []
        for (let i = 1; i <= 9; i++) {
          const u = await s.getUser(`user-0${i}`)
          if (u?.isActive && fold(u.email) === fold(e)) out.push({ user: u, email: primaryEmailOf(u) })
        }
        return out
      },
    }),
    mustFail: [/look-alike/],
  },
  {
    name: 'returns inactive users by email',
    mutate: (s) => ({
      ...s,
      findUsersByEmail: async (e) => [...(await s.findUsersByEmail(e)), ...(await inactiveMatches(s, e))],
    }),
    mustFail: [/findUsersByEmail/],
  },
  {
    name: 'non-atomic consume (peek, yield, delete)',
    mutate: (s) => ({
      ...s,
      oneTimeTokens: {
        ...s.oneTimeTokens,
        async consume(hash, purpose, now) {
          const found = await s.oneTimeTokens.peek(hash, purpose, now)
          await tick()
          await s.oneTimeTokens.consume(hash, purpose, now)
          return found
        },
      },
    }),
    mustFail: [/concurrent consumes/],
  },
  {
    name: 'non-atomic compareAndSet (load, yield, replace)',
    mutate: (s) => ({
      ...s,
      pipelineStates: {
        ...s.pipelineStates,
        async compareAndSet(id, expected, next) {
          const current = await s.pipelineStates.load(id)
          await tick()
          if (current?.version !== expected) return false
          await s.pipelineStates.delete(id)
          await s.pipelineStates.create(next)
          return true
        },
      },
    }),
    mustFail: [/concurrent compareAndSet/],
  },
  {
    name: 'not wired to the contract clock',
    mutate: (_s, _clock) => healthy(fixedClock('2020-01-01T00:00:00.000Z')),
    mustFail: [/expired states are invisible/],
  },
  {
    name: 'purpose ignored by tokens',
    mutate: (s) => ({
      ...s,
      oneTimeTokens: {
        ...s.oneTimeTokens,
        consume: async (hash, _purpose, now) => {
          const any = await s.oneTimeTokens.peek(hash, 'verify-email', now)
          return any === null ? null : s.oneTimeTokens.consume(hash, any.purpose, now)
        },
      },
    }),
    mustFail: [/another purpose/],
  },
  {
    name: 'drops milliseconds from dates',
    mutate: (s) => ({
      ...s,
      async getUser(id) {
        const u = await s.getUser(id)
        return u === null ? null : { ...u, createdAt: new Date(Math.floor(u.createdAt.getTime() / 1000) * 1000) }
      },
    }),
    mustFail: [/millisecond dates/],
  },
  {
    name: 'listMembers ignores unlinkedOnly and treats after as inclusive',
    mutate: (s) => ({
      ...s,
      async listMembers(org, page) {
        const all = await s.listMembers(org, { limit: 1_000_000 })
        return all.filter((m) => page.after == null || m.id >= page.after).slice(0, page.limit)
      },
    }),
    mustFail: [/listMembers pages/],
  },
  {
    name: 'setFlagsForOrganization counts matched rows and resets other flags',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        async setFlagsForOrganization(org, flags) {
          const members = await tx.listMembers(org, { limit: 1_000_000 })
          for (const m of members) {
            await tx.updateMember(m.id, {
              flags: {
                ssoLinked: false,
                ssoInvalid: false,
                memberLimitRestricted: false,
                idpProvisioned: false,
                idpRoleRestricted: false,
                ...flags,
              },
            })
          }
          return members.length
        },
      })),
    mustFail: [/setFlagsForOrganization/],
  },
  {
    name: 'acceptInvite updates by id only (no pending guard: threat 49)',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        acceptInvite: (id, a) =>
          tx.updateMember(id, {
            userId: a.userId,
            email: null,
            emailNormalized: null,
            inviteTokenHash: null,
            inviteExpiresAt: null,
            flags: a.flags,
          }),
      })),
    mustFail: [/acceptInvite accepts a pending invite once/, /concurrent acceptances of one invite/],
  },
  {
    name: 'lockIdentity / lockAuthProvider return the provider read before the transaction (no lock)',
    mutate: (s) => ({
      ...s,
      async transaction(fn) {
        // Read outside the transaction (before waiting for it): a disable that commits meanwhile
        // is not seen.
        const byId = await s.getAuthProviderById('prov-a')
        const byOrg = await s.getAuthProvider('org-a')
        return s.transaction(async (tx) =>
          fn({
            ...tx,
            lockIdentity: async (p, ident) => {
              const real = await tx.lockIdentity(p, ident)
              return p === 'prov-a' ? byId : real
            },
            lockAuthProvider: async (org, mode) => {
              const real = await tx.lockAuthProvider(org, mode)
              return org === 'org-a' ? byOrg : real
            },
          }),
        )
      },
    }),
    mustFail: [/no identity outlives the provider/],
  },
  {
    name: 'lockIdentity always returns null',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        lockIdentity: async (p, ident) => {
          await tx.lockIdentity(p, ident)
          return null
        },
      })),
    mustFail: [/return the provider row as the transaction sees it/],
  },
  {
    name: 'deleteIdentitiesForUser ignores exceptId',
    mutate: (s) => patchTx(s, (tx) => ({ deleteIdentitiesForUser: (p, u) => tx.deleteIdentitiesForUser(p, u, null) })),
    mustFail: [/keeps exceptId/],
  },
  {
    name: 'reads through the storage inside a transaction run beside it (another connection: committed rows only)',
    mutate: (s) => {
      let open = false
      return {
        ...s,
        async transaction(fn) {
          open = true
          try {
            return await s.transaction(fn)
          } finally {
            open = false
          }
        },
        getUser: async (id) => (open ? ((s as unknown as MemoryStorage).snapshot().users.find((u) => u.id === id) ?? null) : s.getUser(id)),
      }
    },
    mustFail: [/join the transaction or are refused/],
  },
  {
    name: 'token calls through the storage inside a transaction commit on their own (another connection)',
    mutate: (s) => {
      let open = false
      const spent: { hash: string; purpose: string; now: Date }[] = []
      return {
        ...s,
        async transaction(fn) {
          open = true
          try {
            return await s.transaction(fn)
          } finally {
            open = false
            // What the other connection consumed stays consumed, whatever the transaction did.
            for (const t of spent.splice(0)) await s.oneTimeTokens.consume(t.hash, t.purpose, t.now)
          }
        },
        oneTimeTokens: {
          ...s.oneTimeTokens,
          async consume(hash, purpose, now) {
            if (open) spent.push({ hash, purpose, now })
            return s.oneTimeTokens.consume(hash, purpose, now)
          },
        },
      }
    },
    mustFail: [/join the transaction or are refused/],
  },
  {
    name: 'a caught conflict aborts the transaction and its commit silently rolls back (PostgreSQL, unchecked)',
    mutate: (s) => ({
      ...s,
      async transaction(fn) {
        const silent = Symbol('silent rollback')
        let aborted = false
        let value: unknown
        try {
          await s.transaction(async (tx) => {
            const guarded = new Proxy(tx, {
              get(target, prop, receiver) {
                const member = Reflect.get(target, prop, receiver)
                if (typeof member !== 'function') return member
                return async (...args: unknown[]) => {
                  if (aborted) throw new Error('current transaction is aborted, commands ignored until end of transaction block')
                  try {
                    return await (member as (...a: unknown[]) => Promise<unknown>).apply(target, args)
                  } catch (error) {
                    if (isStorageConflict(error)) aborted = true
                    throw error
                  }
                }
              },
            })
            value = await fn(guarded)
            if (aborted) throw silent
          })
        } catch (error) {
          if (error !== silent) throw error
        }
        return value as never
      },
    }),
    mustFail: [/never ends in a silent rollback/],
  },
  {
    name: 'control characters stripped from identity data (a lossy JSON column)',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        createIdentity: (identity) => tx.createIdentity({ ...identity, data: stripControls(identity.data) as typeof identity.data }),
      })),
    mustFail: [/round-trips exactly/],
  },
  {
    name: 'identity data nested deeper than 8 levels refused by the database',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        createIdentity: async (identity) => {
          if (depthOf(identity.data) > 8) throw new Error('JSON document exceeds the maximum depth')
          return tx.createIdentity(identity)
        },
      })),
    mustFail: [/round-trips exactly/],
  },
  {
    name: 'a host unique index on the address reported as user.username (retried forever)',
    mutate: (s) =>
      patchTx(s, (tx) => ({
        createUser: async (user, email) => {
          if ((await tx.findUsersByEmail(email.emailNormalized)).length > 0) throw new StorageConflictError('user.username')
          return tx.createUser(user, email)
        },
      })),
    mustFail: [/reported as user.email/],
  },
]

/**
 * A store that runs transactions in parallel, as a SQL database does: reads see committed data
 * (and yield, so racers interleave), writes are buffered and committed when the callback ends,
 * and `lockIdentity` is a real per-key lock held until that commit. `lockEmail` is the same lock,
 * or, for the mutant, forgotten (a no-op, as a new adapter author might leave it).
 */
function parallelStore(s: ContractStorage, options: { lockEmail: boolean }): ContractStorage {
  const tails = new Map<string, Promise<void>>()
  const rw = rwLocks()
  const reads = new Set(Object.keys(s).filter((k) => /^(get|find|list)/.test(k)))
  const transaction: ContractStorage['transaction'] = async (fn) => {
    const held = new Map<string, () => void>()
    const heldRw = new Set<string>()
    const writes: ((tx: StorageTx) => Promise<unknown>)[] = []
    const lock = async (key: string) => {
      if (held.has(key)) return
      const previous = tails.get(key) ?? Promise.resolve()
      let release: () => void = () => {}
      const mine = new Promise<void>((resolve) => {
        release = resolve
      })
      tails.set(
        key,
        previous.then(() => mine),
      )
      held.set(key, release)
      await previous
    }
    // The provider row: shared for lockIdentity, shared or exclusive for lockAuthProvider (a
    // reader-writer lock), read from the committed store once granted.
    const provider = async (id: string, mode: 'share' | 'update') => {
      const key = `provider:${id}`
      if (!heldRw.has(key)) {
        await rw.acquire(key, mode)
        heldRw.add(key)
      }
      return s.getAuthProviderById(id)
    }
    const tx = new Proxy({} as StorageTx, {
      get(_target, prop: string) {
        if (prop === 'lockIdentity')
          return async (p: string, i: string) => {
            await lock(`identity:${p}:${i}`)
            return provider(p, 'share')
          }
        if (prop === 'lockAuthProvider')
          return async (org: string, mode: 'share' | 'update') => {
            const row = await s.getAuthProvider(org)
            return row === null ? null : provider(row.id, mode)
          }
        if (prop === 'lockEmail') return (e: string) => (options.lockEmail ? lock(`email:${e}`) : Promise.resolve())
        if (reads.has(prop)) {
          return async (...args: unknown[]) => {
            const value = await (s[prop as keyof ContractStorage] as (...a: unknown[]) => Promise<unknown>)(...args)
            await tick()
            return value
          }
        }
        return async (...args: unknown[]) => {
          writes.push((t) => (t[prop as keyof StorageTx] as (...a: unknown[]) => Promise<unknown>)(...args))
        }
      },
    })
    try {
      const value = await fn(tx)
      await s.transaction(async (t) => {
        for (const w of writes) await w(t)
      })
      return value
    } finally {
      for (const release of held.values()) release()
      for (const key of heldRw) rw.release(key)
    }
  }
  return { ...s, transaction }
}

/** A reader-writer lock per key: any number of `share` holders, or one `update` holder. FIFO. */
function rwLocks() {
  const state = new Map<string, { readers: number; writer: boolean }>()
  const queues = new Map<string, { mode: 'share' | 'update'; grant: () => void }[]>()
  const holders = new Map<string, ('share' | 'update')[]>()
  const entry = (key: string) => {
    let e = state.get(key)
    if (!e) {
      e = { readers: 0, writer: false }
      state.set(key, e)
    }
    return e
  }
  const compatible = (key: string, mode: 'share' | 'update') => {
    const e = entry(key)
    return mode === 'share' ? !e.writer : !e.writer && e.readers === 0
  }
  const take = (key: string, mode: 'share' | 'update') => {
    const e = entry(key)
    if (mode === 'share') e.readers++
    else e.writer = true
    holders.set(key, [...(holders.get(key) ?? []), mode])
  }
  const pump = (key: string) => {
    const q = queues.get(key) ?? []
    while (q.length > 0 && compatible(key, (q[0] as { mode: 'share' | 'update' }).mode)) {
      const next = q.shift() as { mode: 'share' | 'update'; grant: () => void }
      take(key, next.mode)
      next.grant()
    }
  }
  return {
    acquire(key: string, mode: 'share' | 'update'): Promise<void> {
      const q = queues.get(key) ?? []
      queues.set(key, q)
      if (q.length === 0 && compatible(key, mode)) {
        take(key, mode)
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => q.push({ mode, grant: resolve }))
    },
    release(key: string): void {
      const modes = holders.get(key) ?? []
      const mode = modes.shift()
      const e = entry(key)
      if (mode === 'share') e.readers--
      else if (mode === 'update') e.writer = false
      pump(key)
    },
  }
}

function stripControls(value: JsonValue): JsonValue {
  const clean = (text: string) =>
    Array.from(text)
      .filter((c) => (c.codePointAt(0) ?? 0) >= 0x20)
      .join('')
  if (typeof value === 'string') return clean(value)
  if (Array.isArray(value)) return value.map(stripControls)
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [clean(k), stripControls(v)]))
  return value
}

function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf))
  if (value !== null && typeof value === 'object') return 1 + Math.max(0, ...Object.values(value).map(depthOf))
  return 0
}

async function inactiveMatches(s: ContractStorage, e: string) {
  // The healthy store hides inactive users; recover them the way a buggy adapter would (no filter).
  const out = []
  for (const id of ['user-01', 'user-02', 'user-03', 'user-04']) {
    const u = await s.getUser(id)
    if (u !== null && !u.isActive && normalizeEmail(u.email) === e)
      out.push({ user: u, email: { userId: u.id, email: u.email, emailNormalized: e, isVerified: true, isPrimary: true } })
  }
  return out
}

describe('storage contract catches broken adapters', () => {
  for (const m of mutants) {
    it(m.name, async () => {
      const failed = await failingCases(m.mutate)
      for (const pattern of m.mustFail) {
        expect(
          failed.some((name) => pattern.test(name)),
          `${pattern} should fail; failed: ${failed.join(' | ')}`,
        ).toBe(true)
      }
    })
  }

  it('lockEmail forgotten on a store whose transactions run in parallel (threats 10, 52)', async () => {
    const failed = await failingCases((s) => parallelStore(s, { lockEmail: false }))
    expect(failed).toContainEqual(expect.stringMatching(/concurrent sign-ups with one address under lockEmail/))
    // Control: the same parallel store with the lock passes that case (and the identity-lock cases).
    const withLock = await failingCases((s) => parallelStore(s, { lockEmail: true }))
    expect(withLock.filter((name) => /under lockEmail|under lockIdentity/.test(name))).toEqual([])
  })

  it('the memory store without an async context runs calls from inside a transaction beside it: the case fails', async () => {
    const failed = await failingCases((_s, clock) => {
      const storage = createMemoryStorage({ clock })
      return Object.assign(storage, { seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => storage.seed(data) })
    })
    expect(failed).toEqual([expect.stringMatching(/join the transaction or are refused/)])
  })

  it('the healthy store fails no case (control)', async () => {
    expect(await failingCases((s) => s)).toEqual([])
  })
})
