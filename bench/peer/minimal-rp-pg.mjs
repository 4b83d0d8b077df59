// Subject for ../shared/peer-bench: the harness's hand-written minimal relying party
// (subjects/minimal-rp.mjs) with its Maps moved into PostgreSQL, on the harness's Kysely instance
// (the same `pg` pool, log hook and statement counter as the other subjects). It is the floor of
// a PostgreSQL-backed login on this harness and machine: the protocol work every correct RP does
// (state + PKCE, code exchange, RS256 ID token with a cached JWKS, userinfo, sub check) and the
// fewest statements a login can write with its state in the database and no library:
//   start:     INSERT the state                                                   (1)
//   callback:  DELETE ... RETURNING the state (single use), SELECT the link,
//              INSERT the session                                                 (3)
//              a new user: one INSERT ... WITH (user, link, membership) between   (+1)
// No transaction, no membership check, no lost-update guard, no invite, no audit: less than any
// library must do, so a library's logins/s on `pg` cannot be expected above this subject's.
//
// Copy it next to the others before a run: cp bench/peer/minimal-rp-pg.mjs <peer-bench>/subjects/
// then `--subjects better-auth,ssoflow,minimal-rp-pg --stores pg` (docs/performance.md).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { sql } from 'kysely'
import { applySetCookies } from '../lib/cookies.mjs'

export const name = 'minimal-rp-pg'
export const stores = ['pg', 'pglite']
export const redirectUri = ({ baseURL, providerId }) => `${baseURL}/rppg/callback/${providerId}`

export async function createSubject({ store, idp, baseURL, clientId, clientSecret, providerId = 'acme' }) {
  if (!store.kysely) throw new Error('minimal-rp-pg needs a SQL store (pg or pglite)')
  const db = store.kysely
  await sql`create table if not exists rppg_state (state text primary key, verifier text not null, exp bigint not null)`.execute(db)
  await sql`create table if not exists rppg_user (id text primary key, email text not null, name text not null)`.execute(db)
  await sql`create table if not exists rppg_link (key text primary key, user_id text not null references rppg_user(id))`.execute(db)
  await sql`create table if not exists rppg_member (user_id text primary key references rppg_user(id))`.execute(db)
  await sql`create table if not exists rppg_session (token text primary key, user_id text not null, exp bigint not null)`.execute(db)

  const disc = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()
  const jwks = createRemoteJWKSet(new URL(disc.jwks_uri)) // cached across logins
  const redirect = redirectUri({ baseURL, providerId })
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`

  async function start({ email, jar }) {
    const state = randomBytes(24).toString('base64url')
    const verifier = randomBytes(32).toString('base64url')
    await sql`insert into rppg_state (state, verifier, exp) values (${state}, ${verifier}, ${Date.now() + 600_000})`.execute(db)
    applySetCookies(jar, [`rppg_state=${state}; Path=/rppg; HttpOnly; SameSite=Lax; Max-Age=600`])
    const u = new URL(disc.authorization_endpoint)
    u.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid email profile',
      redirect_uri: redirect,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      login_hint: email,
    }).toString()
    return { authorizeUrl: u.toString() }
  }

  async function callback({ url, jar }) {
    const q = new URL(url).searchParams
    const state = q.get('state') ?? ''
    const cookieState = jar.get('rppg_state') ?? ''
    if (!state || state.length !== cookieState.length || !timingSafeEqual(Buffer.from(state), Buffer.from(cookieState)))
      return { outcome: 'error', status: 400, location: 'state' }
    const claimed = await sql`delete from rppg_state where state = ${state} returning verifier, exp`.execute(db)
    const p = claimed.rows[0]
    applySetCookies(jar, ['rppg_state=; Max-Age=0'])
    if (!p || Number(p.exp) < Date.now() || q.get('iss') !== idp.issuer) return { outcome: 'error', status: 400, location: 'state' }

    const tokenRes = await fetch(disc.token_endpoint, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: q.get('code') ?? '',
        redirect_uri: redirect,
        code_verifier: p.verifier,
      }),
    })
    const tokens = await tokenRes.json()
    if (!tokenRes.ok) return { outcome: 'error', status: 400, location: 'token' }
    const { payload } = await jwtVerify(tokens.id_token, jwks, { issuer: idp.issuer, audience: clientId, algorithms: ['RS256'] })
    const uiRes = await fetch(disc.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    const info = await uiRes.json()
    if (!uiRes.ok || info.sub !== payload.sub || typeof info.email !== 'string')
      return { outcome: 'error', status: 400, location: 'userinfo' }

    const key = `${payload.iss}|${payload.sub}`
    const linked = await sql`select user_id from rppg_link where key = ${key}`.execute(db)
    let userId = linked.rows[0]?.user_id
    const isNew = userId === undefined
    if (isNew) {
      userId = randomBytes(16).toString('hex')
      await sql`with u as (insert into rppg_user (id, email, name) values (${userId}, ${info.email.toLowerCase()}, ${info.name ?? ''}) returning id),
        l as (insert into rppg_link (key, user_id) select ${key}, id from u)
        insert into rppg_member (user_id) select id from u`.execute(db)
    }
    const token = randomBytes(32).toString('base64url')
    await sql`insert into rppg_session (token, user_id, exp) values (${token}, ${userId}, ${Date.now() + 7 * 86_400_000})`.execute(db)
    applySetCookies(jar, [`rppg_session=${token}; Path=/; HttpOnly; SameSite=Lax`])
    return { outcome: isNew ? 'new' : 'returning', status: 302, location: isNew ? '/welcome' : '/dashboard' }
  }

  async function count(table) {
    const r = await sql`select count(*)::int as n from ${sql.table(table)}`.execute(db)
    return Number(r.rows[0].n)
  }

  return {
    name,
    callbackPrefix: redirect,
    versions: { jose: 'see packages' },
    config: {
      storage: `PostgreSQL via the harness's Kysely (${store.kind}), raw SQL, no transactions`,
      jwks: 'cached (createRemoteJWKSet)',
      backchannel: 'token + userinfo (JWKS once)',
    },
    start,
    callback,
    async whoami(jar) {
      const r =
        await sql`select u.email from rppg_session s join rppg_user u on u.id = s.user_id where s.token = ${jar.get('rppg_session') ?? ''}`.execute(
          db,
        )
      return r.rows[0]?.email ?? null
    },
    async counts() {
      return {
        user: await count('rppg_user'),
        account: await count('rppg_link'),
        session: await count('rppg_session'),
        member: await count('rppg_member'),
        verification: await count('rppg_state'),
      }
    },
    close: async () => {},
  }
}
