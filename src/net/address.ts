/**
 * IP address parsing and classification (web-standard, no I/O): which special-purpose range an
 * IPv4 or IPv6 address falls in, so that outbound requests built from tenant input can be
 * refused before they leave (threat 60).
 *
 * Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and updates),
 * RFC 6598 (CGNAT), RFC 6052/8215 (NAT64), RFC 3056 (6to4), RFC 4380 (Teredo), RFC 9637 (IPv6
 * documentation 3fff::/20), and the cloud providers' instance-metadata addresses.
 *
 * @module
 */

/**
 * Why an address is not a public unicast address.
 * - `loopback`: 127.0.0.0/8, ::1
 * - `private`: 10/8, 172.16/12, 192.168/16, fc00::/7 (ULA), fec0::/10, 64:ff9b:1::/48
 * - `link-local`: 169.254/16, fe80::/10
 * - `cgnat`: 100.64.0.0/10 (shared address space)
 * - `multicast`: 224.0.0.0/4, ff00::/8
 * - `unspecified`: 0.0.0.0/8, ::
 * - `documentation`: 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
 * - `benchmark`: 198.18.0.0/15, 2001:2::/48
 * - `metadata`: cloud instance-metadata endpoints (169.254.169.254, 169.254.170.2,
 *   168.63.129.16, 100.100.100.200, fd00:ec2::254)
 * - `reserved`: everything else that is not global unicast (240/4 and broadcast, 192.0.0/24,
 *   192.88.99/24, IPv6 outside 2000::/3, Teredo, 2001::/23, 100::/64 ...)
 * @group Network
 */
export type AddressRange =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'documentation'
  | 'benchmark'
  | 'metadata'
  | 'reserved'

/**
 * An IP address and its class. `address` is the canonical text (dotted IPv4, compressed
 * lower-case IPv6); `range` is `'public'` for global unicast addresses. For IPv6 forms that
 * embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
 * `64:ff9b::/96`, 6to4 `2002::/16`) the range is the embedded address's.
 * @group Network
 */
export interface ClassifiedAddress {
  readonly version: 4 | 6
  readonly address: string
  readonly range: AddressRange | 'public'
}

/**
 * Parses an IPv4 address in any form the WHATWG URL parser and `inet_aton` accept: dotted with
 * one to four parts, each decimal, octal (leading `0`) or hex (`0x`), e.g. `127.1`, `0x7f.0.0.1`,
 * `017700000001`, `2130706433`. Returns the address as an unsigned 32-bit number, or null.
 */
export function parseIpv4(input: string): number | null {
  const text = input.endsWith('.') ? input.slice(0, -1) : input
  const parts = text.split('.')
  if (parts.length === 0 || parts.length > 4) return null
  const values: number[] = []
  for (const part of parts) {
    let value: number
    if (/^0[xX][0-9a-fA-F]*$/.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16)
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part.slice(1), 8)
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part)
    else return null
    if (!Number.isSafeInteger(value)) return null
    values.push(value)
  }
  const last = values.pop() as number
  if (values.some((v) => v > 255)) return null
  if (last >= 256 ** (4 - values.length)) return null
  let result = last
  values.forEach((v, i) => {
    result += v * 256 ** (3 - i)
  })
  return result
}

/**
 * Parses an IPv6 address (optionally in brackets, with `::` compression, a trailing dotted IPv4
 * part, and a `%zone` suffix, which is ignored) into eight 16-bit groups, or null.
 */
export function parseIpv6(input: string): number[] | null {
  let text = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  if (!text.includes(':') || text.length > 45) return null
  const lastColon = text.lastIndexOf(':')
  const lastPart = text.slice(lastColon + 1)
  if (lastPart.includes('.')) {
    // A trailing dotted IPv4 part ("::ffff:1.2.3.4") stands for the last two groups.
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(lastPart)) return null
    const octets = lastPart.split('.').map(Number)
    if (octets.some((o) => o > 255)) return null
    const [a = 0, b = 0, c = 0, d = 0] = octets
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const parse = (s: string): number[] | null => {
    if (s === '') return []
    const groups = s.split(':')
    const out: number[] = []
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null
      out.push(Number.parseInt(g, 16))
    }
    return out
  }
  const head = parse(halves[0] ?? '')
  if (head === null) return null
  let groups: number[]
  if (halves.length === 2) {
    const rest = parse(halves[1] ?? '')
    if (rest === null || head.length + rest.length > 7) return null
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
  } else {
    if (head.length !== 8) return null
    groups = head
  }
  return groups
}

function ipv4Text(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.')
}

