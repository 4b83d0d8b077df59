import { describe, expect, it } from 'vitest'
import { createMemoryStorage } from '../../src/memory/index.js'
import { isStorageConflict, StorageConflictError } from '../../src/ports/storage.js'
import { fixedClock, makeIdentity, makeMember, makeOrganization, makeProvider, makeUser, primaryEmailOf } from '../../src/testing/index.js'

const org = makeOrganization({ id: 'org-a' })
const alice = makeUser({ id: 'user-01', email: 'Alice@Example.com', createdAt: new Date('2026-02-03T04:05:06.789Z') })
const bob = makeUser({ id: 'user-02', email: 'bob@example.com' })

function conflictOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (isStorageConflict(error)) return error.constraint
    throw error
  }
  return undefined
}

describe('seed', () => {
  it('adds a primary verified address for each seeded user', () => {
    const s = createMemoryStorage()
    s.seed({ users: [alice] })
    expect(s.snapshot().userEmails).toEqual([
      { userId: 'user-01', email: 'Alice@Example.com', emailNormalized: 'alice@example.com', isVerified: true, isPrimary: true },
    ])
  })

  it('keeps a given row for the same user and address instead of adding the default', () => {
    const s = createMemoryStorage()
    const unverified = primaryEmailOf(alice, { isVerified: false })
    const secondary = { userId: alice.id, email: 'a2@example.com', emailNormalized: 'a2@example.com', isVerified: true, isPrimary: false }
    s.seed({ users: [alice], userEmails: [unverified, secondary] })
    expect(s.snapshot().userEmails).toEqual([secondary, unverified])
  })

  it('is all-or-nothing: a conflict throws StorageConflictError and writes nothing', () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org], users: [alice] })
    const before = s.snapshot()
    expect(
      conflictOf(() =>
        s.seed({
          users: [bob],
          members: [
            makeMember({ id: 'm1', organizationId: 'org-a', userId: 'user-02' }),
            makeMember({ id: 'm2', organizationId: 'org-a', userId: 'user-02' }),
          ],
        }),
      ),
    ).toBe('member.organization_user')
    expect(s.snapshot()).toEqual(before)
  })

  it('enforces every constraint on seeded rows', () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org], users: [alice, bob], providers: [makeProvider({ id: 'p1', organizationId: 'org-a' })] })
    expect(conflictOf(() => s.seed({ users: [makeUser({ id: 'user-03', username: 'user-01' })] }))).toBe('user.username')
    expect(conflictOf(() => s.seed({ userEmails: [primaryEmailOf(alice)] }))).toBe('user_email.user_email')
    expect(conflictOf(() => s.seed({ providers: [makeProvider({ id: 'p2', organizationId: 'org-a' })] }))).toBe(
      'auth_provider.organization',
    )
    s.seed({ identities: [makeIdentity({ id: 'i1', authProviderId: 'p1', userId: 'user-01', ident: 'x' })] })
    expect(
      conflictOf(() => s.seed({ identities: [makeIdentity({ id: 'i2', authProviderId: 'p1', userId: 'user-02', ident: 'x' })] })),
    ).toBe('auth_identity.provider_ident')
    expect(
      conflictOf(() => s.seed({ identities: [makeIdentity({ id: 'i2', authProviderId: 'p1', userId: 'user-01', ident: 'y' })] })),
    ).toBe('auth_identity.provider_user')
    s.seed({ members: [makeMember({ id: 'm1', organizationId: 'org-a', email: 'inv@example.com', inviteTokenHash: 'h' })] })
    expect(conflictOf(() => s.seed({ members: [makeMember({ id: 'm2', organizationId: 'org-a', email: 'INV@example.com' })] }))).toBe(
      'member.organization_email',
    )
    expect(conflictOf(() => s.seed({ members: [makeMember({ id: 'm2', organizationId: 'org-b', inviteTokenHash: 'h' })] }))).toBe(
      'member.invite_token',
    )
  })

  it('throws a plain Error (not a conflict) for a duplicate id', () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org] })
    expect(() => s.seed({ organizations: [org] })).toThrow(/duplicate organizations id/)
    expect(() => s.seed({ organizations: [org] })).not.toThrow(StorageConflictError)
  })

  it('refuses to run while a transaction is open', async () => {
    const s = createMemoryStorage()
    await s.transaction(async () => {
      expect(() => s.seed({ organizations: [org] })).toThrow(/transaction is running/)
    })
    expect(s.snapshot().organizations).toEqual([])
    s.seed({ organizations: [org] })
    expect(s.snapshot().organizations).toEqual([org])
  })
})

