import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, it } from 'vitest'
import { createMemoryStorage } from '../../src/memory/index.js'
import { type ContractStorage, fixedClock, registerSuite, storageContract, validatingStorage } from '../../src/testing/index.js'

function memoryContractStorage(options: Parameters<typeof createMemoryStorage>[0]): ContractStorage {
  // The async context lets calls on the storage from inside a transaction join it (contract).
  const storage = createMemoryStorage({ asyncContext: new AsyncLocalStorage(), ...options })
  return Object.assign(storage, { seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => storage.seed(data) })
}

const clock = fixedClock()
registerSuite(storageContract({ name: 'memory', clock, createStorage: () => memoryContractStorage({ clock }) }), { describe, it })

// The same suite with a macrotask after every read: interleavings at every read must still
// give serial results.
const yieldingClock = fixedClock()
registerSuite(
  storageContract({
    name: 'memory (yieldOnRead)',
    clock: yieldingClock,
    createStorage: () => memoryContractStorage({ clock: yieldingClock, yieldOnRead: true }),
  }),
  { describe, it },
)

// The same suite through validatingStorage: the checker reports no false positives on a
// healthy adapter (and seedHostData passes through the proxy).
const validatingClock = fixedClock()
registerSuite(
  storageContract({
    name: 'memory (validatingStorage)',
    clock: validatingClock,
    createStorage: () => validatingStorage(memoryContractStorage({ clock: validatingClock })),
  }),
  { describe, it },
)
