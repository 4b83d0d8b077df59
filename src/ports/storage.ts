import type {
  AuditEntry,
  AuthIdentity,
  AuthProvider,
  Member,
  MemberFlags,
  Organization,
  OrganizationDomain,
  User,
  UserEmail,
} from '../model/records.js'

/**
 * Names of the unique constraints a storage adapter must enforce (spec 1.2), plus `user.email`:
 * the name an adapter reports when a host's own unique index on its users' address fires (ssoflow
 * needs no such index, but a host's users table may have one). The engine turns `user.email`
 * into a non-retryable `IDENTITY_CONFLICT`; `organization_domain.verified` (a domain verified by
 * another organization) into `DOMAIN_TAKEN`; every other name into a retryable `STORAGE_CONFLICT`.
 * @group Ports
 */
export type UniqueConstraint =
  | 'auth_provider.organization'
  | 'auth_identity.provider_ident'
  | 'auth_identity.provider_user'
  | 'member.organization_user'
  | 'member.organization_email'
  | 'member.invite_token'
  | 'user.username'
  | 'user.email'
  | 'user_email.user_email'
  | 'pipeline_state.id'
  | 'one_time_token.hash'
  /** An organization claims a domain once: unique on (organization, domain). */
  | 'organization_domain.organization_domain'
  /** At most one organization has a domain verified: unique on the domain among verified rows. */
  | 'organization_domain.verified'

/**
 * Thrown by storage adapters when a write violates a unique constraint. It is the only error a
 * port throws on purpose; the engine turns it into a typed `STORAGE_CONFLICT` (or a domain
 * error) and rolls the transaction back. A plain class with public fields only.
 * @group Ports
 */
export class StorageConflictError extends Error {
  readonly constraint: UniqueConstraint
  readonly conflict: true = true
  constructor(constraint: UniqueConstraint, options?: { cause?: unknown }) {
    super(`unique constraint violated: ${constraint}`, options)
    this.name = 'StorageConflictError'
    this.constraint = constraint
  }
}

/**
 * Recognises a {@link StorageConflictError}, also across package copies (duck-typed).
 *
 * @example
 * ```ts
 * import { isStorageConflict, StorageConflictError } from 'ssoflow'
 *
 * // A wrapper around a storage port (metrics, tracing) lets conflicts through untouched: the engine
 * // turns them into STORAGE_CONFLICT (or IDENTITY_CONFLICT for `user.email`).
 * function countFailure(error: unknown): void {
 *   if (!isStorageConflict(error)) console.warn('storage failure', error)
 * }
 * isStorageConflict(new StorageConflictError('auth_identity.provider_ident')) // true, also across package copies
 * ```
 * @group Ports
 */
export function isStorageConflict(error: unknown): error is StorageConflictError {
  return (
    error instanceof StorageConflictError ||
    (typeof error === 'object' &&
      error !== null &&
      (error as { conflict?: unknown }).conflict === true &&
      typeof (error as { constraint?: unknown }).constraint === 'string')
  )
}

/**
 * An active user matched by email, with the matching address row.
 * @group Ports
 */
export interface UserEmailMatch {
  readonly user: User
  readonly email: UserEmail
}

/**
 * A linked identity with its user and the user's membership in one organization, read in one
 * round trip on the hot path (returning login).
 * @group Ports
 */
export interface LinkedIdentity {
  readonly identity: AuthIdentity
  readonly user: User
  /** The user's membership in the organization asked for, or null. */
  readonly member: Member | null
}

/**
 * What a sign-up decides on, read in one round trip under the identity and address locks
 * ({@link StorageTx.readSignUp}).
 * @group Ports
 */
export interface SignUpRead {
  /** As {@link StorageReader.getLinkedIdentity} answers. */
  readonly linked: LinkedIdentity | null
  /** As {@link StorageReader.findUsersByEmail} answers for the address (ordered by user id). */
  readonly emailMatches: readonly UserEmailMatch[]
  /** As {@link StorageReader.getInviteByEmail} answers for the organization and the address. */
  readonly invite: Member | null
}

