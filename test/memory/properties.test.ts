import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createMemoryStorage, type MemorySnapshot } from '../../src/memory/index.js'
import { isStorageConflict, type StorageTx } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/index.js'

const ids = fc.constantFrom('a', 'b', 'c', 'd')
const orgs = fc.constantFrom('org-1', 'org-2')
const provs = fc.constantFrom('prov-1', 'prov-2')
const userIds = fc.constantFrom('u1', 'u2', 'u3')
const emails = fc.option(fc.constantFrom('x@example.com', 'y@example.com'), { nil: null })
const tokens = fc.option(fc.constantFrom('t1', 't2'), { nil: null })

type Op =
  | { op: 'createMember'; id: string; org: string; userId: string | null; email: string | null; token: string | null }
  | { op: 'updateMember'; id: string; userId: string | null; email: string | null; token: string | null }
  | { op: 'deleteMember'; id: string }
  | { op: 'createIdentity'; id: string; prov: string; userId: string; ident: string }
  | { op: 'updateIdentity'; id: string; userId: string; ident: string }
  | { op: 'deleteForUser'; prov: string; userId: string }
  | { op: 'setFlags'; org: string; linked: boolean }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('createMember' as const),
    id: ids,
    org: orgs,
    userId: fc.option(userIds, { nil: null }),
    email: emails,
    token: tokens,
  }),
  fc.record({ op: fc.constant('updateMember' as const), id: ids, userId: fc.option(userIds, { nil: null }), email: emails, token: tokens }),
  fc.record({ op: fc.constant('deleteMember' as const), id: ids }),
  fc.record({ op: fc.constant('createIdentity' as const), id: ids, prov: provs, userId: userIds, ident: ids }),
  fc.record({ op: fc.constant('updateIdentity' as const), id: ids, userId: userIds, ident: ids }),
  fc.record({ op: fc.constant('deleteForUser' as const), prov: provs, userId: userIds }),
  fc.record({ op: fc.constant('setFlags' as const), org: orgs, linked: fc.boolean() }),
)

async function apply(tx: StorageTx, o: Op): Promise<void> {
  switch (o.op) {
    case 'createMember':
      await tx.createMember(makeMember({ id: o.id, organizationId: o.org, userId: o.userId, email: o.email, inviteTokenHash: o.token }))
      return
    case 'updateMember':
      await tx.updateMember(o.id, { userId: o.userId, email: o.email, emailNormalized: o.email, inviteTokenHash: o.token })
      return
    case 'deleteMember':
      await tx.deleteMember(o.id)
      return
    case 'createIdentity':
      await tx.createIdentity(makeIdentity({ id: o.id, authProviderId: o.prov, userId: o.userId, ident: o.ident }))
      return
    case 'updateIdentity':
      await tx.updateIdentity(o.id, { userId: o.userId, ident: o.ident })
      return
    case 'deleteForUser':
      await tx.deleteIdentitiesForUser(o.prov, o.userId, null)
      return
    case 'setFlags':
      await tx.setFlagsForOrganization(o.org, { ssoLinked: o.linked })
      return
  }
}

function distinct(keys: (string | null)[]): boolean {
  const present = keys.filter((k): k is string => k !== null)
  return new Set(present).size === present.length
}

function invariantsHold(s: MemorySnapshot): boolean {
  const m = s.members
  const i = s.identities
  return (
    distinct(m.map((x) => (x.userId === null ? null : `${x.organizationId}|${x.userId}`))) &&
    distinct(m.map((x) => (x.emailNormalized === null ? null : `${x.organizationId}|${x.emailNormalized}`))) &&
    distinct(m.map((x) => x.inviteTokenHash)) &&
    distinct(i.map((x) => `${x.authProviderId}|${x.ident}`)) &&
    distinct(i.map((x) => `${x.authProviderId}|${x.userId}`)) &&
    distinct(s.providers.map((x) => x.organizationId))
  )
}

function freshStorage(yieldOnRead: boolean) {
  const s = createMemoryStorage({ yieldOnRead })
  s.seed({
    organizations: [makeOrganization({ id: 'org-1' }), makeOrganization({ id: 'org-2' })],
    users: ['u1', 'u2', 'u3'].map((id) => makeUser({ id })),
    providers: [makeProvider({ id: 'prov-1', organizationId: 'org-1' }), makeProvider({ id: 'prov-2', organizationId: 'org-2' })],
  })
  return s
}

const isExpectedFailure = (e: unknown) => isStorageConflict(e) || (e instanceof Error && /duplicate/.test(e.message))

describe('memory storage properties', () => {
  it('every transaction either commits with all unique constraints intact or leaves the store exactly as it was', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { maxLength: 12 }), async (txs) => {
        const s = freshStorage(false)
        for (const ops of txs) {
          const before = s.snapshot()
          try {
            await s.transaction(async (tx) => {
              for (const o of ops) await apply(tx, o)
            })
          } catch (e) {
            expect(isExpectedFailure(e)).toBe(true)
            expect(s.snapshot()).toEqual(before)
          }
          expect(invariantsHold(s.snapshot())).toBe(true)
        }
      }),
      { numRuns: 150 },
    )
  })

  it('concurrent transactions with yieldOnRead equal running the same transactions one by one in call order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 6 }), async (txs) => {
        const run = (s: ReturnType<typeof freshStorage>, ops: Op[]) =>
          s
            .transaction(async (tx) => {
              for (const o of ops) {
                await tx.listMembers('org-1', { limit: 10 })
                await apply(tx, o)
              }
            })
            .then(
              () => 'ok',
              (e: unknown) => (isExpectedFailure(e) ? 'failed' : 'unexpected'),
            )
        const concurrent = freshStorage(true)
        const outcomes = await Promise.all(txs.map((ops) => run(concurrent, ops)))
        const serial = freshStorage(false)
        const serialOutcomes: string[] = []
        for (const ops of txs) serialOutcomes.push(await run(serial, ops))
        expect(outcomes).toEqual(serialOutcomes)
        expect(concurrent.snapshot()).toEqual(serial.snapshot())
        expect(invariantsHold(concurrent.snapshot())).toBe(true)
      }),
      { numRuns: 60 },
    )
  })
})
