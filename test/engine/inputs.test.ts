// The boundary of the public entry points (src/engine/inputs.ts, issue 18; issue 12 item 4):
// what INPUT_INVALID names (the field, up to ten issues with their messages, the redirect), each
// limit at its edge, and the zod-free path of beginLogin and advance (issue 10 item 2): the common
// valid shapes, up to each limit, are accepted without the schema, with the schema's value.
// test/engine/inputs-quick.test.ts compares both paths over generated inputs.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { INPUT_SCHEMAS, parseInput, REQUEST_LIMITS, TOKEN_MAX } from '../../src/engine/inputs.js'
import { LIMITS } from '../../src/model/limits.js'

afterEach(() => {
  vi.restoreAllMocks()
})

/** The INPUT_INVALID of `method` for `input`: its redirect and details. */
function invalid(method: Parameters<typeof parseInput>[0], input: unknown) {
  const error = parseInput(method, input)._unsafeUnwrapErr()
  expect(error.code).toBe('INPUT_INVALID')
  return { redirect: error.redirect, details: error.details as { field: string; issues: { path: string; message: string }[] } }
}

const s = (n: number, c = 'x') => c.repeat(n)

describe('parseInput: the zod-free path of beginLogin and advance', () => {
  // Each input is valid and in the common shape: the result is the schema's, without the schema.
  const advance: [string, unknown][] = [
    [
      'a callback, every session field set',
      {
        handle: 'h',
        request: { method: 'GET', query: { code: 'c', state: 's' }, form: undefined },
        session: {
          id: 's',
          userId: 'u',
          twoFactorUserId: 'u',
          twoFactorPassed: true,
          invite: null,
          verificationToken: 't',
          ip: ' 203.0.113.7 , 10.0.0.1',
        },
      },
    ],
    [
      'a form post, the nullable fields null',
      {
        handle: '',
        request: { method: 'POST', query: null, form: { a: 'b' } },
        session: { id: 's', userId: null, verificationToken: null, ip: null },
      },
    ],
    [
      'undefined fields, an empty ip',
      {
        handle: 'h',
        request: { method: 'GET', query: {}, form: {} },
        session: { id: 's', userId: undefined, invite: undefined, verificationToken: undefined, ip: '' },
      },
    ],
    [
      'every limit reached, none passed',
      {
        handle: s(256),
        request: {
          method: 'POST',
          query: { [s(REQUEST_LIMITS.keyLength)]: s(REQUEST_LIMITS.fieldLength) },
          form: Object.fromEntries(
            Array.from({ length: REQUEST_LIMITS.params }, (_, i) => [`k${i}`, i === 0 ? s(REQUEST_LIMITS.fieldLength - 63) : 'x']),
          ),
        },
        session: {
          id: s(LIMITS.id),
          userId: s(LIMITS.id),
          verificationToken: s(TOKEN_MAX),
          ip: `${s(LIMITS.ip, '1')},${s(LIMITS.ipChain - LIMITS.ip - 1, '2')}`,
        },
      },
    ],
    [
      'a prototype-free query object',
      {
        handle: 'h',
        request: { method: 'GET', query: Object.assign(Object.create(null), { a: 'b' }), form: undefined },
        session: { id: 's' },
      },
    ],
  ]
  it.each(advance)('advance: %s', (_name, input) => {
    const want = INPUT_SCHEMAS.advance.safeParse(input)
    expect(want.success).toBe(true)
    const schema = vi.spyOn(INPUT_SCHEMAS.advance, 'safeParse')
    const got = parseInput('advance', input)
    expect(schema).not.toHaveBeenCalled()
    expect(got._unsafeUnwrap()).toStrictEqual(want.data)
  })

  const beginLogin: [string, unknown][] = [
    [
      'by organization, every option',
      { organizationId: 'org', session: { id: 's', userId: null }, next: '/x', referrer: 'r', loginHint: 'a@x.io' },
    ],
    ['by email, options null', { email: 'a@x.io', session: { id: 's' }, next: null, referrer: null, loginHint: null }],
    ['by email, organizationId undefined', { organizationId: undefined, email: 'a@x.io', session: { id: 's' }, next: undefined }],
    ['by organization, email undefined', { organizationId: 'org', email: undefined, session: { id: 's' } }],
    [
      'every limit reached',
      {
        email: s(LIMITS.email),
        session: { id: 's' },
        next: s(LIMITS.next),
        referrer: s(LIMITS.id),
        loginHint: s(8192),
      },
    ],
    ['an organization id at its limit', { organizationId: s(LIMITS.id), session: { id: 's' } }],
  ]
  it.each(beginLogin)('beginLogin: %s', (_name, input) => {
    const want = INPUT_SCHEMAS.beginLogin.safeParse(input)
    expect(want.success).toBe(true)
    const schema = vi.spyOn(INPUT_SCHEMAS.beginLogin, 'safeParse')
    const got = parseInput('beginLogin', input)
    expect(schema).not.toHaveBeenCalled()
    expect(got._unsafeUnwrap()).toStrictEqual(want.data)
  })

  it('other methods always go through their schema', () => {
    const schema = vi.spyOn(INPUT_SCHEMAS.beginSetup, 'safeParse')
    expect(parseInput('beginSetup', { organizationId: 'o', providerKey: 'p', session: { id: 's' } }).isOk()).toBe(true)
    expect(schema).toHaveBeenCalledTimes(1)
  })
})

