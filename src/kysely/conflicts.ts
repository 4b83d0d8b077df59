/**
 * Maps driver unique-violation errors to {@link StorageConflictError} for every dialect.
 *
 * - PostgreSQL / PGlite: SQLSTATE `23505`, the violated index in `error.constraint`.
 * - SQLite (better-sqlite3): `SQLITE_CONSTRAINT_UNIQUE` / `SQLITE_CONSTRAINT_PRIMARYKEY`, the
 *   violated columns in the message (`UNIQUE constraint failed: t.a, t.b`).
 * - MySQL / MariaDB (mysql2): errno 1062 `ER_DUP_ENTRY`, the key name in the message
 *   (`Duplicate entry '...' for key 'name'`, MySQL 8 prefixes it with the table name).
 *
 * @module
 */
import { StorageConflictError, type UniqueConstraint } from '../ports/storage.js'
import type { ResolvedSchema } from './schema.js'

/** A unique constraint of one table, by its columns (physical names). */
export interface ConflictCandidate {
  readonly constraint: UniqueConstraint
  readonly columns: readonly string[]
  /** True when the constraint is the table's primary key (MySQL reports it as `PRIMARY`). */
  readonly primary?: boolean | undefined
}

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c) => b.includes(c))
}

/**
 * Returns the conflict for a unique violation raised while writing a table with the given
 * constraints, or null when `error` is not a unique violation (it is then rethrown as is).
 * An unrecognised unique index of the table falls back to the table's first constraint, so a
 * unique violation never escapes as a raw driver error.
 */
export function toConflict(schema: ResolvedSchema, error: unknown, candidates: readonly ConflictCandidate[]): StorageConflictError | null {
  if (candidates.length === 0 || error instanceof StorageConflictError) return null
  const fallback = candidates[0]
  if (!fallback) return null
  const message = String(field(error, 'message') ?? '')
  let found: UniqueConstraint | undefined
  switch (schema.dialect) {
    case 'postgres': {
      if (field(error, 'code') !== '23505') return null
      const name = field(error, 'constraint')
      if (typeof name === 'string') found = schema.constraintByIndex.get(name)
      break
    }
    case 'sqlite': {
      const code = field(error, 'code')
      if (code !== 'SQLITE_CONSTRAINT_UNIQUE' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return null
      const at = message.indexOf('failed: ')
      if (at >= 0) {
        const columns = message
          .slice(at + 'failed: '.length)
          .split(',')
          .map((c) => c.trim().split('.').pop() ?? '')
        found = candidates.find((c) => sameColumns(c.columns, columns))?.constraint
      }
      break
    }
    case 'mysql': {
      if (field(error, 'errno') !== 1062 && field(error, 'code') !== 'ER_DUP_ENTRY') return null
      const match = /for key '([^']+)'/.exec(message)
      const key = match?.[1]?.split('.').pop()
      if (key === 'PRIMARY') found = candidates.find((c) => c.primary)?.constraint
      else if (key) found = schema.constraintByIndex.get(key)
      break
    }
  }
  return new StorageConflictError(found ?? fallback.constraint, { cause: error })
}
