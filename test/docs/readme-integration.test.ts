// The README's integration runs as printed (issue 18): the ```ts run block is executed with the
// prelude's working placeholders (docs/examples/prelude.ts): memory storage, the dummy provider,
// and an Express-like app that this test drives like a browser, to a signed-in user.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { markdownBlocks, PRELUDE, ROOT } from '../../scripts/check-examples.js'

/**
 * What this test uses of the prelude. It is loaded by URL so that the repository's own typecheck
 * does not follow it: the prelude imports its types from 'ssoflow' (the package itself), which
 * only the examples checker resolves (to src/ or dist/).
 */
interface Prelude {
  installPrelude(): {
    app: {
      handle(
        method: 'GET' | 'POST',
        url: string,
        browser: { cookies: Record<string, string>; session: { id: string; userId?: string | undefined } },
        body?: Record<string, string>,
      ): Promise<{ cookies: Record<string, string>; redirect: string | null; rendered: unknown }>
      readonly sessionEffects: readonly { readonly type: string }[]
    }
    mail: readonly { readonly template: string }[]
    tracked: readonly { readonly event: string }[]
  }
}

/** The block with its `ssoflow` imports pointed at the sources (what the built package contains). */
function runnable(code: string): string {
  return code.replace(/from '(ssoflow(?:\/[a-z]+)?)'/g, (_m, spec: string) => {
    const sub = spec === 'ssoflow' ? 'index.ts' : `${spec.slice('ssoflow/'.length)}/index.ts`
    return `from '${pathToFileURL(path.join(ROOT, 'src', sub)).href}'`
  })
}

describe('README.md "Integration" (```ts run)', () => {
  const blocks = markdownBlocks('README.md', readFileSync(path.join(ROOT, 'README.md'), 'utf8')).blocks.filter((b) => b.flags.has('run'))

  it('there is exactly one runnable block', () => {
    expect(blocks).toHaveLength(1)
  })

  it('runs to a signed-in user: start, the provider form, the confirmation page, "create a new account"', async () => {
    const block = blocks[0]
    if (!block) throw new Error('no ```ts run block in README.md')
    const { installPrelude } = (await import(pathToFileURL(path.join(ROOT, PRELUDE)).href)) as Prelude
    const { app, mail, tracked } = installPrelude()
    process.env.SSO_SECRET = 'a test secret of at least thirty-two bytes'
    const dir = path.join(ROOT, '.tmp', 'examples-run')
    mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `readme-L${block.line}.ts`)
    writeFileSync(file, runnable(block.code))
    await import(pathToFileURL(file).href)

    const browser = { cookies: {} as Record<string, string>, session: { id: 'browser-1' } as { id: string; userId?: string } }
    // 1. The login button: the dummy provider renders its form; the handle goes into a cookie.
    const start = await app.handle('GET', '/auth/login/org-acme/sso', browser)
    expect(start.rendered).toMatchObject({ kind: 'render', view: 'dummy-form' })
    expect(browser.cookies.sso).toMatch(/^[\w-]+\.[\w-]+$/)
    // 2. The form is posted: an unknown identity, so a confirmation page (no account has the email).
    const page = await app.handle('POST', '/auth/sso/', browser, { email: 'new.user@acme.example', name: 'New User' })
    expect(page.rendered).toMatchObject({
      kind: 'confirmationRequired',
      allowedOps: ['newuser'],
      confirmation: { page: 'confirm-identity' },
    })
    // 3. "Create a new account": signed in, redirected to the landing page, session effects applied.
    const done = await app.handle('POST', '/auth/sso/', browser, { op: 'newuser' })
    expect(done.redirect).toBe('/organizations/acme/')
    expect(browser.session.userId).toEqual(expect.any(String))
    expect(app.sessionEffects.map((e) => e.type)).toEqual(expect.arrayContaining(['login', 'rotate', 'markSsoComplete', 'activeOrg']))
    // The mailer and analytics of the example were called after commit.
    expect(mail.map((m) => m.template)).toEqual(['newUserConfirmation'])
    expect(tracked.map((t) => t.event)).toEqual(['user_signup'])
    // 4. An error goes through the error exit with its code (the handle was consumed).
    const replay = await app.handle('POST', '/auth/sso/', browser, { op: 'newuser' })
    expect(replay.redirect).toBe('/orgLogin?error=STATE_CONSUMED')
  })
})
