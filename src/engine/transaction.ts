import { err, ok, type Result, ResultAsync } from 'neverthrow'
import { type AuthError, authError, type ErrorRedirectHint, isAuthError } from '../errors.js'
import { isStorageConflict, type OrganizationWithProvider, type StoragePort, type StorageTx } from '../ports/storage.js'

class RollbackSignal {
  readonly error: AuthError
  constructor(error: AuthError) {
    this.error = error
  }
}

/**
 * Thrown inside a transaction when a guarded write found its row already changed by another
 * transaction (an invite accepted first, threat 49). It rolls the transaction back and becomes a
 * retryable STORAGE_CONFLICT; the login shell decides again on fresh data.
 */
export class GuardedWriteLost {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

/** Maps anything a port threw to an {@link AuthError}. */
export function storageFailure(cause: unknown, redirect: ErrorRedirectHint = 'root'): AuthError {
  if (cause instanceof RollbackSignal) return cause.error
  if (cause instanceof GuardedWriteLost) return authError('STORAGE_CONFLICT', { redirect, details: { reason: cause.reason } })
  if (isAuthError(cause)) return cause
  if (isStorageConflict(cause)) {
    // A host's unique index on its users' address (an inactive account holds it: the email
    // lookup skips inactive users). Retrying cannot help: the address is taken.
    if (cause.constraint === 'user.email') {
      return authError('IDENTITY_CONFLICT', { redirect, cause, details: { constraint: cause.constraint } })
    }
    return authError('STORAGE_CONFLICT', { redirect, cause, details: { constraint: cause.constraint } })
  }
  return authError('STORAGE_UNAVAILABLE', { redirect, cause })
}

/** Wraps one storage call (outside a transaction) as a ResultAsync. */
export function fromStorage<T>(promise: () => Promise<T>, redirect: ErrorRedirectHint = 'root'): ResultAsync<T, AuthError> {
  return ResultAsync.fromPromise(Promise.resolve().then(promise), (cause) => storageFailure(cause, redirect))
}

/**
 * Runs `fn` in one storage transaction. An `Err` returned by `fn` rolls back and comes out
 * unchanged; a thrown conflict becomes STORAGE_CONFLICT, anything else STORAGE_UNAVAILABLE.
 */
export function inTransaction<T>(
  storage: StoragePort,
  fn: (tx: StorageTx) => Promise<Result<T, AuthError>>,
  redirect: ErrorRedirectHint = 'root',
): ResultAsync<T, AuthError> {
  return ResultAsync.fromPromise(
    storage.transaction(async (tx) => {
      const result = await fn(tx)
      if (result.isErr()) throw new RollbackSignal(result.error)
      return result.value
    }),
    (cause) => storageFailure(cause, redirect),
  )
}

export { err, ok }

/**
 * The organization and its provider row: one round trip when the adapter offers
 * `getOrganizationWithProvider`, else two reads (sequential: a host may give the storage one
 * connection). `null` when the organization does not exist.
 */
export async function readOrganizationWithProvider(storage: StoragePort, organizationId: string): Promise<OrganizationWithProvider | null> {
  if (storage.getOrganizationWithProvider) return storage.getOrganizationWithProvider(organizationId)
  const organization = await storage.getOrganization(organizationId)
  if (!organization) return null
  return { organization, provider: await storage.getAuthProvider(organizationId) }
}
