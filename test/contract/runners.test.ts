/**
 * The contract kit has no runtime dependency on vitest: the same suite runs under node:test and
 * Deno.test, bound by registerSuite. Also unit tests of registerSuite itself.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type ContractSuite, registerSuite, storageContract } from '../../src/testing/index.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const caseCount = storageContract({
  name: 'count',
  clock: { now: () => new Date(0), advance: () => {} },
  createStorage: () => {
    throw new Error('unused')
  },
}).cases.length

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
      resolve({ code, output: `${stdout}\n${stderr}` })
    })
  })
}

describe('registerSuite', () => {
  const suite: ContractSuite = {
    name: 'demo',
    cases: [
      { name: 'one', run: async () => {} },
      {
        name: 'two',
        run: async () => {
          throw new Error('two failed')
        },
      },
    ],
  }

  it('registers every case inside describe(suite.name) when the runner has describe', async () => {
    const calls: string[] = []
    const fns: (() => Promise<void>)[] = []
    registerSuite(suite, {
      describe: (name, fn) => {
        calls.push(`describe:${name}`)
        fn()
      },
      it: (name, fn) => {
        calls.push(`it:${name}`)
        fns.push(fn)
      },
    })
    expect(calls).toEqual(['describe:demo', 'it:one', 'it:two'])
    await expect(fns[0]?.()).resolves.toBeUndefined()
    await expect(fns[1]?.()).rejects.toThrow('two failed')
  })

  it('prefixes case names with the suite name when the runner has no describe', () => {
    const names: string[] = []
    registerSuite(suite, { it: (name) => names.push(name) })
    expect(names).toEqual(['demo > one', 'demo > two'])
  })
})

describe('the storage contract under other runners', () => {
  it('passes every case under node:test', async () => {
    const { code, output } = await run(process.execPath, [
      '--import',
      'tsx',
      '--test',
      '--test-reporter=tap',
      'test/contract/runners/node-test.ts',
    ])
    expect(output).toContain(`# pass ${caseCount}`)
    expect(output).toContain('# fail 0')
    expect(code).toBe(0)
  })

  it('passes every case under Deno.test', async () => {
    const deno = path.join(root, 'node_modules/.bin/deno')
    const { code, output } = await run(deno, ['test', '--unstable-sloppy-imports', '--no-check', 'test/contract/runners/deno-test.ts'])
    expect(output).toMatch(new RegExp(`ok \\| ${caseCount} passed \\| 0 failed`))
    expect(code).toBe(0)
  })
})