function ipv6Text(groups: readonly number[]): string {
  // RFC 5952: the longest run (>= 2) of zero groups becomes "::".
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

type V4Rule = readonly [base: number, prefix: number, range: AddressRange]

const v4 = (text: string, prefix: number, range: AddressRange): V4Rule => [parseIpv4(text) as number, prefix, range]

/** Most specific first. */
const IPV4_RULES: readonly V4Rule[] = [
  v4('169.254.169.254', 32, 'metadata'), // AWS, GCP, Azure, OpenStack, DigitalOcean...
  v4('169.254.170.2', 32, 'metadata'), // AWS ECS task metadata
  v4('168.63.129.16', 32, 'metadata'), // Azure WireServer (a public address)
  v4('100.100.100.200', 32, 'metadata'), // Alibaba Cloud
  v4('0.0.0.0', 8, 'unspecified'),
  v4('10.0.0.0', 8, 'private'),
  v4('100.64.0.0', 10, 'cgnat'),
  v4('127.0.0.0', 8, 'loopback'),
  v4('169.254.0.0', 16, 'link-local'),
  v4('172.16.0.0', 12, 'private'),
  v4('192.0.0.0', 24, 'reserved'), // IETF protocol assignments (Oracle metadata 192.0.0.192)
  v4('192.0.2.0', 24, 'documentation'),
  v4('192.88.99.0', 24, 'reserved'), // 6to4 relay anycast (deprecated)
  v4('192.168.0.0', 16, 'private'),
  v4('198.18.0.0', 15, 'benchmark'),
  v4('198.51.100.0', 24, 'documentation'),
  v4('203.0.113.0', 24, 'documentation'),
  v4('224.0.0.0', 4, 'multicast'),
  v4('240.0.0.0', 4, 'reserved'), // includes 255.255.255.255
]

function classifyIpv4(value: number): AddressRange | 'public' {
  for (const [base, prefix, range] of IPV4_RULES) {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
    if ((value & mask) >>> 0 === (base & mask) >>> 0) return range
  }
  return 'public'
}

/** True when the first `bits` bits of `groups` equal those of `prefix`. */
function hasPrefix(groups: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits)
    const mask = (0xffff << (16 - take)) & 0xffff
    if (((groups[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false
  }
  return true
}

const p6 = (text: string): number[] => parseIpv6(text) as number[]

type V6Rule = readonly [prefix: number[], bits: number, range: AddressRange]

const IPV6_RULES: readonly V6Rule[] = [
  [p6('fd00:ec2::254'), 128, 'metadata'], // AWS IMDS over IPv6
  [p6('64:ff9b:1::'), 48, 'private'], // local-use NAT64
  [p6('100::'), 64, 'reserved'], // discard-only
  [p6('2001:db8::'), 32, 'documentation'],
  [p6('2001:2::'), 48, 'benchmark'],
  [p6('2001::'), 23, 'reserved'], // IETF protocol assignments, Teredo (2001::/32)
  [p6('3fff::'), 20, 'documentation'],
  [p6('fc00::'), 7, 'private'],
  [p6('fe80::'), 10, 'link-local'],
  [p6('fec0::'), 10, 'private'], // site-local (deprecated)
  [p6('ff00::'), 8, 'multicast'],
]

function embeddedIpv4(groups: readonly number[]): number | null {
  const low = (((groups[6] ?? 0) << 16) >>> 0) + (groups[7] ?? 0)
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated; ::/128 and ::1 excluded)
  if (groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || (groups[5] === 0 && low > 1))) return low
  // NAT64 well-known prefix 64:ff9b::/96
  if (hasPrefix(groups, p6('64:ff9b::'), 96)) return low
  // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD
  if (groups[0] === 0x2002) return (((groups[1] ?? 0) << 16) >>> 0) + (groups[2] ?? 0)
  return null
}

function classifyIpv6(groups: readonly number[]): AddressRange | 'public' {
  if (groups.every((g) => g === 0)) return 'unspecified'
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return 'loopback'
  const embedded = embeddedIpv4(groups)
  if (embedded !== null) return classifyIpv4(embedded)
  for (const [prefix, bits, range] of IPV6_RULES) if (hasPrefix(groups, prefix, bits)) return range
  // Only 2000::/3 is global unicast.
  if (((groups[0] ?? 0) & 0xe000) !== 0x2000) return 'reserved'
  return 'public'
}

/**
 * Classifies an IP address given as text (any IPv4 spelling the URL parser accepts, or an
 * IPv6 address with or without brackets). Returns null when the text is not an IP address
 * (a host name).
 *
 * @example
 * ```ts
 * import { classifyAddress } from 'ssoflow'
 * classifyAddress('0x7f.1')            // { version: 4, address: '127.0.0.1', range: 'loopback' }
 * classifyAddress('[::ffff:a9fe:a9fe]') // { version: 6, address: '::ffff:a9fe:a9fe', range: 'metadata' }
 * classifyAddress('idp.example.com')   // null
 * ```
 * @group Network
 */
export function classifyAddress(input: string): ClassifiedAddress | null {
  const v6 = parseIpv6(input)
  if (v6 !== null) return { version: 6, address: ipv6Text(v6), range: classifyIpv6(v6) }
  const v4value = parseIpv4(input)
  if (v4value !== null) return { version: 4, address: ipv4Text(v4value), range: classifyIpv4(v4value) }
  return null
}
