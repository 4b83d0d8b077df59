// Section 4 of the threat catalog: pipeline state and protocol checks (entries 30-38).
//
// Entries tested elsewhere (named by number there): 31 and 37 in test/login/pipeline.test.ts;
// 33 and 34 against a real OpenID provider in test/e2e/oidc.test.ts (nonce stripped, PKCE
// verifier mismatch, token response rewritten) and test/providers/oidc-id-token.test.ts; the
// OIDC `state` and RFC 9207 `iss` checks of 30, 32 and 35 in test/e2e/oidc.test.ts too.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { DEFAULT_STATE_TTL_SECONDS } from '../../src/state/codec.js'
import { timingSafeEqual } from '../../src/state/crypto.js'
import { makeIdentity, makeMember, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import {
  expectNoWrites,
  finishErr,
  finishOk,
  ident,
  ORG,
  OTHER_ORG,
  OTHER_PROVIDER,
  PROVIDER,
  session,
  start,
  world,
} from '../login/harness.js'

const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceIdentity = makeIdentity({ id: 'ai', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
const seeded = (extra: Parameters<typeof world>[0] = {}) =>
  world({ users: [alice], identities: [aliceIdentity], members: [aliceMember], ...extra })
const ALICE = ident({ id: 'ext-alice', email: 'alice@corp.example' })

describe('threat 30: state replay and expiry', () => {
  it('threat 30: a state that reached its decision is spent: a replay (same or other identity) is STATE_CONSUMED and writes nothing', async () => {
    const w = seeded()
    const handle = await start(w)
    expect((await finishOk(w, { handle, session: session(), identity: ALICE })).kind).toBe('signedIn')
    const before = w.storage.snapshot()
    for (const identity of [ALICE, ident({ id: 'ext-other' }), undefined]) {
      expect((await finishErr(w, { handle, session: session(), identity })).code).toBe('STATE_CONSUMED')
    }
    expect(w.storage.snapshot()).toEqual(before)
    expect(w.signals.emitted).toEqual([])
  })

  it('threat 30: a state is good until its lifetime ends and STATE_EXPIRED one second after; nothing written', async () => {
    const late = seeded()
    const h1 = await start(late)
    late.clock.advance((DEFAULT_STATE_TTL_SECONDS + 1) * 1000)
    const before = late.storage.snapshot()
    expect((await finishErr(late, { handle: h1, session: session(), identity: ALICE })).code).toBe('STATE_EXPIRED')
    expectNoWrites(late, before)
    const inTime = seeded()
    const h2 = await start(inTime)
    inTime.clock.advance((DEFAULT_STATE_TTL_SECONDS - 1) * 1000)
    expect((await finishOk(inTime, { handle: h2, session: session(), identity: ALICE })).kind).toBe('signedIn')
  })

  it('threat 30: a confirmation page left open expires too: the follow-up choice after the lifetime is STATE_EXPIRED', async () => {
    const w = world({ users: [makeUser({ id: 'u', email: 'u@corp.example' })] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const page = await finishOk(w, { handle, session: session({ userId: 'u' }), identity: ident({ id: 'ext-u', email: 'u@corp.example' }) })
    expect(page.kind).toBe('confirmationRequired')
    w.clock.advance((DEFAULT_STATE_TTL_SECONDS + 1) * 1000)
    const before = w.storage.snapshot()
    expect((await finishErr(w, { handle, session: session({ userId: 'u' }), op: 'confirm' })).code).toBe('STATE_EXPIRED')
    expectNoWrites(w, before)
  })
})

describe('threat 32: mix-up and cross-org / cross-provider state', () => {
  it('threat 32: a state begun for one org’s provider never completes on another org’s provider row', async () => {
    const w = seeded()
    // a state claiming org 2 but carrying org 1's provider row, and the converse
    for (const [organization, provider] of [
      [OTHER_ORG, PROVIDER],
      [ORG, OTHER_PROVIDER],
    ] as const) {
      const handle = await start(w, { organization, provider })
      const before = w.storage.snapshot()
      expect((await finishErr(w, { handle, session: session(), identity: ALICE })).code).toBe('PROVIDER_MISMATCH')
      expectNoWrites(w, before)
    }
  })

  it('threat 32: the org’s provider replaced after begin (same kind, new row) → PROVIDER_MISMATCH, nothing written', async () => {
    const w = seeded()
    const handle = await start(w)
    const replacement = makeProvider({ id: 'ap-new', organizationId: ORG.id, providerKey: 'dummy' })
    await w.storage.transaction(async (tx) => {
      await tx.deleteAuthProvider(PROVIDER.id)
      await tx.createAuthProvider(replacement)
    })
    const before = w.storage.snapshot()
    expect((await finishErr(w, { handle, session: session(), identity: ALICE })).code).toBe('PROVIDER_MISMATCH')
    expectNoWrites(w, before)
  })
})

describe('threat 35: tampering with client-held state', () => {
  it('threat 35: the handle carries only a random id and its MAC; every altered character is STATE_INVALID, the state untouched', async () => {
    const w = seeded()
    const handle = await start(w)
    expect(handle).not.toContain(ORG.id)
    expect(handle).not.toContain(PROVIDER.id)
    const [id, mac] = handle.split('.')
    expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const before = w.storage.snapshot()
    const flip = (s: string, i: number) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`
    for (let i = 0; i < handle.length; i++) {
      if (handle[i] === '.') continue
      const code = (await finishErr(w, { handle: flip(handle, i), session: session(), identity: ALICE })).code
      expect(code).toBe('STATE_INVALID')
    }
    // another state's MAC on this id, this id with no MAC, extra segments
    const other = await start(w)
    for (const forged of [`${id}.${other.split('.')[1]}`, `${id}.`, `${id}`, `${handle}.x`, `.${mac}`]) {
      expect((await finishErr(w, { handle: forged, session: session(), identity: ALICE })).code).toBe('STATE_INVALID')
    }
    expect(w.storage.snapshot().users).toEqual(before.users)
    expect(w.storage.snapshot().identities).toEqual(before.identities)
    // the genuine handle still works: nothing above spent it
    expect((await finishOk(w, { handle, session: session(), identity: ALICE })).kind).toBe('signedIn')
  })
})

describe('threat 36: timing-safe comparisons', () => {
  it('threat 36: timingSafeEqual answers like === for every difference position and length', () => {
    const base = 'f'.repeat(64)
    expect(timingSafeEqual(base, base)).toBe(true)
    expect(timingSafeEqual('', '')).toBe(true)
    for (let i = 0; i < base.length; i++) expect(timingSafeEqual(base, `${base.slice(0, i)}e${base.slice(i + 1)}`)).toBe(false)
    expect(timingSafeEqual(base, base.slice(1))).toBe(false)
    expect(timingSafeEqual(base, `${base}\u0000`)).toBe(false)
    expect(timingSafeEqual('é', 'e\u0301')).toBe(false)
  })

  it('threat 36: no secret (token, hash, MAC, CSRF, nonce, binding, relay state) is compared with === / !== in src/', () => {
    const files: string[] = []
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name)
        if (statSync(p).isDirectory()) walk(p)
        else if (p.endsWith('.ts')) files.push(p)
      }
    }
    walk(join(import.meta.dirname, '../../src'))
    const secretish =
      /\b\w*(token|Token|hash|Hash|sig|Sig|csrf|Csrf|relayState|secret|Secret|nonce|Nonce|binding|Binding|mac|Mac)\w*(\.\w+)*\s*(===|!==)\s*(\S+)/
    // a comparison with a literal (an empty form field, a flag) is not a secret comparison
    const benign = /^(null|undefined|\d+|true|false)\b|^('[^']*'|"[^"]*"|`[^`]*`)/
    const hits: string[] = []
    for (const f of files) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const m = secretish.exec(line)
          if (m && !benign.test(m[4] ?? '') && !/typeof/.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`)
        })
    }
    // The two known matches compare a flag and an empty form field, not secrets.
    // Known matches that are no secret: a flag, an empty form field, and the outbox lease token
    // a worker compares with its own claim (internal, never from a request).
    expect(hits.filter((h) => !/email_verified === true|typedSecret === ''|claimToken !== claimToken/.test(h))).toEqual([])
  })
})

describe('threat 38: session fixation', () => {
  it('threat 38: every sign-in asks the host to rotate the session; a pending second factor signs nobody in', async () => {
    const newcomer = world()
    const created = await finishOk(newcomer, {
      handle: await start(newcomer),
      session: session(),
      identity: ident({ id: 'ext-n', email: 'n@corp.example' }),
      op: 'newuser',
    })
    const returning = seeded()
    const back = await finishOk(returning, { handle: await start(returning), session: session(), identity: ALICE })
    const attaching = world({ users: [alice] })
    const linked = await finishOk(attaching, {
      handle: await start(attaching, { initiatorUserId: 'alice' }),
      session: session({ userId: 'alice' }),
      identity: ALICE,
      op: 'confirm',
    })
    for (const out of [created, back, linked]) {
      if (out.kind !== 'signedIn') throw new Error(out.kind)
      expect(out.session).toContainEqual({ type: 'login', userId: out.userId })
      expect(out.session).toContainEqual({ type: 'rotate' })
      expect(out.session.findIndex((e) => e.type === 'rotate')).toBeGreaterThan(out.session.findIndex((e) => e.type === 'login'))
    }
    const twoFa = seeded({ users: [{ ...alice, has2fa: true }] })
    const pending = await finishOk(twoFa, { handle: await start(twoFa), session: session(), identity: ALICE })
    expect(pending.kind).toBe('twoFactorRequired')
    expect(pending.session.map((e) => e.type)).toEqual(['pendingTwoFactor'])
  })
})
