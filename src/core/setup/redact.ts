import type { JsonObject, JsonValue } from '../../model/identity.js'

/** The placeholder that replaces a redacted value. @group Core */
export const REDACTED = '[redacted]'

// Keys whose values are secrets in the configs of OIDC, OAuth2 and SAML providers.
const SECRET_KEY = /secret|password|passphrase|private|token|credential|(^|[_-])key$|apikey|signingkey|privkey|cert_?key/i

function redactValue(value: JsonValue, depth: number): JsonValue {
  if (depth > 32) return REDACTED
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1))
  if (value !== null && typeof value === 'object') return redactObject(value, depth + 1)
  return value
}

function redactObject(config: JsonObject, depth: number): JsonObject {
  const out: JsonObject = {}
  for (const [key, value] of Object.entries(config)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : redactValue(value, depth)
  }
  return out
}

/**
 * The default redaction for provider configs written to audit entries: every value under a key
 * that names a secret (client secret, private key, password, token, API key...) is replaced by
 * {@link REDACTED}, at any depth. Providers that know their config better implement
 * `Provider.redactConfig`; the engine applies this default on top of it as a safety net.
 * For example, `{ clientId: 'a', clientSecret: 's' }` becomes
 * `{ clientId: 'a', clientSecret: '[redacted]' }`.
 * @group Core
 */
export function redactConfigDefault(config: JsonObject): JsonObject {
  return redactObject(config, 0)
}
