/**
 * Runner-agnostic suites: plain data that {@link registerSuite} binds to vitest, `node:test`
 * or `Deno.test`.
 *
 * @module
 */

/**
 * One test case of a contract suite. `run` resolves when the case passes and rejects with the
 * reason otherwise. Cases are independent and may run in any order.
 * @group Testing
 */
export interface ContractCase {
  readonly name: string
  run(): Promise<void>
}

/**
 * A named list of cases, with no dependency on a test runner.
 * @group Testing
 */
export interface ContractSuite {
  readonly name: string
  readonly cases: readonly ContractCase[]
}

/**
 * The two functions of a test runner a suite needs. `describe` is optional: without it, case
 * names are prefixed with the suite name.
 *
 * @example
 * ```ts
 * // vitest
 * import { describe, it } from 'vitest'
 * import { registerSuite } from 'ssoflow/testing'
 * registerSuite(mySuite, { describe, it }) // mySuite = storageContract({ name, clock, createStorage })
 * ```
 * ```ts
 * // node:test
 * import { describe, it } from 'node:test'
 * import { registerSuite } from 'ssoflow/testing'
 * registerSuite(mySuite, { describe, it }) // mySuite = storageContract({ name, clock, createStorage })
 * ```
 * ```ts
 * // Deno
 * import { registerSuite } from 'ssoflow/testing'
 * registerSuite(mySuite, { it: (name, fn) => Deno.test(name, fn) })
 * ```
 * @group Testing
 */
export interface TestRunner {
  describe?: ((name: string, fn: () => void) => unknown) | undefined
  it: (name: string, fn: () => Promise<void>) => unknown
}

/**
 * Registers every case of `suite` with a test runner.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest'
 * import type { Clock } from 'ssoflow'
 * import { type ContractStorage, fixedClock, registerSuite, storageContract } from 'ssoflow/testing'
 * declare function createMyStorage(clock: Clock): Promise<ContractStorage> // your adapter, plus seedHostData for the suite
 *
 * // test/storage.contract.test.ts of your adapter: one vitest test per case of the suite.
 * const clock = fixedClock()
 * registerSuite(storageContract({ name: 'my storage', clock, createStorage: () => createMyStorage(clock) }), { describe, it })
 * ```
 * @group Testing
 */
export function registerSuite(suite: ContractSuite, runner: TestRunner): void {
  const register = (prefix: string): void => {
    for (const c of suite.cases) runner.it(`${prefix}${c.name}`, () => c.run())
  }
  if (runner.describe) runner.describe(suite.name, () => register(''))
  else register(`${suite.name} > `)
}
