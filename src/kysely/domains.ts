/**
 * Verified domains (issue 13) for the Kysely adapter: the reads and writes of
 * `<prefix>organization_domains` (migration 0003). A row is verified when `verified_at` is set;
 * `verified_domain` then holds the domain (NULL otherwise) and its unique index keeps a domain
 * verified by at most one organization on every dialect.
 *
 * @module
 */
import type { Kysely } from 'kysely'
import type { OrganizationDomain } from '../model/records.js'
import type { StorageReader, StorageTx } from '../ports/storage.js'
import type { ConflictCandidate } from './conflicts.js'
import type { ResolvedSchema } from './schema.js'

// biome-ignore lint/suspicious/noExplicitAny: table names are dynamic (prefix)
type Db = Kysely<any>
type Row = Record<string, unknown>

const COLUMNS = ['id', 'organization_id', 'domain', 'verification_token', 'verified_at', 'created_at'] as const

/** The unique constraints of the domains table, for the conflict mapping. */
export const DOMAIN_CONFLICTS: readonly ConflictCandidate[] = [
  { constraint: 'organization_domain.organization_domain', columns: ['organization_id', 'domain'] },
  { constraint: 'organization_domain.verified', columns: ['verified_domain'] },
]

const str = (v: unknown): string => (typeof v === 'string' ? v : String(v))
const date = (v: unknown): Date => (v instanceof Date ? new Date(v.getTime()) : new Date(Number(v)))

function domainFrom(r: Row): OrganizationDomain {
  return {
    id: str(r.id),
    organizationId: str(r.organization_id),
    domain: str(r.domain),
    verificationToken: str(r.verification_token),
    verifiedAt: r.verified_at === null || r.verified_at === undefined ? null : date(r.verified_at),
    createdAt: date(r.created_at),
  }
}

/** Encodes a domain row (physical columns). */
export function domainRow(d: OrganizationDomain): Row {
  return {
    id: d.id,
    organization_id: d.organizationId,
    domain: d.domain,
    verified_domain: d.verifiedAt === null ? null : d.domain,
    verification_token: d.verificationToken,
    verified_at: d.verifiedAt === null ? null : d.verifiedAt.getTime(),
    created_at: d.createdAt.getTime(),
  }
}

/** The domain reads, on the storage or in a transaction. */
export function domainReads(s: ResolvedSchema, q: Db): Required<Pick<StorageReader, 'listOrganizationDomains' | 'findVerifiedDomains'>> {
  return {
    async listOrganizationDomains(organizationId) {
      const rows = (await q
        .selectFrom(s.organizationDomains)
        .select([...COLUMNS])
        .where('organization_id', '=', organizationId)
        .orderBy('domain')
        .execute()) as Row[]
      return rows.map(domainFrom)
    },
    async findVerifiedDomains(domain) {
      const rows = (await q
        .selectFrom(s.organizationDomains)
        .select([...COLUMNS])
        .where('verified_domain', '=', domain)
        .orderBy('organization_id')
        .execute()) as Row[]
      return rows.map(domainFrom)
    },
  }
}

/** The domain writes of a transaction; `write` maps unique violations to conflicts. */
export function domainWrites(
  s: ResolvedSchema,
  q: Db,
  write: <T>(candidates: readonly ConflictCandidate[], run: () => Promise<T>) => Promise<T>,
): Required<Pick<StorageTx, 'createOrganizationDomain' | 'verifyOrganizationDomain' | 'deleteOrganizationDomain'>> {
  return {
    async createOrganizationDomain(domain) {
      await write(DOMAIN_CONFLICTS, () => q.insertInto(s.organizationDomains).values(domainRow(domain)).execute())
    },
    async verifyOrganizationDomain(id, verifiedAt) {
      // `verified_domain = domain` in the same statement: the unique index decides races.
      const result = await write(DOMAIN_CONFLICTS, () =>
        q
          .updateTable(s.organizationDomains)
          .set((eb) => ({ verified_at: verifiedAt.getTime(), verified_domain: eb.ref('domain') }))
          .where('id', '=', id)
          .executeTakeFirst(),
      )
      if (Number(result.numUpdatedRows) > 0) return true
      // MySQL counts changed rows only: a row that already had these values still exists.
      const found = await q.selectFrom(s.organizationDomains).select('id').where('id', '=', id).executeTakeFirst()
      return found !== undefined
    },
    async deleteOrganizationDomain(id) {
      const result = await q.deleteFrom(s.organizationDomains).where('id', '=', id).executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

/** Every domain row, by id (snapshots). */
export async function allDomains(s: ResolvedSchema, q: Db): Promise<OrganizationDomain[]> {
  const rows = (await q
    .selectFrom(s.organizationDomains)
    .select([...COLUMNS])
    .execute()) as Row[]
  return rows.map(domainFrom).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
