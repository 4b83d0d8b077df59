import type { ResultAsync } from 'neverthrow'
import type { TraceEntry } from '../core/effects.js'
import type { AccountClaim, ConfirmationPageModel } from '../core/login/facts.js'
import type { AuthError } from '../errors.js'
import type { IdentityInput, JsonObject } from '../model/identity.js'
import type { Member, Organization, User } from '../model/records.js'
import type { AuditPort } from '../ports/audit.js'
import type { Clock, IdGenerator, Logger } from '../ports/clock.js'
import type { MailerPort } from '../ports/mailer.js'
import type { SignalPort } from '../ports/signals.js'
import type { OneTimeTokenStore, PipelineStateStore, StoragePort } from '../ports/storage.js'
import type { Provider, ProviderWarning, ServiceMetadata, StepRequest } from '../providers/types.js'
import type { EffectWarning } from './apply.js'

/**
 * What the host knows of the current request's session. The engine never touches cookies:
 * outcomes carry the {@link SessionEffect}s the host must apply.
 * @group Engine
 */
export interface SessionInfo {
  /** The host's session id. Pipelines are bound to its SHA-256; a new session cannot resume them. */
  readonly id: string
  /** The signed-in user, or null/undefined when anonymous. */
  readonly userId?: string | null | undefined
  /**
   * The user whose second factor this session has passed: the host sets it when its 2FA check
   * succeeds (after a `twoFactorRequired` outcome, to the outcome's `userId`). It counts only for
   * that user: a login as anyone else who has 2FA on is `twoFactorRequired` for them (threat 63).
   * Only a non-empty string counts; any other value (e.g. a boolean) counts for nobody.
   *
   * Replaces `twoFactorPassed` (a bare boolean, removed): a session of user A with A's
   * factor passed must not let an SSO login as user B skip B's factor.
   */
  readonly twoFactorUserId?: string | null | undefined
  /** A pending invite carried by the session (from an invite link). Re-validated every time. */
  readonly invite?: { readonly memberId: string; readonly token: string; readonly organizationId: string } | null | undefined
  /** The account-verification token from an emailed one-time link, if the user clicked one. */
  readonly verificationToken?: string | null | undefined
  /**
   * Client IP for audit entries. A proxy chain (`X-Forwarded-For`: `"client, proxy1, proxy2"`,
   * up to 4096 characters) may be passed as is: only its first address is kept, and it must be
   * at most 64 characters (`INPUT_INVALID` otherwise). See docs/storage.md, "Column limits".
   */
  readonly ip?: string | null | undefined
}

/**
 * A change the host must make to its session after an outcome.
 * @group Engine
 */
export type SessionEffect =
  | { readonly type: 'login'; readonly userId: string }
  | { readonly type: 'rotate' }
  | { readonly type: 'markSsoComplete'; readonly organizationId: string; readonly at: string }
  | { readonly type: 'activeOrg'; readonly organizationId: string; readonly slug: string }
  | { readonly type: 'clearInvite' }
  | { readonly type: 'clearVerification' }
  | { readonly type: 'clearPipeline' }
  /**
   * End every OTHER session of `userId` (keep only this request's, rotated): an anonymous
   * pipeline just proved the account (emailed link, or signing in to it), so a session someone
   * held on it before, e.g. the squatter who made it, must not survive (threat 2).
   */
  | { readonly type: 'revokeOtherSessions'; readonly userId: string; readonly reason: 'accountClaimed' }
  | {
      readonly type: 'pendingTwoFactor'
      readonly userId: string
      readonly organizationId: string
      /** The pipeline handle to finish again once the second factor passed. */
      readonly resumeHandle: string
    }

/**
 * URLs of the host app, as functions of the organization.
 * @group Engine
 */
export interface UrlConfig {
  /** The app's origin, e.g. `https://app.example.com`. Used for same-origin checks and callbacks. */
  readonly baseUrl: string
  /** Org login page (error exit of the login flow). */
  orgLogin(org: Organization): string
  /** Org auth settings (error exit of the setup flow). */
  authSettings(org: Organization): string
  /** Provider settings page (after setup). */
  providerSettings(org: Organization): string
  /** Default landing after login. */
  afterLogin(org: Organization): string
  /** The host route that receives IdP callbacks and step posts (calls `advance`). */
  pipelineCallback(org: Organization): string
  /**
   * Where an IdP posts its answer back for providers whose `callbackMethod` is `'POST'` (the SAML
   * assertion consumer service, one URL per org). The steps of such a provider see it as their
   * `callbackUrl`, and the SP metadata names it. Optional: without it `pipelineCallback` serves
   * them too. `ssoHandlerUrls` points it at the handler's `POST /acs/:org`.
   */
  postCallback?(org: Organization): string
  /** The host route that consumes an account-verification link. */
  verifyAccount(token: string, org: Organization): string
}

