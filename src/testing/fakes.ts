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

/** @group Testing */
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

/** @group Testing */
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

/** @group Testing */
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
