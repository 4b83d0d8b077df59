import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { emailsEqual, isValidEmail, normalizeEmail } from '../../src/model/email.js'
import { identityInputSchema, isStorableText, jsonWithinLimits, parseIdentity, toIdentity } from '../../src/model/identity.js'
import { LIMITS } from '../../src/model/limits.js'
import { runs } from '../helpers/runs.js'

describe('normalizeEmail', () => {
  it('trims, composes and lowercases', () => {
    expect(normalizeEmail('  Alice@Example.COM ')).toBe('alice@example.com')
    expect(normalizeEmail('E\u0301lise@x.io')).toBe('\u00e9lise@x.io')
  })
  it('never folds compatibility or confusable forms into ASCII', () => {
    expect(emailsEqual('\u212Aate@x.io', 'kate@x.io')).toBe(false) // Kelvin sign
    expect(emailsEqual('\u0130nfo@x.io', 'info@x.io')).toBe(false) // dotted capital I
    expect(emailsEqual('\uFF41dmin@x.io', 'admin@x.io')).toBe(false) // fullwidth a
    expect(emailsEqual('admin@x.io', 'adm\u0131n@x.io')).toBe(false) // dotless i
  })
  it('keeps plus-addressing and dots (distinct mailboxes)', () => {
    expect(emailsEqual('a+b@x.io', 'a@x.io')).toBe(false)
    expect(emailsEqual('a.b@x.io', 'ab@x.io')).toBe(false)
  })
  it('is idempotent', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => normalizeEmail(normalizeEmail(s)) === normalizeEmail(s)))
  })
})

describe('isValidEmail', () => {
  it.each([
    ['a@b.co', true],
    ['a@b', false],
    ['a@b.co.', false],
    ['a@@b.co', false],
    ['a b@c.io', false],
    ['a@b.co\r\nBcc: x@y.z', false],
    ['"a"@b.co', false],
    ['a,b@c.io', false],
    ['.a@b.co', false],
    ['', false],
  ])('%j -> %s', (email, valid) => {
    expect(isValidEmail(email)).toBe(valid)
  })
})

describe('parseIdentity', () => {
  it('normalizes a valid identity', () => {
    const r = parseIdentity({ id: 'sub-1', email: ' Bob@Example.com ', emailVerified: true, name: 'Bob', data: { a: 1 } })
    expect(r._unsafeUnwrap()).toEqual({
      id: 'sub-1',
      legacyId: null,
      email: 'Bob@Example.com',
      emailNormalized: 'bob@example.com',
      emailVerified: true,
      name: 'Bob',
      data: { a: 1 },
    })
  })
  it('accepts a migrating id', () => {
    const r = parseIdentity({ id: { id: 'new', legacyId: 'old' }, email: 'a@b.co' })._unsafeUnwrap()
    expect([r.id, r.legacyId]).toEqual(['new', 'old'])
  })
  it.each([['false'], ['true'], [1], ['yes'], [null], [undefined]])('emailVerified %j is not verified', (v) => {
    expect(parseIdentity({ id: 'x', email: 'a@b.co', emailVerified: v })._unsafeUnwrap().emailVerified).toBe(false)
  })
  it('treats a null name as empty and truncates long names to 200 code points', () => {
    expect(parseIdentity({ id: 'x', email: 'a@b.co', name: null })._unsafeUnwrap().name).toBe('')
    expect(parseIdentity({ id: 'x', email: 'a@b.co', name: '\u{1F600}'.repeat(300) })._unsafeUnwrap().name).toBe('\u{1F600}'.repeat(200))
  })
  it.each([
    ['missing email', { id: 'x' }],
    ['empty email', { id: 'x', email: '' }],
    ['bad email', { id: 'x', email: 'nope' }],
    ['empty id', { id: '', email: 'a@b.co' }],
    ['long id', { id: 'x'.repeat(LIMITS.id + 1), email: 'a@b.co' }],
    ['long email', { id: 'x', email: `${'a'.repeat(64)}@${'b'.repeat(300)}.co` }],
    ['number id', { id: 42, email: 'a@b.co' }],
    ['unknown field', { id: 'x', email: 'a@b.co', role: 'owner' }],
    ['huge data', { id: 'x', email: 'a@b.co', data: { blob: 'x'.repeat(LIMITS.dataBytes) } }],
    ['non-object', 'identity'],
    ['null', null],
  ])('rejects %s with IDENTITY_INVALID', (_name, input) => {
    const r = parseIdentity(input)
    expect(r.isErr() && r.error.code).toBe('IDENTITY_INVALID')
  })
  it.each([
    ['U+0000 in a data value', { id: 'x', email: 'a@b.co', data: { token: 'a\u0000b' } }],
    ['U+0000 in a data key', { id: 'x', email: 'a@b.co', data: { 'a\u0000': 1 } }],
    ['a lone high surrogate in data', { id: 'x', email: 'a@b.co', data: { list: [{ v: 'x\ud800' }] } }],
    ['a lone low surrogate in data', { id: 'x', email: 'a@b.co', data: { v: '\udc00x' } }],
    ['reversed surrogates in data', { id: 'x', email: 'a@b.co', data: { v: '\ude00\ud83d' } }],
    ['U+0000 in the id', { id: 'x\u0000', email: 'a@b.co' }],
    ['a lone surrogate in the legacy id', { id: { id: 'x', legacyId: 'y\ud800' }, email: 'a@b.co' }],
    ['U+0000 in the name', { id: 'x', email: 'a@b.co', name: 'Zo\u0000e' }],
    ['a lone surrogate in the name', { id: 'x', email: 'a@b.co', name: 'Zo\udfffe' }],
    ['data one level too deep', { id: 'x', email: 'a@b.co', data: nested(LIMITS.dataDepth + 1) }],
  ])('refuses %s at the boundary (IDENTITY_INVALID: no database stores it as is)', (_name, input) => {
    expect(parseIdentity(input)._unsafeUnwrapErr().code).toBe('IDENTITY_INVALID')
  })
  it('accepts every other character and the full depth', () => {
    const controls = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('')
    const data = { controls, astral: '\u{1F600}\u{10FFFF}', ...nested(LIMITS.dataDepth) }
    const parsed = parseIdentity({ id: `x${controls}`, email: 'a@b.co', name: `Zo\u{1F600}${controls}`, data })._unsafeUnwrap()
    expect(parsed.data).toEqual(data)
    expect(parsed.id).toBe(`x${controls}`)
    expect(isStorableText('\u{1F600}')).toBe(true)
    expect(isStorableText('\ud83d')).toBe(false)
  })
  it('rejects deep nesting and cycles without throwing', () => {
    let deep: Record<string, unknown> = {}
    const root = deep
    for (let i = 0; i < 10_000; i++) {
      const next = {}
      deep.n = next
      deep = next
    }
    expect(parseIdentity({ id: 'x', email: 'a@b.co', data: root })._unsafeUnwrapErr().code).toBe('IDENTITY_INVALID')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(parseIdentity({ id: 'x', email: 'a@b.co', data: cyclic })._unsafeUnwrapErr().code).toBe('IDENTITY_INVALID')
  })
  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const r = parseIdentity(input)
        return r.isOk() || r.error.code === 'IDENTITY_INVALID'
      }),
    )
  })
})