/**
 * Tunables. All optional.
 * @group Engine
 */
export interface PolicyOptions {
  /** Pipeline state TTL. @defaultValue 3600 */
  readonly stateTtlSeconds?: number | undefined
  /** Account-verification link TTL. @defaultValue 600 */
  readonly verificationTtlSeconds?: number | undefined
  /**
   * Minimum time between two verification mails to one user through one provider, across all
   * pipelines (threat 28): a new pipeline within it shows the page without mailing again.
   * @defaultValue 600
   */
  readonly verificationResendSeconds?: number | undefined
  /**
   * Most verification mails one user gets in 24 hours, across all pipelines and providers; more
   * are not sent (the page is the same, threats 28, 29). @defaultValue 5
   */
  readonly verificationDailyLimit?: number | undefined
  /** Page size when mailing members after setup. @defaultValue 500 */
  readonly memberPageSize?: number | undefined
  /**
   * What an SSO login of an unknown identity does when its email matches no account and nobody
   * is signed in:
   * - `'confirm'` (Sentry's behaviour): the confirm-identity page asks the user to create the
   *   account (`op: 'newuser'`);
   * - `'create'` (just-in-time provisioning): the account, identity and membership are created in
   *   the callback itself, with no page.
   *
   * Every other unknown identity still gets its page whatever the policy: an email that matches an
   * account, a signed-in user, an identity whose owner is inactive. @defaultValue `'confirm'`
   */
  readonly newUser?: 'confirm' | 'create' | undefined
  /**
   * When an anonymous pipeline claims an existing account (emailed link, or signing in to it),
   * what happens to the identities of OTHER providers already on the account (threat 3: a
   * squatter may have linked their own): `keep` reports them on the outcome (`claim`) and in the
   * `sso-identity.claim` audit entry; `remove` deletes them in the claim's transaction and
   * reports them as removed. @defaultValue 'keep'
   */
  readonly identitiesOnClaim?: 'keep' | 'remove' | undefined
  /**
   * Whether a returning identity whose user has no membership in the org (an admin removed it)
   * gets a new one at login, as Sentry does (`true`), or is refused with `NOT_A_MEMBER`, nothing
   * written and the pipeline ended (`false`; threat 51). A pending invite to the user still
   * brings them back either way. Whatever the choice, remove the org's identities of a member you
   * remove. @defaultValue true
   */
  readonly rejoinOnLogin?: boolean | undefined
  /**
   * How long a mail or a signal sent after commit may take before the flow returns without it
   * (the outcome then carries a warning with `reason: 'timeout'`; nothing is undone).
   * @defaultValue 10000
   */
  readonly afterCommitTimeoutMs?: number | undefined
  /**
   * A returning login rewrites its identity row (`lastVerified`, `lastSynced`, merged data) only
   * when the IdP's data changed or the row was last verified this many seconds ago or more; in
   * between it writes nothing but the pipeline state (the hot path: no row write, no identity
   * lock). `0` rewrites on every login, as Sentry does. Keep it well under the 24 hours after
   * which Sentry's `AuthIdentity.is_valid` treats `lastVerified` as stale. @defaultValue 3600
   */
  readonly identityRefreshSeconds?: number | undefined
  /**
   * How long (ms) one engine reuses an organization's row and its provider row, read by an
   * earlier login request, instead of reading them again at the start and at the callback. `0`
   * reads them on every request. Safe by construction: the login transaction compares the
   * provider row it locks with the one it started from (id, key, configuration) and refuses a
   * changed or removed provider with `PROVIDER_MISMATCH` (and drops the entry); the engine drops
   * an organization's entry when its own setup, disable or settings change commits; an
   * organization without a provider is never cached. What may be up to this old on another engine
   * instance: the organization's name, slug, default role and `require2fa`, and which provider a
   * new login starts with (its callback is then refused). @defaultValue 5000
   */
  readonly configCacheMs?: number | undefined
}

/** Resolved policy. */
export type Policy = { readonly [K in keyof PolicyOptions]-?: NonNullable<PolicyOptions[K]> }

/**
 * Host hooks for decisions ssoflow cannot make itself.
 * @group Engine
 */
