import { describe, expect, it } from 'vitest'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { AuditEntry } from '../../src/model/records.js'
import { createRecordingAudit, fixedClock, makeOrganization } from '../../src/testing/index.js'

const entry = (id: string): AuditEntry => ({
  id,
  event: 'sso.enable',
  actorUserId: 'u1',
  organizationId: 'org-a',
  targetId: null,
  targetUserId: null,
  ip: '203.0.113.1',
  data: { provider: 'dummy' },
  createdAt: fixedClock().now(),
})

describe('createRecordingAudit', () => {
  it('records every call and writes through to storage atomically with the transaction', async () => {
    const storage = createMemoryStorage()
    storage.seed({ organizations: [makeOrganization({ id: 'org-a' })] })
    const audit = createRecordingAudit()
    await storage.transaction((tx) => audit.record(entry('a-1'), tx))
    await expect(
      storage.transaction(async (tx) => {
        await audit.record(entry('a-2'), tx)
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    expect(audit.recorded.map((e) => e.id)).toEqual(['a-1', 'a-2'])
    expect(storage.snapshot().audit).toEqual([entry('a-1')])
  })

  it('forward: false records without touching storage', async () => {
    const storage = createMemoryStorage()
    const audit = createRecordingAudit({ forward: false })
    await storage.transaction((tx) => audit.record(entry('a-1'), tx))
    expect(audit.recorded).toEqual([entry('a-1')])
    expect(storage.snapshot().audit).toEqual([])
  })

  it('failNext makes the next records throw, then recovers; clear empties the record', async () => {
    const storage = createMemoryStorage()
    const audit = createRecordingAudit()
    audit.failNext(2)
    for (const id of ['a-1', 'a-2']) {
      await expect(storage.transaction((tx) => audit.record(entry(id), tx))).rejects.toThrow(/injected/)
    }
    await storage.transaction((tx) => audit.record(entry('a-3'), tx))
    expect(audit.recorded.map((e) => e.id)).toEqual(['a-3'])
    expect(storage.snapshot().audit.map((e) => e.id)).toEqual(['a-3'])
    audit.clear()
    expect(audit.recorded).toEqual([])
  })

  it('keeps a copy: mutating the entry after the call does not change the record', async () => {
    const storage = createMemoryStorage()
    const audit = createRecordingAudit({ forward: false })
    const e = { ...entry('a-1'), data: { provider: 'dummy' } }
    await storage.transaction((tx) => audit.record(e, tx))
    e.data.provider = 'changed'
    expect(audit.recorded[0]?.data).toEqual({ provider: 'dummy' })
  })
})
