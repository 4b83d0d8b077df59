// Section 9 of the threat catalog: denial of service and injection via IdP data (entries 55-57).
//
// Named by number elsewhere: 57 in test/login/new-user.test.ts (names in mail data) and
// test/security/s03-linking-proof.test.ts ("threat 7 / 57"). Hostile generators over every
// boundary (item 8 of issue 12) are in test/errors/fuzz.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JsonObject } from '../../src/model/identity.js'
import { LIMITS } from '../../src/model/limits.js'
import { makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { BACKENDS, type World as BackendWorld, makeWorld, type OpenBackend } from '../helpers/worlds.js'
import { expectNoWrites, finishErr, finishOk, ident, session, start, world } from '../login/harness.js'

/** A JSON object of `depth` nested levels. */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 }
  for (let i = 1; i < depth; i++) v = { n: v }
  return v
}

async function refusedBeforeStorage(identity: Parameters<typeof ident>[0]) {
  const w = world()
  const handle = await start(w)
  const before = w.storage.snapshot()
  const e = await finishErr(w, { handle, session: session(), identity: identity as never })
  expect(e.code).toBe('IDENTITY_INVALID')
  expectNoWrites(w, before)
  // the pipeline is still open: the visitor may retry with a sane identity
  expect(
    (await finishOk(w, { handle, session: session(), identity: ident({ id: 'ok', email: 'ok@corp.example' }), op: 'newuser' })).kind,
  ).toBe('signedIn')
}

async function accepted(identity: Parameters<typeof ident>[0]) {
  const w = world()
  const handle = await start(w)
  const r = await w.login.finishLogin({ handle, session: session(), identity: ident(identity), op: 'newuser' })
  if (r.isErr()) throw new Error(`${r.error.code} ${JSON.stringify(r.error.details)}`)
  return r.value
}

describe('threat 55: oversized or deeply nested attributes', () => {
  it('threat 55: the id at its limit passes, one over is IDENTITY_INVALID; U+0000 or a lone surrogate in the id is refused', async () => {
    expect((await accepted({ id: 'i'.repeat(LIMITS.id), email: 'a@corp.example' })).kind).toBe('signedIn')
    await refusedBeforeStorage({ id: 'i'.repeat(LIMITS.id + 1), email: 'a@corp.example' })
    for (const id of ['a\u0000b', 'a\ud800b']) await refusedBeforeStorage({ id, email: 'a@corp.example' })
  })

  it('threat 55: the email at its limit passes the size check, one over is IDENTITY_INVALID', async () => {
    const local = 'l'.repeat(64)
    const domainAt = (len: number) => {
      const labels: string[] = []
      let rest = len
      while (rest > 0) {
        const n = Math.min(63, rest - (labels.length > 0 ? 1 : 0))
        labels.push('d'.repeat(Math.max(1, n)))
        rest -= n + (labels.length > 1 ? 1 : 0)
      }
      return labels.join('.')
    }
    const over = `${local}@${domainAt(LIMITS.email - 64)}`
    expect(over.length).toBeGreaterThan(LIMITS.email)
    await refusedBeforeStorage({ id: 'x', email: over })
    expect((await accepted({ id: 'x', email: `${local}@corp.example` })).kind).toBe('signedIn')
  })

  it('threat 55: a name is truncated to its limit; past four times the limit it is IDENTITY_INVALID', async () => {
    await refusedBeforeStorage({ id: 'x', email: 'n@corp.example', name: 'N'.repeat(4 * LIMITS.name + 1) })
    const w = world()
    const out = await finishOk(w, {
      handle: await start(w),
      session: session(),
      identity: ident({ id: 'x', email: 'n@corp.example', name: 'N'.repeat(4 * LIMITS.name) }),
      op: 'newuser',
    })
    if (out.kind !== 'signedIn') throw new Error(out.kind)
    const user = w.storage.snapshot().users.find((u) => u.id === out.userId)
    expect([...(user?.name ?? '')].length).toBeLessThanOrEqual(LIMITS.name)
  })

  it('threat 55: data over the byte limit, deeper than the depth limit, or cyclic is IDENTITY_INVALID before storage', async () => {
    await refusedBeforeStorage({ id: 'x', email: 'a@corp.example', data: { blob: 'b'.repeat(LIMITS.dataBytes + 1) } })
    await refusedBeforeStorage({ id: 'x', email: 'a@corp.example', data: nested(LIMITS.dataDepth + 5) as JsonObject })
    const many: Record<string, number> = {}
    for (let i = 0; i < 20_000; i++) many[`k${i}`] = i
    await refusedBeforeStorage({ id: 'x', email: 'a@corp.example', data: many })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await refusedBeforeStorage({ id: 'x', email: 'a@corp.example', data: cyclic as never })
    // under the limits it is kept as given
    const fine = { groups: ['a', 'b'], depth: nested(LIMITS.dataDepth - 2) } as JsonObject
    const out = await accepted({ id: 'x', email: 'a@corp.example', data: fine })
    expect(out.kind).toBe('signedIn')
  })
})

