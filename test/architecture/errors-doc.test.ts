import { describe, expect, it } from 'vitest'
import { type AuthErrorCode, authError, ERROR_CODES } from '../../src/errors.js'
import { docRows, ERRORS_DOC } from '../errors/doc.js'

// The redirect column and the deprecations are checked against the error-code table by
// test/errors/codes.test.ts; this file checks the list, the messages and the retry flags.
describe('docs/errors.md', () => {
  const documented = docRows()
  const codes = Object.keys(ERROR_CODES) as AuthErrorCode[]

  it('lists every code of ERROR_CODES exactly once and nothing else', () => {
    expect(documented.map((r) => r.code).sort()).toEqual([...codes].sort())
    expect(new Set(documented.map((r) => r.code)).size).toBe(documented.length)
  })

  it.each(codes)('%s: message, retry flag and a meaning match src/errors.ts', (code) => {
    const row = documented.find((r) => r.code === code)
    expect(row).toBeDefined()
    expect(row?.message).toBe(ERROR_CODES[code])
    expect(row?.retryable).toBe(authError(code).retryable ? 'yes' : 'no')
    expect(row?.meaning.length).toBeGreaterThan(20)
    expect(row?.redirect).toMatch(/^(flow|flow, else root|root|orgLogin|authSettings|thrown|-)$/)
  })

  it('the row parser rejects a table that misses a code (self-check)', () => {
    const withoutFirst = ERRORS_DOC.split('\n')
      .filter((line) => !/^\|\s*`INPUT_INVALID`/.test(line))
      .join('\n')
    expect(docRows(withoutFirst).map((r) => r.code)).not.toContain('INPUT_INVALID')
    expect(docRows(withoutFirst)).toHaveLength(documented.length - 1)
  })
})
