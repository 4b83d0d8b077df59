import { isStorageConflict, type OneTimeTokenStore, type StorageTx } from '../ports/storage.js'
import type { EngineContext } from './context.js'

/** The token store a transaction uses, and what to do when that transaction fails. */
export interface TxTokens {
  readonly store: OneTimeTokenStore
  /** After a failed transaction: puts back what was consumed, removes what was created. */
  restore(): Promise<void>
}

/**
 * One-time tokens for the transaction `tx`. When the tokens live in the storage and the adapter
 * offers `tx.oneTimeTokens`, they commit and roll back with the transaction. Otherwise (a
 * separate `tokens` store, e.g. Redis, or an adapter without it) every change is journaled and
 * undone by `restore()` when the transaction fails: a verification link consumed by a decision
 * that rolled back is live again (issue 12), and a link stored for a page that never went out
 * is gone.
 */
export function txTokens(ctx: EngineContext, tx: StorageTx): TxTokens {
  const inTx = tx.oneTimeTokens
  if (ctx.tokensInStorage && inTx) return { store: inTx, restore: async () => {} }
  const base = ctx.tokens
  const undo: (() => Promise<void>)[] = []
  return {
    store: {
      async create(token) {
        await base.create(token)
        undo.push(async () => {
          await base.consume(token.hash, token.purpose, new Date(0))
        })
      },
      async consume(hash, purpose, now) {
        const taken = await base.consume(hash, purpose, now)
        if (taken !== null) {
          undo.push(async () => {
            try {
              await base.create(taken)
            } catch (cause) {
              // Already back (the store rolled back with the transaction after all).
              if (!isStorageConflict(cause)) throw cause
            }
          })
        }
        return taken
      },
      peek: (hash, purpose, now) => base.peek(hash, purpose, now),
    },
    async restore() {
      for (const step of undo.splice(0).reverse()) {
        try {
          await step()
        } catch (cause) {
          ctx.logger?.warn('ssoflow: could not restore a one-time token after a failed transaction', {
            error: cause instanceof Error ? cause.message : String(cause),
          })
        }
      }
    },
  }
}
