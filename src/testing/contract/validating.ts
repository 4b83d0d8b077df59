/**
 * `validatingStorage`: wraps a storage adapter and checks every value it returns against the
 * port's contract (record shapes with real `Date`s and booleans, rows matching the query,
 * ordering and limits of pages), so an adapter bug is reported at the port method that caused
 * it instead of as a confusing engine decision later.
 *
 * @module
 */
import { z } from 'zod'
import type { AuthIdentity } from '../../model/records.js'
import type {
  AuthIdentityPatch,
  MemberPage,
  NewRows,
  OneTimeTokenRecord,
  OneTimeTokenStore,
  PendingWork,
  PendingWorkStore,
  PipelineStateStore,
  StateSwap,
  StoragePort,
  StorageReader,
  StorageTx,
  UniqueConstraint,
} from '../../ports/storage.js'

/**
 * Thrown by {@link validatingStorage} when an adapter returns a value that breaks the port's
 * contract. A programmer error in the adapter, not an expected failure.
 * @group Testing
 */
export class StorageContractViolation extends Error {
  /** The port method, e.g. `getIdentity` or `pipelineStates.load`. */
  readonly method: string
  /** What was wrong, one line each. */
  readonly problems: readonly string[]
  constructor(method: string, problems: readonly string[]) {
    super(`storage adapter broke the contract of ${method}: ${problems.join('; ')}`)
    this.name = 'StorageContractViolation'
    this.method = method
    this.problems = problems
  }
}

const id = z.string().min(1)
const date = z.date()
const json = z.record(z.string(), z.unknown())
const flags = z.strictObject({
  ssoLinked: z.boolean(),
  ssoInvalid: z.boolean(),
  memberLimitRestricted: z.boolean(),
  idpProvisioned: z.boolean(),
  idpRoleRestricted: z.boolean(),
})
const organization = z.object({ id, slug: z.string(), name: z.string(), defaultRole: z.string(), require2fa: z.boolean() })
const user = z.object({
  id,
  username: z.string(),
  email: z.string(),
  name: z.string(),
  isActive: z.boolean(),
  isSuspended: z.boolean(),
  hasUsablePassword: z.boolean(),
  has2fa: z.boolean(),
  createdAt: date,
})
const userEmail = z.object({ userId: id, email: z.string(), emailNormalized: z.string(), isVerified: z.boolean(), isPrimary: z.boolean() })
const provider = z.object({
  id,
  organizationId: id,
  providerKey: z.string(),
  config: json,
  allowUnlinked: z.boolean(),
  scimEnabled: z.boolean(),
  createdAt: date,
})
const identity = z.object({
  id,
  authProviderId: id,
  userId: id,
  ident: z.string(),
  data: json,
  lastVerified: date,
  lastSynced: date,
  createdAt: date,
})
const member = z.object({
  id,
  organizationId: id,
  userId: id.nullable(),
  email: z.string().nullable(),
  emailNormalized: z.string().nullable(),
  role: z.string(),
  flags,
  inviteTokenHash: z.string().nullable(),
  inviteExpiresAt: date.nullable(),
  inviteStatus: z.enum(['approved', 'requested_to_be_invited', 'requested_to_join']),
  createdAt: date,
})
const linked = z.object({ identity, user, member: member.nullable() })
const match = z.object({ user, email: userEmail })
const state = z.object({ id, version: z.number().int().nonnegative(), body: z.string(), expiresAt: date })
const token = z.object({ hash: z.string(), purpose: z.string(), payload: z.string(), expiresAt: date })
const count = z.number().int().nonnegative()
const work = z.object({
  id,
  kind: z.string().min(1),
  organizationId: id,
  key: z.string().min(1),
  payload: z.string(),
  cursor: z.string().nullable(),
  attempts: z.number().int().nonnegative(),
  availableAt: date,
  claimToken: z.string().nullable(),
  createdAt: date,
})

const orgDomain = z.object({
  id,
  organizationId: id,
  domain: z.string().min(1),
  verificationToken: z.string(),
  verifiedAt: date.nullable(),
  createdAt: date,
})

type Check<T> = (value: T) => string | null

