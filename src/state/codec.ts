import { err, ok, type Result } from 'neverthrow'
import { z } from 'zod'
import { type AuthError, authError, type ErrorRedirectHint } from '../errors.js'
import { type Identity, type JsonObject, jsonObjectSchema } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import { fillRandom, fromBase64Url, type Keyring, sha256Hex, timingSafeEqual, toBase64Url } from './crypto.js'

/** Current codec version. Bump (and keep a migration) when the shape changes. */
export const STATE_VERSION = 1

/** Default pipeline TTL: one hour (Sentry's PIPELINE_STATE_TTL). */
export const DEFAULT_STATE_TTL_SECONDS = 3600

/**
 * How long a store keeps a state row after the state's own `expiresAt`, so that a late request
 * is told STATE_EXPIRED (and a replay STATE_CONSUMED) instead of STATE_NOT_FOUND. The codec
 * still rejects the state once `expiresAt` passed; the row is only a tombstone.
 */
export const STATE_TOMBSTONE_SECONDS = 3600

/** The expiry to give the stored row of `state`: its `expiresAt` plus the tombstone grace. */
export function storeExpiry(state: Pick<PipelineState, 'expiresAt'>): Date {
  return new Date(state.expiresAt + STATE_TOMBSTONE_SECONDS * 1000)
}

/**
 * Phase of a pipeline. `open` accepts steps and finishes; `finishing` is held by exactly one
 * finisher (compare-and-set); `consumed` is terminal (kept as a tombstone until expiry so a
 * replay is told apart from a forged handle).
 * @group Pipeline
 */
export type PipelinePhase = 'open' | 'finishing' | 'consumed'

/** A pipeline flow. @group Pipeline */
export type Flow = 'login' | 'setup'

/**
 * Server-side pipeline state (decoded).
 * @group Pipeline
 */
export interface PipelineState {
  readonly v: 1
  readonly id: string
  readonly flow: Flow
  readonly organizationId: string
  /** The auth provider row id (login); null during setup, which has no row yet. */
  readonly authProviderId: string | null
  readonly providerKey: string
  /** The session user who started the pipeline, or null when anonymous. */
  readonly initiatorUserId: string | null
  /** SHA-256 of the host session id the pipeline is bound to. */
  readonly sessionBinding: string
  /** Hash of the provider's ordered step ids. */
  readonly fingerprint: string
  /** Index of the current step; equal to the number of steps once all ran. */
  readonly step: number
  readonly phase: PipelinePhase
  /** Provider-owned bag (Sentry's `bind_state`). */
  readonly data: JsonObject
  /** The verified identity, stored once the IdP answered (awaiting the user's choice). */
  readonly identity: Identity | null
  /** Validated same-origin path to return to after login, or null. */
  readonly next: string | null
  readonly referrer: string | null
  /** When the account-verification mail was last sent for this pipeline (ms), or null. */
  readonly verificationSentAt: number | null
  /**
   * `unsolicited` when an IdP-initiated response started the pipeline (`beginUnsolicitedLogin`):
   * it may only sign in an already linked identity (threat 39). Absent otherwise.
   */
  readonly initiation?: 'unsolicited' | undefined
  readonly createdAt: number
  readonly expiresAt: number
}

const idStr = z.string().min(1).max(LIMITS.id)

const identitySchema = z.strictObject({
  id: idStr,
  legacyId: idStr.nullable(),
  email: z.string().max(LIMITS.email),
  emailNormalized: z.string().max(LIMITS.email * 4),
  emailVerified: z.boolean(),
  name: z.string().max(LIMITS.name * 2),
  data: jsonObjectSchema,
})

const stateV1 = z.strictObject({
  v: z.literal(1),
  id: idStr,
  flow: z.enum(['login', 'setup']),
  organizationId: idStr,
  authProviderId: idStr.nullable(),
  providerKey: idStr,
  initiatorUserId: idStr.nullable(),
  sessionBinding: z.string().regex(/^[0-9a-f]{64}$/),
  fingerprint: z.string().min(1).max(128),
  step: z.number().int().min(0).max(64),
  phase: z.enum(['open', 'finishing', 'consumed']),
  data: jsonObjectSchema,
  identity: identitySchema.nullable(),
  next: z.string().max(LIMITS.next).nullable(),
  referrer: z.string().max(LIMITS.id).nullable(),
  verificationSentAt: z.number().int().nullable(),
  initiation: z.literal('unsolicited').optional(),
  createdAt: z.number().int(),
  expiresAt: z.number().int(),
})

/** Serializes a state for the store. */
export function encodeState(state: PipelineState): string {
  return JSON.stringify(state)
}

/**
 * Parses a stored body. Rejects unparseable JSON and shapes (STATE_INVALID) and unknown versions
 * (STATE_VERSION). Never best-effort parses a future version.
 */
