// Threat 60: the outbound address policy. Every refused range as an IP literal in its usual and
// unusual spellings, and through a name that resolves to it (injected resolver); the scheme
// rules; the host's allow hook; the loopback test opt-in.
import { describe, expect, it } from 'vitest'
import { parseIpv4, parseIpv6 } from '../../src/net/address.js'
import { type AddressPolicy, checkUrl, checkUrlSyntax, classifyAddress, type HostResolver } from '../../src/net/index.js'

const REFUSED: [string, string][] = [
  // loopback, in every IPv4 spelling the URL parser and inet_aton accept, and in IPv6 forms
  ['127.0.0.1', 'loopback'],
  ['127.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['0x7f.0.0.1', 'loopback'],
  ['0177.0.0.1', 'loopback'],
  ['017700000001', 'loopback'],
  ['2130706433', 'loopback'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::127.0.0.1', 'loopback'],
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['2002:7f00:0001::1', 'loopback'],
  // private
  ['10.0.0.5', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['0xc0a80101', 'private'],
  ['::ffff:10.0.0.5', 'private'],
  ['fc00::1', 'private'],
  ['fd12:3456::1', 'private'],
  ['fec0::1', 'private'],
  ['64:ff9b:1::a', 'private'],
  // link-local and metadata
  ['169.254.0.1', 'link-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['169.254.169.254', 'metadata'],
  ['0xa9fea9fe', 'metadata'],
  ['2852039166', 'metadata'],
  ['::ffff:169.254.169.254', 'metadata'],
  ['::ffff:a9fe:a9fe', 'metadata'],
  ['169.254.170.2', 'metadata'],
  ['168.63.129.16', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['fd00:ec2::254', 'metadata'],
  // CGNAT
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  // multicast
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['ff02::1', 'multicast'],
  // unspecified
  ['0.0.0.0', 'unspecified'],
  ['0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['0x', 'unspecified'],
  ['::', 'unspecified'],
  ['::ffff:0.0.0.0', 'unspecified'],
  // documentation and benchmarking
  ['192.0.2.10', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['198.18.0.1', 'benchmark'],
  ['198.19.255.255', 'benchmark'],
  ['2001:2::1', 'benchmark'],
  // reserved
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['192.0.0.192', 'reserved'],
  ['192.88.99.1', 'reserved'],
  ['2001::1', 'reserved'],
  ['100::1', 'reserved'],
  ['4000::1', 'reserved'],
]

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '172.32.0.1',
  '100.128.0.1',
  '169.255.0.1',
  '198.20.0.1',
  '2606:4700::1111',
  '::ffff:8.8.8.8',
  '2002:0808:0808::1',
  '64:ff9b::8.8.8.8',
]

describe('classifyAddress', () => {
  it.each(REFUSED)('%s is %s', (address, range) => {
    expect(classifyAddress(address)?.range).toBe(range)
  })

  it.each(PUBLIC)('%s is public', (address) => {
    expect(classifyAddress(address)?.range).toBe('public')
  })

  it.each(['idp.example.com', 'localhost', '', '1.2.3.4.5', '256.1.1.1', '0y', '1.2.3.x', ':::1', '1::2::3', 'fe80::1::'])(
    '%j is not an IP address',
    (text) => {
      expect(classifyAddress(text)).toBeNull()
    },
  )

  it('canonicalises what it parses', () => {
    expect(classifyAddress('0x7f.1')?.address).toBe('127.0.0.1')
    expect(classifyAddress('[0:0:0:0:0:ffff:a9fe:a9fe]')?.address).toBe('::ffff:a9fe:a9fe')
    expect(classifyAddress('2001:DB8:0:0:1:0:0:1')?.address).toBe('2001:db8::1:0:0:1')
    expect(parseIpv4('1.2.65535')).toBe(0x0102ffff)
    expect(parseIpv4('1.2.65536')).toBeNull()
    expect(parseIpv6('1:2:3:4:5:6:7:8:9')).toBeNull()
  })
})

const fixedResolver =
  (table: Record<string, readonly string[]>): HostResolver =>
  async (hostname) => {
    const found = table[hostname]
    if (!found) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return found
  }

describe('checkUrlSyntax (no I/O)', () => {
  const policy: AddressPolicy = {}

  it.each([
    ['http://idp.example.com/', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['data:text/html,<script>x</script>', 'scheme'],
    ['ftp://idp.example.com/', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['https://user:pw@idp.example.com/', 'credentials'],
    ['not a url', 'invalid'],
    ['https://localhost:9200/', 'address'],
    ['https://a.b.localhost/', 'address'],
    ['https://localhost./', 'address'],
    ['https://LOCALHOST/', 'address'],
    ['https://127.1/', 'address'],
    ['https://0x7f000001/', 'address'],
    ['https://2130706433/', 'address'],
    ['https://[::ffff:169.254.169.254]/latest/meta-data/', 'address'],
    ['https://169.254.169.254/', 'address'],
    ['https://10.0.0.5:8443/admin', 'address'],
    ['https://[fd00:ec2::254]/', 'address'],
  ])('%s -> URL_NOT_ALLOWED (%s)', (url, reason) => {
    const r = checkUrlSyntax(url, policy, 'issuer')
    expect(r.isErr()).toBe(true)
    expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'URL_NOT_ALLOWED', details: { reason, field: 'issuer' } })
  })

  it('accepts https with a public literal or a name (names are for checkUrl to resolve)', () => {
    expect(checkUrlSyntax('https://8.8.8.8/', policy).isOk()).toBe(true)
    expect(checkUrlSyntax('https://idp.example.com/realms/a', policy).isOk()).toBe(true)
  })

  it('the loopback test opt-in allows loopback hosts (http too) and nothing else', () => {
    const loop: AddressPolicy = { dangerouslyAllowLoopback: true }
    for (const ok of ['http://127.0.0.1:9999/', 'http://localhost/', 'http://[::1]:80/', 'https://127.0.0.2/']) {
      expect(checkUrlSyntax(ok, loop).isOk(), ok).toBe(true)
    }
    for (const bad of ['http://idp.example.com/', 'http://10.0.0.1/', 'https://10.0.0.1/', 'http://169.254.169.254/']) {
      expect(checkUrlSyntax(bad, loop).isErr(), bad).toBe(true)
    }
  })
})

describe('checkUrl (resolution through the injected resolver)', () => {
  it.each(REFUSED.filter(([a]) => !a.includes('%')).map(([address, range]) => [classifyAddress(address)!.address, range]))(
    'a name resolving to %s is refused (%s)',
    async (address, range) => {
      const policy: AddressPolicy = { resolver: fixedResolver({ 'idp.evil.test': [address] }) }
      const r = await checkUrl('https://idp.evil.test/', policy, { field: 'issuer' })
      expect(r._unsafeUnwrapErr()).toMatchObject({
        code: 'URL_NOT_ALLOWED',
        details: { reason: 'resolved-address', range, field: 'issuer', hostname: 'idp.evil.test' },
      })
    },
  )

  it('a name with one public and one internal address is refused', async () => {
    const policy: AddressPolicy = { resolver: fixedResolver({ 'mixed.test': ['8.8.8.8', '10.0.0.1'] }) }
    expect((await checkUrl('https://mixed.test/', policy))._unsafeUnwrapErr().details).toMatchObject({ range: 'private' })
  })

  it('a public name passes and reports its addresses; a resolver failure is PROVIDER_UNAVAILABLE (dns)', async () => {
    const policy: AddressPolicy = { resolver: fixedResolver({ 'idp.example.com': ['93.184.216.34', '2606:2800:220:1::1'] }) }
    expect((await checkUrl('https://idp.example.com/x', policy))._unsafeUnwrap().addresses).toEqual(['93.184.216.34', '2606:2800:220:1::1'])
    expect((await checkUrl('https://nxdomain.test/', policy))._unsafeUnwrapErr()).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      retryable: true,
      details: { reason: 'dns' },
    })
  })

  it('the allow hook admits a named internal IdP and nothing else', async () => {
    const seen: unknown[] = []
    const policy: AddressPolicy = {
      resolver: fixedResolver({ 'sso.corp.internal': ['10.1.2.3'], 'other.corp.internal': ['10.1.2.4'] }),
      allow: (request) => {
        seen.push(request)
        return request.hostname === 'sso.corp.internal'
      },
    }
    expect((await checkUrl('https://sso.corp.internal/', policy)).isOk()).toBe(true)
    expect((await checkUrl('https://other.corp.internal/', policy)).isErr()).toBe(true)
    expect(seen).toContainEqual({ hostname: 'sso.corp.internal', address: '10.1.2.3', range: 'private' })
    // The hook never relaxes the scheme.
    expect((await checkUrl('http://sso.corp.internal/', policy))._unsafeUnwrapErr().details).toMatchObject({ reason: 'scheme' })
  })

  it('IP literals are not sent to the resolver', async () => {
    let calls = 0
    const policy: AddressPolicy = {
      resolver: async () => {
        calls++
        return ['8.8.8.8']
      },
    }
    expect((await checkUrl('https://10.0.0.1/', policy)).isErr()).toBe(true)
    expect((await checkUrl('https://8.8.4.4/', policy)).isOk()).toBe(true)
    expect(calls).toBe(0)
  })

  it('without a resolver only literals are checked (documented as the weaker default)', async () => {
    expect((await checkUrl('https://internal.corp/', {})).isOk()).toBe(true)
    expect((await checkUrl('https://10.0.0.1/', {})).isErr()).toBe(true)
  })
})
