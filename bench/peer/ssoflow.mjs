// Subject: ssoflow (createAuthPipeline + ssoflow/oidc) behind ssoflow/http's handler
// (`createSsoHandler(sso).fetch(Request)`, called in-process with a `Request`, as Better Auth's
// `auth.handler` is), storage ssoflow/kysely on the harness's Kysely instance (pglite, pg) or
// ssoflow/memory. The project's copy of the peer benchmark's subject (bench/peer/ssoflow.mjs in
// ssoflow's repository; copy it over ../peer-bench/subjects/ssoflow.mjs before a run).
//
// What the host writes, and nothing more (the handler owns routing, cookies, the pipeline
// handle, CSRF, the browser binding and the pages):
//   - getSession: the host session named by the `app.sid` cookie, or anonymous;
//   - applySessionEffects: `login` creates one host session record (SQL stores: one INSERT into a
//     host table `host_sessions` on the same Kysely instance, after ssoflow's transaction, since
//     ssoflow leaves sessions to the host; memory: a Map) and sets its cookie;
//   - resolveOrganization: org slug -> id from a host Map filled at setup.
// The login starts with `GET /sso/login/acme?login_hint=<email>&next=/dashboard` (the handler
// passes the hint to the IdP) and the IdP comes back to `GET /sso/callback`.
//
// Every other policy is ssoflow's default, among them `policy.configCacheMs` (5 s): the engine
// reuses the org and provider rows it read instead of reading them at every start and callback
// (the login transaction still re-checks the provider row it locks).
//
// New users: `policy.newUser: 'create'` (just-in-time sign-up: the callback creates the user,
// identity and membership, as Better Auth does). The outcome ("new" / "returning") is read from
// ssoflow's own `signedIn` outcome (`created.user`) through the handler's `onResult` hook.
//
// Setup, as an integrator would do it: the organization, an admin user and the admin's owner
// membership are host rows, inserted with the storage's documented `seed()`; then the admin runs
// ssoflow's own setup pipeline against the IdP (beginSetup -> the form post with issuer, client id
// and secret -> discovery -> the admin logs in at the IdP -> callback -> setupComplete), which
// stores the provider row bound to the organization and links the admin's identity.
//
// Counting: every StoragePort call goes through countedCall (the port method's name, `tx.<method>`
// inside a transaction, `state.<method>` for pipelineStates, `token.<method>` for oneTimeTokens).
// The host's session insert is counted too, as `host.createSession`.
//
// ssoflow verifies the ID token's signature against the issuer's JWKS, cached per issuer (one
// JWKS request per key set, not per login).
//
// Install (not committed): npm install --no-save /path/to/ssoflow-0.1.0.tgz neverthrow.

import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { sql } from 'kysely'
import { createAuthPipeline } from 'ssoflow'
import { createSsoHandler, ssoHandlerUrls } from 'ssoflow/http'
import { createKyselyStorage, migrateSsoflow } from 'ssoflow/kysely'
import { createMemoryStorage } from 'ssoflow/memory'
import { oidcProvider } from 'ssoflow/oidc'
import { browserFetch, countedCall } from '../lib/context.mjs'
import { applySetCookies, cookieHeader } from '../lib/cookies.mjs'

const require = createRequire(import.meta.url)
const versionOf = (name) => {
  try {
    return require(`${name}/package.json`).version
  } catch {
    return undefined
  }
}

export const name = 'ssoflow'
export const stores = ['memory', 'pglite', 'pg']
export const redirectUri = ({ baseURL }) => `${baseURL}/sso/callback`

const TABLE_PREFIX = 'ssoflow_'
const SESSION_TTL_MS = 7 * 86_400_000
const token = () => randomBytes(32).toString('base64url')

