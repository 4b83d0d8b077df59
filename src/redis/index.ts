/**
 * `ssoflow/redis`: pipeline-state and one-time-token storage in Redis, for deployments with many
 * app instances. Native TTL; create-if-absent, compare-and-set and consume-once are single Lua
 * scripts, so they are atomic on the server.
 *
 * @module ssoflow/redis
 */
import { type Clock, systemClock } from '../ports/clock.js'
import {
  type OneTimeTokenRecord,
  type OneTimeTokenStore,
  type PipelineStateStore,
  StorageConflictError,
  type StoredPipelineState,
} from '../ports/storage.js'

/**
 * The part of an ioredis client (`Redis` or `Cluster`) the store uses. Any client with these two
 * methods works.
 * @group Redis
 */
export interface RedisLike {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>
  scan(
    cursor: string,
    patternToken: 'MATCH',
    pattern: string,
    countToken: 'COUNT',
    count: number,
  ): Promise<[cursor: string, elements: string[]]>
}

/**
 * Options of {@link createRedisStateStore}.
 * @group Redis
 */
export interface RedisStateStoreOptions {
  /** Prefix of every key, e.g. `myapp:sso:`. @defaultValue 'ssoflow:' */
  readonly prefix?: string | undefined
  /**
   * Clock for expiry. TTLs are set relative to `clock.now()` (so a test clock works) and every
   * read also checks the stored expiry against it. @defaultValue system clock
   */
  readonly clock?: Clock | undefined
}

/**
 * Pipeline states and one-time tokens in Redis. Pass them to `createAuthPipeline({ states,
 * tokens })`.
 * @group Redis
 */
export interface RedisStateStore {
  readonly pipelineStates: PipelineStateStore
  readonly oneTimeTokens: OneTimeTokenStore
}

// KEYS[1] = key; ARGV: fields..., ttl ms. Creates the hash iff the key is absent.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #ARGV
for i = 1, n - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[n])
return 1
`
// KEYS[1]; ARGV: now ms. Returns {version, body, expiresAt} of a live state, or nil.
const LOAD = `
local v = redis.call('HMGET', KEYS[1], 'version', 'body', 'expiresAt')
if not v[1] then return nil end
if tonumber(v[3]) <= tonumber(ARGV[1]) then return nil end
return v
`
// KEYS[1]; ARGV: expected version, now ms, next version, body, expiresAt ms, ttl ms.
const CAS = `
local v = redis.call('HMGET', KEYS[1], 'version', 'expiresAt')
if not v[1] then return 0 end
if tonumber(v[1]) ~= tonumber(ARGV[1]) then return 0 end
if tonumber(v[2]) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[3], 'body', ARGV[4], 'expiresAt', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`
// KEYS[1]; ARGV: purpose, now ms, consume (1) or peek (0). Returns {payload, expiresAt} or nil.
const TOKEN = `
local v = redis.call('HMGET', KEYS[1], 'purpose', 'payload', 'expiresAt')
if not v[1] then return nil end
if v[1] ~= ARGV[1] then return nil end
if tonumber(v[3]) <= tonumber(ARGV[2]) then return nil end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
return {v[2], v[3]}
`
// KEYS[1]; ARGV: now ms. Deletes the key iff it holds an expired entry.
const SWEEP = `
local e = redis.call('HGET', KEYS[1], 'expiresAt')
if e and tonumber(e) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
`
// KEYS[1]. Deletes the key (no-op when absent).
const DELETE = `return redis.call('DEL', KEYS[1])`

/** Escapes glob metacharacters of a key prefix for SCAN MATCH. */
function globEscape(text: string): string {
  return text.replace(/[\\*?[\]]/g, (c) => `\\${c}`)
}

/**
 * Creates the Redis-backed pipeline-state and one-time-token stores.
 *
 * Keys: `<prefix>ps:<id>` (hash: version, body, expiresAt) and `<prefix>ott:<hash>` (hash:
 * purpose, payload, expiresAt), each with a native TTL (`PEXPIRE`) equal to the time left until
 * `expiresAt`. Every operation is one script on one key, so it is atomic and Redis-Cluster safe.
 * `deleteExpired` is a SCAN over the state keys; with native TTLs it rarely finds anything.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createAuthPipeline } from 'ssoflow'
 * import { createRedisStateStore } from 'ssoflow/redis'
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
 * const { pipelineStates, oneTimeTokens } = createRedisStateStore(redis, { prefix: 'app:sso:' })
 * const sso = createAuthPipeline({ ...ports, providers: {}, secret, urls, states: pipelineStates, tokens: oneTimeTokens })
 * ```
 * @group Redis
 */
