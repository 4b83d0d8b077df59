// Attribute mapping (spec 1.5) and the hardened XML layer, unit by unit.
import { describe, expect, it } from 'vitest'
import { mapSubject } from '../../src/providers/saml/mapping.js'
import { parseXml } from '../../src/providers/saml/xml.js'
import { NAME_ID, SAML_PRESETS } from '../../src/saml/index.js'

const subject = (nameId: string | null, attributes: Record<string, string[]>) => ({
  nameId,
  attributes: new Map(Object.entries(attributes)),
})

describe('attribute mapping presets', () => {
  // What docs/saml.md tells the admin to send from each IdP.
  const sent: Record<string, ReturnType<typeof subject>> = {
    okta: subject('ada@corp.test', { id: ['00u1abcd'], email: ['ada@corp.test'], firstName: ['Ada'], lastName: ['Lovelace'] }),
    entra: subject('ada@corp.test', {
      'http://schemas.microsoft.com/identity/claims/objectidentifier': ['5f1c-oid'],
      'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': ['ada@corp.test'],
      'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname': ['Ada'],
      'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname': ['Lovelace'],
      'http://schemas.microsoft.com/identity/claims/displayname': ['Ada L.'],
    }),
    google: subject('ada@corp.test', { firstName: ['Ada'], lastName: ['Lovelace'] }),
    onelogin: subject('ada@corp.test', {
      PersonImmutableID: ['ol-42'],
      'User.email': ['ada@corp.test'],
      'User.FirstName': ['Ada'],
      'User.LastName': ['Lovelace'],
    }),
    jumpcloud: subject('ada@corp.test', { email: ['ada@corp.test'], firstname: ['Ada'], lastname: ['Lovelace'] }),
  }
  const expected: Record<string, { id: string; name: string }> = {
    okta: { id: '00u1abcd', name: 'Ada Lovelace' },
    entra: { id: '5f1c-oid', name: 'Ada L.' },
    google: { id: 'ada@corp.test', name: 'Ada Lovelace' },
    onelogin: { id: 'ol-42', name: 'Ada Lovelace' },
    jumpcloud: { id: 'ada@corp.test', name: 'Ada Lovelace' },
  }
  it.each(Object.keys(SAML_PRESETS))('%s: id, email and name from the documented attributes', (preset) => {
    const mapping = SAML_PRESETS[preset as keyof typeof SAML_PRESETS].mapping
    expect(mapSubject(sent[preset]!, mapping)).toEqual({ ok: true, email: 'ada@corp.test', ...expected[preset] })
  })

  it('a missing id or email lists what arrived (NameID first), bounded to 50 keys', () => {
    const many: Record<string, string[]> = {}
    for (let i = 0; i < 80; i++) many[`attr${i}`] = ['v']
    const r = mapSubject(subject('x@corp.test', many), SAML_PRESETS.okta.mapping)
    expect(r).toMatchObject({ ok: false, missing: ['id', 'email'] })
    if (r.ok) throw new Error('unreachable')
    expect(r.received[0]).toBe(NAME_ID)
    expect(r.received).toHaveLength(50)
  })

  it('blank values count as missing; the first non-blank value of a multi-valued attribute is used', () => {
    expect(
      mapSubject(subject(' ', { email: [' ', 'b@corp.test'] }), {
        id: NAME_ID,
        email: 'email',
        firstName: null,
        lastName: null,
        displayName: null,
      }),
    ).toMatchObject({
      ok: false,
      missing: ['id'],
    })
    expect(
      mapSubject(subject('n', { email: [' ', 'b@corp.test'] }), {
        id: NAME_ID,
        email: 'email',
        firstName: null,
        lastName: null,
        displayName: null,
      }),
    ).toEqual({
      ok: true,
      id: 'n',
      email: 'b@corp.test',
      name: null,
    })
  })
})

describe('hardened XML parsing', () => {
  const limits = { maxLength: 10_000, maxDepth: 8, maxElements: 50 }
  it.each([
    ['a DOCTYPE', '<!DOCTYPE a><a/>', 'doctype'],
    ['an internal entity', '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', 'doctype'],
    ['an undeclared entity reference', '<a>&x;</a>', 'malformed'],
    ['a comment', '<a><!-- hi --></a>', 'comment'],
    ['a processing instruction', '<a><?pi x?></a>', 'processing-instruction'],
    ['nesting over the limit', `${'<a>'.repeat(9)}${'</a>'.repeat(9)}`, 'too-deep'],
    ['too many elements', `<a>${'<b/>'.repeat(50)}</a>`, 'too-many-elements'],
    ['over the length', `<a>${'x'.repeat(10_001)}</a>`, 'too-large'],
    ['two roots', '<a/><b/>', 'malformed'],
    ['an unclosed tag', '<a><b></a>', 'malformed'],
  ])('%s is refused (%s)', (_name, xml, reason) => {
    expect(parseXml(xml, limits)).toMatchObject({ ok: false, reason })
  })

  it('a declaration, CDATA and attributes holding ">" are fine; text is read whole', () => {
    const r = parseXml('<?xml version="1.0" encoding="UTF-8"?><a x="1 > 0"><b>one<![CDATA[ two ]]>three</b></a>', limits)
    if (!r.ok) throw new Error(r.reason)
    expect(r.doc.documentElement.getElementsByTagName('b')[0]?.textContent).toBe('one two three')
  })

  it('a 200 000-level nesting bomb is refused by the pre-scan without building a DOM', () => {
    const xml = '<a>'.repeat(200_000) + '</a>'.repeat(200_000)
    expect(parseXml(xml, { maxLength: 2_000_000, maxDepth: 32, maxElements: 5000 })).toEqual({ ok: false, reason: 'too-deep' })
  })
})