export interface HookOptions {
  /**
   * May this user manage SSO for the org? Default: their membership role is `owner` or `manager`.
   */
  readonly authorize?: ((input: { user: User; member: Member; organization: Organization }) => boolean | Promise<boolean>) | undefined
  /** Is this provider enabled for the org (plan feature)? Default: yes. */
  readonly isProviderEnabled?: ((organization: Organization, providerKey: string) => boolean | Promise<boolean>) | undefined
  /** Is the org over its member limit (new SSO members get `memberLimitRestricted`)? Default: no. */
  readonly isMemberLimitReached?: ((organization: Organization) => boolean | Promise<boolean>) | undefined
  /**
   * The host's rate limiter, asked once before every page an ANONYMOUS visitor gets after the IdP
   * (whether or not a verification mail would go out: asking only when one would, or answering by
   * `targetUserId`, would tell the visitor that an account exists, threat 29), after ssoflow's
   * own per-user mail limits (threats 7, 28). Return true to refuse: the login ends with
   * `RATE_LIMITED`, nothing is written and no mail goes out. Key your counters by the visitor
   * (`sessionId`, `ip`) and count every call you answer false. Called inside the login's storage
   * transaction: keep it fast. A throw is `STORAGE_UNAVAILABLE`. Default: never limited.
   */
  readonly isRateLimited?: ((request: RateLimitRequest) => boolean | Promise<boolean>) | undefined
}

/**
 * What {@link HookOptions.isRateLimited} is asked about.
 * @group Engine
 */
export interface RateLimitRequest {
  /** The action: an account-verification mail (a one-time link to the account's address). */
  readonly action: 'accountVerificationMail'
  readonly organizationId: string
  readonly authProviderId: string
  /**
   * The user whose mailbox would get the mail, or null when no mail is due (no account, one
   * that cannot be proven by mail, or one within its limits). Do not answer differently for
   * null: the answer would tell the visitor whether an account exists (threat 29).
   */
  readonly targetUserId: string | null
  /** The visitor: the host session id of the request... */
  readonly sessionId: string
  /** ...and its client IP, when the host passed one in the session. */
  readonly ip: string | null
}

/**
 * Options of {@link createAuthPipeline}.
 * @group Engine
 */
export interface AuthPipelineOptions {
  readonly storage: StoragePort
  readonly mailer: MailerPort
  readonly signals: SignalPort
  /** Default: audit rows in the storage transaction (`storageAudit()`). */
  readonly audit?: AuditPort | undefined
  /** Where pipeline state lives. Default: `storage.pipelineStates`. */
  readonly states?: PipelineStateStore | undefined
  /** Where one-time tokens live. Default: `storage.oneTimeTokens`. */
  readonly tokens?: OneTimeTokenStore | undefined
  /** Providers by key. */
  readonly providers: Readonly<Record<string, Provider>>
  /** At least 32 bytes. Signs handles and derives token keys. */
  readonly secret: string | Uint8Array
  readonly urls: UrlConfig
  readonly policy?: PolicyOptions | undefined
  readonly hooks?: HookOptions | undefined
  readonly clock?: Clock | undefined
  readonly ids?: IdGenerator | undefined
  readonly logger?: Logger | undefined
}

/**
 * Page models of the confirmation step. They carry only what the page needs; an anonymous
 * visitor never sees another account's details beyond what the IdP itself asserted.
 * @group Outcomes
 */
export type ConfirmationPage = ConfirmationPageModel

/** An operation the user may choose on a confirmation page. @group Outcomes */
export type LoginOp = 'confirm' | 'newuser'

/**
 * Outcome of a finished login.
 * @group Outcomes
 */
export type LoginOutcome =
  | {
      readonly kind: 'signedIn'
      readonly userId: string
      readonly memberId: string
      readonly organizationId: string
      /** Where to send the browser (validated `next` or `urls.afterLogin`). */
      readonly redirect: string
      readonly created: { readonly user: boolean; readonly identity: boolean; readonly member: boolean }
      /** True when an identity was linked (new or re-pointed) by this login. */
      readonly linked: boolean
      readonly acceptedInviteId: string | null
      /**
       * Set when this anonymous pipeline proved an existing account (the emailed link, or signing
       * in to it): the session effects then include `revokeOtherSessions` (threat 2), and the
       * identities of other providers found on the account are listed (threat 3).
       */
      readonly claim: AccountClaim | null
      readonly session: readonly SessionEffect[]
      readonly trace: readonly TraceEntry[]
      readonly warnings: readonly EffectWarning[]
    }
  | {
      readonly kind: 'confirmationRequired'
      readonly handle: string
      readonly confirmation: ConfirmationPage
      readonly allowedOps: readonly LoginOp[]
      readonly session: readonly SessionEffect[]
      readonly trace: readonly TraceEntry[]
      readonly warnings: readonly EffectWarning[]
    }
  | {
      readonly kind: 'twoFactorRequired'
      readonly userId: string
      /** Finish again with this handle once the second factor passed. */
      readonly resumeHandle: string
      readonly session: readonly SessionEffect[]
      readonly trace: readonly TraceEntry[]
    }

