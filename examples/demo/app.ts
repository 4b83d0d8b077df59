/**
 * The ssoflow web demo: a small multi-tenant "Acme App" on Hono (Node), with ssoflow's handler
 * mounted at /auth/sso, PGlite (embedded PostgreSQL) through ssoflow/kysely, and two in-process
 * identity providers: an OpenID provider for the org Acme Inc. and a SAML 2.0 IdP (signing with a
 * key pair made at start) for the org Globex Corp. Every mail goes to an outbox shown on the home
 * page, next to the audit log and the decision trace of each step, so a visitor sees what the
 * engine decided and why.
 *
 * In your app, import from the package instead of the sources ('ssoflow', 'ssoflow/http',
 * 'ssoflow/hono', 'ssoflow/kysely', 'ssoflow/oidc', 'ssoflow/saml').
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { PGlite } from '@electric-sql/pglite'
import { getRequestListener } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { Kysely } from 'kysely'
import { ssoHono } from '../../src/hono/index.js'
import { createSsoHandler, escapeHtml as e, ssoHandlerUrls } from '../../src/http/index.js'
import { type AuthError, createAuthPipeline, type MailMessage, NO_FLAGS, type Step, type TraceEntry } from '../../src/index.js'
import { createKyselyStorage, createPGliteDialect, migrateSsoflow } from '../../src/kysely/index.js'
import { oidcProvider } from '../../src/oidc/index.js'
import { samlProvider } from '../../src/saml/index.js'
import { type DemoOp, startDemoOp } from './op.js'
import { DEMO_CSS, layout, type Person } from './pages.js'
import { type DemoSamlIdp, startDemoSamlIdp } from './saml-idp.js'

export interface DemoOptions {
  /** App port on 127.0.0.1 (0: any free port). @defaultValue 3000 */
  readonly port?: number | undefined
  /** IdP port (0: any free port). @defaultValue port + 1, or any when port is 0 */
  readonly opPort?: number | undefined
  /** SAML IdP port (0: any free port). @defaultValue port + 2, or any when port is 0 */
  readonly samlIdpPort?: number | undefined
}

export interface Demo {
  readonly url: string
  readonly op: DemoOp
  readonly samlIdp: DemoSamlIdp
  /** Carol's invite to Acme (OIDC). */
  readonly inviteUrl: string
  /** Hana's invite to Globex (SAML). */
  readonly samlInviteUrl: string
  close(): Promise<void>
}

interface DemoSession {
  userId: string | null
  invite: { memberId: string; token: string; organizationId: string } | null
  flash: string | null
}

interface OutboxMail {
  readonly at: Date
  readonly to: string
  readonly template: string
  readonly summary: string
  readonly link: string | null
}

interface Decision {
  readonly at: Date
  readonly route: string
  readonly status: number
  readonly outcome: string
  readonly trace: readonly TraceEntry[]
}

const ORG_ID = 'org_acme'
const GLOBEX_ID = 'org_globex'
/** The demo's orgs by slug: Acme signs in with OpenID Connect, Globex with SAML 2.0. */
const ORGS: Readonly<Record<string, { readonly id: string; readonly name: string; readonly provider: 'oidc' | 'saml' }>> = {
  acme: { id: ORG_ID, name: 'Acme Inc.', provider: 'oidc' },
  globex: { id: GLOBEX_ID, name: 'Globex Corp.', provider: 'saml' },
}
const BASE_PATH = '/auth/sso'
const PASSWORD = 'demo'
const PASSWORDS: Readonly<Record<string, string>> = {
  'ada@acme.test': 'user_ada',
  'bob@acme.test': 'user_bob',
  'gina@globex.test': 'user_gina',
}

function mailSummary(m: MailMessage): { summary: string; link: string | null } {
  const data = m.data as unknown as Record<string, unknown>
  const link = typeof data.url === 'string' ? data.url : null
  switch (m.template) {
    case 'accountVerification':
      return { summary: `Verify your account to link ${String(data.providerName)} at ${String(data.organizationName)}`, link }
    case 'newUserConfirmation':
      return { summary: `Welcome to ${String(data.organizationName ?? 'Acme')}`, link }
    case 'ssoLinkRequest':
      return { summary: `${String(data.organizationName ?? 'Acme')} turned on single sign-on: link your account`, link }
    case 'ssoUnlinked':
      return { summary: `${String(data.organizationName ?? 'Acme')} turned single sign-on off`, link }
  }
}

