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

// The random part of a ULID is 16 characters of 5 bits each. `ulid()` without a generator asks
// WebCrypto once per character (16 `getRandomValues` calls, about 60 µs per id on Node 20); here
// the bytes come from a pool refilled by one call per 256 bytes. Each byte is handed out once
// (then zeroed) and maps to one character as `floor(byte / 256 * 32)`: its top 5 bits, uniform.
const ID_POOL_BYTES = 256
let idPool = new Uint8Array(0)
let idPoolAt = 0
function pooledFraction(): number {
  if (idPoolAt >= idPool.byteLength) {
    idPool = crypto.getRandomValues(new Uint8Array(ID_POOL_BYTES))
    idPoolAt = 0
  }
  const b = idPool[idPoolAt] as number
  idPool[idPoolAt++] = 0
  return b / 256
}

/** ULID ids (time-sortable, 80 bits of randomness). @group Ports */
export const ulidIds: IdGenerator = { next: () => ulid(undefined, pooledFraction) }

/**
 * Optional structured logger. Receives no secrets.
 * @group Ports
 */
export interface Logger {
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void
  info?(message: string, fields?: Readonly<Record<string, unknown>>): void
}
