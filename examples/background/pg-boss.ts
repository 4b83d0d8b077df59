/**
 * From pg-boss (PostgreSQL): a scheduled job every minute, worked by any app instance that runs
 * `startSsoflowJobs`. pg-boss is the host's dependency, not ssoflow's.
 */
import PgBoss from 'pg-boss'
import type { AuthPipeline } from '../../src/index.js'
import { drain } from './drain.js'

const QUEUE = 'ssoflow-pending-work'

export async function startSsoflowJobs(sso: AuthPipeline, connectionString: string): Promise<PgBoss> {
  const boss = new PgBoss(connectionString)
  boss.on('error', (error) => console.warn('pg-boss', error))
  await boss.start()
  await boss.createQueue(QUEUE)
  // Every minute; pg-boss creates one job per minute across all instances.
  await boss.schedule(QUEUE, '* * * * *')
  await boss.work(QUEUE, async () => {
    await drain(sso)
  })
  return boss
}
