import { normalizeEmail } from '../model/email.js'
import type { AuthIdentity, AuthProvider, Member, OrganizationDomain, User, UserEmail } from '../model/records.js'
import { type Clock, systemClock } from '../ports/clock.js'
import {
  type MemberPage,
  type MemberRecipient,
  type OneTimeTokenRecord,
  type OneTimeTokenStore,
  type PendingWork,
  type PendingWorkStore,
  type PipelineStateStore,
  StorageConflictError,
  type StoragePort,
  type StorageReader,
  type StorageSeedData,
  type StorageSnapshot,
  type StorageTx,
  type StoredPipelineState,
} from '../ports/storage.js'
import { byId, compare, copy, definedOnly, emptyTables, insertRow, type Tables, TableView, unique, userEmailKey } from './tables.js'

/**
 * Options of {@link createMemoryStorage}.
 * @group Memory
 */
export interface MemoryStorageOptions {
  /** Clock used for pipeline-state expiry (`load`, `compareAndSet`). Default: the system clock. */
  readonly clock?: Clock | undefined
  /**
   * Concurrency harness: await a macrotask after every read (the result is computed first),
   * so concurrent callers interleave at every read and races become visible in tests.
   */
  readonly yieldOnRead?: boolean | undefined
  /**
   * An async context (Node's and Deno's `AsyncLocalStorage` from `node:async_hooks` fits) that
   * tells a call made from inside a transaction's callback from a concurrent caller's. With it,
   * calls on the storage itself from inside `transaction(fn)` act in that transaction (reads see
   * its writes, token changes roll back with it), as the storage contract asks. Without it such a
   * call acts outside the transaction (committed data; token changes commit on their own), which
   * is right for concurrent callers; the engine itself never makes one (it uses the `tx` handle).
   */
  readonly asyncContext?: MemoryAsyncContext | undefined
}

/**
 * The two methods of an async context the memory storage needs (`new AsyncLocalStorage()`).
 * @group Memory
 */
export interface MemoryAsyncContext {
  run<R>(store: object, fn: () => R): R
  getStore(): unknown
}

/**
 * Host-owned rows inserted directly by {@link MemoryStorage.seed}.
 * @group Memory
 */
export type SeedData = StorageSeedData

/**
 * Deep copies of every table, each sorted by a stable key: `id` for rows that have one,
 * (`userId`, `emailNormalized`) for addresses, `hash` for one-time tokens. Includes expired
 * pipeline states and tokens that have not been swept. Compare two snapshots with `toEqual`.
 * @group Memory
 */
export type MemorySnapshot = StorageSnapshot

/**
 * The in-memory storage: a complete {@link StoragePort} plus seeding and snapshots for tests.
 * @group Memory
 */
export interface MemoryStorage extends StoragePort {
  /**
   * Inserts host-owned rows directly, atomically (all or nothing). Throws
   * {@link StorageConflictError} on a unique violation and an `Error` on a duplicate id or
   * when called while a transaction is running. Each seeded user also gets its primary
   * verified {@link UserEmail} row (`{ email: user.email, emailNormalized:
   * normalizeEmail(user.email), isVerified: true, isPrimary: true }`) unless `userEmails`
   * already has a row for that user and (normalized) address.
   */
  seed(data: SeedData): void
  /** Deep copies of every table, each sorted by a stable key, for before/after `toEqual`. */
  snapshot(): MemorySnapshot
}

const macrotask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))