/**
 * New rows written together ({@link StorageTx.createRows}): users with their primary address,
 * identities, members and audit entries.
 * @group Ports
 */
export interface NewRows {
  readonly users: readonly { readonly user: User; readonly email: UserEmail }[]
  readonly identities: readonly AuthIdentity[]
  readonly members: readonly Member[]
  readonly audit: readonly AuditEntry[]
}

/**
 * A pipeline state's compare-and-set ({@link PipelineStateStore.compareAndSet}) carried by
 * another write ({@link StorageTx.createRowsAndSettle}).
 * @group Ports
 */
export interface StateSwap {
  readonly id: string
  readonly expectedVersion: number
  /** The new row: same `id`, `version` = `expectedVersion + 1`. */
  readonly next: StoredPipelineState
}

/**
 * An organization with its provider row (at most one), read in one round trip.
 * @group Ports
 */
export interface OrganizationWithProvider {
  readonly organization: Organization
  /** The organization's provider, or null when it has none. */
  readonly provider: AuthProvider | null
}

/**
 * What {@link StorageTx.readLinkedIdentity} returns: the provider row (held shared until the
 * transaction ends) and the linked identity, both as one consistent read.
 * @group Ports
 */
export interface LinkedIdentityRead {
  /** As {@link StorageTx.lockIdentity} returns it: null when the row does not exist. */
  readonly provider: AuthProvider | null
  readonly linked: LinkedIdentity | null
}

/**
 * A member with its user (null for a pending invite or a missing user row): one row of
 * {@link StorageReader.listMemberRecipients}.
 * @group Ports
 */
export interface MemberRecipient {
  readonly member: Member
  readonly user: User | null
}

/**
 * Paging options for member lists. Rows are ordered by `id` ascending; `after` is exclusive.
 * @group Ports
 */
export interface MemberPage {
  readonly after?: string | null | undefined
  readonly limit: number
  /** Only accepted members (userId set) whose `ssoLinked` flag is off. */
  readonly unlinkedOnly?: boolean | undefined
}

/**
 * Reads. Every method returns `null` (or `[]`) for absent rows and throws only on failure.
 * Available on the storage itself and inside a transaction.
 * @group Ports
 */
