/**
 * The normalized-email table (`<prefix>user_emails`) kept in step with a host-owned users table:
 * a backfill for the users that existed before ssoflow, and the hook to call when the host
 * changes a user's address.
 *
 * @module
 */
import type { Kysely } from 'kysely'
import { normalizeEmail } from '../model/email.js'
import { type KyselySchemaOptions, resolveSchema } from './schema.js'

// biome-ignore lint/suspicious/noExplicitAny: the tables are named at run time
type Db = Kysely<any>
type Row = Record<string, unknown>

/**
 * Whether an address counts as verified (the engine offers email-proven account linking only
 * for verified addresses). Default `false`: an unverified address is matched, but proven by the
 * verification mail only.
 * @group Kysely
 */
export type AddressVerified = boolean | ((user: { readonly id: string; readonly email: string }) => boolean)

/**
 * Options of {@link backfillUserEmails}.
 * @group Kysely
 */
export interface BackfillUserEmailsOptions {
  /** Rows per batch (one read and at most one insert each). @defaultValue 500 */
  readonly batchSize?: number | undefined
  /** @defaultValue false */
  readonly isVerified?: AddressVerified | undefined
}

/**
 * What {@link backfillUserEmails} did.
 * @group Kysely
 */
export interface BackfillUserEmailsResult {
  /** Users read. */
  readonly scanned: number
  /** Primary address rows inserted (users that had none for their current address). */
  readonly inserted: number
}

function verified(option: AddressVerified | undefined, user: { id: string; email: string }): boolean {
  return typeof option === 'function' ? option(user) : option === true
}

/**
 * Inserts the missing primary address row of every user of the (host's) users table, in id
 * order and in batches, so that `findUsersByEmail` finds the users that existed before ssoflow.
 * Idempotent and resumable: users that already have a row for their normalized address are
 * skipped, so it can run again after an interrupted run or on every deploy. Users whose address
 * is empty are skipped. Run it after `migrateSsoflow`, with the same naming options.
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely'
 * import pg from 'pg'
 * import { backfillUserEmails } from 'ssoflow/kysely'
 *
 * const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool() }) })
 * const naming = { dialect: 'postgres', tables: { users: { table: 'accounts' } } } as const
 * const { scanned, inserted } = await backfillUserEmails(db, naming, { isVerified: true })
 * console.log(`${inserted} of ${scanned} users got their address row`)
 * ```
 * @group Kysely
 */
export async function backfillUserEmails<DB>(
  database: Kysely<DB>,
  naming: KyselySchemaOptions,
  options: BackfillUserEmailsOptions = {},
): Promise<BackfillUserEmailsResult> {
  const db = database as unknown as Db
  const s = resolveSchema(naming)
  const U = s.users.columns
  const batchSize = options.batchSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError('batchSize must be a positive integer')
  const bool = (v: boolean): boolean | number => (s.dialect === 'postgres' ? v : v ? 1 : 0)
  let after: string | null = null
  let scanned = 0
  let inserted = 0
  for (;;) {
    let query = db.selectFrom(s.users.table).select([`${U.id} as id`, `${U.email} as email`])
    if (after !== null) query = query.where(U.id, '>', after)
    const users = (await query.orderBy(U.id).limit(batchSize).execute()) as Row[]
    if (users.length === 0) break
    scanned += users.length
    after = String(users[users.length - 1]?.id)
    const wanted = users
      .map((u) => ({ id: String(u.id), email: String(u.email ?? '') }))
      .filter((u) => u.email.trim() !== '')
      .map((u) => ({ ...u, normalized: normalizeEmail(u.email) }))
    if (wanted.length === 0) continue
    const existing = (await db
      .selectFrom(s.userEmails)
      .select(['user_id', 'email_normalized'])
      .where(
        'user_id',
        'in',
        wanted.map((u) => u.id),
      )
      .execute()) as Row[]
    const have = new Set(existing.map((r) => `${String(r.user_id)}\u0000${String(r.email_normalized)}`))
    const missing = wanted.filter((u) => !have.has(`${u.id}\u0000${u.normalized}`))
    if (missing.length === 0) continue
    await db
      .insertInto(s.userEmails)
      .values(
        missing.map((u) => ({
          user_id: u.id,
          email: u.email,
          email_normalized: u.normalized,
          is_verified: bool(verified(options.isVerified, u)),
          is_primary: bool(true),
        })),
      )
      .execute()
    inserted += missing.length
  }
  return { scanned, inserted }
}

/**
 * The update hook: call it whenever the host changes a user's address in its own users table,
 * in the same transaction (pass the transaction as `db`), so the normalized-email table follows.
 * It deletes the user's primary address rows for other addresses (an old address must not keep
 * matching the account: it may belong to someone else now) and writes the new one as primary
 * (an existing secondary row for it is promoted). Creating users through ssoflow needs no call.
 *
 * @example
 * ```ts
 * import type { Kysely } from 'kysely'
 * import { syncUserEmail } from 'ssoflow/kysely'
 *
 * declare const db: Kysely<unknown>
 * const naming = { dialect: 'postgres', tables: { users: { table: 'accounts' } } } as const
 * await db.transaction().execute(async (trx) => {
 *   // ... the host's own `update accounts set email = ...` on trx ...
 *   await syncUserEmail(trx, naming, { id: 'u1', email: 'new@example.com' }, { isVerified: true })
 * })
 * ```
 * @group Kysely
 */
export async function syncUserEmail<DB>(
  database: Kysely<DB>,
  naming: KyselySchemaOptions,
  user: { readonly id: string; readonly email: string },
  options: { readonly isVerified?: AddressVerified | undefined } = {},
): Promise<void> {
  const db = database as unknown as Db
  const s = resolveSchema(naming)
  const bool = (v: boolean): boolean | number => (s.dialect === 'postgres' ? v : v ? 1 : 0)
  const normalized = normalizeEmail(user.email)
  await db
    .deleteFrom(s.userEmails)
    .where('user_id', '=', user.id)
    .where('is_primary', '=', bool(true))
    .where('email_normalized', '<>', normalized)
    .execute()
  const isVerified = bool(verified(options.isVerified, user))
  const updated = await db
    .updateTable(s.userEmails)
    .set({ email: user.email, is_primary: bool(true), is_verified: isVerified })
    .where('user_id', '=', user.id)
    .where('email_normalized', '=', normalized)
    .executeTakeFirst()
  if (Number(updated.numUpdatedRows) > 0) return
  await db
    .insertInto(s.userEmails)
    .values({ user_id: user.id, email: user.email, email_normalized: normalized, is_verified: isVerified, is_primary: bool(true) })
    .execute()
}
