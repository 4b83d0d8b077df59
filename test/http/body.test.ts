// parseUrlEncoded skips `+` replacement and percent-decoding for a field that holds neither `+`
// nor `%`. It must give what running both on every field gives (the slow path below), results
// and refusals alike, for any text.
import fc from 'fast-check'
import { err, ok, type Result } from 'neverthrow'
import { describe, expect, it } from 'vitest'
import { type AuthError, authError } from '../../src/errors.js'
import { MAX_KEY_LENGTH, MAX_PARAMS, MAX_VALUE_LENGTH, parseUrlEncoded } from '../../src/http/body.js'

const invalid = (reason: string): AuthError => authError('INPUT_INVALID', { details: { reason } })

function slow(text: string, maxValue = MAX_VALUE_LENGTH, maxParams = MAX_PARAMS): Result<Record<string, string>, AuthError> {
  const out: Record<string, string> = Object.create(null)
  if (text.length === 0) return ok(out)
  let count = 0
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue
    if (++count > maxParams) return err(invalid('too-many-parameters'))
    const eq = pair.indexOf('=')
    const rawKey = eq < 0 ? pair : pair.slice(0, eq)
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1)
    if (rawKey.length > MAX_KEY_LENGTH * 3 || rawValue.length > maxValue * 3) return err(invalid('parameter-too-long'))
    let key: string
    let value: string
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, ' '))
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '))
    } catch {
      return err(invalid('bad-percent-encoding'))
    }
    if (key.length === 0 || key.length > MAX_KEY_LENGTH || value.length > maxValue) return err(invalid('parameter-too-long'))
    if (Object.hasOwn(out, key)) return err(invalid('duplicate-parameter'))
    out[key] = value
  }
  return ok({ ...out })
}

const view = (r: Result<Record<string, string>, AuthError>) =>
  r.isOk() ? { ok: r.value } : { error: r.error.code, details: r.error.details }

const pieces = [
  'a',
  'b',
  'key',
  '=',
  '&',
  '+',
  '%',
  '%2B',
  '%20',
  '%25',
  '%3D',
  '%26',
  '%C3%A9',
  '%E2%82',
  '%zz',
  '%E2%82%AC',
  'é',
  '€',
  '\ud800',
  ' ',
  '%F0%9F%9A%80',
]

describe('parseUrlEncoded: fields without + or % are taken as they are, with the same result', () => {
  it('any text of form-like pieces, and any text at all', () => {
    const formLike = fc.array(fc.constantFrom(...pieces), { maxLength: 30 }).map((p) => p.join(''))
    fc.assert(
      fc.property(fc.oneof(formLike, fc.string(), fc.string({ unit: 'binary' })), (text) => {
        expect(view(parseUrlEncoded(text))).toEqual(view(slow(text)))
      }),
      { numRuns: 3000 },
    )
  })

  it('the limits hold on either path', () => {
    const long = 'x'.repeat(MAX_KEY_LENGTH + 1)
    for (const text of [
      `${long}=1`,
      `a=${'y'.repeat(MAX_VALUE_LENGTH + 1)}`,
      `a=${'%41'.repeat(MAX_VALUE_LENGTH + 1)}`,
      'a=1&a=1',
      'a=1&a=%31',
      'a+b=1&a%20b=2',
    ]) {
      expect(view(parseUrlEncoded(text))).toEqual(view(slow(text)))
      expect(parseUrlEncoded(text).isErr()).toBe(true)
    }
    const many = Array.from({ length: MAX_PARAMS + 1 }, (_, i) => `k${i}=v`).join('&')
    expect(view(parseUrlEncoded(many))).toEqual(view(slow(many)))
    expect(view(parseUrlEncoded('code=abc&state=x%2By+z&iss=http%3A%2F%2Fidp'))).toEqual({
      ok: { code: 'abc', state: 'x+y z', iss: 'http://idp' },
    })
  })
})
