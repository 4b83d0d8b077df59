// A host app for the HTTP tests: memory storage, the dummy provider, recording mail, an
// in-memory host session store keyed by the `host_session` cookie, and the ssoflow handler.
import { createHash, randomBytes } from 'node:crypto'
import { dummyProvider } from '../../src/dummy/index.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, SessionEffect } from '../../src/engine/types.js'
import { createSsoHandler, type HostSession, type SsoHandler, type SsoHandlerOptions, ssoHandlerUrls } from '../../src/http/index.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { createRecordingMailer, createRecordingSignals, type RecordingMailer } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'

export const BASE_PATH = '/auth/sso'
export const ORG_ID = 'org-acme'
export const INVITE_TOKEN = randomBytes(32).toString('base64url')

export interface HostSessionRecord {
  userId: string | null
  twoFactorUserId: string | null
  pendingTwoFactor: string | null
  invite: HostSession['invite']
}

export interface World {
  readonly baseUrl: string
  readonly storage: MemoryStorage
  readonly mailer: RecordingMailer
  readonly sso: AuthPipeline
  readonly handler: SsoHandler<unknown>
  /** Host sessions by id (the `host_session` cookie). */
  readonly sessions: Map<string, HostSessionRecord>
  /** Every effect list applySessionEffects received. */
  readonly applied: (readonly SessionEffect[])[]
  /** When set, getSession throws (a broken host). */
  failGetSession: boolean
}

export function hostSessionId(cookieHeader: string | null): string | null {
  const m = /(?:^|;\s*)host_session=([A-Za-z0-9_-]+)/.exec(cookieHeader ?? '')
  return m?.[1] ?? null
}

/**
 * Builds the world for an app served at `baseUrl`. The org `acme` has the dummy provider set
 * up; users: `admin` (owner), `pat` (password account, pat@acme.test), `nopass` (passwordless,
 * verified address nopass@acme.test, member). `carol@acme.test` has a pending invite.
 */
export function createWorld(
  baseUrl: string,
  overrides: Partial<SsoHandlerOptions<unknown>> = {},
  options: { readonly withProvider?: boolean } = {},
): World {
  const storage = createMemoryStorage()
  const mailer = createRecordingMailer()
  const admin = makeUser({ id: 'admin', email: 'admin@acme.test', name: 'Ada Admin' })
  const pat = makeUser({ id: 'pat', email: 'pat@acme.test', name: 'Pat' })
  const nopass = makeUser({ id: 'nopass', email: 'nopass@acme.test', name: 'No Pass', hasUsablePassword: false })
  storage.seed({
    organizations: [
      makeOrganization({ id: ORG_ID, slug: 'acme', name: 'Acme <Inc>' }),
      makeOrganization({ id: 'org-empty', slug: 'empty' }),
    ],
    users: [admin, pat, nopass],
    members: [
      makeMember({ id: 'm-admin', organizationId: ORG_ID, userId: 'admin', role: 'owner' }),
      makeMember({ id: 'm-nopass', organizationId: ORG_ID, userId: 'nopass' }),
      makeMember({
        id: 'm-carol',
        organizationId: ORG_ID,
        email: 'carol@acme.test',
        inviteTokenHash: createHash('sha256').update(INVITE_TOKEN).digest('hex'),
        inviteExpiresAt: new Date(Date.now() + 7 * 24 * 3600 * 1000),
      }),
    ],
    providers: options.withProvider === false ? [] : [makeProvider({ id: 'ap-acme', organizationId: ORG_ID, providerKey: 'dummy' })],
    // Home-realm discovery: acme.test is verified by Acme; claimed.test is only claimed.
    domains: [
      {
        id: 'dom-acme',
        organizationId: ORG_ID,
        domain: 'acme.test',
        verificationToken: 't1',
        verifiedAt: new Date(),
        createdAt: new Date(),
      },
      {
        id: 'dom-claimed',
        organizationId: ORG_ID,
        domain: 'claimed.test',
        verificationToken: 't2',
        verifiedAt: null,
        createdAt: new Date(),
      },
    ],
  })
  const sso = createAuthPipeline({
    storage,
    mailer,
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: randomBytes(32),
    urls: {
      ...ssoHandlerUrls({ baseUrl, basePath: BASE_PATH }),
      orgLogin: (o) => `/login/${o.slug}`,
      authSettings: (o) => `/settings/${o.slug}/auth`,
      providerSettings: (o) => `/settings/${o.slug}/auth/provider`,
      afterLogin: (o) => `/orgs/${o.slug}/`,
    },
  })
  const sessions = new Map<string, HostSessionRecord>()
  const applied: (readonly SessionEffect[])[] = []
  const world: World = {
    baseUrl,
    storage,
    mailer,
    sso,
    sessions,
    applied,
    failGetSession: false,
    handler: null as unknown as SsoHandler<unknown>,
  }
  const handler = createSsoHandler<unknown>(sso, {
    baseUrl,
    basePath: BASE_PATH,
    resolveOrganization: (slug) => (slug === 'acme' ? ORG_ID : slug === 'empty' ? 'org-empty' : null),
    twoFactorUrl: '/2fa',
    getSession(request) {
      if (world.failGetSession) throw new Error('host session store is down')
      const id = hostSessionId(request.headers.get('cookie'))
      const s = id ? sessions.get(id) : undefined
      return s ? { userId: s.userId, twoFactorUserId: s.twoFactorUserId, invite: s.invite } : null
    },
    applySessionEffects(effects, { request }) {
      applied.push(effects)
      const oldId = hostSessionId(request.headers.get('cookie'))
      let s: HostSessionRecord = (oldId ? sessions.get(oldId) : undefined) ?? {
        userId: null,
        twoFactorUserId: null,
        pendingTwoFactor: null,
        invite: null,
      }
      let id = oldId
      for (const e of effects) {
        if (e.type === 'rotate' || id === null) {
          if (id) sessions.delete(id)
          id = randomBytes(16).toString('base64url')
          s = { ...s }
        }
        if (e.type === 'login') s.userId = e.userId
        if (e.type === 'clearInvite') s.invite = null
        if (e.type === 'pendingTwoFactor') s.pendingTwoFactor = e.userId
        if (e.type === 'revokeOtherSessions') {
          for (const [other, record] of sessions) if (record.userId === e.userId && other !== id) sessions.delete(other)
        }
      }
      if (id === null) return undefined
      sessions.set(id, s)
      return id === oldId ? undefined : [['set-cookie', `host_session=${id}; Path=/; HttpOnly; SameSite=Lax`]]
    },
    ...overrides,
  })
  ;(world as { handler: SsoHandler<unknown> }).handler = handler
  return world
}

/** A host session for a signed-in user; returns the cookie to send. */
export function signIn(world: World, userId: string, extra: Partial<HostSessionRecord> = {}): string {
  const id = randomBytes(16).toString('base64url')
  world.sessions.set(id, { userId, twoFactorUserId: null, pendingTwoFactor: null, invite: null, ...extra })
  return `host_session=${id}`
}