/**
 * Outcome of a finished setup.
 * @group Outcomes
 */
export interface SetupOutcome {
  readonly kind: 'setupComplete'
  readonly organizationId: string
  readonly authProviderId: string
  readonly providerKey: string
  readonly redirect: string
  /**
   * True: the "link your account" mails to the org's unlinked members were recorded as
   * background work in the setup's transaction; `runPendingWork` sends them (the request does
   * not wait for them, whatever the org's size).
   */
  readonly linkRequestsQueued: boolean
  readonly session: readonly SessionEffect[]
  readonly trace: readonly TraceEntry[]
  readonly warnings: readonly EffectWarning[]
  /**
   * Org security-policy changes this setup made (audited as `org.edit`), e.g. require-2FA
   * turned off because SSO and required 2FA are exclusive. Empty when none.
   */
  readonly policyChanges?: readonly SetupPolicyChange[] | undefined
  /**
   * What the provider says about the stored config (e.g. `SAML_SHA1_ALLOWED` when the admin
   * allowed SHA-1 signatures). Empty when none.
   */
  readonly providerWarnings?: readonly ProviderWarning[] | undefined
}

/**
 * An org security-policy change made by setup.
 * @group Outcomes
 */
export interface SetupPolicyChange {
  readonly setting: 'require2fa'
  readonly from: boolean
  readonly to: boolean
  readonly reason: string
}

/**
 * The result of one pipeline step.
 * @group Outcomes
 */
export type Step =
  | {
      readonly kind: 'redirect'
      readonly url: string
      readonly handle: string
      /** `beginLogin({ email })` only: how home-realm discovery chose the organization. */
      readonly discovery?: Discovery | undefined
    }
  | {
      readonly kind: 'render'
      readonly view: string
      readonly model: JsonObject
      readonly handle: string
      /** `beginLogin({ email })` only: how home-realm discovery chose the organization. */
      readonly discovery?: Discovery | undefined
    }
  | LoginOutcome
  | SetupOutcome

/**
 * How `beginLogin({ email })` found the organization (home-realm discovery): the normalized
 * domain, the organization that has it verified, and the trace of the rule.
 * @group Outcomes
 */
export interface Discovery {
  readonly domain: string
  readonly organizationId: string
  readonly trace: readonly TraceEntry[]
}

/**
 * Input of `beginLogin`: the organization by id, or (home-realm discovery, issue 13) by the
 * user's email address: `{ email, session }` begins the login of the ONE organization that has
 * the address's domain verified and passes the address to the IdP as the login hint. Exactly
 * one of `organizationId` and `email`.
 * @group Engine
 */
export type BeginLoginInput = BeginLoginByOrganization | BeginLoginByEmail

/** `beginLogin` for a known organization. @group Engine */
export interface BeginLoginByOrganization extends BeginLoginCommon {
  readonly organizationId: string
  readonly email?: undefined
}

/**
 * `beginLogin` from an email address (home-realm discovery). The domain is normalized
 * (`normalizeDomain`: lowercase, IDN to A-labels; a trailing dot, no domain or an empty local
 * part is `INPUT_INVALID` with `details.field: 'email'`); no organization with that domain
 * verified, or more than one, is `DOMAIN_UNKNOWN` (the same answer, nothing else revealed).
 * Nothing is written on any error. The address becomes the login hint (`loginHint` is ignored).
 * @group Engine
 */
export interface BeginLoginByEmail extends BeginLoginCommon {
  /** The address the user typed, at most 320 characters. */
  readonly email: string
  readonly organizationId?: undefined
}

/** Fields of every `beginLogin` input. @group Engine */
export interface BeginLoginCommon {
  readonly session: SessionInfo
  /** Where to land after login; honoured only for same-origin relative paths. */
  readonly next?: string | null | undefined
  readonly referrer?: string | null | undefined
  /**
   * A hint of who is signing in (usually an email address), passed to the provider's first
   * step (OIDC sends it as `login_hint`). Ignored unless it is a string of at most 320
   * characters without control characters. Never used for any decision.
   */
  readonly loginHint?: string | null | undefined
}

/** Input of `beginSetup`. @group Engine */
export interface BeginSetupInput {
  readonly organizationId: string
  readonly providerKey: string
  readonly session: SessionInfo
}

/**
 * Input of `beginUnsolicitedLogin`: an IdP-initiated response (a SAML POST to the ACS URL with
 * no pipeline of ours behind it).
 * @group Engine
 */
export interface BeginUnsolicitedLoginInput {
  readonly organizationId: string
  readonly session: SessionInfo
  readonly request: StepRequest
}

