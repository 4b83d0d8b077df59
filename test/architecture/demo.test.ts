import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** `npm start` runs examples/demo/main.ts with tsx; the test does the same on free ports. */
describe('examples/demo (npm start)', () => {
  let child: ChildProcess | null = null
  afterAll(() => {
    if (child?.pid && child.exitCode === null) child.kill('SIGTERM')
  })

  it('starts with no other service, prints its URL and serves the home page and an SSO route', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed in 150 s\n${stdout}\n${stderr}`)), 150_000)
      const check = () => {
        const m = /ssoflow demo: open (http:\/\/localhost:\d+)/.exec(stdout)
        if (m?.[1]) {
          clearTimeout(timer)
          resolve(m[1])
        }
      }
      child?.stdout?.on('data', check)
      child?.on('exit', (code) => reject(new Error(`demo exited with ${code}\n${stdout}\n${stderr}`)))
    })
    const target = url.replace('localhost', '127.0.0.1')
    const home = await fetch(target)
    expect(home.status).toBe(200)
    const html = await home.text()
    expect(html).toContain('What to try')
    expect(html).toContain('Outbox (mail sent by ssoflow)')
    expect(home.headers.get('content-security-policy')).toContain("default-src 'none'")
    // before setup, the org has no provider: the handler answers with its error page
    const login = await fetch(`${target}/auth/sso/login/acme`, { redirect: 'manual' })
    expect(login.status).toBe(404)
    expect(await login.text()).toContain('PROVIDER_NOT_CONFIGURED')
    const css = await fetch(`${target}/auth/sso/ssoflow.css`)
    expect(css.status).toBe(200)
    expect(stderr).not.toMatch(/Error|error:/)
  }, 180_000)
})
