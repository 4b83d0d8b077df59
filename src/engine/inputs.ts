/**
 * The boundary of every public entry point (issue 18: bad input never looks like an outage).
 * Each method of {@link AuthPipeline} has a zod schema here; `createAuthPipeline` validates the
 * input before the method runs. Malformed input (wrong type, a wrong shape, over a size limit, an
 * unknown op) is `INPUT_INVALID` with the offending field's path in `details.field` (and up to
 * ten `{ path, message }` in `details.issues`, never the values), nothing read or written. The
 * method then gets the parsed copy: only the known fields, no prototype tricks.
 *
 * Identity contents are the provider's and are checked by `parseIdentity` (IDENTITY_INVALID);
 * here an identity only has to be an object.
 *
 * @module
 */
import { err, ok, type Result } from 'neverthrow'
import { z } from 'zod'
import { type AuthError, authError, type ErrorRedirectHint } from '../errors.js'
import type { IdentityInput, JsonObject } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import type { AuthPipeline, SessionInfo } from './types.js'

/** Longest one-time token (invite, account verification) a session or link may carry. */
export const TOKEN_MAX = 1024

/**
 * Request limits at the boundary. `advance` applies the provider's own, usually much smaller,
 * per-field limit once the provider is known (src/engine/steps.ts).
 */
export const REQUEST_LIMITS = { params: 64, keyLength: 256, fieldLength: 1024 * 1024, total: 2 * 1024 * 1024 } as const

const id = z.string().min(1).max(LIMITS.id)
const plainObject = (what: string) =>
  z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { message: `expected ${what}` })

/**
 * The client address of a session as stored in the audit log: the first address of an
 * `X-Forwarded-For`-like chain (`"203.0.113.7, 10.0.0.1"` -> `"203.0.113.7"`), trimmed; `null`
 * when that is empty. The raw value may be up to {@link LIMITS.ipChain} characters; the kept
 * address must fit {@link LIMITS.ip} (the audit column), else the input is `INPUT_INVALID`.
 * An IPv6 address with a zone (`fe80::1%eth0`) is kept whole.
 */
export const ipSchema = z
  .string()
  .max(LIMITS.ipChain)
  .transform((raw) => raw.split(',')[0]?.trim() ?? '')
  .pipe(z.string().max(LIMITS.ip, { message: `the first address of the chain is longer than ${LIMITS.ip} characters` }))
  .transform((first) => (first === '' ? null : first))

/** What the host knows of the session (SessionInfo). */
export const sessionSchema = z.object({
  id,
  userId: id.nullish(),
  // Whose second factor passed: any value is accepted; only a bounded non-empty string counts
  // (src/engine/login.ts). The removed `twoFactorPassed` is kept so the engine can warn about it.
  twoFactorUserId: z.unknown().optional(),
  twoFactorPassed: z.unknown().optional(),
  invite: z.object({ memberId: id, token: z.string().min(1).max(TOKEN_MAX), organizationId: id }).nullish(),
  verificationToken: z.string().max(TOKEN_MAX).nullish(),
  ip: ipSchema.nullish(),
})

/** Every key of SessionInfo is validated: a new field fails to compile here until it is added above. */
type UncheckedSessionKeys = Exclude<keyof SessionInfo, keyof z.infer<typeof sessionSchema>>
const sessionKeysCovered: [UncheckedSessionKeys] extends [never] ? true : false = true

/**
 * Query or form parameters: absent, or an object of at most 64 string values (keys up to 256,
 * values up to 1 MiB). Every own key counts, `__proto__` included; the result is a copy without
 * a prototype, so no key can reach `Object.prototype`.
 */
const params = z.unknown().transform((raw, ctx): Readonly<Record<string, string>> => {
  const out: Record<string, string> = Object.create(null)
  if (raw === undefined || raw === null) return out
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.addIssue({ code: 'custom', message: 'expected an object of string values' })
    return z.NEVER
  }
  const entries = Object.entries(raw)
  if (entries.length > REQUEST_LIMITS.params) {
    ctx.addIssue({ code: 'custom', message: `at most ${REQUEST_LIMITS.params} parameters` })
    return z.NEVER
  }
  for (const [key, value] of entries) {
    if (key.length > REQUEST_LIMITS.keyLength) ctx.addIssue({ code: 'custom', path: [key], message: 'parameter name too long' })
    else if (typeof value !== 'string') ctx.addIssue({ code: 'custom', path: [key], message: 'expected a string' })
    else if (value.length > REQUEST_LIMITS.fieldLength) ctx.addIssue({ code: 'custom', path: [key], message: 'value too long' })
    else out[key] = value
  }
  return out
})

const requestSchema = z
  .object({ method: z.enum(['GET', 'POST']), query: params, form: params })
  .refine((r) => [...Object.values(r.query), ...Object.values(r.form)].reduce((n, v) => n + v.length, 0) <= REQUEST_LIMITS.total, {
    message: `at most ${REQUEST_LIMITS.total} characters in all`,
  })

