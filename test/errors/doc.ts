// Reads the "Codes" table of docs/errors.md: `| \`CODE\` | meaning | message | yes/no | redirect |`.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ERRORS_DOC_PATH = 'docs/errors.md'
export const ERRORS_DOC = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..', ERRORS_DOC_PATH), 'utf8')

export interface DocRow {
  readonly code: string
  readonly meaning: string
  readonly message: string
  readonly retryable: string
  readonly redirect: string
  /** 1-based line in docs/errors.md. */
  readonly line: number
}

/** Rows of the "Codes" table. */
export function docRows(markdown: string = ERRORS_DOC): DocRow[] {
  const out: DocRow[] = []
  markdown.split('\n').forEach((line, index) => {
    if (!line.startsWith('|')) return
    const cells = line.split('|').map((c) => c.trim())
    const m = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[1] ?? '')
    if (!m || cells.length !== 7) return
    out.push({
      code: m[1] ?? '',
      meaning: cells[2] ?? '',
      message: cells[3] ?? '',
      retryable: cells[4] ?? '',
      redirect: cells[5] ?? '',
      line: index + 1,
    })
  })
  return out
}