export interface StorageReader {
  getOrganization(id: string): Promise<Organization | null>
  /**
   * Optional: the organization and its provider in one round trip (a join), or null when the
   * organization does not exist. Engines fall back to {@link StorageReader.getOrganization} and
   * {@link StorageReader.getAuthProvider} when an adapter does not offer it.
   */
  getOrganizationWithProvider?(organizationId: string): Promise<OrganizationWithProvider | null>
  /** The organization's provider (at most one), or null. */
  getAuthProvider(organizationId: string): Promise<AuthProvider | null>
  getAuthProviderById(id: string): Promise<AuthProvider | null>
  /** Identity by (provider, external id). */
  getIdentity(authProviderId: string, ident: string): Promise<AuthIdentity | null>
  getIdentityById(id: string): Promise<AuthIdentity | null>
  /** Identity by (provider, user): a user has at most one per provider. */
  getIdentityForUser(authProviderId: string, userId: string): Promise<AuthIdentity | null>
  /**
   * Every identity of a user, all providers, ordered by id. Read when an anonymous pipeline
   * claims an existing account, to report the identities already on it (threat 3).
   */
  listIdentitiesForUser(userId: string): Promise<readonly AuthIdentity[]>
  /** Identity + user + the user's membership in `organizationId`, in one round trip. */
  getLinkedIdentity(authProviderId: string, ident: string, organizationId: string): Promise<LinkedIdentity | null>
  getUser(id: string): Promise<User | null>
  /**
   * Active users having an address whose normalized form equals `emailNormalized`
   * (exact comparison of the normalized column; normalization is the core's job).
   */
  findUsersByEmail(emailNormalized: string): Promise<readonly UserEmailMatch[]>
  /** The accepted membership of (organization, user). */
  getMember(organizationId: string, userId: string): Promise<Member | null>
  getMemberById(id: string): Promise<Member | null>
  /** A pending invite or invite request (userId null) of the organization for an address. */
  getInviteByEmail(organizationId: string, emailNormalized: string): Promise<Member | null>
  /** Members of an organization, ordered by id, paged. */
  listMembers(organizationId: string, page: MemberPage): Promise<readonly Member[]>
  /**
   * One page of {@link StorageReader.listMembers} with each member's user, in ONE query (a left
   * join): what the background mail drain reads per page (issue 16: one query per page, never
   * one per member). Same order, paging and `unlinkedOnly` filter as `listMembers`; `user` is
   * `null` for a pending invite and when the user row is gone.
   *
   * Optional: without it the drain reads `listMembers` and then each member's user (one query
   * per member).
   */
  listMemberRecipients?(organizationId: string, page: MemberPage): Promise<readonly MemberRecipient[]>
  /** Identities of a provider, ordered by id, paged (`after` exclusive). */
  listIdentities(authProviderId: string, page: { after?: string | null | undefined; limit: number }): Promise<readonly AuthIdentity[]>
  /**
   * Verified domains (issue 13), optional with {@link StorageReader.findVerifiedDomains} and the
   * three domain writes of {@link StorageTx}: the domains an organization claims, verified or
   * not, ordered by `domain`. Without the domain members, the engine's domain calls and
   * `beginLogin({ email })` answer `CONFIG_INVALID` (`details.reason: 'domains-not-supported'`).
   */
  listOrganizationDomains?(organizationId: string): Promise<readonly OrganizationDomain[]>
  /**
   * The VERIFIED rows of a normalized domain (exact comparison), ordered by organization id:
   * home-realm discovery's one read. At most one when the adapter enforces
   * `organization_domain.verified`; the engine treats more than one (a host's own data) like none.
   */
  findVerifiedDomains?(domain: string): Promise<readonly OrganizationDomain[]>
}

/** Fields of an identity that can change. */
export type AuthIdentityPatch = Partial<Pick<AuthIdentity, 'userId' | 'ident' | 'data' | 'lastVerified' | 'lastSynced'>>
/** Fields of a member that can change. */
export type MemberPatch = Partial<
  Pick<Member, 'userId' | 'email' | 'emailNormalized' | 'role' | 'flags' | 'inviteTokenHash' | 'inviteExpiresAt' | 'inviteStatus'>
>
/**
 * What accepting an invite writes: the accepting user and the membership's flags (the address
 * and token fields are cleared).
 */
export interface InviteAcceptance {
  readonly userId: string
  readonly flags: MemberFlags
}
/** Fields of a provider that can change. */
export type AuthProviderPatch = Partial<Pick<AuthProvider, 'config' | 'allowUnlinked' | 'scimEnabled'>>
/** Fields of an organization ssoflow changes. */
export type OrganizationPatch = Partial<Pick<Organization, 'require2fa' | 'defaultRole'>>

/**
 * A transaction. Writes throw {@link StorageConflictError} on unique violations; any throw
 * rolls the whole transaction back.
 * @group Ports
 */
