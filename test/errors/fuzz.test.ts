// Bad input never looks like an outage (issue 18): fast-check drives every public entry point of
// createAuthPipeline with arbitrary values (null, numbers, arrays, huge strings, wrong shapes,
// `__proto__` keys), both as the whole input and as one field of an otherwise valid input. Every
// call must settle (no throw, no rejected promise) to INPUT_INVALID, not retryable, naming the
// field in `details.field`, with nothing read or written (the whole storage snapshot, pipeline
// states included, is unchanged) and no mail or signal.
//
// The validity rules below are this test's own reading of the documented input types, not the
// engine's schemas, so a schema that is too lax (or too strict) fails here. A new entry point
// fails the first test until it has a spec below.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { AuthPipeline } from '../../src/index.js'
import { ACME, type Harness, harness, POST } from './harness.js'

type Valid = (v: unknown) => boolean
const str =
  (min: number, max: number): Valid =>
  (v) =>
    typeof v === 'string' && v.length >= min && v.length <= max
const optional =
  (valid: Valid, nullable = true): Valid =>
  (v) =>
    v === undefined || (nullable && v === null) || valid(v)
const plain: Valid = (v) => typeof v === 'object' && v !== null && !Array.isArray(v)
const MiB = 1024 * 1024
const params: Valid = (v) =>
  plain(v) &&
  Object.keys(v as object).length <= 64 &&
  Object.entries(v as object).every(([k, x]) => k.length <= 256 && typeof x === 'string' && x.length <= MiB)

const V = {
  id: str(1, 255),
  optId: optional(str(1, 255)),
  handle: str(0, 256),
  token: str(1, 1024),
  optToken: optional(str(0, 1024)),
  // A chain up to 4096 characters; its first comma-separated address (trimmed) fits 64.
  optIp: optional((v) => typeof v === 'string' && v.length <= 4096 && (v.split(',')[0] ?? '').trim().length <= 64),
  optNext: optional(str(0, 2048)),
  optReferrer: optional(str(0, 255)),
  method: (v: unknown) => v === 'GET' || v === 'POST',
  optParams: optional(params),
  param: str(0, MiB),
  object: plain,
  optObject: optional(plain, false),
  optOp: optional((v) => v === 'confirm' || v === 'newuser'),
  optBool: optional((v) => typeof v === 'boolean', false),
  optRole: optional(str(0, 64), false),
  optInvite: optional(plain),
  strictSettings: (v: unknown) =>
    plain(v) && Object.keys(v as object).every((k) => ['requireSso', 'scimEnabled', 'defaultRole'].includes(k)),
} satisfies Record<string, Valid>

const intIn =
  (min: number, max: number): Valid =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
const WORK_FIELDS: readonly Field[] = [
  { path: ['limit'], valid: optional(intIn(1, 100_000), false) },
  { path: ['leaseMs'], valid: optional(intIn(1000, 24 * 3600_000), false) },
  { path: ['sweep'], valid: optional((v) => typeof v === 'boolean', false) },
  { path: ['sweepBatch'], valid: optional(intIn(1, 100_000), false) },
]

const HUGE = 'x'.repeat(2 * MiB + 1)
const protoKeyed = () => JSON.parse('{"__proto__": {"id": "sess", "organizationId": "org-acme", "userId": "owner"}}')
const weird = fc.oneof(
  fc.anything({ maxDepth: 2, withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true }),
  fc.constantFrom<unknown>(null, undefined, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, true, false, '', [], {}, ['a'], [{}], 10n),
  fc.constantFrom<unknown>('x'.repeat(65), 'x'.repeat(256), 'x'.repeat(1025), 'x'.repeat(2049), HUGE, 'x'.repeat(MiB + 1)),
  fc.constant(null).map(() => protoKeyed()),
  fc.constant(null).map(() => Object.create(null) as unknown),
  fc.constant(null).map(() => new Date(0) as unknown),
  fc.constant(null).map(() => (() => 'fn') as unknown),
  fc.constant(null).map(() => Symbol('s') as unknown),
  fc.string({ minLength: 256, maxLength: 4000 }),
  fc.array(fc.string(), { maxLength: 5 }),
)

