/**
 * Presets for the identity providers integrators connect most (issue 13 item 1): each fixes the
 * issuer rule, the subject key, the claims read, the scopes, and a default trust policy.
 *
 * @module
 */

import { z } from 'zod'
import { SsoflowError } from '../../errors.js'
import { domainProblem, type TrustPolicy, trustPolicyIssues } from '../../model/trust.js'

/** The preset names. @group Providers */
export type OidcPresetName = 'okta' | 'entra' | 'google' | 'auth0' | 'keycloak' | 'jumpcloud' | 'onelogin'

/**
 * A provider preset (the `preset` option of `oidcProvider`).
 *
 * - `okta`: issuer `https://<org>.okta.com` (or `.oktapreview.com`, `.okta-emea.com`), optionally
 *   with `/oauth2/<authorization server>`; `issuer` fixes it (a custom domain).
 * - `entra`: Microsoft Entra ID v2.0. `tenant` is the tenant ID (GUID): every login must come from
 *   it (the ID token's `tid`). `'organizations'` or `'common'` is the multi-tenant app: the issuer
 *   is the template `https://login.microsoftonline.com/{tenantid}/v2.0`, the token's `iss` must be
 *   that template filled with its `tid`, and `tid` must be one of `allowedTenants` when given.
 *   Omitted: each organization's admin enters its tenant's issuer at setup
 *   (`https://login.microsoftonline.com/<tenant ID>/v2.0`), and logins must come from that tenant.
 *   The subject is `tid` + `oid` (never `email` or `preferred_username`, which users and tenant
 *   admins can change). `authority` is the cloud's login host (sovereign clouds, tests).
 * - `google`: issuer `https://accounts.google.com`; with `hostedDomain` (a Workspace domain) the
 *   authorization request carries `hd` and every ID token's `hd` claim must equal it.
 * - `auth0`: issuer `https://<tenant>.<region>.auth0.com/` (or `issuer`, a custom domain).
 * - `keycloak`: issuer `https://<host>/realms/<realm>` (or with the legacy `/auth` prefix).
 * - `jumpcloud`: issuer `https://oauth.id.jumpcloud.com/`.
 * - `onelogin`: issuer `https://<subdomain>.onelogin.com/oidc/2`.
 *
 * @example
 * ```ts
 * import { oidcProvider } from 'ssoflow/oidc'
 * const entra = oidcProvider({ preset: { name: 'entra', tenant: '9188040d-6c67-4c5b-b112-36a304b66dad' } })
 * const google = oidcProvider({ preset: { name: 'google', hostedDomain: 'acme.com' } })
 * ```
 * @group Providers
 */
export type OidcPreset =
  | { readonly name: 'okta'; readonly issuer?: string | undefined }
  | {
      readonly name: 'entra'
      readonly tenant?: string | undefined
      readonly allowedTenants?: readonly string[] | undefined
      readonly authority?: string | undefined
    }
  | { readonly name: 'google'; readonly hostedDomain?: string | undefined; readonly issuer?: string | undefined }
  | { readonly name: 'auth0'; readonly issuer?: string | undefined }
  | { readonly name: 'keycloak'; readonly issuer?: string | undefined }
  | { readonly name: 'jumpcloud'; readonly issuer?: string | undefined }
  | { readonly name: 'onelogin'; readonly issuer?: string | undefined }

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** Entra's issuer template placeholder (multi-tenant discovery documents). */
export const ENTRA_TENANT_TEMPLATE = '{tenantid}'

const url = z.string().min(1).max(2048)
const guid = z.string().regex(GUID, 'must be a tenant ID (a lowercase GUID)')
const presetSchema = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('okta'), issuer: url.optional() }),
  z.strictObject({
    name: z.literal('entra'),
    tenant: z
      .string()
      .refine((t) => GUID.test(t) || t === 'organizations' || t === 'common', {
        message: "must be a tenant ID (a lowercase GUID), 'organizations' or 'common' (a domain name or 'consumers' is not accepted)",
      })
      .optional(),
    allowedTenants: z.array(guid).min(1).max(1000).optional(),
    authority: url.optional(),
  }),
  z.strictObject({
    name: z.literal('google'),
    hostedDomain: z
      .string()
      .superRefine((d, ctx) => {
        const problem = domainProblem(d)
        if (problem) ctx.addIssue({ code: 'custom', message: problem })
      })
      .optional(),
    issuer: url.optional(),
  }),
  z.strictObject({ name: z.literal('auth0'), issuer: url.optional() }),
  z.strictObject({ name: z.literal('keycloak'), issuer: url.optional() }),
  z.strictObject({ name: z.literal('jumpcloud'), issuer: url.optional() }),
  z.strictObject({ name: z.literal('onelogin'), issuer: url.optional() }),
])