export interface StorageTx extends StorageReader {
  /**
   * Serialises concurrent finishes for one (provider, external id) until the transaction ends
   * (PostgreSQL advisory lock, a mutex...), and reads the provider row `authProviderId` holding
   * it in shared mode until the transaction ends (as {@link StorageTx.lockAuthProvider} with
   * `'share'`).
   *
   * Contract:
   * - the identity lock is taken whether or not the provider row exists; a no-op lock is
   *   allowed only when the store serialises all transactions;
   * - the returned row is the provider as committed when the lock was granted, or as this
   *   transaction changed it; `null` when it does not exist (deleted by a transaction that
   *   committed first, or by this one);
   * - while this transaction holds the row, a concurrent `lockAuthProvider(…, 'update')` (and
   *   so a concurrent disable) waits until it ends; a transaction that deleted the row and
   *   committed before this call makes it return `null`.
   *
   * Engines call it first in every login transaction: a login whose provider was disabled or
   * replaced meanwhile ends with an error and writes nothing. Adapters should take both locks in
   * one round trip where they can (the login's hot path).
   */
  lockIdentity(authProviderId: string, ident: string): Promise<AuthProvider | null>
  /**
   * Optional, the returning login's read: the provider row `authProviderId` held in shared mode
   * until the transaction ends (exactly as {@link StorageTx.lockIdentity} holds and returns it)
   * and {@link StorageReader.getLinkedIdentity}, WITHOUT the identity lock, in one round trip
   * where the store allows it (one statement on PostgreSQL). The two parts must be one
   * consistent read (one statement, or a serialised store).
   *
   * Engines use its answer only for a decision that writes nothing but the pipeline state (a
   * returning user whose identity needs no refresh): reads alone cannot lose an update; or for
   * the refresh of that identity row through {@link StorageTx.updateIdentityIfUnchanged}, a
   * write guarded by the row as read. Any other decision that writes takes
   * {@link StorageTx.lockIdentity} and reads again. Adapters without it get the locked path
   * every time.
   */
  readLinkedIdentity?(authProviderId: string, ident: string, organizationId: string): Promise<LinkedIdentityRead>
  /**
   * Reads the organization's provider row (at most one) and locks it until the transaction
   * ends. Returns `null` when the organization has no provider (after waiting for a transaction
   * that held the row in `'update'` mode and deleted it).
   *
   * - `'share'`: concurrent `'share'` holders (and {@link StorageTx.lockIdentity}) proceed; a
   *   concurrent `'update'` waits until this transaction ends. Use it for decisions that must
   *   not outlive the provider (queueing link requests).
   * - `'update'`: exclusive: concurrent `'share'`, `'update'` and `lockIdentity` callers for this
   *   row wait until this transaction ends, and then see the row as this transaction left it
   *   (`null` if it deleted it). Use it before changing or deleting the provider: of two
   *   concurrent disables, the second sees `null`.
   *
   * A store that serialises all transactions may implement both modes as a plain read.
   */
  lockAuthProvider(organizationId: string, mode: 'share' | 'update'): Promise<AuthProvider | null>
  /**
   * Serialises concurrent transactions for one normalized address until the transaction ends
   * (threats 10, 52): the engine takes it before it reads "does an active account have this
   * email?" and creates a user with it, so two sign-ups with one address cannot both see "none".
   * It must not rely on a unique email index (a host's users table may have none). A no-op is
   * allowed only when the store serialises all transactions. Take it after `lockIdentity`.
   */
  lockEmail(emailNormalized: string): Promise<void>
  /**
   * Optional: {@link StorageTx.lockIdentity} then {@link StorageTx.lockEmail}, in one round trip
   * where the store allows it (one statement on PostgreSQL), returning what `lockIdentity`
   * returns. Both locks are held when it returns, with the guarantees of the two methods. The
   * engine takes it for a login that may create a user (`policy.newUser: 'create'`, `op=newuser`).
   */
  lockIdentityAndEmail?(authProviderId: string, ident: string, emailNormalized: string): Promise<AuthProvider | null>
  /**
   * Optional: {@link StorageReader.getLinkedIdentity}, {@link StorageReader.findUsersByEmail}
   * and {@link StorageReader.getInviteByEmail} for one identity and one address, as ONE
   * consistent read (one statement, or a serialised store). The engine calls it after the
   * identity and address locks, in a statement of its own (a read in the statement that waited
   * for a lock could miss what the lock holder committed).
   */
  readSignUp?(authProviderId: string, ident: string, organizationId: string, emailNormalized: string): Promise<SignUpRead>
  /**
   * Creates a user and its primary address. Conflicts: `user.username`; `user.email` when the
   * host's users table has a unique index on the address (an inactive user may hold it: the
   * email lookup skips inactive users). Report a host index on the address as `user.email`, never
   * as `user.username` (that one is retried, and would fail forever).
   */
  createUser(user: User, primaryEmail: UserEmail): Promise<void>
  /** Conflicts: `auth_identity.provider_ident`, `auth_identity.provider_user`. */
  createIdentity(identity: AuthIdentity): Promise<void>
  /**
   * Optional: writes `rows` as {@link StorageTx.createUser}, {@link StorageTx.createIdentity},
   * {@link StorageTx.createMember} and {@link StorageTx.appendAudit} would, one call each, but in
   * one round trip where the store allows it (one statement on PostgreSQL). Same conflicts; on a
   * conflict nothing of `rows` is written. The engine uses it for a new account's rows.
   */
  createRows?(rows: NewRows): Promise<void>
  /**
   * Optional, offered with {@link StorageTx.createRows} and {@link StorageTx.pipelineStates}:
   * writes `rows` as `createRows` does, then settles a pipeline state as
   * `pipelineStates.compareAndSet(swap.id, swap.expectedVersion, swap.next)` does, in ONE round
   * trip (PostgreSQL: one statement, the inserts and the state's update in data-modifying CTEs).
   * Returns the compare-and-set's answer. On `false` the rows may have been written: the engine
   * then rolls the transaction back. Same conflicts as `createRows`; on a conflict neither the
   * rows nor the state are written. The engine uses it when a new account's rows are the last
   * writes of a login transaction that settles its state (a just-in-time sign-up, a confirmed
   * new account).
   */
  createRowsAndSettle?(rows: NewRows, swap: StateSwap): Promise<boolean>
  /** Same conflicts as create. Returns false when the row does not exist. */
  updateIdentity(id: string, patch: AuthIdentityPatch): Promise<boolean>
  /**
   * Optional, the returning login's refresh without the identity lock: updates identity
   * `expected.id` with `patch` iff its stored `userId`, `ident`, `data`, `lastVerified` and
   * `lastSynced` are still those of `expected` (the row as this transaction read it), in ONE
   * guarded write acting on the row count (e.g. `update … where id = ? and user_id = ? and ident
   * = ? and data = ? and last_verified = ? and last_synced = ?`; a read followed by an update by id
   * is NOT enough). A concurrent transaction that changed the row and has not committed yet makes
   * it wait (the row lock), then compare against the committed row. Returns false and changes
   * nothing when the row is gone or differs (the engine then rolls the transaction back, releasing
   * any row lock the re-check took, and decides again in a new transaction under
   * {@link StorageTx.lockIdentity} on a fresh read). `data` compares as stored (the adapter's own encoding of
   * `expected.data`); a row stored in another encoding may compare unequal (false: a slower path,
   * never a wrong one). Same conflicts as create.
   */
  updateIdentityIfUnchanged?(expected: AuthIdentity, patch: AuthIdentityPatch): Promise<boolean>
  deleteIdentity(id: string): Promise<boolean>
  /** Deletes the user's identities for a provider except `exceptId`; returns how many. */
  deleteIdentitiesForUser(authProviderId: string, userId: string, exceptId: string | null): Promise<number>
  /** Deletes every identity of a provider; returns how many. */
  deleteIdentitiesForProvider(authProviderId: string): Promise<number>
  /** Conflicts: `member.organization_user`, `member.organization_email`, `member.invite_token`. */
  createMember(member: Member): Promise<void>
  updateMember(id: string, patch: MemberPatch): Promise<boolean>
  /**
   * Accepts a pending invite in ONE guarded write (threat 49): iff row `id` is still an
   * unaccepted invite (`userId` null and `inviteStatus` `approved`), sets `userId` and `flags`
   * and clears `email`, `emailNormalized`, `inviteTokenHash` and `inviteExpiresAt`, e.g.
   * `update … where id = ? and user_id is null and invite_status = 'approved'` acting on the row
   * count (a read followed by an update by id is NOT enough: two transactions both read it
   * pending). Returns false and changes nothing when the row is missing or was accepted, turned
   * into a request or otherwise taken first; of N concurrent callers for one invite at most one
   * gets true. Conflicts: `member.organization_user`.
   */
  acceptInvite(id: string, acceptance: InviteAcceptance): Promise<boolean>
  deleteMember(id: string): Promise<boolean>
  /** Sets the given flags on every member of the organization; returns how many rows changed. */
  setFlagsForOrganization(organizationId: string, flags: Partial<MemberFlags>): Promise<number>
  /** Conflicts: `auth_provider.organization`. */
  createAuthProvider(provider: AuthProvider): Promise<void>
  updateAuthProvider(id: string, patch: AuthProviderPatch): Promise<boolean>
  deleteAuthProvider(id: string): Promise<boolean>
  updateOrganization(id: string, patch: OrganizationPatch): Promise<boolean>
  /** Appends an audit row (the default audit port writes here, atomically with the flow). */
  appendAudit(entry: AuditEntry): Promise<void>
  /**
   * Claims a domain for an organization (optional, see
   * {@link StorageReader.listOrganizationDomains}). Conflicts:
   * `organization_domain.organization_domain`; `organization_domain.verified` when the row is
   * inserted verified (seeding, imports) and another organization has the domain verified.
   */
  createOrganizationDomain?(domain: OrganizationDomain): Promise<void>
  /**
   * Marks row `id` verified at `verifiedAt`. Returns false when the row does not exist.
   * Conflicts: `organization_domain.verified` when another organization's row for the same domain
   * is verified; of N concurrent transactions verifying one domain for N organizations, exactly
   * one commits (a unique index, not a read-then-write check).
   */
  verifyOrganizationDomain?(id: string, verifiedAt: Date): Promise<boolean>
  /** Deletes row `id`; false when it does not exist. */
  deleteOrganizationDomain?(id: string): Promise<boolean>
  /**
   * Records background work (the outbox) atomically with the decision that causes it: it is
   * claimable once this transaction commits and never exists if it rolls back.
   *
   * Contract: inserts `work` unless a PENDING item with the same `key` exists (pending = not yet
   * completed; completed items are deleted); returns `true` when inserted, `false` when an item
   * with that key was already pending (nothing written). Of N concurrent transactions enqueueing
   * one key, at most one inserts (a unique index on `key`; a waiter sees `false` once the winner
   * commits). Never throws a {@link StorageConflictError} for the key.
   *
   * Optional, with {@link StoragePort.pendingWork}: an adapter without the outbox makes the
   * engine send the fan-out inside the request, after commit (every page at once, not resumable).
   */
  enqueueWork?(work: PendingWork): Promise<boolean>
  /**
   * The store's one-time tokens INSIDE this transaction: a token created or consumed through it
   * commits or rolls back with the transaction (a consumed verification link is live again after
   * a rollback). Optional: when absent, or when the engine was given a separate `tokens` store,
   * the engine uses that store and, if the transaction fails, puts back what it consumed and
   * removes what it created.
   */
  readonly oneTimeTokens?: OneTimeTokenStore | undefined
  /**
   * The store's pipeline states INSIDE this transaction: a compare-and-set made through it
   * commits or rolls back with the transaction. Optional: with it (and the engine's states in
   * this storage) a login consumes its state in the same transaction as its decision, one
   * statement; without it the engine claims the state before the transaction and consumes it
   * after commit (two more statements, and a crash between commit and consume leaves the state
   * claimed, never finishable twice).
   */
  readonly pipelineStates?: PipelineStateStore | undefined
}

