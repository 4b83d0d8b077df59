// Every error code is produced by a public call (issue 18): runs each scenario of the table in
// test/errors/scenarios.ts and checks code, message, retryable, redirect, that nothing was
// written, and that docs/errors.md says the same. Add a row there when you add a code.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type AuthErrorCode, authError, ERROR_CODES, type ErrorRedirectHint, SsoflowError } from '../../src/index.js'
import { type DocRow, docRows, ERRORS_DOC_PATH } from './doc.js'
import { dataOf, harness } from './harness.js'
import { ERROR_TABLE, type RedirectRule, type Row, type Scenario } from './scenarios.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const TABLE = 'test/errors/scenarios.ts'
const codes = Object.keys(ERROR_CODES) as AuthErrorCode[]
const table = ERROR_TABLE as Readonly<Partial<Record<string, Row>>>
const doc = new Map(docRows().map((r) => [r.code, r]))

/** The redirect a rule of the table implies for a call of `flow`. */
function expectedRedirect(rule: RedirectRule, flow: Scenario['flow'], where: string): ErrorRedirectHint {
  const byFlow = (f: 'login' | 'setup'): ErrorRedirectHint => (f === 'login' ? 'orgLogin' : 'authSettings')
  switch (rule) {
    case 'root':
    case 'orgLogin':
    case 'authSettings':
      return rule
    case 'flow':
      if (flow === null) throw new Error(`${where}: redirect 'flow' needs a scenario with a flow (use 'flow, else root')`)
      return byFlow(flow)
    case 'flow, else root':
      return flow === null ? 'root' : byFlow(flow)
  }
}

function docRow(code: string): DocRow {
  const row = doc.get(code)
  if (!row) throw new Error(`${ERRORS_DOC_PATH} has no row for ${code}`)
  return row
}

function srcFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    return statSync(full).isDirectory() ? srcFiles(full) : full.endsWith('.ts') ? [full] : []
  })
}

describe(`the error-code table (${TABLE})`, () => {
  it('has a row for every code of ERROR_CODES, and no other rows', () => {
    const missing = codes.filter((c) => table[c] === undefined)
    expect(missing, `ERROR_CODES has ${missing.join(', ')} but ${TABLE} has no row for it: add one (see the top of that file)`).toEqual([])
    const extra = Object.keys(table).filter((c) => !(c in ERROR_CODES))
    expect(extra, `${TABLE} has rows for codes that are not in ERROR_CODES`).toEqual([])
  })

  it('every live row has at least one scenario', () => {
    for (const [code, row] of Object.entries(table)) {
      if (row && 'scenarios' in row) expect(Object.keys(row.scenarios).length, code).toBeGreaterThan(0)
      if (row && 'throws' in row) expect(Object.keys(row.throws).length, code).toBeGreaterThan(0)
    }
  })
})

const live = Object.entries(table).flatMap(([code, row]) =>
  row && 'scenarios' in row ? Object.entries(row.scenarios).map(([name, scenario]) => ({ code, row, name, scenario })) : [],
)

describe.each(codes)('%s', (code) => {
  const row = table[code]
  if (!row) return
  const documented = () => docRow(code)

  if ('deprecated' in row) {
    it(`is deprecated: docs/errors.md says so and src/ never produces it`, () => {
      expect(documented().meaning, `${ERRORS_DOC_PATH}:${documented().line}`).toMatch(/^\*\*Deprecated\*\*/)
      expect(documented().redirect).toBe('-')
      const allowed = new Set(['src/errors.ts', ...(row.onlyIn ?? [])])
      const producers = srcFiles(path.join(ROOT, 'src'))
        .map((f) => path.relative(ROOT, f).split(path.sep).join('/'))
        .filter((f) => !allowed.has(f) && readFileSync(path.join(ROOT, f), 'utf8').includes(`'${code}'`))
      expect(producers, `${code} is deprecated in ${TABLE} but these files use it`).toEqual([])
    })
    return
  }

  it(`docs/errors.md: Redirect column is "${row.redirect}" and Retryable matches`, () => {
    const d = documented()
    expect(d.redirect, `${ERRORS_DOC_PATH}:${d.line} Redirect column disagrees with ${TABLE}`).toBe(row.redirect)
    expect(d.retryable, `${ERRORS_DOC_PATH}:${d.line} Retryable column`).toBe(authError(code).retryable ? 'yes' : 'no')
    expect(d.meaning).not.toMatch(/^\*\*Deprecated\*\*/)
  })

  if ('throws' in row) {
    it.each(Object.entries(row.throws))('thrown: %s', (_name, call) => {
      const h = harness()
      let thrown: unknown = null
      try {
        call(h)
      } catch (e) {
        thrown = e
      }
      expect(thrown).toBeInstanceOf(SsoflowError)
      expect((thrown as SsoflowError).code).toBe(code)
      expect((thrown as SsoflowError).message.startsWith(ERROR_CODES[code])).toBe(true)
    })
    return
  }

  it.each(live.filter((l) => l.code === code).map((l) => [l.name, l.scenario] as const))('%s', async (name, scenario) => {
    const h = harness()
    const act = await scenario.arrange(h)
    const before = h.storage.snapshot()
    const mails = h.mailer.sent.length
    const signals = h.signals.emitted.length
    const result = await act()
    if (result.isOk()) throw new Error(`expected ${code}, got a success`)
    const error = result.error
    expect(error.code).toBe(code)
    expect(error.message).toBe(ERROR_CODES[code])
    expect(error.retryable).toBe(documented().retryable === 'yes')
    expect(error.redirect, 'redirect').toBe(expectedRedirect(row.redirect, scenario.flow, `${code} "${name}"`))
    expect(dataOf(h.storage.snapshot()), 'nothing but pipeline state is written').toEqual(dataOf(before))
    expect(h.mailer.sent.length, 'no mail').toBe(mails)
    expect(h.signals.emitted.length, 'no signal').toBe(signals)
  })
})