describe('snapshot', () => {
  it('sorts every table by a stable key and includes audit, states and tokens', async () => {
    const clock = fixedClock()
    const s = createMemoryStorage({ clock })
    s.seed({ organizations: [makeOrganization({ id: 'org-b' }), org], users: [bob, alice] })
    await s.transaction(async (tx) => {
      for (const id of ['a-2', 'a-1']) {
        await tx.appendAudit({
          id,
          event: 'sso.edit',
          actorUserId: null,
          organizationId: 'org-a',
          targetId: null,
          targetUserId: null,
          ip: null,
          data: {},
          createdAt: clock.now(),
        })
      }
    })
    const expiresAt = new Date(clock.now().getTime() + 1000)
    await s.pipelineStates.create({ id: 's-2', version: 1, body: 'x', expiresAt })
    await s.pipelineStates.create({ id: 's-1', version: 1, body: 'y', expiresAt })
    await s.oneTimeTokens.create({ hash: 'bb', purpose: 'p', payload: '{}', expiresAt })
    await s.oneTimeTokens.create({ hash: 'aa', purpose: 'p', payload: '{}', expiresAt })
    const snap = s.snapshot()
    expect(snap.organizations.map((o) => o.id)).toEqual(['org-a', 'org-b'])
    expect(snap.users.map((u) => u.id)).toEqual(['user-01', 'user-02'])
    expect(snap.userEmails.map((e) => e.userId)).toEqual(['user-01', 'user-02'])
    expect(snap.audit.map((a) => a.id)).toEqual(['a-1', 'a-2'])
    expect(snap.pipelineStates.map((p) => p.id)).toEqual(['s-1', 's-2'])
    expect(snap.oneTimeTokens.map((t) => t.hash)).toEqual(['aa', 'bb'])
  })

  it('returns deep copies: mutating a snapshot changes neither the store nor the next snapshot', () => {
    const s = createMemoryStorage()
    s.seed({ users: [alice] })
    const snap = s.snapshot()
    const user = snap.users[0] as { name: string; createdAt: Date }
    user.name = 'mutated'
    user.createdAt.setTime(0)
    snap.users.push(bob)
    expect(s.snapshot().users).toEqual([alice])
  })

  it('is equal before and after a rolled-back transaction and a read-only one', async () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org], users: [alice], members: [makeMember({ id: 'm1', organizationId: 'org-a', userId: 'user-01' })] })
    const before = s.snapshot()
    await expect(
      s.transaction(async (tx) => {
        await tx.updateMember('m1', { role: 'admin' })
        await tx.setFlagsForOrganization('org-a', { ssoLinked: true })
        throw new Error('stop')
      }),
    ).rejects.toThrow('stop')
    await s.transaction(async (tx) => {
      await tx.getMemberById('m1')
      await tx.listMembers('org-a', { limit: 10 })
    })
    expect(s.snapshot()).toEqual(before)
  })

  it('seeded records are copies of the input', () => {
    const s = createMemoryStorage()
    const input = { ...alice, createdAt: new Date(alice.createdAt) }
    s.seed({ users: [input] })
    input.createdAt.setTime(0)
    expect(s.snapshot().users[0]?.createdAt).toEqual(alice.createdAt)
  })
})

