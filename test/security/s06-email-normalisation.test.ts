// Section 6 of the threat catalog: email normalisation pitfalls (entries 42-45).
//
// The rule (src/model/email.ts): trim, NFC, lowercase; compatibility and confusable forms never
// fold into ASCII; plus-addressing and dots are kept; the domain must not end with a dot. An
// asserted address selects an account only when it equals a stored, verified address under that
// rule, and the link mail then goes to the STORED spelling, never to the asserted one.
import { describe, expect, it } from 'vitest'
import { normalizeEmail } from '../../src/model/email.js'
import { makeUser } from '../../src/testing/fixtures.js'
import { expectNoWrites, finishErr, finishOk, ident, session, start, world } from '../login/harness.js'

// A passwordless account: an anonymous login whose address matches it gets the link mailed.
const victim = makeUser({ id: 'v', email: 'val@corp.example', name: 'Victim', hasUsablePassword: false })

/** Asserts `email` selects no account: the anonymous page, no mail, nothing written. */
async function selectsNobody(email: string): Promise<void> {
  const w = world({ users: [victim] })
  const handle = await start(w)
  const before = w.storage.snapshot()
  const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-a', email, emailVerified: true }) })
  expect(out.kind, email).toBe('confirmationRequired')
  expect(out.trace, email).toContainEqual(expect.objectContaining({ rule: 'target.email-none' }))
  expectNoWrites(w, before)
}

/** Either: refused at the boundary (IDENTITY_INVALID) or selecting nobody; never a match, never a write. */
async function neverMatches(email: string): Promise<void> {
  const w = world({ users: [victim] })
  const handle = await start(w)
  const before = w.storage.snapshot()
  const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-a', email, emailVerified: true }) })
  if (r.isErr()) expect(r.error.code, email).toBe('IDENTITY_INVALID')
  else expect(r.value.trace, email).toContainEqual(expect.objectContaining({ rule: 'target.email-none' }))
  expectNoWrites(w, before)
}

/** Asserts `email` is refused at the boundary: IDENTITY_INVALID, nothing written. */
async function refused(email: string): Promise<void> {
  const w = world({ users: [victim] })
  const handle = await start(w)
  const before = w.storage.snapshot()
  expect((await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-a', email }) })).code, email).toBe('IDENTITY_INVALID')
  expectNoWrites(w, before)
}

describe('threats 42-45: the legitimate variant still matches, and the mail goes to the stored address', () => {
  it('threat 42: case and surrounding whitespace fold; the link goes to the stored spelling only', async () => {
    for (const email of ['VAL@CORP.EXAMPLE', 'Val@Corp.Example']) {
      const w = world({ users: [victim] })
      const out = await finishOk(w, { handle: await start(w), session: session(), identity: ident({ id: 'ext-a', email }) })
      expect(out.kind).toBe('confirmationRequired')
      expect(w.mailer.sent.map((m) => m.to)).toEqual(['val@corp.example'])
    }
  })
})

describe('threat 42: Unicode case-mapping collisions', () => {
  it('threat 42: Kelvin sign, dotted/dotless i, long s, sharp s and ligatures never fold onto an ASCII account', async () => {
    const kelvin = makeUser({ id: 'k', email: 'kate@corp.example', hasUsablePassword: false })
    for (const [stored, asserted] of [
      [kelvin, '\u212Aate@corp.example'],
      [makeUser({ id: 'i', email: 'admin@corp.example', hasUsablePassword: false }), 'adm\u0131n@corp.example'],
      [makeUser({ id: 'i2', email: 'admin@corp.example', hasUsablePassword: false }), 'ADM\u0130N@corp.example'],
      [makeUser({ id: 's', email: 'sam@corp.example', hasUsablePassword: false }), '\u017Fam@corp.example'],
      [makeUser({ id: 'ss', email: 'strasse@corp.example', hasUsablePassword: false }), 'stra\u00DFe@corp.example'],
      [makeUser({ id: 'fi', email: 'fin@corp.example', hasUsablePassword: false }), '\uFB01n@corp.example'],
    ] as const) {
      const w = world({ users: [stored] })
      const before = w.storage.snapshot()
      const out = await finishOk(w, {
        handle: await start(w),
        session: session(),
        identity: ident({ id: 'ext-a', email: asserted, emailVerified: true }),
      })
      expect(out.trace, asserted).toContainEqual(expect.objectContaining({ rule: 'target.email-none' }))
      expectNoWrites(w, before)
      expect(normalizeEmail(asserted)).not.toBe(normalizeEmail(stored.email))
    }
  })
})

describe('threat 43: homographs, IDN and compatibility forms', () => {
  it('threat 43: Cyrillic, fullwidth, punycode and zero-width look-alikes are other addresses', async () => {
    for (const email of [
      'v\u0430l@corp.example', // Cyrillic a
      '\uFF56al@corp.example', // fullwidth v
      'val@c\u043Erp.example', // Cyrillic o in the domain
      'val@xn--crp-8cd.example', // a punycode domain
      'val\u200B@corp.example', // zero-width space
      'va\u0301l@corp.example', // combining accent
    ]) {
      await neverMatches(email)
    }
  })
})

describe('threat 44: provider-specific canonicalisation', () => {
  it('threat 44: plus-addressing and dots are distinct mailboxes: they select nobody', async () => {
    for (const email of ['val+sso@corp.example', 'v.al@corp.example', 'va.l@corp.example', 'val+@corp.example']) await selectsNobody(email)
  })
})

describe('threat 45: domain checks', () => {
  it('threat 45: a trailing dot, an empty label or a leading dash is refused at the boundary', async () => {
    for (const email of ['val@corp.example.', 'val@corp..example', 'val@-corp.example', 'val@corp.example..']) await refused(email)
  })

  it('threat 45: a suffix, a parent or a subdomain of the stored domain is another address', async () => {
    for (const email of ['val@evilcorp.example', 'val@corp.example.evil.example', 'val@sub.corp.example', 'val@example']) {
      await neverMatches(email)
    }
  })
})
