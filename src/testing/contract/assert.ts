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
 *
 * @example
 * ```ts
 * import { assert, type ContractCase } from 'ssoflow/testing'
 *
 * // A case of your own, next to the contract suites: runs under any test runner.
 * const noProvider: ContractCase = {
 *   name: 'a fresh org has no provider',
 *   async run() {
 *     assert((await storage.getAuthProvider('org-fresh')) === null, 'no provider before setup')
 *   },
 * }
 * ```
 * @group Testing
 */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ContractAssertionError(message)
}

/**
 * Structural equality: plain objects by own enumerable keys (order-insensitive, `undefined`
 * values count as absent), arrays by position, `Date` by epoch milliseconds, primitives by
 * `Object.is` except that `0` and `-0` are equal.
 *
 * @example
 * ```ts
 * import { deepEqual } from 'ssoflow/testing'
 *
 * deepEqual({ at: new Date(0), tags: ['a'] }, { tags: ['a'], at: new Date(0) }) // true: key order and Date identity do not matter
 * deepEqual({ a: 1, b: undefined }, { a: 1 }) // true: undefined counts as absent
 * deepEqual([1, 2], [2, 1]) // false
 * ```
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
 *
 * @example
 * ```ts
 * import { assertEqual } from 'ssoflow/testing'
 *
 * const provider = await storage.getAuthProvider('org-acme')
 * assertEqual(provider?.providerKey, 'oidc', 'the org uses OIDC') // throws ContractAssertionError with expected and actual
 * ```
 * @group Testing
 */
export function assertEqual(actual: unknown, expected: unknown, message: string): void {
  if (!deepEqual(actual, expected)) {
    throw new ContractAssertionError(`${message}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`)
  }
}

/**
 * Awaits `promise` and fails unless it rejects with a storage conflict naming `constraint`.
 *
 * @example
 * ```ts
 * import { assertConflict, makeProvider } from 'ssoflow/testing'
 *
 * // Your adapter must refuse a second provider for one org, whatever its database.
 * const second = makeProvider({ id: 'ap-2', organizationId: 'org-acme', providerKey: 'oidc' })
 * await assertConflict(storage.transaction((tx) => tx.createAuthProvider(second)), 'auth_provider.organization', 'one provider per org')
 * ```
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