/** Input of `serviceMetadata`. @group Engine */
export interface ServiceMetadataRequest {
  readonly organizationId: string
  readonly providerKey: string
}

/** Input of `advance`. @group Engine */
export interface AdvanceInput {
  readonly handle: string
  readonly request: StepRequest
  readonly session: SessionInfo
}

/** Input of `finishLogin`. @group Engine */
export interface FinishLoginInput {
  readonly handle: string
  /** The provider's identity. Omit on the follow-up POST of a confirmation page. */
  readonly identity?: IdentityInput | undefined
  readonly session: SessionInfo
  /** The user's choice on a confirmation page. */
  readonly op?: LoginOp | null | undefined
}

/** Input of `finishSetup`. @group Engine */
export interface FinishSetupInput {
  readonly handle: string
  readonly identity: IdentityInput
  readonly session: SessionInfo
  /**
   * The pipeline's bound data, as the step machine passes it. Informational only: `finishSetup`
   * always builds the config from the stored, server-side state, never from the caller.
   */
  readonly data?: JsonObject | undefined
}

/** The answer of `explain`. @group Engine */
export interface Explanation {
  readonly decision: string
  readonly trace: readonly TraceEntry[]
  /** The effects the decision would apply, by type. */
  readonly effects: readonly string[]
}

/** Input shared by admin operations. @group Engine */
export interface AdminInput {
  readonly organizationId: string
  readonly session: SessionInfo
}

/** Input of the domain admin calls that name a domain (`addDomain`, `verifyDomain`, `removeDomain`). @group Engine */
export interface DomainInput extends AdminInput {
  /** The domain, e.g. `acme.com` (normalized like `normalizeDomain`: an IDN is stored as A-labels). */
  readonly domain: string
}

/**
 * A domain of an organization as the admin API shows it, with the DNS record the domain's owner
 * publishes to prove it (the host checks it, e.g. with `resolveTxt`, before `verifyDomain`).
 * @group Outcomes
 */
export interface DomainView {
  readonly domain: string
  readonly verified: boolean
  /** ISO time of verification, or null. */
  readonly verifiedAt: string | null
  readonly createdAt: string
  /** The TXT record to publish: `{ name: '_ssoflow-challenge.<domain>', value: 'ssoflow-domain-verification=<token>' }`. */
  readonly dnsRecord: { readonly type: 'TXT'; readonly name: string; readonly value: string }
}

/** Outcome of `addDomain`. @group Outcomes */
export interface DomainAdded {
  readonly kind: 'domainAdded'
  readonly domain: DomainView
  /** False when the organization had already claimed the domain (nothing written). */
  readonly created: boolean
}

/** Outcome of `verifyDomain`. @group Outcomes */
export interface DomainVerified {
  readonly kind: 'domainVerified'
  readonly domain: DomainView
  /** False when it was already verified by this organization (nothing written). */
  readonly changed: boolean
}

/** Outcome of `removeDomain`. @group Outcomes */
export interface DomainRemoved {
  readonly kind: 'domainRemoved'
  readonly domain: string
}

/** Outcome of `listDomains`. @group Outcomes */
export interface DomainList {
  readonly kind: 'domains'
  /** By domain. */
  readonly domains: readonly DomainView[]
}

/** Settings an admin may change. @group Engine */
export interface SettingsPatch {
  /** Require SSO (the inverse of allowUnlinked). */
  readonly requireSso?: boolean | undefined
  readonly scimEnabled?: boolean | undefined
  readonly defaultRole?: string | undefined
}

/** Outcome of an identity refresh. @group Outcomes */
export type RefreshOutcome =
  | { readonly kind: 'identityDeleted' }
  | { readonly kind: 'valid' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string }

/**
 * The engine returned by {@link createAuthPipeline}.
 * @group Engine
 */
