/**
 * The login pipeline shell (issue 3): verify + open the state, validate the identity, claim the
 * state, gather facts, decide (pure), apply in one transaction, then mail and signals.
 * @module
 */
import { err, ok, type Result, ResultAsync } from 'neverthrow'
import { z } from 'zod'
import { defaultMergeIdentityData, type MergeIdentityData } from '../core/attach.js'
import { decideLogin } from '../core/login/decide.js'
import type { LinkedFacts, LoginChoice, LoginFacts, LoginPlan, VerificationBinding, VerificationIssue } from '../core/login/facts.js'
import { resolveTarget } from '../core/login/target.js'
import { mayCreateAtOnce } from '../core/login/unknown.js'
import type { VerificationSends } from '../core/login/verification-limit.js'
import type { SessionInviteFacts } from '../core/membership.js'
import { safeNext } from '../core/redirect.js'
import { type AuthError, authError } from '../errors.js'
import { normalizeEmail } from '../model/email.js'
import { type Identity, parseIdentity } from '../model/identity.js'
import { LIMITS } from '../model/limits.js'
import type { AuthIdentity, AuthProvider, Member, Organization, User } from '../model/records.js'
import { judgeEmail, type TrustJudgement } from '../model/trust.js'
import type { AuthIdentityPatch, LinkedIdentity, OneTimeTokenStore, StorageReader, StorageTx, UserEmailMatch } from '../ports/storage.js'
import type { Provider } from '../providers/types.js'
import { type PipelineState, storeExpiry } from '../state/codec.js'
import { fillRandom, randomToken, sha256Hex, timingSafeEqual, toHex } from '../state/crypto.js'
import { applyTxEffects, applyTxEffectsAndSettle, type EffectWarning, runAfterCommit } from './apply.js'
import type { EngineContext } from './context.js'
import { claimState, encodeAndRemember, type OpenedState, openState, transitionState } from './pipeline-state.js'
import { stateErrorRedirect } from './redirect.js'
import { memoStepFingerprint } from './steps.js'
import { txTokens } from './tokens.js'
import { fromStorage, GuardedWriteLost, inTransaction } from './transaction.js'
import { resolveTrust } from './trust.js'
import type { AuthPipeline, Explanation, FinishLoginInput, LoginOutcome, SessionEffect, SessionInfo } from './types.js'

/** Purpose of account-verification one-time tokens (spec 3.12). */
export const ACCOUNT_VERIFICATION_PURPOSE = 'account-verification'

/**
 * What the step machine already loaded and checked when the last provider step ran: the opened
 * state (its `step` and `data` advanced in memory, `version` still the stored one), the org and
 * the provider row. Handing it over saves re-reading them and a separate compare-and-set for
 * the step: the finisher's claim writes the advanced step, data and identity in one swap.
 */
export interface LoginHandoff {
  readonly opened: OpenedState
  readonly organization: Organization
  readonly providerRow: AuthProvider
}

/** The login part of the engine. */
export type LoginApi = Pick<AuthPipeline, 'finishLogin' | 'explain' | 'verifyAccountLink'> & {
  /** Internal: finishLogin for the step machine's last step (see {@link LoginHandoff}). */
  finishAfterSteps(input: FinishLoginInput, handoff: LoginHandoff): ResultAsync<LoginOutcome, AuthError>
}

const bindingSchema = z.strictObject({
  userId: z.string().max(LIMITS.id),
  email: z.string().max(LIMITS.email),
  organizationId: z.string().max(LIMITS.id),
  authProviderId: z.string().max(LIMITS.id),
  ident: z.string().max(LIMITS.id),
  pipelineId: z.string().max(LIMITS.id),
})

