import type { AuditEntry } from '../model/records.js'
import type { AuditPort } from '../ports/audit.js'
import type { Clock, IdGenerator } from '../ports/clock.js'
import type { MailerPort, MailMessage } from '../ports/mailer.js'
import type { Signal, SignalPort } from '../ports/signals.js'

/**
 * A mailer that records messages. Drops a second message with an idempotency key it has seen
 * (as a real mailer should). `failNext(n)` makes the next n sends throw.
 * @group Testing
 */
export interface RecordingMailer extends MailerPort {
  readonly sent: MailMessage[]
  /** Messages dropped as duplicates of an idempotency key already sent. */
  readonly duplicates: MailMessage[]
  failNext(count?: number): void
  clear(): void
}

/**
 * @example
 * ```ts
 * import { expect, it } from 'vitest'
 * import { createAuthPipeline } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { createRecordingMailer, createRecordingSignals, dummyProvider, makeMember, makeOrganization, makeProvider, makeUser, sentryStyleUrls } from 'ssoflow/testing'
 *
 * it('mails the unlinked members a link request', async () => {
 *   const storage = createMemoryStorage()
 *   storage.seed({
 *     organizations: [makeOrganization({ id: 'org-acme', name: 'Acme' })],
 *     users: [makeUser({ id: 'u-ada' }), makeUser({ id: 'u-bob' })],
 *     members: [makeMember({ id: 'm-ada', organizationId: 'org-acme', userId: 'u-ada', role: 'owner' }), makeMember({ id: 'm-bob', organizationId: 'org-acme', userId: 'u-bob' })],
 *     providers: [makeProvider({ id: 'ap-acme', organizationId: 'org-acme' })],
 *   })
 *   const mailer = createRecordingMailer()
 *   const sso = createAuthPipeline({ storage, mailer, signals: createRecordingSignals(), providers: { dummy: dummyProvider() }, secret: 'a test secret of at least thirty-two bytes', urls: sentryStyleUrls('https://app.example') })
 *   await sso.resendLinkRequests({ organizationId: 'org-acme', session: { id: 's-ada', userId: 'u-ada' } })
 *   await sso.runPendingWork()
 *   expect(mailer.sent.map((m) => [m.template, m.to])).toEqual([['ssoLinkRequest', 'u-ada@example.com'], ['ssoLinkRequest', 'u-bob@example.com']])
 * })
 * ```
 * @group Testing
 */
export function createRecordingMailer(): RecordingMailer {
  const sent: MailMessage[] = []
  const duplicates: MailMessage[] = []
  const keys = new Set<string>()
  let failures = 0
  return {
    sent,
    duplicates,
    async send(message) {
      if (failures > 0) {
        failures--
        throw new Error('mailer failure (injected)')
      }
      if (keys.has(message.idempotencyKey)) {
        duplicates.push(message)
        return
      }
      keys.add(message.idempotencyKey)
      sent.push(message)
    },
    failNext(count = 1) {
      failures = count
    },
    clear() {
      sent.length = 0
      duplicates.length = 0
      keys.clear()
    },
  }
}

/**
 * A signal bus that records signals. `failNext(n)` makes the next n emits throw.
 * @group Testing
 */
export interface RecordingSignals extends SignalPort {
  readonly emitted: Signal[]
  failNext(count?: number): void
  clear(): void
}

/**
 * @example
 * ```ts
 * import { expect, it } from 'vitest'
 * import { createAuthPipeline } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { createRecordingMailer, createRecordingSignals, DUMMY_FORM_VIEW, dummyProvider, makeOrganization, makeProvider, sentryStyleUrls } from 'ssoflow/testing'
 *
 * it('a just-in-time login signs up the user and reports it', async () => {
 *   const storage = createMemoryStorage()
 *   storage.seed({ organizations: [makeOrganization({ id: 'org-acme' })], providers: [makeProvider({ id: 'ap-acme', organizationId: 'org-acme' })] })
 *   const signals = createRecordingSignals()
 *   const sso = createAuthPipeline({ storage, mailer: createRecordingMailer(), signals, providers: { dummy: dummyProvider() }, secret: 'a test secret of at least thirty-two bytes', urls: sentryStyleUrls('https://app.example'), policy: { newUser: 'create' } })
 *   const session = { id: 's-1' }
 *   const form = (await sso.beginLogin({ organizationId: 'org-acme', session }))._unsafeUnwrap()
 *   expect(form.kind === 'render' && form.view).toBe(DUMMY_FORM_VIEW)
 *   const done = await sso.advance({ handle: 'handle' in form ? form.handle : '', session, request: { method: 'POST', query: {}, form: { id: 'idp-ada', email: 'ada@acme.example' } } })
 *   expect(done._unsafeUnwrap().kind).toBe('signedIn')
 *   expect(signals.emitted.map((s) => s.name)).toEqual(['user_signup'])
 * })
 * ```
 * @group Testing
 */