// ---------------------------------------------------------------------------------------------
// Storage-port counting (the same role as countingAdapter in subjects/better-auth.mjs): every
// call of the port, of its transaction handle, of pipelineStates and oneTimeTokens.
function countedTx(tx) {
  const out = {}
  for (const [k, v] of Object.entries(tx)) {
    if (k === 'pipelineStates' || k === 'oneTimeTokens') out[k] = v ? countedSub(v, `tx.${k === 'pipelineStates' ? 'state' : 'token'}`) : v
    else out[k] = typeof v === 'function' ? (...a) => countedCall(`tx.${k}`, () => v(...a)) : v
  }
  return out
}
function countedSub(obj, prefix) {
  const out = {}
  for (const [k, v] of Object.entries(obj)) out[k] = typeof v === 'function' ? (...a) => countedCall(`${prefix}.${k}`, () => v(...a)) : v
  return out
}
function countingStorage(storage) {
  const out = {}
  for (const [k, v] of Object.entries(storage)) {
    if (k === 'seed' || k === 'snapshot') continue // test/import helpers, not part of the port
    if (k === 'transaction') out.transaction = (cb) => countedCall('transaction', () => v((tx) => cb(countedTx(tx))))
    else if (k === 'pipelineStates') out[k] = countedSub(v, 'state')
    else if (k === 'oneTimeTokens') out[k] = countedSub(v, 'token')
    else out[k] = typeof v === 'function' ? (...a) => countedCall(k, () => v(...a)) : v
  }
  return out
}

// ---------------------------------------------------------------------------------------------
function parseCookies(header) {
  const out = {}
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  return out
}

/** Host session records: a host table on SQL stores, a Map on memory. */
async function hostSessions(store) {
  if (!store.kysely) {
    const map = new Map()
    return {
      create: async (s) => void map.set(s.id, s),
      get: async (id) => {
        const s = map.get(id)
        return s && s.expiresAt > Date.now() ? s : null
      },
      count: async () => map.size,
    }
  }
  const db = store.kysely
  await sql`create table if not exists host_sessions (
		id varchar(64) primary key,
		user_id varchar(255) not null,
		organization_id varchar(255),
		sso_complete_at bigint,
		created_at bigint not null,
		expires_at bigint not null
	)`.execute(db)
  return {
    create: (s) =>
      db
        .insertInto('host_sessions')
        .values({
          id: s.id,
          user_id: s.userId,
          organization_id: s.organizationId,
          sso_complete_at: s.ssoCompleteAt,
          created_at: s.createdAt,
          expires_at: s.expiresAt,
        })
        .execute(),
    get: async (id) => {
      const r = await db
        .selectFrom('host_sessions')
        .select(['id', 'user_id'])
        .where('id', '=', id)
        .where('expires_at', '>', Date.now())
        .executeTakeFirst()
      return r ? { id: r.id, userId: r.user_id } : null
    },
    count: async () => Number((await sql`select count(*)::int as n from host_sessions`.execute(db)).rows[0].n),
  }
}

