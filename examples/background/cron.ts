/**
 * From cron: a one-shot script (`* * * * * node dist/drain-cron.js`, or a Kubernetes CronJob, a
 * systemd timer, a platform's scheduled task) that drains and exits. Overlapping runs are safe:
 * each work item is claimed by one worker at a time.
 *
 * Build your engine exactly as the app does (same storage, mailer and options) and call:
 */
import type { AuthPipeline } from '../../src/index.js'
import { drain } from './drain.js'

export async function cronMain(sso: AuthPipeline, close: () => Promise<void>): Promise<void> {
  try {
    const totals = await drain(sso)
    console.log(`ssoflow drain: ${totals.mailsSent} mails, ${totals.completed} items done, swept ${totals.swept.pipelineStates} states`)
  } finally {
    await close()
  }
}

/** In-process alternative for a single long-running app: a timer (unref'd so it never holds the process open). */
export function drainEvery(sso: AuthPipeline, ms = 60_000): () => void {
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    drain(sso)
      .catch((error: unknown) => console.warn('ssoflow drain failed', error))
      .finally(() => {
        running = false
      })
  }, ms)
  timer.unref()
  return () => clearInterval(timer)
}
