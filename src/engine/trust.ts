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
 * Policies already parsed, by the object the provider returned (usually the stored config's
 * `trust`, or a preset's constant: the same object at every login while the engine keeps its
 * copy of the provider row), with the JSON text the object had then. A hit is used only while
 * the object still has that text (and key list) and a plain prototype; anything else is parsed
 * again. The policy handed out is frozen: every caller gets the same object.
 */
const parsedPolicies = new WeakMap<object, { readonly text: string; readonly policy: TrustPolicy }>()

function plainText(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return null
  try {
    // The key list too: JSON text leaves out keys whose value is undefined or a function.
    return `${Object.keys(value).join('\u0000')}\u0000${JSON.stringify(value)}`
  } catch {
    return null
  }
}

function knownPolicy(value: unknown): TrustPolicy | null {
  const hit = typeof value === 'object' && value !== null ? parsedPolicies.get(value) : undefined
  return hit && plainText(value) === hit.text ? hit.policy : null
}

function remember(value: unknown, policy: TrustPolicy): void {
  const text = plainText(value)
  if (text === null) return
  if (policy.domains) Object.freeze(policy.domains)
  parsedPolicies.set(value as object, { text, policy: Object.freeze(policy) })
}

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
  const known = knownPolicy(policy)
  if (known) return ok(known)
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
  remember(policy, parsed.value)
  return ok(parsed.value)
}