// ---------------------------------------------------------------------------------------------
export async function createSubject({ store, idp, baseURL, domain, clientId, clientSecret, providerId = 'acme' }) {
  const http = { baseUrl: baseURL, basePath: '/sso' }
  const callbackPrefix = redirectUri({ baseURL, providerId })

  // --- storage: ssoflow's Kysely adapter on the harness's Kysely instance (same log hook), or memory
  let raw
  if (store.kind === 'memory') {
    raw = createMemoryStorage()
  } else {
    const naming = { dialect: 'postgres', tablePrefix: TABLE_PREFIX }
    await migrateSsoflow(store.kysely, naming)
    raw = createKyselyStorage(store.kysely, naming)
  }
  const storage = countingStorage(raw)
  const sessions = await hostSessions(store)

  const provider = oidcProvider({
    scopes: ['openid', 'email', 'profile'],
    // The benchmark IdP (oidc-provider defaults) puts email/name in userinfo, not in the ID
    // token of a code flow; userinfo also gives the sub check the other subjects do.
    userinfo: true,
    dangerouslyAllowInsecureLoopbackHttp: true, // the IdP is http://127.0.0.1:<port>
  })
  const sso = createAuthPipeline({
    storage,
    mailer: { send: async () => {} },
    signals: { emit: async () => {} },
    providers: { oidc: provider },
    secret: 'peer-bench-secret-0123456789abcdef0123456789abcdef',
    urls: {
      ...ssoHandlerUrls(http),
      orgLogin: (o) => `/auth/login/${o.slug}/`,
      authSettings: (o) => `/settings/${o.slug}/auth/`,
      providerSettings: (o) => `/settings/${o.slug}/auth/`,
      afterLogin: () => '/dashboard',
    },
    // Just-in-time sign-up, as Better Auth's SSO plugin does.
    policy: { newUser: 'create' },
  })

  // --- host rows: the organization, its admin (owner). Organizations and users are the host's.
  const now = new Date()
  const org = { id: 'org_acme', slug: 'acme', name: 'Acme', defaultRole: 'member', require2fa: false }
  const admin = {
    id: 'user_admin',
    username: 'admin',
    email: 'admin@owner.test',
    name: 'Admin',
    isActive: true,
    isSuspended: false,
    hasUsablePassword: true,
    has2fa: false,
    createdAt: now,
  }
  const flags = { ssoLinked: false, ssoInvalid: false, memberLimitRestricted: false, idpProvisioned: false, idpRoleRestricted: false }
  const adminMember = {
    id: 'member_admin',
    organizationId: org.id,
    userId: admin.id,
    email: null,
    emailNormalized: null,
    role: 'owner',
    flags,
    inviteTokenHash: null,
    inviteExpiresAt: null,
    inviteStatus: 'approved',
    createdAt: now,
  }
  await raw.seed({ organizations: [org], users: [admin], members: [adminMember] })
  const orgIdBySlug = new Map([[org.slug, org.id]])

  // --- SSO setup through ssoflow's setup pipeline, against the IdP (not timed)
  const adminSession = { id: token(), userId: admin.id }
  const unwrap = (r, what) => {
    if (r.isErr()) throw new Error(`ssoflow setup (${what}): ${r.error.code} ${r.error.message} ${JSON.stringify(r.error.details ?? {})}`)
    return r.value
  }
  let step = unwrap(await sso.beginSetup({ organizationId: org.id, providerKey: 'oidc', session: adminSession }), 'beginSetup')
  if (step.kind !== 'render' || step.view !== 'oidc-setup-form') throw new Error(`ssoflow setup: expected the form, got ${step.kind}`)
  step = unwrap(
    await sso.advance({
      handle: step.handle,
      session: adminSession,
      request: { method: 'POST', query: {}, form: { issuer: idp.issuer, client_id: clientId, client_secret: clientSecret } },
    }),
    'form post',
  )
  if (step.kind !== 'redirect') throw new Error(`ssoflow setup: expected a redirect to the IdP, got ${step.kind}`)
  const setupHandle = step.handle
  const back = await followIdp(withLoginHint(step.url, `admin@${domain}`), callbackPrefix)
  step = unwrap(
    await sso.advance({
      handle: setupHandle,
      session: adminSession,
      request: { method: 'GET', query: Object.fromEntries(back.searchParams), form: {} },
    }),
    'callback',
  )
  if (step.kind !== 'setupComplete') throw new Error(`ssoflow setup: expected setupComplete, got ${step.kind}`)
  const authProviderId = step.authProviderId

  // --- the host's part of ssoflow/http: session lookup, session effects, org by slug
  const handler = createSsoHandler(sso, {
    ...http,
    resolveOrganization: (slug) => orgIdBySlug.get(slug) ?? null,
    async getSession(request) {
      const sid = parseCookies(request.headers.get('cookie'))['app.sid']
      const s = sid ? await sessions.get(sid) : null
      return s ? { id: s.id, userId: s.userId } : null
    },
    async applySessionEffects(effects) {
      let login = null
      let ssoCompleteAt = null
      let organizationId = null
      for (const e of effects) {
        if (e.type === 'login') login = e.userId
        if (e.type === 'markSsoComplete') {
          ssoCompleteAt = Date.parse(e.at)
          organizationId = e.organizationId
        }
      }
      if (login === null) return []
      const t = Date.now()
      const record = { id: token(), userId: login, organizationId, ssoCompleteAt, createdAt: t, expiresAt: t + SESSION_TTL_MS }
      await countedCall('host.createSession', () => sessions.create(record))
      return [['set-cookie', `app.sid=${record.id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${SESSION_TTL_MS / 1000}`]]
    },
    onResult(event) {
      if (event.context) event.context.step = event.step
    },
  })

  // --- the subject interface
  async function start({ email, jar }) {
    const url = new URL(handler.loginUrl(org.slug, { next: '/dashboard', loginHint: email }), baseURL)
    const res = await handler.fetch(new Request(url, { method: 'GET', headers: browserHeaders(jar) }), {})
    applySetCookies(jar, res.headers.getSetCookie())
    await res.arrayBuffer()
    const location = res.headers.get('location')
    if (res.status !== 302 || !location || !location.startsWith(idp.issuer)) throw new Error(`ssoflow start ${res.status} -> ${location}`)
    return { authorizeUrl: location }
  }

  async function callback({ url, jar }) {
    const seen = { step: null }
    const res = await handler.fetch(new Request(url, { method: 'GET', headers: browserHeaders(jar) }), seen)
    applySetCookies(jar, res.headers.getSetCookie())
    await res.arrayBuffer()
    const location = res.headers.get('location')
    const step = seen.step
    const outcome = res.status !== 302 || step?.kind !== 'signedIn' ? 'error' : step.created.user ? 'new' : 'returning'
    return { outcome, status: res.status, location }
  }

  async function whoami(jar) {
    const sid = jar.get('app.sid')
    const s = sid ? await sessions.get(sid) : null
    if (!s) return null
    return (await raw.getUser(s.userId))?.email ?? null
  }

  async function counts() {
    if (store.kind === 'memory') {
      const snap = raw.snapshot()
      return {
        user: snap.users.length,
        account: snap.identities.length,
        session: await sessions.count(),
        member: snap.members.length,
        verification: snap.pipelineStates.length,
      }
    }
    const n = async (t) => Number((await sql`select count(*)::int as n from ${sql.table(t)}`.execute(store.kysely)).rows[0].n)
    return {
      user: await n(`${TABLE_PREFIX}users`),
      account: await n(`${TABLE_PREFIX}auth_identities`),
      session: await sessions.count(),
      member: await n(`${TABLE_PREFIX}members`),
      verification: await n(`${TABLE_PREFIX}pipeline_states`),
    }
  }

  return {
    name,
    callbackPrefix,
    versions: { ssoflow: versionOf('ssoflow'), oauth4webapi: versionOf('oauth4webapi'), neverthrow: versionOf('neverthrow') },
    config: {
      storage:
        store.kind === 'memory'
          ? 'ssoflow/memory createMemoryStorage()'
          : `ssoflow/kysely createKyselyStorage(dialect postgres, prefix ${TABLE_PREFIX}) + migrateSsoflow`,
      provider: `ssoflow/oidc oidcProvider(userinfo: true, scopes openid email profile); set up with ssoflow's setup pipeline against the IdP (provider ${authProviderId}, org ${org.id})`,
      host: 'organization, admin user, owner membership inserted with storage.seed(); orgs by slug in a host Map',
      sessions: store.kind === 'memory' ? 'host Map' : 'host table host_sessions, one INSERT per login in applySessionEffects',
      glue: 'ssoflow/http createSsoHandler: getSession, applySessionEffects, resolveOrganization; GET /sso/login/acme?login_hint, GET /sso/callback',
      newUserPath: "policy.newUser 'create': the callback creates user, identity and membership (just-in-time)",
      idTokenSignature: "verified by ssoflow against the issuer's JWKS, cached per issuer",
    },
    start,
    callback,
    whoami,
    counts,
    close: async () => {},
  }
}

function withLoginHint(url, email) {
  const u = new URL(url)
  u.searchParams.set('login_hint', email)
  return u.toString()
}

/** A fresh browser at the IdP: follow redirects until the app's callback URL (setup only). */
async function followIdp(url, stopAt) {
  const jar = new Map()
  for (let hops = 0; hops < 8; hops++) {
    if (url.startsWith(stopAt)) return new URL(url)
    const res = await browserFetch(url, { redirect: 'manual', headers: { cookie: cookieHeader(jar) } })
    applySetCookies(jar, res.headers.getSetCookie())
    const loc = res.headers.get('location')
    const text = await res.text()
    if (!loc) throw new Error(`IdP answered ${res.status} without redirect at ${url}: ${text.slice(0, 300)}`)
    url = new URL(loc, url).toString()
  }
  throw new Error('too many IdP redirects during setup')
}

function browserHeaders(jar) {
  const h = { 'user-agent': 'peer-bench/1.0 (+ssoflow)', accept: 'text/html' }
  const cookie = cookieHeader(jar)
  if (cookie) h.cookie = cookie
  return h
}
