import { describe, expect, it } from 'vitest'
import type { BeginSetupInput } from '../../src/engine/types.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import type { Provider } from '../../src/providers/types.js'
import { makeProvider } from '../../src/testing/fixtures.js'
import { defaultRows, expectCode, makeWorld, session, type WorldOptions } from './harness.js'

/** A provider that counts how often its setup step runs. */
function countingProvider(key: string): { provider: Provider; runs: () => number } {
  let runs = 0
  const base = dummyProvider({ key })
  const steps = base.setupSteps()
  const provider: Provider = {
    ...base,
    setupSteps: () =>
      steps.map((step) => ({
        id: step.id,
        handle: (ctx) => {
          runs++
          return step.handle(ctx)
        },
      })),
  }
  return { provider, runs: () => runs }
}

function world(options: WorldOptions = {}) {
  const counting = countingProvider('counted')
  const w = makeWorld({ ...options, providers: { counted: counting.provider, ...options.providers } })
  return { w, runs: counting.runs }
}

async function rejectsWithoutState(
  input: Partial<BeginSetupInput> & { session: BeginSetupInput['session'] },
  code: string,
  options: WorldOptions & { setup?: (w: ReturnType<typeof makeWorld>) => Promise<void> } = {},
) {
  const { w, runs } = world(options)
  await options.setup?.(w)
  const before = w.storage.snapshot()
  const result = await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'counted', ...input })
  const error = expectCode(result, code)
  // An organization that does not exist has no settings page: the root (docs/errors.md).
  expect(error.redirect).toBe(code === 'ORGANIZATION_NOT_FOUND' ? 'root' : 'authSettings')
  // Nothing stored: no pipeline state, no rows; the provider's step never ran.
  expect(w.storage.snapshot()).toEqual(before)
  expect(runs()).toBe(0)
  return error
}

describe('beginSetup (issue 4, deliverable 1; spec 2.7)', () => {
  it('an owner starts setup: a setup state bound to them, the first provider step rendered', async () => {
    const { w, runs } = world()
    const step = (await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'counted', session: session('admin') }))._unsafeUnwrap()
    expect(step.kind).toBe('render')
    expect(runs()).toBe(1)
    expect(w.storage.snapshot().pipelineStates).toHaveLength(1)
    // Nothing else written yet: setup writes only when it finishes.
    expect(w.storage.snapshot().providers).toEqual([])
    expect(w.storage.snapshot().audit).toEqual([])
  })

  it('a manager may start setup too (default authorize hook: owner or manager)', async () => {
    const { w } = world()
    expect((await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'counted', session: session('manager') })).isOk()).toBe(true)
  })

  it('anonymous -> NOT_AUTHENTICATED', async () => {
    await rejectsWithoutState({ session: session(null) }, 'NOT_AUTHENTICATED')
  })

  it('an inactive user -> NOT_AUTHENTICATED', async () => {
    await rejectsWithoutState({ session: session('inactive') }, 'NOT_AUTHENTICATED')
  })

  it('a plain member -> NOT_AUTHORIZED', async () => {
    await rejectsWithoutState({ session: session('plain') }, 'NOT_AUTHORIZED')
  })

  it('not a member of the org -> NOT_A_MEMBER', async () => {
    await rejectsWithoutState({ session: session('admin2') }, 'NOT_A_MEMBER')
  })

  it('the host authorize hook decides: a hook that refuses owners -> NOT_AUTHORIZED; one that allows members -> ok', async () => {
    await rejectsWithoutState({ session: session('admin') }, 'NOT_AUTHORIZED', {
      hooks: { authorize: ({ member }) => member.role === 'billing' },
    })
    const { w } = world({ hooks: { authorize: () => true } })
    expect((await w.sso.beginSetup({ organizationId: 'org-1', providerKey: 'counted', session: session('plain') })).isOk()).toBe(true)
  })

  it('a suspended owner -> USER_SUSPENDED', async () => {
    const rows = defaultRows()
    const users = rows.users.map((u) => (u.id === 'admin' ? { ...u, isSuspended: true } : u))
    await rejectsWithoutState({ session: session('admin') }, 'USER_SUSPENDED', { users })
  })

  it('only `true` from the authorize hook allows: a truthy non-boolean -> NOT_AUTHORIZED', async () => {
    await rejectsWithoutState({ session: session('admin') }, 'NOT_AUTHORIZED', {
      hooks: { authorize: (() => 'yes') as never },
    })
  })

  it('unknown provider key -> PROVIDER_UNKNOWN', async () => {
    await rejectsWithoutState({ session: session('admin'), providerKey: 'nope' }, 'PROVIDER_UNKNOWN')
  })

  it('provider feature disabled for the org (host hook) -> PROVIDER_DISABLED', async () => {
    await rejectsWithoutState({ session: session('admin') }, 'PROVIDER_DISABLED', {
      hooks: { isProviderEnabled: (org, key) => !(org.id === 'org-1' && key === 'counted') },
    })
  })

  it('an org that already has a provider -> PROVIDER_EXISTS before any step runs', async () => {
    await rejectsWithoutState({ session: session('admin') }, 'PROVIDER_EXISTS', {
      setup: async (w) => {
        await w.storage.transaction((tx) => tx.createAuthProvider(makeProvider({ id: 'ap-x', organizationId: 'org-1' })))
      },
    })
  })

  it('an unknown organization -> ORGANIZATION_NOT_FOUND', async () => {
    await rejectsWithoutState({ session: session('admin'), organizationId: 'org-missing' }, 'ORGANIZATION_NOT_FOUND')
  })
})
