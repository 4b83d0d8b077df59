// Edges of the pipeline-state codec and its crypto that the mutation run (npm run mutate) found
// unasserted: the error details and redirect hints callers and hosts read, the handle's shape
// checks one by one, base64url at every padding length, the keyring's inputs and its
// known-answer output (HKDF salt, info and hash pinned).
import { describe, expect, it } from 'vitest'
import {
  checkState,
  decodeState,
  encodeState,
  type PipelineState,
  redirectFor,
  STATE_TOMBSTONE_SECONDS,
  signHandle,
  storeExpiry,
  verifyHandle,
} from '../../src/state/codec.js'
import { createKeyring, fromBase64Url, randomToken, toBase64Url } from '../../src/state/crypto.js'

const SECRET = 'codec edges secret of at least 32 bytes!'
const keyring = createKeyring(SECRET)
const ID = 'A'.repeat(32) // 24 bytes of base64url

const state = (over: Partial<PipelineState> = {}): PipelineState => ({
  v: 1,
  id: ID,
  flow: 'login',
  organizationId: 'org1',
  authProviderId: 'ap1',
  providerKey: 'dummy',
  initiatorUserId: null,
  fingerprint: 'f'.repeat(32),
  sessionBinding: 'b'.repeat(64),
  next: null,
  referrer: null,
  step: 0,
  phase: 'open',
  identity: null,
  verificationSentAt: null,
  createdAt: 1_000,
  expiresAt: 2_000,
  data: {},
  ...over,
})

describe('verifyHandle: each shape check and its reason', () => {
  const reason = async (h: unknown) => {
    const r = await verifyHandle(keyring, h)
    return r.isErr() ? [r.error.code, (r.error.details as { reason?: string } | undefined)?.reason] : ['ok']
  }

  it('a genuine handle verifies to its id', async () => {
    expect(await reason(await signHandle(keyring, ID))).toEqual(['ok'])
  })

  it('not a string, empty, or over 256 characters: handle-shape', async () => {
    for (const h of [undefined, null, 42, {}, '', `${ID}.${'A'.repeat(300)}`])
      expect(await reason(h)).toEqual(['STATE_INVALID', 'handle-shape'])
  })

  it('no dot, a leading dot, or two dots: handle-shape', async () => {
    const good = await signHandle(keyring, ID)
    const mac = good.split('.')[1]
    for (const h of [ID, `.${mac}`, `${ID}.${mac}.x`, `${ID}..${mac}`]) expect(await reason(h)).toEqual(['STATE_INVALID', 'handle-shape'])
  })

  it('an id that is not 24 bytes of base64url: handle-shape, even with a valid MAC over it', async () => {
    for (const id of ['A'.repeat(31), 'A'.repeat(36), `${'A'.repeat(31)}+`, `${'A'.repeat(31)}=`]) {
      expect(await reason(await signHandle(keyring, id))).toEqual(['STATE_INVALID', 'handle-shape'])
    }
  })

  it('a well-shaped handle with another MAC: handle-signature', async () => {
    const other = await signHandle(createKeyring(`${SECRET}!`), ID)
    expect(await reason(other)).toEqual(['STATE_INVALID', 'handle-signature'])
  })
})

describe('decodeState: the error and its details', () => {
  it('corrupt JSON: STATE_INVALID reason corrupt, with the caller’s redirect', () => {
    const r = decodeState('{', 'orgLogin')
    expect(r.isErr() && [r.error.code, r.error.details, r.error.redirect]).toEqual(['STATE_INVALID', { reason: 'corrupt' }, 'orgLogin'])
  })

  it('no object or another version: STATE_VERSION naming the version (null when it is not a number)', () => {
    for (const [body, version] of [
      ['5', null],
      ['null', null],
      ['"v"', null],
      ['[1]', null],
      [JSON.stringify({ ...state(), v: 2 }), 2],
      [JSON.stringify({ ...state(), v: '1' }), null],
    ] as const) {
      const r = decodeState(body, 'authSettings')
      expect(r.isErr() && [r.error.code, r.error.details, r.error.redirect], body).toEqual(['STATE_VERSION', { version }, 'authSettings'])
    }
  })

  it('version 1 with a wrong shape: STATE_INVALID reason shape; the default redirect is root', () => {
    const r = decodeState(JSON.stringify({ v: 1, id: 5 }))
    expect(r.isErr() && [r.error.code, r.error.details, r.error.redirect]).toEqual(['STATE_INVALID', { reason: 'shape' }, 'root'])
  })

  it('a state round-trips', () => {
    const s = state()
    expect(decodeState(encodeState(s))._unsafeUnwrap()).toEqual(s)
  })
})

