/**
 * SAML 2.0 provider on node-saml (Node only). SP-initiated login with the AuthnRequest id and a
 * RelayState bound to the pipeline state; the ACS validates the posted response (see
 * `response.ts`) and marks the assertion single-use until it expires; optional IdP-initiated
 * login through the engine's unsolicited entry; setup from IdP metadata (XML or URL) or fields
 * by hand, then a real SAML login of the admin; SP metadata for the IdP's admin.
 *
 * @module
 */
import { generateServiceProviderMetadata, SAML, ValidateInResponseTo } from '@node-saml/node-saml'
import { type AuthError, authError } from '../../errors.js'
import { type IdentityInput, type JsonObject, type JsonValue, parseIdentity } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'
import type { Organization } from '../../model/records.js'
import type { AddressPolicy, OutboundFetch } from '../../net/policy.js'
import { timingSafeEqual } from '../../state/crypto.js'
import type { Provider, ProviderStep, ProviderWarning, ServiceMetadata, ServiceMetadataInput, StepContext, StepResult } from '../types.js'
import { certificatePem, parseSamlConfig, type SamlConfig, samlConfigJson } from './config.js'
import { DEFAULT_MAPPING, mapSubject, NAME_ID_FORMATS, SAML_PRESETS, type SamlAttributeMapping, type SamlPreset } from './mapping.js'
import { fetchMetadata, type IdpDescriptor, idpFromFields, type MetadataFetchOptions, parseIdpMetadata } from './metadata.js'
import { type SamlKeyPair, validateResponse } from './response.js'
import type { XmlLimits } from './xml.js'

export type { SamlConfig } from './config.js'
export {
  NAME_ID,
  NAME_ID_FORMATS,
  SAML_PRESETS,
  type SamlAttributeMapping,
  type SamlPreset,
  type SamlPresetDefinition,
} from './mapping.js'
export type { SamlKeyPair } from './response.js'

/** Options of {@link samlProvider}. @group Providers */
export interface SamlProviderOptions {
  /** Provider key stored on the auth provider row. @defaultValue `'saml'` */
  readonly key?: string | undefined
  /** Display name. @defaultValue `'SAML 2.0'` */
  readonly displayName?: string | undefined
  /**
   * Our (SP) entity id for an org, given its ACS URL (`urls.pipelineCallback(org)`). It is stored
   * in the config at setup, so a later change (an org renamed) does not break its IdP.
   * @defaultValue `<origin of the ACS URL>/saml/metadata/<org slug>/`
   */
  readonly entityId?: ((organization: Organization, acsUrl: string) => string) | undefined
  /** Where the host serves `sso.serviceMetadata(...)` for an org; shown on the setup form. */
  readonly metadataUrl?: ((organization: Organization) => string) | undefined
  /** Clock skew allowed on NotBefore / NotOnOrAfter / IssueInstant, in seconds. @defaultValue 60 */
  readonly clockSkewSeconds?: number | undefined
  /** Largest decoded SAMLResponse accepted, in bytes. @defaultValue 262144 */
  readonly maxResponseBytes?: number | undefined
  /** Deepest element nesting accepted in a response. @defaultValue 32 */
  readonly maxDepth?: number | undefined
  /** Most elements accepted in a response. @defaultValue 5000 */
  readonly maxElements?: number | undefined
  /**
   * The SP's decryption key pair (PEM). With it, encrypted assertions are accepted and the SP
   * metadata advertises the certificate for encryption. Kept in the options, never stored.
   */
  readonly decryption?: SamlKeyPair | undefined
  /** The SP's signing key pair (PEM): AuthnRequests are signed (RSA-SHA256) and the metadata says so. */
  readonly signing?: SamlKeyPair | undefined
  /** Fetching a metadata URL given at setup. */
  readonly metadataFetch?:
    | {
        /** @defaultValue 10000 */
        readonly timeoutMs?: number | undefined
        /** @defaultValue 1048576 */
        readonly maxBytes?: number | undefined
        /**
         * Replaces the fetch (proxies, tests). The address policy still checks the URL (resolving
         * names through `addressPolicy.resolver`) before it is called.
         */
        readonly fetch?: OutboundFetch | undefined
      }
    | undefined
  /**
   * Which metadata URLs may be fetched (threat 60): https only, and no loopback, private,
   * link-local, CGNAT, multicast, documentation, reserved or cloud-metadata address, as a literal
   * or (with a `resolver`) after resolution. On Node pass `nodeAddressPolicy()` from
   * `ssoflow/node` (resolution, and connections pinned to the checked address).
   * @defaultValue `{}` (literal checks only)
   */
  readonly addressPolicy?: AddressPolicy | undefined
  /**
   * DANGER: accept `http:` metadata URLs and loopback addresses on loopback hosts (127.0.0.1, ::1,
   * localhost). For tests against a local IdP only; any other http URL is refused.
   * @defaultValue false
   */
  readonly dangerouslyAllowInsecureLoopbackHttp?: boolean | undefined
}