function parseBinding(payload: string): VerificationBinding | null {
  try {
    const parsed = bindingSchema.safeParse(JSON.parse(payload))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

function hex(bytes: number): string {
  return toHex(fillRandom(new Uint8Array(bytes)))
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return (
    timingSafeEqual(a.id, b.id) &&
    a.legacyId === b.legacyId &&
    a.emailNormalized === b.emailNormalized &&
    a.emailVerified === b.emailVerified &&
    a.name === b.name &&
    JSON.stringify(a.data) === JSON.stringify(b.data)
  )
}

/**
 * Whose second factor the session passed (threat 63): a non-empty, bounded string, else nobody.
 * A plain-JS caller's `twoFactorUserId: true` or the removed `twoFactorPassed` flag count for nobody.
 */
function twoFactorUserOf(session: SessionInfo): string | null {
  const v: unknown = session.twoFactorUserId
  return typeof v === 'string' && v.length > 0 && v.length <= LIMITS.id ? v : null
}

/**
 * Purpose of the one-time-token row that records the verification mails one user got (threat 28):
 * one row per user, keyed by a hash of the user id, read and replaced under the lock of the
 * user's address inside the login transaction.
 */
export const VERIFICATION_SENDS_PURPOSE = 'account-verification-sends'

const sendsSchema = z.strictObject({
  windowStart: z.number().int().nonnegative(),
  count: z.number().int().nonnegative(),
  lastByProvider: z.record(z.string().max(LIMITS.id), z.number().int().nonnegative()).refine((r) => Object.keys(r).length <= 1000),
  tokenHash: z.string().max(128).nullable(),
})

const sendsKey = (userId: string): string => sha256Hex(`ssoflow:verification-sends:${userId}`)

async function loadSends(ctx: EngineContext, userId: string, now: Date): Promise<VerificationSends | null> {
  const row = await ctx.tokens.peek(sendsKey(userId), VERIFICATION_SENDS_PURPOSE, now)
  if (!row) return null
  try {
    const parsed = sendsSchema.safeParse(JSON.parse(row.payload))
    if (parsed.success) return parsed.data
  } catch {
    // fall through
  }
  ctx.logger?.warn('ssoflow: unreadable verification-sends record ignored', { userId })
  return null
}

/**
 * Stores a verification link and the user's send record, revoking the user's previous link. Runs
 * inside the login transaction, under the lock of the user's address taken while gathering.
 */
async function storeVerification(tokens: OneTimeTokenStore, v: VerificationIssue, now: Date): Promise<void> {
  if (v.revokeTokenHash !== null) await tokens.consume(v.revokeTokenHash, ACCOUNT_VERIFICATION_PURPOSE, now)
  const key = sendsKey(v.binding.userId)
  // Replace the record: consume whatever row is there, live or expired (an expired row left by
  // no sweep would make the insert conflict), then insert the new one.
  await tokens.consume(key, VERIFICATION_SENDS_PURPOSE, new Date(0))
  await tokens.create({
    hash: key,
    purpose: VERIFICATION_SENDS_PURPOSE,
    payload: JSON.stringify(v.sends),
    expiresAt: new Date(v.sendsKeepUntil),
  })
  await tokens.create({
    hash: v.tokenHash,
    purpose: ACCOUNT_VERIFICATION_PURPOSE,
    payload: JSON.stringify(v.binding),
    expiresAt: v.expiresAt,
  })
}

/** Everything known before reading the facts: the opened state, org, provider, identity. */
interface Prepared {
  readonly opened: OpenedState
  readonly organization: Organization
  readonly providerRow: AuthProvider
  readonly provider: Provider
  readonly identity: Identity
  /** What the provider's trust policy made of the identity's address. */
  readonly trust: TrustJudgement
}

const E = (code: AuthError['code'], details?: Record<string, unknown>): AuthError => authError(code, { redirect: 'orgLogin', details })

/** The opened state, org and provider row: from the step machine, or loaded here. */
async function load(ctx: EngineContext, input: FinishLoginInput): Promise<Result<LoginHandoff, AuthError>> {
  const opened = await openState(ctx, input.handle, input.session.id, { flow: 'login' })
  if (opened.isErr()) return err(stateErrorRedirect(opened.error, 'orgLogin'))
  const state = opened.value.state
  const both = await fromStorage(
    () =>
      ctx.configCache.read(
        state.organizationId,
        (v) => v.provider?.id === state.authProviderId && v.provider.providerKey === state.providerKey,
      ),
    'orgLogin',
  )
  if (both.isErr()) return err(both.error)
  if (!both.value) return err(E('ORGANIZATION_NOT_FOUND'))
  const row = both.value.provider
  if (!row) return err(E('PROVIDER_MISMATCH'))
  return ok({ opened: opened.value, organization: both.value.organization, providerRow: row })
}

async function prepare(ctx: EngineContext, input: FinishLoginInput, handoff?: LoginHandoff): Promise<Result<Prepared, AuthError>> {
  const session = input.session
  if (!session || typeof session.id !== 'string' || session.id.length === 0) return err(E('INPUT_INVALID', { reason: 'session' }))
  // createAuthPipeline's boundary already refused an unknown op (INPUT_INVALID); internal callers too.
  if (input.op != null && input.op !== 'confirm' && input.op !== 'newuser') return err(E('INPUT_INVALID', { field: 'op' }))
  if ('twoFactorPassed' in session) {
    ctx.logger?.warn(
      'ssoflow: session.twoFactorPassed is no longer read (it counts for nobody); set session.twoFactorUserId to the user whose second factor passed',
    )
  }
  const loaded = handoff ? ok(handoff) : await load(ctx, input)
  if (loaded.isErr()) return err(loaded.error)
  const { opened, organization, providerRow } = loaded.value
  const state = opened.state
  if (state.flow !== 'login') return err(E('FLOW_MISMATCH'))
  // N6 / N7: the state is bound to the org's CURRENT provider row and key.
  if (
    providerRow.organizationId !== state.organizationId ||
    providerRow.id !== state.authProviderId ||
    providerRow.providerKey !== state.providerKey
  ) {
    return err(E('PROVIDER_MISMATCH'))
  }
  const provider = ctx.providers.get(providerRow.providerKey)
  if (!provider) return err(E('PROVIDER_UNKNOWN'))
  const stepIds = provider.loginSteps(providerRow.config).map((s) => s.id)
  const fingerprint = await memoStepFingerprint(ctx, provider.key, 'login', stepIds)
  if (!timingSafeEqual(fingerprint, state.fingerprint)) return err(E('STATE_FINGERPRINT'))
  // Threat 31: finishing is only possible after every login step ran.
  if (state.step < stepIds.length) return err(E('STATE_INVALID', { reason: 'steps-incomplete' }))
  // Threat 39: an unsolicited pipeline never shows a confirmation page, so it takes no op.
  if (state.initiation === 'unsolicited' && input.op != null) return err(E('OP_NOT_ALLOWED'))
  // Threat 17: a pipeline started by a signed-in user finishes only in that user's session.
  // An anonymous pipeline may finish signed in: that is the "sign in to link" path.
  const sessionUserId = session.userId ?? null
  if (state.initiatorUserId !== null && sessionUserId !== state.initiatorUserId) return err(E('STATE_SESSION_MISMATCH'))
  let identity: Identity
  if (state.identity) {
    identity = state.identity
    if (input.identity !== undefined) {
      const again = parseIdentity(input.identity)
      if (again.isErr() || !sameIdentity(again.value, identity)) return err(E('IDENTITY_INVALID', { reason: 'identity-mismatch' }))
    }
  } else {
    if (input.identity === undefined) return err(E('IDENTITY_INVALID', { reason: 'missing' }))
    const parsed = parseIdentity(input.identity)
    if (parsed.isErr()) return err(authError('IDENTITY_INVALID', { redirect: 'orgLogin', details: parsed.error.details }))
    identity = parsed.value
  }
  // Issue 13: the provider's trust policy decides what its email_verified is worth.
  const policy = resolveTrust(provider, providerRow.config, 'orgLogin')
  if (policy.isErr()) return err(policy.error)
  const trust = judgeEmail(policy.value, identity.emailNormalized, identity.emailVerified)
  return ok({ opened, organization, providerRow, provider, identity, trust })
}

/** Inputs computed once per request, outside the transaction (hashes, hooks). */
interface Extras {
  readonly now: Date
  readonly sessionInviteHash: string | null
  readonly verification: VerificationBinding | null
  readonly memberLimitReached: boolean
}

/**
 * Record ids drawn from the engine's generator only when a decision takes one (a returning
 * login takes none): an array whose elements are generated on first read, in index order, so
 * the same plan gets the same ids as with a pre-filled list.
 */
function lazyIds(ctx: EngineContext): readonly string[] {
  const drawn: string[] = []
  return new Proxy(drawn, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^[0-9]+$/.test(key)) {
        const i = Number(key)
        if (i < 64) while (target.length <= i) target.push(ctx.ids.next())
        return target[i]
      }
      if (key === 'length') return Math.max(target.length, 64)
      return Reflect.get(target, key, receiver)
    },
  })
}