export function createRecordingSignals(): RecordingSignals {
  const emitted: Signal[] = []
  let failures = 0
  return {
    emitted,
    async emit(signal) {
      if (failures > 0) {
        failures--
        throw new Error('signal failure (injected)')
      }
      emitted.push(signal)
    },
    failNext(count = 1) {
      failures = count
    },
    clear() {
      emitted.length = 0
    },
  }
}

/**
 * A clock that only moves when told.
 * @group Testing
 */
export interface FixedClock extends Clock {
  set(iso: string | Date): void
  advance(ms: number): void
}

/**
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { createMemoryStorage } from 'ssoflow/memory'
 * import { fixedClock } from 'ssoflow/testing'
 *
 * const clock = fixedClock('2026-03-01T10:00:00.000Z')
 * const sso = createAuthPipeline({ ...ports, storage: createMemoryStorage({ clock }), clock, providers: {}, secret, urls })
 * clock.advance(3600_000 + 1) // past the pipeline state's TTL: a pipeline begun before now ends with STATE_EXPIRED
 * clock.now().toISOString() // '2026-03-01T11:00:00.001Z'
 * ```
 * @group Testing
 */
export function fixedClock(start: string | Date = '2026-01-01T00:00:00.000Z'): FixedClock {
  let t = new Date(start).getTime()
  return {
    now: () => new Date(t),
    set(iso) {
      t = new Date(iso).getTime()
    },
    advance(ms) {
      t += ms
    },
  }
}

/**
 * Ids `prefix-000001`, `prefix-000002`, ... (sortable).
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { sequentialIds } from 'ssoflow/testing'
 *
 * const ids = sequentialIds('t')
 * ids.next() // 't-000001'
 * ids.next() // 't-000002'
 * const sso = createAuthPipeline({ ...ports, ids: sequentialIds(), providers: {}, secret, urls }) // predictable record and audit ids
 * ```
 * @group Testing
 */
export function sequentialIds(prefix = 'id'): IdGenerator {
  let n = 0
  return { next: () => `${prefix}-${String(++n).padStart(6, '0')}` }
}

/**
 * An audit port that records every call. By default it also writes through
 * `tx.appendAudit`, so the storage's audit table commits or rolls back with the flow, exactly
 * like the default port; `recorded` keeps every call, including entries of transactions that
 * later rolled back. `failNext(n)` makes the next n records throw (which rolls the flow back).
 * @group Testing
 */
export interface RecordingAudit extends AuditPort {
  /** Every entry passed to `record`, in call order (copies). */
  readonly recorded: AuditEntry[]
  failNext(count?: number): void
  clear(): void
}

/**
 * Creates a {@link RecordingAudit}. `forward: false` records without writing to storage.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { createRecordingAudit } from 'ssoflow/testing'
 *
 * const audit = createRecordingAudit() // records every entry and still writes it through the transaction
 * const sso = createAuthPipeline({ ...ports, audit, providers: {}, secret, urls })
 * await sso.disableProvider({ organizationId, session })
 * audit.recorded.map((entry) => entry.event) // ['sso.disable'] when the session's user may manage SSO
 * audit.failNext() // the next entry throws: the flow rolls back (test your error path)
 * ```
 * @group Testing
 */
export function createRecordingAudit(options: { readonly forward?: boolean | undefined } = {}): RecordingAudit {
  const recorded: AuditEntry[] = []
  let failures = 0
  return {
    recorded,
    async record(entry, tx) {
      if (failures > 0) {
        failures--
        throw new Error('audit failure (injected)')
      }
      recorded.push(structuredClone(entry))
      if (options.forward !== false) await tx.appendAudit(entry)
    },
    failNext(count = 1) {
      failures = count
    },
    clear() {
      recorded.length = 0
    },
  }
}