/** An object whose deepest value sits `depth` levels below the data object (depth 1: `{ v: 'x' }`). */
function nested(depth: number): Record<string, unknown> {
  let value: unknown = 'x'
  for (let i = 1; i < depth; i++) value = i % 2 === 0 ? [value] : { [`l${i}`]: value }
  return { v: value }
}

describe('parseIdentity: the zod-free path for the common identity (issue 10 item 2)', () => {
  const viaSchema = (input: unknown) => {
    const parsed = identityInputSchema.safeParse(input)
    return parsed.success ? toIdentity(parsed.data) : null
  }
  const sparse: number[] = []
  sparse[0] = 1
  sparse[2] = 2 // a hole at 1
  const cases: [string, unknown][] = [
    ['plain', { id: 'sub-1', email: ' Ada@Acme.example ', emailVerified: true, name: 'Ada\u0007 Lovelace' }],
    [
      'OIDC-like data',
      {
        id: 's',
        email: 'a@x.io',
        data: { sub: 's', tokens: { id_token: 'a.b.c', expires_at: 1_700_000_000, scopes: ['openid', 'email'] }, n: null },
      },
    ],
    ['null prototype data', { id: 's', email: 'a@x.io', data: Object.assign(Object.create(null), { a: 1 }) }],
    ['__proto__ key in data', { id: 's', email: 'a@x.io', data: JSON.parse('{"__proto__": {"x": 1}, "a": 1}') }],
    ['NaN in data', { id: 's', email: 'a@x.io', data: { n: Number.NaN } }],
    ['Date in data', { id: 's', email: 'a@x.io', data: { d: new Date(0) } }],
    ['sparse array in data', { id: 's', email: 'a@x.io', data: { a: sparse } }],
    ['undefined in data', { id: 's', email: 'a@x.io', data: { u: undefined } }],
    ['symbol key in data', { id: 's', email: 'a@x.io', data: { [Symbol('k')]: 1, a: 1 } }],
    ['array as data', { id: 's', email: 'a@x.io', data: [1] }],
    ['migrating id', { id: { id: 'new', legacyId: 'old' }, email: 'a@x.io' }],
    ['unknown key', { id: 's', email: 'a@x.io', extra: 1 }],
    ['empty id', { id: '', email: 'a@x.io' }],
    ['id too long', { id: 'x'.repeat(LIMITS.id + 1), email: 'a@x.io' }],
    ['id with U+0000', { id: 'a\u0000', email: 'a@x.io' }],
    ['bad email', { id: 's', email: 'not an email' }],
    ['email too long', { id: 's', email: `${'a'.repeat(LIMITS.email)}@x.io` }],
    ['name null', { id: 's', email: 'a@x.io', name: null }],
    ['name a number', { id: 's', email: 'a@x.io', name: 5 }],
    ['name with a lone surrogate', { id: 's', email: 'a@x.io', name: 'a\ud800' }],
    ['emailVerified "true"', { id: 's', email: 'a@x.io', emailVerified: 'true' }],
    [
      'class instance',
      new (class {
        id = 's'
        email = 'a@x.io'
      })(),
    ],
  ]
  it.each(cases)('%s: the same result as the schema', (_name, input) => {
    const got = parseIdentity(input)
    const want = viaSchema(input)
    if (want === null) expect(got.isErr()).toBe(true)
    else expect(got._unsafeUnwrap()).toStrictEqual(want)
  })

  it('any input: the same result as the schema (property)', () => {
    const json = fc.jsonValue({ maxDepth: 3 })
    const identityLike = fc.record(
      {
        id: fc.oneof(fc.string({ maxLength: 8 }), fc.constant('sub')),
        email: fc.oneof(fc.constant('a@x.io'), fc.string({ maxLength: 8 })),
        emailVerified: fc.anything(),
        name: fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null)),
        data: fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), json), fc.anything()),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(fc.oneof(identityLike, fc.anything()), (input) => {
        const got = parseIdentity(input)
        const want = viaSchema(input)
        if (want === null) return got.isErr()
        expect(got._unsafeUnwrap()).toStrictEqual(want)
        return true
      }),
      { numRuns: runs(2000) },
    )
  })

  it('the identity does not share data objects with the input', () => {
    const input = { id: 's', email: 'a@x.io', data: { tokens: { a: 1 } } }
    const identity = parseIdentity(input)._unsafeUnwrap()
    input.data.tokens.a = 2
    expect(identity.data).toStrictEqual({ tokens: { a: 1 } })
  })
})