/** What a preset's token check found wrong: the claim, and a reason for the admin's log. */
export interface ClaimRefusal {
  readonly claim: string
  readonly reason: string
}

/** A preset resolved at provider creation. */
export interface ResolvedPreset {
  readonly name: OidcPresetName | 'oidc'
  readonly displayName: string
  /** Scopes requested (openid first). */
  readonly scopes: readonly string[]
  /** The issuer when it is known before setup; the setup form then fills it in. */
  readonly fixedIssuer: string | null
  /** The issuer rule: why `issuer` (typed at setup, or stored) is not acceptable, or null. */
  issuerProblem(issuer: string): string | null
  /**
   * The issuer a discovery document at `issuer` must name: `issuer` itself, or Entra's
   * `{tenantid}` template for a multi-tenant app.
   */
  advertisedIssuer(issuer: string): string
  /** Extra authorization request parameters (Google's `hd`). */
  readonly authorizeParams: Readonly<Record<string, string>>
  /** The ID token's `iss` for a templated issuer, filled from the (yet unverified) token's claims; else null. */
  templatedIssuer(advertised: string, claims: Readonly<Record<string, unknown>>): string | null
  /** Checks of the validated ID token's claims against the stored issuer (`tid`, `hd`). */
  checkClaims(claims: Readonly<Record<string, unknown>>, issuer: string): ClaimRefusal | null
  /** The external id: `sub`, or Entra's `tid/oid`; a refusal when the claims are missing. */
  subject(claims: Readonly<Record<string, unknown>>): string | ClaimRefusal
  /** The default trust policy. */
  readonly trust: TrustPolicy
}

/** One problem of the `preset` or `trust` option, by field. */
interface OptionIssue {
  readonly field: string
  readonly message: string
}

