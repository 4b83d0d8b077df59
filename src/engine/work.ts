/**
 * Background work (issue 16 items 2 and 5): the mail fan-out of `finishSetup`,
 * `resendLinkRequests` and `disableProvider` is recorded in the outbox INSIDE their transaction
 * ({@link enqueueMailWork}) and carried out later by {@link createWorkApi}'s `runPendingWork`,
 * which also sweeps expired pipeline states and one-time tokens.
 *
 * The drain claims one item at a time (a lease, never a transaction held while mail is sent),
 * reads one page of members with their users in ONE query, sends that page's mails (each with its
 * idempotency key), then moves the item's cursor forward in one write that also renews the lease.
 * A crash anywhere leaves the item to the next claim once its lease expires, at the last cursor
 * written: at worst the current page is sent again with the same keys, which the mailer drops.
 *
 * @module
 */
import { ok, type Result } from 'neverthrow'
import { z } from 'zod'
import type { AfterCommitEffect } from '../core/effects.js'
import { planLinkRequests, planUnlinkNotices } from '../core/setup/link-requests.js'
import type { AuthError } from '../errors.js'
import type { AuthProvider, Organization } from '../model/records.js'
import type { MemberPage, MemberRecipient, PendingWork, StorageTx } from '../ports/storage.js'
import { fillRandom, toHex } from '../state/crypto.js'
import { type EffectWarning, runAfterCommit } from './apply.js'
import type { EngineContext } from './context.js'
import { fromStorage } from './transaction.js'
import type { PendingWorkInput, PendingWorkReport } from './types.js'

/** The kinds of work the engine records. */
export type MailWorkKind = 'link-requests' | 'unlink-notices'

const payloadSchema = z.object({
  v: z.literal(1),
  authProviderId: z.string(),
  organizationName: z.string(),
  providerName: z.string(),
  loginUrl: z.string().optional(),
  /** `setup` (key per provider lifetime) or `resend` at `at` (key per resend window). */
  reason: z.enum(['setup', 'resend', 'disable']),
  at: z.number(),
})
type WorkPayload = z.infer<typeof payloadSchema>

/** Defaults of `runPendingWork`. */
export const WORK_DEFAULTS = {
  /** Pages per call. */
  limit: 20,
  /** How long a claim holds an item before another worker may take it over. */
  leaseMs: 5 * 60_000,
  /** Failed attempts of one page before it is skipped (logged, counted as failed). */
  maxAttempts: 8,
  /** First retry delay after a failed page; doubles per attempt, at most 15 minutes. */
  retryBaseMs: 5_000,
  /** Rows per housekeeping batch, and batches per table per call. */
  sweepBatch: 1000,
  sweepBatches: 10,
} as const

/**
 * Records the mail fan-out of a decision in the outbox, in the decision's transaction: the
 * link requests after setup or a resend (`link-requests:<provider>`; a resend while one is
 * pending joins it), or the notices after a disable (`unlink-notices:<provider>`). Returns
 * `true` when recorded, `false` when an item with that key was already pending.
 */
export async function enqueueMailWork(
  ctx: EngineContext,
  tx: StorageTx,
  input: {
    readonly kind: MailWorkKind
    readonly organization: Organization
    readonly provider: AuthProvider
    readonly reason: WorkPayload['reason']
    readonly now: Date
  },
): Promise<QueuedMail> {
  const { organization, provider, now } = input
  const payload: WorkPayload = {
    v: 1,
    authProviderId: provider.id,
    organizationName: organization.name,
    providerName: ctx.providers.get(provider.providerKey)?.displayName ?? provider.providerKey,
    ...(input.kind === 'link-requests' ? { loginUrl: ctx.urls.orgLogin(organization) } : {}),
    reason: input.reason,
    at: now.getTime(),
  }
  const work: PendingWork = {
    id: ctx.ids.next(),
    kind: input.kind,
    organizationId: organization.id,
    key: `${input.kind}:${provider.id}`,
    payload: JSON.stringify(payload),
    cursor: null,
    attempts: 0,
    availableAt: now,
    claimToken: null,
    createdAt: now,
  }
  // An adapter without the outbox: the caller sends it after commit, in the request.
  if (!tx.enqueueWork || !ctx.storage.pendingWork) return { queued: true, inline: work }
  return { queued: await tx.enqueueWork(work), inline: null }
}

/** What {@link enqueueMailWork} did: recorded (or already pending), or to be sent inline. */
export interface QueuedMail {
  readonly queued: boolean
  /** Set when the storage has no outbox: send it with {@link sendInline} after commit. */
  readonly inline: PendingWork | null
}

