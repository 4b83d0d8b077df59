/**
 * Fault injection for the security tests: a storage wrapper that records every port call the
 * engine makes (reads, writes, transactions, pipeline states, one-time tokens, inside and outside
 * transactions) and can make any one of them fail, before the call reaches the store (it never
 * happens) or after it returned (it happened: inside a transaction it must be rolled back).
 */
import type { OneTimeTokenStore, PipelineStateStore, StoragePort, StorageTx } from '../../src/ports/storage.js'

/** One port call, in the order the engine made them. */
export interface PortCall {
  /** 1-based position among all calls since the last reset. */
  readonly index: number
  /** e.g. `getLinkedIdentity`, `transaction`, `tx.createUser`, `tx.oneTimeTokens.consume`, `pipelineStates.compareAndSet`. */
  readonly name: string
  readonly args: readonly unknown[]
}

/** Where a call fails: `before` (it never reaches the store) or `after` (it happened, then the caller sees an error). */
export type FaultMode = 'before' | 'after'

/** Decides, for each call, whether it fails. */
export type FaultPlan = (call: PortCall) => FaultMode | null

/** What an injected failure throws (a driver error: neither a conflict nor an AuthError). */
export class InjectedFault extends Error {
  readonly call: PortCall
  readonly mode: FaultMode
  constructor(call: PortCall, mode: FaultMode) {
    super(`injected fault ${mode} call #${call.index} ${call.name}`)
    this.name = 'InjectedFault'
    this.call = call
    this.mode = mode
  }
}

export interface Faulty {
  /** Every call since the last reset. */
  readonly calls: PortCall[]
  /** Faults injected since the last reset. */
  readonly injected: InjectedFault[]
  /** The plan for the next calls (null: no fault). */
  plan: FaultPlan | null
  /** Clears the call log and the injected list (the plan stays). */
  reset(): void
}

/** Fails the k-th call (1-based) counted from the last reset. */
export const failAt =
  (k: number, mode: FaultMode): FaultPlan =>
  (call) =>
    call.index === k ? mode : null

/** Fails the first call whose name matches (and whose args pass `when`). */
export function failFirst(name: string | RegExp, mode: FaultMode, when: (args: readonly unknown[]) => boolean = () => true): FaultPlan {
  let done = false
  return (call) => {
    if (done) return null
    const matches = typeof name === 'string' ? call.name === name : name.test(call.name)
    if (!matches || !when(call.args)) return null
    done = true
    return mode
  }
}

/** Pipeline-state writes whose effect is not known to the caller when they fail after the fact. */
export const isStateWrite = (name: string): boolean => /^pipelineStates\.(create|compareAndSet|delete)$/.test(name)

/**
 * Wraps `storage`: the engine's every port call is recorded and passes through `plan`.
 * Other properties (`seed`, `snapshot`, ...) pass through unrecorded.
 */
export function faultyStorage<S extends StoragePort>(storage: S): S & { readonly faults: Faulty } {
  const state: Faulty = {
    calls: [],
    injected: [],
    plan: null,
    reset() {
      state.calls.length = 0
      state.injected.length = 0
    },
  }
  let counter = 0
  const call = async <T>(name: string, args: readonly unknown[], run: () => Promise<T>): Promise<T> => {
    counter = state.calls.length + 1
    const c: PortCall = { index: counter, name, args }
    state.calls.push(c)
    const mode = state.plan?.(c) ?? null
    if (mode === 'before') {
      const e = new InjectedFault(c, mode)
      state.injected.push(e)
      throw e
    }
    const value = await run()
    if (mode === 'after') {
      const e = new InjectedFault(c, mode)
      state.injected.push(e)
      throw e
    }
    return value
  }
  const wrapMethods = <T extends object>(target: T, prefix: string, skip: ReadonlySet<string> = new Set()): T => {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(target)) {
      const value = (target as Record<string, unknown>)[key]
      if (typeof value === 'function' && !skip.has(key)) {
        out[key] = (...args: unknown[]) =>
          call(`${prefix}${key}`, args, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args))
      } else out[key] = value
    }
    return out as T
  }
  const wrapTx = (tx: StorageTx): StorageTx => {
    const wrapped = wrapMethods(tx, 'tx.')
    const tokens = tx.oneTimeTokens
    return tokens ? { ...wrapped, oneTimeTokens: wrapMethods(tokens, 'tx.oneTimeTokens.') } : wrapped
  }
  const transaction: StoragePort['transaction'] = (fn) => call('transaction', [], () => storage.transaction((tx) => fn(wrapTx(tx))))
  const pipelineStates: PipelineStateStore = wrapMethods(storage.pipelineStates, 'pipelineStates.')
  const oneTimeTokens: OneTimeTokenStore = wrapMethods(storage.oneTimeTokens, 'oneTimeTokens.')
  const readers = new Set([
    'getOrganization',
    'getAuthProvider',
    'getAuthProviderById',
    'getIdentity',
    'getIdentityById',
    'getIdentityForUser',
    'listIdentitiesForUser',
    'getLinkedIdentity',
    'getUser',
    'findUsersByEmail',
    'getMember',
    'getMemberById',
    'getInviteByEmail',
    'listMembers',
    'listIdentities',
  ])
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'faults') return state
      if (prop === 'transaction') return transaction
      if (prop === 'pipelineStates') return pipelineStates
      if (prop === 'oneTimeTokens') return oneTimeTokens
      const value: unknown = Reflect.get(target, prop, receiver)
      if (typeof value === 'function' && typeof prop === 'string' && readers.has(prop)) {
        return (...args: unknown[]) => call(prop, args, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args))
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as S & { readonly faults: Faulty }
}