const identitySchema = plainObject('an identity object').transform((v) => v as unknown as IdentityInput)
const dataSchema = plainObject('an object').transform((v) => v as unknown as JsonObject)
const op = z.enum(['confirm', 'newuser']).nullish()
const admin = { organizationId: id, session: sessionSchema }

/** The input schema of every public entry point, by method name. */
export const INPUT_SCHEMAS = {
  beginLogin: z
    .object({
      // Exactly one of organizationId and email (home-realm discovery, issue 13).
      organizationId: id.optional(),
      email: z.string().max(LIMITS.email).optional(),
      session: sessionSchema,
      next: z.string().max(LIMITS.next).nullish(),
      referrer: z.string().max(LIMITS.id).nullish(),
      // Only a hint for the IdP: one that is too long or has control characters is dropped, not an error.
      loginHint: z.string().max(8192).nullish(),
    })
    .superRefine((v, ctx) => {
      if (v.organizationId === undefined && v.email === undefined) {
        ctx.addIssue({ code: 'custom', path: ['organizationId'], message: 'expected organizationId or email' })
      } else if (v.organizationId !== undefined && v.email !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['email'], message: 'expected organizationId or email, not both' })
      }
    }),
  beginSetup: z.object({ organizationId: id, providerKey: id, session: sessionSchema }),
  advance: z.object({ handle: z.string().max(256), request: requestSchema, session: sessionSchema }),
  beginUnsolicitedLogin: z.object({ organizationId: id, session: sessionSchema, request: requestSchema }),
  serviceMetadata: z.object({ organizationId: id, providerKey: id }),
  finishLogin: z.object({ handle: z.string().max(256), identity: identitySchema.optional(), session: sessionSchema, op }),
  explain: z.object({ handle: z.string().max(256), identity: identitySchema.optional(), session: sessionSchema, op }),
  finishSetup: z.object({ handle: z.string().max(256), identity: identitySchema, session: sessionSchema, data: dataSchema.optional() }),
  disableProvider: z.object(admin),
  addDomain: z.object({ ...admin, domain: z.string().max(LIMITS.email) }),
  verifyDomain: z.object({ ...admin, domain: z.string().max(LIMITS.email) }),
  removeDomain: z.object({ ...admin, domain: z.string().max(LIMITS.email) }),
  listDomains: z.object(admin),
  resendLinkRequests: z.object(admin),
  updateSettings: z.object({
    ...admin,
    settings: z.strictObject({
      requireSso: z.boolean().optional(),
      scimEnabled: z.boolean().optional(),
      defaultRole: z.string().max(LIMITS.role).optional(),
    }),
  }),
  refreshIdentity: z.object({ identityId: id }),
  verifyAccountLink: z.object({ token: z.string().min(1).max(TOKEN_MAX), session: sessionSchema }),
  runPendingWork: z
    .strictObject({
      limit: z.number().int().positive().max(100_000).optional(),
      leaseMs: z
        .number()
        .int()
        .min(1000)
        .max(24 * 3600_000)
        .optional(),
      sweep: z.boolean().optional(),
      sweepBatch: z.number().int().positive().max(100_000).optional(),
    })
    .optional(),
} satisfies Record<keyof AuthPipeline, z.ZodType>

/** The flow of each entry point, for the redirect of its INPUT_INVALID once the org is known. */
const FLOWS: Readonly<Record<keyof AuthPipeline, ErrorRedirectHint>> = {
  beginLogin: 'orgLogin',
  beginUnsolicitedLogin: 'orgLogin',
  beginSetup: 'authSettings',
  disableProvider: 'authSettings',
  resendLinkRequests: 'authSettings',
  updateSettings: 'authSettings',
  addDomain: 'authSettings',
  verifyDomain: 'authSettings',
  removeDomain: 'authSettings',
  listDomains: 'authSettings',
  // The org of these is not in the input: it is known only from a state, link or identity.
  advance: 'root',
  serviceMetadata: 'root',
  finishLogin: 'root',
  explain: 'root',
  finishSetup: 'root',
  refreshIdentity: 'root',
  verifyAccountLink: 'root',
  runPendingWork: 'root',
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p).slice(0, 64)).join('.') || 'input'
}

// The two entry points of every login (beginLogin, advance) in their common, valid shape are
// checked without zod: each function makes every check of the method's schema and returns the
// value the schema would, or null for anything else (then the schema decides and names the
// issues). test/engine/inputs-quick.test.ts holds both to the same result.

type Plain = Record<string, unknown>
const isPlain = (v: unknown): v is Plain => {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}
const isId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.id
/** A bounded string, or null/undefined when `nullish` (returned as given); NO when anything else. */
const NO = Symbol('no')
function boundedString(v: unknown, max: number, nullish: boolean): string | null | undefined | typeof NO {
  if (typeof v === 'string') return v.length <= max ? v : NO
  if (nullish && (v === null || v === undefined)) return v
  return NO
}