describe('parseInput: INPUT_INVALID names the field and the issues', () => {
  const session = { id: 's' }
  const request = { method: 'GET', query: {}, form: {} }

  it('each parameter issue at its key, with its message; the first is the field', () => {
    const { details } = invalid('advance', {
      handle: 'h',
      request: {
        method: 'GET',
        query: { [s(REQUEST_LIMITS.keyLength + 1)]: 'v', n: 1, long: s(REQUEST_LIMITS.fieldLength + 1) },
        form: {},
      },
      session,
    })
    expect(details.issues).toEqual([
      { path: `request.query.${s(64)}`, message: 'parameter name too long' },
      { path: 'request.query.n', message: 'expected a string' },
      { path: 'request.query.long', message: 'value too long' },
    ])
    expect(details.field).toBe(`request.query.${s(64)}`)
  })

  it('parameters that are not an object, or too many', () => {
    expect(invalid('advance', { handle: 'h', request: { ...request, form: 'a=b' }, session }).details.issues).toEqual([
      { path: 'request.form', message: 'expected an object of string values' },
    ])
    expect(invalid('advance', { handle: 'h', request: { ...request, query: ['a'] }, session }).details.issues).toEqual([
      { path: 'request.query', message: 'expected an object of string values' },
    ])
    const many = Object.fromEntries(Array.from({ length: REQUEST_LIMITS.params + 1 }, (_, i) => [`k${i}`, 'v']))
    expect(invalid('advance', { handle: 'h', request: { ...request, query: many }, session }).details.issues).toEqual([
      { path: 'request.query', message: `at most ${REQUEST_LIMITS.params} parameters` },
    ])
  })

  it('the request total: 2 MiB is accepted, one character more is not', () => {
    const half = s(REQUEST_LIMITS.fieldLength)
    // With a symbol key the zod-free path steps aside: the schema counts.
    const sym = { [Symbol('s')]: 'x' }
    const at = { handle: 'h', request: { method: 'POST', query: { a: half, ...sym }, form: { b: half } }, session }
    expect(parseInput('advance', at).isOk()).toBe(true)
    const over = { handle: 'h', request: { method: 'POST', query: { a: half, ...sym }, form: { b: half, c: 'x' } }, session }
    expect(invalid('advance', over).details.issues).toEqual([
      { path: 'request', message: `at most ${REQUEST_LIMITS.total} characters in all` },
    ])
  })

  it('beginLogin: neither or both of organizationId and email', () => {
    expect(invalid('beginLogin', { session }).details.issues).toEqual([
      { path: 'organizationId', message: 'expected organizationId or email' },
    ])
    const both = invalid('beginLogin', { organizationId: 'org', email: 'a@x.io', session })
    expect(both.details.issues).toEqual([{ path: 'email', message: 'expected organizationId or email, not both' }])
    // The organization is named (and valid): its login page.
    expect(both.redirect).toBe('orgLogin')
  })

  it('the redirect is the flow of the method when the input names a valid organization, else root', () => {
    expect(invalid('beginSetup', { organizationId: 'org', providerKey: 1, session }).redirect).toBe('authSettings')
    expect(invalid('beginSetup', { organizationId: s(LIMITS.id + 1), providerKey: 'p', session }).redirect).toBe('root')
    expect(invalid('beginSetup', { organizationId: '', providerKey: 'p', session }).redirect).toBe('root')
    expect(invalid('disableProvider', null).redirect).toBe('root')
    expect(invalid('finishLogin', { organizationId: 'org', handle: 1, session }).redirect).toBe('root')
  })

  it('a wrong top-level value is the field `input`', () => {
    expect(invalid('beginSetup', 'x').details).toMatchObject({ field: 'input', issues: [{ path: 'input' }] })
    expect(invalid('runPendingWork', { limit: 0 }).details).toMatchObject({ field: 'limit' })
  })

  it('at most ten issues', () => {
    const { details } = invalid('advance', {
      handle: 'h',
      request: { ...request, query: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i])) },
      session,
    })
    expect(details.issues).toHaveLength(10)
    expect(details.issues.map((i) => i.path)).toEqual(Array.from({ length: 10 }, (_, i) => `request.query.k${i}`))
  })

  it('an identity or data that is not a plain object', () => {
    for (const identity of [null, [], 'x', 1]) {
      expect(invalid('finishSetup', { handle: 'h', identity, session }).details.issues).toEqual([
        { path: 'identity', message: 'expected an identity object' },
      ])
    }
    expect(invalid('finishSetup', { handle: 'h', identity: {}, session, data: [] }).details.issues).toEqual([
      { path: 'data', message: 'expected an object' },
    ])
    expect(parseInput('finishSetup', { handle: 'h', identity: { id: 'x' }, session, data: { a: 1 } }).isOk()).toBe(true)
  })

  it('the session ip: the first address of the chain, trimmed; too long a first address is refused', () => {
    const ip = (value: string) =>
      (
        parseInput('beginSetup', { organizationId: 'o', providerKey: 'p', session: { id: 's', ip: value } })._unsafeUnwrap() as {
          session: { ip: unknown }
        }
      ).session.ip
    expect(ip(' 203.0.113.7 , 10.0.0.1')).toBe('203.0.113.7')
    expect(ip('fe80::1%eth0')).toBe('fe80::1%eth0')
    expect(ip(' , 10.0.0.1')).toBeNull()
    expect(ip('')).toBeNull()
    expect(ip(`${s(LIMITS.ip, '1')}, 2`)).toBe(s(LIMITS.ip, '1'))
    expect(
      invalid('beginSetup', { organizationId: 'o', providerKey: 'p', session: { id: 's', ip: `${s(LIMITS.ip + 1, '1')}, 2` } }).details
        .issues,
    ).toEqual([{ path: 'session.ip', message: `the first address of the chain is longer than ${LIMITS.ip} characters` }])
  })
})

