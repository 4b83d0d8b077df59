/**
 * The storage contract suite: the behaviour every {@link StoragePort} adapter must have
 * (memory, Kysely on PostgreSQL / PGlite / SQLite / MySQL, a host's own).
 *
 * @module
 */

import { normalizeEmail } from '../../model/email.js'
import { type JsonObject, type JsonValue, jsonWithinLimits } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'
import type { AuthIdentity, Member, Organization, OrganizationDomain, User, UserEmail } from '../../model/records.js'
import {
  isStorageConflict,
  type MemberPage,
  type NewRows,
  type PendingWork,
  type PendingWorkStore,
  type StateSwap,
  type StoragePort,
  type StorageReader,
  type StorageTx,
} from '../../ports/storage.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser, primaryEmailOf } from '../fixtures.js'
import { assert, assertConflict, assertEqual, ContractAssertionError, rejection, show } from './assert.js'
import type { ContractCase, ContractSuite } from './suite.js'

/**
 * Host-owned rows that the port itself cannot write (organizations belong to the host; the
 * port only creates a user's primary address). See {@link ContractStorage.seedHostData}.
 * @group Testing
 */
export interface HostSeedData {
  readonly organizations?: readonly Organization[] | undefined
  /** Extra (secondary) address rows of users that already exist. */
  readonly userEmails?: readonly UserEmail[] | undefined
}

/**
 * What an adapter must provide to run {@link storageContract}: the {@link StoragePort} under
 * test plus one seeding hook for host-owned rows. Everything else (users, identities,
 * members, providers, pipeline states, tokens) is written through the port itself.
 * @group Testing
 */
export interface ContractStorage extends StoragePort {
  /**
   * Inserts organizations and extra user address rows directly (outside the port), committed
   * when the returned promise resolves. Called only with rows that do not exist yet.
   */
  seedHostData(data: HostSeedData): Promise<void> | void
}

/**
 * The clock shared by the suite and the storage: `now()` must be the clock the storage uses
 * for pipeline-state expiry (`load`, `compareAndSet`); `advance(ms)` moves it forward.
 * `fixedClock()` from `ssoflow/testing` fits.
 * @group Testing
 */
export interface ContractClock {
  now(): Date
  advance(ms: number): void
}

/**
 * Options of {@link storageContract}.
 * @group Testing
 */
export interface StorageContractOptions {
  /** Suite name, e.g. `memory` or `kysely/postgres`. */
  readonly name: string
  /**
   * Returns a fresh, EMPTY storage for one case (a new in-memory store, a new schema or
   * database, or truncated tables), wired to {@link StorageContractOptions.clock}. Cases may
   * run concurrently when the runner does so; each gets its own storage.
   */
  createStorage(): Promise<ContractStorage> | ContractStorage
  /** Releases what `createStorage` made (drop the schema, close the pool). Runs after every case. */
  destroy?: ((storage: ContractStorage) => Promise<void> | void) | undefined
  /** The storage's clock. Cases only move it forward and only use times relative to `now()`. */
  readonly clock: ContractClock
  /** How many concurrent callers the race cases start. Default 20. */
  readonly concurrency?: number | undefined
}

const ORG_A = 'org-a'
const ORG_B = 'org-b'
const PROV_A = 'prov-a'
const PROV_B = 'prov-b'
const EXACT = new Date('2026-03-04T05:06:07.891Z')
/** How long a call through the storage from inside a transaction may take before it counts as waiting for it. */
const OUTER_CALL_TIMEOUT_MS = 5_000

const users = (count: number, prefix = 'user'): User[] =>
  Array.from({ length: count }, (_, i) => makeUser({ id: `${prefix}-${String(i + 1).padStart(2, '0')}` }))

async function createUsers(s: StoragePort, list: readonly User[]): Promise<void> {
  await s.transaction(async (tx) => {
    for (const u of list) await tx.createUser(u, primaryEmailOf(u))
  })
}

/** Two organizations, a provider for each, and three users (user-01..03). */
async function base(s: ContractStorage): Promise<User[]> {
  await s.seedHostData({ organizations: [makeOrganization({ id: ORG_A }), makeOrganization({ id: ORG_B })] })
  const list = users(3)
  await createUsers(s, list)
  await s.transaction(async (tx) => {
    await tx.createAuthProvider(makeProvider({ id: PROV_A, organizationId: ORG_A }))
    await tx.createAuthProvider(makeProvider({ id: PROV_B, organizationId: ORG_B }))
  })
  return list
}

const run = <T>(s: StoragePort, fn: (tx: StorageTx) => Promise<T>): Promise<T> => s.transaction(fn)

/**
 * Builds the storage contract suite. Bind it with `registerSuite` to any runner.
 *
 * Requirements on the adapter (all checked by cases):
 * - every method of {@link StoragePort}, `null`/`[]` for absent rows, `false`/`0` for writes
 *   that match nothing;
 * - unique constraints of spec 1.2 on create and update, thrown as `StorageConflictError` with
 *   the constraint name; nullable unique columns (member user, member email, invite token)
 *   allow any number of nulls;
 * - transactions that roll back everything on a throw (including a conflict) and rethrow the
 *   error unchanged; concurrent transactions serialised by `lockIdentity` and `lockEmail`;
 * - `acceptInvite` as one guarded write: a pending invite is accepted at most once;
 * - `lockIdentity` / `lockAuthProvider` return the provider row as the transaction sees it, and
 *   hold it: a concurrent `lockAuthProvider(…, 'update')` that deletes the row waits for the
 *   holders, and later holders see `null` (no identity outlives its provider; of two concurrent
 *   disables one finds the row);
 * - exact comparisons: `findUsersByEmail` compares the normalized column byte-for-byte (no
 *   case-, accent- or trailing-space-insensitive collation);
 * - ordering by `id` in code-unit order for ids made of lowercase ASCII, digits and dashes;
 * - `Date` values round-trip with millisecond precision; JSON values round-trip (key order free),
 *   including every string the identity boundary lets through (control characters but U+0000,
 *   astral characters, {@link LIMITS}.dataDepth levels);
 * - calls on the storage itself from inside `transaction(fn)` join that transaction (see its
 *   writes, roll back with it) or throw; they never run beside it nor wait for it;
 * - a write that failed inside a transaction never lets it resolve with its other writes lost (a
 *   PostgreSQL `COMMIT` after a failed statement is a silent `ROLLBACK`): fail the transaction;
 * - a host's unique index on the users' address, if any, is reported as `user.email`;
 * - pipeline states: create/load/compareAndSet/delete/deleteExpired with expiry by the clock;
 *   one-time tokens: create/peek/consume, purpose-bound, expiry by `now`, single use;
 * - when offered (optional): verified domains (`listOrganizationDomains`, `findVerifiedDomains`,
 *   `tx.createOrganizationDomain`, `tx.verifyOrganizationDomain`, `tx.deleteOrganizationDomain`):
 *   one claim per (organization, domain), at most one verified organization per domain, also
 *   under N concurrent verifications (exactly one commits);
 * - when offered (optional): `tx.pipelineStates` and `tx.oneTimeTokens` roll back with the
 *   transaction; `getOrganizationWithProvider` and `tx.readLinkedIdentity` answer as the reads
 *   they combine.
 *
 * Not covered (adapter-specific): duplicate primary keys, the `user_email.user_email`
 * constraint (the port cannot reach it), audit rows (the port has no audit read).
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest'
 * import type { StorageSeedData } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { fixedClock, registerSuite, storageContract } from 'ssoflow/testing'
 *
 * const clock = fixedClock()
 * registerSuite(
 *   storageContract({
 *     name: 'memory',
 *     clock,
 *     createStorage: () => {
 *       const storage = createMemoryStorage({ clock })
 *       return Object.assign(storage, { seedHostData: (data: StorageSeedData) => storage.seed(data) })
 *     },
 *   }),
 *   { describe, it },
 * )
 * ```
 * @group Testing
 */
