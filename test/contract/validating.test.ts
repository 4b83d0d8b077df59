import { describe, expect, it } from 'vitest'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { StorageConflictError } from '../../src/ports/storage.js'
import {
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  StorageContractViolation,
  validatingStorage,
} from '../../src/testing/index.js'

function seeded(): MemoryStorage {
  const s = createMemoryStorage()
  s.seed({
    organizations: [makeOrganization({ id: 'org-a' })],
    users: [makeUser({ id: 'u1' }), makeUser({ id: 'u2', isActive: false, email: 'u1@example.com' })],
    providers: [makeProvider({ id: 'p1', organizationId: 'org-a' })],
    identities: [makeIdentity({ id: 'i1', authProviderId: 'p1', userId: 'u1', ident: 'ext-1' })],
    members: [
      makeMember({ id: 'm1', organizationId: 'org-a', userId: 'u1' }),
      makeMember({ id: 'm2', organizationId: 'org-a', email: 'x@example.com' }),
    ],
  })
  return s
}

async function violation(promise: Promise<unknown>): Promise<StorageContractViolation> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(StorageContractViolation)
  return error as StorageContractViolation
}

describe('validatingStorage', () => {
  it('passes healthy values through unchanged and keeps adapter extras (seed, snapshot)', async () => {
    const inner = seeded()
    const s = validatingStorage(inner)
    expect(await s.getIdentity('p1', 'ext-1')).toEqual(await inner.getIdentity('p1', 'ext-1'))
    expect(await s.findUsersByEmail('u1@example.com')).toHaveLength(1)
    s.seed({ organizations: [makeOrganization({ id: 'org-b' })] })
    expect(s.snapshot().organizations.map((o) => o.id)).toEqual(['org-a', 'org-b'])
    await s.transaction(async (tx) => {
      expect(await tx.updateMember('m1', { role: 'admin' })).toBe(true)
      expect(await tx.listMembers('org-a', { limit: 10 })).toHaveLength(2)
    })
  })

  it('reports SQL-style booleans and string dates at the method that returned them', async () => {
    const inner = seeded()
    const broken: MemoryStorage = {
      ...inner,
      getUser: async (id) => {
        const u = await inner.getUser(id)
        return u && ({ ...u, isActive: 1, createdAt: u.createdAt.toISOString() } as never)
      },
    }
    const v = await violation(validatingStorage(broken).getUser('u1'))
    expect(v.method).toBe('getUser')
    expect(v.problems.join('\n')).toMatch(/isActive/)
    expect(v.problems.join('\n')).toMatch(/createdAt/)
  })

  it('reports a row that does not match the query', async () => {
    const inner = seeded()
    const broken: MemoryStorage = { ...inner, getIdentity: (p) => inner.getIdentity(p, 'ext-1') }
    const v = await violation(validatingStorage(broken).getIdentity('p1', 'EXT-1'))
    expect(v.message).toMatch(/ident is "ext-1", asked for "EXT-1"/)
  })

  it('reports inactive users and foreign addresses from findUsersByEmail', async () => {
    const inner = seeded()
    const u2 = inner.snapshot().users.find((u) => u.id === 'u2')
    const broken: MemoryStorage = {
      ...inner,
      findUsersByEmail: async (e) => [
        ...(await inner.findUsersByEmail(e)),
        { user: u2 as never, email: { userId: 'u2', email: e, emailNormalized: e, isVerified: true, isPrimary: true } },
      ],
    }
    expect((await violation(validatingStorage(broken).findUsersByEmail('u1@example.com'))).message).toMatch(/inactive user u2/)
  })

  it('reports pages out of order, over the limit, not after the cursor, or not unlinked', async () => {
    const inner = seeded()
    const reversed: MemoryStorage = { ...inner, listMembers: async (o, p) => [...(await inner.listMembers(o, p))].reverse() }
    expect((await violation(validatingStorage(reversed).listMembers('org-a', { limit: 10 }))).message).toMatch(/ascending id order/)
    const unlimited: MemoryStorage = { ...inner, listMembers: (o) => inner.listMembers(o, { limit: 100 }) }
    expect((await violation(validatingStorage(unlimited).listMembers('org-a', { limit: 1 }))).message).toMatch(/2 rows for limit 1/)
    expect((await violation(validatingStorage(unlimited).listMembers('org-a', { limit: 5, after: 'm1' }))).message).toMatch(/not after m1/)
    expect((await violation(validatingStorage(unlimited).listMembers('org-a', { limit: 5, unlinkedOnly: true }))).message).toMatch(
      /m2 is not an unlinked accepted member/,
    )
  })

  it('reports expired or foreign-purpose tokens and bad counts inside transactions', async () => {
    const inner = seeded()
    await inner.oneTimeTokens.create({ hash: 'h', purpose: 'verify', payload: '{}', expiresAt: new Date('2999-01-01T00:00:00Z') })
    const leaky: MemoryStorage = {
      ...inner,
      oneTimeTokens: { ...inner.oneTimeTokens, peek: (hash, _purpose) => inner.oneTimeTokens.peek(hash, 'verify', new Date(0)) },
    }
    expect((await violation(validatingStorage(leaky).oneTimeTokens.peek('h', 'merge', new Date(0)))).message).toMatch(/purpose/)
    expect((await violation(validatingStorage(leaky).oneTimeTokens.peek('h', 'verify', new Date('3000-01-01T00:00:00Z')))).message).toMatch(
      /expired token/,
    )
    const negative: MemoryStorage = {
      ...inner,
      transaction: (fn) => inner.transaction((tx) => fn({ ...tx, setFlagsForOrganization: async () => -1 })),
    }
    const v = await violation(validatingStorage(negative).transaction((tx) => tx.setFlagsForOrganization('org-a', { ssoLinked: true })))
    expect(v.method).toBe('tx.setFlagsForOrganization')
  })

  it('reports a conflict naming an unknown constraint, and passes known conflicts through', async () => {
    const inner = seeded()
    const odd: MemoryStorage = {
      ...inner,
      transaction: async () => {
        throw Object.assign(new Error('dup'), { conflict: true, constraint: 'users_pkey' })
      },
    }
    expect((await violation(validatingStorage(odd).transaction(async () => {}))).message).toMatch(/users_pkey/)
    const s = validatingStorage(inner)
    await expect(s.transaction((tx) => tx.createMember(makeMember({ id: 'm9', organizationId: 'org-a', userId: 'u1' })))).rejects.toThrow(
      StorageConflictError,
    )
  })
})