/**
 * A server-side pipeline-state row. The body is the codec's opaque string; `version` is
 * bumped on every write and is what compare-and-set compares.
 * @group Ports
 */
export interface StoredPipelineState {
  readonly id: string
  readonly version: number
  readonly body: string
  readonly expiresAt: Date
}

/**
 * Pipeline-state repository. Implemented by storage adapters and by `ssoflow/redis`.
 * @group Ports
 */
export interface PipelineStateStore {
  /** Inserts a new state. Conflicts: `pipeline_state.id`. */
  create(state: StoredPipelineState): Promise<void>
  /** Loads a state, or null when absent or past `expiresAt`. */
  load(id: string): Promise<StoredPipelineState | null>
  /**
   * Replaces the state iff its current version equals `expectedVersion` and it has not
   * expired. Atomic: of N concurrent callers with the same expected version, exactly one gets
   * `true`. `next.version` must be `expectedVersion + 1`.
   */
  compareAndSet(id: string, expectedVersion: number, next: StoredPipelineState): Promise<boolean>
  /** Deletes the state (no-op when absent). */
  delete(id: string): Promise<void>
  /**
   * Deletes states whose `expiresAt` is at or before `now`; returns how many. With `limit`, at
   * most that many (the housekeeping drain sweeps in bounded batches and calls again while a
   * batch comes back full); without it, all of them.
   */
  deleteExpired(now: Date, limit?: number): Promise<number>
}

