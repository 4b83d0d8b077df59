// Runs the storage contract under node:test (not vitest) to prove the suite is runner-agnostic.
// Invoked by runners.test.ts: node --import tsx --test test/contract/runners/node-test.ts

import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, it } from 'node:test'
import { createMemoryStorage } from '../../../src/memory/index.js'
import { type ContractStorage, fixedClock, registerSuite, storageContract } from '../../../src/testing/index.js'

const clock = fixedClock()
registerSuite(
  storageContract({
    name: 'memory under node:test',
    clock,
    createStorage: (): ContractStorage => {
      const storage = createMemoryStorage({ clock, asyncContext: new AsyncLocalStorage() })
      return Object.assign(storage, { seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => storage.seed(data) })
    },
  }),
  { describe, it },
)