describe('validatingStorage: one call at a time on a transaction handle', () => {
  it('fails overlapping calls on one tx handle (Promise.all), even when the caller catches the first failure', async () => {
    const s = validatingStorage(seeded())
    const overlapping = s.transaction(async (tx) => {
      await Promise.all([tx.getUser('u1'), tx.getMember('org-a', 'u1')])
    })
    const v = await violation(overlapping)
    expect(v.method).toBe('tx.getMember')
    expect(v.problems[0]).toMatch(/while tx.getUser is still running/)
    const swallowed = s.transaction(async (tx) => {
      await Promise.allSettled([tx.getUser('u1'), tx.updateMember('m1', { role: 'admin' })])
      return 'done'
    })
    expect((await violation(swallowed)).method).toBe('tx.updateMember')
    expect((await s.getMemberById('m1'))?.role).toBe('member')
  })

  it('accepts sequential calls and calls on different transactions at once', async () => {
    const s = validatingStorage(seeded())
    await s.transaction(async (tx) => {
      await tx.getUser('u1')
      await tx.getMember('org-a', 'u1')
    })
    await Promise.all([s.transaction((tx) => tx.getUser('u1')), s.transaction((tx) => tx.getUser('u2')), s.getUser('u1'), s.getUser('u2')])
  })
})
