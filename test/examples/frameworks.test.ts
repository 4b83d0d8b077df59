// Smoke runs of examples/express and examples/fastify (type-checked with the rest of the tree):
// each serves on 127.0.0.1 and signs a new user in through the handler like a browser would.
// examples/hono-deno runs under Deno in `npm run smoke` (scripts/smoke.mjs).
import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { startExpressExample } from '../../examples/express/main.js'
import { startFastifyExample } from '../../examples/fastify/main.js'

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address()
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Start, post the dummy form, choose "new user", land signed in. */
async function signUp(baseUrl: string, port: number): Promise<string> {
  const origin = `http://127.0.0.1:${port}`
  const jar = new Map<string, string>()
  const go = async (path: string, form?: Record<string, string>) => {
    const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') }
    if (form) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', origin: baseUrl })
    const res = await fetch(`${origin}${path}`, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form ? new URLSearchParams(form) : undefined,
      redirect: 'manual',
    })
    for (const line of res.headers.getSetCookie()) {
      const [k, v] = (line.split(';')[0] ?? '').split('=')
      if (k) jar.set(k, v ?? '')
    }
    return res
  }
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
  const start = await go('/auth/sso/login/acme')
  expect(start.status).toBe(200)
  const page = await go('/auth/sso/callback', { csrf: csrfOf(await start.text()), email: 'new@acme.test', email_verified: 'on' })
  expect(page.status).toBe(200)
  const done = await go('/auth/sso/confirm', { csrf: csrfOf(await page.text()), op: 'newuser' })
  expect(done.status).toBe(303)
  return (await go(done.headers.get('location') ?? '/')).text()
}

describe('examples', () => {
  const stops: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const stop of stops) await stop()
  })

  it('examples/express signs a new user in', async () => {
    const port = await freePort()
    const { url, server } = await startExpressExample(port)
    stops.push(() => new Promise((resolve) => server.close(() => resolve())))
    expect(await signUp(url, port)).toMatch(/^signed in as: (?!nobody)/)
  })

  it('examples/fastify signs a new user in', async () => {
    const port = await freePort()
    const { url, app } = await startFastifyExample(port)
    stops.push(() => app.close())
    expect(await signUp(url, port)).toMatch(/^signed in as: (?!nobody)/)
  })
})
