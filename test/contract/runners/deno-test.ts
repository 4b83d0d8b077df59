// Runs the storage contract under Deno.test (not vitest) to prove the suite is runner-agnostic.
// Invoked by runners.test.ts: deno test --unstable-sloppy-imports test/contract/runners/deno-test.ts
import { AsyncLocalStorage } from 'node:async_hooks'
import { createMemoryStorage } from '../../../src/memory/index.js'
import { type ContractStorage, fixedClock, registerSuite, storageContract } from '../../../src/testing/index.js'

declare const Deno: { test(name: string, fn: () => Promise<void>): void }

const clock = fixedClock()
registerSuite(
  storageContract({
    name: 'memory under Deno.test',
    clock,
    createStorage: (): ContractStorage => {
      const storage = createMemoryStorage({ clock, asyncContext: new AsyncLocalStorage() })
      return Object.assign(storage, { seedHostData: (data: Parameters<ContractStorage['seedHostData']>[0]) => storage.seed(data) })
    },
  }),
  { it: (name, fn) => Deno.test(name, fn) },
)