function quickSession(v: unknown): Plain | null {
  if (!isPlain(v) || !isId(v.id)) return null
  const out: Plain = { id: v.id }
  if ('userId' in v) {
    if (!(v.userId === null || v.userId === undefined || isId(v.userId))) return null
    out.userId = v.userId
  }
  if ('twoFactorUserId' in v) out.twoFactorUserId = v.twoFactorUserId
  if ('twoFactorPassed' in v) out.twoFactorPassed = v.twoFactorPassed
  if ('invite' in v) {
    if (v.invite !== null && v.invite !== undefined) return null
    out.invite = v.invite
  }
  if ('verificationToken' in v) {
    const t = boundedString(v.verificationToken, TOKEN_MAX, true)
    if (t === NO) return null
    out.verificationToken = t
  }
  if ('ip' in v) {
    if (typeof v.ip === 'string') {
      if (v.ip.length > LIMITS.ipChain) return null
      const first = v.ip.split(',')[0]?.trim() ?? ''
      if (first.length > LIMITS.ip) return null
      out.ip = first === '' ? null : first
    } else if (v.ip === null || v.ip === undefined) out.ip = v.ip
    else return null
  }
  return out
}

function quickParams(raw: unknown): Readonly<Record<string, string>> | null {
  const out: Record<string, string> = Object.create(null)
  if (raw === undefined || raw === null) return out
  if (!isPlain(raw)) return null
  const keys = Object.keys(raw)
  if (keys.length > REQUEST_LIMITS.params || Object.getOwnPropertySymbols(raw).length > 0) return null
  for (const key of keys) {
    const value = raw[key]
    if (key.length > REQUEST_LIMITS.keyLength || typeof value !== 'string' || value.length > REQUEST_LIMITS.fieldLength) return null
    out[key] = value
  }
  return out
}

function quickAdvance(input: unknown): Plain | null {
  if (!isPlain(input)) return null
  const handle = input.handle
  if (typeof handle !== 'string' || handle.length > 256) return null
  const request = input.request
  if (!isPlain(request) || (request.method !== 'GET' && request.method !== 'POST')) return null
  // The schema wants both keys present (an undefined value is an empty set of parameters).
  if (!('query' in request) || !('form' in request)) return null
  const query = quickParams(request.query)
  const form = quickParams(request.form)
  if (!query || !form) return null
  let total = 0
  for (const k in query) total += (query[k] as string).length
  for (const k in form) total += (form[k] as string).length
  if (total > REQUEST_LIMITS.total) return null
  const session = quickSession(input.session)
  if (!session) return null
  return { handle, request: { method: request.method, query, form }, session }
}

function quickBeginLogin(input: unknown): Plain | null {
  if (!isPlain(input)) return null
  const out: Plain = {}
  const hasOrg = 'organizationId' in input && input.organizationId !== undefined
  const hasEmail = 'email' in input && input.email !== undefined
  if (hasOrg === hasEmail) return null
  if ('organizationId' in input) {
    if (!(input.organizationId === undefined || isId(input.organizationId))) return null
    out.organizationId = input.organizationId
  }
  if ('email' in input) {
    const e = input.email === undefined ? undefined : boundedString(input.email, LIMITS.email, false)
    if (e === NO) return null
    out.email = e
  }
  const session = quickSession(input.session)
  if (!session) return null
  out.session = session
  for (const [key, max] of [
    ['next', LIMITS.next],
    ['referrer', LIMITS.id],
    ['loginHint', 8192],
  ] as const) {
    if (!(key in input)) continue
    const v = boundedString(input[key], max, true)
    if (v === NO) return null
    out[key] = v
  }
  return out
}

/**
 * Validates `input` for `method`: the parsed input, or INPUT_INVALID naming the fields. The
 * redirect is the method's flow when the input names a valid organization, else `root`.
 */
export function parseInput<M extends keyof AuthPipeline>(method: M, input: unknown): Result<Parameters<AuthPipeline[M]>[0], AuthError> {
  const quick = method === 'advance' ? quickAdvance(input) : method === 'beginLogin' ? quickBeginLogin(input) : null
  if (quick !== null) return ok(quick as Parameters<AuthPipeline[M]>[0])
  const parsed = INPUT_SCHEMAS[method].safeParse(input)
  if (parsed.success) return ok(parsed.data as Parameters<AuthPipeline[M]>[0])
  const orgKnown = id.safeParse((input as { organizationId?: unknown } | null)?.organizationId).success
  const issues = parsed.error.issues.slice(0, 10).map((i) => ({ path: pathOf(i.path), message: i.message }))
  return err(
    authError('INPUT_INVALID', {
      redirect: orgKnown ? FLOWS[method] : 'root',
      details: { field: issues[0]?.path ?? 'input', issues },
    }),
  )
}

void sessionKeysCovered