/** Values a new account or a verification mail needs; minted only on those paths. */
async function newAccountValues(
  ctx: EngineContext,
  p: Prepared,
  mayMailLink: boolean,
): Promise<Pick<LoginFacts, 'newUsername' | 'newVerification'>> {
  if (!mayMailLink) return { newUsername: hex(16), newVerification: NO_NEW_ACCOUNT.newVerification }
  const token = randomToken(32)
  return {
    newUsername: hex(16),
    newVerification: { tokenHash: sha256Hex(token), url: ctx.urls.verifyAccount(token, p.organization) },
  }
}

/** What a path that creates no account and mails no link gets instead (never written anywhere). */
const NO_NEW_ACCOUNT: Pick<LoginFacts, 'newUsername' | 'newVerification'> = {
  newUsername: '',
  newVerification: { tokenHash: '', url: '' },
}

async function extras(ctx: EngineContext, p: Prepared, session: SessionInfo): Promise<Result<Extras, AuthError>> {
  const now = ctx.clock.now()
  let verification: VerificationBinding | null = null
  const vt = session.verificationToken
  if (typeof vt === 'string' && vt.length > 0 && vt.length <= 256) {
    const rec = await fromStorage(async () => ctx.tokens.peek(sha256Hex(vt), ACCOUNT_VERIFICATION_PURPOSE, now), 'orgLogin')
    if (rec.isErr()) return err(rec.error)
    verification = rec.value ? parseBinding(rec.value.payload) : null
  }
  const invite = session.invite
  const sessionInviteHash = invite && typeof invite.token === 'string' ? sha256Hex(invite.token) : null
  let memberLimitReached = false
  try {
    memberLimitReached = (await ctx.hooks.isMemberLimitReached(p.organization)) === true
  } catch (cause) {
    return err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause, details: { hook: 'isMemberLimitReached' } }))
  }
  return ok({ now, sessionInviteHash, verification, memberLimitReached })
}

/**
 * What the login transaction already read before gathering: the linked identity (the lock-free
 * read, or the sign-up read under the locks), and from the sign-up read the active accounts with
 * the identity's address and the organization's invite for it; `emailLocked` when the lock of
 * the identity's address is already held.
 */
interface Prefetched {
  readonly linked: LinkedIdentity | null
  readonly signUp?: { readonly emailMatches: readonly UserEmailMatch[]; readonly invite: Member | null } | undefined
  readonly emailLocked?: boolean | undefined
}

