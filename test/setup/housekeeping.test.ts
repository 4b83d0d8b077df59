// Housekeeping (issue 16 item 5): the drain that sends background mail also sweeps expired
// pipeline states and one-time tokens (verification links, rate-limit rows, SAML single-use
// response markers) in bounded batches; live rows are never touched; a call that stopped at its
// bound says `more`. Memory, PGlite, SQLite, and PostgreSQL / MariaDB with their URLs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthPipeline } from '../../src/engine/create.js'
import { SINGLE_USE_PURPOSE } from '../../src/engine/single-use.js'
import type { OneTimeTokenStore } from '../../src/ports/storage.js'
import { reportSkip } from '../helpers/databases.js'
import { BACKENDS, makeWorld, type OpenBackend, type World } from '../helpers/worlds.js'

const EXPIRED = 25
const hash = (prefix: string, i: number) => `${prefix}-${i}`.padStart(64, '0')

async function fill(w: World, round = 0): Promise<void> {
  const t0 = w.clock.now().getTime()
  for (let i = 0; i < EXPIRED; i++) {
    await w.storage.pipelineStates.create({ id: `old-${round}-${i}`, version: 1, body: 'x', expiresAt: new Date(t0 + 1_000) })
    const purpose = i % 3 === 0 ? SINGLE_USE_PURPOSE : i % 3 === 1 ? 'account-verification' : 'account-verification-sends'
    await w.storage.oneTimeTokens.create({ hash: hash(`a${round}`, i), purpose, payload: '{}', expiresAt: new Date(t0 + 1_000) })
  }
  await w.storage.pipelineStates.create({ id: `live-${round}`, version: 1, body: 'x', expiresAt: new Date(t0 + 3_600_000) })
  await w.storage.oneTimeTokens.create({
    hash: hash(`b${round}`, 0),
    purpose: SINGLE_USE_PURPOSE,
    payload: '{}',
    expiresAt: new Date(t0 + 3_600_000),
  })
  w.clock.advance(1_000)
}

for (const backend of BACKENDS) {
  if (!backend.enabled) {
    reportSkip(`housekeeping on ${backend.name}`, backend.variable ?? '')
    continue
  }
  describe(`housekeeping on ${backend.name}`, { timeout: 120_000 }, () => {
    let open: OpenBackend
    beforeAll(async () => {
      open = await backend.open()
    })
    afterAll(async () => {
      await open?.close()
    })

    it('sweeps expired states and tokens (SAML single-use markers included) in bounded batches, never a live row', async () => {
      const w = await makeWorld(open)
      try {
        await fill(w)
        // At most 10 batches per table per call: 2 x 10 = 20 of the 25, and `more`.
        const first = (await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()
        expect(first.swept).toEqual({ pipelineStates: 20, oneTimeTokens: 20 })
        expect(first.more).toBe(true)
        const second = (await w.sso.runPendingWork({ sweepBatch: 2 }))._unsafeUnwrap()
        expect(second.swept).toEqual({ pipelineStates: 5, oneTimeTokens: 5 })
        expect(second.more).toBe(false)
        const snap = await w.snapshot()
        expect(snap.pipelineStates.map((s) => s.id)).toEqual(['live-0'])
        expect(snap.oneTimeTokens.map((t) => t.hash)).toEqual([hash('b0', 0)])
        expect((await w.sso.runPendingWork())._unsafeUnwrap().swept).toEqual({ pipelineStates: 0, oneTimeTokens: 0 })
        // `sweep: false` leaves expired rows for another schedule.
        await fill(w, 1)
        expect((await w.sso.runPendingWork({ sweep: false }))._unsafeUnwrap().swept).toEqual({ pipelineStates: 0, oneTimeTokens: 0 })
        expect((await w.snapshot()).pipelineStates).toHaveLength(EXPIRED + 2)
      } finally {
        await w.drop()
      }
    })

    it('a token store without deleteExpired (Redis TTLs) is skipped, states are still swept', async () => {
      const w = await makeWorld(open)
      try {
        await fill(w)
        const base = w.storage.oneTimeTokens
        const expiring: OneTimeTokenStore = {
          create: (t) => base.create(t),
          consume: (h, p, n) => base.consume(h, p, n),
          peek: (h, p, n) => base.peek(h, p, n),
        }
        const sso = createAuthPipeline({ ...w.options, tokens: expiring })
        const r = (await sso.runPendingWork())._unsafeUnwrap()
        expect(r.swept).toEqual({ pipelineStates: EXPIRED, oneTimeTokens: 0 })
        expect((await w.snapshot()).oneTimeTokens).toHaveLength(EXPIRED + 1)
      } finally {
        await w.drop()
      }
    })
  })
}