/** One page of members with their users: one query, or (adapters without it) one per member. */
async function recipientsPage(ctx: EngineContext, organizationId: string, page: MemberPage): Promise<readonly MemberRecipient[]> {
  if (ctx.storage.listMemberRecipients) return ctx.storage.listMemberRecipients(organizationId, page)
  const members = await ctx.storage.listMembers(organizationId, page)
  const out: MemberRecipient[] = []
  // One read at a time (a storage on one connection runs one statement at a time).
  for (const member of members) out.push({ member, user: member.userId === null ? null : await ctx.storage.getUser(member.userId) })
  return out
}

/**
 * The fan-out of `work` sent at once, page by page (storage without an outbox; the behaviour
 * before issue 16). Mailer and paging failures become warnings: the decision has committed.
 */
export async function sendInline(ctx: EngineContext, work: PendingWork): Promise<EffectWarning[]> {
  const parsed = payloadSchema.safeParse(safeJson(work.payload))
  if (!parsed.success) return []
  const warnings: EffectWarning[] = []
  let after: string | null = null
  for (;;) {
    let page: readonly MemberRecipient[]
    try {
      page = await recipientsPage(ctx, work.organizationId, {
        after,
        limit: ctx.policy.memberPageSize,
        unlinkedOnly: work.kind === 'link-requests',
      })
    } catch (cause) {
      ctx.logger?.warn('ssoflow: member paging failed after commit', { organizationId: work.organizationId, error: String(cause) })
      warnings.push({ code: 'MAILER_FAILED', effect: 'mail.send', detail: 'member listing failed' })
      break
    }
    warnings.push(...(await runAfterCommit(ctx, planPage(work, parsed.data, page))))
    const last = page.at(-1)?.member.id ?? null
    if (page.length < ctx.policy.memberPageSize || last === null) break
    after = last
  }
  return warnings
}

/** The mails of one page of an item (pure planning over the page read). */
function planPage(item: PendingWork, payload: WorkPayload, recipients: readonly MemberRecipient[]): AfterCommitEffect[] {
  if (item.kind === 'unlink-notices') {
    return planUnlinkNotices({
      recipients,
      authProviderId: payload.authProviderId,
      organizationName: payload.organizationName,
      providerName: payload.providerName,
    })
  }
  return planLinkRequests({
    recipients,
    authProviderId: payload.authProviderId,
    organizationName: payload.organizationName,
    providerName: payload.providerName,
    loginUrl: payload.loginUrl ?? '',
    reason: payload.reason === 'resend' ? { kind: 'resend', now: new Date(payload.at) } : { kind: 'setup' },
  })
}

function randomToken(): string {
  return toHex(fillRandom(new Uint8Array(16)))
}

