import type { AuditEntry, AuthIdentity, AuthProvider, Member, Organization, OrganizationDomain, User, UserEmail } from '../model/records.js'
import { type PendingWork, StorageConflictError } from '../ports/storage.js'

/**
 * The committed (or in-transaction) state of the memory store: one immutable-by-convention
 * `Map` per table. A {@link TableView} copies a table on its first write (copy-on-write), so a
 * transaction never touches the committed maps until it swaps its tables in.
 * @internal
 */
export interface Tables {
  readonly organizations: ReadonlyMap<string, Organization>
  readonly users: ReadonlyMap<string, User>
  /** Keyed by {@link userEmailKey}. */
  readonly userEmails: ReadonlyMap<string, UserEmail>
  readonly members: ReadonlyMap<string, Member>
  readonly providers: ReadonlyMap<string, AuthProvider>
  readonly identities: ReadonlyMap<string, AuthIdentity>
  readonly audit: ReadonlyMap<string, AuditEntry>
  /** Pending background work (the outbox), by id. */
  readonly work: ReadonlyMap<string, PendingWork>
  /** Claimed domains (issue 13), by id. */
  readonly domains: ReadonlyMap<string, OrganizationDomain>
}

/** Name of a table of {@link Tables}. @internal */
export type TableName = keyof Tables

type Row<K extends TableName> = Tables[K] extends ReadonlyMap<string, infer R> ? R : never

/** Empty tables. @internal */
export function emptyTables(): Tables {
  return {
    organizations: new Map(),
    users: new Map(),
    userEmails: new Map(),
    members: new Map(),
    providers: new Map(),
    identities: new Map(),
    audit: new Map(),
    work: new Map(),
    domains: new Map(),
  }
}

/** Key of a user address row: unique on (user, normalized address). @internal */
export function userEmailKey(userId: string, emailNormalized: string): string {
  return `${userId}\u0000${emailNormalized}`
}

/**
 * Deep copy used on the way in and out of the store, so callers can never mutate stored rows.
 * `structuredClone` keeps `Date` values exact (millisecond precision) and copies JSON data.
 * @internal
 */
export function copy<T>(value: T): T {
  return structuredClone(value)
}

/**
 * A copy-on-write view over committed tables: reads go to the current maps; the first write to
 * a table clones that table's map. `tables` is what a commit swaps in.
 * @internal
 */
export class TableView {
  #tables: { -readonly [K in TableName]: Tables[K] }
  readonly #copied = new Set<TableName>()

  constructor(base: Tables) {
    this.#tables = { ...base }
  }

  /** The view's current tables (committed maps for untouched tables). */
  get tables(): Tables {
    return this.#tables
  }

  /** A writable map for `name`, cloned from the base on first use. */
  writable<K extends TableName>(name: K): Map<string, Row<K>> {
    if (!this.#copied.has(name)) {
      this.#copied.add(name)
      this.#tables[name] = new Map(this.#tables[name] as ReadonlyMap<string, Row<K>>) as unknown as Tables[K]
    }
    return this.#tables[name] as unknown as Map<string, Row<K>>
  }
}

function conflict(constraint: ConstructorParameters<typeof StorageConflictError>[0]): never {
  throw new StorageConflictError(constraint)
}

/** Throws a programmer error for a duplicate primary key (ids are generated unique). */
function duplicateId(table: string, id: string): never {
  throw new Error(`memory storage: duplicate ${table} id ${JSON.stringify(id)}`)
}

/** Unique checks, run on create and update. `self` is the row's id (skipped). @internal */
export const unique = {
  user(t: Tables, row: User): void {
    for (const other of t.users.values()) {
      if (other.id !== row.id && other.username === row.username) conflict('user.username')
    }
  },
  userEmail(t: Tables, row: UserEmail): void {
    if (t.userEmails.has(userEmailKey(row.userId, row.emailNormalized))) conflict('user_email.user_email')
  },
  provider(t: Tables, row: AuthProvider): void {
    for (const other of t.providers.values()) {
      if (other.id !== row.id && other.organizationId === row.organizationId) conflict('auth_provider.organization')
    }
  },
  identity(t: Tables, row: AuthIdentity): void {
    for (const other of t.identities.values()) {
      if (other.id === row.id || other.authProviderId !== row.authProviderId) continue
      if (other.ident === row.ident) conflict('auth_identity.provider_ident')
      if (other.userId === row.userId) conflict('auth_identity.provider_user')
    }
  },
  domain(t: Tables, row: OrganizationDomain): void {
    for (const other of t.domains.values()) {
      if (other.id === row.id || other.domain !== row.domain) continue
      if (other.organizationId === row.organizationId) conflict('organization_domain.organization_domain')
      if (row.verifiedAt !== null && other.verifiedAt !== null) conflict('organization_domain.verified')
    }
  },
  member(t: Tables, row: Member): void {
    for (const other of t.members.values()) {
      if (other.id === row.id) continue
      if (other.organizationId === row.organizationId) {
        if (row.userId !== null && other.userId === row.userId) conflict('member.organization_user')
        if (row.emailNormalized !== null && other.emailNormalized === row.emailNormalized) conflict('member.organization_email')
      }
      if (row.inviteTokenHash !== null && other.inviteTokenHash === row.inviteTokenHash) conflict('member.invite_token')
    }
  },
}

/** Inserts a new row by id; a duplicate id is a programmer error. @internal */
export function insertRow<K extends 'organizations' | 'users' | 'members' | 'providers' | 'identities' | 'audit' | 'work' | 'domains'>(
  view: TableView,
  name: K,
  row: Row<K> & { readonly id: string },
): void {
  if (view.tables[name].has(row.id)) duplicateId(name, row.id)
  view.writable(name).set(row.id, copy(row))
}

/** Removes keys whose value is `undefined` (an absent patch field means "unchanged"). @internal */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value
  }
  return out
}

/** Compares two strings in code-unit order. @internal */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Compares by `id` in code-unit order (what `ORDER BY id COLLATE "C"` gives). @internal */
export function byId(a: { readonly id: string }, b: { readonly id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
