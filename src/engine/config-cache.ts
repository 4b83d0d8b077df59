/**
 * The engine's short-lived copy of organizations and their provider rows (`policy.configCacheMs`):
 * a login's start and callback each read the organization and its provider; a busy organization's
 * logins reuse one read for a few seconds instead. Internal.
 *
 * Why it is safe: nothing that decides a link trusts the copy. The login transaction locks the
 * provider row and compares it with the copy it started from (`sameProvider` in login.ts: id,
 * organization, key, configuration); a changed or removed provider is `PROVIDER_MISMATCH` and the
 * entry is dropped. An organization without a provider is never kept (a new setup is seen at
 * once). The engine drops an organization's entry after its own setup, disable and settings
 * transactions; another instance's copy ages out within the TTL.
 */
import type { Clock } from '../ports/clock.js'
import type { OrganizationWithProvider, StoragePort } from '../ports/storage.js'
import { readOrganizationWithProvider } from './transaction.js'

/** Most organizations kept at once; the oldest entry goes first. */
export const CONFIG_CACHE_MAX_ENTRIES = 1000

/** Internal. */
export interface ConfigCache {
  /**
   * The organization and its provider row, from the copy when it is fresh and `accept` takes it
   * (default: any), else from storage. `null` when the organization does not exist.
   */
  read(organizationId: string, accept?: (value: OrganizationWithProvider) => boolean): Promise<OrganizationWithProvider | null>
  /** Forgets an organization (and keeps reads in flight from storing what they saw). */
  drop(organizationId: string): void
}

export function createConfigCache(storage: StoragePort, clock: Clock, ttlMs: number): ConfigCache {
  const entries = new Map<string, { readonly value: OrganizationWithProvider; readonly expiresAt: number }>()
  // Bumped by every drop: a read that began before a drop does not store what it read (it may
  // predate the write that caused the drop).
  let generation = 0
  return {
    async read(organizationId, accept) {
      if (ttlMs === 0) return readOrganizationWithProvider(storage, organizationId)
      const now = clock.now().getTime()
      const hit = entries.get(organizationId)
      if (hit && hit.expiresAt > now && (accept === undefined || accept(hit.value))) return hit.value
      if (hit) entries.delete(organizationId)
      const started = generation
      const value = await readOrganizationWithProvider(storage, organizationId)
      if (value?.provider && started === generation) {
        entries.delete(organizationId)
        entries.set(organizationId, { value, expiresAt: now + ttlMs })
        if (entries.size > CONFIG_CACHE_MAX_ENTRIES) {
          const oldest = entries.keys().next()
          if (!oldest.done) entries.delete(oldest.value)
        }
      }
      return value
    },
    drop(organizationId) {
      generation++
      entries.delete(organizationId)
    },
  }
}