describe('checkState: every mismatch carries its flow’s redirect', () => {
  const now = new Date(1_500)
  it('login states send errors to the org login, setup states to the auth settings', () => {
    for (const [flow, redirect] of [
      ['login', 'orgLogin'],
      ['setup', 'authSettings'],
    ] as const) {
      const s = state({ flow })
      const cases: [Parameters<typeof checkState>[1], string][] = [
        [{ now, flow: flow === 'login' ? 'setup' : 'login' }, 'FLOW_MISMATCH'],
        [{ now, organizationId: 'org2' }, 'ORG_MISMATCH'],
        [{ now, authProviderId: 'ap2' }, 'PROVIDER_MISMATCH'],
        [{ now, providerKey: 'other' }, 'PROVIDER_MISMATCH'],
        [{ now, fingerprint: 'e'.repeat(32) }, 'STATE_FINGERPRINT'],
        [{ now, sessionBinding: 'c'.repeat(64) }, 'STATE_SESSION_MISMATCH'],
        [{ now: new Date(2_000) }, 'STATE_EXPIRED'],
      ]
      for (const [expect_, code] of cases) {
        const r = checkState(s, expect_)
        expect(r.isErr() && [r.error.code, r.error.redirect], `${flow} ${code}`).toEqual([code, redirect])
      }
      // matching expectations pass, each one alone
      expect(checkState(s, { now, flow, organizationId: 'org1', authProviderId: 'ap1', providerKey: 'dummy' }).isOk()).toBe(true)
      expect(checkState(s, { now, authProviderId: 'ap1', providerKey: 'other' }).isErr()).toBe(true)
      expect(checkState(s, { now, authProviderId: 'ap2', providerKey: 'dummy' }).isErr()).toBe(true)
    }
    expect(redirectFor(null)).toBe('root')
    expect(redirectFor('login')).toBe('orgLogin')
    expect(redirectFor('setup')).toBe('authSettings')
  })

  it('the store keeps a spent state for the tombstone period after it expires', () => {
    expect(storeExpiry({ expiresAt: 2_000 }).getTime()).toBe(2_000 + STATE_TOMBSTONE_SECONDS * 1000)
  })
})

describe('base64url and the keyring', () => {
  it('toBase64Url / fromBase64Url round-trip every length (every padding case) without = + /', () => {
    for (let n = 0; n <= 8; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => 250 + i) // high bytes: + and / in plain base64
      const text = toBase64Url(bytes)
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/)
      expect(fromBase64Url(text)).toEqual(bytes)
    }
  })

  it('fromBase64Url refuses anything outside the alphabet, anywhere in the text', () => {
    for (const bad of ['ab+c', 'ab/c', 'abc=', ' abc', 'abc ', 'ab\nc', 'é']) expect(fromBase64Url(bad), bad).toBeNull()
  })

  it('randomToken gives base64url of the asked length, different every time', () => {
    const a = randomToken()
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(randomToken()).not.toBe(a)
  })

  it('a secret under 32 bytes is refused; 32 bytes as a string or a Uint8Array give the same keys', async () => {
    expect(() => createKeyring('x'.repeat(31))).toThrow(RangeError)
    // The host sees this message at startup: it must say what is wrong.
    expect(() => createKeyring(new Uint8Array(31))).toThrow('secret must be at least 32 bytes')
    const s = 'k'.repeat(32)
    const asText = await createKeyring(s).sign('pipeline-handle', 'm')
    const asBytes = await createKeyring(new TextEncoder().encode(s)).sign('pipeline-handle', 'm')
    expect(asBytes).toBe(asText)
  })

  it('known answer: HKDF-SHA-256 with salt "ssoflow/v1" and the purpose as info, then HMAC-SHA-256', async () => {
    const secret = new TextEncoder().encode('k'.repeat(32))
    const material = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveKey'])
    const key = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: new TextEncoder().encode('ssoflow/v1'), info: new TextEncoder().encode('one-time-token') },
      material,
      { name: 'HMAC', hash: 'SHA-256', length: 256 },
      false,
      ['sign'],
    )
    const expected = toBase64Url(new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode('message'))))
    const ring = createKeyring(secret)
    expect(await ring.sign('one-time-token', 'message')).toBe(expected)
    // and again (the derived key is cached; the answer does not change)
    expect(await ring.sign('one-time-token', 'message')).toBe(expected)
    expect(await ring.verify('one-time-token', 'message', expected)).toBe(true)
    expect(await ring.verify('pipeline-handle', 'message', expected)).toBe(false)
  })
})
