import type { AuditEntry } from '../model/records.js'
import type { StorageTx } from './storage.js'

/**
 * Records audit entries. Called INSIDE the flow's transaction with its handle, so a database
 * audit table commits or rolls back with the flow. The default ({@link storageAudit}) appends
 * to the storage adapter's audit table. A throw rolls the flow back.
 * @group Ports
 */
export interface AuditPort {
  record(entry: AuditEntry, tx: StorageTx): Promise<void>
}

/**
 * The default audit port: writes through `tx.appendAudit`, atomically with the flow.
 *
 * @example
 * ```ts
 * import { createAuthPipeline, storageAudit } from 'ssoflow'
 *
 * // The default audit port, decorated: entries still commit with the flow's transaction.
 * const inTable = storageAudit()
 * const sso = createAuthPipeline({
 *   ...ports,
 *   providers: {},
 *   secret,
 *   urls,
 *   audit: {
 *     async record(entry, tx) {
 *       await inTable.record(entry, tx)
 *       console.info('audit', entry.event, entry.organizationId) // a throw here rolls the flow back
 *     },
 *   },
 * })
 * ```
 * @group Ports
 */
export function storageAudit(): AuditPort {
  return { record: (entry, tx) => tx.appendAudit(entry) }
}
