import { ulid } from 'ulid'

/** A clock. Inject a fixed one in tests. @group Ports */
export interface Clock {
  now(): Date
}

/** Generates record ids. Default: ULIDs. @group Ports */
export interface IdGenerator {
  next(): string
}

/** The system clock. @group Ports */
export const systemClock: Clock = { now: () => new Date() }

/** ULID ids (time-sortable, 80 bits of randomness). @group Ports */
export const ulidIds: IdGenerator = { next: () => ulid() }

/**
 * Optional structured logger. Receives no secrets.
 * @group Ports
 */
export interface Logger {
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void
  info?(message: string, fields?: Readonly<Record<string, unknown>>): void
}