describe('parseInput: request parameters through the schema (beginUnsolicitedLogin has no zod-free path)', () => {
  const unsolicited = (query: unknown, form: unknown) =>
    parseInput('beginUnsolicitedLogin', { organizationId: 'org', session: { id: 's' }, request: { method: 'POST', query, form } })

  it('absent parameters are empty; the copy has no prototype and keeps every string value', () => {
    const got = unsolicited(undefined, null)._unsafeUnwrap().request
    expect(Object.getPrototypeOf(got.query)).toBeNull()
    expect({ ...got.query }).toEqual({})
    expect({ ...got.form }).toEqual({})
    const form = unsolicited({}, JSON.parse('{"__proto__": "x", "SAMLResponse": "r"}'))._unsafeUnwrap().request.form
    expect(Object.getPrototypeOf(form)).toBeNull()
    expect(Object.entries(form)).toEqual([
      ['__proto__', 'x'],
      ['SAMLResponse', 'r'],
    ])
  })

  it('each limit at its edge', () => {
    const params = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))
    expect(unsolicited(params(REQUEST_LIMITS.params), {}).isOk()).toBe(true)
    expect(unsolicited(params(REQUEST_LIMITS.params + 1), {}).isErr()).toBe(true)
    expect(unsolicited({ [s(REQUEST_LIMITS.keyLength)]: 'v' }, {}).isOk()).toBe(true)
    expect(unsolicited({ [s(REQUEST_LIMITS.keyLength + 1)]: 'v' }, {}).isErr()).toBe(true)
    expect(unsolicited({ a: s(REQUEST_LIMITS.fieldLength) }, {}).isOk()).toBe(true)
    expect(unsolicited({ a: s(REQUEST_LIMITS.fieldLength + 1) }, {}).isErr()).toBe(true)
    expect(unsolicited({ a: s(REQUEST_LIMITS.fieldLength) }, { b: s(REQUEST_LIMITS.fieldLength) }).isOk()).toBe(true)
    const over = unsolicited({ a: s(REQUEST_LIMITS.fieldLength) }, { b: s(REQUEST_LIMITS.fieldLength), c: 'x' })
    expect(over._unsafeUnwrapErr().details).toMatchObject({ field: 'request' })
  })
})