/** One mutable field of an entry point's input and what makes it valid. */
interface Field {
  readonly path: readonly string[]
  readonly valid: Valid
}

const sessionFields = (prefix: string[] = ['session']): Field[] => [
  { path: prefix, valid: plain },
  { path: [...prefix, 'id'], valid: V.id },
  { path: [...prefix, 'userId'], valid: V.optId },
  { path: [...prefix, 'invite'], valid: V.optInvite },
  { path: [...prefix, 'verificationToken'], valid: V.optToken },
  { path: [...prefix, 'ip'], valid: V.optIp },
]
const inviteFields: Field[] = [
  { path: ['session', 'invite', 'memberId'], valid: V.id },
  { path: ['session', 'invite', 'token'], valid: V.token },
  { path: ['session', 'invite', 'organizationId'], valid: V.id },
]
const requestFields: Field[] = [
  { path: ['request'], valid: plain },
  { path: ['request', 'method'], valid: V.method },
  { path: ['request', 'query'], valid: V.optParams },
  { path: ['request', 'form'], valid: V.optParams },
  { path: ['request', 'form', 'email'], valid: V.param },
]

/** An entry point: a valid input (built in a world with a live pipeline) and its fields. */
interface Spec {
  /** The flow whose page an INPUT_INVALID names once `organizationId` is valid; else root. */
  readonly flow: 'orgLogin' | 'authSettings' | 'root'
  valid(h: Harness, handle: string): Record<string, unknown>
  readonly fields: readonly Field[]
  /** For entry points whose whole input may be absent or empty: the whole inputs that are valid. */
  readonly wholeValid?: Valid
}

const session = {
  id: 'sess-anon',
  userId: null,
  invite: { memberId: 'm-x', token: 't', organizationId: ACME },
  verificationToken: 'v',
  ip: '203.0.113.7',
}
const owner = { ...session, id: 'sess-owner', userId: 'owner' }
const request = { method: 'POST', query: {}, form: { email: 'x@example.com' } }