/** Reads the facts (inside the transaction for finishLogin, from storage for explain). */
async function gather(
  reader: StorageReader,
  ctx: EngineContext,
  p: Prepared,
  x: Extras,
  session: SessionInfo,
  op: LoginChoice | null,
  lockEmail: ((emailNormalized: string) => Promise<void>) | null,
  pre?: Prefetched,
): Promise<LoginFacts> {
  const { identity, organization: org, providerRow } = p
  const state = p.opened.state
  let linkedRaw = pre ? pre.linked : await reader.getLinkedIdentity(providerRow.id, identity.id, org.id)
  let via: LinkedFacts['via'] = 'ident'
  if (!linkedRaw && identity.legacyId) {
    linkedRaw = await reader.getLinkedIdentity(providerRow.id, identity.legacyId, org.id)
    via = 'legacy'
  }
  const members = new Map<string, Member | null>()
  const identitiesByUser = new Map<string, AuthIdentity | null>()
  const invitesByEmail = new Map<string, Member | null>()
  const verifiedAddresses = new Map<string, string[]>()
  const identitiesOfUser = new Map<string, readonly AuthIdentity[]>()
  const loadInvite = async (email: string, userId: string | null = null) => {
    const key = normalizeEmail(email)
    if (!invitesByEmail.has(key)) invitesByEmail.set(key, await reader.getInviteByEmail(org.id, key))
    // An invite by email is accepted only for a verified address: learn whether it is.
    if (userId !== null && invitesByEmail.get(key) && !verifiedAddresses.has(userId)) {
      const rows = await reader.findUsersByEmail(key)
      verifiedAddresses.set(
        userId,
        rows.filter((r) => r.user.id === userId && r.email.isVerified).map((r) => r.email.emailNormalized),
      )
    }
  }
  const loadMember = async (userId: string) => {
    if (!members.has(userId)) members.set(userId, await reader.getMember(org.id, userId))
  }
  let sessionInvite: SessionInviteFacts | null = null
  const loadSessionInvite = async () => {
    const inv = session.invite
    if (inv && x.sessionInviteHash !== null && typeof inv.memberId === 'string' && inv.memberId.length <= LIMITS.id) {
      sessionInvite = {
        organizationId: inv.organizationId,
        tokenHash: x.sessionInviteHash,
        member: inv.organizationId === org.id ? await reader.getMemberById(inv.memberId) : null,
      }
    }
  }
  let sessionUser: User | null = null
  let emailMatches: readonly UserEmailMatch[] = []
  let verificationSends: VerificationSends | null = null
  // Only the anonymous visitor's page for a passwordless account may mail a link (see below).
  let mayMailLink = false
  if (linkedRaw) {
    members.set(linkedRaw.user.id, linkedRaw.member)
  }
  // The sign-up read answered the invite for the identity's address (same organization).
  if (pre?.signUp) invitesByEmail.set(identity.emailNormalized, pre.signUp.invite)
  if (linkedRaw?.user.isActive) {
    // Hot path: a returning user. Only a missing membership needs more reads.
    if (!linkedRaw.member) {
      await loadInvite(linkedRaw.user.email, linkedRaw.user.id)
      await loadSessionInvite()
    }
  } else {
    const sid = session.userId ?? null
    sessionUser = sid ? await reader.getUser(sid) : null
    // policy.newUser 'create' may sign a user up in this request: serialize on the address before
    // the "an active account already has this email" read, as op=newuser does (threats 10, 52).
    if (
      op !== 'newuser' &&
      lockEmail &&
      !pre?.emailLocked &&
      mayCreateAtOnce({ policy: ctx.policy, op, session: { userId: sid }, sessionUser, linked: linkedRaw })
    ) {
      await lockEmail(identity.emailNormalized)
    }
    emailMatches = pre?.signUp ? pre.signUp.emailMatches : await reader.findUsersByEmail(identity.emailNormalized)
    if (sessionUser) await loadMember(sessionUser.id)
    for (const m of emailMatches.slice(0, 50)) await loadMember(m.user.id)
    const target = resolveTarget({ sessionUser, emailMatches, members })
    const targets = target.user ? [target.user] : []
    // An anonymous pipeline that may prove an existing account (signed in since, or holding an
    // emailed link) claims it: read the identities already on it (threat 3).
    const mayClaim = state.initiatorUserId === null && (sessionUser?.isActive === true || x.verification !== null)
    for (const u of targets) {
      await loadMember(u.id)
      identitiesByUser.set(u.id, await reader.getIdentityForUser(providerRow.id, u.id))
      if (mayClaim) identitiesOfUser.set(u.id, await reader.listIdentitiesForUser(u.id))
      await loadInvite(u.email, u.id)
    }
    await loadInvite(identity.email)
    await loadSessionInvite()
    // A verification link may be mailed (anonymous, no op, a passwordless target): read what the
    // target already got, under the lock of their address, so that concurrent pipelines for one
    // user (any org, any provider) see each other's mails (threat 28).
    const u = target.user
    if (!sessionUser?.isActive && op === null && u && !u.hasUsablePassword) {
      mayMailLink = true
      if (lockEmail) await lockEmail(normalizeEmail(u.email))
      verificationSends = await loadSends(ctx, u.id, x.now)
    }
  }
  // A returning user's login takes no new username and mails no link: nothing is minted for it.
  const fresh = linkedRaw?.user.isActive ? NO_NEW_ACCOUNT : await newAccountValues(ctx, p, mayMailLink)
  return {
    now: x.now,
    ids: lazyIds(ctx),
    newUsername: fresh.newUsername,
    organization: org,
    provider: { id: providerRow.id, key: providerRow.providerKey, displayName: p.provider.displayName },
    pipeline: {
      id: state.id,
      referrer: state.referrer,
      verificationSentAt: state.verificationSentAt,
      initiatorUserId: state.initiatorUserId,
    },
    identity: identity.emailVerified === p.trust.emailVerified ? identity : { ...identity, emailVerified: p.trust.emailVerified },
    trust: p.trust,
    op,
    session: { userId: session.userId ?? null, twoFactorUserId: twoFactorUserOf(session), ip: session.ip ?? null },
    sessionUser,
    linked: linkedRaw ? { identity: linkedRaw.identity, user: linkedRaw.user, via } : null,
    emailMatches,
    members,
    identitiesByUser,
    identitiesOfUser,
    invitesByEmail,
    verifiedAddresses,
    sessionInvite,
    verification: x.verification,
    memberLimitReached: x.memberLimitReached,
    loginUrl: ctx.urls.orgLogin(org),
    newVerification: fresh.newVerification,
    verificationSends,
    policy: {
      verificationTtlSeconds: ctx.policy.verificationTtlSeconds,
      verificationResendSeconds: ctx.policy.verificationResendSeconds,
      verificationDailyLimit: ctx.policy.verificationDailyLimit,
      newUser: ctx.policy.newUser,
      identitiesOnClaim: ctx.policy.identitiesOnClaim,
      identityRefreshSeconds: ctx.policy.identityRefreshSeconds,
      rejoinOnLogin: ctx.policy.rejoinOnLogin,
    },
  }
}

