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

// The buffered response handed to oauth4webapi answers json/text/arrayBuffer from the buffered
// bytes without building a body stream; every observable result must be the one a Response over
// the same bytes gives (the slow path it replaces), for any sequence of body calls.
describe('createOutbound: the buffered response behaves as a Response over the same bytes', () => {
  const enc = new TextEncoder()
  const bodies: { name: string; bytes: Uint8Array; type: string }[] = [
    { name: 'json object', bytes: enc.encode('{"access_token":"a","n":1,"x":[null,true]}'), type: 'application/json' },
    { name: 'empty', bytes: new Uint8Array(0), type: 'application/json' },
    { name: 'not json', bytes: enc.encode('<html>oops</html>'), type: 'text/html' },
    { name: 'BOM and multibyte', bytes: new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode('{"name":"Zoë 🚀"}')]), type: 'application/json' },
    { name: 'invalid UTF-8', bytes: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), type: 'application/json' },
    { name: 'form', bytes: enc.encode('a=1&b=%C3%A9'), type: 'application/x-www-form-urlencoded' },
    { name: 'jwt', bytes: enc.encode('eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'), type: 'application/jwt' },
  ]
  type Op = (r: Response) => Promise<unknown>
  const ops: Record<string, Op> = {
    json: (r) => r.json(),
    text: (r) => r.text(),
    arrayBuffer: async (r) => [...new Uint8Array(await r.arrayBuffer())],
    bytes: async (r) => [...(await r.bytes())],
    blob: async (r) => {
      const b = await r.blob()
      return [b.type, b.size, await b.text()]
    },
    formData: async (r) => [...(await r.formData()).entries()],
    cloneJson: (r) => r.clone().json(),
    cloneThenText: async (r) => {
      const c = r.clone()
      return [await r.text(), c.bodyUsed, await c.text()]
    },
    body: async (r) => (r.body === null ? null : [r.body.locked, r.bodyUsed]),
    readBody: async (r) => {
      if (!r.body) return null
      const reader = r.body.getReader()
      const chunks: number[] = []
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        chunks.push(...value)
      }
      return chunks
    },
    cancel: async (r) => {
      await r.body?.cancel()
      return r.bodyUsed
    },
    bodyUsed: async (r) => r.bodyUsed,
  }
  const names = Object.keys(ops)

  async function outcome(op: Op, r: Response): Promise<unknown> {
    try {
      return { ok: await op(r), used: r.bodyUsed }
    } catch (e) {
      return { error: (e as Error).name, message: (e as Error).message, used: r.bodyUsed }
    }
  }

  async function guardedOver(body: (typeof bodies)[number], status: number) {
    const headers = { 'content-type': body.type, 'cache-control': 'no-store' }
    const outbound = createOutbound({
      policy: {},
      customFetch: async () => new Response(body.bytes.slice(), { status, statusText: 'S', headers }),
      maxResponseBytes: 1024,
      timeoutMs: 10_000,
      jwksMaxKeys: 10,
      jwksMinRefetchMs: 60_000,
    })
    const reference = () => new Response(body.bytes.slice(), { status, statusText: 'S', headers })
    return { outbound, reference }
  }

  const sequences: string[][] = []
  for (const a of names) {
    sequences.push([a])
    for (const b of names) {
      sequences.push([a, b])
      for (const c of ['json', 'body']) sequences.push([a, b, c])
    }
  }

  it.each(bodies.flatMap((b) => [200, 400].map((status) => [b.name, status] as const)))(
    '%s, status %i: the same outcome for every sequence of body calls, status and headers alike',
    async (name, status) => {
      const body = bodies.find((b) => b.name === name) as (typeof bodies)[number]
      const { outbound, reference } = await guardedOver(body, status)
      for (const which of ['fetch', 'jwksFetch'] as const) {
        for (const seq of sequences) {
          const fast = await outbound[which]('https://idp.example.com/x', init)
          const slow = reference()
          expect(fast).toBeInstanceOf(Response)
          expect([fast.status, fast.statusText, fast.ok, [...fast.headers]]).toEqual([
            slow.status,
            slow.statusText,
            slow.ok,
            [...slow.headers],
          ])
          const got: unknown[] = []
          const want: unknown[] = []
          for (const op of seq) {
            got.push(await outcome(ops[op] as Op, fast))
            want.push(await outcome(ops[op] as Op, slow))
          }
          expect(got, seq.join(' then ')).toEqual(want)
        }
      }
    },
  )

  it('the fast path is taken: json() builds no body stream', async () => {
    const { outbound } = await guardedOver(bodies[0] as (typeof bodies)[number], 200)
    const res = await outbound.fetch('https://idp.example.com/x', init)
    expect(res.constructor).not.toBe(Response)
    const before = Object.getOwnPropertyDescriptor(Response.prototype, 'body')?.get?.call(res)
    expect(before).toBeNull()
    expect(await res.json()).toEqual({ access_token: 'a', n: 1, x: [null, true] })
  })

  it('each response of a reused JWKS body reads its own copy', async () => {
    const { outbound } = await guardedOver(bodies[0] as (typeof bodies)[number], 200)
    const first = new Uint8Array(await (await outbound.jwksFetch('https://idp.example.com/jwks', init)).arrayBuffer())
    first.fill(0)
    expect(await (await outbound.jwksFetch('https://idp.example.com/jwks', init)).json()).toEqual({
      access_token: 'a',
      n: 1,
      x: [null, true],
    })
  })

  it.each([204, 205, 304])('status %i is a Response without a body, as before', async (status) => {
    const outbound = createOutbound({
      policy: {},
      customFetch: async () => new Response(null, { status }),
      maxResponseBytes: 1024,
      timeoutMs: 10_000,
      jwksMaxKeys: 10,
      jwksMinRefetchMs: 0,
    })
    const res = await outbound.fetch('https://idp.example.com/x', init)
    expect(res.constructor).toBe(Response)
    expect([res.status, res.body, await res.text()]).toEqual([status, null, ''])
  })

  it('every body member of Response is answered by the buffered response itself', async () => {
    const { outbound } = await guardedOver(bodies[0] as (typeof bodies)[number], 200)
    const res = await outbound.fetch('https://idp.example.com/x', init)
    const own = Object.getOwnPropertyNames(Object.getPrototypeOf(res))
    for (const member of ['body', 'bodyUsed', 'arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text', 'clone'])
      expect(own).toContain(member)
    // A body member a newer runtime adds would read the empty stream of the base class.
    const known = ['constructor', 'type', 'url', 'redirected', 'status', 'ok', 'statusText', 'headers']
    expect(Object.getOwnPropertyNames(Response.prototype).filter((m) => !known.includes(m) && !own.includes(m))).toEqual([])
  })
})
