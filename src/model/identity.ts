import { err, ok, type Result } from 'neverthrow'
import { z } from 'zod'
import { type AuthError, authError } from '../errors.js'
import { isValidEmail, normalizeEmail } from './email.js'
import { LIMITS } from './limits.js'

/** A JSON value as stored in identity data. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** A JSON object (identity data, provider config). */
export type JsonObject = { [key: string]: JsonValue }

/**
 * True when `text` can be stored in any SQL text or JSON column as is: no U+0000 (PostgreSQL
 * refuses it in `text` and `jsonb`) and no lone surrogate (not valid UTF-8; `jsonb` refuses the
 * escape). Every string the IdP sends is checked at the boundary, so a storage adapter never
 * sees one that its database would refuse (that would be a retryable storage error, forever).
 *
 * @example
 * ```ts
 * import { isStorableText } from 'ssoflow'
 *
 * isStorableText('Zoë') // true
 * isStorableText('a\u0000b') // false: PostgreSQL refuses U+0000 in text and jsonb
 * ```
 * @group Model
 */
export function isStorableText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0) return false
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) return false
  }
  return true
}

const utf8 = new TextEncoder()

/**
 * Depth, byte-size and text check for untrusted JSON blobs: at most `maxDepth` levels, at most
 * `maxBytes` of JSON, and every key and string {@link isStorableText}.
 *
 * @example
 * ```ts
 * import { jsonWithinLimits } from 'ssoflow'
 *
 * // A custom provider checking the claims it keeps on the identity (64 KiB and 16 levels by default).
 * jsonWithinLimits({ groups: ['eng', 'ops'], tid: 'a1b2' }) // true
 * jsonWithinLimits({ blob: 'x'.repeat(100_000) }) // false: over 64 KiB
 * jsonWithinLimits({ a: { b: { c: 1 } } }, 2) // false: deeper than 2 levels
 * ```
 * @group Model
 */