/** JSON with object keys sorted, so two equal configs compare equal whatever their key order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  )
}

/**
 * The provider row read inside the transaction is the one the pipeline was checked against:
 * same row, org, key and configuration (a replaced provider has a new id; a changed
 * configuration could change what the identity means).
 */
function sameProvider(current: AuthProvider | null, loaded: AuthProvider): boolean {
  return (
    current !== null &&
    current.id === loaded.id &&
    current.organizationId === loaded.organizationId &&
    current.providerKey === loaded.providerKey &&
    current.allowUnlinked === loaded.allowUnlinked &&
    current.scimEnabled === loaded.scimEnabled &&
    stableJson(current.config) === stableJson(loaded.config)
  )
}

/**
 * The provider row locked in the transaction is not the one the pipeline loaded (disabled,
 * replaced or changed since, or the engine's copy was older than the change): refused, and the
 * copy is dropped so that the next request reads the row again.
 */
function providerChanged(ctx: EngineContext, p: Prepared): Result<never, AuthError> {
  ctx.configCache.drop(p.organization.id)
  return err(E('PROVIDER_MISMATCH', { reason: 'provider-changed' }))
}

function mergeFor(provider: Provider): MergeIdentityData {
  return provider.updateIdentity ? (next, current) => provider.updateIdentity?.(next, current) ?? next : defaultMergeIdentityData
}

function redirectTarget(ctx: EngineContext, p: Prepared): string {
  return safeNext(p.opened.state.next, ctx.urls.baseUrl) ?? ctx.urls.afterLogin(p.organization)
}

/**
 * Threat 39: a pipeline started by an unsolicited IdP response decides as if the browser were
 * anonymous (no session user to attach to, no session invite, no verification link)...
 */
function factsSession(p: Prepared, session: SessionInfo): SessionInfo {
  if (p.opened.state.initiation !== 'unsolicited') return session
  return { ...session, userId: null, invite: null, verificationToken: null }
}

/**
 * ...and may only sign in an identity already linked to a member of the org: no link, no new
 * account, no confirmation page, no invite accepted, no membership created. A rejection or a
 * second-factor handoff stays as decided.
 */
function unsolicitedRefusal(p: Prepared, plan: LoginPlan): AuthError | null {
  if (p.opened.state.initiation !== 'unsolicited') return null
  const d = plan.decision
  if (d.kind === 'reject' || d.kind === 'twoFactor') return null
  if (d.kind !== 'signIn' || d.path !== 'existing') return E('UNSOLICITED_RESPONSE', { reason: 'not-linked' })
  if (d.acceptedInviteId !== null) return E('UNSOLICITED_RESPONSE', { reason: 'invite' })
  if (d.created.member) return E('UNSOLICITED_RESPONSE', { reason: 'not-a-member' })
  return null
}

/**
 * Engines whose storage turned out to offer no `tx.pipelineStates` (checked in the first login
 * transaction): their logins claim the state before the transaction and consume it after.
 */
const noTxStates = new WeakSet<EngineContext>()

/** The state a decision leaves behind: consumed, or open again holding the identity. */
function settledState(held: PipelineState, identity: Identity, plan: LoginPlan): PipelineState {
  const base: PipelineState = { ...held, identity }
  const d = plan.decision
  if (d.kind === 'signIn' || (d.kind === 'reject' && !d.keepState)) return { ...base, phase: 'consumed' }
  if (d.kind === 'confirm' && d.verification) return { ...base, phase: 'open', verificationSentAt: d.verification.sentAt }
  return { ...base, phase: 'open' }
}

/**
 * A plan the lock-free read may stand on: it writes nothing but the pipeline state (no
 * transaction effect, no verification link consumed or stored), so no update can be lost.
 */
function writesNothing(plan: LoginPlan): boolean {
  const d = plan.decision
  return plan.txEffects.length === 0 && d.kind !== 'confirm' && !(d.kind === 'signIn' && d.consumesVerification)
}

/**
 * The identity patch of a plan whose only write is the refresh of the linked identity's data and
 * timestamps (no re-keying, no re-pointing, no membership, no verification link), else null.
 */
function refreshOnly(plan: LoginPlan, identityId: string): AuthIdentityPatch | null {
  const d = plan.decision
  if (d.kind !== 'signIn' || d.consumesVerification || plan.txEffects.length !== 1) return null
  const effect = plan.txEffects[0]
  if (effect?.type !== 'identity.update' || effect.id !== identityId) return null
  const patch = effect.patch
  return patch.userId === undefined && patch.ident === undefined ? patch : null
}

/** The reason of the retryable conflict a lost guarded identity refresh raises (see decideInTx). */
const IDENTITY_CHANGED = 'identity-changed'

