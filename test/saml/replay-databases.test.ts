/**
 * Threat 40 on real SQL: 20 concurrent posts of one signed assertion, forced to reach the replay
 * cache together by a barrier on the one-time token store (no sleeps). Into one pipeline, and as
 * 20 unsolicited responses (IdP-initiated on): exactly one success, the rest ASSERTION_REPLAYED
 * (or STATE_CONFLICT for the pipeline's own compare-and-set), one replay-cache row. Runs on PGlite
 * and SQLite always, PostgreSQL (DATABASE_URL) and MariaDB (MYSQL_URL) when set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OneTimeTokenRecord } from '../../src/ports/storage.js'
import { fixedClock } from '../../src/testing/index.js'
import { DATABASES, freshStorage, reportSkip, type TestDatabase } from '../helpers/databases.js'
import { b64, TestIdp } from '../helpers/saml-idp.js'
import { ACME, ACS, acs, beginLogin, oktaAttributes, post, SP_ENTITY_ID, seedRows, world } from './harness.js'

const N = 20
const ALICE = { nameId: 'alice@acme.test', attributes: oktaAttributes('okta-alice', 'alice@acme.test') }

/** Makes the store's `create` wait until `n` callers are inside it, then lets them all write. */
function barrierOnCreate(store: { create(token: OneTimeTokenRecord): Promise<void> }, n: number): void {
  const create = store.create.bind(store)
  let arrived = 0
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  store.create = async (token) => {
    arrived += 1
    if (arrived >= n) open()
    await gate
    return create(token)
  }
}

for (const target of DATABASES) {
  if (!target.enabled) reportSkip(`saml replay (${target.name})`, target.variable ?? '')
  describe.skipIf(!target.enabled)(`SAML replay cache on kysely/${target.name}`, () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await target.open()
    })
    afterAll(async () => {
      await database?.close()
    })

    async function setup(config: { idpInitiated?: boolean } = {}) {
      const clock = fixedClock(new Date())
      const idp = new TestIdp()
      const fresh = await freshStorage(database, { clock })
      await fresh.storage.seed(seedRows(idp, config))
      const w = world({ idp, clock, storage: fresh.storage, config })
      return { ...fresh, w }
    }

    it(`${N} concurrent posts of one response to its pipeline: one confirmation page, the others refused, one cache row`, async () => {
      const { w, storage, drop } = await setup()
      try {
        const session = { id: 'sess-race' }
        const { handle, request } = await beginLogin(w, session)
        const xml = await w.idp.respond(request, { nameId: 'nina@acme.test', attributes: oktaAttributes('okta-nina', 'nina@acme.test') })
        barrierOnCreate(storage.oneTimeTokens, N)
        const results = await Promise.all(Array.from({ length: N }, () => acs(w, handle, session, xml, request.relayState)))
        const outcomes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
        expect(outcomes.filter((o) => o === 'confirmationRequired')).toHaveLength(1)
        expect(outcomes.filter((o) => o === 'ASSERTION_REPLAYED')).toHaveLength(N - 1)
        const snap = await storage.snapshot()
        expect(snap.oneTimeTokens.filter((t) => t.purpose === 'single-use-response')).toHaveLength(1)
        expect(snap.identities.filter((i) => i.ident === 'okta-nina')).toHaveLength(0)
      } finally {
        await drop()
      }
    })

    it(`${N} concurrent unsolicited posts of one response (IdP-initiated on): one sign-in, ${N - 1} ASSERTION_REPLAYED`, async () => {
      const { w, storage, drop } = await setup({ idpInitiated: true })
      try {
        const xml = await w.idp.respond(null, { ...ALICE, acsUrl: ACS, spEntityId: SP_ENTITY_ID })
        const before = await storage.snapshot()
        barrierOnCreate(storage.oneTimeTokens, N)
        const results = await Promise.all(
          Array.from({ length: N }, (_, i) =>
            w.sso.beginUnsolicitedLogin({ organizationId: ACME, session: { id: `sess-${i}` }, request: post({ SAMLResponse: b64(xml) }) }),
          ),
        )
        const outcomes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
        expect(outcomes.filter((o) => o === 'signedIn')).toHaveLength(1)
        expect(outcomes.filter((o) => o === 'ASSERTION_REPLAYED')).toHaveLength(N - 1)
        const after = await storage.snapshot()
        expect(after.oneTimeTokens.filter((t) => t.purpose === 'single-use-response')).toHaveLength(1)
        expect(after.pipelineStates).toHaveLength(before.pipelineStates.length + 1)
        expect(after.users).toEqual(before.users)
        expect(after.members.map((m) => m.id)).toEqual(before.members.map((m) => m.id))
      } finally {
        await drop()
      }
    })
  })
}