describe('transactions', () => {
  it('reads outside an open transaction see only committed data', async () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org] })
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let inside: Promise<void> | undefined
    const outside = new Promise<void>((resolve) => {
      inside = s.transaction(async (tx) => {
        await tx.createUser(alice, primaryEmailOf(alice))
        await tx.updateOrganization('org-a', { require2fa: true })
        resolve()
        await gate
      })
    })
    await outside
    expect(await s.getUser('user-01')).toBeNull()
    expect((await s.getOrganization('org-a'))?.require2fa).toBe(false)
    expect(s.snapshot().users).toEqual([])
    release()
    await inside
    expect(await s.getUser('user-01')).toEqual(alice)
    expect((await s.getOrganization('org-a'))?.require2fa).toBe(true)
  })

  it('runs transactions one at a time in call order', async () => {
    const s = createMemoryStorage({ yieldOnRead: true })
    const log: string[] = []
    await Promise.all(
      ['t1', 't2', 't3'].map((name) =>
        s.transaction(async (tx) => {
          log.push(`${name}:start`)
          await tx.getOrganization('x')
          await tx.getOrganization('y')
          log.push(`${name}:end`)
        }),
      ),
    )
    expect(log).toEqual(['t1:start', 't1:end', 't2:start', 't2:end', 't3:start', 't3:end'])
  })

  it('a transaction handle cannot be used after the transaction ended', async () => {
    const s = createMemoryStorage()
    let leaked: Parameters<Parameters<typeof s.transaction>[0]>[0] | undefined
    await s.transaction(async (tx) => {
      leaked = tx
    })
    await expect(leaked?.getUser('x')).rejects.toThrow(/after the transaction ended/)
    await expect(leaked?.createUser(alice, primaryEmailOf(alice))).rejects.toThrow(/after the transaction ended/)
    expect(s.snapshot().users).toEqual([])
  })

  it('a duplicate id inside a transaction is a programmer error and rolls back', async () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org] })
    const error = await s
      .transaction(async (tx) => {
        await tx.createMember(makeMember({ id: 'm1', organizationId: 'org-a', email: 'a@example.com' }))
        await tx.createMember(makeMember({ id: 'm1', organizationId: 'org-a', email: 'b@example.com' }))
      })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect(isStorageConflict(error)).toBe(false)
    expect(s.snapshot().members).toEqual([])
  })

  it('createUser rejects a primary address of another user', async () => {
    const s = createMemoryStorage()
    await expect(s.transaction((tx) => tx.createUser(alice, primaryEmailOf(bob)))).rejects.toThrow(/primaryEmail.userId/)
    expect(s.snapshot().users).toEqual([])
  })

  it('a patch field set to undefined leaves the column unchanged', async () => {
    const s = createMemoryStorage()
    s.seed({ organizations: [org], members: [makeMember({ id: 'm1', organizationId: 'org-a', email: 'a@example.com', role: 'owner' })] })
    await s.transaction((tx) => tx.updateMember('m1', { role: undefined, email: 'b@example.com', emailNormalized: 'b@example.com' }))
    expect(await s.getMemberById('m1')).toMatchObject({ role: 'owner', email: 'b@example.com' })
  })
})

describe('yieldOnRead', () => {
  it('resolves every read after a macrotask (a timer queued before the read has fired)', async () => {
    for (const [yieldOnRead, expected] of [
      [true, true],
      [false, false],
    ] as const) {
      const s = createMemoryStorage({ yieldOnRead })
      let fired = false
      setTimeout(() => {
        fired = true
      }, 0)
      await s.getUser('x')
      expect(fired).toBe(expected)
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
  })
})

describe('pipeline states and tokens', () => {
  it('a state whose expiresAt equals now is expired', async () => {
    const clock = fixedClock()
    const s = createMemoryStorage({ clock })
    await s.pipelineStates.create({ id: 's', version: 1, body: 'b', expiresAt: new Date(clock.now().getTime() + 10) })
    clock.advance(10)
    expect(await s.pipelineStates.load('s')).toBeNull()
  })

  it('an expired state id can be created again; a live one conflicts', async () => {
    const clock = fixedClock()
    const s = createMemoryStorage({ clock })
    const expiresAt = new Date(clock.now().getTime() + 10)
    await s.pipelineStates.create({ id: 's', version: 1, body: 'old', expiresAt })
    await expect(s.pipelineStates.create({ id: 's', version: 1, body: 'again', expiresAt })).rejects.toThrow(StorageConflictError)
    clock.advance(10)
    await s.pipelineStates.create({ id: 's', version: 1, body: 'new', expiresAt: new Date(clock.now().getTime() + 10) })
    expect((await s.pipelineStates.load('s'))?.body).toBe('new')
  })

  it('compareAndSet refuses a next state that breaks the contract (programmer error)', async () => {
    const s = createMemoryStorage()
    const state = { id: 's', version: 1, body: 'b', expiresAt: new Date('2999-01-01T00:00:00Z') }
    await s.pipelineStates.create(state)
    await expect(s.pipelineStates.compareAndSet('s', 1, { ...state, version: 3 })).rejects.toThrow(/expectedVersion \+ 1/)
    await expect(s.pipelineStates.compareAndSet('s', 1, { ...state, id: 't', version: 2 })).rejects.toThrow(/next.id/)
    expect(await s.pipelineStates.load('s')).toEqual(state)
  })

  it('expired tokens are swept when a token is created', async () => {
    const clock = fixedClock()
    const s = createMemoryStorage({ clock })
    await s.oneTimeTokens.create({ hash: 'old', purpose: 'p', payload: '{}', expiresAt: new Date(clock.now().getTime() + 5) })
    clock.advance(5)
    await s.oneTimeTokens.create({ hash: 'new', purpose: 'p', payload: '{}', expiresAt: new Date(clock.now().getTime() + 5) })
    expect(s.snapshot().oneTimeTokens.map((t) => t.hash)).toEqual(['new'])
  })
})
