/**
 * Single-use IdP responses (threat 40): a step that accepted a response the IdP must not be able
 * to replay (a SAML assertion id) returns `singleUse`; the engine records it in the one-time
 * token store with an atomic insert-if-absent, so of N requests carrying one response (one after
 * the other or at the same time) exactly one gets past this point.
 *
 * @module
 */
import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError, type ErrorRedirectHint } from '../errors.js'
import { isStorageConflict } from '../ports/storage.js'
import type { SingleUse } from '../providers/types.js'
import { sha256Hex } from '../state/crypto.js'
import type { EngineContext } from './context.js'
import { storageFailure } from './transaction.js'

/**
 * Purpose of the one-time token rows that remember single-use responses until they expire. The
 * row holds only a hash of the provider key and the response key, and an empty payload; sweeps
 * of expired one-time tokens remove it.
 */
export const SINGLE_USE_PURPOSE = 'single-use-response'

/** Longest accepted `SingleUse.key`. */
const MAX_KEY_LENGTH = 1024

/** Checks the shape a provider returned (a programmer error surfaces as PROVIDER_ERROR). */
export function validSingleUse(value: unknown): value is SingleUse {
  if (typeof value !== 'object' || value === null) return false
  const v = value as { key?: unknown; expiresAt?: unknown }
  return (
    typeof v.key === 'string' &&
    v.key.length > 0 &&
    v.key.length <= MAX_KEY_LENGTH &&
    typeof v.expiresAt === 'number' &&
    Number.isFinite(v.expiresAt)
  )
}

/**
 * Records a single-use response. `ASSERTION_REPLAYED` when it was recorded before (a unique
 * conflict on the hash); `STORAGE_UNAVAILABLE` when the store failed. The row lives at least
 * one minute, so that a response already at its expiry cannot be replayed within the skew.
 */
export async function recordSingleUse(
  ctx: EngineContext,
  providerKey: string,
  use: SingleUse,
  redirect: ErrorRedirectHint,
): Promise<Result<void, AuthError>> {
  const hash = sha256Hex(`ssoflow:single-use:${providerKey}\u0000${use.key}`)
  const floor = ctx.clock.now().getTime() + 60_000
  try {
    await ctx.tokens.create({ hash, purpose: SINGLE_USE_PURPOSE, payload: '{}', expiresAt: new Date(Math.max(use.expiresAt, floor)) })
  } catch (cause) {
    if (isStorageConflict(cause)) return err(authError('ASSERTION_REPLAYED', { redirect }))
    return err(storageFailure(cause, redirect))
  }
  return ok(undefined)
}