function fail(issues: readonly OptionIssue[]): never {
  throw new SsoflowError(
    'CONFIG_INVALID',
    `The ssoflow configuration is invalid. ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
    { issues: issues.map((i) => ({ path: i.field, message: i.message })) },
  )
}

function httpsUrl(value: string, allowLoopbackHttp: boolean): URL | null {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return null
  }
  if (u.search || u.hash || u.username || u.password) return null
  if (u.protocol === 'https:') return u
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname)
  return allowLoopbackHttp && u.protocol === 'http:' && loopback ? u : null
}

const hostEndsWith = (u: URL, suffixes: readonly string[]) => suffixes.some((s) => u.hostname.endsWith(s) && u.hostname.length > s.length)

const DISPLAY: Record<OidcPresetName, string> = {
  okta: 'Okta',
  entra: 'Microsoft Entra ID',
  google: 'Google Workspace',
  auth0: 'Auth0',
  keycloak: 'Keycloak',
  jumpcloud: 'JumpCloud',
  onelogin: 'OneLogin',
}

const sub = (claims: Readonly<Record<string, unknown>>): string | ClaimRefusal =>
  typeof claims.sub === 'string' && claims.sub.length > 0 && claims.sub.length <= 255 ? claims.sub : { claim: 'sub', reason: 'missing' }

/**
 * Validates and resolves the `preset` and `trust` options. Throws `SsoflowError`
 * (`CONFIG_INVALID`) naming each bad field (`preset.tenant`, `trust.domains.0` ...).
 */
export function resolvePreset(
  preset: unknown,
  trust: unknown,
  options: { readonly scopes?: readonly string[] | undefined; readonly allowLoopbackHttp: boolean },
): ResolvedPreset {
  const issues: OptionIssue[] = []
  let p: OidcPreset | null = null
  if (preset !== undefined) {
    const parsed = presetSchema.safeParse(preset)
    if (parsed.success) p = parsed.data
    else
      for (const i of parsed.error.issues) {
        const keys = i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys : undefined
        const path = ['preset', ...i.path.map(String)].join('.')
        issues.push(keys?.length ? { field: `${path}.${keys[0]}`, message: 'unknown field' } : { field: path, message: i.message })
      }
  }
  if (trust !== undefined) issues.push(...trustPolicyIssues(trust))
  if (issues.length > 0) fail(issues)

  const scopes = (extra: readonly string[]) => ['openid', ...(options.scopes ?? extra).filter((s) => s !== 'openid')]
  const fixed = (field: string, value: string | undefined): string | null => {
    if (value === undefined) return null
    if (!httpsUrl(value, options.allowLoopbackHttp)) {
      issues.push({ field, message: 'must be an https URL without query or fragment' })
      return null
    }
    return value
  }
  const base = {
    authorizeParams: {} as Record<string, string>,
    advertisedIssuer: (issuer: string) => issuer,
    templatedIssuer: () => null,
    checkClaims: () => null,
    subject: sub,
  }
  let resolved: ResolvedPreset
  const onlyFixed = (fixedIssuer: string | null, rule: (u: URL, raw: string) => string | null) => (issuer: string) => {
    if (fixedIssuer !== null) return issuer === fixedIssuer ? null : `must be ${fixedIssuer} (this provider is set up for it)`
    const u = httpsUrl(issuer, options.allowLoopbackHttp)
    if (!u) return 'must be an https URL without query or fragment'
    return rule(u, issuer)
  }
  const defaultTrust = (name: string, t: Omit<TrustPolicy, 'name'>): TrustPolicy => (trust as TrustPolicy | undefined) ?? { name, ...t }
  switch (p?.name) {
    case undefined:
      resolved = {
        ...base,
        name: 'oidc',
        displayName: 'OpenID Connect',
        scopes: scopes(['email', 'profile']),
        fixedIssuer: null,
        issuerProblem: () => null,
        trust: defaultTrust('oidc', { emailVerified: 'claim', inviteMatch: true }),
      }
      break
    case 'okta':
    case 'auth0':
    case 'keycloak':
    case 'onelogin': {
      const given = fixed('preset.issuer', p.issuer)
      const rules: Record<typeof p.name, (u: URL, raw: string) => string | null> = {
        okta: (u) =>
          hostEndsWith(u, ['.okta.com', '.oktapreview.com', '.okta-emea.com']) && /^(\/oauth2\/[A-Za-z0-9_-]+)?\/?$/.test(u.pathname)
            ? null
            : 'must be https://<your org>.okta.com (or .oktapreview.com, .okta-emea.com), optionally /oauth2/<authorization server ID>',
        auth0: (u, raw) =>
          hostEndsWith(u, ['.auth0.com']) && u.pathname === '/' && raw.endsWith('/')
            ? null
            : 'must be https://<tenant>.<region>.auth0.com/ with the trailing slash',
        keycloak: (u) =>
          /^(\/auth)?\/realms\/[^/]+$/.test(u.pathname) ? null : 'must be https://<host>/realms/<realm> (or /auth/realms/<realm>)',
        onelogin: (u) =>
          hostEndsWith(u, ['.onelogin.com']) && u.pathname === '/oidc/2' ? null : 'must be https://<subdomain>.onelogin.com/oidc/2',
      }
      resolved = {
        ...base,
        name: p.name,
        displayName: DISPLAY[p.name],
        scopes: scopes(['email', 'profile']),
        fixedIssuer: given,
        issuerProblem: onlyFixed(given, rules[p.name]),
        // OneLogin does not say whether an address is verified: nothing counts until the host
        // names the domains it owns.
        trust:
          p.name === 'onelogin'
            ? defaultTrust('onelogin', { emailVerified: 'never', inviteMatch: false })
            : defaultTrust(p.name, { emailVerified: 'claim', inviteMatch: true }),
      }
      break
    }
    case 'jumpcloud': {
      const given = fixed('preset.issuer', p.issuer) ?? 'https://oauth.id.jumpcloud.com/'
      resolved = {
        ...base,
        name: 'jumpcloud',
        displayName: DISPLAY.jumpcloud,
        scopes: scopes(['email', 'profile']),
        fixedIssuer: given,
        issuerProblem: onlyFixed(given, () => null),
        // JumpCloud sends no email_verified: nothing counts until the host names its domains.
        trust: defaultTrust('jumpcloud', { emailVerified: 'never', inviteMatch: false }),
      }
      break
    }
    case 'google': {
      const given = fixed('preset.issuer', p.issuer) ?? 'https://accounts.google.com'
      const hd = p.hostedDomain ?? null
      const t = defaultTrust('google', { emailVerified: 'claim', domains: [hd ?? 'gmail.com'], inviteMatch: true })
      if (hd !== null && t.emailVerified !== 'never' && (t.domains === undefined || t.domains.some((d) => d !== hd))) {
        issues.push({
          field: 'trust.domains',
          message: `Google asserts only addresses of the hosted domain ${hd} for this client: list exactly that domain`,
        })
      }
      resolved = {
        ...base,
        name: 'google',
        displayName: DISPLAY.google,
        scopes: scopes(['email', 'profile']),
        fixedIssuer: given,
        issuerProblem: onlyFixed(given, () => null),
        authorizeParams: hd ? { hd } : {},
        checkClaims: (claims) =>
          hd === null || claims.hd === hd
            ? null
            : { claim: 'hd', reason: typeof claims.hd === 'string' ? 'another-hosted-domain' : 'not-a-workspace-account' },
        trust: t,
      }
      break
    }
    case 'entra': {
      const authority = (fixed('preset.authority', p.authority) ?? 'https://login.microsoftonline.com').replace(/\/$/, '')
      const tenant = p.tenant ?? null
      const multi = tenant === 'organizations' || tenant === 'common'
      const allowed = p.allowedTenants ?? null
      if (allowed && !multi) {
        issues.push({ field: 'preset.allowedTenants', message: "applies only to a multi-tenant app (tenant 'organizations' or 'common')" })
      }
      const t = defaultTrust('entra', { emailVerified: 'never', inviteMatch: false })
      if (multi && allowed === null && t.emailVerified !== 'never') {
        issues.push({
          field: 'trust.emailVerified',
          message:
            'trusting email from a multi-tenant Entra app without a tenant restriction lets any Entra tenant assert any address: ' +
            "set preset.allowedTenants, or use emailVerified 'never'",
        })
      }
      const tenantIssuer = (tid: string) => `${authority}/${tid}/v2.0`
      const template = tenantIssuer(ENTRA_TENANT_TEMPLATE)
      const fixedIssuer = tenant === null ? null : tenantIssuer(tenant)
      /** The tenant an issuer is bound to, or null. */
      const tenantOf = (issuer: string): string | null => {
        if (!issuer.startsWith(`${authority}/`) || !issuer.endsWith('/v2.0')) return null
        const tid = issuer.slice(authority.length + 1, -'/v2.0'.length)
        return GUID.test(tid) ? tid : null
      }
      resolved = {
        ...base,
        name: 'entra',
        displayName: DISPLAY.entra,
        scopes: scopes(['email', 'profile']),
        fixedIssuer,
        issuerProblem: (issuer) => {
          if (fixedIssuer !== null) return issuer === fixedIssuer ? null : `must be ${fixedIssuer} (this provider is set up for it)`
          return tenantOf(issuer) ? null : `must be ${authority}/<your tenant ID>/v2.0 (the tenant ID is a GUID)`
        },
        advertisedIssuer: (issuer) => (multi && issuer === fixedIssuer ? template : issuer),
        templatedIssuer: (advertised, claims) =>
          advertised === template && typeof claims.tid === 'string' && GUID.test(claims.tid) ? tenantIssuer(claims.tid) : null,
        checkClaims: (claims, issuer) => {
          const tid = claims.tid
          if (typeof tid !== 'string' || !GUID.test(tid)) return { claim: 'tid', reason: 'missing' }
          if (multi) {
            if (claims.iss !== tenantIssuer(tid)) return { claim: 'iss', reason: 'not-the-tenant-issuer' }
            return allowed === null || allowed.includes(tid) ? null : { claim: 'tid', reason: 'tenant-not-allowed' }
          }
          return tid === tenantOf(issuer) ? null : { claim: 'tid', reason: 'another-tenant' }
        },
        subject: (claims) => {
          const tid = claims.tid
          const oid = claims.oid
          if (typeof tid !== 'string' || !GUID.test(tid)) return { claim: 'tid', reason: 'missing' }
          if (typeof oid !== 'string' || !GUID.test(oid)) return { claim: 'oid', reason: 'missing' }
          return `${tid}/${oid}`
        },
        trust: t,
      }
      break
    }
  }
  if (issues.length > 0) fail(issues)
  return resolved
}
