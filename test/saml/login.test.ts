// SAML login against a real signing IdP made in the test (test/helpers/saml-idp.ts): the happy
// paths, then every hostile response of issue 11, each refused with its code and an unchanged
// storage snapshot. The ACS POST goes through the engine's `advance` (the pipeline route).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Result, ResultAsync } from 'neverthrow'
import { describe, expect, it } from 'vitest'
import type { SessionInfo, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { b64, TestIdp } from '../helpers/saml-idp.js'
import { makeCertificate } from '../helpers/x509.js'
import { ACME, ACS, acs, beginLogin, INVITE_TOKEN, login, oktaAttributes, post, type SamlWorld, SP_ENTITY_ID, world } from './harness.js'

const anon = (id = 'sess-anon'): SessionInfo => ({ id })
const ALICE = { nameId: 'alice@acme.test', attributes: oktaAttributes('okta-alice', 'alice@acme.test', 'Alice', 'Liddell') }
const NEWBIE = { nameId: 'nina@acme.test', attributes: oktaAttributes('okta-nina', 'nina@acme.test', 'Nina', 'New') }

function snapshot(w: SamlWorld) {
  if (!w.memory) throw new Error('memory world expected')
  return w.memory.snapshot()
}

/** Runs `act` and checks that it failed with `code` and wrote nothing at all. */
async function refusedWithoutWrites(
  w: SamlWorld,
  act: () => ResultAsync<unknown, AuthError> | Promise<Result<unknown, AuthError>>,
  code: string,
  details?: Record<string, unknown>,
) {
  const before = snapshot(w)
  const sentBefore = w.mailer.sent.length
  const result = await act()
  expect(result.isErr(), 'expected a refusal').toBe(true)
  const error = result._unsafeUnwrapErr()
  expect(error.code, JSON.stringify(error.details)).toBe(code)
  if (details) expect(error.details).toMatchObject(details)
  expect(snapshot(w)).toEqual(before)
  expect(w.mailer.sent.length).toBe(sentBefore)
  return error
}

/** beginLogin (not part of the refused act), then the hostile ACS POST as the act. */
async function hostile(
  w: SamlWorld,
  build: (request: Awaited<ReturnType<typeof beginLogin>>['request']) => Promise<string> | string,
  code: string,
  details?: Record<string, unknown>,
  relay?: string,
) {
  const session = anon()
  const { handle, request } = await beginLogin(w, session)
  const xml = await build(request)
  return refusedWithoutWrites(w, () => acs(w, handle, session, xml, relay ?? request.relayState), code, details)
}

describe('SAML login: happy paths', () => {
  it('the AuthnRequest names our entity id and ACS URL, and its id and RelayState are bound to the pipeline', async () => {
    const w = world()
    const { handle, request } = await beginLogin(w, anon())
    expect(request).toMatchObject({ acsUrl: ACS, issuer: SP_ENTITY_ID, signed: false })
    expect(request.id).toMatch(/^_[A-Za-z0-9_-]{40,}$/)
    const state = JSON.parse(snapshot(w).pipelineStates[0]!.body)
    expect(state.data.saml).toEqual({ requestId: request.id, relayState: request.relayState })
    expect(handle).toContain('.')
  })

  it('returning user: a linked identity signs in at once; the assertion id is spent; emailVerified is never set', async () => {
    const w = world()
    const step = (await login(w, anon(), { ...ALICE, attributes: { ...ALICE.attributes, email_verified: 'true' } }))._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'signedIn', userId: 'u-alice', created: { user: false, identity: false, member: false } })
    const snap = snapshot(w)
    expect(snap.identities.find((i) => i.id === 'i-alice')?.data).toMatchObject({ nameId: 'alice@acme.test', idp: w.idp.entityId })
    expect(snap.oneTimeTokens.filter((t) => t.purpose === 'single-use-response')).toHaveLength(1)
  })

  it('new user: confirmation page, then op=newuser creates the account (email not verified)', async () => {
    const w = world()
    const session = anon()
    const step = (await login(w, session, NEWBIE))._unsafeUnwrap()
    expect(step.kind).toBe('confirmationRequired')
    const handle = (step as Step & { handle: string }).handle
    const done = (await w.sso.finishLogin({ handle, session, op: 'newuser' }))._unsafeUnwrap()
    expect(done).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
    const snap = snapshot(w)
    const user = snap.users.find((u) => u.email === 'nina@acme.test')!
    expect(user.name).toBe('Nina New')
    expect(snap.userEmails.find((e) => e.userId === user.id)?.isVerified).toBe(false)
    expect(snap.identities.find((i) => i.userId === user.id)?.ident).toBe('okta-nina')
  })

  it('invited user: signed in with the invite in the session, the link is confirmed and the invite accepted', async () => {
    const w = world()
    const session: SessionInfo = {
      id: 'sess-carol',
      userId: 'u-carol',
      invite: { memberId: 'm-carol-invite', token: INVITE_TOKEN, organizationId: ACME },
    }
    const step = (
      await login(w, session, { nameId: 'carol@acme.test', attributes: oktaAttributes('okta-carol', 'carol@acme.test') })
    )._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: 'confirm-link' } })
    const handle = (step as Step & { handle: string }).handle
    const done = (await w.sso.finishLogin({ handle, session, op: 'confirm' }))._unsafeUnwrap()
    expect(done).toMatchObject({ kind: 'signedIn', userId: 'u-carol', acceptedInviteId: 'm-carol-invite', linked: true })
    const snap = snapshot(w)
    expect(snap.members.find((m) => m.id === 'm-carol-invite')?.userId).toBe('u-carol')
    expect(snap.identities.find((i) => i.userId === 'u-carol')?.ident).toBe('okta-carol')
  })

  it.each([['response' as const], ['both' as const]])('a signed %s (exactly one assertion) is accepted', async (target) => {
    const w = world()
    expect((await login(w, anon(), ALICE, { target }))._unsafeUnwrap().kind).toBe('signedIn')
  })

  it.each([['http://www.w3.org/2009/xmlenc11#aes256-gcm'], ['http://www.w3.org/2001/04/xmlenc#aes128-cbc']])(
    'an encrypted assertion (%s) is decrypted with the SP key from the provider options',
    async (encryptionAlgorithm) => {
      const sp = makeCertificate('sp.example.test')
      const w = world({ provider: { decryption: { privateKey: sp.privateKeyPem, certificate: sp.certificatePem } } })
      const step = await login(w, anon(), ALICE, { encryptFor: sp.certificatePem, encryptionAlgorithm })
      expect(step.isOk(), step.isErr() ? `${step.error.code} ${JSON.stringify(step.error.details)} ${String(step.error.cause)}` : '').toBe(
        true,
      )
      expect(step._unsafeUnwrap().kind).toBe('signedIn')
    },
  )

  it('key rotation: a response signed by the second configured certificate is accepted', async () => {
    const next = makeCertificate('idp-next.example.test')
    const idp = new TestIdp()
    const w = world({
      idp,
      config: { idp: { entityId: idp.entityId, ssoUrl: idp.ssoUrl, certificates: [idp.cert.certificateBase64, next.certificateBase64] } },
    })
    expect((await login(w, anon(), ALICE, { cert: next }))._unsafeUnwrap().kind).toBe('signedIn')
  })

  it('SHA-1 is accepted when the provider config allows it', async () => {
    const w = world({ config: { allowSha1: true } })
    const sha1 = {
      signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
      digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1',
    }
    expect((await login(w, anon(), ALICE, sha1))._unsafeUnwrap().kind).toBe('signedIn')
  })

  it('clock skew (default 60 s): NotOnOrAfter 59 s ago passes, 61 s ago is ASSERTION_EXPIRED', async () => {
    const w = world()
    const past = (s: number) => new Date(w.clock.now().getTime() - s * 1000)
    expect((await login(w, anon(), { ...ALICE, notOnOrAfter: past(59), scdNotOnOrAfter: past(59) }))._unsafeUnwrap().kind).toBe('signedIn')
    const late = await login(w, anon('s2'), { ...ALICE, notOnOrAfter: past(61) })
    expect(late._unsafeUnwrapErr()).toMatchObject({ code: 'ASSERTION_EXPIRED', details: { reason: 'expired' } })
  })

  it('a configurable skew: clockSkewSeconds 0 refuses an assertion 1 s past NotOnOrAfter', async () => {
    const w = world({ provider: { clockSkewSeconds: 0 } })
    const r = await login(w, anon(), { ...ALICE, notOnOrAfter: new Date(w.clock.now().getTime() - 1000) })
    expect(r._unsafeUnwrapErr().code).toBe('ASSERTION_EXPIRED')
  })
})