/** The drain: `runPendingWork` of {@link AuthPipeline}. Internal. */
export function createWorkApi(ctx: EngineContext): {
  runPendingWork(input?: PendingWorkInput): Promise<Result<PendingWorkReport, AuthError>>
} {
  const log = (message: string, data: Record<string, unknown>) => ctx.logger?.warn(`ssoflow: ${message}`, data)

  async function runPendingWork(input: PendingWorkInput = {}): Promise<Result<PendingWorkReport, AuthError>> {
    const limit = input.limit ?? WORK_DEFAULTS.limit
    const leaseMs = input.leaseMs ?? WORK_DEFAULTS.leaseMs
    const pageSize = ctx.policy.memberPageSize
    const work = ctx.storage.pendingWork
    const report = { pages: 0, mailsSent: 0, mailsFailed: 0, completed: 0, more: false }
    const warnings: EffectWarning[] = []

    // ---- background mail, one item at a time (storage with an outbox) ----
    while (work && report.pages < limit) {
      const token = randomToken()
      const now = ctx.clock.now()
      const claimed = await fromStorage(() => work.claim(now, new Date(now.getTime() + leaseMs), token))
      if (claimed.isErr()) return claimed.andThen(() => ok(null as never))
      if (claimed.value === null) break
      let item: PendingWork = claimed.value
      if (item.kind !== 'link-requests' && item.kind !== 'unlink-notices') {
        // A kind this version does not know (a newer worker's, during a rolling deploy): left
        // for a worker that knows it, claimable again when this lease ends.
        log('skipping background work of an unknown kind', { id: item.id, kind: item.kind })
        continue
      }
      const parsed = payloadSchema.safeParse(safeJson(item.payload))
      if (!parsed.success) {
        log('dropping unreadable background work', { id: item.id, kind: item.kind })
        await work.complete(item.id, token).catch(() => false)
        report.completed++
        continue
      }
      const payload = parsed.data
      if (item.kind === 'link-requests') {
        // Link requests of a provider that was disabled (or replaced) meanwhile are dropped.
        const provider = await fromStorage(() => ctx.storage.getAuthProviderById(payload.authProviderId))
        if (provider.isErr()) return provider.andThen(() => ok(null as never))
        if (provider.value === null || provider.value.organizationId !== item.organizationId) {
          await work.complete(item.id, token).catch(() => false)
          report.completed++
          continue
        }
      }
      // Pages of this item while the limit allows; each page: one read, the mails, one write.
      for (;;) {
        const current: PendingWork = item
        const page = await fromStorage(() =>
          recipientsPage(ctx, current.organizationId, {
            after: current.cursor,
            limit: pageSize,
            unlinkedOnly: current.kind === 'link-requests',
          }),
        )
        if (page.isErr()) return page.andThen(() => ok(null as never))
        const effects: AfterCommitEffect[] = planPage(item, payload, page.value)
        const failed = await runAfterCommit(ctx, effects)
        report.pages++
        report.mailsSent += effects.length - failed.length
        const last: string | null = page.value.at(-1)?.member.id ?? item.cursor
        const full = page.value.length >= pageSize
        const at = ctx.clock.now()
        if (failed.length > 0 && item.attempts + 1 < WORK_DEFAULTS.maxAttempts) {
          // Retry the whole page later (the keys make the mails already sent no-ops).
          report.mailsFailed += failed.length
          warnings.push(...failed)
          const delay = Math.min(WORK_DEFAULTS.retryBaseMs * 2 ** item.attempts, 15 * 60_000)
          await work
            .advance(item.id, token, { cursor: item.cursor, attempts: item.attempts + 1, availableAt: new Date(at.getTime() + delay) })
            .catch(() => false)
          report.more = true
          break
        }
        if (failed.length > 0) {
          report.mailsFailed += failed.length
          warnings.push(...failed)
          log('background mail page skipped after repeated failures', { id: item.id, kind: item.kind, after: item.cursor })
        }
        if (!full) {
          const done = await fromStorage(() => work.complete(current.id, token))
          if (done.isErr()) return done.andThen(() => ok(null as never))
          if (done.value) report.completed++
          break
        }
        const stop = report.pages >= limit
        // Forward, with the lease renewed; handed back at once when this call stops here.
        const progress = { cursor: last, attempts: 0, availableAt: stop ? at : new Date(at.getTime() + leaseMs) }
        const moved = await fromStorage(() => work.advance(current.id, token, progress))
        if (moved.isErr()) return moved.andThen(() => ok(null as never))
        if (!moved.value) {
          // The lease expired and another worker took the item over: it carries on.
          log('background work taken over by another worker', { id: item.id })
          break
        }
        item = { ...item, ...progress }
        if (stop) {
          report.more = true
          break
        }
      }
    }
    if (report.pages >= limit) report.more = true

    // ---- housekeeping, in bounded batches ----
    const swept = { pipelineStates: 0, oneTimeTokens: 0 }
    if (input.sweep !== false) {
      const now = ctx.clock.now()
      const batch = input.sweepBatch ?? WORK_DEFAULTS.sweepBatch
      for (let i = 0; i < WORK_DEFAULTS.sweepBatches; i++) {
        const n = await fromStorage(() => ctx.states.deleteExpired(now, batch))
        if (n.isErr()) return n.andThen(() => ok(null as never))
        swept.pipelineStates += n.value
        if (n.value < batch) break
        if (i === WORK_DEFAULTS.sweepBatches - 1) report.more = true
      }
      const tokens = ctx.tokens
      if (tokens.deleteExpired) {
        for (let i = 0; i < WORK_DEFAULTS.sweepBatches; i++) {
          const n = await fromStorage(() => tokens.deleteExpired?.(now, batch) ?? Promise.resolve(0))
          if (n.isErr()) return n.andThen(() => ok(null as never))
          swept.oneTimeTokens += n.value
          if (n.value < batch) break
          if (i === WORK_DEFAULTS.sweepBatches - 1) report.more = true
        }
      }
    }
    return ok({ kind: 'pendingWorkRan', ...report, swept, warnings })
  }

  return { runPendingWork }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}
