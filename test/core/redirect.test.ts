import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { safeNext } from '../../src/core/redirect.js'
import { runs } from '../helpers/runs.js'

const BASE = 'https://app.example.com'

describe('safeNext', () => {
  it.each([
    ['/', '/'],
    ['/organizations/acme/', '/organizations/acme/'],
    ['/a?b=c#d', '/a?b=c#d'],
    ['/a/../b', '/b'],
    ['/search?q=a%20b', '/search?q=a%20b'],
    ['/caf%C3%A9', '/caf%C3%A9'],
  ])('accepts same-origin path %j', (input, expected) => {
    expect(safeNext(input, BASE)).toBe(expected)
  })

  it.each([
    ['//evil.com'],
    ['///evil.com'],
    ['/\\evil.com'],
    ['\\\\evil.com'],
    ['/\\/evil.com'],
    ['https://evil.com'],
    ['https:evil.com'],
    ['http://app.example.com.evil.com/'],
    ['javascript:alert(1)'],
    ['JaVaScRiPt:alert(1)'],
    ['/%2F/evil.com'],
    ['/%2f%2fevil.com'],
    ['%2F%2Fevil.com'],
    ['/%5Cevil.com'],
    ['/%255Cevil.com'],
    ['/%252F%252Fevil.com'],
    ['/%25252525252F'],
    ['/%'],
    ['/%E0%A4%A'],
    ['/\tevil'],
    ['/ /evil.com'],
    ['/\n/evil.com'],
    ['/%0A/evil.com'],
    ['/%09/evil.com'],
    ['/\u0000'],
    ['/\u2028'],
    ['/%E2%80%A8x'],
    ['/.//evil.com'],
    ['/a/..//evil.com'],
    [' /a'],
    ['a/b'],
    ['?next=/'],
    ['#/'],
    [''],
    [`/${'a'.repeat(2048)}`],
    ['data:text/html,<script>alert(1)</script>'],
  ])('rejects %j', (input) => {
    expect(safeNext(input, BASE)).toBeNull()
  })

  it.each([[null], [undefined], [42], [{}], [['/a']], [new URL('https://app.example.com/a')]])('rejects non-string %j', (input) => {
    expect(safeNext(input, BASE)).toBeNull()
  })

  it('rejects everything when the base URL is malformed or not http(s)', () => {
    expect(safeNext('/a', 'not a url')).toBeNull()
    expect(safeNext('/a', 'javascript:alert(1)')).toBeNull()
  })

  it('accepts a value at exactly the length limit and rejects one past it', () => {
    const atLimit = `/${'a'.repeat(2047)}`
    expect(safeNext(atLimit, BASE)).toBe(atLimit)
    expect(safeNext(`${atLimit}a`, BASE)).toBeNull()
  })

  it('property: a non-null result resolves to the base origin and starts with a single slash', () => {
    const pieces = fc.constantFrom(
      '/',
      '//',
      '\\',
      '/\\',
      '%2F',
      '%2f',
      '%5C',
      '%25',
      '%',
      '.',
      '..',
      ':',
      '@',
      '?',
      '#',
      'evil.com',
      'javascript:',
      'https:',
      'a',
      '\t',
      '\n',
      ' ',
      '\u0000',
      '%0A',
      '%09',
      '\u3000',
      'é',
      '%C3%A9',
    )
    const input = fc.oneof(
      fc.array(pieces, { maxLength: 8 }).map((xs) => xs.join('')),
      fc.string({ maxLength: 64 }),
      fc.string({ maxLength: 64 }).map((s) => `/${s}`),
    )
    fc.assert(
      fc.property(input, (next) => {
        const out = safeNext(next, BASE)
        if (out === null) return
        expect(out.startsWith('/')).toBe(true)
        expect(out.startsWith('//')).toBe(false)
        expect(out.includes('\\')).toBe(false)
        expect(new URL(out, BASE).origin).toBe(new URL(BASE).origin)
        // Stable: validating the output again gives the same value.
        expect(safeNext(out, BASE)).toBe(out)
      }),
      { numRuns: runs(2000) },
    )
  })
})

// Mutation testing (issue 12 item 4): the length limit on both sides of normalisation, the number
// of decoding rounds, and the base URL's scheme.
describe('safeNext: limits', () => {
  it('the limit applies to the value given, even when it normalises to something short', () => {
    const long = `/${'./'.repeat(1100)}a` // 2,202 characters that normalise to `/a`
    expect(long.length).toBeGreaterThan(2048)
    expect(safeNext(long, BASE)).toBeNull()
    expect(safeNext(`/${'./'.repeat(1000)}a`, BASE)).toBe('/a')
  })

  it('and to the normalised path, which percent-encoding can make longer', () => {
    const grows = `/${'é'.repeat(1000)}` // 1,001 characters; the path is `/` and 1,000 × `%C3%A9`
    expect(safeNext(grows, BASE)).toBeNull()
    expect(safeNext(`/${'é'.repeat(300)}`, BASE)).toBe(`/${'%C3%A9'.repeat(300)}`)
  })

  it('three rounds of percent-encoding are decoded and checked; a fourth is refused as hostile', () => {
    expect(safeNext('/%252541', BASE)).toBe('/%252541') // %2525 → %25 → % : three rounds to `/A`
    expect(safeNext('/%25252541', BASE)).toBeNull() // still changing after four rounds
  })

  it('the base URL must be http or https', () => {
    expect(safeNext('/a', 'http://localhost:3000')).toBe('/a')
    expect(safeNext('/a', 'https://app.example.com')).toBe('/a')
    expect(safeNext('/a', 'ftp://app.example.com')).toBeNull()
    expect(safeNext('/a', 'not a url')).toBeNull()
  })
})