describe('threat 41: SAML login: hostile responses are refused with their code and write nothing', () => {
  it('unsigned -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, ALICE, { target: 'none' }), 'ASSERTION_UNVERIFIED')
  })

  it('signed by another certificate -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    const other = makeCertificate('attacker.example.test')
    await hostile(w, (r) => w.idp.respond(r, ALICE, { cert: other }), 'ASSERTION_UNVERIFIED')
    await hostile(w, (r) => w.idp.respond(r, ALICE, { cert: other, target: 'response' }), 'ASSERTION_UNVERIFIED')
  })

  it('signature wrapping: a second, unsigned assertion next to the signed one -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    await hostile(
      w,
      async (r) => {
        const signed = await w.idp.respond(r, {
          nameId: 'mallory@evil.test',
          attributes: oktaAttributes('okta-mallory', 'mallory@evil.test'),
        })
        const evil = w.idp.assertionXml({ ...ALICE, inResponseTo: r.id, recipient: ACS, audience: SP_ENTITY_ID })
        return signed.replace('</samlp:Response>', `${evil}</samlp:Response>`)
      },
      'ASSERTION_UNVERIFIED',
      { reason: 'assertion-count' },
    )
  })

  it('signature wrapping: the signed assertion moved under another parent, an unsigned one in its place -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    await hostile(
      w,
      async (r) => {
        const signed = w.idp.sign(
          w.idp.assertionXml({
            nameId: 'mallory@evil.test',
            attributes: oktaAttributes('okta-mallory', 'mallory@evil.test'),
            inResponseTo: r.id,
            recipient: ACS,
            audience: SP_ENTITY_ID,
          }),
          'Assertion',
        )
        const evil = w.idp.assertionXml({ ...ALICE, inResponseTo: r.id, recipient: ACS, audience: SP_ENTITY_ID })
        return w.idp.responseXml(`<samlp:Extensions>${signed}</samlp:Extensions>${evil}`, { destination: ACS, inResponseTo: r.id })
      },
      'ASSERTION_UNVERIFIED',
    )
  })

  it('signature wrapping: the signed response holds the genuine assertion inside an unsigned one -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    await hostile(
      w,
      async (r) => {
        const signed = w.idp.sign(
          w.idp.assertionXml({
            nameId: 'mallory@evil.test',
            attributes: oktaAttributes('okta-mallory', 'mallory@evil.test'),
            inResponseTo: r.id,
            recipient: ACS,
            audience: SP_ENTITY_ID,
          }),
          'Assertion',
        )
        // The evil assertion carries the genuine signed one (and its signature) as its child.
        const evil = w.idp
          .assertionXml({ ...ALICE, inResponseTo: r.id, recipient: ACS, audience: SP_ENTITY_ID })
          .replace('</saml:Issuer>', `</saml:Issuer>${signed}`)
        return w.idp.responseXml(evil, { destination: ACS, inResponseTo: r.id })
      },
      'ASSERTION_UNVERIFIED',
    )
  })

  it('a signed assertion altered after signing (NameID swapped) -> ASSERTION_UNVERIFIED', async () => {
    const w = world()
    await hostile(
      w,
      async (r) =>
        (await w.idp.respond(r, { nameId: 'mallory@evil.test', attributes: oktaAttributes('okta-mallory', 'mallory@evil.test') })).replace(
          'okta-mallory',
          'okta-alice',
        ),
      'ASSERTION_UNVERIFIED',
    )
  })

  it('a comment inside the NameID (signature still valid) -> ASSERTION_UNVERIFIED, never a truncated id', async () => {
    const w = world({ config: { mapping: { id: 'NameID', email: 'NameID', firstName: null, lastName: null, displayName: null } } })
    await hostile(
      w,
      async (r) => {
        const signed = await w.idp.respond(r, { nameId: 'alice@acme.test.evil.test', attributes: {} })
        // Comments are not part of the canonical form: the signature stays valid.
        return signed.replace('alice@acme.test.evil.test</saml:NameID>', 'alice@acme.test<!---->.evil.test</saml:NameID>')
      },
      'ASSERTION_UNVERIFIED',
      { reason: 'xml-comment' },
    )
  })

  it('wrong audience -> ASSERTION_AUDIENCE_MISMATCH (audience)', async () => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, audience: 'https://other-sp.example/saml' }), 'ASSERTION_AUDIENCE_MISMATCH', {
      check: 'audience',
    })
  })

  it('wrong recipient -> ASSERTION_AUDIENCE_MISMATCH (recipient)', async () => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, recipient: 'https://other-sp.example/acs' }), 'ASSERTION_AUDIENCE_MISMATCH', {
      check: 'recipient',
    })
  })

  it.each([
    ['another URL', 'https://other-sp.example/acs'],
    ['missing', null],
  ])('destination %s -> ASSERTION_AUDIENCE_MISMATCH (destination)', async (_name, destination) => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, destination }), 'ASSERTION_AUDIENCE_MISMATCH', { check: 'destination' })
  })

  it('another issuer (assertion or response) -> ASSERTION_ISSUER_MISMATCH', async () => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, issuer: 'https://evil-idp.example' }), 'ASSERTION_ISSUER_MISMATCH', {
      where: 'assertion',
    })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, responseIssuer: 'https://evil-idp.example' }), 'ASSERTION_ISSUER_MISMATCH', {
      where: 'response',
    })
  })

  it('expired (conditions and bearer confirmation), not yet valid, and no NotOnOrAfter -> ASSERTION_EXPIRED', async () => {
    const w = world()
    const at = (s: number) => new Date(w.clock.now().getTime() + s * 1000)
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, notOnOrAfter: at(-3600) }), 'ASSERTION_EXPIRED', {
      reason: 'expired',
      where: 'conditions',
    })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, scdNotOnOrAfter: at(-3600) }), 'ASSERTION_EXPIRED', {
      reason: 'expired',
      where: 'subject-confirmation',
    })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, notBefore: at(600) }), 'ASSERTION_EXPIRED', { reason: 'not-yet-valid' })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, scdNotOnOrAfter: null }), 'ASSERTION_EXPIRED', { reason: 'no-expiry' })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, issueInstant: at(3600), notBefore: null }), 'ASSERTION_EXPIRED', {
      reason: 'issued-in-future',
    })
  })

  it('InResponseTo of another pipeline -> SAML_IN_RESPONSE_TO_MISMATCH', async () => {
    const w = world()
    const other = await beginLogin(w, anon('someone-else'))
    await hostile(w, () => w.idp.respond(other.request, ALICE), 'SAML_IN_RESPONSE_TO_MISMATCH', { where: 'response' })
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, scdInResponseTo: other.request.id }), 'SAML_IN_RESPONSE_TO_MISMATCH', {
      where: 'subject-confirmation',
    })
  })

  it('an unsolicited response (no InResponseTo) posted into a login pipeline -> SAML_IN_RESPONSE_TO_MISMATCH', async () => {
    const w = world({ config: { idpInitiated: true } })
    await hostile(w, () => w.idp.respond(null, { ...ALICE, acsUrl: ACS, spEntityId: SP_ENTITY_ID }), 'SAML_IN_RESPONSE_TO_MISMATCH')
  })

  it('a RelayState that is not ours, or none -> RELAY_STATE_INVALID', async () => {
    const w = world()
    await hostile(w, (r) => w.idp.respond(r, ALICE), 'RELAY_STATE_INVALID', { reason: 'not-ours' }, 'not-our-relay-state')
    const session = anon()
    const { handle, request } = await beginLogin(w, session)
    const xml = await w.idp.respond(request, ALICE)
    await refusedWithoutWrites(
      w,
      () => w.sso.advance({ handle, session, request: post({ SAMLResponse: b64(xml) }) }),
      'RELAY_STATE_INVALID',
      {
        reason: 'missing',
      },
    )
  })

  it('a DOCTYPE with entity declarations (billion laughs) -> SAML_RESPONSE_INVALID, nothing expanded', async () => {
    const w = world()
    const lol = `<!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>`
    await hostile(
      w,
      async (r) =>
        (await w.idp.respond(r, { ...ALICE, attributes: { ...ALICE.attributes, firstName: 'x' } }))
          .replace('<samlp:Response', `${lol}<samlp:Response`)
          .replace('>x<', '>&d;<'),
      'SAML_RESPONSE_INVALID',
      { reason: 'doctype' },
    )
  })

  it('an external entity (SYSTEM URL on loopback) -> SAML_RESPONSE_INVALID, and the URL is never fetched', async () => {
    let hits = 0
    const server = createServer((_req, res) => {
      hits += 1
      res.end('okta-alice')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    try {
      const w = world()
      await hostile(
        w,
        async (r) =>
          (await w.idp.respond(r, NEWBIE))
            .replace('<samlp:Response', `<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "http://127.0.0.1:${port}/xxe">]><samlp:Response`)
            .replace('okta-nina', '&xxe;'),
        'SAML_RESPONSE_INVALID',
        { reason: 'doctype' },
      )
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    expect(hits).toBe(0)
  })

  it('oversized, deeply nested, or with too many elements -> SAML_RESPONSE_INVALID', async () => {
    const w = world({ provider: { maxResponseBytes: 64 * 1024, maxElements: 200 } })
    await hostile(
      w,
      (r) => w.idp.respond(r, { ...ALICE, attributes: { ...ALICE.attributes, blob: 'x'.repeat(70 * 1024) } }),
      'SAML_RESPONSE_INVALID',
      { reason: 'too-large' },
    )
    await hostile(
      w,
      async (r) =>
        (await w.idp.respond(r, { ...ALICE, attributes: { ...ALICE.attributes, deep: 'DEEP' } })).replace(
          'DEEP',
          `${'<x>'.repeat(200)}${'</x>'.repeat(200)}`,
        ),
      'SAML_RESPONSE_INVALID',
      { reason: 'too-deep' },
    )
    const many: Record<string, string> = {}
    for (let i = 0; i < 150; i++) many[`a${i}`] = 'v'
    await hostile(w, (r) => w.idp.respond(r, { ...ALICE, attributes: { ...ALICE.attributes, ...many } }), 'SAML_RESPONSE_INVALID', {
      reason: 'too-many-elements',
    })
  })

  it('a SAMLResponse over the size limit: the provider refuses it, and past the provider field limit the engine does', async () => {
    const w = world({ provider: { maxResponseBytes: 32 * 1024 } })
    const session = anon()
    const { handle, request } = await beginLogin(w, session)
    const big = (n: number) => post({ SAMLResponse: 'A'.repeat(n), RelayState: request.relayState })
    await refusedWithoutWrites(w, () => w.sso.advance({ handle, session, request: big(60 * 1024) }), 'SAML_RESPONSE_INVALID', {
      reason: 'too-large',
    })
    await refusedWithoutWrites(w, () => w.sso.advance({ handle, session, request: big(200 * 1024) }), 'INPUT_INVALID')
  })

  it('SHA-1 signature or digest when the config does not allow it -> ASSERTION_ALGORITHM_REFUSED', async () => {
    const w = world()
    await hostile(
      w,
      (r) => w.idp.respond(r, ALICE, { signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' }),
      'ASSERTION_ALGORITHM_REFUSED',
      {
        use: 'signature',
        algorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
      },
    )
    await hostile(
      w,
      (r) => w.idp.respond(r, ALICE, { digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1' }),
      'ASSERTION_ALGORITHM_REFUSED',
      {
        use: 'digest',
      },
    )
  })

  it.each([
    ['not base64', '%%% not base64 %%%', 'base64'],
    ['base64 of bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0xfd, 0x00]).toString('base64'), 'encoding'],
    ['base64 of text that is not XML', Buffer.from('hello, world').toString('base64'), 'malformed'],
    ['base64 of XML that is not a Response', Buffer.from('<x/>').toString('base64'), 'not-a-response'],
  ])('%s -> SAML_RESPONSE_INVALID', async (_name, value, reason) => {
    const w = world()
    const session = anon()
    const { handle, request } = await beginLogin(w, session)
    await refusedWithoutWrites(
      w,
      () => w.sso.advance({ handle, session, request: post({ SAMLResponse: value, RelayState: request.relayState }) }),
      'SAML_RESPONSE_INVALID',
      { reason },
    )
  })

  it('an IdP error status -> PROVIDER_ERROR with the status code', async () => {
    const w = world()
    await hostile(
      w,
      (r) => w.idp.respond(r, { ...ALICE, status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' }, { target: 'response' }),
      'PROVIDER_ERROR',
      {
        status: 'urn:oasis:names:tc:SAML:2.0:status:Requester',
      },
    )
  })

  it('encrypted assertions: no SP key, a tampered ciphertext, RSA 1.5 or 3DES -> refused', async () => {
    const sp = makeCertificate('sp.example.test')
    const keyless = world()
    await hostile(keyless, (r) => keyless.idp.respond(r, ALICE, { encryptFor: sp.certificatePem }), 'SAML_RESPONSE_INVALID', {
      reason: 'encrypted-no-key',
    })
    const w = world({ provider: { decryption: { privateKey: sp.privateKeyPem, certificate: sp.certificatePem } } })
    await hostile(
      w,
      async (r) => {
        const xml = await w.idp.respond(r, ALICE, { encryptFor: sp.certificatePem })
        const values = [...xml.matchAll(/<xenc:CipherValue>([^<]+)<\/xenc:CipherValue>/g)]
        const last = values.at(-1)![1]!
        const flipped = Buffer.from(last, 'base64')
        flipped[20] = (flipped[20] as number) ^ 0xff
        return xml.replace(last, flipped.toString('base64'))
      },
      'ASSERTION_UNVERIFIED',
      { reason: 'encrypted-assertion' },
    )
    await hostile(
      w,
      async (r) =>
        (await w.idp.respond(r, ALICE, { encryptFor: sp.certificatePem })).replace(
          'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
          'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
        ),
      'ASSERTION_ALGORITHM_REFUSED',
      { use: 'key-transport' },
    )
    await hostile(
      w,
      (r) =>
        w.idp.respond(r, ALICE, { encryptFor: sp.certificatePem, encryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#tripledes-cbc' }),
      'ASSERTION_ALGORITHM_REFUSED',
      { use: 'encryption' },
    )
  })

  it('a missing id or email -> IDENTITY_INVALID listing the attribute keys that did arrive', async () => {
    const w = world()
    const error = await hostile(
      w,
      (r) => w.idp.respond(r, { nameId: 'dave@acme.test', attributes: { mail: 'dave@acme.test', givenName: 'Dave' } }),
      'IDENTITY_INVALID',
      {
        reason: 'saml-attributes',
        missing: ['id', 'email'],
      },
    )
    expect((error.details as { receivedAttributes: string[] }).receivedAttributes).toEqual(['NameID', 'mail', 'givenName'])
    await hostile(w, (r) => w.idp.respond(r, { nameId: 'x', attributes: { id: 'okta-x', email: 'not an email' } }), 'IDENTITY_INVALID')
  })
})

describe('SAML replay (threat 40)', () => {
  it('the same response again: STATE_CONSUMED in its pipeline, SAML_IN_RESPONSE_TO_MISMATCH in a new one', async () => {
    const w = world()
    const session = anon()
    const { handle, request } = await beginLogin(w, session)
    const xml = await w.idp.respond(request, ALICE)
    expect((await acs(w, handle, session, xml, request.relayState))._unsafeUnwrap().kind).toBe('signedIn')
    await refusedWithoutWrites(w, () => acs(w, handle, session, xml, request.relayState), 'STATE_CONSUMED')
    const next = await beginLogin(w, session)
    await refusedWithoutWrites(w, () => acs(w, next.handle, session, xml, next.request.relayState), 'SAML_IN_RESPONSE_TO_MISMATCH')
  })

  it('20 concurrent posts of one response to its pipeline: exactly one sign-in, the others ASSERTION_REPLAYED or STATE_CONFLICT', async () => {
    const w = world()
    const session = anon()
    const { handle, request } = await beginLogin(w, session)
    const xml = await w.idp.respond(request, NEWBIE)
    const results = await Promise.all(Array.from({ length: 20 }, () => acs(w, handle, session, xml, request.relayState)))
    const outcomes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
    expect(outcomes.filter((o) => o === 'confirmationRequired')).toHaveLength(1)
    expect(outcomes.filter((o) => o === 'ASSERTION_REPLAYED' || o === 'STATE_CONFLICT')).toHaveLength(19)
    expect(outcomes).toContain('ASSERTION_REPLAYED')
    expect(snapshot(w).oneTimeTokens.filter((t) => t.purpose === 'single-use-response')).toHaveLength(1)
  })

  it('IdP-initiated on: one unsolicited response twice -> ASSERTION_REPLAYED; 20 at once -> one sign-in', async () => {
    const w = world({ config: { idpInitiated: true } })
    const xml = await w.idp.respond(null, { ...ALICE, acsUrl: ACS, spEntityId: SP_ENTITY_ID })
    const unsolicited = (id: string) =>
      w.sso.beginUnsolicitedLogin({ organizationId: ACME, session: anon(id), request: post({ SAMLResponse: b64(xml) }) })
    expect((await unsolicited('a'))._unsafeUnwrap().kind).toBe('signedIn')
    await refusedWithoutWrites(w, () => unsolicited('b'), 'ASSERTION_REPLAYED')

    const burst = await w.idp.respond(null, { ...ALICE, acsUrl: ACS, spEntityId: SP_ENTITY_ID })
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        w.sso.beginUnsolicitedLogin({ organizationId: ACME, session: anon(`c${i}`), request: post({ SAMLResponse: b64(burst) }) }),
      ),
    )
    const outcomes = results.map((r) => (r.isOk() ? r.value.kind : r.error.code))
    expect(outcomes.filter((o) => o === 'signedIn')).toHaveLength(1)
    expect(outcomes.filter((o) => o === 'ASSERTION_REPLAYED')).toHaveLength(19)
  })
})

describe('IdP-initiated login (threat 39)', () => {
  const unsolicited = async (w: SamlWorld, fields: Parameters<TestIdp['respond']>[1], session: SessionInfo = anon()) => {
    const xml = await w.idp.respond(null, { acsUrl: ACS, spEntityId: SP_ENTITY_ID, ...fields })
    return () =>
      w.sso.beginUnsolicitedLogin({
        organizationId: ACME,
        session,
        request: post({ SAMLResponse: b64(xml), RelayState: 'https://evil.example/next' }),
      })
  }

  it('off by default: an unsolicited response -> UNSOLICITED_RESPONSE, nothing written', async () => {
    const w = world()
    await refusedWithoutWrites(w, await unsolicited(w, ALICE), 'UNSOLICITED_RESPONSE', { reason: 'disabled' })
  })

  it('on: a linked member signs in through a fresh pipeline; its RelayState is ignored', async () => {
    const w = world({ config: { idpInitiated: true } })
    const step = (await (await unsolicited(w, ALICE))())._unsafeUnwrap()
    expect(step).toMatchObject({ kind: 'signedIn', userId: 'u-alice', redirect: '/organizations/acme/issues/' })
    const states = snapshot(w).pipelineStates.map((s) => JSON.parse(s.body))
    expect(states).toMatchObject([{ initiation: 'unsolicited', initiatorUserId: null, phase: 'consumed' }])
  })

  it.each([
    ['an unknown identity (would create an account)', NEWBIE, anon(), 'not-linked'],
    [
      "an unknown identity with the signed-in user's email (would attach)",
      { nameId: 'bob@acme.test', attributes: oktaAttributes('okta-bob', 'bob@acme.test') },
      { id: 's-bob', userId: 'u-bob' },
      'not-linked',
    ],
    [
      'the invited user, not yet a member (would accept the invite)',
      { nameId: 'carol@acme.test', attributes: oktaAttributes('okta-carol', 'carol@acme.test') },
      { id: 's-carol', userId: 'u-carol', invite: { memberId: 'm-carol-invite', token: INVITE_TOKEN, organizationId: ACME } },
      'not-linked',
    ],
  ])('on: %s -> UNSOLICITED_RESPONSE, nothing written', async (_name, fields, session, reason) => {
    const w = world({ config: { idpInitiated: true } })
    await refusedWithoutWrites(w, await unsolicited(w, fields, session as SessionInfo), 'UNSOLICITED_RESPONSE', { reason })
  })

  it("on: an unsolicited response pushed into a signed-in user's login pipeline -> SAML_IN_RESPONSE_TO_MISMATCH", async () => {
    const w = world({ config: { idpInitiated: true } })
    const session = { id: 's-bob', userId: 'u-bob' }
    const { handle, request } = await beginLogin(w, session)
    const xml = await w.idp.respond(null, {
      nameId: 'mallory@evil.test',
      attributes: oktaAttributes('okta-mallory', 'bob@acme.test'),
      acsUrl: ACS,
      spEntityId: SP_ENTITY_ID,
    })
    await refusedWithoutWrites(w, () => acs(w, handle, session, xml, request.relayState), 'SAML_IN_RESPONSE_TO_MISMATCH')
  })
})