const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024

/**
 * The largest ACS form body that can carry a SAMLResponse within `maxResponseBytes` (decoded):
 * its base64, every character percent-encoded at worst, plus the RelayState. Give it to the HTTP
 * handler's `maxAcsBodyBytes` when you raise the provider's `maxResponseBytes`; the handler's
 * default fits the provider's default.
 *
 * @example
 * ```ts
 * import { samlAcsMaxBodyBytes } from 'ssoflow/saml'
 * const maxAcsBodyBytes = samlAcsMaxBodyBytes({ maxResponseBytes: 512 * 1024 }) // about 2 MiB
 * ```
 * @group Providers
 */
export function samlAcsMaxBodyBytes(options: { readonly maxResponseBytes?: number | undefined } = {}): number {
  const maxResponseBytes = positiveInt('maxResponseBytes', options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES)
  return 3 * (Math.ceil(maxResponseBytes / 3) * 4 + 1024) + 4096
}

/** View name of the setup form. @group Providers */
export const SAML_SETUP_VIEW = 'saml-setup-form'

/** Step ids (part of the pipeline fingerprint). @group Providers */
export const SAML_STEP_IDS = { configure: 'saml.configure', authnRequest: 'saml.authn-request', acs: 'saml.acs' } as const

/** Codes of the setup outcome's `providerWarnings`. @group Providers */
export const SAML_WARNINGS = {
  sha1: 'SAML_SHA1_ALLOWED',
  idpInitiated: 'SAML_IDP_INITIATED_ENABLED',
} as const

