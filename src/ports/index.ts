/**
 * The ports a host implements or replaces, with every record type they carry: the stable entry
 * for authors of storage, mailer, audit and signal adapters (`import type { StoragePort } from
 * 'ssoflow/ports'`). The root entry exports the same names. See docs/custom-storage.md.
 *
 * @module
 */

export { normalizeEmail } from '../model/email.js'
export { isStorableText, type JsonObject, type JsonValue } from '../model/identity.js'
export { LIMITS } from '../model/limits.js'
export {
  type AuditEntry,
  type AuditEvent,
  type AuthIdentity,
  type AuthProvider,
  type InviteStatus,
  type Member,
  type MemberFlags,
  NO_FLAGS,
  type Organization,
  type User,
  type UserEmail,
} from '../model/records.js'
export * from './audit.js'
export * from './clock.js'
export * from './mailer.js'
export * from './signals.js'
export * from './storage.js'