/**
 * Reads the facts and decides, inside the login transaction.
 *
 * A returning user first: when the adapter offers `tx.readLinkedIdentity`, one read gives the
 * provider row (held shared, threat 62) and the linked identity without the identity lock. A
 * plan that writes nothing but the state stands on it; so does a plan whose only write is the
 * identity row's refresh, when `tx.updateIdentityIfUnchanged` writes it over the row as read
 * (a row changed since falls through to the lock). Anything else (an unknown identity, a
 * refresh, a new membership, a chosen op) takes the identity lock and reads again: every write
 * decision is made on data read under the lock (no lost update, one account per identity).
 */
async function decideInTx(
  ctx: EngineContext,
  tx: StorageTx,
  p: Prepared,
  x: Extras,
  deciding: SessionInfo,
  op: LoginChoice | null,
  merge: MergeIdentityData,
  lockFirst = false,
): Promise<Result<LoginPlan, AuthError>> {
  // A login that may create a user: op=newuser, or policy.newUser 'create' for an anonymous
  // visitor whose identity the lock-free read did not find (threats 10, 52: serialized on the
  // address as well as on the identity).
  let mayCreate = op === 'newuser'
  if (tx.readLinkedIdentity && op === null && !lockFirst) {
    const read = await tx.readLinkedIdentity(p.providerRow.id, p.identity.id, p.organization.id)
    if (!sameProvider(read.provider, p.providerRow)) return providerChanged(ctx, p)
    mayCreate =
      read.linked === null &&
      mayCreateAtOnce({ policy: ctx.policy, op, session: { userId: deciding.userId ?? null }, sessionUser: null, linked: null })
    if (read.linked?.user.isActive) {
      const facts = await gather(tx, ctx, p, x, deciding, op, null, { linked: read.linked })
      const plan = decideLogin(facts, merge)
      if (writesNothing(plan)) return ok(plan)
      // A returning user whose identity row alone is rewritten (OIDC: new IdP tokens on every
      // login): one guarded write on the row as it was read, no identity lock. Changed since
      // (a concurrent login refreshed it first): nothing written, the locked path below decides
      // again on the row as committed, so no update is lost.
      const patch = refreshOnly(plan, read.linked.identity.id)
      if (patch && tx.updateIdentityIfUnchanged) {
        if (await tx.updateIdentityIfUnchanged(read.linked.identity, patch)) return ok({ ...plan, txEffects: [] })
        // Changed since: roll back before waiting for the identity lock. A guarded update that
        // waited for another login's commit may hold the row it re-checked (PostgreSQL locks the
        // newest version to re-check it, and keeps the lock though it wrote nothing); waiting
        // for the identity lock while holding it deadlocks against a login that holds the
        // identity lock and waits for this row. The retry decides under the lock at once.
        throw new GuardedWriteLost(IDENTITY_CHANGED)
      }
    }
  }
  // Threat 62: the provider row is read again under a shared lock, in the statement that takes
  // the identity lock. Disabled or replaced since the pipeline loaded it: nothing is written; a
  // disable that starts now waits for this transaction.
  // A login that may create a user takes the address lock with it (one round trip where the
  // adapter offers it), before the "an active account already has this email" read; then the
  // identity, the address's accounts and its invite in one read of their own (after the locks).
  const email = p.identity.emailNormalized
  const lockBoth = mayCreate && tx.lockIdentityAndEmail
  const current = lockBoth ? await lockBoth(p.providerRow.id, p.identity.id, email) : await tx.lockIdentity(p.providerRow.id, p.identity.id)
  if (!sameProvider(current, p.providerRow)) return providerChanged(ctx, p)
  if (mayCreate && !lockBoth) await tx.lockEmail(email)
  let pre: Prefetched | undefined
  if (mayCreate && tx.readSignUp) {
    const read = await tx.readSignUp(p.providerRow.id, p.identity.id, p.organization.id, email)
    pre = { linked: read.linked, signUp: { emailMatches: read.emailMatches, invite: read.invite }, emailLocked: true }
  }
  // A login that may create a user holds its address's lock from here: gather need not take it again.
  const lockEmail = (e: string) => (mayCreate && e === email ? Promise.resolve() : tx.lockEmail(e))
  const facts = await gather(tx, ctx, p, x, deciding, op, lockEmail, pre)
  return ok(decideLogin(facts, merge))
}