export interface AuthPipeline {
  /**
   * Starts a login pipeline for an org that has a provider, named by id or found from the user's
   * email address (home-realm discovery: {@link BeginLoginByEmail}).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // GET /login/:org: the first step is usually a redirect to the IdP.
   * const result = await sso.beginLogin({ organizationId, session, next: '/issues', loginHint: 'ada@acme.example' })
   * if (result.isErr()) console.log(result.error.code) // PROVIDER_NOT_CONFIGURED, ORGANIZATION_NOT_FOUND, ...
   * else if (result.value.kind === 'redirect') console.log(result.value.url, result.value.handle) // keep the handle in an HttpOnly cookie
   *
   * // "Sign in with your work email": the organization whose verified domain is the address's.
   * const byEmail = await sso.beginLogin({ email: 'ada@acme.example', session })
   * if (byEmail.isErr()) console.log(byEmail.error.code) // DOMAIN_UNKNOWN (no SSO for this address), INPUT_INVALID
   * ```
   */
  beginLogin(input: BeginLoginInput): ResultAsync<Step, AuthError>
  /**
   * Starts a setup pipeline (an admin configures the org's provider).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const result = await sso.beginSetup({ organizationId, providerKey: 'oidc', session })
   * result.match(
   *   (step) => console.log(step.kind), // 'render': the provider's form (view 'oidc-setup-form'), or 'redirect'
   *   (error) => console.log(error.code), // NOT_AUTHENTICATED, NOT_AUTHORIZED, PROVIDER_EXISTS, ...
   * )
   * ```
   */
  beginSetup(input: BeginSetupInput): ResultAsync<Step, AuthError>
  /**
   * Runs the current provider step with the request; the last step finishes the pipeline.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // The pipeline route (GET and POST): IdP callbacks and provider forms alike.
   * const result = await sso.advance({ handle, session, request: { method: 'POST', query: {}, form: fields } })
   * result.match(
   *   (step) => console.log(step.kind), // 'redirect', 'render', 'signedIn', 'confirmationRequired', 'twoFactorRequired', 'setupComplete'
   *   (error) => console.log(error.code, error.redirect), // e.g. STATE_EXPIRED, and which page to send the user to
   * )
   * ```
   */
  advance(input: AdvanceInput): ResultAsync<Step, AuthError>
  /**
   * Starts a login pipeline from an unsolicited (IdP-initiated) response, when the org's provider
   * accepts them and its config enables them (else `UNSOLICITED_RESPONSE`, nothing written). Such
   * a pipeline never links or creates an account, never accepts an invite and never finishes a
   * setup: it signs in an identity that is already linked, or is refused (threat 39).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // POST /acs/:org with no pipeline cookie: an IdP-initiated SAML response.
   * const result = await sso.beginUnsolicitedLogin({ organizationId, session, request: { method: 'POST', query: {}, form: fields } })
   * result.match(
   *   (step) => console.log(step.kind), // 'signedIn' for an identity already linked to an active member
   *   (error) => console.log(error.code), // UNSOLICITED_RESPONSE when the org's config does not enable them
   * )
   * ```
   */
  beginUnsolicitedLogin(input: BeginUnsolicitedLoginInput): ResultAsync<Step, AuthError>
  /**
   * The document a provider serves to the IdP's administrator (SAML SP metadata) for an org.
   * Public data: no session needed. `PROVIDER_UNKNOWN` when the provider has none.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // GET /metadata/:org, for the IdP's administrator.
   * const result = await sso.serviceMetadata({ organizationId, providerKey: 'saml' })
   * const response = result.match(
   *   (metadata) => new Response(metadata.body, { headers: { 'content-type': metadata.contentType } }),
   *   (error) => new Response(error.message, { status: 404 }), // PROVIDER_UNKNOWN, ORGANIZATION_NOT_FOUND
   * )
   * ```
   */
  serviceMetadata(input: ServiceMetadataRequest): ResultAsync<ServiceMetadata, AuthError>
  /**
   * Finishes a login pipeline with the provider's identity (or the user's confirmation choice).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // POST of a confirmation page (outcome `confirmationRequired`): the user's choice among `allowedOps`.
   * const result = await sso.finishLogin({ handle, session, op: 'confirm' })
   * if (result.isOk() && result.value.kind === 'signedIn') console.log(result.value.redirect, result.value.session)
   * if (result.isOk() && result.value.kind === 'twoFactorRequired') {
   *   // once the host's 2FA check passed for result.value.userId: finish again with the resume handle
   *   const { userId, resumeHandle } = result.value
   *   await sso.finishLogin({ handle: resumeHandle, session: { ...session, twoFactorUserId: userId } })
   * }
   * ```
   */
  finishLogin(input: FinishLoginInput): ResultAsync<LoginOutcome, AuthError>
  /**
   * Finishes a setup pipeline.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // `advance` calls it after the provider's last step, with the identity the provider built; the
   * // result below is what that `advance` returns. The config comes from the pipeline's stored state.
   * const result = await sso.finishSetup({ handle, session, identity: { id: 'idp-user-42', email: 'admin@acme.example' } })
   * if (result.isOk()) console.log(result.value.redirect, result.value.linkRequestsQueued) // then call runPendingWork
   * else console.log(result.error.code) // UID_MISMATCH (another admin), PROVIDER_EXISTS, STATE_INVALID {reason: 'steps-incomplete'}
   * ```
   */
  finishSetup(input: FinishSetupInput): ResultAsync<SetupOutcome, AuthError>
  /**
   * Runs the login decision without writing anything and returns the trace.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // What would this identity's login do? Nothing is written, no mail is sent.
   * const result = await sso.explain({ handle, session, identity: { id: 'idp-user-42', email: 'ada@acme.example' } })
   * if (result.isOk()) {
   *   console.log(result.value.decision) // e.g. 'signIn:existing' or 'confirm:confirm-identity'
   *   for (const entry of result.value.trace) console.log(entry.rule, entry.detail)
   * }
   * ```
   */
  explain(input: FinishLoginInput): ResultAsync<Explanation, AuthError>
  /**
   * Disables SSO for the org. The "SSO was turned off" notices to its members are recorded as
   * background work in the same transaction (`unlinkMailsQueued: true`); `runPendingWork` sends them.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const result = await sso.disableProvider({ organizationId, session }) // an org owner or manager
   * if (result.isOk()) await sso.runPendingWork() // or let the scheduled worker send the notices
   * else console.log(result.error.code) // NOT_AUTHORIZED, PROVIDER_NOT_CONFIGURED, ...
   * ```
   */
  disableProvider(input: AdminInput): ResultAsync<{ readonly kind: 'providerDisabled'; readonly unlinkMailsQueued: boolean }, AuthError>
  /**
   * Queues link requests to the members still unlinked, as background work sent by
   * `runPendingWork`. `queued: false` when a link-request mailing of this provider is still
   * pending (it covers this request: nothing is doubled).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const result = await sso.resendLinkRequests({ organizationId, session })
   * if (result.isOk() && !result.value.queued) console.log('a mailing to the unlinked members is already pending')
   * ```
   */
  resendLinkRequests(input: AdminInput): ResultAsync<{ readonly kind: 'linkRequestsQueued'; readonly queued: boolean }, AuthError>
  /**
   * Runs pending background work: sends queued mail (link requests, unlink notices) a page of
   * members at a time (one query per page), then sweeps expired pipeline states and one-time
   * tokens in bounded batches. Safe to call from several workers at once; each mail goes to the
   * mailer once (a worker that crashed mid-page makes the next one redo that page with the same
   * idempotency keys). Call it from a scheduler (cron, pg-boss, BullMQ: docs/operations.md) and
   * again at once while `more` is true.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // A scheduled job (cron, pg-boss, BullMQ): drain the outbox, a bounded amount per call.
   * let report = await sso.runPendingWork({ limit: 20 })
   * while (report.isOk() && report.value.more) report = await sso.runPendingWork({ limit: 20 })
   * if (report.isOk()) console.log(report.value.mailsSent, report.value.mailsFailed, report.value.swept)
   * ```
   */
  runPendingWork(input?: PendingWorkInput): ResultAsync<PendingWorkReport, AuthError>
  /**
   * Changes SSO settings.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const result = await sso.updateSettings({ organizationId, session, settings: { requireSso: true, defaultRole: 'member' } })
   * if (result.isOk()) console.log(result.value.changed) // e.g. ['requireSso']: only what changed, [] when nothing did
   * ```
   */
  updateSettings(
    input: AdminInput & { readonly settings: SettingsPatch },
  ): ResultAsync<{ readonly kind: 'settingsUpdated'; readonly changed: readonly string[] }, AuthError>
  /**
   * Claims a domain for the organization (issue 13), for home-realm discovery once verified.
   * Returns the DNS TXT record the domain's owner publishes; adding a domain the organization
   * already claims returns it again (`created: false`). Admin rights as `disableProvider`; one
   * transaction with a `domain.add` audit entry. A malformed domain (a trailing dot, an IP
   * address...) is `INPUT_INVALID` with `details.field: 'domain'`.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const added = await sso.addDomain({ organizationId, session, domain: 'acme.example' })
   * if (added.isOk()) {
   *   const { name, value } = added.value.domain.dnsRecord
   *   console.log(`Publish a TXT record ${name} with the value ${value}`) // _ssoflow-challenge.acme.example
   * }
   * ```
   */
  addDomain(input: DomainInput): ResultAsync<DomainAdded, AuthError>
  /**
   * Marks a claimed domain verified: the host calls it after ITS OWN ownership check (the DNS TXT
   * record of `addDomain`). `DOMAIN_TAKEN` when another organization has the domain verified (also
   * when two verify it concurrently: exactly one wins); `DOMAIN_UNKNOWN` when this organization
   * has not claimed it. Audit entry `domain.verify`.
   *
   * @example
   * ```ts
   * import { resolveTxt } from 'node:dns/promises'
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * // Your own ownership check first: the TXT record addDomain asked for.
   * const listed = await sso.listDomains({ organizationId, session })
   * const record = listed.isOk() ? listed.value.domains.find((d) => d.domain === 'acme.example')?.dnsRecord : undefined
   * const published = record ? (await resolveTxt(record.name).catch(() => [])).map((parts) => parts.join('')) : []
   * if (record && published.includes(record.value)) {
   *   const verified = await sso.verifyDomain({ organizationId, session, domain: 'acme.example' })
   *   if (verified.isErr()) console.log(verified.error.code) // DOMAIN_TAKEN: another organization has it
   * }
   * ```
   */
  verifyDomain(input: DomainInput): ResultAsync<DomainVerified, AuthError>
  /**
   * Removes a claimed domain (verified or not); `DOMAIN_UNKNOWN` when not claimed. Audit entry
   * `domain.remove`. Logins by email for that domain end with `DOMAIN_UNKNOWN` from then on.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const removed = await sso.removeDomain({ organizationId, session, domain: 'acme.example' })
   * if (removed.isOk()) console.log(`${removed.value.domain} no longer routes logins`)
   * ```
   */
  removeDomain(input: DomainInput): ResultAsync<DomainRemoved, AuthError>
  /**
   * The organization's claimed domains with their DNS records (admin rights; reads only).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * const listed = await sso.listDomains({ organizationId, session })
   * if (listed.isOk()) for (const d of listed.value.domains) console.log(d.domain, d.verified ? 'verified' : d.dnsRecord.value)
   * ```
   */
  listDomains(input: AdminInput): ResultAsync<DomainList, AuthError>
  /**
   * Checks one identity with its provider (periodic job).
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   * declare const identityIds: string[] // your periodic job's batch
   *
   * for (const identityId of identityIds) {
   *   const result = await sso.refreshIdentity({ identityId })
   *   if (result.isOk() && result.value.kind === 'invalid') console.log(identityId, result.value.reason) // the member is marked ssoInvalid
   * }
   * ```
   */
  refreshIdentity(input: { readonly identityId: string }): ResultAsync<RefreshOutcome, AuthError>
  /**
   * Checks an emailed account-verification link (spec 3.12) without consuming it. On success the
   * host stores `token` in the session as `verificationToken` and sends the user back to the org
   * login; the login pipeline consumes it (single use) when it links the account.
   *
   * @example
   * ```ts
   * import type { AuthPipeline } from 'ssoflow'
   * declare const sso: AuthPipeline // createAuthPipeline(...)
   *
   * declare const token: string // GET /verify/:token, the emailed one-time link
   *
   * const result = await sso.verifyAccountLink({ token, session })
   * if (result.isOk()) {
   *   // keep result.value.token in the session as `verificationToken`, then finish the login pipeline
   *   await sso.finishLogin({ handle, session: { ...session, verificationToken: result.value.token } })
   * }
   * ```
   */
  verifyAccountLink(input: VerifyAccountLinkInput): ResultAsync<AccountLinkVerified, AuthError>
}

