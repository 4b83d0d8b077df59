// A host app for the SAML tests through the HTTP handler: memory storage, the SAML provider
// against a TestIdp (a real signing IdP made in the test, test/helpers/saml-idp.ts), recording
// mail, an in-memory host session store keyed by the `host_session` cookie, and the handler with
// the engine URLs of `ssoHandlerUrls` (the ACS is `POST /auth/sso/acs/:org`).
//
// Orgs: `acme` (SAML configured; `alice` linked, `carol` invited, `admin` owner) and `beta`
// (no SSO; `admin` owner, for setup).
import { createHash, randomBytes } from 'node:crypto'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, SessionEffect } from '../../src/engine/types.js'
import { createSsoHandler, type HostSession, type SsoHandler, type SsoHandlerOptions, ssoHandlerUrls } from '../../src/http/index.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import { type SamlConfig, type SamlProviderOptions, samlProvider } from '../../src/saml/index.js'
import { createRecordingMailer, createRecordingSignals, type RecordingMailer } from '../../src/testing/fakes.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'
import { TestIdp } from '../helpers/saml-idp.js'

export const BASE_PATH = '/auth/sso'
export const ACME = 'org-acme'
export const BETA = 'org-beta'

export interface HostSessionRecord {
  userId: string | null
  invite: HostSession['invite']
}

export interface SamlHttpWorld {
  readonly origin: string
  readonly idp: TestIdp
  readonly storage: MemoryStorage
  readonly mailer: RecordingMailer
  readonly sso: AuthPipeline
  readonly handler: SsoHandler<unknown>
  readonly sessions: Map<string, HostSessionRecord>
  readonly inviteToken: string
  /** acme's ACS URL and SP entity id (the metadata URL). */
  readonly acsUrl: string
  readonly spEntityId: string
}

export interface SamlWorldOptions {
  readonly config?: Partial<SamlConfig>
  readonly provider?: SamlProviderOptions
  readonly handler?: Partial<SsoHandlerOptions<unknown>>
}

export function hostSessionId(cookieHeader: string | null): string | null {
  const m = /(?:^|;\s*)host_session=([A-Za-z0-9_-]+)/.exec(cookieHeader ?? '')
  return m?.[1] ?? null
}

export function createSamlWorld(origin: string, options: SamlWorldOptions = {}): SamlHttpWorld {
  const idp = new TestIdp()
  const storage = createMemoryStorage()
  const mailer = createRecordingMailer()
  const inviteToken = randomBytes(32).toString('base64url')
  const metadataUrl = (slug: string) => `${origin}${BASE_PATH}/metadata/${slug}`
  const spEntityId = metadataUrl('acme')
  const config: SamlConfig = {
    v: 1,
    idp: { entityId: idp.entityId, ssoUrl: idp.ssoUrl, certificates: [idp.cert.certificateBase64] },
    sp: { entityId: spEntityId },
    preset: 'okta',
    mapping: { id: 'id', email: 'email', firstName: 'firstName', lastName: 'lastName', displayName: null },
    nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    allowSha1: false,
    idpInitiated: false,
    ...options.config,
  }
  const admin = makeUser({ id: 'admin', email: 'admin@acme.test', name: 'Ada Admin' })
  const alice = makeUser({ id: 'alice', email: 'alice@acme.test', name: 'Alice' })
  const carol = makeUser({ id: 'carol', email: 'carol@acme.test', name: 'Carol' })
  storage.seed({
    organizations: [makeOrganization({ id: ACME, slug: 'acme', name: 'Acme' }), makeOrganization({ id: BETA, slug: 'beta', name: 'Beta' })],
    users: [admin, alice, carol],
    members: [
      makeMember({ id: 'm-admin', organizationId: ACME, userId: 'admin', role: 'owner' }),
      makeMember({ id: 'm-admin-beta', organizationId: BETA, userId: 'admin', role: 'owner' }),
      makeMember({ id: 'm-alice', organizationId: ACME, userId: 'alice' }),
      makeMember({
        id: 'm-carol',
        organizationId: ACME,
        email: 'carol@acme.test',
        inviteTokenHash: createHash('sha256').update(inviteToken).digest('hex'),
        inviteExpiresAt: new Date(Date.now() + 7 * 24 * 3600 * 1000),
      }),
    ],
    providers: [
      makeProvider({ id: 'ap-acme', organizationId: ACME, providerKey: 'saml', config: config as unknown as Record<string, never> }),
    ],
    identities: [makeIdentity({ id: 'i-alice', authProviderId: 'ap-acme', userId: 'alice', ident: 'okta-alice' })],
  })
  const sso = createAuthPipeline({
    storage,
    mailer,
    signals: createRecordingSignals(),
    providers: { saml: samlProvider({ entityId: (org) => metadataUrl(org.slug), ...options.provider }) },
    secret: randomBytes(32),
    urls: {
      ...ssoHandlerUrls({ baseUrl: origin, basePath: BASE_PATH }),
      orgLogin: (o) => `/login/${o.slug}`,
      authSettings: (o) => `/settings/${o.slug}/auth`,
      providerSettings: (o) => `/settings/${o.slug}/auth/provider`,
      afterLogin: (o) => `/orgs/${o.slug}/`,
    },
  })
  const sessions = new Map<string, HostSessionRecord>()
  const slugs: Record<string, string> = { acme: ACME, beta: BETA }
  const handler = createSsoHandler<unknown>(sso, {
    baseUrl: origin,
    basePath: BASE_PATH,
    resolveOrganization: (slug) => slugs[slug] ?? null,
    getSession(request) {
      const id = hostSessionId(request.headers.get('cookie'))
      const s = id ? sessions.get(id) : undefined
      return s ? { userId: s.userId, invite: s.invite } : null
    },
    applySessionEffects(effects: readonly SessionEffect[], { request }) {
      const oldId = hostSessionId(request.headers.get('cookie'))
      let s: HostSessionRecord = (oldId ? sessions.get(oldId) : undefined) ?? { userId: null, invite: null }
      let id = oldId
      for (const e of effects) {
        if (e.type === 'rotate' || id === null) {
          if (id) sessions.delete(id)
          id = randomBytes(16).toString('base64url')
          s = { ...s }
        }
        if (e.type === 'login') s.userId = e.userId
        if (e.type === 'clearInvite') s.invite = null
      }
      if (id === null) return undefined
      sessions.set(id, s)
      return id === oldId ? undefined : [['set-cookie', `host_session=${id}; Path=/; HttpOnly; SameSite=Lax`]]
    },
    ...options.handler,
  })
  return {
    origin,
    idp,
    storage,
    mailer,
    sso,
    handler,
    sessions,
    inviteToken,
    acsUrl: `${origin}${BASE_PATH}/acs/acme`,
    spEntityId,
  }
}

/** A host session (signed in as `userId`, optionally carrying acme's invite); the cookie to send. */
export function signIn(world: SamlHttpWorld, userId: string, invite = false): string {
  const id = randomBytes(16).toString('base64url')
  world.sessions.set(id, {
    userId,
    invite: invite ? { memberId: 'm-carol', token: world.inviteToken, organizationId: ACME } : null,
  })
  return `host_session=${id}`
}
