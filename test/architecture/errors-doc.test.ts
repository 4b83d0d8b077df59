import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type AuthErrorCode, authError, ERROR_CODES } from '../../src/errors.js'

const DOC = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/errors.md'), 'utf8')

interface Row {
  readonly code: string
  readonly meaning: string
  readonly message: string
  readonly retryable: string
  readonly redirect: string
}

/** Rows of the "Codes" table: `| \`CODE\` | meaning | message | yes/no | redirect |`. */
function rows(markdown: string): Row[] {
  const out: Row[] = []
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) continue
    const cells = line.split('|').map((c) => c.trim())
    const m = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[1] ?? '')
    if (!m || cells.length !== 7) continue
    out.push({ code: m[1] ?? '', meaning: cells[2] ?? '', message: cells[3] ?? '', retryable: cells[4] ?? '', redirect: cells[5] ?? '' })
  }
  return out
}

describe('docs/errors.md', () => {
  const documented = rows(DOC)
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
    expect(row?.redirect).toMatch(/^(flow|flow, else root|root|orgLogin|authSettings)$/)
  })

  it('the row parser rejects a table that misses a code (self-check)', () => {
    const withoutFirst = DOC.split('\n')
      .filter((line) => !/^\|\s*`INPUT_INVALID`/.test(line))
      .join('\n')
    expect(rows(withoutFirst).map((r) => r.code)).not.toContain('INPUT_INVALID')
    expect(rows(withoutFirst)).toHaveLength(documented.length - 1)
  })
})