export function storageContract(options: StorageContractOptions): ContractSuite {
  const { clock } = options
  const n = options.concurrency ?? 20
  const at = (ms: number): Date => new Date(clock.now().getTime() + ms)
  const cases: ContractCase[] = []
  const test = (name: string, body: (s: ContractStorage) => Promise<void>): void => {
    cases.push({
      name,
      async run() {
        const storage = await options.createStorage()
        try {
          await body(storage)
        } finally {
          await options.destroy?.(storage)
        }
      },
    })
  }

  // ---------------------------------------------------------------- reads and writes

  test('reads return null or [] for absent rows', async (s) => {
    await s.seedHostData({ organizations: [makeOrganization({ id: ORG_A })] })
    const check = async (tx: StorageTx | StoragePort, where: string) => {
      assertEqual(await tx.getOrganization('nope'), null, `${where} getOrganization`)
      assertEqual(await tx.getAuthProvider(ORG_A), null, `${where} getAuthProvider`)
      assertEqual(await tx.getAuthProviderById('nope'), null, `${where} getAuthProviderById`)
      assertEqual(await tx.getIdentity(PROV_A, 'nope'), null, `${where} getIdentity`)
      assertEqual(await tx.getIdentityById('nope'), null, `${where} getIdentityById`)
      assertEqual(await tx.getIdentityForUser(PROV_A, 'nope'), null, `${where} getIdentityForUser`)
      assertEqual(await tx.listIdentitiesForUser('nope'), [], `${where} listIdentitiesForUser`)
      assertEqual(await tx.getLinkedIdentity(PROV_A, 'nope', ORG_A), null, `${where} getLinkedIdentity`)
      assertEqual(await tx.getUser('nope'), null, `${where} getUser`)
      assertEqual(await tx.findUsersByEmail('nope@example.com'), [], `${where} findUsersByEmail`)
      assertEqual(await tx.getMember(ORG_A, 'nope'), null, `${where} getMember`)
      assertEqual(await tx.getMemberById('nope'), null, `${where} getMemberById`)
      assertEqual(await tx.getInviteByEmail(ORG_A, 'nope@example.com'), null, `${where} getInviteByEmail`)
      assertEqual(await tx.listMembers(ORG_A, { limit: 10 }), [], `${where} listMembers`)
      assertEqual(await tx.listIdentities(PROV_A, { limit: 10 }), [], `${where} listIdentities`)
    }
    await check(s, 'outside a transaction:')
    await run(s, (tx) => check(tx, 'inside a transaction:'))
    assertEqual(await s.pipelineStates.load('nope'), null, 'pipelineStates.load')
    assertEqual(await s.oneTimeTokens.peek('nope', 'verify', clock.now()), null, 'oneTimeTokens.peek')
    assertEqual(await s.oneTimeTokens.consume('nope', 'verify', clock.now()), null, 'oneTimeTokens.consume')
    assertEqual(await s.pipelineStates.deleteExpired(clock.now()), 0, 'deleteExpired on an empty store')
    await s.pipelineStates.delete('nope')
  })

  test('writes that match no row return false or 0 and change nothing', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01' }))
    })
    await run(s, async (tx) => {
      assertEqual(await tx.updateIdentity('nope', { ident: 'x' }), false, 'updateIdentity')
      assertEqual(await tx.deleteIdentity('nope'), false, 'deleteIdentity')
      assertEqual(await tx.deleteIdentitiesForUser(PROV_A, 'user-02', null), 0, 'deleteIdentitiesForUser')
      assertEqual(await tx.deleteIdentitiesForProvider('nope'), 0, 'deleteIdentitiesForProvider')
      assertEqual(await tx.updateMember('nope', { role: 'admin' }), false, 'updateMember')
      assertEqual(await tx.deleteMember('nope'), false, 'deleteMember')
      assertEqual(await tx.setFlagsForOrganization('nope', { ssoLinked: true }), 0, 'setFlagsForOrganization')
      assertEqual(await tx.updateAuthProvider('nope', { allowUnlinked: true }), false, 'updateAuthProvider')
      assertEqual(await tx.deleteAuthProvider('nope'), false, 'deleteAuthProvider')
      assertEqual(await tx.updateOrganization('nope', { require2fa: true }), false, 'updateOrganization')
    })
    assert((await s.getIdentityById('ident-1')) !== null, 'the existing identity is still there')
    assert((await s.getMemberById('mem-1')) !== null, 'the existing member is still there')
    assertEqual(await s.getOrganization('nope'), null, 'updateOrganization did not create a row')
  })

  test('created rows read back equal: millisecond dates and JSON data round-trip', async (s) => {
    await s.seedHostData({ organizations: [makeOrganization({ id: ORG_A, name: 'Acme ✓', require2fa: true, defaultRole: 'admin' })] })
    const data = {
      access_token: 'tok"en\\with\nescapes',
      nested: { list: [1, 2.5, -7, 'x', true, false, null, { deep: ['ü', '日本', '😀'] }] },
      empty: {},
      emptyList: [],
      big: 9007199254740991,
    }
    const user = makeUser({ id: 'user-01', name: 'Zoë 😀', has2fa: true, hasUsablePassword: false, createdAt: EXACT })
    const provider = makeProvider({
      id: PROV_A,
      organizationId: ORG_A,
      config: data,
      allowUnlinked: true,
      scimEnabled: true,
      createdAt: EXACT,
    })
    const identity = makeIdentity({
      id: 'ident-1',
      authProviderId: PROV_A,
      userId: user.id,
      ident: 'Ext|ID-1',
      data,
      lastVerified: new Date(EXACT.getTime() + 1),
      lastSynced: new Date(EXACT.getTime() + 2),
      createdAt: new Date(EXACT.getTime() + 3),
    })
    const member = makeMember({
      id: 'mem-1',
      organizationId: ORG_A,
      email: 'Invitee@Example.com',
      role: 'manager',
      flags: { ssoLinked: false, ssoInvalid: true, memberLimitRestricted: true, idpProvisioned: false, idpRoleRestricted: true },
      inviteTokenHash: 'a'.repeat(64),
      inviteExpiresAt: new Date(EXACT.getTime() + 999),
      inviteStatus: 'requested_to_join',
      createdAt: EXACT,
    })
    await run(s, async (tx) => {
      await tx.createUser(user, primaryEmailOf(user))
      await tx.createAuthProvider(provider)
      await tx.createIdentity(identity)
      await tx.createMember(member)
    })
    assertEqual(
      await s.getOrganization(ORG_A),
      makeOrganization({ id: ORG_A, name: 'Acme ✓', require2fa: true, defaultRole: 'admin' }),
      'organization',
    )
    assertEqual(await s.getUser(user.id), user, 'user')
    assertEqual(await s.getAuthProvider(ORG_A), provider, 'provider by organization')
    assertEqual(await s.getAuthProviderById(PROV_A), provider, 'provider by id')
    assertEqual(await s.getIdentity(PROV_A, 'Ext|ID-1'), identity, 'identity by ident')
    assertEqual(await s.getIdentityById('ident-1'), identity, 'identity by id')
    assertEqual(await s.getIdentityForUser(PROV_A, user.id), identity, 'identity by user')
    assertEqual(await s.getMemberById('mem-1'), member, 'member')
    const got = await s.getUser(user.id)
    assert(got?.createdAt instanceof Date, 'dates come back as Date instances')
    assertEqual(await s.findUsersByEmail(primaryEmailOf(user).emailNormalized), [{ user, email: primaryEmailOf(user) }], 'primary address')
  })

  test('transaction resolves with the callback value; reads inside see the transaction writes', async (s) => {
    await base(s)
    const value = await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      assert((await tx.getIdentity(PROV_A, 'ext-1')) !== null, 'a transaction reads its own insert')
      assertEqual(await tx.updateIdentity('ident-1', { ident: 'ext-2' }), true, 'update in the same transaction')
      assertEqual(await tx.getIdentity(PROV_A, 'ext-1'), null, 'the old key is gone inside the transaction')
      return { answer: 42 }
    })
    assertEqual(value, { answer: 42 }, 'transaction value')
    assertEqual((await s.getIdentity(PROV_A, 'ext-2'))?.id, 'ident-1', 'committed after the transaction')
  })

  test('updates change the patched fields and nothing else', async (s) => {
    await base(s)
    const identity = makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1', data: { a: 1 } })
    const member = makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01', role: 'member' })
    await run(s, async (tx) => {
      await tx.createIdentity(identity)
      await tx.createMember(member)
    })
    await run(s, async (tx) => {
      assertEqual(await tx.updateIdentity('ident-1', { lastVerified: EXACT, data: { b: [2] } }), true, 'updateIdentity')
      assertEqual(await tx.updateMember('mem-1', { role: 'admin', inviteStatus: 'approved' }), true, 'updateMember')
      assertEqual(await tx.updateAuthProvider(PROV_A, { allowUnlinked: true, config: { k: 'v' } }), true, 'updateAuthProvider')
      assertEqual(await tx.updateOrganization(ORG_A, { require2fa: true }), true, 'updateOrganization')
    })
    assertEqual(await s.getIdentityById('ident-1'), { ...identity, lastVerified: EXACT, data: { b: [2] } }, 'identity after update')
    assertEqual(await s.getMemberById('mem-1'), { ...member, role: 'admin' }, 'member after update')
    assertEqual(
      await s.getAuthProviderById(PROV_A),
      { ...makeProvider({ id: PROV_A, organizationId: ORG_A }), allowUnlinked: true, config: { k: 'v' } },
      'provider after update',
    )
    assertEqual(await s.getOrganization(ORG_A), { ...makeOrganization({ id: ORG_A }), require2fa: true }, 'organization after update')
    assertEqual(await s.getOrganization(ORG_B), makeOrganization({ id: ORG_B }), 'the other organization is unchanged')
    assertEqual(await s.getAuthProviderById(PROV_B), makeProvider({ id: PROV_B, organizationId: ORG_B }), 'the other provider is unchanged')
  })

  test('deletes remove exactly the addressed rows', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01' }))
      await tx.createMember(makeMember({ id: 'mem-2', organizationId: ORG_A, userId: 'user-02' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' }))
    })
    await run(s, async (tx) => {
      assertEqual(await tx.deleteMember('mem-1'), true, 'deleteMember')
      assertEqual(await tx.deleteIdentity('ident-1'), true, 'deleteIdentity')
      assertEqual(await tx.deleteAuthProvider(PROV_B), true, 'deleteAuthProvider')
    })
    assertEqual(await s.getMemberById('mem-1'), null, 'deleted member')
    assertEqual((await s.getMemberById('mem-2'))?.id, 'mem-2', 'other member kept')
    assertEqual(await s.getIdentityById('ident-1'), null, 'deleted identity')
    assertEqual((await s.getIdentityById('ident-2'))?.id, 'ident-2', 'other identity kept')
    assertEqual(await s.getAuthProvider(ORG_B), null, 'deleted provider')
    assertEqual((await s.getAuthProvider(ORG_A))?.id, PROV_A, 'other provider kept')
    await run(s, async (tx) => {
      assertEqual(await tx.deleteMember('mem-1'), false, 'a second delete finds nothing')
    })
  })

  test('returned records are copies and stored records are copies of the input', async (s) => {
    await base(s)
    const identity = makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1', data: { list: [1] } })
    const input = structuredClone(identity) as { -readonly [K in keyof AuthIdentity]: AuthIdentity[K] }
    await run(s, (tx) => tx.createIdentity(input))
    input.ident = 'mutated'
    ;(input.data.list as number[]).push(2)
    input.lastVerified.setTime(0)
    const read = (await s.getIdentityById('ident-1')) as { -readonly [K in keyof AuthIdentity]: AuthIdentity[K] } | null
    assert(read !== null, 'identity exists')
    assertEqual(read, identity, 'mutating the input after create does not change the stored row')
    read.ident = 'mutated'
    ;(read.data.list as number[]).push(3)
    read.lastSynced.setTime(0)
    assertEqual(await s.getIdentityById('ident-1'), identity, 'mutating a returned record does not change the stored row')
  })

  // ---------------------------------------------------------------- unique constraints

  test('unique auth_provider.organization on create', async (s) => {
    await base(s)
    await assertConflict(
      run(s, (tx) => tx.createAuthProvider(makeProvider({ id: 'prov-a2', organizationId: ORG_A, providerKey: 'oidc' }))),
      'auth_provider.organization',
      'second provider for an organization',
    )
    assertEqual(await s.getAuthProviderById('prov-a2'), null, 'nothing written')
    assertEqual((await s.getAuthProvider(ORG_A))?.id, PROV_A, 'the first provider is unchanged')
  })

  test('unique auth_identity.provider_ident on create and update', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' }))
    })
    await assertConflict(
      run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-3', authProviderId: PROV_A, userId: 'user-03', ident: 'ext-1' }))),
      'auth_identity.provider_ident',
      'create with a taken (provider, ident)',
    )
    await assertConflict(
      run(s, (tx) => tx.updateIdentity('ident-2', { ident: 'ext-1' })),
      'auth_identity.provider_ident',
      'update to a taken ident',
    )
    assertEqual(await s.getIdentityById('ident-3'), null, 'nothing created')
    assertEqual((await s.getIdentityById('ident-2'))?.ident, 'ext-2', 'the updated row is unchanged')
    await run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-4', authProviderId: PROV_B, userId: 'user-01', ident: 'ext-1' })))
    assertEqual((await s.getIdentity(PROV_B, 'ext-1'))?.id, 'ident-4', 'the same ident under another provider is allowed')
    await run(s, async (tx) => {
      assertEqual(
        await tx.updateIdentity('ident-1', { ident: 'ext-1', lastSynced: EXACT }),
        true,
        'updating a row to its own key is allowed',
      )
    })
  })

  test('unique auth_identity.provider_user on create and update', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' }))
    })
    await assertConflict(
      run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-3', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-3' }))),
      'auth_identity.provider_user',
      'a second identity for a user and provider',
    )
    await assertConflict(
      run(s, (tx) => tx.updateIdentity('ident-2', { userId: 'user-01' })),
      'auth_identity.provider_user',
      'update to a taken user',
    )
    assertEqual(await s.getIdentityById('ident-3'), null, 'nothing created')
    assertEqual((await s.getIdentityById('ident-2'))?.userId, 'user-02', 'the updated row is unchanged')
  })

  test('unique member.organization_user on create and update', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01' }))
      await tx.createMember(makeMember({ id: 'mem-2', organizationId: ORG_A, userId: 'user-02' }))
    })
    await assertConflict(
      run(s, (tx) => tx.createMember(makeMember({ id: 'mem-3', organizationId: ORG_A, userId: 'user-01' }))),
      'member.organization_user',
      'second membership of a user',
    )
    await assertConflict(
      run(s, (tx) => tx.updateMember('mem-2', { userId: 'user-01' })),
      'member.organization_user',
      'update to a taken user',
    )
    assertEqual(await s.getMemberById('mem-3'), null, 'nothing created')
    assertEqual((await s.getMemberById('mem-2'))?.userId, 'user-02', 'the updated row is unchanged')
    await run(s, (tx) => tx.createMember(makeMember({ id: 'mem-4', organizationId: ORG_B, userId: 'user-01' })))
    assertEqual((await s.getMember(ORG_B, 'user-01'))?.id, 'mem-4', 'the same user in another organization is allowed')
  })

  test('unique member.organization_email on create and update', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, email: 'a@example.com' }))
      await tx.createMember(makeMember({ id: 'mem-2', organizationId: ORG_A, email: 'b@example.com' }))
    })
    await assertConflict(
      run(s, (tx) => tx.createMember(makeMember({ id: 'mem-3', organizationId: ORG_A, email: 'a@example.com' }))),
      'member.organization_email',
      'second invite for an address',
    )
    await assertConflict(
      run(s, (tx) => tx.updateMember('mem-2', { email: 'a@example.com', emailNormalized: 'a@example.com' })),
      'member.organization_email',
      'update to a taken address',
    )
    assertEqual(await s.getMemberById('mem-3'), null, 'nothing created')
    assertEqual((await s.getMemberById('mem-2'))?.emailNormalized, 'b@example.com', 'the updated row is unchanged')
    await run(s, (tx) => tx.createMember(makeMember({ id: 'mem-4', organizationId: ORG_B, email: 'a@example.com' })))
    assertEqual((await s.getInviteByEmail(ORG_B, 'a@example.com'))?.id, 'mem-4', 'the same address in another organization is allowed')
  })

  test('unique member.invite_token on create and update', async (s) => {
    await base(s)
    const h1 = '1'.repeat(64)
    const h2 = '2'.repeat(64)
    await run(s, async (tx) => {
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, email: 'a@example.com', inviteTokenHash: h1 }))
      await tx.createMember(makeMember({ id: 'mem-2', organizationId: ORG_A, email: 'b@example.com', inviteTokenHash: h2 }))
    })
    await assertConflict(
      run(s, (tx) => tx.createMember(makeMember({ id: 'mem-3', organizationId: ORG_B, email: 'c@example.com', inviteTokenHash: h1 }))),
      'member.invite_token',
      'a taken token hash, even in another organization',
    )
    await assertConflict(
      run(s, (tx) => tx.updateMember('mem-2', { inviteTokenHash: h1 })),
      'member.invite_token',
      'update to a taken token hash',
    )
    assertEqual(await s.getMemberById('mem-3'), null, 'nothing created')
    assertEqual((await s.getMemberById('mem-2'))?.inviteTokenHash, h2, 'the updated row is unchanged')
  })

  test('unique user.username on create', async (s) => {
    await base(s)
    const clash = makeUser({ id: 'user-99', username: 'user-01', email: 'other@example.com' })
    await assertConflict(
      run(s, (tx) => tx.createUser(clash, primaryEmailOf(clash))),
      'user.username',
      'a taken username',
    )
    assertEqual(await s.getUser('user-99'), null, 'nothing created')
    assertEqual(await s.findUsersByEmail('other@example.com'), [], 'the primary address was not created either')
  })

  test('nullable unique columns allow many nulls', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      // accepted members: email null, token null
      await tx.createMember(makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01' }))
      await tx.createMember(makeMember({ id: 'mem-2', organizationId: ORG_A, userId: 'user-02' }))
      // pending invites: user null, token null
      await tx.createMember(makeMember({ id: 'mem-3', organizationId: ORG_A, email: 'x@example.com' }))
      await tx.createMember(makeMember({ id: 'mem-4', organizationId: ORG_A, email: 'y@example.com' }))
    })
    assertEqual((await s.listMembers(ORG_A, { limit: 10 })).length, 4, 'all four members exist')
  })

  test('unique pipeline_state.id and one_time_token.hash', async (s) => {
    const state = { id: 'state-1', version: 1, body: 'b1', expiresAt: at(60_000) }
    await s.pipelineStates.create(state)
    await assertConflict(s.pipelineStates.create({ ...state, body: 'b2' }), 'pipeline_state.id', 'a live state id')
    assertEqual((await s.pipelineStates.load('state-1'))?.body, 'b1', 'the first state is unchanged')
    const token = { hash: 'f'.repeat(64), purpose: 'verify', payload: '{"a":1}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(token)
    await assertConflict(s.oneTimeTokens.create({ ...token, payload: '{}' }), 'one_time_token.hash', 'a live token hash')
    assertEqual((await s.oneTimeTokens.peek(token.hash, 'verify', clock.now()))?.payload, '{"a":1}', 'the first token is unchanged')
  })

  // ---------------------------------------------------------------- rollback

  test('a throw rolls back every write of the transaction and is rethrown unchanged', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createMember(
        makeMember({
          id: 'mem-1',
          organizationId: ORG_A,
          userId: 'user-01',
          flags: { ...makeMember({ id: 'x', organizationId: ORG_A }).flags, ssoLinked: true },
        }),
      )
    })
    const before = {
      identity: await s.getIdentityById('ident-1'),
      member: await s.getMemberById('mem-1'),
      org: await s.getOrganization(ORG_A),
      provider: await s.getAuthProviderById(PROV_A),
    }
    const boom = new Error('boom')
    const thrown = await rejection(
      run(s, async (tx) => {
        const u = makeUser({ id: 'user-new' })
        await tx.createUser(u, primaryEmailOf(u))
        await tx.createIdentity(makeIdentity({ id: 'ident-new', authProviderId: PROV_A, userId: 'user-new', ident: 'ext-new' }))
        await tx.updateIdentity('ident-1', { ident: 'ext-changed', data: { changed: true } })
        await tx.setFlagsForOrganization(ORG_A, { ssoLinked: false })
        await tx.createMember(makeMember({ id: 'mem-new', organizationId: ORG_A, userId: 'user-new' }))
        await tx.updateOrganization(ORG_A, { require2fa: true })
        await tx.updateAuthProvider(PROV_A, { allowUnlinked: true })
        await tx.deleteAuthProvider(PROV_B)
        await tx.appendAudit({
          id: 'audit-1',
          event: 'sso.edit',
          actorUserId: null,
          organizationId: ORG_A,
          targetId: null,
          targetUserId: null,
          ip: null,
          data: {},
          createdAt: EXACT,
        })
        throw boom
      }),
      'throwing transaction',
    )
    assert(thrown === boom, `the transaction rethrows the same error, got ${show(thrown)}`)
    assertEqual(await s.getUser('user-new'), null, 'created user rolled back')
    assertEqual(await s.findUsersByEmail('user-new@example.com'), [], 'created address rolled back')
    assertEqual(await s.getIdentityById('ident-new'), null, 'created identity rolled back')
    assertEqual(await s.getMemberById('mem-new'), null, 'created member rolled back')
    assertEqual(await s.getIdentityById('ident-1'), before.identity, 'updated identity rolled back')
    assertEqual(await s.getMemberById('mem-1'), before.member, 'member flags rolled back')
    assertEqual(await s.getOrganization(ORG_A), before.org, 'organization rolled back')
    assertEqual(await s.getAuthProviderById(PROV_A), before.provider, 'provider update rolled back')
    assert((await s.getAuthProviderById(PROV_B)) !== null, 'provider delete rolled back')
  })

  test('a conflict inside a transaction rolls back its earlier writes', async (s) => {
    await base(s)
    await run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' })))
    await assertConflict(
      run(s, async (tx) => {
        const u = makeUser({ id: 'user-new' })
        await tx.createUser(u, primaryEmailOf(u))
        await tx.createMember(makeMember({ id: 'mem-new', organizationId: ORG_A, userId: 'user-new' }))
        await tx.deleteIdentitiesForUser(PROV_A, 'user-01', null)
        await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' }))
        await tx.createIdentity(makeIdentity({ id: 'ident-3', authProviderId: PROV_A, userId: 'user-03', ident: 'ext-2' }))
      }),
      'auth_identity.provider_ident',
      'the conflicting write',
    )
    assertEqual(await s.getUser('user-new'), null, 'user rolled back')
    assertEqual(await s.getMemberById('mem-new'), null, 'member rolled back')
    assertEqual(await s.getIdentityById('ident-2'), null, 'first identity rolled back')
    assert((await s.getIdentityById('ident-1')) !== null, 'delete rolled back')
    // the storage is still usable after the failed transaction
    await run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' })))
    assert((await s.getIdentityById('ident-2')) !== null, 'a later transaction commits')
  })

  test('a conflict caught inside transaction(fn) never ends in a silent rollback', async (s) => {
    // PostgreSQL aborts a transaction on a failed statement and answers its COMMIT with ROLLBACK,
    // without an error: an adapter must not then report success with nothing written.
    await base(s)
    await run(s, (tx) => tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' })))
    const variants = [
      { name: 'then returns', user: 'user-x', writeAfter: false },
      { name: 'then writes again', user: 'user-y', writeAfter: true },
    ]
    for (const v of variants) {
      let caught: unknown = null
      const outcome = await run(s, async (tx) => {
        const u = makeUser({ id: v.user })
        await tx.createUser(u, primaryEmailOf(u))
        try {
          await tx.createIdentity(makeIdentity({ id: `dup-${v.user}`, authProviderId: PROV_A, userId: 'user-02', ident: 'ext-1' }))
        } catch (error) {
          caught = error
        }
        if (v.writeAfter) await tx.createMember(makeMember({ id: `mem-${v.user}`, organizationId: ORG_A, userId: v.user }))
        return 'resolved'
      }).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
      assert(isStorageConflict(caught), `${v.name}: the duplicate insert threw a conflict inside the transaction, got ${show(caught)}`)
      if (outcome.ok) {
        assert(
          (await s.getUser(v.user)) !== null,
          `${v.name}: the transaction resolved, so its write before the caught conflict is committed`,
        )
        if (v.writeAfter) {
          assert(
            (await s.getMemberById(`mem-${v.user}`)) !== null,
            `${v.name}: the transaction resolved, so its write after the caught conflict is committed`,
          )
        }
      } else {
        assertEqual(await s.getUser(v.user), null, `${v.name}: the transaction failed, so it rolled back`)
      }
    }
    assertEqual((await s.getIdentity(PROV_A, 'ext-1'))?.id, 'ident-1', 'the first identity is untouched')
  })

  test('calls on the storage itself from inside transaction(fn) join the transaction or are refused', async (s) => {
    // The engine may reach the storage's own token store from inside a transaction. Such a call
    // must act in the transaction (see its writes, roll back with it) or throw; run beside it (on
    // another connection) it makes a consumed link outlive a rollback, and on one connection it
    // waits for the transaction that waits for it.
    await base(s)
    const kept = { hash: 'c'.repeat(64), purpose: 'verify-email', payload: '{"k":1}', expiresAt: at(60_000) }
    const made = { hash: 'd'.repeat(64), purpose: 'verify-email', payload: '{"k":2}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(kept)
    const outer = async <T>(what: string, call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const hung = new Promise<'hung'>((resolve) => {
        timer = setTimeout(() => resolve('hung'), OUTER_CALL_TIMEOUT_MS)
      })
      try {
        const result = await Promise.race([call().then((value) => ({ ok: true as const, value })), hung])
        if (result === 'hung') {
          throw new ContractAssertionError(
            `${what} through the storage from inside a transaction waited ${OUTER_CALL_TIMEOUT_MS} ms (it waits for the transaction that waits for it): it must join the transaction or throw`,
          )
        }
        return result
      } catch (error) {
        if (error instanceof ContractAssertionError) throw error
        return { ok: false }
      } finally {
        clearTimeout(timer)
      }
    }
    const boom = new Error('roll back')
    const created = makeUser({ id: 'user-new' })
    const thrown = await rejection(
      run(s, async (tx) => {
        await tx.createUser(created, primaryEmailOf(created))
        const read = await outer('getUser', () => s.getUser(created.id))
        if (read.ok) assertEqual(read.value, created, 'a read through the storage inside the transaction sees its writes (joins it)')
        const consumed = await outer('oneTimeTokens.consume', () => s.oneTimeTokens.consume(kept.hash, kept.purpose, clock.now()))
        if (consumed.ok) assertEqual(consumed.value, kept, 'a consume through the storage inside the transaction returns the token')
        await outer('oneTimeTokens.create', () => s.oneTimeTokens.create(made))
        throw boom
      }),
      'throwing transaction',
    )
    if (thrown instanceof ContractAssertionError) throw thrown
    assert(thrown === boom, `the transaction rethrows the same error, got ${show(thrown)}`)
    assertEqual(await s.getUser(created.id), null, 'the user is rolled back')
    assertEqual(
      await s.oneTimeTokens.peek(kept.hash, kept.purpose, clock.now()),
      kept,
      'a token consumed through the storage inside the transaction is live again after the rollback (the consume joined it, or was refused)',
    )
    assertEqual(
      await s.oneTimeTokens.peek(made.hash, made.purpose, clock.now()),
      null,
      'a token created through the storage inside the transaction is gone after the rollback (the create joined it, or was refused)',
    )
  })

  test('identity data that passes the boundary round-trips exactly (control characters, astral, escapes, full depth)', async (s) => {
    // parseIdentity refuses U+0000, lone surrogates and deeper nesting at the boundary
    // (IDENTITY_INVALID); everything else the IdP may send must be stored as is, never fail as a
    // storage error (retryable, forever) nor come back changed.
    await base(s)
    const controls = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('')
    const deep = (depth: number): JsonValue =>
      depth === 0 ? 'bottom' : depth % 2 === 0 ? [deep(depth - 1)] : { [`level${depth}`]: deep(depth - 1) }
    const data: JsonObject = {
      controls,
      separators: '\u007f\u0085\u2028\u2029\ufeff\uffff\ufffe',
      astral: '😀𝄞\u{10ffff}',
      escapes: '\\u0000 \\ud800 "quoted" \\n',
      composed: 'é',
      decomposed: 'e\u0301',
      'key.with.dots': 1,
      $dollar: 2,
      '': 'empty key',
      [controls]: 'control-character key',
      numbers: [0, -1, 1.5, 1e308, 5e-324, 9007199254740991, -9007199254740991],
      deep: deep(LIMITS.dataDepth - 1),
    }
    assert(jsonWithinLimits(data), 'the case stays inside the boundary (parseIdentity accepts this data)')
    const identity = makeIdentity({ id: 'ident-odd', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-😀\u0001|odd', data })
    const user = makeUser({ id: 'user-odd', name: `Zoë\u0001\u2028😀${controls}` })
    await run(s, async (tx) => {
      await tx.createUser(user, primaryEmailOf(user))
      await tx.createIdentity(identity)
    })
    assertEqual(await s.getIdentityById('ident-odd'), identity, 'identity data round-trips')
    assertEqual(await s.getIdentity(PROV_A, identity.ident), identity, 'an external id with control and astral characters is found exactly')
    assertEqual(await s.getUser(user.id), user, 'a name with control and astral characters round-trips')
    const changed = { ...data, deep: { replaced: deep(LIMITS.dataDepth - 2) } }
    await run(s, (tx) => tx.updateIdentity('ident-odd', { data: changed }))
    assertEqual((await s.getIdentityById('ident-odd'))?.data, changed, 'updated identity data round-trips')
  })

  test('a unique index on the users’ address is reported as user.email, never as another constraint', async (s) => {
    // ssoflow needs no such index, but a host's users table may have one. An inactive account can
    // hold the address (the email lookup skips inactive users): the engine must be told it is the
    // address (IDENTITY_CONFLICT, not retried) and not a username clash (retried, forever).
    await base(s)
    const first = makeUser({ id: 'user-mail-1', email: 'Taken@Example.com' })
    await createUsers(s, [first])
    const second = makeUser({ id: 'user-mail-2', email: 'Taken@Example.com' })
    const outcome = await run(s, (tx) => tx.createUser(second, primaryEmailOf(second))).then(
      () => null,
      (error: unknown) => error,
    )
    if (outcome !== null) {
      assert(
        isStorageConflict(outcome) && outcome.constraint === 'user.email',
        `a second user with a taken address is stored, or refused as StorageConflictError('user.email'); got ${show(
          isStorageConflict(outcome) ? { constraint: outcome.constraint } : String(outcome),
        )}`,
      )
      assertEqual(await s.getUser(second.id), null, 'the refused user is not stored')
    } else {
      assertEqual(await s.getUser(second.id), second, 'the second user is stored')
    }
    assertEqual(await s.getUser(first.id), first, 'the first user is untouched')
  })

  // ---------------------------------------------------------------- concurrency

  test(`${n} concurrent read-modify-write transactions under lockIdentity behave serially`, async (s) => {
    await base(s)
    await run(s, (tx) => tx.createMember(makeMember({ id: 'counter', organizationId: ORG_A, email: 'counter@example.com', role: '0' })))
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        run(s, async (tx) => {
          await tx.lockIdentity(PROV_A, 'counter')
          const counter = await tx.getMemberById('counter')
          assert(counter !== null, 'counter row exists')
          const value = Number(counter.role)
          await tx.createMember(
            makeMember({ id: `slot-${String(i).padStart(3, '0')}`, organizationId: ORG_A, email: `slot-${value}@example.com` }),
          )
          await tx.updateMember('counter', { role: String(value + 1) })
          return value
        }),
      ),
    )
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `every transaction commits (first failure: ${show(failures[0])})`)
    const seen = results.map((r) => (r.status === 'fulfilled' ? r.value : -1)).sort((a, b) => a - b)
    assertEqual(
      seen,
      Array.from({ length: n }, (_, i) => i),
      'each transaction saw a distinct counter value 0..n-1 (no lost updates)',
    )
    assertEqual((await s.getMemberById('counter'))?.role, String(n), 'the counter equals the number of transactions')
    assertEqual((await s.listMembers(ORG_A, { limit: n + 10 })).length, n + 1, 'every transaction inserted its row')
  })

  test(`${n} concurrent finishes for one identity under lockIdentity create exactly one row`, async (s) => {
    await base(s)
    const racers = users(n, 'racer')
    await createUsers(s, racers)
    const results = await Promise.allSettled(
      racers.map((u, i) =>
        run(s, async (tx) => {
          await tx.lockIdentity(PROV_A, 'shared-ext')
          if ((await tx.getIdentity(PROV_A, 'shared-ext')) !== null) return 'found'
          await tx.createIdentity(
            makeIdentity({ id: `ident-${String(i).padStart(3, '0')}`, authProviderId: PROV_A, userId: u.id, ident: 'shared-ext' }),
          )
          return 'created'
        }),
      ),
    )
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `no transaction fails (first failure: ${show(failures[0])})`)
    const created = results.filter((r) => r.status === 'fulfilled' && r.value === 'created')
    assertEqual(created.length, 1, 'exactly one transaction created the identity')
    assertEqual((await s.listIdentities(PROV_A, { limit: n + 10 })).length, 1, 'exactly one identity row')
  })

  test(`${n} concurrent sign-ups with one address under lockEmail create exactly one user`, async (s) => {
    await base(s)
    // The address in several spellings: the lock is on the normalized form, as the engine takes it.
    const spellings = ['Shared@Example.com', 'shared@example.com', 'SHARED@EXAMPLE.COM']
    const racers = Array.from({ length: n }, (_, i) =>
      makeUser({ id: `racer-${String(i).padStart(3, '0')}`, email: spellings[i % spellings.length] as string }),
    )
    const address = normalizeEmail('shared@example.com')
    const results = await Promise.allSettled(
      racers.map((u) =>
        run(s, async (tx) => {
          await tx.lockEmail(address)
          if ((await tx.findUsersByEmail(address)).length > 0) return 'found'
          await tx.createUser(u, primaryEmailOf(u))
          return 'created'
        }),
      ),
    )
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `no transaction fails (first failure: ${show(failures[0])})`)
    assertEqual(
      results.filter((r) => r.status === 'fulfilled' && r.value === 'created').length,
      1,
      'exactly one transaction created a user',
    )
    assertEqual((await s.findUsersByEmail(address)).length, 1, 'exactly one active user has the address')
  })

  test(`${n} concurrent sign-ups through the optional sign-up calls (both locks, one read, one write, when offered): one account, each read consistent`, async (s) => {
    const probe = await run(s, async (tx) => ({
      lock: tx.lockIdentityAndEmail !== undefined,
      read: tx.readSignUp !== undefined,
      rows: tx.createRows !== undefined,
    }))
    if (!probe.lock && !probe.read && !probe.rows) return
    await base(s)
    const address = normalizeEmail('joiner@example.com')
    const provA = await s.getAuthProviderById(PROV_A)
    // The reads answer as the three reads they combine, before and after an account exists.
    await run(s, async (tx) => {
      if (tx.lockIdentityAndEmail) assertEqual(await tx.lockIdentityAndEmail(PROV_A, 'joiner', address), provA, 'returns the provider row')
      if (tx.lockIdentityAndEmail)
        assertEqual(await tx.lockIdentityAndEmail('nope', 'joiner', address), null, 'null for an absent provider')
      if (tx.readSignUp) {
        assertEqual(await tx.readSignUp(PROV_A, 'joiner', ORG_A, address), { linked: null, emailMatches: [], invite: null }, 'nothing yet')
      }
    })
    const invite = makeMember({ id: 'mem-inv', organizationId: ORG_A, email: 'joiner@example.com', emailNormalized: address })
    const other = makeUser({ id: 'user-other', email: 'Joiner@Example.com' })
    await run(s, async (tx) => {
      await tx.createMember(invite)
      await tx.createUser(other, primaryEmailOf(other))
      await tx.createIdentity(makeIdentity({ id: 'ident-o', authProviderId: PROV_A, userId: other.id, ident: 'other' }))
      await tx.createMember(makeMember({ id: 'mem-o', organizationId: ORG_A, userId: other.id }))
    })
    if (probe.read) {
      await run(s, async (tx) => {
        const read = tx.readSignUp
        if (!read) throw new Error('unreachable')
        for (const [ident, org] of [
          ['other', ORG_A],
          ['other', ORG_B],
          ['joiner', ORG_A],
        ] as const) {
          assertEqual(
            await read(PROV_A, ident, org, address),
            {
              linked: await tx.getLinkedIdentity(PROV_A, ident, org),
              emailMatches: await tx.findUsersByEmail(address),
              invite: await tx.getInviteByEmail(org, address),
            },
            `readSignUp(${ident}, ${org}) answers as getLinkedIdentity, findUsersByEmail and getInviteByEmail`,
          )
        }
      })
    }
    // Racing sign-ups for one identity and one address: one creates the account.
    const racers = users(n, 'joiner')
    const results = await Promise.allSettled(
      racers.map((u, i) =>
        run(s, async (tx) => {
          if (tx.lockIdentityAndEmail) await tx.lockIdentityAndEmail(PROV_A, 'joiner-ext', 'joiner-race@example.com')
          else {
            await tx.lockIdentity(PROV_A, 'joiner-ext')
            await tx.lockEmail('joiner-race@example.com')
          }
          const seen = tx.readSignUp
            ? await tx.readSignUp(PROV_A, 'joiner-ext', ORG_A, 'joiner-race@example.com')
            : {
                linked: await tx.getLinkedIdentity(PROV_A, 'joiner-ext', ORG_A),
                emailMatches: await tx.findUsersByEmail('joiner-race@example.com'),
              }
          if (seen.linked !== null || seen.emailMatches.length > 0) return 'found'
          const user = { ...u, email: 'joiner-race@example.com' }
          const rows = {
            users: [{ user, email: primaryEmailOf(user) }],
            identities: [makeIdentity({ id: `ident-j${i}`, authProviderId: PROV_A, userId: u.id, ident: 'joiner-ext' })],
            members: [makeMember({ id: `mem-j${i}`, organizationId: ORG_A, userId: u.id })],
            audit: [],
          }
          if (tx.createRows) await tx.createRows(rows)
          else {
            await tx.createUser(user, primaryEmailOf(user))
            await tx.createIdentity(rows.identities[0] as AuthIdentity)
            await tx.createMember(rows.members[0] as Member)
          }
          return 'created'
        }),
      ),
    )
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `no transaction fails (first failure: ${show(failures[0])})`)
    assertEqual(results.filter((r) => r.status === 'fulfilled' && r.value === 'created').length, 1, 'exactly one account created')
    const made = await s.findUsersByEmail('joiner-race@example.com')
    assertEqual(made.length, 1, 'one user with the address')
    assertEqual((await s.getLinkedIdentity(PROV_A, 'joiner-ext', ORG_A))?.user.id, made[0]?.user.id, 'its identity and membership')
    if (probe.rows) {
      // createRows is all or nothing: a conflicting identity leaves no user, address or member behind.
      const late = makeUser({ id: 'user-late', email: 'late@example.com' })
      await assertConflict(
        run(s, async (tx) =>
          tx.createRows?.({
            users: [{ user: late, email: primaryEmailOf(late) }],
            identities: [makeIdentity({ id: 'ident-late', authProviderId: PROV_A, userId: late.id, ident: 'joiner-ext' })],
            members: [makeMember({ id: 'mem-late', organizationId: ORG_A, userId: late.id })],
            audit: [],
          }),
        ),
        'auth_identity.provider_ident',
        'createRows with a taken identity',
      )
      assertEqual(await s.getUser(late.id), null, 'no user left behind')
      assertEqual(await s.getMemberById('mem-late'), null, 'no member left behind')
    }
  })

  test(`${n} concurrent blind creates of one identity: one commits, the rest conflict`, async (s) => {
    await base(s)
    const racers = users(n, 'racer')
    await createUsers(s, racers)
    const results = await Promise.allSettled(
      racers.map((u, i) =>
        run(s, (tx) =>
          tx.createIdentity(
            makeIdentity({ id: `ident-${String(i).padStart(3, '0')}`, authProviderId: PROV_A, userId: u.id, ident: 'shared-ext' }),
          ),
        ),
      ),
    )
    assertEqual(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one create commits')
    for (const r of results) {
      if (r.status === 'rejected') {
        assert(
          isStorageConflict(r.reason) && r.reason.constraint === 'auth_identity.provider_ident',
          `losers get a conflict, got ${String(r.reason)}`,
        )
      }
    }
    assertEqual((await s.listIdentities(PROV_A, { limit: n + 10 })).length, 1, 'exactly one identity row')
  })

  test('acceptInvite accepts a pending invite once; accepted, requested or missing rows are refused unchanged', async (s) => {
    await base(s)
    const flags = { ...makeMember({ id: 'x', organizationId: ORG_A }).flags, ssoLinked: true, idpProvisioned: true }
    const invite = makeMember({
      id: 'mem-1',
      organizationId: ORG_A,
      email: 'new@example.com',
      role: 'admin',
      inviteTokenHash: '7'.repeat(64),
      inviteExpiresAt: at(86_400_000),
    })
    const request = makeMember({ id: 'mem-2', organizationId: ORG_A, email: 'req@example.com', inviteStatus: 'requested_to_join' })
    await run(s, async (tx) => {
      await tx.createMember(invite)
      await tx.createMember(request)
    })
    assertEqual(await run(s, (tx) => tx.acceptInvite('mem-1', { userId: 'user-01', flags })), true, 'a pending invite is accepted')
    const accepted = {
      ...invite,
      userId: 'user-01',
      email: null,
      emailNormalized: null,
      inviteTokenHash: null,
      inviteExpiresAt: null,
      flags,
    }
    assertEqual(await s.getMemberById('mem-1'), accepted, 'userId and flags set, address and token cleared, role kept')
    assertEqual(
      await run(s, (tx) => tx.acceptInvite('mem-1', { userId: 'user-02', flags })),
      false,
      'an accepted invite is not accepted again',
    )
    assertEqual(await s.getMemberById('mem-1'), accepted, 'the accepted row is unchanged by the refused call')
    assertEqual(await run(s, (tx) => tx.acceptInvite('mem-2', { userId: 'user-02', flags })), false, 'a join request is not an invite')
    assertEqual(await s.getMemberById('mem-2'), request, 'the request is unchanged')
    assertEqual(await run(s, (tx) => tx.acceptInvite('nope', { userId: 'user-02', flags })), false, 'a missing row')
  })

  test(`acceptInvite: ${n} concurrent acceptances of one invite by different users -> exactly one wins`, async (s) => {
    await base(s)
    const racers = users(n, 'racer')
    await createUsers(s, racers)
    const invite = makeMember({ id: 'mem-1', organizationId: ORG_A, email: 'new@example.com', inviteTokenHash: '8'.repeat(64) })
    await run(s, (tx) => tx.createMember(invite))
    const flags = { ...invite.flags, ssoLinked: true }
    const results = await Promise.allSettled(
      racers.map((u) =>
        run(s, async (tx) => {
          // Each reads the invite first, as the engine does before deciding, then accepts it
          // whatever it read: only the adapter's guard can keep the others out.
          await tx.getMemberById('mem-1')
          return tx.acceptInvite('mem-1', { userId: u.id, flags })
        }),
      ),
    )
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `no transaction fails (first failure: ${show(failures[0])})`)
    const winners = racers.filter((_, i) => {
      const r = results[i]
      return r?.status === 'fulfilled' && r.value === true
    })
    assertEqual(winners.length, 1, 'exactly one acceptInvite returns true')
    assertEqual((await s.getMemberById('mem-1'))?.userId, winners[0]?.id, 'the invite belongs to the one caller told it won')
  })

  // ---------------------------------------------------------------- provider locks (issue 16)

  test('lockIdentity and lockAuthProvider return the provider row as the transaction sees it', async (s) => {
    await base(s)
    const provA = await s.getAuthProviderById(PROV_A)
    assert(provA !== null, 'provider A exists')
    await run(s, async (tx) => {
      assertEqual(await tx.lockIdentity(PROV_A, 'ext-1'), provA, 'lockIdentity returns the provider row')
      assertEqual(await tx.lockIdentity('nope', 'ext-1'), null, 'lockIdentity of an absent provider returns null')
      assertEqual(await tx.lockAuthProvider(ORG_A, 'share'), provA, "lockAuthProvider(org, 'share')")
      assertEqual(await tx.lockAuthProvider(ORG_A, 'update'), provA, "lockAuthProvider(org, 'update')")
      assertEqual(await tx.lockAuthProvider('no-org', 'update'), null, 'lockAuthProvider of an org without provider')
    })
    await run(s, async (tx) => {
      await tx.updateAuthProvider(PROV_A, { scimEnabled: true })
      assertEqual((await tx.lockIdentity(PROV_A, 'ext-1'))?.scimEnabled, true, 'sees its own transaction changes')
    })
    await run(s, async (tx) => {
      assert(await tx.deleteAuthProvider(PROV_A), 'deleted')
      assertEqual(await tx.lockIdentity(PROV_A, 'ext-1'), null, 'null after this transaction deleted it')
      assertEqual(await tx.lockAuthProvider(ORG_A, 'share'), null, 'null after this transaction deleted it (share)')
    })
    await run(s, async (tx) => {
      assertEqual(await tx.lockIdentity(PROV_A, 'ext-1'), null, 'null after a committed delete')
      assertEqual(await tx.lockAuthProvider(ORG_A, 'update'), null, 'null after a committed delete (update)')
      assert((await tx.lockIdentity(PROV_B, 'ext-1')) !== null, 'the other provider is untouched')
    })
  })

  test(`${n} concurrent logins under lockIdentity and a disable under lockAuthProvider: no identity outlives the provider`, async (s) => {
    await base(s)
    const racers = users(n, 'racer')
    await createUsers(s, racers)
    const login = (u: User, i: number) =>
      run(s, async (tx) => {
        const provider = await tx.lockIdentity(PROV_A, `ext-${i}`)
        if (provider === null) return 'refused'
        await tx.createIdentity(
          makeIdentity({ id: `ident-${String(i).padStart(3, '0')}`, authProviderId: PROV_A, userId: u.id, ident: `ext-${i}` }),
        )
        return 'linked'
      })
    const disable = () =>
      run(s, async (tx) => {
        const provider = await tx.lockAuthProvider(ORG_A, 'update')
        if (provider === null) return 'gone'
        await tx.deleteIdentitiesForProvider(provider.id)
        await tx.deleteAuthProvider(provider.id)
        return 'disabled'
      })
    const half = Math.floor(n / 2)
    const results = await Promise.allSettled([
      ...racers.slice(0, half).map((u, i) => login(u, i)),
      disable(),
      disable(),
      ...racers.slice(half).map((u, i) => login(u, half + i)),
    ])
    const failures = results.filter((r) => r.status === 'rejected')
    assertEqual(failures.length, 0, `every transaction commits (first failure: ${show(failures[0])})`)
    const values = results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))
    assertEqual(values.filter((v) => v === 'disabled').length, 1, 'exactly one of two concurrent disables finds the provider')
    assertEqual(values.filter((v) => v === 'gone').length, 1, 'the other disable sees it gone')
    assertEqual(await s.getAuthProviderById(PROV_A), null, 'the provider is gone')
    assertEqual(await s.listIdentities(PROV_A, { limit: n + 10 }), [], 'no identity of the deleted provider survives')
    assert((await s.getAuthProviderById(PROV_B)) !== null, 'the other provider is untouched')
  })

  // ---------------------------------------------------------------- pipeline states

  test('pipeline state: create, load, compareAndSet, delete', async (s) => {
    const expiresAt = new Date(at(3_600_000).getTime() + 123)
    const state = { id: 'state-1', version: 1, body: 'opaque.body/with+chars=', expiresAt }
    await s.pipelineStates.create(state)
    await s.pipelineStates.create({ id: 'state-2', version: 1, body: 'other', expiresAt })
    assertEqual(await s.pipelineStates.load('state-1'), state, 'load returns the stored state')
    assertEqual(
      await s.pipelineStates.compareAndSet('state-1', 2, { ...state, version: 3, body: 'x' }),
      false,
      'a stale version does not swap',
    )
    assertEqual(await s.pipelineStates.load('state-1'), state, 'the state is unchanged after a failed swap')
    assertEqual(
      await s.pipelineStates.compareAndSet('nope', 1, { ...state, id: 'nope', version: 2 }),
      false,
      'an absent state does not swap',
    )
    assertEqual(await s.pipelineStates.load('nope'), null, 'a failed swap does not create')
    const next = { id: 'state-1', version: 2, body: 'v2', expiresAt: new Date(expiresAt.getTime() + 1) }
    assertEqual(await s.pipelineStates.compareAndSet('state-1', 1, next), true, 'the current version swaps')
    assertEqual(await s.pipelineStates.load('state-1'), next, 'load returns the new state')
    assertEqual(await s.pipelineStates.compareAndSet('state-1', 1, next), false, 'the old version no longer swaps')
    await s.pipelineStates.delete('state-1')
    assertEqual(await s.pipelineStates.load('state-1'), null, 'deleted')
    assertEqual((await s.pipelineStates.load('state-2'))?.body, 'other', 'the other state is untouched')
  })

  test(`pipeline state: ${n} concurrent compareAndSet with one expected version -> exactly one wins`, async (s) => {
    const state = { id: 'state-1', version: 1, body: 'v1', expiresAt: at(3_600_000) }
    await s.pipelineStates.create(state)
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => s.pipelineStates.compareAndSet('state-1', 1, { ...state, version: 2, body: `winner-${i}` })),
    )
    assertEqual(results.filter((r) => r).length, 1, 'exactly one compareAndSet returns true')
    const winner = results.indexOf(true)
    assertEqual(await s.pipelineStates.load('state-1'), { ...state, version: 2, body: `winner-${winner}` }, 'the winner wrote the state')
  })

  test('pipeline state: expired states are invisible, do not swap, and are swept', async (s) => {
    const t0 = clock.now().getTime()
    // Expiries are 30 s or more of the injected clock: a store with native TTLs (Redis) also
    // expires keys on its own clock, which a slow run must not reach.
    await s.pipelineStates.create({ id: 'short', version: 1, body: 's', expiresAt: new Date(t0 + 30_000) })
    await s.pipelineStates.create({ id: 'long', version: 1, body: 'l', expiresAt: new Date(t0 + 300_000) })
    clock.advance(29_999)
    assert((await s.pipelineStates.load('short')) !== null, 'visible before expiry')
    clock.advance(2)
    assertEqual(await s.pipelineStates.load('short'), null, 'invisible after expiry')
    assertEqual(
      await s.pipelineStates.compareAndSet('short', 1, { id: 'short', version: 2, body: 's2', expiresAt: new Date(t0 + 600_000) }),
      false,
      'an expired state does not swap',
    )
    assertEqual(await s.pipelineStates.load('short'), null, 'still invisible after the refused swap')
    assertEqual((await s.pipelineStates.load('long'))?.body, 'l', 'the live state is visible')
    assertEqual(await s.pipelineStates.deleteExpired(clock.now()), 1, 'deleteExpired removes exactly the expired state')
    assertEqual(await s.pipelineStates.deleteExpired(clock.now()), 0, 'nothing left to sweep')
    assertEqual((await s.pipelineStates.load('long'))?.body, 'l', 'the live state survives the sweep')
    assertEqual(await s.pipelineStates.deleteExpired(new Date(t0 + 300_000)), 1, 'expiresAt equal to now counts as expired for the sweep')
    assertEqual(await s.pipelineStates.load('long'), null, 'swept')
  })

  // ---------------------------------------------------------------- one-time tokens

  test('one-time token: peek does not consume; consume returns the record once', async (s) => {
    const token = { hash: 'a'.repeat(64), purpose: 'verify-email', payload: '{"userId":"u1","nested":{"x":[1]}}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(token)
    await s.oneTimeTokens.create({ ...token, hash: 'b'.repeat(64) })
    assertEqual(await s.oneTimeTokens.peek(token.hash, 'verify-email', clock.now()), token, 'peek returns the record')
    assertEqual(await s.oneTimeTokens.peek(token.hash, 'verify-email', clock.now()), token, 'peek again still returns it')
    assertEqual(await s.oneTimeTokens.consume(token.hash, 'verify-email', clock.now()), token, 'consume returns the record')
    assertEqual(await s.oneTimeTokens.consume(token.hash, 'verify-email', clock.now()), null, 'a second consume gets nothing')
    assertEqual(await s.oneTimeTokens.peek(token.hash, 'verify-email', clock.now()), null, 'gone after consume')
    assertEqual(
      (await s.oneTimeTokens.peek('b'.repeat(64), 'verify-email', clock.now()))?.hash,
      'b'.repeat(64),
      'the other token is untouched',
    )
  })

  test('one-time token: a token of another purpose never matches and is not consumed', async (s) => {
    const token = { hash: 'c'.repeat(64), purpose: 'verify-email', payload: '{}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(token)
    for (const purpose of ['merge', 'VERIFY-EMAIL', 'verify-email ', 'verify']) {
      assertEqual(await s.oneTimeTokens.peek(token.hash, purpose, clock.now()), null, `peek with purpose ${show(purpose)}`)
      assertEqual(await s.oneTimeTokens.consume(token.hash, purpose, clock.now()), null, `consume with purpose ${show(purpose)}`)
    }
    assertEqual(await s.oneTimeTokens.consume(token.hash, 'verify-email', clock.now()), token, 'the right purpose still consumes it')
  })

  test('one-time token: expired tokens are invisible (expiresAt must be after now)', async (s) => {
    const token = { hash: 'd'.repeat(64), purpose: 'verify-email', payload: '{}', expiresAt: at(30_000) }
    await s.oneTimeTokens.create(token)
    const exactly = token.expiresAt
    assertEqual(await s.oneTimeTokens.peek(token.hash, 'verify-email', exactly), null, 'peek at expiresAt')
    assertEqual(await s.oneTimeTokens.consume(token.hash, 'verify-email', exactly), null, 'consume at expiresAt')
    assertEqual(
      await s.oneTimeTokens.consume(token.hash, 'verify-email', new Date(exactly.getTime() + 60_000)),
      null,
      'consume after expiry',
    )
    assertEqual(
      await s.oneTimeTokens.consume(token.hash, 'verify-email', new Date(exactly.getTime() - 1)),
      token,
      'consume 1 ms before expiry works',
    )
  })

  test(`one-time token: ${n} concurrent consumes -> exactly one gets the record`, async (s) => {
    const token = { hash: 'e'.repeat(64), purpose: 'verify-email', payload: '{}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(token)
    const results = await Promise.all(Array.from({ length: n }, () => s.oneTimeTokens.consume(token.hash, 'verify-email', clock.now())))
    const winners = results.filter((r) => r !== null)
    assertEqual(winners.length, 1, 'exactly one consume returns the record')
    assertEqual(winners[0], token, 'the winner got the full record')
  })

  // ---------------------------------------------------------------- queries

  test('findUsersByEmail: exact match on the normalized column, active users only', async (s) => {
    await s.seedHostData({ organizations: [makeOrganization({ id: ORG_A })] })
    const alice = makeUser({ id: 'user-01', email: 'Alice@Example.com' })
    const inactive = makeUser({ id: 'user-02', email: 'alice@example.com', isActive: false })
    const bob = makeUser({ id: 'user-03', email: 'bob@example.com' })
    const carol = makeUser({ id: 'user-04', email: 'carol@example.com' })
    await createUsers(s, [alice, inactive, bob, carol])
    const secondary: UserEmail = {
      userId: bob.id,
      email: 'ALICE@example.com',
      emailNormalized: 'alice@example.com',
      isVerified: false,
      isPrimary: false,
    }
    await s.seedHostData({ userEmails: [secondary] })
    const found = await s.findUsersByEmail('alice@example.com')
    const byUser = [...found].sort((a, b) => (a.user.id < b.user.id ? -1 : 1))
    assertEqual(
      byUser,
      [
        { user: alice, email: primaryEmailOf(alice) },
        { user: bob, email: secondary },
      ],
      'active users with the address (primary or secondary); the inactive user is excluded',
    )
    for (const other of [
      'Alice@Example.com',
      'ALICE@EXAMPLE.COM',
      'alice@example.com ',
      'alicé@example.com',
      'alice@example.co',
      'ａlice@example.com',
      'alice@éxample.com',
    ]) {
      assertEqual(await s.findUsersByEmail(other), [], `no match for ${show(other)} (comparison is exact)`)
    }
    assertEqual(
      (await s.findUsersByEmail('carol@example.com')).map((m) => m.user.id),
      ['user-04'],
      'another address',
    )
    assertEqual(
      (await s.findUsersByEmail(normalizeEmail('  ALICE@example.COM '))).map((m) => m.user.id).sort(),
      ['user-01', 'user-03'],
      'case-insensitive lookup is the caller normalizing before the call',
    )
  })

  test('findUsersByEmail: look-alike and collation-equal addresses stay distinct', async (s) => {
    // Each pair compares equal under some database collations (accent/case-insensitive,
    // Unicode expansions, PAD SPACE, width folding) but must not match here.
    const pairs: [stored: string, probe: string][] = [
      ['\u212Aate@example.com', 'kate@example.com'], // KELVIN SIGN vs k (normalizeEmail keeps it)
      ['strasse@example.com', 'stra\u00DFe@example.com'], // ss vs sharp s
      ['jose@example.com', 'jos\u00E9@example.com'], // accent
      ['ren\u00E9@example.com', 'rene\u0301@example.com'], // NFC vs NFD (normalization is the caller's job)
      ['pad@example.com', 'pad@example.com  '], // trailing spaces
      ['wide@example.com', '\uFF57ide@example.com'], // fullwidth w
    ]
    const list = pairs.map(([stored], i) => makeUser({ id: `user-${String(i + 1).padStart(2, '0')}`, email: stored }))
    await createUsers(s, list)
    for (const [i, [stored, probe]] of pairs.entries()) {
      const expected = list[i]?.id
      assertEqual(
        (await s.findUsersByEmail(normalizeEmail(stored))).map((m) => m.user.id),
        [expected],
        `the stored address ${show(stored)} is found by its normalized form`,
      )
      assertEqual(await s.findUsersByEmail(probe), [], `${show(probe)} does not match ${show(stored)}`)
    }
  })

  test('getLinkedIdentity returns identity, user and the membership in the asked organization', async (s) => {
    const [u1] = await base(s)
    assert(u1 !== undefined, 'user exists')
    const identity = makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: u1.id, ident: 'ext-1' })
    const member = makeMember({ id: 'mem-1', organizationId: ORG_A, userId: u1.id })
    await run(s, async (tx) => {
      await tx.createIdentity(identity)
      await tx.createMember(member)
    })
    assertEqual(await s.getLinkedIdentity(PROV_A, 'ext-1', ORG_A), { identity, user: u1, member }, 'linked, member of the organization')
    assertEqual(
      await s.getLinkedIdentity(PROV_A, 'ext-1', ORG_B),
      { identity, user: u1, member: null },
      'linked, not a member of the other organization',
    )
    assertEqual(await s.getLinkedIdentity(PROV_B, 'ext-1', ORG_A), null, 'another provider')
    await run(s, async (tx) => {
      assertEqual(await tx.getLinkedIdentity(PROV_A, 'ext-1', ORG_A), { identity, user: u1, member }, 'inside a transaction')
    })
  })

  test('getMember finds accepted members; getInviteByEmail finds pending invites only', async (s) => {
    await base(s)
    const accepted = makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01' })
    const invite = makeMember({ id: 'mem-2', organizationId: ORG_A, email: 'new@example.com', inviteTokenHash: '9'.repeat(64) })
    const request = makeMember({ id: 'mem-3', organizationId: ORG_A, email: 'req@example.com', inviteStatus: 'requested_to_be_invited' })
    await run(s, async (tx) => {
      await tx.createMember(accepted)
      await tx.createMember(invite)
      await tx.createMember(request)
    })
    assertEqual(await s.getMember(ORG_A, 'user-01'), accepted, 'accepted member')
    assertEqual(await s.getMember(ORG_B, 'user-01'), null, 'not a member elsewhere')
    assertEqual(await s.getInviteByEmail(ORG_A, 'new@example.com'), invite, 'pending invite')
    assertEqual(await s.getInviteByEmail(ORG_A, 'req@example.com'), request, 'invite request')
    assertEqual(await s.getInviteByEmail(ORG_B, 'new@example.com'), null, 'not in another organization')
    assertEqual(await s.getInviteByEmail(ORG_A, 'user-01@example.com'), null, 'an accepted member is not an invite')
    assertEqual(await s.getInviteByEmail(ORG_A, 'NEW@example.com'), null, 'exact comparison')
  })

  test('listMembers pages by id (after exclusive, limit) and filters unlinkedOnly', async (s) => {
    await base(s)
    const more = users(4, 'extra')
    await createUsers(s, more)
    const linked = { ...makeMember({ id: 'x', organizationId: ORG_A }).flags, ssoLinked: true }
    const rows: Member[] = [
      makeMember({ id: 'mem-05', organizationId: ORG_A, userId: 'user-01' }),
      makeMember({ id: 'mem-01', organizationId: ORG_A, userId: 'user-02', flags: linked }),
      makeMember({ id: 'mem-03', organizationId: ORG_A, email: 'invite@example.com' }),
      makeMember({ id: 'mem-02', organizationId: ORG_A, userId: 'user-03', flags: { ...linked, ssoLinked: false, ssoInvalid: true } }),
      makeMember({ id: 'mem-04', organizationId: ORG_A, userId: 'extra-01', flags: linked }),
      makeMember({ id: 'mem-06', organizationId: ORG_A, userId: 'extra-02' }),
      makeMember({ id: 'mem-00', organizationId: ORG_B, userId: 'extra-03' }),
    ]
    await run(s, async (tx) => {
      for (const m of rows) await tx.createMember(m)
    })
    const ids = (list: readonly Member[]) => list.map((m) => m.id)
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 100 })), ['mem-01', 'mem-02', 'mem-03', 'mem-04', 'mem-05', 'mem-06'], 'all, by id')
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 2 })), ['mem-01', 'mem-02'], 'first page')
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 2, after: 'mem-02' })), ['mem-03', 'mem-04'], 'second page (after is exclusive)')
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 2, after: 'mem-04' })), ['mem-05', 'mem-06'], 'third page')
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 2, after: 'mem-06' })), [], 'past the end')
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 2, after: null })), ['mem-01', 'mem-02'], 'after: null is the first page')
    assertEqual(
      ids(await s.listMembers(ORG_A, { limit: 100, unlinkedOnly: true })),
      ['mem-02', 'mem-05', 'mem-06'],
      'unlinked accepted members only',
    )
    assertEqual(ids(await s.listMembers(ORG_A, { limit: 1, unlinkedOnly: true, after: 'mem-02' })), ['mem-05'], 'unlinked, paged')
    assertEqual(ids(await s.listMembers(ORG_B, { limit: 100 })), ['mem-00'], 'the other organization')
    assertEqual(
      await s.listMembers(ORG_A, { limit: 100 }),
      [...rows].filter((m) => m.organizationId === ORG_A).sort((a, b) => (a.id < b.id ? -1 : 1)),
      'full rows',
    )
  })

  test('listIdentities pages by id (after exclusive, limit) within one provider', async (s) => {
    await base(s)
    const more = users(5, 'extra')
    await createUsers(s, more)
    await run(s, async (tx) => {
      for (const [i, u] of more.entries()) {
        await tx.createIdentity(
          makeIdentity({ id: `ident-${String(5 - i).padStart(2, '0')}`, authProviderId: PROV_A, userId: u.id, ident: `ext-${i}` }),
        )
      }
      await tx.createIdentity(makeIdentity({ id: 'ident-00', authProviderId: PROV_B, userId: 'user-01', ident: 'ext-b' }))
    })
    const ids = async (page: { after?: string | null; limit: number }) => (await s.listIdentities(PROV_A, page)).map((i) => i.id)
    assertEqual(await ids({ limit: 100 }), ['ident-01', 'ident-02', 'ident-03', 'ident-04', 'ident-05'], 'all, by id')
    assertEqual(await ids({ limit: 2 }), ['ident-01', 'ident-02'], 'first page')
    assertEqual(await ids({ limit: 2, after: 'ident-02' }), ['ident-03', 'ident-04'], 'second page')
    assertEqual(await ids({ limit: 2, after: 'ident-04' }), ['ident-05'], 'last page')
    assertEqual(
      (await s.listIdentities(PROV_B, { limit: 100 })).map((i) => i.id),
      ['ident-00'],
      'the other provider',
    )
  })

  test('listIdentitiesForUser lists one user’s identities across providers, by id', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-a' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_B, userId: 'user-01', ident: 'ext-b' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-3', authProviderId: PROV_B, userId: 'user-02', ident: 'ext-c' }))
    })
    const ids = async (r: StorageReader, userId: string) => (await r.listIdentitiesForUser(userId)).map((i) => i.id)
    assertEqual(await ids(s, 'user-01'), ['ident-1', 'ident-2'], 'both providers, by id')
    assertEqual(await ids(s, 'user-02'), ['ident-3'], 'another user')
    assertEqual(await ids(s, 'nobody'), [], 'no identity')
    await run(s, async (tx) => {
      await tx.deleteIdentity('ident-2')
      assertEqual(await ids(tx, 'user-01'), ['ident-1'], 'inside a transaction, its own delete')
    })
  })

  test('one-time tokens inside a transaction (tx.oneTimeTokens, when offered) roll back with it', async (s) => {
    const probe = await run(s, async (tx) => tx.oneTimeTokens !== undefined)
    if (!probe) return
    const kept = { hash: 'e'.repeat(64), purpose: 'verify-email', payload: '{"k":1}', expiresAt: at(60_000) }
    await s.oneTimeTokens.create(kept)
    const made = { hash: 'f'.repeat(64), purpose: 'verify-email', payload: '{"k":2}', expiresAt: at(60_000) }
    const boom = new Error('roll back')
    let thrown: unknown = null
    try {
      await run(s, async (tx) => {
        const tokens = tx.oneTimeTokens
        if (!tokens) throw new Error('unreachable')
        assertEqual(await tokens.consume(kept.hash, 'verify-email', clock.now()), kept, 'consumed inside')
        await tokens.create(made)
        assertEqual(await tokens.peek(made.hash, 'verify-email', clock.now()), made, 'created inside, visible inside')
        throw boom
      })
    } catch (error) {
      thrown = error
    }
    assert(thrown === boom, 'the error is rethrown unchanged')
    assertEqual(await s.oneTimeTokens.peek(kept.hash, 'verify-email', clock.now()), kept, 'the consumed token is back after the rollback')
    assertEqual(await s.oneTimeTokens.peek(made.hash, 'verify-email', clock.now()), null, 'the created token is gone after the rollback')
    await run(s, async (tx) => {
      assertEqual(await tx.oneTimeTokens?.consume(kept.hash, 'verify-email', clock.now()), kept, 'consumed in a committed transaction')
    })
    assertEqual(await s.oneTimeTokens.consume(kept.hash, 'verify-email', clock.now()), null, 'spent once committed')
  })

  test('pipeline states inside a transaction (tx.pipelineStates, when offered) roll back with it', async (s) => {
    const probe = await run(s, async (tx) => tx.pipelineStates !== undefined)
    if (!probe) return
    const row = { id: 'state-tx', version: 1, body: '{"v":1}', expiresAt: at(60_000) }
    await s.pipelineStates.create(row)
    const boom = new Error('roll back')
    let thrown: unknown = null
    try {
      await run(s, async (tx) => {
        const states = tx.pipelineStates
        if (!states) throw new Error('unreachable')
        assert(await states.compareAndSet(row.id, 1, { ...row, version: 2, body: '{"v":2}' }), 'swapped inside')
        assertEqual((await states.load(row.id))?.version, 2, 'the swap is visible inside')
        throw boom
      })
    } catch (error) {
      thrown = error
    }
    assert(thrown === boom, 'the error is rethrown unchanged')
    assertEqual(await s.pipelineStates.load(row.id), row, 'the state is as before after the rollback')
    await run(s, async (tx) => {
      assert(
        (await tx.pipelineStates?.compareAndSet(row.id, 1, { ...row, version: 2, body: '{"v":3}' })) === true,
        'swapped in a committed transaction',
      )
      assert(
        !(await tx.pipelineStates?.compareAndSet(row.id, 1, { ...row, version: 2, body: '{"v":4}' })),
        'a second swap from version 1 fails',
      )
    })
    assertEqual((await s.pipelineStates.load(row.id))?.body, '{"v":3}', 'the committed swap stays')
  })

  test('tx.createRowsAndSettle (when offered) writes the rows and answers as compareAndSet; a conflict writes neither', async (s) => {
    const probe = await run(s, async (tx) => tx.createRowsAndSettle !== undefined)
    if (!probe) return
    await base(s)
    const settle = (tx: StorageTx, rows: NewRows, swap: StateSwap) => {
      if (!tx.createRowsAndSettle) throw new Error('unreachable')
      return tx.createRowsAndSettle(rows, swap)
    }
    const account = (id: string, ident: string): NewRows => {
      const user = makeUser({ id, email: `${id}@example.com` })
      return {
        users: [{ user, email: primaryEmailOf(user) }],
        identities: [makeIdentity({ id: `ident-${id}`, authProviderId: PROV_A, userId: id, ident })],
        members: [makeMember({ id: `mem-${id}`, organizationId: ORG_A, userId: id })],
        audit: [],
      }
    }
    const row = { id: 'state-rows', version: 1, body: '{"v":1}', expiresAt: at(60_000) }
    await s.pipelineStates.create(row)
    const next = { ...row, version: 2, body: '{"v":2}' }
    // The current version: true, the rows and the new state committed together.
    assertEqual(await run(s, (tx) => settle(tx, account('user-rs1', 'rs1'), { id: row.id, expectedVersion: 1, next })), true, 'swapped')
    assertEqual(await s.pipelineStates.load(row.id), next, 'the state is the new row')
    assertEqual((await s.getLinkedIdentity(PROV_A, 'rs1', ORG_A))?.member?.id, 'mem-user-rs1', 'the identity and membership are written')
    // A stale version: false, and the state is unchanged (the engine rolls the rows back).
    const stale = { ...row, version: 2, body: '{"v":stale}' }
    assertEqual(
      await run(s, (tx) => settle(tx, account('user-rs2', 'rs2'), { id: row.id, expectedVersion: 1, next: stale })),
      false,
      'a stale version does not swap',
    )
    assertEqual(await s.pipelineStates.load(row.id), next, 'the state is unchanged after a stale swap')
    // A conflicting identity: the conflict, and neither the rows nor the state are written.
    const third = { ...row, version: 3, body: '{"v":3}' }
    await assertConflict(
      run(s, (tx) => settle(tx, account('user-rs3', 'rs1'), { id: row.id, expectedVersion: 2, next: third })),
      'auth_identity.provider_ident',
      'createRowsAndSettle with a taken identity',
    )
    assertEqual(await s.getUser('user-rs3'), null, 'no user left behind')
    assertEqual(await s.pipelineStates.load(row.id), next, 'the state is not swapped by a conflicting write')
    // An expired state: false.
    const short = { id: 'state-rows-short', version: 1, body: '{"v":1}', expiresAt: at(1_000) }
    await s.pipelineStates.create(short)
    clock.advance(1_000)
    assertEqual(
      await run(s, (tx) =>
        settle(tx, account('user-rs4', 'rs4'), { id: short.id, expectedVersion: 1, next: { ...short, version: 2, body: 'late' } }),
      ),
      false,
      'an expired state does not swap',
    )
  })

  test('getOrganizationWithProvider (when offered) reads the organization and its provider', async (s) => {
    if (!s.getOrganizationWithProvider) return
    await base(s)
    const org = await s.getOrganization(ORG_A)
    const provA = await s.getAuthProviderById(PROV_A)
    assertEqual(await s.getOrganizationWithProvider(ORG_A), { organization: org, provider: provA }, 'org and provider')
    await s.seedHostData({ organizations: [makeOrganization({ id: 'org-bare' })] })
    assertEqual(
      await s.getOrganizationWithProvider('org-bare'),
      { organization: await s.getOrganization('org-bare'), provider: null },
      'an org without provider',
    )
    assertEqual(await s.getOrganizationWithProvider('no-org'), null, 'an absent org')
    await run(s, async (tx) => {
      assertEqual(
        await tx.getOrganizationWithProvider?.(ORG_B),
        { organization: await tx.getOrganization(ORG_B), provider: await tx.getAuthProvider(ORG_B) },
        'inside a transaction',
      )
    })
  })

  test('readLinkedIdentity (when offered) reads the provider row and the linked identity as lockIdentity and getLinkedIdentity do', async (s) => {
    const probe = await run(s, async (tx) => tx.readLinkedIdentity !== undefined)
    if (!probe) return
    const [u1] = await base(s)
    if (!u1) throw new Error('unreachable')
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-r', authProviderId: PROV_A, userId: u1.id, ident: 'ext-r' }))
      await tx.createMember(makeMember({ id: 'mem-r', organizationId: ORG_A, userId: u1.id }))
    })
    const provA = await s.getAuthProviderById(PROV_A)
    await run(s, async (tx) => {
      const read = tx.readLinkedIdentity
      if (!read) throw new Error('unreachable')
      assertEqual(
        await read(PROV_A, 'ext-r', ORG_A),
        { provider: provA, linked: await tx.getLinkedIdentity(PROV_A, 'ext-r', ORG_A) },
        'a linked identity with its membership',
      )
      assertEqual((await read(PROV_A, 'ext-r', ORG_B)).linked?.member, null, 'no membership in the other org')
      assertEqual(await read(PROV_A, 'nope', ORG_A), { provider: provA, linked: null }, 'an unknown identity')
      assertEqual(await read('no-provider', 'ext-r', ORG_A), { provider: null, linked: null }, 'an absent provider')
      await tx.updateAuthProvider(PROV_A, { scimEnabled: true })
      assertEqual((await read(PROV_A, 'ext-r', ORG_A)).provider?.scimEnabled, true, 'sees its own transaction changes')
    })
  })

  test('updateIdentityIfUnchanged (when offered) writes only over the row as read; of concurrent writers one wins', async (s) => {
    const probe = await run(s, async (tx) => tx.updateIdentityIfUnchanged !== undefined)
    if (!probe) return
    await base(s)
    const identity = makeIdentity({ id: 'ident-g', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-g', data: { t: 'a', n: [1] } })
    await run(s, (tx) => tx.createIdentity(identity))
    const guarded = (expected: typeof identity, patch: Parameters<NonNullable<StorageTx['updateIdentityIfUnchanged']>>[1]) =>
      run(s, async (tx) => {
        const write = tx.updateIdentityIfUnchanged
        if (!write) throw new Error('unreachable')
        return write(expected, patch)
      })
    const read = await s.getIdentityById('ident-g')
    assert(read !== null, 'identity stored')
    assertEqual(await guarded(read, { data: { t: 'b' }, lastVerified: EXACT }), true, 'unchanged row: written')
    assertEqual(await s.getIdentityById('ident-g'), { ...identity, data: { t: 'b' }, lastVerified: EXACT }, 'the patch, nothing else')
    assertEqual(await guarded(read, { data: { t: 'c' } }), false, 'a row changed since it was read: not written')
    const now = await s.getIdentityById('ident-g')
    assert(now !== null, 'identity still there')
    assertEqual(await guarded({ ...now, lastSynced: EXACT }, { data: { t: 'c' } }), false, 'another lastSynced: not written')
    assertEqual(await guarded({ ...now, userId: 'user-02' }, { data: { t: 'c' } }), false, 'another owner: not written')
    assertEqual(await guarded({ ...now, data: { t: 'x' } }, { data: { t: 'c' } }), false, 'other data: not written')
    assertEqual(await guarded({ ...now, id: 'nope' }, { data: { t: 'c' } }), false, 'a missing row: false')
    assertEqual((await s.getIdentityById('ident-g'))?.data, { t: 'b' }, 'no refused write changed the row')
    // Concurrent writers over the same read: exactly one wins; its write is the one stored.
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => guarded(now, { data: { t: `w${i}` }, lastVerified: new Date(EXACT.getTime() + 1 + i) })),
    )
    assertEqual(results.filter(Boolean).length, 1, 'one of the concurrent guarded writes wins')
    const winner = results.indexOf(true)
    assertEqual((await s.getIdentityById('ident-g'))?.data, { t: `w${winner}` }, "the winner's data is stored")
  })

  test('setFlagsForOrganization touches only the given flags of that organization and counts changed rows', async (s) => {
    await base(s)
    const more = users(2, 'extra')
    await createUsers(s, more)
    const flags = (p: Partial<Member['flags']>) => ({ ...makeMember({ id: 'x', organizationId: ORG_A }).flags, ...p })
    const rows: Member[] = [
      makeMember({ id: 'mem-1', organizationId: ORG_A, userId: 'user-01', flags: flags({ ssoLinked: true, idpProvisioned: true }) }),
      makeMember({
        id: 'mem-2',
        organizationId: ORG_A,
        userId: 'user-02',
        flags: flags({ ssoLinked: true, ssoInvalid: true, idpRoleRestricted: true }),
      }),
      makeMember({ id: 'mem-3', organizationId: ORG_A, userId: 'user-03', flags: flags({ memberLimitRestricted: true }) }),
      makeMember({ id: 'mem-4', organizationId: ORG_A, email: 'pending@example.com', flags: flags({ ssoLinked: true }) }),
      makeMember({ id: 'mem-5', organizationId: ORG_B, userId: 'extra-01', flags: flags({ ssoLinked: true }) }),
    ]
    await run(s, async (tx) => {
      for (const m of rows) await tx.createMember(m)
    })
    const changed = await run(s, (tx) => tx.setFlagsForOrganization(ORG_A, { ssoLinked: false }))
    assertEqual(changed, 3, 'three members of the organization had ssoLinked on')
    for (const m of rows) {
      const expected = m.organizationId === ORG_A ? { ...m, flags: { ...m.flags, ssoLinked: false } } : m
      assertEqual(await s.getMemberById(m.id), expected, `member ${m.id}`)
    }
    const again = await run(s, (tx) => tx.setFlagsForOrganization(ORG_A, { ssoLinked: false }))
    assertEqual(again, 0, 'nothing changes the second time')
    const two = await run(s, (tx) => tx.setFlagsForOrganization(ORG_A, { ssoLinked: true, ssoInvalid: false }))
    assertEqual(two, 4, 'setting two flags changes every member of the organization')
    assertEqual(
      (await s.getMemberById('mem-2'))?.flags,
      flags({ ssoLinked: true, ssoInvalid: false, idpRoleRestricted: true }),
      'other flags preserved',
    )
    assertEqual(await s.getMemberById('mem-5'), rows[4], 'the other organization is untouched')
  })

  test('deleteIdentitiesForUser keeps exceptId; deleteIdentitiesForProvider keeps other providers', async (s) => {
    await base(s)
    await run(s, async (tx) => {
      await tx.createIdentity(makeIdentity({ id: 'ident-1', authProviderId: PROV_A, userId: 'user-01', ident: 'ext-1' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-2', authProviderId: PROV_A, userId: 'user-02', ident: 'ext-2' }))
      await tx.createIdentity(makeIdentity({ id: 'ident-3', authProviderId: PROV_B, userId: 'user-01', ident: 'ext-1' }))
    })
    assertEqual(await run(s, (tx) => tx.deleteIdentitiesForUser(PROV_A, 'user-01', 'ident-1')), 0, 'exceptId is kept')
    assert((await s.getIdentityById('ident-1')) !== null, 'kept')
    assertEqual(await run(s, (tx) => tx.deleteIdentitiesForUser(PROV_A, 'user-01', null)), 1, 'deletes the user identity of that provider')
    assertEqual(await s.getIdentityById('ident-1'), null, 'deleted')
    assert((await s.getIdentityById('ident-2')) !== null, 'another user is kept')
    assert((await s.getIdentityById('ident-3')) !== null, 'another provider is kept')
    assertEqual(await run(s, (tx) => tx.deleteIdentitiesForProvider(PROV_A)), 1, 'deleteIdentitiesForProvider count')
    assertEqual(await s.listIdentities(PROV_A, { limit: 10 }), [], 'provider A has none left')
    assertEqual(
      (await s.listIdentities(PROV_B, { limit: 10 })).map((i) => i.id),
      ['ident-3'],
      'provider B untouched',
    )
  })

  // ---------------------------------------------------------------- background work (outbox), housekeeping
  // The outbox (`tx.enqueueWork`, `pendingWork`) and `listMemberRecipients` are optional port
  // members: an adapter without them passes these cases trivially (the engine then mails inside
  // the request); an adapter with them must behave as below.

  const enqueue = (tx: StorageTx, work: PendingWork): Promise<boolean> => {
    if (!tx.enqueueWork) throw new Error('the adapter has pendingWork but its transactions have no enqueueWork')
    return tx.enqueueWork(work)
  }
  const outbox = (s: StoragePort): PendingWorkStore => {
    if (!s.pendingWork) throw new Error('the adapter has enqueueWork but no pendingWork store')
    return s.pendingWork
  }
  const recipients = (s: StoragePort, organizationId: string, page: MemberPage) => {
    if (!s.listMemberRecipients) throw new Error('no listMemberRecipients')
    return s.listMemberRecipients(organizationId, page)
  }

  const workItem = (id: string, key: string, availableAt: Date, extra: Partial<PendingWork> = {}): PendingWork => ({
    id,
    kind: 'link-requests',
    organizationId: ORG_A,
    key,
    payload: `{"n":"${id}"}`,
    cursor: null,
    attempts: 0,
    availableAt,
    claimToken: null,
    createdAt: availableAt,
    ...extra,
  })

  test('listMemberRecipients pages members with their users (null for invites), like listMembers', async (s) => {
    if (!s.listMemberRecipients) return
    const list = await base(s)
    await run(s, async (tx) => {
      await tx.createMember(makeMember({ id: 'mem-01', organizationId: ORG_A, userId: 'user-01' }))
      await tx.createMember(makeMember({ id: 'mem-02', organizationId: ORG_A, email: 'invite@example.com' }))
      await tx.createMember(
        makeMember({
          id: 'mem-03',
          organizationId: ORG_A,
          userId: 'user-02',
          flags: { ssoLinked: true, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false },
        }),
      )
      await tx.createMember(makeMember({ id: 'mem-04', organizationId: ORG_A, userId: 'user-03' }))
      await tx.createMember(makeMember({ id: 'mem-05', organizationId: ORG_B, userId: 'user-01' }))
    })
    const ids = (rows: readonly { member: Member; user: User | null }[]) => rows.map((r) => [r.member.id, r.user?.id ?? null])
    assertEqual(
      ids(await recipients(s, ORG_A, { limit: 10 })),
      [
        ['mem-01', 'user-01'],
        ['mem-02', null],
        ['mem-03', 'user-02'],
        ['mem-04', 'user-03'],
      ],
      'all, by id, each with its user',
    )
    assertEqual(
      ids(await recipients(s, ORG_A, { limit: 2, after: 'mem-01' })),
      [
        ['mem-02', null],
        ['mem-03', 'user-02'],
      ],
      'paged (after exclusive)',
    )
    assertEqual(
      ids(await recipients(s, ORG_A, { limit: 10, unlinkedOnly: true })),
      [
        ['mem-01', 'user-01'],
        ['mem-04', 'user-03'],
      ],
      'unlinkedOnly: accepted members without ssoLinked',
    )
    const [first] = await recipients(s, ORG_A, { limit: 1 })
    assertEqual(first, { member: await s.getMemberById('mem-01'), user: list[0] }, 'the rows equal the single reads')
    assertEqual(
      (await s.listMembers(ORG_A, { limit: 10 })).map((m) => m.id),
      (await recipients(s, ORG_A, { limit: 10 })).map((r) => r.member.id),
      'same members as listMembers',
    )
  })

  test('enqueueWork: inserted with the transaction, gone on rollback, one pending item per key', async (s) => {
    if (!s.pendingWork) return
    await base(s)
    const now = clock.now()
    assertEqual(await run(s, (tx) => enqueue(tx, workItem('w-1', 'k-1', now))), true, 'inserted')
    assertEqual(await run(s, (tx) => enqueue(tx, workItem('w-2', 'k-1', now))), false, 'a second item with a pending key is not inserted')
    const boom = new Error('rollback (contract)')
    assertEqual(
      await rejection(
        run(s, async (tx) => {
          assertEqual(await enqueue(tx, workItem('w-3', 'k-3', now)), true, 'inserted inside the transaction')
          throw boom
        }),
        'a throwing transaction',
      ),
      boom,
      'the throw comes out unchanged',
    )
    const claimed = await outbox(s).claim(now, at(60_000), 'token-a')
    assertEqual(
      claimed,
      { ...workItem('w-1', 'k-1', now), claimToken: 'token-a', availableAt: at(60_000) },
      'only w-1 exists (w-3 rolled back)',
    )
    assertEqual(await outbox(s).claim(now, at(60_000), 'token-b'), null, 'nothing else is pending')
    assertEqual(await outbox(s).complete('w-1', 'token-a'), true, 'completed (deleted)')
    assertEqual(await run(s, (tx) => enqueue(tx, workItem('w-4', 'k-1', now))), true, 'the key is free again once completed')
  })

  test(`enqueueWork: ${n} concurrent transactions with one key insert exactly one item`, async (s) => {
    if (!s.pendingWork) return
    await base(s)
    const now = clock.now()
    const results = await Promise.all(Array.from({ length: n }, (_, i) => run(s, (tx) => enqueue(tx, workItem(`w-${i}`, 'same-key', now)))))
    assertEqual(results.filter((r) => r).length, 1, 'exactly one true')
    assert((await outbox(s).claim(now, at(1_000), 't')) !== null, 'the item is there')
    assertEqual(await outbox(s).claim(now, at(1_000), 't2'), null, 'and only one')
  })

  test('pendingWork: claim takes the oldest available item under a lease; advance and complete need the claim token', async (s) => {
    if (!s.pendingWork) return
    await base(s)
    const now = clock.now()
    await run(s, async (tx) => {
      await enqueue(tx, workItem('w-b', 'k-b', now))
      await enqueue(tx, workItem('w-a', 'k-a', now))
      await enqueue(tx, workItem('w-late', 'k-late', at(10_000)))
    })
    const lease = at(5_000)
    const a = await outbox(s).claim(now, lease, 'tok-1')
    assertEqual(a?.id, 'w-a', 'same availableAt: the smaller id first')
    assertEqual([a?.claimToken, a?.availableAt], ['tok-1', lease], 'claimed with the token, available again at the lease end')
    const b = await outbox(s).claim(now, lease, 'tok-2')
    assertEqual(b?.id, 'w-b', 'a leased item is skipped')
    assertEqual(await outbox(s).claim(now, lease, 'tok-3'), null, 'w-late is not available yet')
    assertEqual(
      await outbox(s).advance('w-a', 'wrong', { cursor: 'x', attempts: 0, availableAt: now }),
      false,
      'a wrong token advances nothing',
    )
    assertEqual(await outbox(s).complete('w-a', 'wrong'), false, 'a wrong token completes nothing')
    assertEqual(await outbox(s).advance('w-a', 'tok-1', { cursor: 'mem-07', attempts: 2, availableAt: at(100) }), true, 'advanced')
    clock.advance(100)
    const again = await outbox(s).claim(clock.now(), at(5_000), 'tok-4')
    assertEqual([again?.id, again?.cursor, again?.attempts, again?.claimToken], ['w-a', 'mem-07', 2, 'tok-4'], 'reclaimed at its cursor')
    assertEqual(await outbox(s).advance('w-a', 'tok-1', { cursor: 'z', attempts: 0, availableAt: now }), false, 'the old claim lost it')
    assertEqual(await outbox(s).complete('w-a', 'tok-4'), true, 'the new claim completes it')
    assertEqual(await outbox(s).complete('w-a', 'tok-4'), false, 'once')
    clock.advance(5_000)
    const expired = await outbox(s).claim(clock.now(), at(5_000), 'tok-5')
    assertEqual(expired?.id, 'w-b', 'an expired lease is taken over')
  })

  test(`pendingWork: ${n} concurrent claims never get the same item`, async (s) => {
    if (!s.pendingWork) return
    await base(s)
    const now = clock.now()
    const items = Math.max(2, Math.floor(n / 2))
    await run(s, async (tx) => {
      for (let i = 0; i < items; i++) await enqueue(tx, workItem(`w-${String(i).padStart(3, '0')}`, `k-${i}`, now))
    })
    const claims = await Promise.all(Array.from({ length: n }, (_, i) => outbox(s).claim(now, at(60_000), `tok-${i}`)))
    const got = claims.filter((c): c is PendingWork => c !== null).map((c) => c.id)
    assertEqual(got.length, items, 'every item claimed once, the other callers got null')
    assertEqual(new Set(got).size, items, 'no item claimed twice')
  })

  // ---------------------------------------------------------------- verified domains (issue 13)
  // Optional port members, all or none: an adapter without them passes these cases trivially
  // (the engine then answers its domain calls with CONFIG_INVALID).

  const domains = (s: StorageReader) => {
    const list = s.listOrganizationDomains?.bind(s)
    const find = s.findVerifiedDomains?.bind(s)
    if (!list || !find) throw new Error('the adapter has some domain members but not listOrganizationDomains and findVerifiedDomains')
    return { list, find }
  }
  const domainTx = (tx: StorageTx) => {
    const create = tx.createOrganizationDomain?.bind(tx)
    const verify = tx.verifyOrganizationDomain?.bind(tx)
    const remove = tx.deleteOrganizationDomain?.bind(tx)
    if (!create || !verify || !remove) throw new Error('the adapter lists domains but its transactions cannot write them')
    return { create, verify, remove }
  }
  const claim = (id: string, organizationId: string, domain: string, extra: Partial<OrganizationDomain> = {}): OrganizationDomain => ({
    id,
    organizationId,
    domain,
    verificationToken: `token-${id}`,
    verifiedAt: null,
    createdAt: EXACT,
    ...extra,
  })

  test('domains: claim, list, verify, find, remove; one claim per org, one verified org per domain', async (s) => {
    if (!s.listOrganizationDomains) return
    await base(s)
    const { list, find } = domains(s)
    await run(s, async (tx) => {
      await domainTx(tx).create(claim('dom-a2', ORG_A, 'beta.test'))
      await domainTx(tx).create(claim('dom-a1', ORG_A, 'acme.test'))
      await domainTx(tx).create(claim('dom-b1', ORG_B, 'acme.test'))
    })
    assertEqual(await list(ORG_A), [claim('dom-a1', ORG_A, 'acme.test'), claim('dom-a2', ORG_A, 'beta.test')], 'listed by domain')
    assertEqual(await list('nope'), [], 'an org without domains')
    assertEqual(await find('acme.test'), [], 'claimed, not verified: not found')
    await assertConflict(
      run(s, (tx) => domainTx(tx).create(claim('dom-a3', ORG_A, 'acme.test'))),
      'organization_domain.organization_domain',
      'a second claim of one domain by one org',
    )
    const when = at(1_000)
    assertEqual(await run(s, (tx) => domainTx(tx).verify('dom-a1', when)), true, 'verified')
    assertEqual(await find('acme.test'), [claim('dom-a1', ORG_A, 'acme.test', { verifiedAt: when })], 'found once verified')
    assertEqual(await run(s, () => find('acme.test')), [claim('dom-a1', ORG_A, 'acme.test', { verifiedAt: when })], 'inside a transaction')
    assertEqual(await find('ACME.test'), [], 'exact comparison (case)')
    assertEqual(await find('acme.test '), [], 'exact comparison (trailing space)')
    await assertConflict(
      run(s, (tx) => domainTx(tx).verify('dom-b1', when)),
      'organization_domain.verified',
      'another org verifying a verified domain',
    )
    assertEqual((await list(ORG_B))[0]?.verifiedAt, null, 'the losing verification rolled back')
    await s.seedHostData({ organizations: [makeOrganization({ id: 'org-c' })] })
    await assertConflict(
      run(s, (tx) => domainTx(tx).create(claim('dom-c', 'org-c', 'acme.test', { verifiedAt: when }))),
      'organization_domain.verified',
      'a claim inserted verified for a domain another org has verified',
    )
    assertEqual(await run(s, (tx) => domainTx(tx).verify('nope', when)), false, 'verify: no row')
    assertEqual(await run(s, (tx) => domainTx(tx).remove('nope')), false, 'remove: no row')
    const boom = new Error('rollback (contract)')
    await rejection(
      run(s, async (tx) => {
        await domainTx(tx).create(claim('dom-x', ORG_B, 'gamma.test'))
        throw boom
      }),
      'a throwing transaction',
    )
    assertEqual(
      (await list(ORG_B)).map((d) => d.id),
      ['dom-b1'],
      'a claim in a rolled-back transaction is gone',
    )
    assertEqual(await run(s, (tx) => domainTx(tx).remove('dom-a1')), true, 'removed')
    assertEqual(await find('acme.test'), [], 'gone')
    assertEqual(await run(s, (tx) => domainTx(tx).verify('dom-b1', when)), true, 'the domain is free for another org')
    assertEqual(
      (await find('acme.test')).map((d) => d.organizationId),
      [ORG_B],
      'now verified by org B',
    )
  })

  test(`domains: ${n} organizations verifying one domain concurrently, exactly one wins`, async (s) => {
    if (!s.listOrganizationDomains) return
    const orgs = Array.from({ length: n }, (_, i) => `org-race-${String(i).padStart(3, '0')}`)
    await s.seedHostData({ organizations: orgs.map((id) => makeOrganization({ id })) })
    await run(s, async (tx) => {
      for (const [i, org] of orgs.entries()) await domainTx(tx).create(claim(`dom-${i}`, org, 'race.test'))
    })
    const results = await Promise.allSettled(orgs.map((_, i) => run(s, (tx) => domainTx(tx).verify(`dom-${i}`, at(i)))))
    const won = results.filter((r) => r.status === 'fulfilled')
    assertEqual(won.length, 1, 'exactly one verification commits')
    for (const r of results) {
      if (r.status === 'rejected') {
        assert(
          isStorageConflict(r.reason) && r.reason.constraint === 'organization_domain.verified',
          `a losing verification is the organization_domain.verified conflict, got ${String(r.reason)}`,
        )
      }
    }
    const verified = await domains(s).find('race.test')
    assertEqual(verified.length, 1, 'one verified row')
  })

  test('housekeeping: deleteExpired of pipeline states and one-time tokens is bounded by limit', async (s) => {
    const t0 = clock.now().getTime()
    for (let i = 0; i < 5; i++) {
      await s.pipelineStates.create({ id: `old-${i}`, version: 1, body: 'x', expiresAt: new Date(t0 + 30_000) })
      await s.oneTimeTokens.create({
        hash: `${i}`.repeat(64),
        purpose: i % 2 === 0 ? 'single-use-response' : 'verify',
        payload: '{}',
        expiresAt: new Date(t0 + 30_000),
      })
    }
    await s.pipelineStates.create({ id: 'live', version: 1, body: 'x', expiresAt: new Date(t0 + 600_000) })
    await s.oneTimeTokens.create({ hash: 'f'.repeat(64), purpose: 'verify', payload: '{}', expiresAt: new Date(t0 + 600_000) })
    clock.advance(30_000)
    const now = clock.now()
    assertEqual(await s.pipelineStates.deleteExpired(now, 2), 2, 'states: at most the limit')
    assertEqual(await s.pipelineStates.deleteExpired(now, 2), 2, 'states: the next batch')
    assertEqual(await s.pipelineStates.deleteExpired(now, 2), 1, 'states: the rest')
    assertEqual(await s.pipelineStates.deleteExpired(now, 2), 0, 'states: none left')
    assertEqual((await s.pipelineStates.load('live'))?.id, 'live', 'the live state survives')
    const sweep = s.oneTimeTokens.deleteExpired?.bind(s.oneTimeTokens)
    if (sweep) {
      assertEqual(await sweep(now, 3), 3, 'tokens: at most the limit')
      assertEqual(await sweep(now, 3), 2, 'tokens: the rest, any purpose')
      assertEqual(await sweep(now, 3), 0, 'tokens: none left')
      assert((await s.oneTimeTokens.peek('f'.repeat(64), 'verify', now)) !== null, 'the live token survives')
    }
  })

  return { name: `storage contract: ${options.name}`, cases }
}
