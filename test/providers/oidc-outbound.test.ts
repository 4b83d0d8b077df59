// The guarded fetch of the OIDC provider remembers only decisions that are the same every time:
// a URL that passed the syntax check (no resolver, or a pinned fetch) without asking the host's
// `allow` hook. The hook, refusals and name resolution are asked again on every request.
import { describe, expect, it } from 'vitest'
import { type AddressPolicy, UrlRefusedError } from '../../src/net/policy.js'
import { createOutbound, type OidcFetch } from '../../src/providers/oidc/http.js'

const init = { method: 'GET', headers: {} } as unknown as Parameters<OidcFetch>[1]

function outboundWith(policy: AddressPolicy) {
  const sent: string[] = []
  const customFetch: OidcFetch = async (url) => {
    sent.push(url)
    return Response.json({ ok: true })
  }
  const outbound = createOutbound({ policy, customFetch, maxResponseBytes: 1024, timeoutMs: 10_000, jwksMaxKeys: 10, jwksMinRefetchMs: 0 })
  return { outbound, sent }
}

describe('createOutbound: the address decision per request', () => {
  it('the allow hook is asked on every request; its new answer holds at once', async () => {
    let allowInternal = true
    let asked = 0
    const { outbound, sent } = outboundWith({
      allow: () => {
        asked++
        return allowInternal
      },
    })
    await outbound.fetch('https://10.20.30.40/token', init)
    await outbound.fetch('https://10.20.30.40/token', init)
    allowInternal = false
    await expect(outbound.fetch('https://10.20.30.40/token', init)).rejects.toBeInstanceOf(UrlRefusedError)
    expect(asked).toBe(3)
    expect(sent).toHaveLength(2)
  })

  it('a refused URL stays refused on every request; an allowed one is sent each time', async () => {
    const { outbound, sent } = outboundWith({})
    for (let i = 0; i < 3; i++) {
      await expect(outbound.fetch('http://idp.example.com/token', init)).rejects.toBeInstanceOf(UrlRefusedError)
      await expect(outbound.fetch('https://169.254.169.254/latest', init)).rejects.toBeInstanceOf(UrlRefusedError)
      await outbound.fetch('https://idp.example.com/token', init)
    }
    expect(sent).toEqual(Array(3).fill('https://idp.example.com/token'))
  })

  it('loopback over http passes only under dangerouslyAllowLoopback, decided with the current value', async () => {
    const policy: { dangerouslyAllowLoopback: boolean } = { dangerouslyAllowLoopback: true }
    const { outbound } = outboundWith(policy)
    await outbound.fetch('http://127.0.0.1:8080/token', init)
    policy.dangerouslyAllowLoopback = false
    await expect(outbound.fetch('http://127.0.0.1:8080/token', init)).rejects.toBeInstanceOf(UrlRefusedError)
  })

  it('with a resolver (no pinned fetch) the name is resolved and checked on every request', async () => {
    let resolved = 0
    let answer = ['93.184.216.34']
    const { outbound, sent } = outboundWith({
      resolver: async () => {
        resolved++
        return answer
      },
    })
    await outbound.fetch('https://idp.example.com/token', init)
    answer = ['10.0.0.7']
    await expect(outbound.fetch('https://idp.example.com/token', init)).rejects.toBeInstanceOf(UrlRefusedError)
    expect(resolved).toBe(2)
    expect(sent).toHaveLength(1)
  })
})

describe('createOutbound: the timeout of each request', () => {
  const hanging: OidcFetch = (_url, init) =>
    new Promise((_resolve, reject) => {
      const signal = init.signal as AbortSignal
      signal.addEventListener('abort', () => reject(signal.reason))
    })

  it.each(['fetch', 'jwksFetch'] as const)('%s: a request that never answers is aborted with a TimeoutError', async (which) => {
    const outbound = createOutbound({
      policy: {},
      customFetch: hanging,
      maxResponseBytes: 1024,
      timeoutMs: 5,
      jwksMaxKeys: 10,
      jwksMinRefetchMs: 0,
    })
    await expect(outbound[which]('https://idp.example.com/x', init)).rejects.toMatchObject({ name: 'TimeoutError' })
  })

  it("the caller's own signal still aborts the request", async () => {
    const outbound = createOutbound({
      policy: {},
      customFetch: hanging,
      maxResponseBytes: 1024,
      timeoutMs: 60_000,
      jwksMaxKeys: 10,
      jwksMinRefetchMs: 0,
    })
    const controller = new AbortController()
    const pending = outbound.fetch('https://idp.example.com/x', { ...init, signal: controller.signal })
    controller.abort(new DOMException('stop', 'AbortError'))
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('a body that stops arriving is aborted too', async () => {
    const stalled: OidcFetch = async (_url, init) => {
      const signal = init.signal as AbortSignal
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('{"a":'))
          signal.addEventListener('abort', () => c.error(signal.reason))
        },
      })
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } })
    }
    const outbound = createOutbound({
      policy: {},
      customFetch: stalled,
      maxResponseBytes: 1024,
      timeoutMs: 5,
      jwksMaxKeys: 10,
      jwksMinRefetchMs: 0,
    })
    await expect(outbound.fetch('https://idp.example.com/x', init)).rejects.toMatchObject({ name: 'TimeoutError' })
  })
})
