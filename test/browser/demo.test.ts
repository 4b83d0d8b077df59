// Browser end-to-end tests: Debian's Chromium driven by playwright-core through the web demo
// (examples/demo: Hono on Node, PGlite, the in-process OpenID provider for Acme and the in-process
// SAML IdP for Globex; the SAML IdP is on 127.0.0.1 and the app on localhost, so its post to the
// ACS is a real cross-site form post). Any console error or
// page error fails the test; every page is saved as a screenshot under test-artifacts/browser/.
// .ci/run installs Chromium (apt-get install -y chromium) when /usr/bin/chromium is missing.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Demo, startDemo } from '../../examples/demo/app.js'

const CHROMIUM = '/usr/bin/chromium'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'browser')
const available = existsSync(CHROMIUM)
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install -y chromium`)
if (!available) console.warn(`browser tests skipped: ${CHROMIUM} not installed (apt-get install -y chromium)`)

describe.skipIf(!available)('the demo in Chromium', () => {
  let demo: Demo
  let context: BrowserContext
  let page: Page
  let userDataDir: string
  let shots = 0
  /** Console and page errors since the last check, with the page they came from. */
  let errors: string[] = []

  beforeAll(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true })
    mkdirSync(ARTIFACTS, { recursive: true })
    demo = await startDemo({ port: 0, opPort: 0 })
    userDataDir = mkdtempSync(path.join(tmpdir(), 'ssoflow-chromium-'))
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-dev-shm-usage'],
      viewport: { width: 1200, height: 860 },
    })
    context.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`${msg.page()?.url() ?? '?'}: ${msg.text()}`)
    })
    context.on('weberror', (error) => errors.push(`page error: ${error.error().message}`))
    page = context.pages()[0] ?? (await context.newPage())
  }, 120_000)

  afterAll(async () => {
    await context?.close()
    await demo?.close()
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true })
  })

  /** A screenshot of the current page, numbered in visiting order. */
  async function shot(name: string): Promise<void> {
    shots += 1
    await page.screenshot({ path: path.join(ARTIFACTS, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true })
  }

  function expectNoConsoleErrors(): void {
    const seen = errors
    errors = []
    expect(seen).toEqual([])
  }

  /** A fresh browser: no app session, no IdP session. */
  async function forgetEverything(): Promise<void> {
    await context.clearCookies()
  }

  /** At the Demo IdP: sign in (the address may be prefilled from login_hint) and allow. */
  async function atIdp(email: string, label: string): Promise<void> {
    await page.waitForURL((u) => u.href.startsWith(demo.op.issuer))
    await expect
      .poll(() => page.getByLabel('Email').inputValue())
      .toBeTruthy()
      .catch(() => {})
    if ((await page.getByLabel('Email').inputValue()) !== email) await page.getByLabel('Email').fill(email)
    await shot(`${label}-idp-login`)
    await page.getByLabel('Password').fill('anything')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForLoadState()
    if (page.url().startsWith(demo.op.issuer) && (await page.getByRole('button', { name: 'Allow' }).count()) > 0) {
      await shot(`${label}-idp-consent`)
      await page.getByRole('button', { name: 'Allow' }).click()
    }
    await page.waitForURL((u) => u.href.startsWith(demo.url))
  }

  async function ssoFromOrgLogin(email: string, label: string): Promise<void> {
    await page.goto(`${demo.url}/orgs/acme/login`)
    await shot(`${label}-org-login`)
    await page.getByLabel('Work email').fill(email)
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await atIdp(email, label)
  }

  it('serves the home page with what to try, the outbox, the decision log and the audit log', async () => {
    await page.goto(demo.url)
    await expect.poll(() => page.title()).toContain('ssoflow demo')
    for (const heading of [
      'What to try',
      'Outbox (mail sent by ssoflow)',
      'Decision log (each step and the rules that fired)',
      'Audit log (SQL, newest first)',
    ]) {
      await expect.poll(() => page.getByRole('heading', { name: heading }).count()).toBe(1)
    }
    await shot('home')
    expectNoConsoleErrors()
  }, 60_000)

  it('admin setup: password sign-in, the OIDC setup form, the IdP, SSO on', async () => {
    await page.goto(`${demo.url}/orgs/acme/login`)
    await page.getByLabel('Email', { exact: true }).fill('ada@acme.test')
    await page.getByLabel('Password').fill('demo')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.waitForURL(`${demo.url}/`)
    await page.goto(`${demo.url}/orgs/acme/settings`)
    await shot('admin-settings')
    await page.getByRole('link', { name: 'Configure SSO' }).click()
    await page.waitForURL((u) => u.pathname === '/auth/sso/setup/acme')
    await expect.poll(() => page.getByRole('heading', { name: 'Configure OpenID Connect' }).count()).toBe(1)
    // a bad issuer first: the form comes back with the error, keeping what was typed
    await page.getByLabel('Issuer URL').fill('ftp://not-an-issuer')
    await page.getByLabel('Client ID').fill(demo.op.clientId)
    await page.getByLabel('Client secret').fill(demo.op.clientSecret)
    await page.getByRole('button', { name: 'Continue' }).click()
    await expect.poll(() => page.locator('[role=alert], .field-error').count()).toBeGreaterThan(0)
    await shot('admin-setup-form-error')
    await page.getByLabel('Issuer URL').fill(demo.op.issuer)
    await page.getByLabel('Client secret').fill(demo.op.clientSecret)
    await shot('admin-setup-form')
    await page.getByRole('button', { name: 'Continue' }).click()
    await atIdp('ada@acme.test', 'admin')
    await page.waitForURL(`${demo.url}/orgs/acme/settings`)
    await expect.poll(() => page.textContent('main')).toContain('Single sign-on is on')
    await shot('admin-sso-on')
    expectNoConsoleErrors()
  }, 120_000)

  it('a new person: the confirmation page, then a new account', async () => {
    await forgetEverything()
    await ssoFromOrgLogin('erin@acme.test', 'new-user')
    await expect.poll(() => page.getByRole('heading', { name: 'Join Acme Inc.' }).count()).toBe(1)
    await shot('new-user-confirmation')
    await page.getByRole('button', { name: 'Create a new account' }).click()
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Erin Newcomer')
    await expect.poll(() => page.textContent('main')).toContain('user_signup')
    await shot('new-user-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('returning login: straight in', async () => {
    await forgetEverything()
    await ssoFromOrgLogin('erin@acme.test', 'returning')
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Erin Newcomer')
    await expect.poll(() => page.locator('.kind').first().textContent()).toBe('signedIn')
    await shot('returning-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('home-realm discovery: the work-email form finds Acme by its verified domain; an unknown domain is one generic page', async () => {
    await forgetEverything()
    await page.goto(demo.url)
    await page.getByLabel('Sign in with your work email').fill('erin@acme.test')
    await shot('discovery-home')
    await page.getByRole('button', { name: 'Continue with SSO' }).click()
    await page.waitForURL((u) => u.href.startsWith(demo.op.issuer))
    // The address reached the IdP as login_hint: the Demo IdP's form is prefilled with it.
    await expect.poll(() => page.getByLabel('Email').inputValue()).toBe('erin@acme.test')
    await atIdp('erin@acme.test', 'discovery')
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Erin Newcomer')
    await expect.poll(() => page.textContent('main')).toContain('discovery.verified-domain')
    await shot('discovery-signed-in')
    expectNoConsoleErrors()

    await forgetEverything()
    await page.goto(demo.url)
    await page.getByLabel('Sign in with your work email').fill('erin@nowhere.test')
    await page.getByRole('button', { name: 'Continue with SSO' }).click()
    await page.waitForURL((u) => u.pathname === '/auth/sso/login')
    await expect.poll(() => page.textContent('body')).toContain('Single sign-on is not set up for this email address.')
    await shot('discovery-unknown-domain')
    // (Chromium logs the 404 status of the error page itself as a console error.)
    errors = errors.filter((line) => !line.includes('404'))
    expectNoConsoleErrors()
  }, 120_000)

  it('an invited person joins through the invite link', async () => {
    await forgetEverything()
    await page.goto(demo.inviteUrl)
    await page.waitForURL(`${demo.url}/orgs/acme/login`)
    await expect.poll(() => page.textContent('main')).toContain('Invitation saved')
    await shot('invite-saved')
    await page.getByLabel('Work email').fill('carol@acme.test')
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await atIdp('carol@acme.test', 'invite')
    await page.getByRole('button', { name: 'Create a new account' }).click()
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Carol Invited')
    await expect.poll(() => page.textContent('main')).toContain('invite accepted')
    await shot('invite-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('an existing account without a password is linked through the emailed link', async () => {
    await forgetEverything()
    await ssoFromOrgLogin('dave@acme.test', 'email-link')
    // The same page as for a newcomer (threat 29); the mail went to the account's address.
    await expect.poll(() => page.getByRole('heading', { name: 'Join Acme Inc.' }).count()).toBe(1)
    await expect.poll(() => page.textContent('main')).toContain('we have sent a one-time link')
    await shot('email-link-page')
    await page.goto(demo.url)
    await shot('email-link-outbox')
    await page.getByRole('link', { name: 'Open the link' }).first().click()
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Dave Passwordless')
    await expect.poll(() => page.textContent('main')).toContain('sso-identity.link')
    await shot('email-link-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  /** Responses to the ACS (`POST /auth/sso/acs/:org`) since the last check: status and whether it was the re-post page. */
  let acsResponses: { status: number; repost: boolean }[] = []

  /** At the Demo SAML IdP: sign in; its page posts to the app's ACS cross-site, the app re-posts same-origin. */
  async function atSamlIdp(email: string, label: string): Promise<void> {
    await page.waitForURL((u) => u.href.startsWith(demo.samlIdp.ssoUrl))
    await page.getByLabel('Email').fill(email)
    await shot(`${label}-saml-idp-login`)
    await page.getByLabel('Password').fill('anything')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL((u) => u.href.startsWith(demo.url))
  }

  /** The ACS answered the IdP's cross-site post with the re-post page, then finished on the same-origin re-post. */
  async function expectRepost(): Promise<void> {
    await expect.poll(() => acsResponses.length).toBeGreaterThanOrEqual(2)
    const seen = acsResponses
    acsResponses = []
    expect(seen[0]).toEqual({ status: 200, repost: true })
    expect(seen[1]?.repost).toBe(false)
  }

  async function samlFromOrgLogin(email: string, label: string): Promise<void> {
    await page.goto(`${demo.url}/orgs/globex/login`)
    await shot(`${label}-org-login`)
    await page.getByLabel('Work email').fill(email)
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await atSamlIdp(email, label)
  }

  it('SAML org: the home page links Globex; the admin configures SAML from the IdP metadata URL', async () => {
    page.on('response', (response) => {
      const request = response.request()
      if (request.method() === 'POST' && new URL(response.url()).pathname.startsWith('/auth/sso/acs/')) {
        const csp = response.headers()['content-security-policy'] ?? ''
        acsResponses.push({ status: response.status(), repost: csp.includes("script-src 'nonce-") })
      }
    })
    await forgetEverything()
    await page.goto(demo.url)
    await expect.poll(() => page.getByRole('heading', { name: 'Globex Corp. signs in with SAML 2.0' }).count()).toBe(1)
    await page.getByRole('link', { name: 'Sign in to Globex' }).click()
    await page.waitForURL(`${demo.url}/orgs/globex/login`)
    await page.getByLabel('Email', { exact: true }).fill('gina@globex.test')
    await page.getByLabel('Password').fill('demo')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.waitForURL(`${demo.url}/`)
    await page.goto(`${demo.url}/orgs/globex/settings`)
    await expect.poll(() => page.textContent('main')).toContain(`${demo.url}/auth/sso/acs/globex`)
    await shot('saml-admin-settings')
    await page.getByRole('link', { name: 'Configure SSO' }).click()
    await page.waitForURL((u) => u.pathname === '/auth/sso/setup/globex')
    await expect.poll(() => page.getByRole('heading', { name: 'Configure SAML 2.0' }).count()).toBe(1)
    await page.getByLabel('IdP metadata URL').fill(demo.samlIdp.metadataUrl)
    await page.getByLabel('Identity provider').selectOption('okta')
    await shot('saml-admin-setup-form')
    await page.getByRole('button', { name: 'Continue' }).click()
    await atSamlIdp('gina@globex.test', 'saml-admin')
    await page.waitForURL(`${demo.url}/orgs/globex/settings`)
    await expect.poll(() => page.textContent('main')).toContain('Single sign-on is on')
    await expectRepost()
    await shot('saml-admin-sso-on')
    // the SP metadata the IdP's admin is given
    const metadata = await page.request.get(`${demo.url}/auth/sso/metadata/globex`)
    expect(metadata.status()).toBe(200)
    expect(await metadata.text()).toContain(`Location="${demo.url}/auth/sso/acs/globex"`)
    expectNoConsoleErrors()
  }, 120_000)

  it('SAML org: a new person, the confirmation page, then a new account', async () => {
    await forgetEverything()
    await samlFromOrgLogin('ivan@globex.test', 'saml-new-user')
    await expect.poll(() => page.getByRole('heading', { name: 'Join Globex Corp.' }).count()).toBe(1)
    await expectRepost()
    await shot('saml-new-user-confirmation')
    await page.getByRole('button', { name: 'Create a new account' }).click()
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Ivan Newcomer')
    await shot('saml-new-user-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('SAML org: returning login, straight in', async () => {
    await forgetEverything()
    await samlFromOrgLogin('ivan@globex.test', 'saml-returning')
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Ivan Newcomer')
    await expect.poll(() => page.locator('.kind').first().textContent()).toBe('signedIn')
    await expectRepost()
    await shot('saml-returning-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('SAML org: the work-email form finds Globex by its verified domain', async () => {
    await forgetEverything()
    await page.goto(demo.url)
    await page.getByLabel('Sign in with your work email').fill('ivan@globex.test')
    await page.getByRole('button', { name: 'Continue with SSO' }).click()
    await atSamlIdp('ivan@globex.test', 'saml-discovery')
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Ivan Newcomer')
    await expect.poll(() => page.textContent('main')).toContain('globex.test is verified by organization org_globex')
    await shot('saml-discovery-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('SAML org: an invited person joins through the invite link', async () => {
    await forgetEverything()
    await page.goto(demo.samlInviteUrl)
    await page.waitForURL(`${demo.url}/orgs/globex/login`)
    await expect.poll(() => page.textContent('main')).toContain('Invitation saved')
    await page.getByLabel('Work email').fill('hana@globex.test')
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await atSamlIdp('hana@globex.test', 'saml-invite')
    await expectRepost()
    await page.getByRole('button', { name: 'Create a new account' }).click()
    await page.waitForURL(`${demo.url}/`)
    await expect.poll(() => page.textContent('header')).toContain('Hana Invited')
    await expect.poll(() => page.textContent('main')).toContain('invite accepted')
    await shot('saml-invite-signed-in')
    expectNoConsoleErrors()
  }, 120_000)

  it('a forged callback is refused with an error page and changes nothing', async () => {
    await forgetEverything()
    // a login in flight, then a callback whose state the pipeline never issued
    await page.goto(`${demo.url}/orgs/acme/login`)
    await page.getByLabel('Work email').fill('erin@acme.test')
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await page.waitForURL((u) => u.href.startsWith(demo.op.issuer))
    const response = await page.goto(`${demo.url}/auth/sso/callback?code=forged-code&state=forged-state`)
    expect(response?.status()).toBe(400)
    await expect.poll(() => page.getByRole('heading', { name: 'Sign-in could not continue' }).count()).toBe(1)
    await expect.poll(() => page.textContent('main')).toContain('STATE_INVALID')
    await shot('forged-callback')
    // the only console messages: Chromium reporting the 400 document itself
    const seen = errors
    errors = []
    expect(seen.every((m) => m.includes('400'))).toBe(true)
    await page.goto(demo.url)
    await expect.poll(() => page.textContent('header')).toContain('Not signed in')
    // the README's picture: the home page after all the flows above
    await page.screenshot({ path: path.join(ARTIFACTS, 'readme-home.png') })
    expectNoConsoleErrors()
  }, 120_000)
})