const SPECS: Readonly<Record<keyof AuthPipeline, Spec>> = {
  beginLogin: {
    flow: 'orgLogin',
    valid: () => ({ organizationId: ACME, session, next: '/x', referrer: 'r' }),
    fields: [
      { path: ['organizationId'], valid: V.id },
      // Exactly one of organizationId and email: next to an organizationId, any email is refused.
      { path: ['email'], valid: (v: unknown) => v === undefined },
      { path: ['next'], valid: V.optNext },
      { path: ['referrer'], valid: V.optReferrer },
      ...sessionFields(),
      ...inviteFields,
    ],
  },
  beginSetup: {
    flow: 'authSettings',
    valid: () => ({ organizationId: 'org-bare', providerKey: 'dummy', session: owner }),
    fields: [{ path: ['organizationId'], valid: V.id }, { path: ['providerKey'], valid: V.id }, ...sessionFields()],
  },
  advance: {
    flow: 'root',
    valid: (_h, handle) => ({ handle, request, session }),
    fields: [{ path: ['handle'], valid: V.handle }, ...requestFields, ...sessionFields(), ...inviteFields],
  },
  beginUnsolicitedLogin: {
    flow: 'orgLogin',
    valid: () => ({ organizationId: ACME, session, request }),
    fields: [{ path: ['organizationId'], valid: V.id }, ...requestFields, ...sessionFields()],
  },
  serviceMetadata: {
    flow: 'root',
    valid: () => ({ organizationId: ACME, providerKey: 'dummy' }),
    fields: [
      { path: ['organizationId'], valid: V.id },
      { path: ['providerKey'], valid: V.id },
    ],
  },
  finishLogin: {
    flow: 'root',
    valid: (_h, handle) => ({ handle, session, identity: { id: 'ext', email: 'x@example.com' }, op: 'newuser' }),
    fields: [
      { path: ['handle'], valid: V.handle },
      { path: ['identity'], valid: V.optObject },
      { path: ['op'], valid: V.optOp },
      ...sessionFields(),
      ...inviteFields,
    ],
  },
  explain: {
    flow: 'root',
    valid: (_h, handle) => ({ handle, session, identity: { id: 'ext', email: 'x@example.com' } }),
    fields: [
      { path: ['handle'], valid: V.handle },
      { path: ['identity'], valid: V.optObject },
      { path: ['op'], valid: V.optOp },
      ...sessionFields(),
    ],
  },
  finishSetup: {
    flow: 'root',
    valid: (_h, handle) => ({ handle, session: owner, identity: { id: 'ext', email: 'owner@example.com' }, data: {} }),
    fields: [
      { path: ['handle'], valid: V.handle },
      { path: ['identity'], valid: V.object },
      { path: ['data'], valid: V.optObject },
      ...sessionFields(),
    ],
  },
  disableProvider: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner }),
    fields: [{ path: ['organizationId'], valid: V.id }, ...sessionFields()],
  },
  resendLinkRequests: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner }),
    fields: [{ path: ['organizationId'], valid: V.id }, ...sessionFields()],
  },
  updateSettings: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner, settings: { requireSso: true, scimEnabled: false, defaultRole: 'member' } }),
    fields: [
      { path: ['organizationId'], valid: V.id },
      { path: ['settings'], valid: V.strictSettings },
      { path: ['settings', 'requireSso'], valid: V.optBool },
      { path: ['settings', 'scimEnabled'], valid: V.optBool },
      { path: ['settings', 'defaultRole'], valid: V.optRole },
      ...sessionFields(),
    ],
  },
  addDomain: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner, domain: 'acme.example' }),
    fields: [{ path: ['organizationId'], valid: V.id }, { path: ['domain'], valid: str(0, 320) }, ...sessionFields()],
  },
  verifyDomain: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner, domain: 'acme.example' }),
    fields: [{ path: ['organizationId'], valid: V.id }, { path: ['domain'], valid: str(0, 320) }, ...sessionFields()],
  },
  removeDomain: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner, domain: 'acme.example' }),
    fields: [{ path: ['organizationId'], valid: V.id }, { path: ['domain'], valid: str(0, 320) }, ...sessionFields()],
  },
  listDomains: {
    flow: 'authSettings',
    valid: () => ({ organizationId: ACME, session: owner }),
    fields: [{ path: ['organizationId'], valid: V.id }, ...sessionFields()],
  },
  refreshIdentity: {
    flow: 'root',
    valid: () => ({ identityId: 'i-suspended' }),
    fields: [{ path: ['identityId'], valid: V.id }],
  },
  verifyAccountLink: {
    flow: 'root',
    valid: () => ({ token: 'a-token', session }),
    fields: [{ path: ['token'], valid: V.token }, ...sessionFields()],
  },
  runPendingWork: {
    flow: 'root',
    valid: () => ({ limit: 5, leaseMs: 60_000, sweep: true, sweepBatch: 100 }),
    fields: WORK_FIELDS,
    wholeValid: (v) =>
      v === undefined ||
      (plain(v) &&
        Object.keys(v as object).every((k) => WORK_FIELDS.some((f) => f.path[0] === k)) &&
        WORK_FIELDS.every((f) => f.valid((v as Record<string, unknown>)[f.path[0] ?? '']))),
  },
}

/** `input` with the value at `path` replaced (structuredClone-free: only the path is copied). */
function withField(input: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path
  if (head === undefined) return input
  const inner = rest.length === 0 ? value : withField((input[head] as Record<string, unknown>) ?? {}, rest, value)
  return { ...input, [head]: inner }
}

