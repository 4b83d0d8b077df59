/**
 * Runner-agnostic contract suites for adapters.
 *
 * @module
 */
export { assert, assertConflict, assertEqual, ContractAssertionError, deepEqual } from './assert.js'
export {
  type ContractClock,
  type ContractStorage,
  type HostSeedData,
  type StorageContractOptions,
  storageContract,
} from './storage.js'
export { type ContractCase, type ContractSuite, registerSuite, type TestRunner } from './suite.js'
export { StorageContractViolation, validatingStorage } from './validating.js'
