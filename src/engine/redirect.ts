import { type AuthError, type AuthErrorCode, authError, type ErrorRedirectHint } from '../errors.js'

/**
 * Codes whose organization is unknown (or does not exist): their hint is always `root`, because
 * the host cannot build an org page for them, whichever flow the call belongs to.
 */
const ORGANIZATION_UNKNOWN: ReadonlySet<AuthErrorCode> = new Set(['ORGANIZATION_NOT_FOUND', 'STATE_NOT_FOUND', 'STATE_VERSION'])

/**
 * Re-targets an error to the exit page of the call's flow, keeping code, message, details and
 * cause. Errors about an unknown organization keep `root`.
 */
export function withRedirect(error: AuthError, redirect: ErrorRedirectHint): AuthError {
  if (error.redirect === redirect || ORGANIZATION_UNKNOWN.has(error.code)) return error
  return authError(error.code, { message: error.message, redirect, details: error.details, cause: error.cause })
}

/**
 * For errors of `openState`: `root` means the state could not be read (forged or truncated
 * handle, no such state, unreadable body), so the organization is unknown and `root` stays;
 * any other error is about a readable state and goes to the exit page of the call's flow.
 */
export function stateErrorRedirect(error: AuthError, redirect: ErrorRedirectHint): AuthError {
  return error.redirect === 'root' ? error : withRedirect(error, redirect)
}