const TRUTHY = new Set(['on', 'true', '1'])
const MAX_FORM_TEXT = 256

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`)
  return value
}

function defaultEntityId(organization: Organization, acsUrl: string): string {
  return `${new URL(acsUrl).origin}/saml/metadata/${encodeURIComponent(organization.slug)}/`
}

function field(form: Readonly<Record<string, string>>, name: string): string {
  return (form[name] ?? '').trim()
}

/**
 * Creates the SAML 2.0 provider.
 *
 * @example
 * ```ts
 * import { createAuthPipeline } from 'ssoflow'
 * import { samlProvider } from 'ssoflow/saml'
 * const sso = createAuthPipeline({ ...ports, providers: { saml: samlProvider({ clockSkewSeconds: 60 }) }, secret, urls })
 * ```
 * @group Providers
 */
export function samlProvider(options: SamlProviderOptions = {}): Provider {
  const key = options.key ?? 'saml'
  const skewMs = (options.clockSkewSeconds === undefined ? 60 : positiveIntOrZero('clockSkewSeconds', options.clockSkewSeconds)) * 1000
  const maxResponseBytes = positiveInt('maxResponseBytes', options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES)
  const limits: XmlLimits = {
    maxLength: maxResponseBytes,
    maxDepth: positiveInt('maxDepth', options.maxDepth, 32),
    maxElements: positiveInt('maxElements', options.maxElements, 5000),
  }
  const maxBase64Length = Math.ceil(maxResponseBytes / 3) * 4 + 1024
  const fetchOptions: MetadataFetchOptions = {
    timeoutMs: positiveInt('metadataFetch.timeoutMs', options.metadataFetch?.timeoutMs, 10_000),
    maxBytes: positiveInt('metadataFetch.maxBytes', options.metadataFetch?.maxBytes, 1024 * 1024),
    fetch: options.metadataFetch?.fetch,
    policy: {
      ...options.addressPolicy,
      dangerouslyAllowLoopback:
        options.dangerouslyAllowInsecureLoopbackHttp === true || options.addressPolicy?.dangerouslyAllowLoopback === true,
    },
  }
  const entityIdFor = options.entityId ?? defaultEntityId
  const decryption = options.decryption ?? null
  const signing = options.signing ?? null

  /** The config to use: the stored one (login) or the one bound by the setup form. */
  function configFor(ctx: StepContext): SamlConfig | null {
    return parseSamlConfig(ctx.flow === 'setup' ? ctx.data.saml_config : ctx.config)
  }

  const notConfigured = (): StepResult => ({
    type: 'error',
    error: authError('PROVIDER_NOT_CONFIGURED', { details: { reason: 'saml-config' } }),
  })

  const configure: ProviderStep = {
    id: SAML_STEP_IDS.configure,
    async handle(ctx): Promise<StepResult> {
      const acsUrl = ctx.callbackUrl
      const spEntityId = entityIdFor(ctx.organization, acsUrl)
      const form = ctx.request.form
      const render = (error: string | null): StepResult => ({
        type: 'render',
        view: SAML_SETUP_VIEW,
        model: {
          action: ctx.callbackUrl,
          method: 'POST',
          serviceProvider: {
            entityId: spEntityId,
            acsUrl,
            metadataUrl: options.metadataUrl ? options.metadataUrl(ctx.organization) : null,
            nameIdFormat: NAME_ID_FORMATS.unspecified,
          },
          presets: Object.entries(SAML_PRESETS).map(([value, p]) => ({ value, label: p.label })),
          fields: [
            { name: 'metadata_xml', label: 'IdP metadata (XML)', type: 'textarea', required: false, value: '' },
            {
              name: 'metadata_url',
              label: 'IdP metadata URL',
              type: 'url',
              required: false,
              value: field(form, 'metadata_url').slice(0, 1024),
            },
            {
              name: 'entity_id',
              label: 'IdP entity id (issuer)',
              type: 'text',
              required: false,
              value: field(form, 'entity_id').slice(0, 1024),
            },
            {
              name: 'sso_url',
              label: 'IdP single sign-on URL',
              type: 'url',
              required: false,
              value: field(form, 'sso_url').slice(0, 1024),
            },
            { name: 'certificate', label: 'IdP signing certificate (PEM)', type: 'textarea', required: false, value: '' },
            {
              name: 'preset',
              label: 'Identity provider',
              type: 'select',
              required: false,
              value: field(form, 'preset').slice(0, 32) || 'okta',
              options: [
                ...Object.entries(SAML_PRESETS).map(([value, p]) => ({ value, label: p.label })),
                { value: 'custom', label: 'Other (NameID as the id and the email, or the attributes below)' },
              ],
            },
            { name: 'attr_id', label: 'Attribute for the user id (NameID by default)', type: 'text', required: false, value: '' },
            { name: 'attr_email', label: 'Attribute for the email', type: 'text', required: false, value: '' },
            { name: 'attr_first_name', label: 'Attribute for the first name', type: 'text', required: false, value: '' },
            { name: 'attr_last_name', label: 'Attribute for the last name', type: 'text', required: false, value: '' },
            { name: 'attr_display_name', label: 'Attribute for the display name', type: 'text', required: false, value: '' },
            { name: 'allow_sha1', label: 'Accept SHA-1 signatures (insecure)', type: 'checkbox', required: false },
            { name: 'idp_initiated', label: 'Accept sign-ins started at the IdP', type: 'checkbox', required: false },
          ],
          notice: `Give your identity provider: ACS URL ${acsUrl}, entity ID (audience) ${spEntityId}${
            options.metadataUrl ? `, or our metadata at ${options.metadataUrl(ctx.organization)}` : ''
          }.`,
          error,
        },
      })
      if (ctx.request.method !== 'POST') return render(null)
      const xml = form.metadata_xml ?? ''
      const url = field(form, 'metadata_url')
      const manual = [field(form, 'entity_id'), field(form, 'sso_url'), field(form, 'certificate')]
      const sources = [xml.trim().length > 0, url.length > 0, manual.some((v) => v.length > 0)].filter(Boolean).length
      if (sources === 0) return render('Paste the IdP metadata, give its URL, or fill in the entity id, SSO URL and certificate.')
      if (sources > 1) return render('Use one of: metadata XML, metadata URL, or the fields by hand.')
      const presetValue = field(form, 'preset')
      if (presetValue !== '' && presetValue !== 'custom' && !(presetValue in SAML_PRESETS))
        return render('Unknown identity provider preset.')
      const overrides: Partial<Record<keyof SamlAttributeMapping, string>> = {}
      const names: readonly [keyof SamlAttributeMapping, string][] = [
        ['id', 'attr_id'],
        ['email', 'attr_email'],
        ['firstName', 'attr_first_name'],
        ['lastName', 'attr_last_name'],
        ['displayName', 'attr_display_name'],
      ]
      for (const [to, from] of names) {
        const v = field(form, from)
        if (v.length > MAX_FORM_TEXT) return render('Attribute names are at most 256 characters.')
        if (v.length > 0) overrides[to] = v
      }

      let idp: IdpDescriptor
      if (xml.trim().length > 0) {
        const parsed = parseIdpMetadata(xml, fetchOptions.maxBytes)
        if (!parsed.ok) return { type: 'error', error: parsed.error }
        idp = parsed.idp
      } else if (url.length > 0) {
        const fetched = await fetchMetadata(url, fetchOptions)
        if (!fetched.ok) return { type: 'error', error: fetched.error }
        const parsed = parseIdpMetadata(fetched.xml, fetchOptions.maxBytes)
        if (!parsed.ok) return { type: 'error', error: parsed.error }
        idp = parsed.idp
      } else {
        const parsed = idpFromFields({ entityId: manual[0] as string, ssoUrl: manual[1] as string, certificate: manual[2] as string })
        if (!parsed.ok) return { type: 'error', error: parsed.error }
        idp = parsed.idp
      }
      if (idp.wantsSignedRequests && !signing) {
        return { type: 'error', error: authError('SAML_METADATA_INVALID', { details: { reason: 'signed-requests-required' } }) }
      }
      const preset = presetValue === '' ? 'custom' : (presetValue as SamlPreset | 'custom')
      const base = preset === 'custom' ? DEFAULT_MAPPING : SAML_PRESETS[preset].mapping
      const mapping: SamlAttributeMapping = { ...base, ...overrides }
      const config: SamlConfig = {
        v: 1,
        idp: { entityId: idp.entityId, ssoUrl: idp.ssoUrl, certificates: idp.certificates },
        sp: { entityId: spEntityId },
        preset,
        mapping,
        nameIdFormat: preset === 'custom' ? NAME_ID_FORMATS.unspecified : SAML_PRESETS[preset].nameIdFormat,
        allowSha1: TRUTHY.has(field(form, 'allow_sha1').toLowerCase()),
        idpInitiated: TRUTHY.has(field(form, 'idp_initiated').toLowerCase()),
      }
      return { type: 'next', bind: { saml_config: samlConfigJson(config) } }
    },
  }

  const authnRequest: ProviderStep = {
    id: SAML_STEP_IDS.authnRequest,
    async handle(ctx): Promise<StepResult> {
      // The IdP's POST lands on this step first (the state's step did not move on the redirect):
      // let the ACS step judge it.
      if (ctx.request.method === 'POST' && ctx.request.form.SAMLResponse !== undefined) return { type: 'next' }
      const config = configFor(ctx)
      if (!config) return notConfigured()
      const requestId = `_${ctx.random()}`
      const relayState = ctx.random()
      let url: string
      try {
        const saml = new SAML({
          entryPoint: config.idp.ssoUrl,
          callbackUrl: ctx.callbackUrl,
          issuer: config.sp.entityId,
          idpCert: config.idp.certificates.map(certificatePem),
          identifierFormat: config.nameIdFormat,
          disableRequestedAuthnContext: true,
          validateInResponseTo: ValidateInResponseTo.never,
          generateUniqueId: () => requestId,
          ...(signing ? { privateKey: signing.privateKey, publicCert: signing.certificate, signatureAlgorithm: 'sha256' as const } : {}),
        })
        url = await saml.getAuthorizeUrlAsync(relayState, undefined, {})
      } catch (cause) {
        return { type: 'error', error: authError('PROVIDER_ERROR', { cause, details: { stage: 'authn-request' } }) }
      }
      return { type: 'redirect', url, bind: { saml: { requestId, relayState } } }
    },
  }

  const acs: ProviderStep = {
    id: SAML_STEP_IDS.acs,
    async handle(ctx): Promise<StepResult> {
      const error = (e: AuthError): StepResult => ({ type: 'error', error: e })
      if (ctx.request.method !== 'POST') return error(authError('SAML_RESPONSE_INVALID', { details: { reason: 'not-a-post' } }))
      const samlResponse = ctx.request.form.SAMLResponse
      if (typeof samlResponse !== 'string' || samlResponse.length === 0) {
        return error(authError('SAML_RESPONSE_INVALID', { details: { reason: 'missing' } }))
      }
      let requestId: string | null = null
      if (ctx.unsolicited !== true) {
        const bound = ctx.data.saml
        const pending =
          typeof bound === 'object' && bound !== null && !Array.isArray(bound)
            ? (bound as { requestId?: unknown; relayState?: unknown })
            : null
        if (!pending || typeof pending.requestId !== 'string' || typeof pending.relayState !== 'string') {
          return error(authError('STATE_INVALID', { details: { reason: 'no-pending-request' } }))
        }
        const relayState = ctx.request.form.RelayState
        if (typeof relayState !== 'string' || !timingSafeEqual(relayState, pending.relayState)) {
          return error(authError('RELAY_STATE_INVALID', { details: { reason: relayState === undefined ? 'missing' : 'not-ours' } }))
        }
        requestId = pending.requestId
      }
      const config = configFor(ctx)
      if (!config) return notConfigured()
      const verified = await validateResponse(samlResponse, {
        config,
        acsUrl: ctx.callbackUrl,
        requestId,
        now: ctx.now,
        skewMs,
        limits,
        maxBase64Length,
        decryption,
      })
      if (!verified.ok) return error(verified.error)
      const a = verified.value
      const mapped = mapSubject(a.subject, config.mapping)
      if (!mapped.ok) {
        return error(
          authError('IDENTITY_INVALID', {
            details: { reason: 'saml-attributes', missing: mapped.missing, receivedAttributes: mapped.received },
          }),
        )
      }
      const name = mapped.name === null ? null : Array.from(mapped.name).slice(0, LIMITS.name).join('')
      const identity = parseIdentity({ id: mapped.id, email: mapped.email, name })
      if (identity.isErr()) {
        const received = [...(a.subject.nameId !== null ? ['NameID'] : []), ...a.subject.attributes.keys()].slice(0, 50)
        return error(authError('IDENTITY_INVALID', { details: { ...identity.error.details, receivedAttributes: received } }))
      }
      return {
        type: 'next',
        bind: {
          // The request id and RelayState are spent.
          saml: null,
          saml_result: {
            id: mapped.id,
            email: mapped.email,
            name,
            nameId: a.subject.nameId,
            nameIdFormat: a.nameIdFormat,
            sessionIndex: a.sessionIndex,
            issuer: a.issuer,
            assertionId: a.assertionId,
          },
        },
        singleUse: { key: `${a.issuer}\u0000${a.assertionId}`, expiresAt: a.acceptableUntil },
      }
    },
  }

  const loginSteps: readonly ProviderStep[] = [authnRequest, acs]
  const setupSteps: readonly ProviderStep[] = [configure, authnRequest, acs]

  function serviceMetadata(input: ServiceMetadataInput): ServiceMetadata {
    const config = input.config ? parseSamlConfig(input.config) : null
    const body = generateServiceProviderMetadata({
      issuer: config?.sp.entityId ?? entityIdFor(input.organization, input.callbackUrl),
      callbackUrl: input.callbackUrl,
      identifierFormat: config?.nameIdFormat ?? NAME_ID_FORMATS.unspecified,
      wantAssertionsSigned: true,
      ...(decryption ? { decryptionPvk: decryption.privateKey, decryptionCert: decryption.certificate } : {}),
      ...(signing ? { privateKey: signing.privateKey, publicCerts: [signing.certificate], signatureAlgorithm: 'sha256' as const } : {}),
    })
    return { contentType: 'application/samlmetadata+xml', body }
  }

  return {
    key,
    displayName: options.displayName ?? 'SAML 2.0',
    callbackMethod: 'POST',
    maxFieldLength: Math.min(2 * maxBase64Length, 1024 * 1024),
    loginSteps: () => loginSteps,
    setupSteps: () => setupSteps,
    unsolicited: {
      stepId: SAML_STEP_IDS.acs,
      enabled: (config) => parseSamlConfig(config)?.idpInitiated === true,
    },
    buildIdentity(data): IdentityInput | AuthError {
      const r = data.saml_result
      if (typeof r !== 'object' || r === null || Array.isArray(r))
        return authError('IDENTITY_INVALID', { details: { reason: 'no-saml-result' } })
      const result = r as Record<string, JsonValue>
      const text = (v: JsonValue | undefined) => (typeof v === 'string' ? v : null)
      return {
        id: text(result.id) ?? '',
        email: text(result.email) ?? '',
        // SAML never vouches for the address (spec 1.5).
        emailVerified: false,
        name: text(result.name),
        data: {
          nameId: text(result.nameId),
          nameIdFormat: text(result.nameIdFormat),
          sessionIndex: text(result.sessionIndex),
          idp: text(result.issuer),
        },
      }
    },
    buildConfig(data): JsonObject | AuthError {
      const config = parseSamlConfig(data.saml_config)
      if (!config) return authError('INPUT_INVALID', { details: { reason: 'saml-config' } })
      return samlConfigJson(config)
    },
    setupWarnings(config): ProviderWarning[] {
      const c = parseSamlConfig(config)
      const out: ProviderWarning[] = []
      if (c?.allowSha1) {
        out.push({
          code: SAML_WARNINGS.sha1,
          message:
            'SHA-1 signatures are accepted for this IdP. SHA-1 is broken for signatures: switch the IdP to SHA-256 and turn this off.',
        })
      }
      if (c?.idpInitiated) {
        out.push({
          code: SAML_WARNINGS.idpInitiated,
          message: 'Sign-ins started at the IdP are accepted; they only sign in users whose identity is already linked.',
        })
      }
      return out
    },
    serviceMetadata,
    refreshIdentity: async (identity) => ({ kind: 'ok', data: identity.data }),
  }
}

function positiveIntOrZero(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`)
  return value
}