/**
 * Creates the in-memory storage, the embedded default and reference adapter.
 *
 * - Every unique constraint of the port is enforced on create and update; a violation throws
 *   {@link StorageConflictError} naming the constraint. Duplicate primary keys throw a plain
 *   `Error` (ids are generated unique; this is a programmer error).
 * - `transaction(fn)` is serialised by a promise mutex. Each transaction works on a
 *   copy-on-write view and swaps it in atomically when `fn` resolves; when `fn` throws every
 *   write is discarded and the error is rethrown unchanged. Reads outside a transaction see
 *   committed data only. With `asyncContext`, calls on the storage itself from inside a
 *   transaction's callback act in that transaction (the storage contract's rule); without it
 *   they act outside it. Do not start a transaction from inside another one (it would wait
 *   for itself); `lockEmail` is a no-op and `lockIdentity` and `lockAuthProvider` only read
 *   the provider row, because all transactions are serial.
 * - Every record going in or out is a deep copy: callers cannot mutate the store.
 * - Pipeline states expire by the injected clock (`expiresAt <= now` is expired and
 *   invisible); one-time tokens by the `now` the caller passes; expired tokens are swept on
 *   the next `create`. `tx.oneTimeTokens` changes tokens at once and undoes its changes when
 *   the transaction rolls back (a consumed token is live again).
 *
 * @example
 * ```ts
 * import { createMemoryStorage } from 'ssoflow/memory'
 * const storage = createMemoryStorage()
 * storage.seed({ organizations: [{ id: 'org1', slug: 'acme', name: 'Acme', defaultRole: 'member', require2fa: false }] })
 * ```
 * @group Memory
 */