/**
 * A one-time token row (email verification links). Only the SHA-256 of the token is stored.
 * @group Ports
 */
export interface OneTimeTokenRecord {
  /** Hex SHA-256 of the token. */
  readonly hash: string
  /** What the token may be used for; a token of another purpose never matches. */
  readonly purpose: string
  /** JSON the engine binds to the token (user, email, org, provider, external id...). */
  readonly payload: string
  readonly expiresAt: Date
}

/**
 * One-time token repository: single use, expiring.
 * @group Ports
 */
export interface OneTimeTokenStore {
  /** Conflicts: `one_time_token.hash`. */
  create(token: OneTimeTokenRecord): Promise<void>
  /**
   * Atomically deletes and returns the token iff it exists, has this purpose and
   * `expiresAt > now`. Of N concurrent callers exactly one gets the record.
   */
  consume(hash: string, purpose: string, now: Date): Promise<OneTimeTokenRecord | null>
  /** Reads without consuming (null when absent, expired, or of another purpose). */
  peek(hash: string, purpose: string, now: Date): Promise<OneTimeTokenRecord | null>
  /**
   * Deletes at most `limit` tokens (any purpose) whose `expiresAt` is at or before `now`;
   * returns how many. Used by the housekeeping drain (`runPendingWork`). Spent tokens are
   * already gone (`consume` deletes), so this is what keeps the table bounded: expired
   * verification links, rate-limit rows, and SAML single-use response markers
   * (`single-use-response`), which are never consumed and live until they expire.
   * Optional: a store whose rows expire by themselves (Redis TTLs) may omit it.
   */
  deleteExpired?(now: Date, limit: number): Promise<number>
}