/** Input of `runPendingWork`. @group Engine */
export interface PendingWorkInput {
  /** Pages of mail to send in this call (a page is `policy.memberPageSize` members). @defaultValue 20 */
  readonly limit?: number | undefined
  /**
   * How long a claimed item is this worker's before another worker may take it over; longer
   * than one page of sends takes. @defaultValue 300000 (5 minutes)
   */
  readonly leaseMs?: number | undefined
  /** Sweep expired pipeline states and one-time tokens too. @defaultValue true */
  readonly sweep?: boolean | undefined
  /** Rows per sweep batch (at most 10 batches per table per call). @defaultValue 1000 */
  readonly sweepBatch?: number | undefined
}

/** What one `runPendingWork` call did. @group Outcomes */
export interface PendingWorkReport {
  readonly kind: 'pendingWorkRan'
  /** Pages of members handled (one storage read each). */
  readonly pages: number
  /** Mails the mailer accepted. */
  readonly mailsSent: number
  /** Mails the mailer refused or did not answer in time (their page is retried later, with backoff). */
  readonly mailsFailed: number
  /** Work items finished (every page sent, or dropped because their provider is gone). */
  readonly completed: number
  /** True when the call stopped at a limit with work possibly left: call again. */
  readonly more: boolean
  /** Expired rows deleted by the housekeeping sweep. */
  readonly swept: { readonly pipelineStates: number; readonly oneTimeTokens: number }
  /** Mailer failures of this call. */
  readonly warnings: readonly EffectWarning[]
}

/** Input of `verifyAccountLink`. @group Engine */
export interface VerifyAccountLinkInput {
  /** The token from the emailed link. */
  readonly token: string
  readonly session: SessionInfo
}

/** A valid account-verification link. @group Outcomes */
export interface AccountLinkVerified {
  readonly kind: 'accountVerified'
  readonly organizationId: string
  /** Store this in the session as `verificationToken`. */
  readonly token: string
}
