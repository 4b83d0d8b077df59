/**
 * Running ssoflow's background work: the one function every scheduler below calls.
 *
 * `runPendingWork` sends queued mail (link requests after a setup or a resend, notices after a
 * disable) a page of members at a time, then sweeps expired pipeline states and one-time tokens
 * in bounded batches. Several workers may run it at once (each item is claimed by one of them);
 * call it again at once while it reports `more`.
 */
import type { AuthPipeline, PendingWorkReport } from '../../src/index.js'

/** Drains until nothing is left or `maxRounds` calls ran; returns the totals. Throws on a storage failure. */
export async function drain(sso: AuthPipeline, maxRounds = 50): Promise<Omit<PendingWorkReport, 'kind' | 'more' | 'warnings'>> {
  const total = { pages: 0, mailsSent: 0, mailsFailed: 0, completed: 0, swept: { pipelineStates: 0, oneTimeTokens: 0 } }
  for (let round = 0; round < maxRounds; round++) {
    const result = await sso.runPendingWork({ limit: 20 })
    if (result.isErr()) throw new Error(`ssoflow runPendingWork failed: ${result.error.code}`)
    const r = result.value
    total.pages += r.pages
    total.mailsSent += r.mailsSent
    total.mailsFailed += r.mailsFailed
    total.completed += r.completed
    total.swept.pipelineStates += r.swept.pipelineStates
    total.swept.oneTimeTokens += r.swept.oneTimeTokens
    if (!r.more) break
  }
  return total
}