/**
 * A unit of background work in the outbox (`<prefix>pending_work`): the mail fan-out of
 * `finishSetup`, `resendLinkRequests` and `disableProvider`, recorded in their transaction and
 * carried out later, a page at a time, by `runPendingWork`. A row exists while the work is
 * pending; completing it deletes it.
 * @group Ports
 */
export interface PendingWork {
  /** Generated id (the engine's `ids`). */
  readonly id: string
  /** What to do: `link-requests` or `unlink-notices` (the engine's kinds; at most 64 characters). */
  readonly kind: string
  readonly organizationId: string
  /**
   * Deduplication key: at most one pending item per key ({@link StorageTx.enqueueWork}). The
   * engine uses `link-requests:<providerId>` for the setup mailing and every resend (a resend
   * while one is pending joins it) and `unlink-notices:<providerId>`.
   */
  readonly key: string
  /** JSON the engine binds to the work (provider id, names, login URL, idempotency reason). */
  readonly payload: string
  /** Paging position: the id of the last member handled, or null before the first page. */
  readonly cursor: string | null
  /** Failed attempts of the current page (reset when a page completes). */
  readonly attempts: number
  /** Not claimable before this instant: the lease of the worker holding it, or a retry backoff. */
  readonly availableAt: Date
  /** Token of the worker's current claim; null when never claimed. */
  readonly claimToken: string | null
  readonly createdAt: Date
}

/**
 * What a worker writes back after a page: the new cursor, attempts and `availableAt` (its
 * renewed lease, a retry backoff, or now to hand the item back).
 * @group Ports
 */
