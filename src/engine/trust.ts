/**
 * The provider's trust policy, read for a stored config and checked (issue 13 item 2).
 * @module
 */
import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError, type ErrorRedirectHint, isAuthError } from '../errors.js'
import type { JsonObject } from '../model/identity.js'
import { DEFAULT_TRUST_POLICY, parseTrustPolicy, type TrustPolicy } from '../model/trust.js'
import type { Provider } from '../providers/types.js'
import { withRedirect } from './redirect.js'

/**
 * The trust policy `provider` gives for `config`, validated here (every provider is held to the
 * one schema). A policy that does not parse makes the config unusable, like any other bad config:
 * `PROVIDER_NOT_CONFIGURED` at login, `INPUT_INVALID` at setup (nothing is stored), with
 * `details.field` naming the first bad field and `details.issues` every one.
 */
export function resolveTrust(provider: Provider, config: JsonObject, redirect: ErrorRedirectHint): Result<TrustPolicy, AuthError> {
  if (!provider.trustPolicy) return ok(DEFAULT_TRUST_POLICY)
  let policy: TrustPolicy | AuthError
  try {
    policy = provider.trustPolicy(config)
  } catch (cause) {
    return err(authError('PROVIDER_ERROR', { redirect, cause, details: { stage: 'trustPolicy' } }))
  }
  if (isAuthError(policy)) return err(withRedirect(policy, redirect))
  const parsed = parseTrustPolicy(policy)
  if (parsed.isErr()) {
    const issues = parsed.error
    return err(
      authError(redirect === 'orgLogin' ? 'PROVIDER_NOT_CONFIGURED' : 'INPUT_INVALID', {
        redirect,
        details: { reason: 'trust-policy', field: issues[0]?.field, issues: issues.slice(0, 10) },
      }),
    )
  }
  return ok(parsed.value)
}