function validated<T>(method: string, schema: z.ZodType, value: T, ...checks: Check<T>[]): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    throw new StorageContractViolation(
      method,
      parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`),
    )
  }
  const problems = checks.map((c) => c(value)).filter((p): p is string => p !== null)
  if (problems.length > 0) throw new StorageContractViolation(method, problems)
  return value
}

const same = (what: string, actual: unknown, expected: unknown): string | null =>
  actual === expected ? null : `${what} is ${JSON.stringify(actual)}, asked for ${JSON.stringify(expected)}`

function orderedPage(rows: readonly { id: string }[], page: { after?: string | null | undefined; limit: number }): string | null {
  if (rows.length > Math.max(0, page.limit)) return `returned ${rows.length} rows for limit ${page.limit}`
  for (const [i, row] of rows.entries()) {
    if (page.after != null && !(row.id > page.after)) return `row ${row.id} is not after ${page.after}`
    const prev = rows[i - 1]
    if (prev !== undefined && !(prev.id < row.id)) return `rows are not in ascending id order (${prev.id}, ${row.id})`
  }
  return null
}

function validatingReader(r: StorageReader, where: string): StorageReader {
  const m = (name: string) => `${where}${name}`
  const withProvider = r.getOrganizationWithProvider?.bind(r)
  return {
    ...(withProvider
      ? {
          getOrganizationWithProvider: async (orgId: string) =>
            validated(
              m('getOrganizationWithProvider'),
              z.object({ organization, provider: provider.nullable() }).nullable(),
              await withProvider(orgId),
              (v) => v && same('organization.id', v.organization.id, orgId),
              (v) => (v?.provider ? same('provider.organizationId', v.provider.organizationId, orgId) : null),
            ),
        }
      : {}),
    getOrganization: async (orgId) =>
      validated(m('getOrganization'), organization.nullable(), await r.getOrganization(orgId), (v) => v && same('id', v.id, orgId)),
    getAuthProvider: async (orgId) =>
      validated(
        m('getAuthProvider'),
        provider.nullable(),
        await r.getAuthProvider(orgId),
        (v) => v && same('organizationId', v.organizationId, orgId),
      ),
    getAuthProviderById: async (providerId) =>
      validated(
        m('getAuthProviderById'),
        provider.nullable(),
        await r.getAuthProviderById(providerId),
        (v) => v && same('id', v.id, providerId),
      ),
    getIdentity: async (p, ident) =>
      validated(
        m('getIdentity'),
        identity.nullable(),
        await r.getIdentity(p, ident),
        (v) => v && same('authProviderId', v.authProviderId, p),
        (v) => v && same('ident', v.ident, ident),
      ),
    getIdentityById: async (identityId) =>
      validated(m('getIdentityById'), identity.nullable(), await r.getIdentityById(identityId), (v) => v && same('id', v.id, identityId)),
    getIdentityForUser: async (p, userId) =>
      validated(
        m('getIdentityForUser'),
        identity.nullable(),
        await r.getIdentityForUser(p, userId),
        (v) => v && same('authProviderId', v.authProviderId, p),
        (v) => v && same('userId', v.userId, userId),
      ),
    listIdentitiesForUser: async (userId) =>
      validated(
        m('listIdentitiesForUser'),
        z.array(identity),
        await r.listIdentitiesForUser(userId),
        (v) => v.map((x) => same('userId', x.userId, userId)).find((q) => q !== null) ?? null,
        (v) => (v.every((x, i) => i === 0 || (v[i - 1] as { id: string }).id < x.id) ? null : 'identities not ordered by id'),
      ),
    getLinkedIdentity: async (p, ident, orgId) =>
      validated(
        m('getLinkedIdentity'),
        linked.nullable(),
        await r.getLinkedIdentity(p, ident, orgId),
        (v) => v && (same('identity.authProviderId', v.identity.authProviderId, p) ?? same('identity.ident', v.identity.ident, ident)),
        (v) => v && same('user.id', v.user.id, v.identity.userId),
        (v) =>
          v?.member
            ? (same('member.organizationId', v.member.organizationId, orgId) ?? same('member.userId', v.member.userId, v.user.id))
            : null,
      ),
    getUser: async (userId) => validated(m('getUser'), user.nullable(), await r.getUser(userId), (v) => v && same('id', v.id, userId)),
    findUsersByEmail: async (e) =>
      validated(
        m('findUsersByEmail'),
        z.array(match),
        await r.findUsersByEmail(e),
        (v) => v.map((x) => (x.user.isActive ? null : `inactive user ${x.user.id} returned`)).find((p) => p !== null) ?? null,
        (v) => v.map((x) => same('email.emailNormalized', x.email.emailNormalized, e)).find((p) => p !== null) ?? null,
        (v) => v.map((x) => same('email.userId', x.email.userId, x.user.id)).find((p) => p !== null) ?? null,
      ),
    getMember: async (orgId, userId) =>
      validated(
        m('getMember'),
        member.nullable(),
        await r.getMember(orgId, userId),
        (v) => v && (same('organizationId', v.organizationId, orgId) ?? same('userId', v.userId, userId)),
      ),
    getMemberById: async (memberId) =>
      validated(m('getMemberById'), member.nullable(), await r.getMemberById(memberId), (v) => v && same('id', v.id, memberId)),
    getInviteByEmail: async (orgId, e) =>
      validated(
        m('getInviteByEmail'),
        member.nullable(),
        await r.getInviteByEmail(orgId, e),
        (v) =>
          v &&
          (same('organizationId', v.organizationId, orgId) ??
            same('emailNormalized', v.emailNormalized, e) ??
            same('userId', v.userId, null)),
      ),
    listMembers: async (orgId, page) =>
      validated(
        m('listMembers'),
        z.array(member),
        await r.listMembers(orgId, page),
        (v) => v.map((x) => same('organizationId', x.organizationId, orgId)).find((p) => p !== null) ?? null,
        (v) => orderedPage(v, page),
        (v) =>
          page.unlinkedOnly === true
            ? (v
                .map((x) => (x.userId !== null && !x.flags.ssoLinked ? null : `member ${x.id} is not an unlinked accepted member`))
                .find((p) => p !== null) ?? null)
            : null,
      ),
    ...(r.listMemberRecipients
      ? ((list: NonNullable<StorageReader['listMemberRecipients']>) => ({
          listMemberRecipients: async (orgId: string, page: MemberPage) =>
            validated(
              m('listMemberRecipients'),
              z.array(z.object({ member, user: user.nullable() })),
              await list(orgId, page),
              (v) => v.map((x) => same('organizationId', x.member.organizationId, orgId)).find((p) => p !== null) ?? null,
              (v) =>
                orderedPage(
                  v.map((x) => x.member),
                  page,
                ),
              (v) =>
                v
                  .map((x) =>
                    x.user === null
                      ? null
                      : x.member.userId === null
                        ? `member ${x.member.id} is an invite but has a user`
                        : same(`user of member ${x.member.id}`, x.user.id, x.member.userId),
                  )
                  .find((p) => p !== null) ?? null,
              (v) =>
                page.unlinkedOnly === true
                  ? (v
                      .map((x) =>
                        x.member.userId !== null && !x.member.flags.ssoLinked
                          ? null
                          : `member ${x.member.id} is not an unlinked accepted member`,
                      )
                      .find((p) => p !== null) ?? null)
                  : null,
            ),
        }))(r.listMemberRecipients.bind(r))
      : {}),
    ...(r.listOrganizationDomains
      ? ((list: NonNullable<StorageReader['listOrganizationDomains']>) => ({
          listOrganizationDomains: async (orgId: string) =>
            validated(
              m('listOrganizationDomains'),
              z.array(orgDomain),
              await list(orgId),
              (v) => v.map((x) => same('organizationId', x.organizationId, orgId)).find((p) => p !== null) ?? null,
            ),
        }))(r.listOrganizationDomains.bind(r))
      : {}),
    ...(r.findVerifiedDomains
      ? ((find: NonNullable<StorageReader['findVerifiedDomains']>) => ({
          findVerifiedDomains: async (domain: string) =>
            validated(
              m('findVerifiedDomains'),
              z.array(orgDomain),
              await find(domain),
              (v) => v.map((x) => same('domain', x.domain, domain)).find((p) => p !== null) ?? null,
              (v) => (v.some((x) => x.verifiedAt === null) ? 'returned a domain that is not verified' : null),
            ),
        }))(r.findVerifiedDomains.bind(r))
      : {}),
    listIdentities: async (p, page) =>
      validated(
        m('listIdentities'),
        z.array(identity),
        await r.listIdentities(p, page),
        (v) => v.map((x) => same('authProviderId', x.authProviderId, p)).find((q) => q !== null) ?? null,
        (v) => orderedPage(v, page),
      ),
  }
}

/**
 * Fails a call on a transaction handle that starts while another call on the same handle has
 * not settled: a SQL transaction is one connection, which runs one statement at a time
 * (node-postgres deprecates overlapping queries on a client and pg 9 refuses them; Kysely and
 * Drizzle queue them silently). The first violation is remembered and rethrown by
 * `transaction` even when the caller catches it.
 */
function sequential(tx: StorageTx, onViolation: (v: StorageContractViolation) => void): StorageTx {
  let running: string | null = null
  const wrapped = {} as Record<string, unknown>
  for (const [name, value] of Object.entries(tx) as [string, unknown][]) {
    if (typeof value !== 'function') {
      wrapped[name] = value
      continue
    }
    wrapped[name] = async (...args: unknown[]) => {
      if (running !== null) {
        const violation = new StorageContractViolation(`tx.${name}`, [
          `called while tx.${running} is still running: calls on one transaction handle must be sequential (await each one; no Promise.all)`,
        ])
        onViolation(violation)
        throw violation
      }
      running = name
      try {
        return await (value as (...a: unknown[]) => Promise<unknown>)(...args)
      } finally {
        running = null
      }
    }
  }
  return wrapped as unknown as StorageTx
}

function validatingTx(tx: StorageTx): StorageTx {
  const b = (name: string, value: boolean): boolean => validated(`tx.${name}`, z.boolean(), value)
  const n = (name: string, value: number): number => validated(`tx.${name}`, count, value)
  return {
    ...validatingReader(tx, 'tx.'),
    lockIdentity: async (p, ident) =>
      validated('tx.lockIdentity', provider.nullable(), await tx.lockIdentity(p, ident), (v) => v && same('id', v.id, p)),
    lockAuthProvider: async (orgId, mode) =>
      validated(
        'tx.lockAuthProvider',
        provider.nullable(),
        await tx.lockAuthProvider(orgId, mode),
        (v) => v && same('organizationId', v.organizationId, orgId),
      ),
    lockEmail: (e) => tx.lockEmail(e),
    createUser: (u, e) => tx.createUser(u, e),
    createIdentity: (i) => tx.createIdentity(i),
    updateIdentity: async (i, patch) => b('updateIdentity', await tx.updateIdentity(i, patch)),
    deleteIdentity: async (i) => b('deleteIdentity', await tx.deleteIdentity(i)),
    deleteIdentitiesForUser: async (p, u, except) => n('deleteIdentitiesForUser', await tx.deleteIdentitiesForUser(p, u, except)),
    deleteIdentitiesForProvider: async (p) => n('deleteIdentitiesForProvider', await tx.deleteIdentitiesForProvider(p)),
    createMember: (x) => tx.createMember(x),
    updateMember: async (i, patch) => b('updateMember', await tx.updateMember(i, patch)),
    acceptInvite: async (i, acceptance) => b('acceptInvite', await tx.acceptInvite(i, acceptance)),
    deleteMember: async (i) => b('deleteMember', await tx.deleteMember(i)),
    setFlagsForOrganization: async (o, f) => n('setFlagsForOrganization', await tx.setFlagsForOrganization(o, f)),
    createAuthProvider: (p) => tx.createAuthProvider(p),
    updateAuthProvider: async (i, patch) => b('updateAuthProvider', await tx.updateAuthProvider(i, patch)),
    deleteAuthProvider: async (i) => b('deleteAuthProvider', await tx.deleteAuthProvider(i)),
    updateOrganization: async (i, patch) => b('updateOrganization', await tx.updateOrganization(i, patch)),
    appendAudit: (e) => tx.appendAudit(e),
    ...(tx.createOrganizationDomain ? { createOrganizationDomain: tx.createOrganizationDomain.bind(tx) } : {}),
    ...(tx.verifyOrganizationDomain
      ? {
          verifyOrganizationDomain: async (i: string, at: Date) =>
            b('verifyOrganizationDomain', await (tx.verifyOrganizationDomain?.(i, at) ?? Promise.resolve(false))),
        }
      : {}),
    ...(tx.deleteOrganizationDomain
      ? {
          deleteOrganizationDomain: async (i: string) =>
            b('deleteOrganizationDomain', await (tx.deleteOrganizationDomain?.(i) ?? Promise.resolve(false))),
        }
      : {}),
    ...(tx.enqueueWork
      ? { enqueueWork: async (w: PendingWork) => b('enqueueWork', await (tx.enqueueWork?.(w) ?? Promise.resolve(false))) }
      : {}),
    ...(tx.lockIdentityAndEmail
      ? {
          lockIdentityAndEmail: async (p: string, ident: string, email: string) =>
            validated(
              'tx.lockIdentityAndEmail',
              provider.nullable(),
              await (tx.lockIdentityAndEmail as NonNullable<StorageTx['lockIdentityAndEmail']>)(p, ident, email),
              (v) => v && same('id', v.id, p),
            ),
        }
      : {}),
    ...(tx.readSignUp
      ? {
          readSignUp: async (p: string, ident: string, orgId: string, email: string) =>
            validated(
              'tx.readSignUp',
              z.object({ linked: linked.nullable(), emailMatches: z.array(match), invite: member.nullable() }),
              await (tx.readSignUp as NonNullable<StorageTx['readSignUp']>)(p, ident, orgId, email),
              (v) =>
                v.linked &&
                (same('identity.authProviderId', v.linked.identity.authProviderId, p) ??
                  same('identity.ident', v.linked.identity.ident, ident)),
              (v) => (v.linked?.member ? same('member.organizationId', v.linked.member.organizationId, orgId) : null),
              (v) =>
                v.emailMatches.map((m) => same('email.emailNormalized', m.email.emailNormalized, email)).find((x) => x !== null) ?? null,
              (v) =>
                v.invite
                  ? (same('invite.organizationId', v.invite.organizationId, orgId) ?? same('invite.userId', v.invite.userId, null))
                  : null,
            ),
        }
      : {}),
    ...(tx.createRows ? { createRows: (rows: NewRows) => (tx.createRows as NonNullable<StorageTx['createRows']>)(rows) } : {}),
    ...(tx.createRowsAndSettle
      ? {
          createRowsAndSettle: async (rows: NewRows, swap: StateSwap) =>
            b('createRowsAndSettle', await (tx.createRowsAndSettle as NonNullable<StorageTx['createRowsAndSettle']>)(rows, swap)),
        }
      : {}),
    ...(tx.updateIdentityIfUnchanged
      ? {
          updateIdentityIfUnchanged: async (expected: AuthIdentity, patch: AuthIdentityPatch) =>
            b(
              'updateIdentityIfUnchanged',
              await (tx.updateIdentityIfUnchanged as NonNullable<StorageTx['updateIdentityIfUnchanged']>)(expected, patch),
            ),
        }
      : {}),
    ...(tx.oneTimeTokens ? { oneTimeTokens: validatingTokens(tx.oneTimeTokens, 'tx.') } : {}),
    ...(tx.pipelineStates ? { pipelineStates: validatingStates(tx.pipelineStates, 'tx.') } : {}),
    ...(tx.readLinkedIdentity
      ? {
          readLinkedIdentity: async (p: string, ident: string, orgId: string) =>
            validated(
              'tx.readLinkedIdentity',
              z.object({ provider: provider.nullable(), linked: linked.nullable() }),
              await (tx.readLinkedIdentity as NonNullable<StorageTx['readLinkedIdentity']>)(p, ident, orgId),
              (v) => v.provider && same('provider.id', v.provider.id, p),
              (v) =>
                v.linked &&
                (same('identity.authProviderId', v.linked.identity.authProviderId, p) ??
                  same('identity.ident', v.linked.identity.ident, ident)),
              (v) => v.linked && same('user.id', v.linked.user.id, v.linked.identity.userId),
              (v) =>
                v.linked?.member
                  ? (same('member.organizationId', v.linked.member.organizationId, orgId) ??
                    same('member.userId', v.linked.member.userId, v.linked.user.id))
                  : null,
            ),
        }
      : {}),
  }
}

function validatingStates(s: PipelineStateStore, prefix = ''): PipelineStateStore {
  return {
    create: (x) => s.create(x),
    load: async (stateId) =>
      validated(`${prefix}pipelineStates.load`, state.nullable(), await s.load(stateId), (v) => v && same('id', v.id, stateId)),
    compareAndSet: async (stateId, expected, next) =>
      validated(`${prefix}pipelineStates.compareAndSet`, z.boolean(), await s.compareAndSet(stateId, expected, next)),
    delete: (stateId) => s.delete(stateId),
    deleteExpired: async (now, limit) =>
      validated(`${prefix}pipelineStates.deleteExpired`, count, await s.deleteExpired(now, limit), (v) =>
        limit !== undefined && v > limit ? `deleted ${v} rows for limit ${limit}` : null,
      ),
  }
}

function validatingWork(w: PendingWorkStore): PendingWorkStore {
  return {
    claim: async (now, leaseUntil, claimToken) =>
      validated(
        'pendingWork.claim',
        work.nullable(),
        await w.claim(now, leaseUntil, claimToken),
        (v) => v && (same('claimToken', v.claimToken, claimToken) ?? same('availableAt', v.availableAt.getTime(), leaseUntil.getTime())),
      ),
    advance: async (workId, claimToken, progress) =>
      validated('pendingWork.advance', z.boolean(), await w.advance(workId, claimToken, progress)),
    complete: async (workId, claimToken) => validated('pendingWork.complete', z.boolean(), await w.complete(workId, claimToken)),
  }
}

function validatingTokens(t: OneTimeTokenStore, prefix = ''): OneTimeTokenStore {
  const checks = (hash: string, purpose: string, now: Date): Check<OneTimeTokenRecord | null>[] => [
    (v) => v && (same('hash', v.hash, hash) ?? same('purpose', v.purpose, purpose)),
    (v) => (v && !(v.expiresAt.getTime() > now.getTime()) ? `expired token returned (expiresAt ${v.expiresAt.toISOString()})` : null),
  ]
  return {
    create: (x) => t.create(x),
    consume: async (hash, purpose, now) =>
      validated(`${prefix}oneTimeTokens.consume`, token.nullable(), await t.consume(hash, purpose, now), ...checks(hash, purpose, now)),
    peek: async (hash, purpose, now) =>
      validated(`${prefix}oneTimeTokens.peek`, token.nullable(), await t.peek(hash, purpose, now), ...checks(hash, purpose, now)),
    ...(t.deleteExpired
      ? {
          deleteExpired: async (now: Date, limit: number) =>
            validated(`${prefix}oneTimeTokens.deleteExpired`, count, await (t.deleteExpired?.(now, limit) ?? 0), (v) =>
              v > limit ? `deleted ${v} rows for limit ${limit}` : null,
            ),
        }
      : {}),
  }
}

const CONSTRAINTS: ReadonlySet<string> = new Set<UniqueConstraint>([
  'auth_provider.organization',
  'auth_identity.provider_ident',
  'auth_identity.provider_user',
  'member.organization_user',
  'member.organization_email',
  'member.invite_token',
  'user.username',
  'user.email',
  'user_email.user_email',
  'pipeline_state.id',
  'one_time_token.hash',
  'organization_domain.organization_domain',
  'organization_domain.verified',
])

/**
 * Wraps a storage adapter so that every value it returns is checked against the port's
 * contract; a violation throws {@link StorageContractViolation} naming the method. Also
 * checks that a thrown conflict names a known constraint, and that calls on one transaction
 * handle never overlap (a call started before the previous one settled fails, and so does the
 * transaction, even if the caller caught the first failure). Other properties of the adapter
 * (e.g. `seed`, `snapshot`, `seedHostData`) pass through unchanged. Meant for tests.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { validatingStorage } from 'ssoflow/testing'
 * const storage = validatingStorage(createMemoryStorage()) // your adapter instead of the memory one
 * const sso = createAuthPipeline({ ...ports, storage, providers: {}, secret, urls })
 * ```
 * @group Testing
 */
export function validatingStorage<S extends StoragePort>(storage: S): S {
  const reader = validatingReader(storage, '')
  const states = validatingStates(storage.pipelineStates)
  const tokens = validatingTokens(storage.oneTimeTokens)
  const pendingWork = storage.pendingWork ? validatingWork(storage.pendingWork) : undefined
  const transaction: StoragePort['transaction'] = async (fn) => {
    let overlap: StorageContractViolation | null = null
    try {
      const value = await storage.transaction(async (tx) => {
        const result = await fn(
          sequential(validatingTx(tx), (v) => {
            overlap ??= v
          }),
        )
        if (overlap !== null) throw overlap
        return result
      })
      return value
    } catch (error) {
      if (overlap !== null) throw overlap
      const constraint = (error as { conflict?: unknown; constraint?: unknown } | null)?.constraint
      if ((error as { conflict?: unknown } | null)?.conflict === true && (typeof constraint !== 'string' || !CONSTRAINTS.has(constraint))) {
        throw new StorageContractViolation('transaction', [`conflict with unknown constraint ${JSON.stringify(constraint)}`])
      }
      throw error
    }
  }
  const overrides: Record<string | symbol, unknown> = {
    ...reader,
    transaction,
    pipelineStates: states,
    oneTimeTokens: tokens,
    ...(pendingWork ? { pendingWork } : {}),
  }
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop]
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
