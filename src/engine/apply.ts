import type { AfterCommitEffect, TxEffect } from '../core/effects.js'
import { type AuthError, authError } from '../errors.js'
import type { AuditPort } from '../ports/audit.js'
import type { MailerPort } from '../ports/mailer.js'
import type { SignalPort } from '../ports/signals.js'
import type { NewRows, PipelineStateStore, StateSwap, StorageTx } from '../ports/storage.js'
import { GuardedWriteLost } from './transaction.js'

function providerGone(): AuthError {
  return authError('PROVIDER_NOT_CONFIGURED', { redirect: 'authSettings' })
}

/**
 * How many leading effects are inserts (a new account: user, identity, membership, audit entry)
 * that one `tx.createRows` call writes, when the adapter offers it (one statement on
 * PostgreSQL): 0 when fewer than two. Audit entries join only when the audit port is the default
 * one (`tx.appendAudit`): a host's audit port is always called.
 */
function leadingCreates(tx: StorageTx, effects: readonly TxEffect[], auditInStorage: boolean): number {
  if (!tx.createRows) return 0
  let n = 0
  for (const e of effects) {
    if (e.type === 'user.create' || e.type === 'identity.create' || e.type === 'member.create') n++
    else if (e.type === 'audit.record' && auditInStorage) n++
    else break
  }
  return n < 2 ? 0 : n
}

function rowsOf(effects: readonly TxEffect[]): NewRows {
  const rows: { -readonly [K in keyof NewRows]: NewRows[K][number][] } = { users: [], identities: [], members: [], audit: [] }
  for (const e of effects) {
    if (e.type === 'user.create') rows.users.push({ user: e.user, email: e.email })
    else if (e.type === 'identity.create') rows.identities.push(e.identity)
    else if (e.type === 'member.create') rows.members.push(e.member)
    else if (e.type === 'audit.record') rows.audit.push(e.entry)
  }
  return rows
}

/**
 * {@link applyTxEffects}, then the pipeline state's compare-and-set through `states` (the
 * transaction's own). When the effects are all a new account's rows and the adapter offers
 * `tx.createRowsAndSettle`, both go in that one call (one statement on PostgreSQL). Returns the
 * compare-and-set's answer: on false the caller rolls the transaction back.
 */
export async function applyTxEffectsAndSettle(
  tx: StorageTx,
  states: PipelineStateStore,
  audit: AuditPort,
  effects: readonly TxEffect[],
  auditInStorage: boolean,
  swap: StateSwap,
): Promise<boolean> {
  if (tx.createRowsAndSettle && effects.length > 0 && leadingCreates(tx, effects, auditInStorage) === effects.length) {
    return tx.createRowsAndSettle(rowsOf(effects), swap)
  }
  await applyTxEffects(tx, audit, effects, auditInStorage)
  return states.compareAndSet(swap.id, swap.expectedVersion, swap.next)
}

/**
 * Applies transaction effects in order, one port call each. Throws what the port throws, and
 * {@link GuardedWriteLost} when a guarded write (invite acceptance) matched no row (the
 * surrounding transaction rolls back).
 */
export async function applyTxEffects(tx: StorageTx, audit: AuditPort, effects: readonly TxEffect[], auditInStorage = false): Promise<void> {
  const batched = leadingCreates(tx, effects, auditInStorage)
  if (batched > 0) await tx.createRows?.(rowsOf(effects.slice(0, batched)))
  for (const effect of batched > 0 ? effects.slice(batched) : effects) {
    switch (effect.type) {
      case 'user.create':
        await tx.createUser(effect.user, effect.email)
        break
      case 'identity.create':
        await tx.createIdentity(effect.identity)
        break
      case 'identity.update':
        await tx.updateIdentity(effect.id, effect.patch)
        break
      case 'identity.delete':
        await tx.deleteIdentity(effect.id)
        break
      case 'identity.deleteForUser':
        await tx.deleteIdentitiesForUser(effect.authProviderId, effect.userId, effect.exceptId)
        break
      case 'identity.deleteForProvider':
        await tx.deleteIdentitiesForProvider(effect.authProviderId)
        break
      case 'member.create':
        await tx.createMember(effect.member)
        break
      case 'member.update':
        await tx.updateMember(effect.id, effect.patch)
        break
      case 'member.acceptInvite':
        // Someone else accepted (or revoked) the invite since the decision read it: roll back.
        if (!(await tx.acceptInvite(effect.id, effect.acceptance))) throw new GuardedWriteLost('invite-taken')
        break
      case 'member.delete':
        await tx.deleteMember(effect.id)
        break
      case 'member.setFlagsForOrganization':
        await tx.setFlagsForOrganization(effect.organizationId, effect.flags)
        break
      case 'provider.create':
        await tx.createAuthProvider(effect.provider)
        break
      case 'provider.update':
        if (!(await tx.updateAuthProvider(effect.id, effect.patch))) throw providerGone()
        break
      case 'provider.delete':
        // Decisions change a provider they hold (`lockAuthProvider(…, 'update')`); a row that is
        // gone anyway means another transaction won: roll back rather than report success.
        if (!(await tx.deleteAuthProvider(effect.id))) throw providerGone()
        break
      case 'organization.update':
        await tx.updateOrganization(effect.id, effect.patch)
        break
      case 'audit.record':
        await audit.record(effect.entry, tx)
        break
      default: {
        const never: never = effect
        throw new Error(`unknown effect ${JSON.stringify(never)}`)
      }
    }
  }
}

/**
 * A failure of an after-commit effect. The flow already committed: it is reported on the
 * outcome as a warning, never as an error.
 * @group Engine
 */
export interface EffectWarning {
  readonly code: 'MAILER_FAILED' | 'SIGNAL_FAILED'
  readonly effect: AfterCommitEffect['type']
  readonly detail: string
  /** `error`: the port threw or rejected; `timeout`: it did not answer within `policy.afterCommitTimeoutMs`. */
  readonly reason?: 'error' | 'timeout' | undefined
}

const TIMED_OUT = Symbol('timed out')

/** Awaits `work` for at most `ms` (no limit when not finite); TIMED_OUT when it did not settle. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!Number.isFinite(ms)) return work
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs after-commit effects in order; a port that throws, or does not answer within
 * `policy.afterCommitTimeoutMs`, becomes a warning (the flow committed: nothing is undone).
 */
export async function runAfterCommit(
  ports: { mailer: MailerPort; signals: SignalPort; policy?: { readonly afterCommitTimeoutMs?: number } },
  effects: readonly AfterCommitEffect[],
): Promise<EffectWarning[]> {
  const warnings: EffectWarning[] = []
  const limit = ports.policy?.afterCommitTimeoutMs ?? Number.POSITIVE_INFINITY
  for (const effect of effects) {
    let reason: EffectWarning['reason'] | null = null
    try {
      // The port is called synchronously (a recording fake sees the call at once).
      const work = effect.type === 'mail.send' ? ports.mailer.send(effect.message) : ports.signals.emit(effect.signal)
      if ((await within(Promise.resolve(work), limit)) === TIMED_OUT) reason = 'timeout'
    } catch {
      reason = 'error'
    }
    if (reason !== null) {
      warnings.push({
        code: effect.type === 'mail.send' ? 'MAILER_FAILED' : 'SIGNAL_FAILED',
        effect: effect.type,
        detail: effect.type === 'mail.send' ? effect.message.template : effect.signal.name,
        reason,
      })
    }
  }
  return warnings
}
