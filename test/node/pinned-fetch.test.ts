// ssoflow/node: the resolver over node:dns and the fetch pinned to checked addresses (threat 60,
// DNS rebinding). A real HTTP server on 127.0.0.1 counts the connections it receives.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { UrlRefusedError } from '../../src/net/index.js'
import { createPinnedFetch, type HostResolver, nodeAddressPolicy, nodeResolver } from '../../src/node/index.js'

let server: Server
let port = 0
let connections = 0
const requests: { host: string | undefined; method: string | undefined; body: string }[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => {
      body += c.toString()
    })
    req.on('end', () => {
      requests.push({ host: req.headers.host, method: req.method, body })
      res.setHeader('content-type', 'application/json')
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.end(JSON.stringify({ ok: true, got: body }))
    })
  })
  server.on('connection', () => {
    connections++
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

beforeEach(() => {
  connections = 0
  requests.length = 0
})

const table =
  (map: Record<string, string[]>, calls: string[] = []): HostResolver =>
  async (hostname) => {
    calls.push(hostname)
    const found = map[hostname]
    if (!found) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return found
  }

describe('nodeResolver', () => {
  it('resolves localhost through the operating system', async () => {
    const addresses = await nodeResolver()('localhost', {})
    expect(addresses.some((a) => a === '127.0.0.1' || a === '::1')).toBe(true)
  })

  it('rejects a name that does not exist', async () => {
    await expect(nodeResolver({ timeoutMs: 3000 })('no-such-host.invalid', {})).rejects.toBeTruthy()
  })
})

describe('createPinnedFetch', () => {
  it('connects to the address the policy checked (the one resolution is the checked one), sends the body, returns a web Response', async () => {
    const calls: string[] = []
    const loopPinned = createPinnedFetch({
      policy: {
        resolver: table({ 'idp.internal.test': ['127.0.0.1'] }, calls),
        // The host allows this one named internal IdP (it resolves to loopback).
        allow: ({ hostname }) => hostname === 'idp.internal.test',
      },
    })
    const res = await loopPinned(`http://idp.internal.test:${port}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code: 'c 1', grant_type: 'authorization_code' }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
    expect(await res.json()).toEqual({ ok: true, got: 'code=c+1&grant_type=authorization_code' })
    expect(requests).toEqual([{ host: `idp.internal.test:${port}`, method: 'POST', body: 'code=c+1&grant_type=authorization_code' }])
    expect(calls).toEqual(['idp.internal.test'])
  })

  it.each([
    ['a name resolving to loopback', 'https://internal.test:PORT/', { 'internal.test': ['127.0.0.1'] }],
    ['a name resolving to a public and a loopback address', 'https://mixed.test:PORT/', { 'mixed.test': ['8.8.8.8', '127.0.0.1'] }],
    ['a loopback literal', 'https://127.0.0.1:PORT/', {}],
    ['a loopback literal in hex', 'https://0x7f000001:PORT/', {}],
    ['localhost', 'https://localhost:PORT/', { localhost: ['127.0.0.1'] }],
  ])('%s: refused with URL_NOT_ALLOWED, no connection attempted', async (_name, url, map) => {
    const pinned = createPinnedFetch({ policy: { resolver: table(map) } })
    const error = await pinned(url.replace('PORT', String(port)), { method: 'GET', headers: {} }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UrlRefusedError)
    expect((error as UrlRefusedError).error.code).toBe('URL_NOT_ALLOWED')
    expect(connections).toBe(0)
  })

  it('DNS rebinding: a resolver that answers differently each time cannot slip a refused address past the check', async () => {
    // First answer: the allowed (hook) address; every later answer: a metadata address. A
    // resolve-then-fetch would check the first and connect to the second; the pinned fetch
    // resolves once, inside the connection, and checks that answer.
    let n = 0
    const flipping: HostResolver = async () => (n++ === 0 ? ['127.0.0.1'] : ['169.254.169.254'])
    const pinned = createPinnedFetch({
      policy: { resolver: flipping, allow: ({ address }) => address === '127.0.0.1', dangerouslyAllowLoopback: true },
    })
    const first = await pinned(`http://rebind.test:${port}/`, { method: 'GET', headers: {} })
    expect(first.status).toBe(200)
    await first.body?.cancel()
    const second = await pinned(`http://rebind.test:${port}/`, { method: 'GET', headers: {} }).catch((e: unknown) => e)
    expect(second).toBeInstanceOf(UrlRefusedError)
    expect((second as UrlRefusedError).error.details).toMatchObject({ range: 'metadata' })
    expect(requests).toHaveLength(1)
  })

  it('the abort signal ends a request', async () => {
    const pinned = createPinnedFetch({ policy: { dangerouslyAllowLoopback: true } })
    const aborted = AbortSignal.abort(new DOMException('timed out', 'TimeoutError'))
    await expect(pinned(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {}, signal: aborted })).rejects.toBeTruthy()
  })
})

describe('nodeAddressPolicy', () => {
  it('resolves with node:dns, pins connections by default, and can be told not to', () => {
    const pinned = nodeAddressPolicy()
    expect(typeof pinned.resolver).toBe('function')
    expect(typeof pinned.fetch).toBe('function')
    expect(nodeAddressPolicy({ pinConnections: false }).fetch).toBeUndefined()
  })
})