export function createRedisStateStore(redis: RedisLike, options: RedisStateStoreOptions = {}): RedisStateStore {
  const prefix = options.prefix ?? 'ssoflow:'
  const clock = options.clock ?? systemClock
  const stateKey = (id: string) => `${prefix}ps:${id}`
  const tokenKey = (hash: string) => `${prefix}ott:${hash}`
  const ttl = (expiresAt: Date, now: number) => Math.max(1, expiresAt.getTime() - now)

  const pipelineStates: PipelineStateStore = {
    async create(state) {
      const now = clock.now().getTime()
      const created = await redis.eval(
        CREATE,
        1,
        stateKey(state.id),
        'version',
        state.version,
        'body',
        state.body,
        'expiresAt',
        state.expiresAt.getTime(),
        ttl(state.expiresAt, now),
      )
      if (Number(created) !== 1) throw new StorageConflictError('pipeline_state.id')
    },
    async load(id) {
      const row = (await redis.eval(LOAD, 1, stateKey(id), clock.now().getTime())) as [string, string, string] | null
      if (!row) return null
      const state: StoredPipelineState = { id, version: Number(row[0]), body: String(row[1]), expiresAt: new Date(Number(row[2])) }
      return state
    },
    async compareAndSet(id, expectedVersion, next) {
      if (next.id !== id || next.version !== expectedVersion + 1) {
        throw new TypeError('compareAndSet: next must have the same id and version expectedVersion + 1')
      }
      const now = clock.now().getTime()
      const swapped = await redis.eval(
        CAS,
        1,
        stateKey(id),
        expectedVersion,
        now,
        next.version,
        next.body,
        next.expiresAt.getTime(),
        ttl(next.expiresAt, now),
      )
      return Number(swapped) === 1
    },
    async delete(id) {
      await redis.eval(DELETE, 1, stateKey(id))
    },
    async deleteExpired(now, limit) {
      // Bounded like the SQL stores' sweeps: stop once `limit` expired states are gone.
      const max = limit ?? Number.POSITIVE_INFINITY
      let cursor = '0'
      let deleted = 0
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}ps:*`, 'COUNT', 500)
        cursor = next
        for (const key of keys) {
          if (deleted >= max) return deleted
          deleted += Number(await redis.eval(SWEEP, 1, key, now.getTime()))
        }
      } while (cursor !== '0')
      return deleted
    },
  }

  async function token(hash: string, purpose: string, now: Date, consume: boolean): Promise<OneTimeTokenRecord | null> {
    const row = (await redis.eval(TOKEN, 1, tokenKey(hash), purpose, now.getTime(), consume ? '1' : '0')) as [string, string] | null
    if (!row) return null
    return { hash, purpose, payload: String(row[0]), expiresAt: new Date(Number(row[1])) }
  }

  const oneTimeTokens: OneTimeTokenStore = {
    async create(record) {
      const now = clock.now().getTime()
      const created = await redis.eval(
        CREATE,
        1,
        tokenKey(record.hash),
        'purpose',
        record.purpose,
        'payload',
        record.payload,
        'expiresAt',
        record.expiresAt.getTime(),
        ttl(record.expiresAt, now),
      )
      if (Number(created) !== 1) throw new StorageConflictError('one_time_token.hash')
    },
    consume: (hash, purpose, now) => token(hash, purpose, now, true),
    peek: (hash, purpose, now) => token(hash, purpose, now, false),
  }

  return { pipelineStates, oneTimeTokens }
}