async function finish(ctx: EngineContext, input: FinishLoginInput, handoff?: LoginHandoff): Promise<Result<LoginOutcome, AuthError>> {
  const prepared = await prepare(ctx, input, handoff)
  if (prepared.isErr()) return err(prepared.error)
  const p = prepared.value
  const session = input.session
  const deciding = factsSession(p, session)
  // Where the state is settled: inside the login transaction (states in this storage, which
  // offers tx.pipelineStates: one compare-and-set, atomic with the decision), or claimed before
  // it and settled after commit (a separate state store, e.g. Redis).
  let inTx = ctx.statesInStorage && !noTxStates.has(ctx)
  // The state version this request holds. In-transaction: the version it read.
  let held: OpenedState = p.opened
  const settleOutside = async (next: PipelineState) => {
    const r = await transitionState(ctx, held, next)
    if (r.isOk()) held = r.value
    else ctx.logger?.warn('ssoflow: could not settle a pipeline state', { code: r.error.code })
  }
  const release = (patch: Partial<PipelineState> = {}) => settleOutside({ ...held.state, identity: p.identity, ...patch, phase: 'open' })
  const consume = () => settleOutside({ ...held.state, identity: p.identity, phase: 'consumed' })
  const claim = async (): Promise<AuthError | null> => {
    // Claim: one finisher per state; the identity is stored so a follow-up uses it (and only it).
    const claimed = await claimState(ctx, p.opened, { identity: p.identity })
    if (claimed.isErr()) return claimed.error
    held = claimed.value
    return null
  }
  if (!inTx) {
    const refused = await claim()
    if (refused) return err(refused)
  }
  const x = await extras(ctx, p, deciding)
  if (x.isErr()) {
    if (!inTx) await release()
    return err(x.error)
  }
  const merge = mergeFor(p.provider)
  const op = input.op ?? null
  let plan: LoginPlan | null = null
  let lastError: AuthError | null = null
  let settled: OpenedState | null = null
  // Two tries for a conflict (an invite accepted first, threat 49), plus one for a lost guarded
  // refresh (decideInTx), whose retry decides under the identity lock at once.
  let attempts = 2
  let lockFirst = false
  for (let attempt = 0; attempt < attempts && plan === null; attempt++) {
    let tokens: ReturnType<typeof txTokens> | null = null
    let lacksTxStates = false
    const result = await inTransaction(
      ctx.storage,
      async (tx) => {
        if (inTx && !tx.pipelineStates) {
          lacksTxStates = true
          return err(E('STORAGE_CONFLICT', { reason: 'no-tx-pipeline-states' }))
        }
        tokens = txTokens(ctx, tx)
        const decided = await decideInTx(ctx, tx, p, x.value, deciding, op, merge, lockFirst)
        if (decided.isErr()) return err(decided.error)
        const plan = decided.value
        const refused = unsolicitedRefusal(p, plan)
        if (refused) return err(refused)
        if (plan.decision.kind === 'confirm' && plan.decision.page.page === 'confirm-identity') {
          // The page an anonymous visitor gets. The host's limiter is asked before every one,
          // whether or not a link is due (threat 29: asking only then would tell that an account
          // exists), after ssoflow's own per-user mail limits (threat 28).
          const v = plan.decision.verification
          let limited: boolean
          try {
            limited =
              (await ctx.hooks.isRateLimited({
                action: 'accountVerificationMail',
                organizationId: p.organization.id,
                authProviderId: p.providerRow.id,
                targetUserId: v ? v.binding.userId : null,
                sessionId: session.id,
                ip: typeof session.ip === 'string' ? session.ip : null,
              })) === true
          } catch (cause) {
            return err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause, details: { hook: 'isRateLimited' } }))
          }
          if (limited) return err(E('RATE_LIMITED', { reason: 'host' }))
          // A link is about to be mailed: stored while the address lock is held.
          if (v) await storeVerification(tokens.store, v, x.value.now)
        }
        if (plan.decision.kind === 'signIn' && plan.decision.consumesVerification) {
          // Consumed in this transaction: a rollback puts the link back (see txTokens).
          const vt = session.verificationToken ?? ''
          const consumed = await tokens.store.consume(sha256Hex(vt), ACCOUNT_VERIFICATION_PURPOSE, x.value.now)
          if (!consumed) return err(E('VERIFICATION_INVALID'))
        }
        if (inTx && tx.pipelineStates) {
          // One final decision per state: the state is settled in this transaction, by
          // compare-and-set on the version this request read (with a new account's rows, in their
          // statement when the adapter can). A concurrent finisher that settled it first makes
          // this one roll back (STATE_CONFLICT), writes included.
          const next = settledState(held.state, p.identity, plan)
          const version = held.version + 1
          const body = encodeAndRemember(ctx, next)
          const swap = { id: next.id, expectedVersion: held.version, next: { id: next.id, version, body, expiresAt: storeExpiry(next) } }
          const swapped = await applyTxEffectsAndSettle(tx, tx.pipelineStates, ctx.audit, plan.txEffects, ctx.auditInStorage, swap)
          if (!swapped) return err(E('STATE_CONFLICT'))
          settled = { state: next, version }
        } else await applyTxEffects(tx, ctx.audit, plan.txEffects, ctx.auditInStorage)
        return ok(plan)
      },
      'orgLogin',
    )
    if (lacksTxStates) {
      // This storage cannot settle a state inside a transaction: claim it now, and from now on.
      noTxStates.add(ctx)
      inTx = false
      const refused = await claim()
      if (refused) return err(refused)
      attempt--
      continue
    }
    if (result.isOk()) plan = result.value
    else {
      await (tokens as ReturnType<typeof txTokens> | null)?.restore()
      lastError = result.error
      if (result.error.code !== 'STORAGE_CONFLICT') break
      if (result.error.details?.reason === IDENTITY_CHANGED && !lockFirst) {
        lockFirst = true
        attempts++
      }
    }
  }
  if (plan === null) {
    if (lastError?.code === 'STATE_CONFLICT' && inTx) {
      // Another request settled this state first: it is theirs now.
    } else if (lastError?.code === 'UNSOLICITED_RESPONSE' || lastError?.code === 'PROVIDER_MISMATCH') {
      // A refused unsolicited response, or a pipeline whose provider is gone or replaced: it can
      // never finish.
      await consume()
    } else await release()
    return err(lastError ?? E('STORAGE_UNAVAILABLE'))
  }
  if (inTx && settled) held = settled
  // Claimed before the transaction: settle it now that the decision committed.
  else await settleOutside(settledState(held.state, p.identity, plan))
  const d = plan.decision
  const handle = input.handle
  switch (d.kind) {
    case 'reject':
      return err(d.error)
    case 'twoFactor': {
      return ok({
        kind: 'twoFactorRequired',
        userId: d.userId,
        resumeHandle: handle,
        session: [{ type: 'pendingTwoFactor', userId: d.userId, organizationId: p.organization.id, resumeHandle: handle }],
        trace: plan.trace,
      })
    }
    case 'confirm': {
      // The link (if any) was stored inside the transaction.
      // The only page that mails is the anonymous visitor's, and it must read the same whether or
      // not an account exists (threat 29): its response does not wait for the mailer. A failed
      // or late mail is reported to the host's logger.
      deliverInBackground(ctx, plan.afterCommit, { organizationId: p.organization.id, pipelineId: p.opened.state.id })
      return ok({
        kind: 'confirmationRequired',
        handle,
        confirmation: d.page,
        allowedOps: d.allowedOps,
        session: [],
        trace: plan.trace,
        warnings: [],
      })
    }
    case 'signIn': {
      const warnings = await runAfterCommit(ctx, plan.afterCommit)
      const effects: SessionEffect[] = [
        { type: 'login', userId: d.userId },
        { type: 'rotate' },
        { type: 'markSsoComplete', organizationId: p.organization.id, at: x.value.now.toISOString() },
        { type: 'activeOrg', organizationId: p.organization.id, slug: p.organization.slug },
        { type: 'clearInvite' },
        ...(session.verificationToken ? [{ type: 'clearVerification' } as const] : []),
        { type: 'clearPipeline' },
        // Threat 2: the account was just proven by this pipeline; no earlier session survives.
        ...(d.claim ? [{ type: 'revokeOtherSessions', userId: d.userId, reason: 'accountClaimed' } as const] : []),
      ]
      return ok({
        kind: 'signedIn',
        userId: d.userId,
        memberId: d.memberId,
        organizationId: p.organization.id,
        redirect: redirectTarget(ctx, p),
        created: d.created,
        linked: d.linked,
        acceptedInviteId: d.acceptedInviteId,
        claim: d.claim,
        session: effects,
        trace: plan.trace,
        warnings,
      })
    }
  }
}