function outcomeOf(step: Step | null, error: AuthError | null): string {
  if (error) return error.code
  if (!step) return '-'
  switch (step.kind) {
    case 'redirect':
      return 'redirect (to the IdP)'
    case 'render':
      return `render ${step.view}`
    case 'confirmationRequired':
      return `confirmationRequired: ${step.confirmation.page}`
    case 'signedIn':
      return `signedIn${step.created.user ? ' (new user)' : ''}${step.linked ? ' (linked)' : ''}${step.acceptedInviteId ? ' (invite accepted)' : ''}`
    case 'twoFactorRequired':
      return 'twoFactorRequired'
    case 'setupComplete':
      return `setupComplete (link requests ${step.linkRequestsQueued ? 'queued' : 'not queued'})`
  }
}

/** Starts the demo; resolves once both servers listen. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  // ---- the app server first, so that its URL (the OIDC redirect URI) is known
  let fetchImpl: (request: Request) => Response | Promise<Response> = () => new Response('starting', { status: 503 })
  const server: Server = createServer(getRequestListener((request) => fetchImpl(request)))
  const port = options.port ?? 3000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const appPort = typeof address === 'object' && address ? address.port : port
  const baseUrl = `http://localhost:${appPort}`
  const http = { baseUrl, basePath: BASE_PATH }
  const urls = ssoHandlerUrls(http)
  const op = await startDemoOp(options.opPort ?? (port === 0 ? 0 : appPort + 1), urls.pipelineCallback())
  // The SAML IdP answers only AuthnRequests for this app's ACS URLs (POST /auth/sso/acs/:org).
  const samlIdp = await startDemoSamlIdp(options.samlIdpPort ?? (port === 0 ? 0 : appPort + 2), (acs) =>
    acs.startsWith(`${baseUrl}${BASE_PATH}/acs/`),
  )
  const metadataUrl = (slug: string) => `${baseUrl}${BASE_PATH}/metadata/${encodeURIComponent(slug)}`

  // ---- storage: PGlite (PostgreSQL in WebAssembly) through ssoflow/kysely, real SQL
  const pglite = new PGlite()
  // biome-ignore lint/suspicious/noExplicitAny: the demo reads ssoflow's tables without a typed schema
  const db = new Kysely<any>({ dialect: createPGliteDialect(pglite) })
  await migrateSsoflow(db, { dialect: 'postgres' })
  const storage = createKyselyStorage(db, { dialect: 'postgres' })
  const epoch = new Date()
  const inviteToken = randomBytes(24).toString('base64url')
  const samlInviteToken = randomBytes(24).toString('base64url')
  const user = (id: string, email: string, name: string, hasUsablePassword: boolean) => ({
    id,
    username: email.split('@')[0] ?? id,
    email,
    name,
    isActive: true,
    isSuspended: false,
    hasUsablePassword,
    has2fa: false,
    createdAt: epoch,
  })
  const member = (id: string, userId: string | null, role: string, email: string | null = null, organizationId = ORG_ID) => ({
    id,
    organizationId,
    userId,
    email,
    emailNormalized: email,
    role,
    flags: NO_FLAGS,
    inviteTokenHash: email
      ? createHash('sha256')
          .update(organizationId === ORG_ID ? inviteToken : samlInviteToken)
          .digest('hex')
      : null,
    inviteExpiresAt: email ? new Date(Date.now() + 7 * 24 * 3600 * 1000) : null,
    inviteStatus: 'approved' as const,
    createdAt: epoch,
  })
  await storage.seed({
    organizations: Object.entries(ORGS).map(([slug, o]) => ({ id: o.id, slug, name: o.name, defaultRole: 'member', require2fa: false })),
    users: [
      user('user_ada', 'ada@acme.test', 'Ada Admin', true),
      user('user_bob', 'bob@acme.test', 'Bob Builder', true),
      user('user_dave', 'dave@acme.test', 'Dave Passwordless', false),
      user('user_gina', 'gina@globex.test', 'Gina Globex', true),
    ],
    members: [
      member('member_ada', 'user_ada', 'owner'),
      member('member_bob', 'user_bob', 'member'),
      member('member_carol', null, 'member', 'carol@acme.test'),
      member('member_gina', 'user_gina', 'owner', null, GLOBEX_ID),
      member('member_hana', null, 'member', 'hana@globex.test', GLOBEX_ID),
    ],
    // Verified domains (home-realm discovery): "Sign in with your work email" on the home page
    // finds Acme from acme.test and Globex from globex.test. A real host verifies them with
    // sso.addDomain + its own DNS check + sso.verifyDomain.
    domains: [
      { id: 'dom_acme', organizationId: ORG_ID, domain: 'acme.test', verificationToken: 'demo-acme', verifiedAt: epoch, createdAt: epoch },
      {
        id: 'dom_globex',
        organizationId: GLOBEX_ID,
        domain: 'globex.test',
        verificationToken: 'demo-globex',
        verifiedAt: epoch,
        createdAt: epoch,
      },
    ],
  })

  // ---- ports: an outbox for mail, signals into the decision log
  const outbox: OutboxMail[] = []
  const decisions: Decision[] = []
  const sso = createAuthPipeline({
    storage,
    mailer: {
      async send(message) {
        outbox.unshift({ at: new Date(), to: message.to, template: message.template, ...mailSummary(message) })
      },
    },
    signals: {
      async emit(signal) {
        decisions.unshift({ at: new Date(), route: 'signal', status: 0, outcome: signal.name, trace: [] })
      },
    },
    providers: {
      oidc: oidcProvider({ dangerouslyAllowInsecureLoopbackHttp: true, fetchTimeoutMs: 5000 }),
      // Our SP entity id is the org's metadata URL (served by the handler at /auth/sso/metadata/:org).
      // The demo IdP's metadata URL is plain http on loopback: allowed for this demo only.
      saml: samlProvider({
        entityId: (org) => metadataUrl(org.slug),
        metadataUrl: (org) => metadataUrl(org.slug),
        dangerouslyAllowInsecureLoopbackHttp: true,
        metadataFetch: { timeoutMs: 5000 },
      }),
    },
    secret: randomBytes(32),
    urls: {
      ...urls,
      orgLogin: (o) => `/orgs/${o.slug}/login`,
      authSettings: (o) => `/orgs/${o.slug}/settings`,
      providerSettings: (o) => `/orgs/${o.slug}/settings`,
      afterLogin: () => '/',
    },
  })

  // ---- the host's sessions (a cookie and a Map: any session library does the same)
  const sessions = new Map<string, DemoSession>()
  const COOKIE = 'demo_session'
  const sidOf = (c: Context): string | null => {
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z0-9_-]+)`).exec(c.req.header('cookie') ?? '')
    return m?.[1] && sessions.has(m[1]) ? m[1] : null
  }
  const sessionOf = (c: Context): DemoSession | null => {
    const sid = sidOf(c)
    return sid ? (sessions.get(sid) ?? null) : null
  }
  /** A new session id (login, rotation): returns the Set-Cookie value. */
  const newSession = (c: Context, data: DemoSession): string => {
    const old = sidOf(c)
    if (old) sessions.delete(old)
    const sid = randomBytes(18).toString('base64url')
    sessions.set(sid, data)
    return `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`
  }
  const personOf = async (userId: string | null): Promise<Person | null> => {
    if (!userId) return null
    const u = await storage.getUser(userId)
    return u ? { name: u.name, email: u.email } : null
  }

  const handler = createSsoHandler<Context>(sso, {
    ...http,
    getSession: (_request, c) => sessionOf(c),
    applySessionEffects(effects, { context: c }) {
      let data: DemoSession = { ...(sessionOf(c) ?? { userId: null, invite: null, flash: null }) }
      let rotate = false
      for (const effect of effects) {
        if (effect.type === 'rotate') rotate = true
        if (effect.type === 'login') {
          data = { ...data, userId: effect.userId, flash: 'Signed in with single sign-on.' }
          rotate = true
        }
        if (effect.type === 'clearInvite') data.invite = null
        // an existing account was just proven (threat 2): end every other session of the user
        if (effect.type === 'revokeOtherSessions') {
          for (const [sid, other] of sessions) if (other.userId === effect.userId) sessions.delete(sid)
        }
      }
      const sid = sidOf(c)
      if (rotate || !sid) return [['set-cookie', newSession(c, data)]]
      sessions.set(sid, data)
      return undefined
    },
    resolveOrganization: async (slug) => {
      const row = await db.selectFrom('ssoflow_organizations').select('id').where('slug', '=', slug).executeTakeFirst()
      return row ? String(row.id) : null
    },
    twoFactorUrl: '/2fa',
    homeUrl: '/',
    onResult(event) {
      if (event.route === 'stylesheet') return
      const step = event.step
      const trace = step && 'trace' in step ? step.trace : step && 'discovery' in step && step.discovery ? step.discovery.trace : []
      decisions.unshift({ at: new Date(), route: event.route, status: event.status, outcome: outcomeOf(step, event.error), trace })
      if (decisions.length > 60) decisions.length = 60
    },
  })

  // ---- the host's pages
  const app = new Hono()
  // No form-action: Chromium applies it to the redirects after a submit, and the SSO form's
  // answer is a redirect to the IdP.
  const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
  const html = (c: Context, body: string, status = 200) => {
    c.header('content-security-policy', CSP)
    c.header('cache-control', 'no-store')
    return c.html(body, status as 200)
  }
  const takeFlash = (c: Context): string | null => {
    const s = sessionOf(c)
    const flash = s?.flash ?? null
    if (s) s.flash = null
    return flash
  }
  const sameOrigin = (c: Context) => {
    const origin = c.req.header('origin')
    return origin === undefined || origin === baseUrl
  }

  // Link mails and housekeeping are background work (runPendingWork): a real app runs the drain
  // from a scheduler (docs/operations.md); the demo drains after every request, so the link
  // requests of a setup are in the outbox by the time the next page shows it.
  app.use(async (_c, next) => {
    await next()
    const drained = await sso.runPendingWork()
    if (drained.isErr()) console.warn('ssoflow demo: runPendingWork failed', drained.error.code)
  })
  app.use(ssoHono(handler))
  app.get('/demo.css', (c) => c.body(DEMO_CSS, 200, { 'content-type': 'text/css; charset=utf-8' }))
  app.get('/favicon.ico', (c) => c.body(null, 204))

  app.get('/', async (c) => {
    const who = await personOf(sessionOf(c)?.userId ?? null)
    const provider = await storage.getAuthProvider(ORG_ID)
    const samlProviderRow = await storage.getAuthProvider(GLOBEX_ID)
    const snap = await storage.snapshot()
    const audit = await db
      .selectFrom('ssoflow_audit_log')
      .select(['event', 'actor_user_id', 'target_user_id', 'created_at'])
      .orderBy('created_at', 'desc')
      .limit(20)
      .execute()
    const nameOf = (id: unknown) => snap.users.find((u) => u.id === id)?.email ?? (id ? String(id) : '-')
    const rows = (items: string[], empty: string, cols: number) =>
      items.length ? items.join('\n') : `<tr><td colspan="${cols}" class="muted">${e(empty)}</td></tr>`
    const outboxRows = outbox.map(
      (m) =>
        `<tr><td>${e(m.at.toLocaleTimeString('en-GB'))}</td><td>${e(m.to)}</td><td><span class="pill">${e(m.template)}</span><br>${e(m.summary)}${m.link ? `<br><a href="${e(m.link)}">Open the link</a>` : ''}</td></tr>`,
    )
    const decisionRows = decisions.map(
      (d) =>
        `<tr><td>${e(d.at.toLocaleTimeString('en-GB'))}</td><td>${e(d.route)}</td><td><span class="${/^[A-Z_]+$/.test(d.outcome) ? 'code' : 'kind'}">${e(d.outcome)}</span>${
          d.trace.length ? `<ol class="trace">${d.trace.map((t) => `<li><code>${e(t.rule)}</code> ${e(t.detail)}</li>`).join('')}</ol>` : ''
        }</td></tr>`,
    )
    const auditRows = audit.map(
      (a) =>
        `<tr><td>${e(new Date(Number(a.created_at)).toLocaleTimeString('en-GB'))}</td><td><span class="pill">${e(a.event)}</span></td><td>${e(nameOf(a.actor_user_id))}</td><td>${e(nameOf(a.target_user_id))}</td></tr>`,
    )
    const people = snap.users.map((u) => {
      const m = snap.members.find((x) => x.userId === u.id)
      const linked = snap.identities.some((i) => i.userId === u.id)
      const org = Object.values(ORGS).find((o) => o.id === m?.organizationId)?.name ?? ''
      return `<tr><td>${e(u.name)}</td><td>${e(u.email)}</td><td>${e(m ? `${m.role} (${org})` : '-')}</td><td>${u.hasUsablePassword ? 'yes' : 'no'}</td><td>${linked ? 'linked' : '-'}</td></tr>`
    })
    const invites = snap.members
      .filter((m) => m.userId === null)
      .map((m) => `<tr><td colspan="2">${e(m.email)}</td><td>invited (${e(m.role)})</td><td>-</td><td>-</td></tr>`)
    const body = `<h1>ssoflow demo: SSO for Acme Inc.</h1>
<form method="get" action="${BASE_PATH}/login">
<label for="work-email">Sign in with your work email</label><input id="work-email" name="email" type="email" placeholder="you@acme.test or you@globex.test" autocomplete="email" required>
<p><button type="submit" class="primary">Continue with SSO</button> <span class="muted">Your organization is found from its verified domain (acme.test: OpenID Connect, globex.test: SAML), once its SSO is configured.</span></p>
</form>
<div class="grid">
<section>
<h2>What to try</h2>
<ol class="try">
<li><strong>Configure SSO as the admin.</strong> <a href="/orgs/acme/login">Sign in</a> with the password form as <code>ada@acme.test</code> / <code>${PASSWORD}</code>, open <a href="/orgs/acme/settings">Settings</a>, press “Configure SSO” and paste the values shown there. At the Demo IdP sign in as <code>ada@acme.test</code> and allow. ${provider ? '<span class="pill">done</span>' : ''}</li>
<li><strong>First login of a new person.</strong> Sign out, then on the <a href="/orgs/acme/login">org login</a> use single sign-on as <code>erin@acme.test</code> (any password at the IdP). ssoflow asks before it creates the account.</li>
<li><strong>Returning login.</strong> Sign out and sign in with SSO as <code>erin@acme.test</code> again: straight in, nothing created.</li>
<li><strong>Join through the invite.</strong> Open <a href="/invite/${e(inviteToken)}">Carol's invite link</a>, then sign in with SSO as <code>carol@acme.test</code>: the pending invite becomes her membership.</li>
<li><strong>Link an existing account through the emailed link.</strong> Sign in with SSO as <code>dave@acme.test</code> (an account without a password). ssoflow mails a one-time link to Dave's address: open it from the outbox on this page, in this browser.</li>
<li><strong>An existing password account.</strong> SSO as <code>bob@acme.test</code>: ssoflow asks Bob to sign in with his password first (<code>${PASSWORD}</code>), then SSO again links it without a question.</li>
</ol>
<p class="hint">The Demo IdP runs in this process at <code>${e(op.issuer)}</code>. Everything is in memory: restart to start over.</p>
</section>
<section>
<h2>Globex Corp. signs in with SAML 2.0</h2>
<ol class="try">
<li><strong>Configure SAML as the admin.</strong> <a href="/orgs/globex/login">Sign in to Globex</a> with the password form as <code>gina@globex.test</code> / <code>${PASSWORD}</code>, open <a href="/orgs/globex/settings">Globex settings</a>, press “Configure SSO”, paste the IdP metadata URL shown there and pick Okta. At the Demo SAML IdP sign in as <code>gina@globex.test</code>. ${samlProviderRow ? '<span class="pill">done</span>' : ''}</li>
<li><strong>A new person.</strong> Sign out, then on the <a href="/orgs/globex/login">Globex login</a> use single sign-on as <code>ivan@globex.test</code>: ssoflow asks before it creates the account.</li>
<li><strong>Returning login.</strong> Sign out and sign in with SSO as <code>ivan@globex.test</code> again: straight in.</li>
<li><strong>Join through the invite.</strong> Open <a href="/invite/${e(samlInviteToken)}">Hana's invite link</a>, then sign in with SSO as <code>hana@globex.test</code>.</li>
</ol>
<p class="hint">The Demo SAML IdP runs in this process at <code>${e(samlIdp.ssoUrl)}</code> and signs its assertions with a key pair made at start. It is another site than the app, so its post to the ACS is cross-site: watch the decision log for the <code>acs</code> route, answered first with a same-origin re-post.</p>
</section>
<section>
<h2>Outbox (mail sent by ssoflow)</h2>
<table><thead><tr><th>Time</th><th>To</th><th>Mail</th></tr></thead><tbody>
${rows(outboxRows, 'No mail yet.', 3)}
</tbody></table>
</section>
<section>
<h2>Decision log (each step and the rules that fired)</h2>
<table><thead><tr><th>Time</th><th>Route</th><th>Outcome and trace</th></tr></thead><tbody>
${rows(decisionRows, 'Nothing yet: start a sign-in.', 3)}
</tbody></table>
</section>
<section>
<h2>Audit log (SQL, newest first)</h2>
<table><thead><tr><th>Time</th><th>Event</th><th>Actor</th><th>Target</th></tr></thead><tbody>
${rows(auditRows, 'No audit entries yet.', 4)}
</tbody></table>
<h2>People</h2>
<table><thead><tr><th>Name</th><th>Email</th><th>Role</th><th>Password</th><th>SSO</th></tr></thead><tbody>
${[...people, ...invites].join('\n')}
</tbody></table>
</section>
</div>`
    return html(c, layout('Home', who, body, takeFlash(c)))
  })

  app.get('/orgs/:slug/login', async (c) => {
    const slug = c.req.param('slug')
    const org = ORGS[slug]
    if (!org) return html(c, layout('Not found', null, '<h1>Not found</h1>'), 404)
    const who = await personOf(sessionOf(c)?.userId ?? null)
    const provider = await storage.getAuthProvider(org.id)
    const next = c.req.query('next') ?? ''
    const error = c.req.query('error')
    const domain = slug === 'acme' ? 'acme.test' : 'globex.test'
    const sso = provider
      ? `<form method="get" action="${e(handler.loginUrl(slug))}">
<label for="email">Work email</label><input id="email" name="login_hint" type="email" placeholder="you@${domain}" autocomplete="email">
<p><button type="submit" class="primary">Sign in with SSO</button></p></form>`
      : '<p class="muted">Single sign-on is not configured yet: sign in as the admin and configure it in Settings.</p>'
    const accounts =
      slug === 'acme'
        ? `<code>ada@acme.test</code> and <code>bob@acme.test</code>, password <code>${PASSWORD}</code>`
        : `<code>gina@globex.test</code>, password <code>${PASSWORD}</code>`
    const body = `<h1>Sign in to ${e(org.name)}</h1>
<div class="grid">
<section><h2>Single sign-on${org.provider === 'saml' ? ' (SAML 2.0)' : ''}</h2>${sso}</section>
<section><h2>Password</h2>
${error ? `<p class="error" role="alert">${e(error)}</p>` : ''}
<form method="post" action="/session">
<input type="hidden" name="next" value="${e(next)}">
<input type="hidden" name="org" value="${e(slug)}">
<label for="login-email">Email</label><input id="login-email" name="email" type="email" required autocomplete="username">
<label for="login-password">Password</label><input id="login-password" name="password" type="password" required autocomplete="current-password">
<p><button type="submit" class="primary">Sign in</button></p>
<p class="hint">Password accounts: ${accounts}.</p>
</form></section>
</div>`
    return html(c, layout('Sign in', who, body, takeFlash(c)))
  })

  app.post('/session', async (c) => {
    if (!sameOrigin(c)) return c.text('cross-site request refused', 403)
    const form = await c.req.parseBody()
    const email = String(form.email ?? '')
      .trim()
      .toLowerCase()
    const userId = PASSWORDS[email]
    const slug = ORGS[String(form.org ?? '')] ? String(form.org) : 'acme'
    if (!userId || form.password !== PASSWORD)
      return c.redirect(`/orgs/${slug}/login?error=${encodeURIComponent('Wrong email or password.')}`, 303)
    const previous = sessionOf(c)
    c.header('set-cookie', newSession(c, { userId, invite: previous?.invite ?? null, flash: 'Signed in with your password.' }))
    const next = String(form.next ?? '')
    return c.redirect(next.startsWith('/') && !next.startsWith('//') ? next : '/', 303)
  })

  app.post('/logout', (c) => {
    if (!sameOrigin(c)) return c.text('cross-site request refused', 403)
    const sid = sidOf(c)
    if (sid) sessions.delete(sid)
    c.header('set-cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`)
    return c.redirect('/', 303)
  })

  app.get('/orgs/:slug/settings', async (c) => {
    const slug = c.req.param('slug')
    const org = ORGS[slug]
    if (!org) return html(c, layout('Not found', null, '<h1>Not found</h1>'), 404)
    const userId = sessionOf(c)?.userId ?? null
    const who = await personOf(userId)
    if (!who) return c.redirect(`/orgs/${slug}/login?next=/orgs/${slug}/settings`, 302)
    const provider = await storage.getAuthProvider(org.id)
    let body: string
    if (provider) {
      const config = provider.config as { issuer?: unknown; idp?: { entityId?: unknown } }
      const issuer = provider.providerKey === 'saml' ? config.idp?.entityId : config.issuer
      body = `<h1>Authentication settings</h1><section><p>Single sign-on is <strong>on</strong>: ${e(provider.providerKey)} (issuer <code>${e(String(issuer ?? ''))}</code>).</p>
<p>Members were mailed a link request (see the outbox on the <a href="/">home page</a>).</p></section>`
    } else if (org.provider === 'saml') {
      body = `<h1>Authentication settings</h1><section><h2>Single sign-on (SAML 2.0)</h2>
<p>First give the Demo SAML IdP our values (it already knows them; Okta, Entra ID or Google Workspace ask for these):</p>
<div class="copy"><span>ACS URL</span><code>${e(handler.acsUrl(slug))}</code><span>Entity ID (audience)</span><code>${e(metadataUrl(slug))}</code><span>SP metadata</span><a href="${e(metadataUrl(slug))}">${e(metadataUrl(slug))}</a><span>NameID format</span><code>EmailAddress</code></div>
<p>Then configure SAML with the IdP's metadata URL:</p>
<div class="copy"><span>IdP metadata URL</span><code>${e(samlIdp.metadataUrl)}</code></div>
<p><a class="button" href="${e(handler.setupUrl(slug, 'saml'))}">Configure SSO</a></p>
<p class="hint">Only an owner or manager may do this; ssoflow checks it again when setup finishes.</p></section>`
    } else {
      body = `<h1>Authentication settings</h1><section><h2>Single sign-on</h2>
<p>Configure OpenID Connect with these values from the Demo IdP:</p>
<div class="copy"><span>Issuer URL</span><code>${e(op.issuer)}</code><span>Client ID</span><code>${e(op.clientId)}</code><span>Client secret</span><code>${e(op.clientSecret)}</code></div>
<p><a class="button" href="${e(handler.setupUrl(slug, 'oidc'))}">Configure SSO</a></p>
<p class="hint">Only an owner or manager may do this; ssoflow checks it again when setup finishes.</p></section>`
    }
    return html(c, layout('Settings', who, body, takeFlash(c)))
  })

  app.get('/invite/:token', async (c) => {
    const token = c.req.param('token')
    const hash = createHash('sha256').update(token).digest('hex')
    const row = await db
      .selectFrom('ssoflow_members')
      .select(['id', 'organization_id'])
      .where('invite_token_hash', '=', hash)
      .executeTakeFirst()
    if (!row) return html(c, layout('Invite', null, '<h1>This invitation is not valid.</h1>'), 404)
    const current = sessionOf(c)
    const organizationId = String(row.organization_id)
    const slug = Object.entries(ORGS).find(([, o]) => o.id === organizationId)?.[0] ?? 'acme'
    const invite = { memberId: String(row.id), token, organizationId }
    const sid = sidOf(c)
    if (current && sid) sessions.set(sid, { ...current, invite, flash: 'Invitation saved: now sign in with SSO.' })
    else c.header('set-cookie', newSession(c, { userId: null, invite, flash: 'Invitation saved: now sign in with SSO.' }))
    return c.redirect(`/orgs/${slug}/login`, 302)
  })

  app.get('/2fa', (c) => html(c, layout('Second factor', null, '<h1>Second factor</h1><p>No demo account uses a second factor.</p>')))
  app.notFound((c) => html(c, layout('Not found', null, '<h1>Not found</h1>'), 404))

  fetchImpl = (request) => app.fetch(request)
  return {
    url: baseUrl,
    op,
    inviteUrl: `${baseUrl}/invite/${inviteToken}`,
    samlIdp,
    samlInviteUrl: `${baseUrl}/invite/${samlInviteToken}`,
    async close() {
      await op.close()
      await samlIdp.close()
      await new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
      await db.destroy()
      await pglite.close()
    },
  }
}