export function createMemoryStorage(options: MemoryStorageOptions = {}): MemoryStorage {
  const clock = options.clock ?? systemClock
  const afterRead: () => Promise<void> = options.yieldOnRead === true ? macrotask : async () => {}

  let committed: Tables = emptyTables()
  let inTransaction = false
  let tail: Promise<void> = Promise.resolve()
  const pipelineStates = new Map<string, StoredPipelineState>()
  const oneTimeTokens = new Map<string, OneTimeTokenRecord>()

  const memberOf = (t: Tables, organizationId: string, userId: string): Member | null => {
    for (const m of t.members.values()) if (m.organizationId === organizationId && m.userId === userId) return m
    return null
  }
  const identityBy = (t: Tables, authProviderId: string, ident: string): AuthIdentity | null => {
    for (const i of t.identities.values()) if (i.authProviderId === authProviderId && i.ident === ident) return i
    return null
  }
  const linkedOf = (t: Tables, authProviderId: string, ident: string, organizationId: string) => {
    const identity = identityBy(t, authProviderId, ident)
    if (identity === null) return null
    const user = t.users.get(identity.userId)
    if (user === undefined) return null
    return { identity, user, member: memberOf(t, organizationId, user.id) }
  }
  const providerOf = (t: Tables, organizationId: string): AuthProvider | null => {
    for (const p of t.providers.values()) if (p.organizationId === organizationId) return p
    return null
  }
  const reader = (tables: () => Tables, guard: () => void): StorageReader => {
    const read = async <T>(compute: (t: Tables) => T): Promise<T> => {
      guard()
      const value = copy(compute(tables()))
      await afterRead()
      return value
    }
    const membersPage = (t: Tables, organizationId: string, page: MemberPage): Member[] =>
      [...t.members.values()]
        .filter(
          (m) =>
            m.organizationId === organizationId &&
            (page.after == null || m.id > page.after) &&
            (page.unlinkedOnly !== true || (m.userId !== null && !m.flags.ssoLinked)),
        )
        .sort(byId)
        .slice(0, Math.max(0, page.limit))
    return {
      getOrganization: (id) => read((t) => t.organizations.get(id) ?? null),
      getOrganizationWithProvider: (organizationId) =>
        read((t) => {
          const organization = t.organizations.get(organizationId)
          return organization === undefined ? null : { organization, provider: providerOf(t, organizationId) }
        }),
      getAuthProvider: (organizationId) => read((t) => providerOf(t, organizationId)),
      getAuthProviderById: (id) => read((t) => t.providers.get(id) ?? null),
      getIdentity: (authProviderId, ident) => read((t) => identityBy(t, authProviderId, ident)),
      getIdentityById: (id) => read((t) => t.identities.get(id) ?? null),
      getIdentityForUser: (authProviderId, userId) =>
        read((t) => {
          for (const i of t.identities.values()) if (i.authProviderId === authProviderId && i.userId === userId) return i
          return null
        }),
      listIdentitiesForUser: (userId) => read((t) => [...t.identities.values()].filter((i) => i.userId === userId).sort(byId)),
      getLinkedIdentity: (authProviderId, ident, organizationId) => read((t) => linkedOf(t, authProviderId, ident, organizationId)),
      getUser: (id) => read((t) => t.users.get(id) ?? null),
      findUsersByEmail: (emailNormalized) =>
        read((t) => {
          const matches: { user: User; email: UserEmail }[] = []
          for (const email of t.userEmails.values()) {
            if (email.emailNormalized !== emailNormalized) continue
            const user = t.users.get(email.userId)
            if (user?.isActive === true) matches.push({ user, email })
          }
          return matches.sort((a, b) => byId(a.user, b.user))
        }),
      getMember: (organizationId, userId) => read((t) => memberOf(t, organizationId, userId)),
      getMemberById: (id) => read((t) => t.members.get(id) ?? null),
      getInviteByEmail: (organizationId, emailNormalized) =>
        read((t) => {
          for (const m of t.members.values()) {
            if (m.organizationId === organizationId && m.userId === null && m.emailNormalized === emailNormalized) return m
          }
          return null
        }),
      listMembers: (organizationId, page) => read((t) => membersPage(t, organizationId, page)),
      listMemberRecipients: (organizationId, page) =>
        read((t) =>
          membersPage(t, organizationId, page).map(
            (member): MemberRecipient => ({ member, user: member.userId === null ? null : (t.users.get(member.userId) ?? null) }),
          ),
        ),
      listOrganizationDomains: (organizationId) =>
        read((t) => [...t.domains.values()].filter((d) => d.organizationId === organizationId).sort((a, b) => compare(a.domain, b.domain))),
      findVerifiedDomains: (domain) =>
        read((t) =>
          [...t.domains.values()]
            .filter((d) => d.domain === domain && d.verifiedAt !== null)
            .sort((a, b) => compare(a.organizationId, b.organizationId)),
        ),
      listIdentities: (authProviderId, page) =>
        read((t) =>
          [...t.identities.values()]
            .filter((i) => i.authProviderId === authProviderId && (page.after == null || i.id > page.after))
            .sort(byId)
            .slice(0, Math.max(0, page.limit)),
        ),
    }
  }

  // The open transaction, if any (transactions are serial). A call on the storage itself acts in
  // it only when the async context says the call comes from inside its callback.
  let open: { readonly view: TableView; readonly undo: (() => void)[] } | null = null
  const context = options.asyncContext
  const joined = (): { readonly view: TableView; readonly undo: (() => void)[] } | null =>
    open !== null && context !== undefined && context.getStore() === open ? open : null

  const committedReader = reader(
    () => joined()?.view.tables ?? committed,
    () => {},
  )

  // One-time tokens live outside the table view; inside a transaction (through the handle, or
  // through the storage itself while the transaction is open) each change is applied at once
  // and undone on rollback.
  const undoableTokens = (undo: (() => void)[], guard: () => void): OneTimeTokenStore => ({
    async create(token) {
      guard()
      await tokens.create(token)
      undo.push(() => {
        oneTimeTokens.delete(token.hash)
      })
    },
    async consume(hash, purpose, now) {
      guard()
      const taken = await tokens.consume(hash, purpose, now)
      if (taken !== null) {
        undo.push(() => {
          if (!oneTimeTokens.has(taken.hash)) oneTimeTokens.set(taken.hash, copy(taken))
        })
      }
      return taken
    },
    async peek(hash, purpose, now) {
      guard()
      return tokens.peek(hash, purpose, now)
    },
  })

  const makeTx = (view: TableView, isOpen: () => boolean, undo: (() => void)[]): StorageTx => {
    const guard = (): void => {
      if (!isOpen()) throw new Error('memory storage: transaction handle used after the transaction ended')
    }
    const txTokens = undoableTokens(undo, guard)
    // Pipeline states too: a change made through the transaction is undone on rollback.
    const txStates: PipelineStateStore = {
      async create(state) {
        guard()
        await states.create(state)
        undo.push(() => {
          pipelineStates.delete(state.id)
        })
      },
      async load(id) {
        guard()
        return states.load(id)
      },
      async compareAndSet(id, expectedVersion, next) {
        guard()
        const before = pipelineStates.get(id)
        const swapped = await states.compareAndSet(id, expectedVersion, next)
        if (swapped && before !== undefined) {
          undo.push(() => {
            pipelineStates.set(id, before)
          })
        }
        return swapped
      },
      async delete(id) {
        guard()
        const before = pipelineStates.get(id)
        await states.delete(id)
        if (before !== undefined) {
          undo.push(() => {
            pipelineStates.set(id, before)
          })
        }
      },
      deleteExpired: (now) => {
        guard()
        return states.deleteExpired(now)
      },
    }
    const write = async <T>(fn: (t: Tables) => T): Promise<T> => {
      guard()
      return fn(view.tables)
    }
    const updateIdentity = (id: string, patch: Partial<AuthIdentity>): boolean => {
      const old = view.tables.identities.get(id)
      if (old === undefined) return false
      const next: AuthIdentity = { ...old, ...copy(definedOnly(patch)), id: old.id }
      unique.identity(view.tables, next)
      view.writable('identities').set(id, next)
      return true
    }
    const updateMember = (id: string, patch: Partial<Member>): boolean => {
      const old = view.tables.members.get(id)
      if (old === undefined) return false
      const next: Member = { ...old, ...copy(definedOnly(patch)), id: old.id }
      unique.member(view.tables, next)
      view.writable('members').set(id, next)
      return true
    }
    const deleteIdentitiesWhere = (predicate: (i: AuthIdentity) => boolean): number => {
      const doomed = [...view.tables.identities.values()].filter(predicate)
      if (doomed.length === 0) return 0
      const table = view.writable('identities')
      for (const i of doomed) table.delete(i.id)
      return doomed.length
    }
    return {
      ...reader(() => view.tables, guard),
      // All transactions are serial: holding a row is reading it inside the transaction.
      lockIdentity: (authProviderId) => write((t) => copy(t.providers.get(authProviderId) ?? null)),
      readLinkedIdentity: (authProviderId, ident, organizationId) =>
        write((t) =>
          copy({ provider: t.providers.get(authProviderId) ?? null, linked: linkedOf(t, authProviderId, ident, organizationId) }),
        ),
      lockAuthProvider: (organizationId) =>
        write((t) => {
          for (const p of t.providers.values()) if (p.organizationId === organizationId) return copy(p)
          return null
        }),
      lockEmail: () => write(() => undefined),
      createUser: (user, primaryEmail) =>
        write((t) => {
          if (primaryEmail.userId !== user.id) throw new Error('memory storage: primaryEmail.userId must equal user.id')
          if (t.users.has(user.id)) throw new Error(`memory storage: duplicate users id ${JSON.stringify(user.id)}`)
          unique.user(t, user)
          unique.userEmail(t, primaryEmail)
          insertRow(view, 'users', user)
          view.writable('userEmails').set(userEmailKey(primaryEmail.userId, primaryEmail.emailNormalized), copy(primaryEmail))
        }),
      createIdentity: (identity) =>
        write((t) => {
          unique.identity(t, identity)
          insertRow(view, 'identities', identity)
        }),
      updateIdentity: (id, patch) => write(() => updateIdentity(id, patch)),
      updateIdentityIfUnchanged: (expected, patch) =>
        write(() => {
          const row = view.tables.identities.get(expected.id)
          const unchanged =
            row !== undefined &&
            row.userId === expected.userId &&
            row.ident === expected.ident &&
            row.lastVerified.getTime() === expected.lastVerified.getTime() &&
            row.lastSynced.getTime() === expected.lastSynced.getTime() &&
            JSON.stringify(row.data) === JSON.stringify(expected.data)
          return unchanged && Object.keys(definedOnly(patch)).length > 0 && updateIdentity(expected.id, patch)
        }),
      deleteIdentity: (id) => write(() => deleteIdentitiesWhere((i) => i.id === id) > 0),
      deleteIdentitiesForUser: (authProviderId, userId, exceptId) =>
        write(() => deleteIdentitiesWhere((i) => i.authProviderId === authProviderId && i.userId === userId && i.id !== exceptId)),
      deleteIdentitiesForProvider: (authProviderId) => write(() => deleteIdentitiesWhere((i) => i.authProviderId === authProviderId)),
      createMember: (member) =>
        write((t) => {
          unique.member(t, member)
          insertRow(view, 'members', member)
        }),
      updateMember: (id, patch) => write(() => updateMember(id, patch)),
      acceptInvite: (id, acceptance) =>
        write((t) => {
          const invite = t.members.get(id)
          // Guarded: only a still-pending invite is accepted (threat 49).
          if (invite === undefined || invite.userId !== null || invite.inviteStatus !== 'approved') return false
          return updateMember(id, {
            userId: acceptance.userId,
            email: null,
            emailNormalized: null,
            inviteTokenHash: null,
            inviteExpiresAt: null,
            flags: acceptance.flags,
          })
        }),
      deleteMember: (id) =>
        write((t) => {
          if (!t.members.has(id)) return false
          view.writable('members').delete(id)
          return true
        }),
      setFlagsForOrganization: (organizationId, flags) =>
        write((t) => {
          const wanted = definedOnly(flags)
          const keys = Object.keys(wanted) as (keyof typeof wanted)[]
          let changed = 0
          for (const m of [...t.members.values()]) {
            if (m.organizationId !== organizationId) continue
            if (keys.every((k) => m.flags[k] === wanted[k])) continue
            view.writable('members').set(m.id, { ...m, flags: { ...m.flags, ...wanted } })
            changed++
          }
          return changed
        }),
      createAuthProvider: (provider) =>
        write((t) => {
          unique.provider(t, provider)
          insertRow(view, 'providers', provider)
        }),
      updateAuthProvider: (id, patch) =>
        write((t) => {
          const old = t.providers.get(id)
          if (old === undefined) return false
          const next: AuthProvider = { ...old, ...copy(definedOnly(patch)), id: old.id }
          unique.provider(t, next)
          view.writable('providers').set(id, next)
          return true
        }),
      deleteAuthProvider: (id) =>
        write((t) => {
          if (!t.providers.has(id)) return false
          view.writable('providers').delete(id)
          return true
        }),
      updateOrganization: (id, patch) =>
        write((t) => {
          const old = t.organizations.get(id)
          if (old === undefined) return false
          view.writable('organizations').set(id, { ...old, ...copy(definedOnly(patch)), id: old.id })
          return true
        }),
      appendAudit: (entry) =>
        write(() => {
          insertRow(view, 'audit', entry)
        }),
      createOrganizationDomain: (domain) =>
        write((t) => {
          unique.domain(t, domain)
          insertRow(view, 'domains', domain)
        }),
      verifyOrganizationDomain: (id, verifiedAt) =>
        write((t) => {
          const old = t.domains.get(id)
          if (old === undefined) return false
          const next: OrganizationDomain = { ...old, verifiedAt: new Date(verifiedAt.getTime()) }
          unique.domain(t, next)
          view.writable('domains').set(id, next)
          return true
        }),
      deleteOrganizationDomain: (id) =>
        write((t) => {
          if (!t.domains.has(id)) return false
          view.writable('domains').delete(id)
          return true
        }),
      enqueueWork: (work) =>
        write((t) => {
          for (const other of t.work.values()) if (other.key === work.key) return false
          insertRow(view, 'work', work)
          return true
        }),
      oneTimeTokens: txTokens,
      pipelineStates: txStates,
    }
  }

  const isLive = (expiresAt: Date, now: Date): boolean => expiresAt.getTime() > now.getTime()

  const states: PipelineStateStore = {
    async create(state) {
      const existing = pipelineStates.get(state.id)
      if (existing !== undefined && isLive(existing.expiresAt, clock.now())) throw new StorageConflictError('pipeline_state.id')
      pipelineStates.set(state.id, copy(state))
    },
    async load(id) {
      const state = pipelineStates.get(id)
      const value = state !== undefined && isLive(state.expiresAt, clock.now()) ? copy(state) : null
      await afterRead()
      return value
    },
    async compareAndSet(id, expectedVersion, next) {
      if (next.id !== id) throw new Error('memory storage: compareAndSet next.id must equal id')
      if (next.version !== expectedVersion + 1) throw new Error('memory storage: compareAndSet next.version must be expectedVersion + 1')
      const state = pipelineStates.get(id)
      const swapped = state !== undefined && isLive(state.expiresAt, clock.now()) && state.version === expectedVersion
      if (swapped) pipelineStates.set(id, copy(next))
      await afterRead()
      return swapped
    },
    async delete(id) {
      pipelineStates.delete(id)
    },
    async deleteExpired(now, limit) {
      let count = 0
      for (const [id, state] of [...pipelineStates]) {
        if (limit !== undefined && count >= limit) break
        if (!isLive(state.expiresAt, now)) {
          pipelineStates.delete(id)
          count++
        }
      }
      return count
    },
  }

  const tokens: OneTimeTokenStore = {
    async create(token) {
      const now = clock.now()
      for (const [hash, t] of [...oneTimeTokens]) if (!isLive(t.expiresAt, now)) oneTimeTokens.delete(hash)
      if (oneTimeTokens.has(token.hash)) throw new StorageConflictError('one_time_token.hash')
      oneTimeTokens.set(token.hash, copy(token))
    },
    async consume(hash, purpose, now) {
      const token = oneTimeTokens.get(hash)
      let value: OneTimeTokenRecord | null = null
      if (token !== undefined && token.purpose === purpose && isLive(token.expiresAt, now)) {
        oneTimeTokens.delete(hash)
        value = token
      }
      await afterRead()
      return value
    },
    async peek(hash, purpose, now) {
      const token = oneTimeTokens.get(hash)
      const value = token !== undefined && token.purpose === purpose && isLive(token.expiresAt, now) ? copy(token) : null
      await afterRead()
      return value
    },
    async deleteExpired(now, limit) {
      let count = 0
      for (const [hash, token] of [...oneTimeTokens]) {
        if (count >= limit) break
        if (!isLive(token.expiresAt, now)) {
          oneTimeTokens.delete(hash)
          count++
        }
      }
      return count
    },
  }

  /** Runs `fn` on a copy-on-write view under the transaction mutex and commits its writes. */
  async function serially<T>(fn: (view: TableView) => T): Promise<T> {
    const previous = tail
    let release: () => void = () => {}
    tail = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    try {
      const view = new TableView(committed)
      const value = fn(view)
      committed = view.tables
      return copy(value)
    } finally {
      release()
    }
  }

  // The outbox's worker side: each call is one step under the mutex (all steps are serial).
  const work: PendingWorkStore = {
    claim: (now, leaseUntil, claimToken) =>
      serially((view) => {
        let next: PendingWork | null = null
        for (const w of view.tables.work.values()) {
          if (w.availableAt.getTime() > now.getTime()) continue
          const earlier =
            next === null ||
            w.availableAt.getTime() < next.availableAt.getTime() ||
            (w.availableAt.getTime() === next.availableAt.getTime() && w.id < next.id)
          if (earlier) next = w
        }
        if (next === null) return null
        const claimed: PendingWork = { ...next, claimToken, availableAt: new Date(leaseUntil.getTime()) }
        view.writable('work').set(claimed.id, claimed)
        return claimed
      }),
    advance: (id, claimToken, progress) =>
      serially((view) => {
        const w = view.tables.work.get(id)
        if (w === undefined || w.claimToken !== claimToken) return false
        view.writable('work').set(id, {
          ...w,
          cursor: progress.cursor,
          attempts: progress.attempts,
          availableAt: new Date(progress.availableAt.getTime()),
        })
        return true
      }),
    complete: (id, claimToken) =>
      serially((view) => {
        const w = view.tables.work.get(id)
        if (w === undefined || w.claimToken !== claimToken) return false
        view.writable('work').delete(id)
        return true
      }),
  }

  return {
    ...committedReader,
    pipelineStates: states,
    oneTimeTokens: {
      create: (token) => {
        const tx = joined()
        return tx ? undoableTokens(tx.undo, () => {}).create(token) : tokens.create(token)
      },
      consume: (hash, purpose, now) => {
        const tx = joined()
        return tx ? undoableTokens(tx.undo, () => {}).consume(hash, purpose, now) : tokens.consume(hash, purpose, now)
      },
      peek: (hash, purpose, now) => tokens.peek(hash, purpose, now),
      deleteExpired: (now, limit) => tokens.deleteExpired?.(now, limit) ?? Promise.resolve(0),
    },
    pendingWork: work,

    async transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
      const previous = tail
      let release: () => void = () => {}
      tail = new Promise<void>((resolve) => {
        release = resolve
      })
      await previous
      inTransaction = true
      let isOpen = true
      const view = new TableView(committed)
      const undo: (() => void)[] = []
      const current = { view, undo }
      open = current
      try {
        const tx = makeTx(view, () => isOpen, undo)
        const value = await (context ? context.run(current, () => fn(tx)) : fn(tx))
        committed = view.tables
        return value
      } catch (error) {
        for (const step of undo.reverse()) step()
        throw error
      } finally {
        isOpen = false
        open = null
        inTransaction = false
        release()
      }
    },

    seed(data) {
      if (inTransaction) throw new Error('memory storage: seed() called while a transaction is running')
      const view = new TableView(committed)
      for (const org of data.organizations ?? []) insertRow(view, 'organizations', org)
      const givenEmails = data.userEmails ?? []
      for (const user of data.users ?? []) {
        unique.user(view.tables, user)
        insertRow(view, 'users', user)
      }
      const addEmail = (email: UserEmail): void => {
        unique.userEmail(view.tables, email)
        view.writable('userEmails').set(userEmailKey(email.userId, email.emailNormalized), copy(email))
      }
      for (const email of givenEmails) addEmail(email)
      for (const user of data.users ?? []) {
        const emailNormalized = normalizeEmail(user.email)
        if (givenEmails.some((e) => e.userId === user.id && e.emailNormalized === emailNormalized)) continue
        addEmail({ userId: user.id, email: user.email, emailNormalized, isVerified: true, isPrimary: true })
      }
      for (const provider of data.providers ?? []) {
        unique.provider(view.tables, provider)
        insertRow(view, 'providers', provider)
      }
      for (const member of data.members ?? []) {
        unique.member(view.tables, member)
        insertRow(view, 'members', member)
      }
      for (const identity of data.identities ?? []) {
        unique.identity(view.tables, identity)
        insertRow(view, 'identities', identity)
      }
      for (const domain of data.domains ?? []) {
        unique.domain(view.tables, domain)
        insertRow(view, 'domains', domain)
      }
      committed = view.tables
    },

    snapshot() {
      const t = committed
      const sorted = <R extends { readonly id: string }>(m: ReadonlyMap<string, R>): R[] => copy([...m.values()].sort(byId))
      return {
        organizations: sorted(t.organizations),
        users: sorted(t.users),
        userEmails: copy([...t.userEmails.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, email]) => email)),
        members: sorted(t.members),
        providers: sorted(t.providers),
        identities: sorted(t.identities),
        audit: sorted(t.audit),
        pipelineStates: sorted(pipelineStates),
        oneTimeTokens: copy([...oneTimeTokens.values()].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))),
        pendingWork: sorted(t.work),
        domains: sorted(t.domains),
      }
    },
  }
}
