/**
 * From BullMQ (Redis): a job scheduler that repeats every minute, worked by any app instance
 * that runs `startSsoflowWorker`. BullMQ is the host's dependency, not ssoflow's.
 */
import { Queue, Worker } from 'bullmq'
import type { AuthPipeline } from '../../src/index.js'
import { drain } from './drain.js'

const QUEUE = 'ssoflow-pending-work'

export async function startSsoflowWorker(sso: AuthPipeline, redisUrl: string): Promise<{ close(): Promise<void> }> {
  const url = new URL(redisUrl)
  const connection = { host: url.hostname, port: Number(url.port || 6379) }
  const queue = new Queue(QUEUE, { connection })
  // One scheduler id: every instance upserts the same schedule, BullMQ keeps one.
  await queue.upsertJobScheduler('ssoflow-drain-every-minute', { every: 60_000 })
  const worker = new Worker(
    QUEUE,
    async () => {
      await drain(sso)
    },
    { connection, concurrency: 1 },
  )
  worker.on('failed', (_job, error) => console.warn('ssoflow drain job failed', error))
  return {
    async close() {
      await worker.close()
      await queue.close()
    },
  }
}
