// The world of the SAML tests: one org (`acme`) whose SAML provider is configured against a
// TestIdp (a real signing IdP made in the test), a second org (`beta`) without SSO for setup,
// users for the login paths, and helpers that walk the real redirects: beginLogin -> the
// AuthnRequest URL -> the IdP's signed response -> the ACS POST through `advance`.
import type { Result, ResultAsync } from 'neverthrow'
import { createAuthPipeline } from '../../src/engine/create.js'
import type { AuthPipeline, AuthPipelineOptions, SessionInfo, Step } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/memory/index.js'
import type { StoragePort } from '../../src/ports/storage.js'
import { type SamlConfig, type SamlProviderOptions, samlProvider } from '../../src/saml/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  type FixedClock,
  fixedClock,
  makeIdentity,
  makeMember,
  makeOrganization,
  makeProvider,
  makeUser,
  primaryEmailOf,
  sentryStyleUrls,
} from '../../src/testing/index.js'
import { b64, type ReadRequest, type ResponseFields, type SignOptions, TestIdp } from '../helpers/saml-idp.js'

export const BASE = 'https://app.example.com'
export const ACME = 'org-acme'
export const BETA = 'org-beta'
export const ACS = `${BASE}/auth/sso/acme/`
export const SP_ENTITY_ID = `${BASE}/saml/metadata/acme/`
export const INVITE_TOKEN = 'carol-invite-token-of-enough-length-0123456789'
/** sha256(INVITE_TOKEN), precomputed so that seedRows stays synchronous. */
const INVITE_TOKEN_HASH = '0afa47c5c8d79de0c9b001132c3fbb6b86849e0dc2737ac8990b74e00f2b822d'

export const urls: AuthPipelineOptions['urls'] = { ...sentryStyleUrls(BASE), pipelineCallback: (org) => `${BASE}/auth/sso/${org.slug}/` }

/** The stored config of acme's provider for `idp` (Okta preset), with overrides. */
export function acmeConfig(idp: TestIdp, overrides: Partial<SamlConfig> = {}): SamlConfig {
  return {
    v: 1,
    idp: { entityId: idp.entityId, ssoUrl: idp.ssoUrl, certificates: [idp.cert.certificateBase64] },
    sp: { entityId: SP_ENTITY_ID },
    preset: 'okta',
    mapping: { id: 'id', email: 'email', firstName: 'firstName', lastName: 'lastName', displayName: null },
    nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    allowSha1: false,
    idpInitiated: false,
    ...overrides,
  }
}

export interface SamlWorld {
  readonly idp: TestIdp
  readonly storage: StoragePort
  readonly memory: MemoryStorage | null
  readonly clock: FixedClock
  readonly sso: AuthPipeline
  readonly mailer: ReturnType<typeof createRecordingMailer>
}

export interface WorldOptions {
  readonly idp?: TestIdp
  readonly config?: Partial<SamlConfig>
  readonly provider?: SamlProviderOptions
  /** Another storage (a Kysely adapter); it must already hold the seed rows of `seedRows()`. */
  readonly storage?: StoragePort
  readonly clock?: FixedClock
}

/** Rows every world starts with. */
export function seedRows(idp: TestIdp, config: Partial<SamlConfig> = {}) {
  const admin = makeUser({ id: 'u-admin', email: 'admin@acme.test' })
  const alice = makeUser({ id: 'u-alice', email: 'alice@acme.test', name: 'Alice' })
  const bob = makeUser({ id: 'u-bob', email: 'bob@acme.test' })
  const carol = makeUser({ id: 'u-carol', email: 'carol@acme.test' })
  return {
    organizations: [makeOrganization({ id: ACME, slug: 'acme', name: 'Acme' }), makeOrganization({ id: BETA, slug: 'beta', name: 'Beta' })],
    providers: [
      makeProvider({
        id: 'ap-acme',
        organizationId: ACME,
        providerKey: 'saml',
        config: acmeConfig(idp, config) as unknown as Record<string, never>,
      }),
    ],
    users: [admin, alice, bob, carol],
    userEmails: [primaryEmailOf(admin), primaryEmailOf(alice), primaryEmailOf(bob), primaryEmailOf(carol)],
    members: [
      makeMember({ id: 'm-admin-acme', organizationId: ACME, userId: admin.id, role: 'owner' }),
      makeMember({ id: 'm-admin-beta', organizationId: BETA, userId: admin.id, role: 'owner' }),
      makeMember({ id: 'm-alice', organizationId: ACME, userId: alice.id }),
      // Carol: a user with an approved invite to acme, addressed to her, carried by her session.
      makeMember({
        id: 'm-carol-invite',
        organizationId: ACME,
        email: carol.email,
        inviteTokenHash: INVITE_TOKEN_HASH,
        inviteExpiresAt: new Date('2027-01-01T00:00:00.000Z'),
      }),
    ],
    identities: [makeIdentity({ id: 'i-alice', authProviderId: 'ap-acme', userId: alice.id, ident: 'okta-alice' })],
  }
}

export function world(options: WorldOptions = {}): SamlWorld {
  const idp = options.idp ?? new TestIdp()
  const clock = options.clock ?? fixedClock(new Date())
  idp.now = () => clock.now()
  let memory: MemoryStorage | null = null
  let storage = options.storage
  if (!storage) {
    memory = createMemoryStorage({ clock })
    memory.seed(seedRows(idp, options.config))
    storage = memory
  }
  const mailer = createRecordingMailer()
  const sso = createAuthPipeline({
    storage,
    mailer,
    signals: createRecordingSignals(),
    providers: { saml: samlProvider(options.provider) },
    secret: 'saml tests secret of at least thirty-two bytes',
    clock,
    urls,
  })
  return { idp, storage, memory, clock, sso, mailer }
}

export const post = (form: Record<string, string>) => ({ method: 'POST' as const, query: {}, form })

/** Starts a login at acme: the handle and the AuthnRequest the IdP receives. */
export async function beginLogin(w: SamlWorld, session: SessionInfo): Promise<{ handle: string; request: ReadRequest }> {
  const step = (await w.sso.beginLogin({ organizationId: ACME, session }))._unsafeUnwrap()
  if (step.kind !== 'redirect') throw new Error(`expected a redirect to the IdP, got ${step.kind}`)
  return { handle: step.handle, request: TestIdp.readRequest(step.url) }
}

/** Posts a response to the ACS of a pipeline. */
export function acs(w: SamlWorld, handle: string, session: SessionInfo, xml: string, relayState: string): ResultAsync<Step, AuthError> {
  return w.sso.advance({ handle, session, request: post({ SAMLResponse: b64(xml), RelayState: relayState }) })
}

/** The attributes the Okta preset reads, for a user. */
export function oktaAttributes(id: string, email: string, first = 'Test', last = 'User'): Record<string, string> {
  return { id, email, firstName: first, lastName: last }
}

/** beginLogin, the IdP answers with `fields` signed per `sign`, the ACS POST: the step or error. */
export async function login(
  w: SamlWorld,
  session: SessionInfo,
  fields: ResponseFields,
  sign: SignOptions = {},
): Promise<Result<Step, AuthError>> {
  const { handle, request } = await beginLogin(w, session)
  const xml = await w.idp.respond(request, fields, sign)
  return acs(w, handle, session, xml, request.relayState)
}
