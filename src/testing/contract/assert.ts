/**
 * A tiny assertion library for the contract suites, so they run under any test runner (vitest,
 * `node:test`, `Deno.test`) without importing one. Every failure throws
 * {@link ContractAssertionError}.
 *
 * @module
 */
import { isStorageConflict, type UniqueConstraint } from '../../ports/storage.js'

/**
 * Thrown by a failing contract assertion.
 * @group Testing
 */
export class ContractAssertionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ContractAssertionError'
  }
}

/** Renders a value for a failure message (Dates as ISO strings, stable enough to diff). */
export function show(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * Fails with `message` unless `condition` holds.
 * @group Testing
 */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ContractAssertionError(message)
}

/**
 * Structural equality: plain objects by own enumerable keys (order-insensitive, `undefined`
 * values count as absent), arrays by position, `Date` by epoch milliseconds, primitives by
 * `Object.is` except that `0` and `-0` are equal.
 * @group Testing
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime()
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((x, i) => deepEqual(x, b[i]))
  }
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
    if (ka.length !== kb.length) return false
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return Object.is(a, b)
}

/**
 * Fails unless `actual` and `expected` are {@link deepEqual}.
 * @group Testing
 */
export function assertEqual(actual: unknown, expected: unknown, message: string): void {
  if (!deepEqual(actual, expected)) {
    throw new ContractAssertionError(`${message}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`)
  }
}

/**
 * Awaits `promise` and fails unless it rejects with a storage conflict naming `constraint`.
 * @group Testing
 */
export async function assertConflict(promise: Promise<unknown>, constraint: UniqueConstraint, message: string): Promise<void> {
  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown }
  try {
    outcome = { ok: true, value: await promise }
  } catch (error) {
    outcome = { ok: false, error }
  }
  if (outcome.ok) throw new ContractAssertionError(`${message}: expected StorageConflictError(${constraint}), but it resolved`)
  const { error } = outcome
  if (!isStorageConflict(error)) {
    throw new ContractAssertionError(`${message}: expected StorageConflictError(${constraint}), got ${String(error)}`)
  }
  assert(error.constraint === constraint, `${message}: expected constraint ${constraint}, got ${error.constraint}`)
}

/**
 * Awaits `promise` and returns what it rejected with; fails if it resolved.
 * @group Testing
 */
export async function rejection(promise: Promise<unknown>, message: string): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new ContractAssertionError(`${message}: expected a rejection, but it resolved`)
}