/** Runs one call the way a host would and returns its error; fails the test on a throw, rejection or success. */
async function call(sso: AuthPipeline, method: keyof AuthPipeline, input: unknown) {
  let pending: PromiseLike<{ isErr(): boolean; error?: unknown }>
  try {
    pending = (sso[method] as (i: unknown) => PromiseLike<{ isErr(): boolean; error?: unknown }>)(input)
  } catch (thrown) {
    throw new Error(`${method} threw ${String(thrown)}`)
  }
  let result: { isErr(): boolean; error?: unknown }
  try {
    result = await pending
  } catch (rejected) {
    throw new Error(`${method} rejected with ${String(rejected)}`)
  }
  if (!result.isErr()) throw new Error(`${method} succeeded on malformed input`)
  return result.error as { code: string; retryable: boolean; redirect: string; details?: { field?: unknown } }
}

const RUNS = { whole: 150, field: 350 } as const

async function world() {
  const h = harness()
  const login = await h.beginLogin()
  const setup = await h.beginSetup('owner')
  return { h, login, setup }
}

describe('every public entry point refuses malformed input as INPUT_INVALID, writing nothing', () => {
  it('has a fuzz spec for every method of the engine', async () => {
    const { h } = await world()
    expect(Object.keys(h.sso).sort()).toEqual(Object.keys(SPECS).sort())
  })

  it.each(Object.keys(SPECS) as (keyof AuthPipeline)[])(
    '%s',
    async (method) => {
      const spec = SPECS[method]
      const first = await world()
      // The base input is valid: whatever it returns, it is not INPUT_INVALID.
      const baseline = await first.h.sso[method](spec.valid(first.h, method === 'finishSetup' ? first.setup : first.login) as never)
      expect(baseline.isErr() && baseline.error.code === 'INPUT_INVALID', `${method}: the base input must be valid`).toBe(false)

      // Each case runs in a fresh world (so a leak cannot hide behind a later case when shrinking).
      const check = async (make: (base: Record<string, unknown>) => unknown, expectedField: string | null) => {
        const { h, login, setup } = await world()
        const input = make(spec.valid(h, method === 'finishSetup' ? setup : login))
        const expectedRedirect = redirectFor(input)
        const before = h.storage.snapshot()
        const mails = h.mailer.sent.length
        const signals = h.signals.emitted.length
        const error = await call(h.sso, method, input)
        expect(error.code).toBe('INPUT_INVALID')
        expect(error.retryable).toBe(false)
        expect(error.redirect).toBe(expectedRedirect)
        expect(typeof error.details?.field).toBe('string')
        if (expectedField !== null)
          expect(String(error.details?.field).startsWith(expectedField), `${error.details?.field} names ${expectedField}`).toBe(true)
        expect(h.storage.snapshot()).toEqual(before)
        expect(h.mailer.sent.length).toBe(mails)
        expect(h.signals.emitted.length).toBe(signals)
      }
      const orgKnown = (input: unknown) => V.id((input as { organizationId?: unknown } | null | undefined)?.organizationId)
      const redirectFor = (input: unknown) => (orgKnown(input) ? spec.flow : 'root')

      // 1. The whole input is anything at all.
      await fc.assert(
        fc.asyncProperty(
          weird.filter((v) => !(spec.wholeValid?.(v) ?? false)),
          async (input) => check(() => input, null),
        ),
        { numRuns: RUNS.whole },
      )
      // 2. One field of a valid input is wrong (or missing).
      const mutation = fc
        .constantFrom(...spec.fields)
        .chain((field) => weird.filter((v) => !field.valid(v)).map((value) => ({ field, value })))
      await fc.assert(
        fc.asyncProperty(mutation, async ({ field, value }) => check((base) => withField(base, field.path, value), field.path.join('.'))),
        { numRuns: RUNS.field },
      )
    },
    120_000,
  )

  it('a request over the 2 MiB total, each field within 1 MiB, is INPUT_INVALID naming the request', async () => {
    const { h, login } = await world()
    const big = 'x'.repeat(MiB)
    const input = { handle: login, session, request: POST({ a: big, b: big, c: big }) }
    const error = await call(h.sso, 'advance', input)
    expect(error).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', details: { field: 'request' } })
  })
})

