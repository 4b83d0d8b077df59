// Issue 10 item 2: beginLogin and advance check their common, valid input without zod. The
// result must be the schema's, for any input: the same parsed value when valid, INPUT_INVALID
// (from the schema, with its issues) otherwise.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { INPUT_SCHEMAS, parseInput } from '../../src/engine/inputs.js'
import { runs } from '../helpers/runs.js'

function same(method: 'advance' | 'beginLogin', input: unknown): void {
  const got = parseInput(method, input)
  const want = INPUT_SCHEMAS[method].safeParse(input)
  if (!want.success) {
    expect(got.isErr()).toBe(true)
    return
  }
  expect(got._unsafeUnwrap()).toStrictEqual(want.data)
}

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, fc.constant(null), fc.constant(undefined), fc.anything())
const str = (max: number) => fc.oneof(fc.string({ maxLength: 12 }), fc.string({ minLength: max - 1, maxLength: max + 1 }))
const session = fc.record(
  {
    id: fc.oneof(str(255), fc.constant('')),
    userId: maybe(str(255)),
    twoFactorUserId: fc.anything(),
    twoFactorPassed: fc.anything(),
    invite: fc.oneof(
      fc.constant(null),
      fc.constant(undefined),
      fc.record({ memberId: fc.string(), token: fc.string(), organizationId: fc.string() }),
    ),
    verificationToken: maybe(str(1024)),
    ip: maybe(
      fc.oneof(
        fc.constant('203.0.113.7, 10.0.0.1'),
        fc.constant(' , x'),
        fc.string({ maxLength: 70 }),
        fc.string({ minLength: 60, maxLength: 70 }),
      ),
    ),
  },
  { requiredKeys: [] },
)
const params = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.anything(), { maxKeys: 3 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.anything(),
)
const advance = fc.record(
  {
    handle: fc.oneof(fc.string({ maxLength: 20 }), str(256), fc.anything()),
    request: fc.oneof(
      fc.record({ method: fc.constantFrom('GET', 'POST', 'PUT'), query: params, form: params }, { requiredKeys: ['method'] }),
      fc.anything(),
    ),
    session,
    extra: fc.anything(),
  },
  { requiredKeys: [] },
)
const beginLogin = fc.record(
  {
    organizationId: maybe(str(255)),
    email: maybe(str(320)),
    session,
    next: maybe(str(2048)),
    referrer: maybe(str(255)),
    loginHint: maybe(str(8192)),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
)

describe('parseInput: the zod-free path of beginLogin and advance gives the schema result', () => {
  it('advance (property), valid requests included', () => {
    const valid = fc.record({
      handle: fc.string({ maxLength: 20 }),
      request: fc.record({
        method: fc.constantFrom('GET', 'POST'),
        query: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
        form: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 5 })),
      }),
      session,
    })
    fc.assert(
      fc.property(valid, (input) => same('advance', input)),
      { numRuns: runs(3000) },
    )
  })
  it('advance (property)', () => {
    fc.assert(
      fc.property(fc.oneof(advance, fc.anything()), (input) => same('advance', input)),
      { numRuns: runs(3000) },
    )
  })
  it('beginLogin (property)', () => {
    fc.assert(
      fc.property(fc.oneof(beginLogin, fc.anything()), (input) => same('beginLogin', input)),
      { numRuns: runs(3000) },
    )
  })
  it.each([
    [
      'a callback',
      { handle: 'h', request: { method: 'GET', query: { code: 'c', state: 's' }, form: {} }, session: { id: 'anon', userId: null } },
    ],
    [
      'a form post, signed in, forwarded ip',
      {
        handle: 'h',
        request: { method: 'POST', query: {}, form: { a: 'b' } },
        session: { id: 's', userId: 'u', ip: ' 203.0.113.7 , 10.0.0.1' },
      },
    ],
    [
      '__proto__ as a query key',
      { handle: 'h', request: { method: 'GET', query: JSON.parse('{"__proto__": "x"}'), form: undefined }, session: { id: 's' } },
    ],
    [
      '65 parameters',
      {
        handle: 'h',
        request: { method: 'GET', query: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
        session: { id: 's' },
      },
    ],
    [
      'over 2 MiB in all',
      {
        handle: 'h',
        request: { method: 'POST', query: { a: 'x'.repeat(1024 * 1024) }, form: { b: 'x'.repeat(1024 * 1024), c: 'x' } },
        session: { id: 's' },
      },
    ],
    [
      'an ip whose first address is too long',
      { handle: 'h', request: { method: 'GET' }, session: { id: 's', ip: `${'1'.repeat(65)}, 2` } },
    ],
    [
      'an invite in the session',
      { handle: 'h', request: { method: 'GET' }, session: { id: 's', invite: { memberId: 'm', token: 't', organizationId: 'o' } } },
    ],
  ])('advance: %s', (_name, input) => same('advance', input))
  it.each([
    ['by organization', { organizationId: 'org', session: { id: 's', userId: null }, next: '/dashboard', loginHint: 'a@x.io' }],
    ['by email', { email: 'a@x.io', session: { id: 's' }, next: null }],
    ['both', { organizationId: 'org', email: 'a@x.io', session: { id: 's' } }],
    ['neither', { session: { id: 's' }, organizationId: undefined }],
    ['a long login hint', { organizationId: 'org', session: { id: 's' }, loginHint: 'x'.repeat(8193) }],
  ])('beginLogin: %s', (_name, input) => same('beginLogin', input))
})