export function jsonWithinLimits(value: unknown, maxDepth: number = LIMITS.dataDepth, maxBytes: number = LIMITS.dataBytes): boolean {
  const depthOk = (v: unknown, d: number): boolean => {
    if (d > maxDepth) return false
    if (typeof v === 'string') return isStorableText(v)
    if (Array.isArray(v)) return v.every((x) => depthOk(x, d + 1))
    if (v !== null && typeof v === 'object') return Object.entries(v).every(([k, x]) => isStorableText(k) && depthOk(x, d + 1))
    return true
  }
  if (!depthOk(value, 0)) return false
  let text: string
  try {
    // undefined (nothing to write, e.g. for undefined itself) counts as the empty text.
    text = (JSON.stringify(value) as string | undefined) ?? ''
  } catch {
    return false
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair is 4 for its 2 units, a lone
  // surrogate is written as U+FFFD, 3): a text this short fits without being encoded.
  if (text.length * 3 <= maxBytes) return true
  return utf8.encode(text).byteLength <= maxBytes
}

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number().finite(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
)

/** Schema for a bounded JSON object (identity data). */
export const jsonObjectSchema: z.ZodType<JsonObject> = z
  .record(z.string(), jsonValue)
  .refine((v) => jsonWithinLimits(v), { message: `data exceeds ${LIMITS.dataBytes} bytes or depth ${LIMITS.dataDepth}` })

const storable = { message: 'contains U+0000 or a lone surrogate' }
// C0 and C1 control characters and DEL (dropped from display names: threat 57).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g

const idString = z.string().min(1).max(LIMITS.id).refine(isStorableText, storable)

/** A display name as stored: control characters dropped (U+0000 and lone surrogates are refused before). */
function cleanName(name: string): string {
  return name.replace(CONTROLS, '')
}

/**
 * An external id as a provider returns it: a plain string, or a migrating id whose lookup
 * falls back to `legacyId` (Sentry's `MigratingIdentityId`).
 */
export const identityIdSchema = z.union([idString, z.strictObject({ id: idString, legacyId: idString.nullish() })])

/**
 * The identity a provider returns after authenticating someone. This is untrusted input: it is
 * validated by {@link parseIdentity} before any decision is taken.
 *
 * @group Model
 */
export interface IdentityInput {
  /** The IdP's stable subject id, or a migrating id `{ id, legacyId }`. */
  id: string | { id: string; legacyId?: string | null | undefined }
  /** The email the IdP asserts. Required: an identity without an email is rejected. */
  email: string
  /** Only the boolean `true` counts as verified. The string "true" does not. */
  emailVerified?: unknown
  /** Display name (null is treated as ""). */
  name?: string | null | undefined
  /** Provider data blob (tokens...). At most 64 KiB of JSON. */
  data?: JsonObject | undefined
}

/**
 * A validated, normalized identity.
 * @group Model
 */
export interface Identity {
  /** The external id used for lookups. */
  readonly id: string
  /** The legacy external id to fall back to, or null. */
  readonly legacyId: string | null
  /** The email as asserted (trimmed). */
  readonly email: string
  /** {@link normalizeEmail} of `email`. */
  readonly emailNormalized: string
  /** True only when the provider returned the boolean `true`. */
  readonly emailVerified: boolean
  /** Display name, at most 200 characters, without control characters ("" when absent). */
  readonly name: string
  /** Provider data, validated for size and depth. */
  readonly data: JsonObject
}

export const identityInputSchema = z.strictObject({
  id: identityIdSchema,
  email: z
    .string()
    .max(LIMITS.email)
    .transform((s) => s.trim())
    .refine(isStorableText, storable)
    .refine((s) => isValidEmail(s), { message: 'email is not a valid address' }),
  emailVerified: z.unknown().optional(),
  name: z
    .string()
    .max(4 * LIMITS.name)
    .refine(isStorableText, storable)
    .nullish(),
  data: jsonObjectSchema.optional(),
})

/**
 * Turns validated input into an {@link Identity}. `emailVerified` is true only for boolean true.
 * Names lose their control characters (unpaired surrogates become U+FFFD), then names longer than
 * 200 characters are truncated (code-point safe).
 *
 * @example
 * ```ts
 * import { toIdentity } from 'ssoflow'
 *
 * // For input that is already validated (use parseIdentity for anything from a provider).
 * const identity = toIdentity({ id: 'idp-42', email: 'Ada@Acme.example', emailVerified: 'true', name: 'Ada' })
 * identity.emailNormalized // 'ada@acme.example'
 * identity.emailVerified // false: only the boolean true counts
 * ```
 */
export function toIdentity(input: z.output<typeof identityInputSchema>): Identity {
  const rawId = input.id
  const id = typeof rawId === 'string' ? rawId : rawId.id
  const legacyId = typeof rawId === 'string' ? null : (rawId.legacyId ?? null)
  return {
    id,
    legacyId: legacyId === id ? null : legacyId,
    email: input.email,
    emailNormalized: normalizeEmail(input.email),
    emailVerified: input.emailVerified === true,
    name: Array.from(cleanName(input.name ?? ''))
      .slice(0, LIMITS.name)
      .join(''),
    data: input.data ?? {},
  }
}

const NOT_JSON = Symbol('not-json')
const IDENTITY_KEYS = new Set(['id', 'email', 'emailVerified', 'name', 'data'])

function isPlainRecord(v: object): boolean {
  const proto = Object.getPrototypeOf(v)
  return (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(v).length === 0
}

/**
 * A copy of `v` when it is plain JSON as `jsonValue` accepts it (strings, finite numbers,
 * booleans, null, dense arrays, plain objects without `__proto__` or symbol keys), else
 * NOT_JSON. Anything unusual is left to the zod schema, which decides and names the issue.
 */
function copyJson(v: unknown): JsonValue | typeof NOT_JSON {
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : NOT_JSON
  if (typeof v !== 'object') return NOT_JSON
  if (Array.isArray(v)) {
    const out: JsonValue[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) return NOT_JSON
      const c = copyJson(v[i])
      if (c === NOT_JSON) return NOT_JSON
      out[i] = c
    }
    return out
  }
  if (!isPlainRecord(v)) return NOT_JSON
  const out: { [key: string]: JsonValue } = {}
  for (const key of Object.keys(v)) {
    if (key === '__proto__') return NOT_JSON
    const c = copyJson((v as Record<string, unknown>)[key])
    if (c === NOT_JSON) return NOT_JSON
    out[key] = c
  }
  return out
}

/**
 * The common, valid identity (a string id, plain JSON data) checked without zod: the value
 * `identityInputSchema` would return, or null when the input is anything else (then the schema
 * decides, and names the issues). Every check of the schema is made here too; `data` has passed
 * {@link jsonWithinLimits} before.
 */
function quickIdentityInput(input: unknown): z.output<typeof identityInputSchema> | null {
  if (typeof input !== 'object' || input === null || Array.isArray(input) || !isPlainRecord(input)) return null
  for (const key in input) if (!IDENTITY_KEYS.has(key)) return null
  const { id, email, emailVerified, name, data } = input as Record<string, unknown>
  if (typeof id !== 'string' || id.length < 1 || id.length > LIMITS.id || !isStorableText(id)) return null
  if (typeof email !== 'string' || email.length > LIMITS.email) return null
  const trimmed = email.trim()
  if (!isStorableText(trimmed) || !isValidEmail(trimmed)) return null
  if (name !== undefined && name !== null && (typeof name !== 'string' || name.length > 4 * LIMITS.name || !isStorableText(name))) {
    return null
  }
  let copied: JsonObject | undefined
  if (data !== undefined) {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
    const c = copyJson(data)
    if (c === NOT_JSON) return null
    copied = c as JsonObject
  }
  return {
    id,
    email: trimmed,
    ...(emailVerified !== undefined ? { emailVerified } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(copied !== undefined ? { data: copied } : {}),
  }
}

/**
 * Validates an untrusted identity from a provider at the boundary: size limits, a valid email,
 * strict-boolean `emailVerified`, bounded JSON data. Never throws.
 *
 * @example
 * ```ts
 * import { parseIdentity } from 'ssoflow'
 *
 * // A custom provider's buildIdentity, from the claims it received:
 * const claims: unknown = { id: 'idp-42', email: ' Ada@Acme.example', emailVerified: true, name: 'Ada Lovelace' }
 * parseIdentity(claims).match(
 *   (identity) => console.log(identity.email, identity.emailNormalized), // 'Ada@Acme.example' 'ada@acme.example'
 *   (error) => console.log(error.code, error.details), // IDENTITY_INVALID { issues: [{ path, message }] }
 * )
 * ```
 * @returns the normalized {@link Identity}, or `IDENTITY_INVALID` with the offending fields in
 *   `details.issues` (paths and messages only, never the values).
 * @group Model
 */
export function parseIdentity(input: unknown): Result<Identity, AuthError> {
  // Bound depth and size BEFORE the recursive schema walks the value (cycles, deep nesting).
  const data = typeof input === 'object' && input !== null ? (input as { data?: unknown }).data : undefined
  if (data !== undefined && !jsonWithinLimits(data)) {
    return err(
      authError('IDENTITY_INVALID', {
        details: { issues: [{ path: 'data', message: 'data too large or too deep, or contains U+0000 or a lone surrogate' }] },
      }),
    )
  }
  const quick = quickIdentityInput(input)
  if (quick !== null) return ok(toIdentity(quick))
  const parsed = identityInputSchema.safeParse(input)
  if (!parsed.success) {
    return err(
      authError('IDENTITY_INVALID', {
        details: { issues: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) },
      }),
    )
  }
  return ok(toIdentity(parsed.data))
}
