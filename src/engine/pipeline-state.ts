import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../errors.js'
import type { StoredPipelineState } from '../ports/storage.js'
import {
  checkState,
  decodeState,
  encodeState,
  newStateId,
  type PipelineState,
  redirectFor,
  type StateExpectations,
  sessionBinding,
  signHandle,
  storeExpiry,
  verifyHandle,
} from '../state/codec.js'
import type { EngineContext } from './context.js'
import { storageFailure } from './transaction.js'

/** A decoded state with the row version it was read at (for compare-and-set). */
export interface OpenedState {
  readonly state: PipelineState
  readonly version: number
}

/** Fields given when a pipeline starts (`step` defaults to 0, `data` to `{}`). */
export type NewStateInit = Omit<
  PipelineState,
  'v' | 'id' | 'sessionBinding' | 'step' | 'phase' | 'identity' | 'verificationSentAt' | 'createdAt' | 'expiresAt' | 'data'
> & { readonly sessionId: string; readonly data?: PipelineState['data']; readonly step?: number | undefined }

/** Creates and stores a new pipeline state; returns the signed handle. */
export async function createState(
  ctx: EngineContext,
  init: NewStateInit,
): Promise<Result<{ handle: string; opened: OpenedState }, AuthError>> {
  const now = ctx.clock.now().getTime()
  const id = newStateId()
  const { sessionId, step, initiation, ...rest } = init
  const state: PipelineState = {
    v: 1,
    id,
    ...rest,
    ...(initiation !== undefined ? { initiation } : {}),
    data: init.data ?? {},
    sessionBinding: await sessionBinding(sessionId),
    step: step ?? 0,
    phase: 'open',
    identity: null,
    verificationSentAt: null,
    createdAt: now,
    expiresAt: now + ctx.policy.stateTtlSeconds * 1000,
  }
  try {
    await ctx.states.create({ id, version: 1, body: encodeState(state), expiresAt: storeExpiry(state) })
  } catch (cause) {
    return err(storageFailure(cause, redirectFor(state.flow)))
  }
  return ok({ handle: await signHandle(ctx.keyring, id), opened: { state, version: 1 } })
}

/**
 * Verifies the handle, loads and decodes the state and checks it against `expect` (the session
 * binding is always checked against `sessionId`).
 */
export async function openState(
  ctx: EngineContext,
  handle: unknown,
  sessionId: string,
  expect: Omit<StateExpectations, 'now' | 'sessionBinding'> = {},
): Promise<Result<OpenedState, AuthError>> {
  const id = await verifyHandle(ctx.keyring, handle)
  if (id.isErr()) return err(id.error)
  let stored: StoredPipelineState | null
  try {
    stored = await ctx.states.load(id.value)
  } catch (cause) {
    return err(storageFailure(cause))
  }
  if (!stored) return err(authError('STATE_NOT_FOUND'))
  const decoded = decodeState(stored.body)
  if (decoded.isErr()) return err(decoded.error)
  const checked = checkState(decoded.value, {
    ...expect,
    now: ctx.clock.now(),
    sessionBinding: await sessionBinding(sessionId),
  })
  if (checked.isErr()) return err(checked.error)
  return ok({ state: checked.value, version: stored.version })
}

/**
 * Writes `next` over `opened` by compare-and-set. Losing the race gives STATE_CONFLICT, so one
 * state yields exactly one transition (and one final decision).
 */
export async function transitionState(
  ctx: EngineContext,
  opened: OpenedState,
  next: PipelineState,
): Promise<Result<OpenedState, AuthError>> {
  const redirect = redirectFor(next.flow)
  const version = opened.version + 1
  let swapped: boolean
  try {
    swapped = await ctx.states.compareAndSet(next.id, opened.version, {
      id: next.id,
      version,
      body: encodeState(next),
      expiresAt: storeExpiry(next),
    })
  } catch (cause) {
    return err(storageFailure(cause, redirect))
  }
  if (!swapped) return err(authError('STATE_CONFLICT', { redirect }))
  return ok({ state: next, version })
}

/** Claims an open state for finishing (phase open -> finishing). */
export function claimState(
  ctx: EngineContext,
  opened: OpenedState,
  patch: Partial<PipelineState> = {},
): Promise<Result<OpenedState, AuthError>> {
  return transitionState(ctx, opened, { ...opened.state, ...patch, phase: 'finishing' })
}

/** Returns a claimed state to `open` (a confirmation page, or a retryable failure). */
export function releaseState(
  ctx: EngineContext,
  opened: OpenedState,
  patch: Partial<PipelineState> = {},
): Promise<Result<OpenedState, AuthError>> {
  return transitionState(ctx, opened, { ...opened.state, ...patch, phase: 'open' })
}

/** Marks a claimed state consumed (terminal). */
export function consumeState(ctx: EngineContext, opened: OpenedState): Promise<Result<OpenedState, AuthError>> {
  return transitionState(ctx, opened, { ...opened.state, phase: 'consumed' })
}
