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

/**
 * States this engine encoded recently, by body: a body read back unchanged (the same string) was
 * produced by this engine, so it is not parsed and validated again (issue 10: no re-validation
 * of data the engine produced itself). Anything else, e.g. a body written by another instance or
 * changed in the store, goes through {@link decodeState}. Bounded; oldest first out.
 */
const encoded = new WeakMap<EngineContext, Map<string, PipelineState>>()
const ENCODED_KEPT = 512

export function encodeAndRemember(ctx: EngineContext, state: PipelineState): string {
  const body = encodeState(state)
  let known = encoded.get(ctx)
  if (!known) {
    known = new Map()
    encoded.set(ctx, known)
  }
  known.set(body, state)
  if (known.size > ENCODED_KEPT) known.delete(known.keys().next().value as string)
  return body
}

function decodeKnown(ctx: EngineContext, body: string): Result<PipelineState, AuthError> {
  const known = encoded.get(ctx)?.get(body)
  return known ? ok(known) : decodeState(body)
}

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

/** Builds a new pipeline state (not stored yet) and its signed handle. */
export async function buildState(ctx: EngineContext, init: NewStateInit): Promise<{ handle: string; state: PipelineState }> {
  const now = ctx.clock.now().getTime()
  const id = newStateId()
  const { sessionId, step, initiation, ...rest } = init
  const binding = sessionBinding(sessionId)
  const handle = signHandle(ctx.keyring, id)
  const state: PipelineState = {
    v: 1,
    id,
    ...rest,
    ...(initiation !== undefined ? { initiation } : {}),
    data: init.data ?? {},
    sessionBinding: binding,
    step: step ?? 0,
    phase: 'open',
    identity: null,
    verificationSentAt: null,
    createdAt: now,
    expiresAt: now + ctx.policy.stateTtlSeconds * 1000,
  }
  return { handle, state }
}

/** Stores a state built by {@link buildState} (version 1). */
export async function storeNewState(ctx: EngineContext, state: PipelineState): Promise<Result<OpenedState, AuthError>> {
  try {
    await ctx.states.create({ id: state.id, version: 1, body: encodeAndRemember(ctx, state), expiresAt: storeExpiry(state) })
  } catch (cause) {
    return err(storageFailure(cause, redirectFor(state.flow)))
  }
  return ok({ state, version: 1 })
}

/** Creates and stores a new pipeline state; returns the signed handle. */
export async function createState(
  ctx: EngineContext,
  init: NewStateInit,
): Promise<Result<{ handle: string; opened: OpenedState }, AuthError>> {
  const { handle, state } = await buildState(ctx, init)
  const stored = await storeNewState(ctx, state)
  if (stored.isErr()) return err(stored.error)
  return ok({ handle, opened: stored.value })
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
  const binding = sessionBinding(sessionId)
  const id = verifyHandle(ctx.keyring, handle)
  if (id.isErr()) return err(id.error)
  let stored: StoredPipelineState | null
  try {
    stored = await ctx.states.load(id.value)
  } catch (cause) {
    return err(storageFailure(cause))
  }
  if (!stored) return err(authError('STATE_NOT_FOUND'))
  const decoded = decodeKnown(ctx, stored.body)
  if (decoded.isErr()) return err(decoded.error)
  const checked = checkState(decoded.value, {
    ...expect,
    now: ctx.clock.now(),
    sessionBinding: binding,
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
  const body = encodeAndRemember(ctx, next)
  let swapped: boolean
  try {
    swapped = await ctx.states.compareAndSet(next.id, opened.version, { id: next.id, version, body, expiresAt: storeExpiry(next) })
  } catch (cause) {
    // The write may have happened with only its answer lost (a connection reset after the
    // commit). Read the state back and accept exactly our own write: otherwise the state would
    // stay claimed by nobody and every retry would get STATE_CONFLICT until it expires.
    if (await wroteIt(ctx, next.id, version, body)) return ok({ state: next, version })
    return err(storageFailure(cause, redirect))
  }
  if (!swapped) return err(authError('STATE_CONFLICT', { redirect }))
  return ok({ state: next, version })
}

/** True when the stored state is exactly `version` with `body` (read back after a failed write). */
async function wroteIt(ctx: EngineContext, id: string, version: number, body: string): Promise<boolean> {
  try {
    const stored = await ctx.states.load(id)
    return stored !== null && stored.version === version && stored.body === body
  } catch {
    return false
  }
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