export function decodeState(body: string, redirect: ErrorRedirectHint = 'root'): Result<PipelineState, AuthError> {
  let raw: unknown
  try {
    raw = JSON.parse(body)
  } catch (cause) {
    return err(authError('STATE_INVALID', { redirect, cause, details: { reason: 'corrupt' } }))
  }
  const version = typeof raw === 'object' && raw !== null ? (raw as { v?: unknown }).v : undefined
  if (version !== STATE_VERSION) {
    return err(authError('STATE_VERSION', { redirect, details: { version: typeof version === 'number' ? version : null } }))
  }
  const parsed = stateV1.safeParse(raw)
  if (!parsed.success) {
    return err(authError('STATE_INVALID', { redirect, cause: parsed.error, details: { reason: 'shape' } }))
  }
  return ok(parsed.data as PipelineState)
}

/**
 * What a caller expects of a state. Every given field must match; each mismatch has its own
 * code.
 * @group Pipeline
 */
export interface StateExpectations {
  readonly now: Date
  readonly flow?: Flow | undefined
  readonly organizationId?: string | undefined
  /** Expected auth provider row id (login) or null (setup). */
  readonly authProviderId?: string | null | undefined
  readonly providerKey?: string | undefined
  readonly fingerprint?: string | undefined
  /** SHA-256 of the current host session id (see {@link sessionBinding}). */
  readonly sessionBinding?: string | undefined
  /** Accept only these phases (default: `open`). */
  readonly phases?: readonly PipelinePhase[] | undefined
}

/** The redirect hint for errors of a state's flow. */
export function redirectFor(flow: Flow | null): ErrorRedirectHint {
  return flow === 'login' ? 'orgLogin' : flow === 'setup' ? 'authSettings' : 'root'
}

/**
 * Checks a decoded state: expiry, phase, flow, org, provider, fingerprint, session binding.
 */
export function checkState(state: PipelineState, expect: StateExpectations): Result<PipelineState, AuthError> {
  const redirect = redirectFor(state.flow)
  if (state.expiresAt <= expect.now.getTime()) return err(authError('STATE_EXPIRED', { redirect }))
  const phases = expect.phases ?? ['open']
  if (!phases.includes(state.phase)) {
    return err(authError(state.phase === 'consumed' ? 'STATE_CONSUMED' : 'STATE_CONFLICT', { redirect }))
  }
  if (expect.flow !== undefined && state.flow !== expect.flow) return err(authError('FLOW_MISMATCH', { redirect }))
  if (expect.organizationId !== undefined && state.organizationId !== expect.organizationId) {
    return err(authError('ORG_MISMATCH', { redirect }))
  }
  if (
    (expect.authProviderId !== undefined && state.authProviderId !== expect.authProviderId) ||
    (expect.providerKey !== undefined && state.providerKey !== expect.providerKey)
  ) {
    return err(authError('PROVIDER_MISMATCH', { redirect }))
  }
  if (expect.fingerprint !== undefined && !timingSafeEqual(state.fingerprint, expect.fingerprint)) {
    return err(authError('STATE_FINGERPRINT', { redirect }))
  }
  if (expect.sessionBinding !== undefined && !timingSafeEqual(state.sessionBinding, expect.sessionBinding)) {
    return err(authError('STATE_SESSION_MISMATCH', { redirect }))
  }
  return ok(state)
}

/** SHA-256 hex of the host session id, stored instead of the id itself. */
export function sessionBinding(sessionId: string): string {
  return sha256Hex(`ssoflow:session:${sessionId}`)
}

/** Fingerprint of a provider's step list (hash of the ordered step ids). */
export function stepFingerprint(providerKey: string, flow: Flow, stepIds: readonly string[]): string {
  return sha256Hex(`${providerKey}|${flow}|${stepIds.join('\u0000')}`).slice(0, 32)
}

// ---------------------------------------------------------------------------------------------
// Handles

const HANDLE_ID_BYTES = 24 // 192 bits of randomness

/** Creates a new random state id (192 bits, base64url). */
export function newStateId(): string {
  return toBase64Url(fillRandom(new Uint8Array(HANDLE_ID_BYTES)))
}

/**
 * Signs a state id into the handle the host keeps in a cookie: `<id>.<hmac>`.
 */
export function signHandle(keyring: Keyring, id: string): string {
  return `${id}.${keyring.sign('pipeline-handle', id)}`
}

/**
 * Verifies a handle's shape and signature (constant time) and returns the state id.
 * Rejects: wrong type or size, truncated, malformed, or forged → STATE_INVALID.
 */
export function verifyHandle(keyring: Keyring, handle: unknown): Result<string, AuthError> {
  if (typeof handle !== 'string' || handle.length === 0 || handle.length > 256) {
    return err(authError('STATE_INVALID', { details: { reason: 'handle-shape' } }))
  }
  const dot = handle.indexOf('.')
  if (dot <= 0 || dot !== handle.lastIndexOf('.')) {
    return err(authError('STATE_INVALID', { details: { reason: 'handle-shape' } }))
  }
  const id = handle.slice(0, dot)
  const sig = handle.slice(dot + 1)
  const idBytes = fromBase64Url(id)
  if (!idBytes || idBytes.byteLength !== HANDLE_ID_BYTES) {
    return err(authError('STATE_INVALID', { details: { reason: 'handle-shape' } }))
  }
  if (!keyring.verify('pipeline-handle', id, sig)) {
    return err(authError('STATE_INVALID', { details: { reason: 'handle-signature' } }))
  }
  return ok(id)
}
