/**
 * `ssoflow/memory`: the embedded default storage, and the reference implementation of the
 * `StoragePort` contract.
 *
 * @module
 */
export {
  createMemoryStorage,
  type MemoryAsyncContext,
  type MemorySnapshot,
  type MemoryStorage,
  type MemoryStorageOptions,
  type SeedData,
} from './storage.js'