export interface PendingWorkProgress {
  readonly cursor: string | null
  readonly attempts: number
  readonly availableAt: Date
}

/**
 * The outbox's worker side. Every method is one short atomic step (never a transaction held
 * while mail is sent), safe to call from several workers (processes) at once:
 *
 * - a worker {@link PendingWorkStore.claim}s ONE available item, taking a lease on it until
 *   `leaseUntil` under its own random `claimToken`;
 * - after each page it calls {@link PendingWorkStore.advance} (cursor forward, lease renewed),
 *   or {@link PendingWorkStore.complete} after the last page; both act only while the worker's
 *   token is still the item's (a worker whose lease expired and was taken over gets `false`
 *   and stops);
 * - a worker that crashes at any point leaves the item to be claimed again when its lease
 *   expires, at the last cursor written: the page it was on is redone (mails carry idempotency
 *   keys, so the mailer drops repeats).
 * @group Ports
 */
export interface PendingWorkStore {
  /**
   * Atomically picks one item with `availableAt <= now` (oldest `availableAt` first, then id),
   * sets its `claimToken` and `availableAt = leaseUntil`, and returns it as updated; `null` when
   * none is available. Of concurrent callers, no two get the same item (PostgreSQL and MariaDB:
   * `select … for update skip locked`; serial stores: their mutex), and an item under a live
   * lease is never returned.
   */
  claim(now: Date, leaseUntil: Date, claimToken: string): Promise<PendingWork | null>
  /** Writes `progress` iff the item exists and its `claimToken` is still `claimToken`; else false. */
  advance(id: string, claimToken: string, progress: PendingWorkProgress): Promise<boolean>
  /** Deletes the item iff its `claimToken` is still `claimToken`; else false (nothing changed). */
  complete(id: string, claimToken: string): Promise<boolean>
}

/**
 * The storage port. Host apps implement it (or use `ssoflow/memory`, `ssoflow/kysely`).
 * @group Ports
 */
export interface StoragePort extends StorageReader {
  /**
   * Runs `fn` in one atomic transaction. Resolves with its value after commit; if `fn` throws
   * (or rejects), every write is rolled back and the error is rethrown unchanged.
   * Concurrent transactions must behave like some serial order for the rows they touch.
   */
  transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T>
  readonly pipelineStates: PipelineStateStore
  readonly oneTimeTokens: OneTimeTokenStore
  /**
   * The outbox's worker side (background mail, see {@link PendingWork}). Optional, with
   * {@link StorageTx.enqueueWork}; the memory, Kysely and Drizzle adapters have both.
   */
  readonly pendingWork?: PendingWorkStore | undefined
}

/**
 * Rows an adapter can insert directly (tests, fixtures, imports). The memory and Kysely
 * adapters both take this shape in `seed()`.
 * @group Ports
 */
export interface StorageSeedData {
  readonly organizations?: readonly Organization[] | undefined
  readonly users?: readonly User[] | undefined
  readonly userEmails?: readonly UserEmail[] | undefined
  readonly members?: readonly Member[] | undefined
  readonly providers?: readonly AuthProvider[] | undefined
  readonly identities?: readonly AuthIdentity[] | undefined
  /** Claimed (and verified) domains, when the adapter stores domains. */
  readonly domains?: readonly OrganizationDomain[] | undefined
}

/**
 * Every table's rows, each sorted by a stable key, for before/after comparisons in tests
 * (`snapshot()` of the memory and Kysely adapters).
 * @group Ports
 */
export interface StorageSnapshot {
  organizations: Organization[]
  users: User[]
  userEmails: UserEmail[]
  members: Member[]
  providers: AuthProvider[]
  identities: AuthIdentity[]
  audit: AuditEntry[]
  pipelineStates: StoredPipelineState[]
  oneTimeTokens: OneTimeTokenRecord[]
  /** Pending background work, by id. */
  pendingWork: PendingWork[]
  /** Claimed domains, by id (adapters that store domains). */
  domains?: OrganizationDomain[]
}