// Issue 12 item 8: hostile VALUES (not shapes) at every boundary: identity objects from a
// provider, form posts and cookies through ssoflow/http's handler, pipeline handles and `next`
// targets. Generators: huge strings, deep nesting, control and bidi characters, unpaired
// surrogates, confusables, percent- and double-encoded redirects, `__proto__` keys. Always a
// typed error or a safe default; never a throw, a 5xx, a write, or a polluted prototype.
describe('hostile values at the boundaries (issue 12 item 8)', () => {
  const RUNS = Number(process.env.FUZZ ? 2000 : 150)
  const nasty = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\r\nSet-Cookie: x=1',
      '\u202Eevil',
      '\ud800',
      '\udfff\ud800',
      '\u212Aate@corp.example',
      'v\u0430l@corp.example',
      '"a@evil.example"@corp.example',
      'a@corp.example,b@evil.example',
      '%00',
      '%2F%2Fevil.example',
      '%252F%252Fevil.example',
      '\\\\evil.example',
      '/\\evil.example',
      '//evil.example/%2e%2e',
      'javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'https://evil.example',
      '/\t/evil.example',
      '/%09/evil.example',
      '/.//evil.example',
      '/%5Cevil.example',
      '__proto__',
      'constructor',
      'x'.repeat(300),
      'x'.repeat(70_000),
    ),
  )
  const hostileJson = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}')),
    fc.constant({ deep: JSON.parse(`${'{"a":'.repeat(200)}1${'}'.repeat(200)}`) }),
  )
  const hostileIdentity = fc.record(
    {
      id: fc.oneof(nasty, fc.record({ id: nasty, legacyId: fc.option(nasty) }), fc.integer(), fc.constant(null)),
      email: fc.oneof(nasty, fc.constant(['a@corp.example']), fc.constant(null)),
      emailVerified: fc.oneof(fc.boolean(), fc.constantFrom('true', 1, 'on', null)),
      name: fc.oneof(nasty, fc.constant(null), fc.integer()),
      data: hostileJson,
    },
    { requiredKeys: [] },
  )
  const notPolluted = () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
  }

  it('identity objects: IDENTITY_INVALID or a page, never a throw or a write', async () => {
    const { world, start, session } = await import('../login/harness.js')
    const { parseIdentity } = await import('../../src/model/identity.js')
    await fc.assert(
      fc.asyncProperty(hostileIdentity, async (identity) => {
        const parsed = parseIdentity(identity)
        if (parsed.isErr()) expect(parsed.error.code).toBe('IDENTITY_INVALID')
        const w = world()
        const handle = await start(w)
        const before = dataOfLogin(w.storage.snapshot())
        const r = await w.login.finishLogin({ handle, session: session(), identity: identity as never })
        if (r.isErr()) expect(['IDENTITY_INVALID', 'INPUT_INVALID']).toContain(r.error.code)
        else expect(r.value.kind).toBe('confirmationRequired')
        expect(dataOfLogin(w.storage.snapshot())).toEqual(before)
        expect(w.signals.emitted).toEqual([])
        notPolluted()
      }),
      { numRuns: RUNS },
    )
  })

  it('pipeline handles: STATE_INVALID / INPUT_INVALID, nothing read past the MAC, nothing written', async () => {
    const { world, start, session, ident } = await import('../login/harness.js')
    const w = world()
    const real = await start(w)
    const [id, mac] = real.split('.')
    const handles = fc.oneof(
      nasty,
      nasty.map((x) => `${id}.${x}`),
      nasty.map((x) => `${x}.${mac}`),
      nasty.map((x) => `${real}${x}`),
      fc.constant(`${id}.${mac}.${mac}`),
    )
    const before = w.storage.snapshot()
    await fc.assert(
      fc.asyncProperty(handles, async (handle) => {
        fc.pre(handle !== real)
        const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'x', email: 'x@corp.example' }) })
        expect(r.isErr() && ['STATE_INVALID', 'INPUT_INVALID'].includes(r.error.code)).toBe(true)
      }),
      { numRuns: RUNS },
    )
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('`next` targets: a same-origin relative path or the default landing page, whatever the encoding', async () => {
    const { safeNext } = await import('../../src/core/redirect.js')
    const base = 'https://app.example.com'
    const nexts = fc.oneof(
      nasty,
      nasty.map((x) => `/${x}`),
      fc.webUrl(),
      fc.webPath(),
      nasty.map((x) => {
        try {
          return encodeURIComponent(`//${x}`)
        } catch {
          return `//${x}` // an unpaired surrogate cannot be percent-encoded
        }
      }),
    )
    fc.assert(
      fc.property(nexts, (next) => {
        const out = safeNext(next, base)
        if (out === null) return
        expect(out.startsWith('/')).toBe(true)
        expect(out.startsWith('//')).toBe(false)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
        expect(out).not.toMatch(/[\\\u0000-\u001f]/)
        expect(new URL(out, base).origin).toBe(base)
        // decoding it again must not turn it into another origin either
        let decoded = out
        for (let i = 0; i < 3; i++)
          decoded = (() => {
            try {
              return decodeURIComponent(decoded)
            } catch {
              return decoded
            }
          })()
        expect(decoded.startsWith('//') || decoded.startsWith('/\\')).toBe(false)
      }),
      { numRuns: RUNS * 4 },
    )
  })

  it('form posts and cookies through the HTTP handler: never a 5xx, never a write', async () => {
    const { createWorld, BASE_PATH } = await import('../http/world.js')
    const { Browser } = await import('../http/client.js')
    const ORIGIN = 'https://app.example.com'
    const world = createWorld(ORIGIN)
    const before = dataOfLogin(world.storage.snapshot())
    const b = new Browser(ORIGIN, (r) => world.handler.fetch(r, undefined))
    const page = await (await b.get(`${BASE_PATH}/login/acme`)).text()
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''
    const fields = fc.dictionary(
      fc.oneof(nasty, fc.constantFrom('id', 'email', 'email_verified', 'name', 'op', 'csrf', '__proto__')),
      nasty,
      {
        maxKeys: 6,
      },
    )
    await fc.assert(
      fc.asyncProperty(
        fields,
        fc.boolean(),
        fc.option(nasty),
        fc.constantFrom('callback', 'confirm', 'resume', 'login/acme', 'verify/x'),
        async (form, withCsrf, cookie, route) => {
          const body = new URLSearchParams()
          for (const [k, v] of Object.entries(form)) body.append(k, v)
          if (withCsrf) body.set('csrf', csrf)
          const headers: Record<string, string> = {
            'content-type': 'application/x-www-form-urlencoded',
            origin: ORIGIN,
            'sec-fetch-site': 'same-origin',
          }
          const res = await b.request(`${BASE_PATH}/${route}`, {
            method: 'POST',
            body: body.toString(),
            headers:
              cookie === null
                ? headers
                : {
                    ...headers, // what a header can carry: visible ASCII and spaces
                    cookie: `${b.cookieHeader(`${BASE_PATH}/`)}; ${cookie.replace(/[^\x20-\x7e]/g, '')}`,
                  },
          })
          // a typed answer: 502 is the documented status of an identity the IdP step could not build
          // (IDENTITY_INVALID); never 500 (a throw) nor 503 (an outage)
          expect([500, 503]).not.toContain(res.status)
          expect(res.status).toBeLessThan(504)
          // nobody is signed up or linked by the fuzzed posts: no verified address, no account matched
          expect(dataOfLogin(world.storage.snapshot()).users).toEqual(before.users)
          expect(dataOfLogin(world.storage.snapshot()).members).toEqual(before.members)
          notPolluted()
        },
      ),
      { numRuns: RUNS },
    )
  })
})

/** A memory snapshot without pipeline states and one-time tokens (a page may store a link). */
function dataOfLogin<T extends { pipelineStates: unknown; oneTimeTokens: unknown }>(s: T) {
  const { pipelineStates: _p, oneTimeTokens: _t, ...rest } = s
  return rest
}