/**
 * Runs after-commit effects without making the caller wait; failures (or a port that does not
 * answer within `policy.afterCommitTimeoutMs`) go to the host's logger.
 */
function deliverInBackground(ctx: EngineContext, effects: LoginPlan['afterCommit'], where: Record<string, string>): void {
  if (effects.length === 0) return
  const report = (warnings: readonly EffectWarning[]) => {
    for (const w of warnings) ctx.logger?.warn('ssoflow: an after-commit effect failed after the response', { ...w, ...where })
  }
  runAfterCommit(ctx, effects).then(report, () => {})
}

async function explainLogin(ctx: EngineContext, input: FinishLoginInput): Promise<Result<Explanation, AuthError>> {
  const prepared = await prepare(ctx, input)
  if (prepared.isErr()) return err(prepared.error)
  const p = prepared.value
  const deciding = factsSession(p, input.session)
  const x = await extras(ctx, p, deciding)
  if (x.isErr()) return err(x.error)
  let facts: LoginFacts
  try {
    facts = await gather(ctx.storage, ctx, p, x.value, deciding, input.op ?? null, null)
  } catch (cause) {
    return err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause }))
  }
  const plan = decideLogin(facts, mergeFor(p.provider))
  const refused = unsolicitedRefusal(p, plan)
  if (refused) return ok({ decision: `reject:${refused.code}`, trace: plan.trace, effects: [] })
  const d = plan.decision
  return ok({
    decision:
      d.kind === 'reject'
        ? `reject:${d.error.code}`
        : d.kind === 'confirm'
          ? `confirm:${d.page.page}`
          : d.kind === 'signIn'
            ? `signIn:${d.path}`
            : d.kind,
    trace: plan.trace,
    effects: [...plan.txEffects.map((e) => e.type), ...plan.afterCommit.map((e) => e.type)],
  })
}

async function verifyLink(
  ctx: EngineContext,
  input: { readonly token: string; readonly session: SessionInfo },
): Promise<Result<{ readonly kind: 'accountVerified'; readonly organizationId: string; readonly token: string }, AuthError>> {
  // The organization is known only once the link is: errors go to the root.
  const token = input.token
  if (typeof token !== 'string' || token.length === 0 || token.length > 256) return err(authError('VERIFICATION_INVALID'))
  const rec = await fromStorage(async () => ctx.tokens.peek(sha256Hex(token), ACCOUNT_VERIFICATION_PURPOSE, ctx.clock.now()), 'root')
  if (rec.isErr()) return err(rec.error)
  const binding = rec.value ? parseBinding(rec.value.payload) : null
  if (!binding) return err(authError('VERIFICATION_INVALID'))
  return ok({ kind: 'accountVerified', organizationId: binding.organizationId, token })
}

/** Creates finishLogin, explain and verifyAccountLink over the engine context. */
export function createLoginApi(ctx: EngineContext): LoginApi {
  return {
    finishLogin: (input) =>
      new ResultAsync(finish(ctx, input).catch((cause) => err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause })))),
    explain: (input) =>
      new ResultAsync(explainLogin(ctx, input).catch((cause) => err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause })))),
    verifyAccountLink: (input) => new ResultAsync(verifyLink(ctx, input)),
    finishAfterSteps: (input, handoff) =>
      new ResultAsync(finish(ctx, input, handoff).catch((cause) => err(authError('STORAGE_UNAVAILABLE', { redirect: 'orgLogin', cause })))),
  }
}
