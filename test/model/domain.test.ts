// Issue 13 item 3: the one normalization of verified domains and home-realm discovery.
import { describe, expect, it } from 'vitest'
import { emailDomain, normalizeDomain } from '../../src/model/domain.js'

describe('normalizeDomain', () => {
  it.each([
    [' Example.COM ', 'example.com'],
    ['acme.test', 'acme.test'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['BÜCHER.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['faß.de', 'xn--fa-hia.de'],
    ['EXAMPLE.XN--P1AI', 'example.xn--p1ai'],
    ['sub.a-b.example', 'sub.a-b.example'],
  ])('%j -> %j', (raw, domain) => {
    expect(normalizeDomain(raw)).toEqual({ ok: true, domain })
  })

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['example.com.', 'trailing-dot'],
    ['bücher.example.', 'trailing-dot'],
    ['example.com\u3002', 'trailing-dot'],
    ['xn--zz.com', 'idn-invalid'],
    ['localhost', 'not-a-host-name'],
    ['a..b', 'not-a-host-name'],
    ['-a.com', 'not-a-host-name'],
    ['a_b.com', 'not-a-host-name'],
    [`${'a'.repeat(64)}.com`, 'not-a-host-name'],
    ['1.2.3.4', 'ip-address'],
    ['a.0x1f', 'ip-address'],
    ['ex ample.com', 'invalid-characters'],
    ['evil.com/x.acme.test', 'invalid-characters'],
    ['acme.test:443', 'invalid-characters'],
    ['[::1]', 'invalid-characters'],
    ['a%2e.com', 'invalid-characters'],
    ['user@acme.test', 'invalid-characters'],
    [`${'a.'.repeat(127)}com`, 'too-long'],
    ['x'.repeat(400), 'too-long'],
  ])('%j is refused: %s', (raw, problem) => {
    expect(normalizeDomain(raw)).toEqual({ ok: false, problem })
  })
})

describe('emailDomain', () => {
  it('takes the domain after the last @, normalized', () => {
    expect(emailDomain(' Ada@Acme.TEST ')).toEqual({ ok: true, domain: 'acme.test' })
    expect(emailDomain('ada@bücher.example')).toEqual({ ok: true, domain: 'xn--bcher-kva.example' })
    expect(emailDomain('"a@b"@acme.test')).toEqual({ ok: true, domain: 'acme.test' })
  })

  it.each([
    ['', 'empty'],
    ['ada', 'no-domain'],
    ['ada@', 'no-domain'],
    ['@acme.test', 'local-part-empty'],
    ['ada@acme.test.', 'trailing-dot'],
    ['ada@xn--zz.com', 'idn-invalid'],
    ['ada@localhost', 'not-a-host-name'],
    [`ada@${'x'.repeat(330)}.com`, 'too-long'],
  ])('%j is refused: %s', (email, problem) => {
    expect(emailDomain(email)).toEqual({ ok: false, problem })
  })
})