// jsonWithinLimits answers "fits" without encoding when the JSON text has at most maxBytes / 3
// code units; it must give what encoding and counting every time gives (the slow path below).
describe('jsonWithinLimits: the byte bound without encoding agrees with encoding', () => {
  function slow(value: unknown, maxDepth: number, maxBytes: number): boolean {
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
      text = JSON.stringify(value)
    } catch {
      return false
    }
    return new TextEncoder().encode(text).byteLength <= maxBytes
  }
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary-ascii' }))

  it('any JSON value, any bound around its length in code units and bytes', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: -2, max: 2 }),
        (value, mult, delta) => {
          const t = JSON.stringify(value)
          const bytes = new TextEncoder().encode(t).byteLength
          for (const maxBytes of [t.length * mult + delta, bytes + delta, t.length * 3 + delta, Math.ceil(bytes / 3) + delta]) {
            expect(jsonWithinLimits(value, 16, maxBytes)).toBe(slow(value, 16, maxBytes))
          }
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('strings at the exact bound: ASCII, 2-, 3- and 4-byte characters, a lone surrogate', () => {
    fc.assert(
      fc.property(fc.array(text, { maxLength: 6 }), (parts) => {
        const value = { parts }
        const bytes = new TextEncoder().encode(JSON.stringify(value)).byteLength
        for (const maxBytes of [bytes - 1, bytes, bytes + 1]) expect(jsonWithinLimits(value, 16, maxBytes)).toBe(slow(value, 16, maxBytes))
      }),
      { numRuns: 1000 },
    )
    // Every bound from 0 to past the size, for runs of 1-, 2-, 3- and 4-byte characters and lone
    // surrogates (3 bytes each as U+FFFD): a bound looser than 3 bytes per code unit fails here.
    for (const c of ['a', 'é', '€', '🚀', '\ud800', '\udc00']) {
      for (let n = 1; n <= 24; n++) {
        for (const value of [c.repeat(n), { [c]: c.repeat(n) }]) {
          const bytes = new TextEncoder().encode(JSON.stringify(value)).byteLength
          for (let maxBytes = 0; maxBytes <= bytes + 2; maxBytes++) {
            expect(jsonWithinLimits(value, 16, maxBytes), `${JSON.stringify(value)} ${maxBytes}`).toBe(slow(value, 16, maxBytes))
          }
        }
      }
    }
    // Two code units and 6 bytes of UTF-8 ("€" is 3 bytes): refused at 5 with quotes counted (8).
    expect(jsonWithinLimits('€€', 16, 7)).toBe(false)
    expect(jsonWithinLimits('€€', 16, 8)).toBe(true)
    // 🚀 is 2 code units, 4 bytes.
    expect(jsonWithinLimits('🚀', 16, 5)).toBe(false)
    expect(jsonWithinLimits('🚀', 16, 6)).toBe(true)
  })

  it('values JSON cannot write count as empty, values it cannot serialize are refused, as before', () => {
    for (const v of [undefined, () => 1, Symbol('s')]) {
      expect(jsonWithinLimits(v, 16, 0)).toBe(slow(v, 16, 0))
      expect(jsonWithinLimits(v, 16, 0)).toBe(true)
    }
    expect(jsonWithinLimits({ n: 1n }, 16, 100)).toBe(false)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(jsonWithinLimits(cyclic, 100, 1_000_000)).toBe(false)
  })
})