describe('threat 56: pathological parsing', () => {
  it('threat 56: ReDoS-shaped addresses, ids and names are refused or accepted in linear time; no throw escapes', async () => {
    const shapes = [
      `${'a@'.repeat(5_000)}x`,
      `${'a.'.repeat(30_000)}@corp.example`,
      `a@${'b.'.repeat(30_000)}example`,
      `${'a'.repeat(100_000)}@corp.example`,
      `"${'\\"'.repeat(20_000)}"@corp.example`,
      `${'-'.repeat(50_000)}@${'-'.repeat(50_000)}`,
      `a@${'x-'.repeat(40_000)}.example`,
      `${'\u0301'.repeat(50_000)}@corp.example`,
    ]
    for (const shape of shapes) {
      for (const identity of [
        { id: 'x', email: shape },
        { id: shape, email: 'a@corp.example' },
        { id: 'x', email: 'a@corp.example', name: shape },
      ]) {
        const w = world({ users: [makeUser({ id: 'u', email: 'a@corp.example' })] })
        const handle = await start(w)
        const t0 = performance.now()
        const r = await w.login.finishLogin({ handle, session: session(), identity })
        const ms = performance.now() - t0
        expect(ms, shape.slice(0, 20)).toBeLessThan(500)
        if (r.isErr()) expect(r.error.code).toBe('IDENTITY_INVALID')
      }
    }
  })

  it('threat 56: a malformed `next` or referrer never throws: it falls back to the default landing path', async () => {
    for (const next of [
      'http://[::1',
      '//evil.example',
      '/\\evil.example',
      '%E0%A4%A',
      'javascript:alert(1)',
      `/${'%'.repeat(2000)}`,
      '\u0000/',
    ]) {
      const w = world({ users: [makeUser({ id: 'u', email: 'u@corp.example' })] })
      const handle = await start(w, { next })
      const out = await finishOk(w, {
        handle,
        session: session(),
        identity: ident({ id: 'new', email: 'new@corp.example' }),
        op: 'newuser',
      })
      if (out.kind !== 'signedIn') throw new Error(out.kind)
      expect(out.redirect.startsWith('/'), next).toBe(true)
      expect(out.redirect.startsWith('//'), next).toBe(false)
      expect(out.redirect).not.toContain('\\')
    }
  })
})

// An external id is a key: it must reach every database unchanged. PostgreSQL refuses U+0000 in
// text (the login failed as STORAGE_UNAVAILABLE, an outage to the host), and PostgreSQL, PGlite
// and MariaDB store an unpaired surrogate as U+FFFD, so two different subjects collided and the
// second signed in as the first user's account. Such ids and addresses are IDENTITY_INVALID at
// the boundary on every backend; control characters in a display name are dropped.
describe('threat 55: identity strings a database would change', () => {
  const ORG1 = makeOrganization({ id: 'org-1', slug: 'acme', name: 'Acme' })
  const AP1 = makeProvider({ id: 'ap-1', organizationId: ORG1.id, providerKey: 'dummy' })
  for (const backend of BACKENDS) {
    describe.skipIf(!backend.enabled)(`on ${backend.name}`, () => {
      let open: OpenBackend
      beforeAll(async () => {
        open = await backend.open()
      })
      afterAll(async () => {
        await open?.close()
      })
      async function callback(w: BackendWorld, sessionId: string, form: Record<string, string>) {
        const s = { id: sessionId }
        const begun = await w.sso.beginLogin({ organizationId: ORG1.id, session: s })
        if (begun.isErr() || !('handle' in begun.value)) throw new Error('begin failed')
        return w.sso.advance({ handle: begun.value.handle, session: s, request: { method: 'POST', query: {}, form } })
      }

      it('threat 55: two subjects differing in an unpaired surrogate never share an account; NUL or a lone surrogate in an id or address is refused', async () => {
        const w = await makeWorld(open, { policy: { newUser: 'create' } })
        try {
          await w.raw.seed({ organizations: [ORG1], providers: [AP1] })
          const forms: Record<string, string>[] = [
            { id: 'sub\ud800', email: 'first@corp.example' },
            { id: 'sub\udbff', email: 'second@corp.example' },
            { id: 'a\u0000b', email: 'third@corp.example' },
            { id: 'ok', legacy_id: 'l\u0000', email: 'fourth@corp.example' },
            { id: 'ok2', email: 'fi\ud800fth@corp.example' },
          ]
          for (const [n, form] of forms.entries()) {
            const { pipelineStates: _before, ...before } = await w.snapshot()
            const r = await callback(w, `s${n}`, form)
            // refused where it enters: by the provider step that binds it, or at the identity boundary
            expect(r.isErr() && ['PROVIDER_RESPONSE_INVALID', 'IDENTITY_INVALID'].includes(r.error.code), JSON.stringify(form)).toBe(true)
            // nothing but the caller's own pipeline state changed
            const { pipelineStates: _after, ...after } = await w.snapshot()
            expect(after, JSON.stringify(form)).toEqual(before)
          }
        } finally {
          await w.drop()
        }
      })

      it('threat 55: a display name with U+0000 is refused; other control characters are dropped; never STORAGE_UNAVAILABLE', async () => {
        const w = await makeWorld(open, { policy: { newUser: 'create' } })
        try {
          await w.raw.seed({ organizations: [ORG1], providers: [AP1] })
          const nul = await callback(w, 's0', { id: 'sub-0', email: 'nul@corp.example', name: 'Ann\u0000e' })
          expect(nul.isErr() && ['PROVIDER_RESPONSE_INVALID', 'IDENTITY_INVALID'].includes(nul.error.code)).toBe(true)
          const r = await callback(w, 's', { id: 'sub-n', email: 'named@corp.example', name: 'Ann\u0007e Lee\u001b[31m\u0085' })
          if (r.isErr()) throw new Error(r.error.code)
          const out = r.value
          if (out.kind !== 'signedIn') throw new Error(out.kind)
          const user = (await w.snapshot()).users.find((u) => u.id === out.userId)
          expect(user?.name).toBe('Anne Lee[31m')
        } finally {
          await w.drop()
        }
      })
    })
  }
})
