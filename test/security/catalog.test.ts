// The threat catalog's coverage table (docs/security.md) against the tests: every entry of
// spec/threats.md has a row, and every test file a row names exists and names the entry by its
// number ("threat N", or N in a "threats N, M" / "threats N-M" list).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '../..')
const ENTRIES = 63

/** Entry numbers a text names: "threat 7", "threats 28, 7", "threats 10/52", "threats 46-51", "threats 18-21, 27". */
function namedEntries(text: string): Set<number> {
  const out = new Set<number>()
  for (const m of text.matchAll(/\bthreats? ((?:\d+(?:\s*(?:-|,|\/|and)\s*(?=\d))?)+)/gi)) {
    for (const part of (m[1] ?? '').split(/,|\/|and/)) {
      const [a, b] = part.trim().split('-').map(Number)
      if (a === undefined || Number.isNaN(a)) continue
      for (let n = a; n <= (b ?? a); n++) out.add(n)
    }
  }
  return out
}

function table(): Map<number, string[]> {
  const doc = readFileSync(join(ROOT, 'docs/security.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## Threat catalog coverage'))
  const rows = new Map<number, string[]>()
  for (const line of section.split('\n')) {
    const m = /^\| (\d+) \|.*\|(.*)\|$/.exec(line)
    if (!m) continue
    rows.set(
      Number(m[1]),
      [...(m[2] ?? '').matchAll(/`(test\/[^`]+)`/g)].map((x) => x[1] ?? ''),
    )
  }
  return rows
}

describe('the threat catalog is covered', () => {
  it('namedEntries reads the ways tests name entries', () => {
    expect([...namedEntries("it('threat 7: x')")]).toEqual([7])
    expect([...namedEntries('threats 28, 7: y')].sort((a, b) => a - b)).toEqual([7, 28])
    expect([...namedEntries('threats 10/52 on pg')].sort((a, b) => a - b)).toEqual([10, 52])
    expect([...namedEntries('threats 22-25: z')]).toEqual([22, 23, 24, 25])
    expect([...namedEntries('threat 2026')]).toEqual([2026])
  })

  it('every entry of spec/threats.md has a row with at least one test file', () => {
    const rows = table()
    const missing = Array.from({ length: ENTRIES }, (_, i) => i + 1).filter((n) => (rows.get(n) ?? []).length === 0)
    expect(missing).toEqual([])
    expect([...rows.keys()].filter((n) => n < 1 || n > ENTRIES)).toEqual([])
  })

  it('every file a row names exists and names the entry', () => {
    const wrong: string[] = []
    for (const [n, files] of table()) {
      for (const file of files) {
        const path = join(ROOT, file)
        if (!existsSync(path)) wrong.push(`${n}: ${file} does not exist`)
        else if (!namedEntries(readFileSync(path, 'utf8')).has(n)) wrong.push(`${n}: ${file} never names threat ${n}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('test/security has one file per section of the catalog', () => {
    // Section 5 (SAML) lives in test/saml/, with the signing IdP its tests need.
    const sections = ['s01', 's02', 's03', 's04', 's06', 's07', 's08', 's09', 's10', 's10b']
    for (const s of sections) {
      const rows = [...table().values()].flat().filter((f) => f.startsWith(`test/security/${s}-`))
      expect(rows.length, s).toBeGreaterThan(0)
    }
  })
})
