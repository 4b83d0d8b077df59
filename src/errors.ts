/**
 * Stable error codes and the {@link AuthError} value. Codes are public API: UPPER_SNAKE, no
 * prefix, one spelling, never renamed without a major release.
 *
 * @module
 */

/**
 * Every error code ssoflow returns, with the default human message.
 * @group Errors
 */
export const ERROR_CODES = {
  // input
  INPUT_INVALID: 'The request was malformed.',
  CONFIG_INVALID: 'The ssoflow configuration is invalid.',
  IDENTITY_INVALID: 'The provider did not return a valid user identity.',
  /** A preset's check refused the account: another Entra tenant, another Google hosted domain. */
  IDENTITY_NOT_ALLOWED: 'The account you signed in with cannot be used for this organization. Sign in with your work account.',
  // pipeline state
  STATE_INVALID: 'Something unexpected happened during authentication.',
  STATE_NOT_FOUND: 'Your sign-in session was not found. Please start again.',
  STATE_EXPIRED: 'Your sign-in session expired. Please start again.',
  STATE_CONSUMED: 'This sign-in was already completed. Please start again.',
  STATE_VERSION: 'Your sign-in session is from an incompatible version. Please start again.',
  STATE_FINGERPRINT: 'The identity provider configuration changed during sign-in. Please start again.',
  STATE_SESSION_MISMATCH: 'This sign-in was started in another browser session.',
  STATE_CONFLICT: 'This sign-in is being completed by another request. Please retry.',
  FLOW_MISMATCH: 'This sign-in session belongs to another flow.',
  ORG_MISMATCH: 'This sign-in session belongs to another organization.',
  PROVIDER_MISMATCH: 'This sign-in session belongs to another identity provider.',
  // provider / protocol
  PROVIDER_UNKNOWN: 'This identity provider is not available.',
  PROVIDER_DISABLED: 'Provider is not enabled.',
  PROVIDER_NOT_CONFIGURED: 'The organization does not have single sign-on configured.',
  PROVIDER_EXISTS: 'Single sign-on is already configured for this organization.',
  PROVIDER_ERROR: 'The identity provider returned an error.',
  PROVIDER_UNAVAILABLE: 'The identity provider could not be reached.',
  PROVIDER_RESPONSE_INVALID: 'The identity provider returned an invalid response.',
  URL_NOT_ALLOWED: 'This address is not allowed for an identity provider.',
  ORGANIZATION_NOT_FOUND: 'The organization does not exist.',
  // verified domains and home-realm discovery (issue 13)
  /**
   * `beginLogin({ email })`: no organization has the address's domain verified (or, from a
   * host's own data, more than one has: the same answer, so nothing is revealed). Admin calls:
   * the organization has not claimed that domain.
   */
  DOMAIN_UNKNOWN: 'Single sign-on is not set up for this email address. Sign in another way or ask your administrator.',
  /** `verifyDomain`: another organization has this domain verified. */
  DOMAIN_TAKEN: 'This domain is already verified by another organization.',
  // signed IdP responses (SAML)
  SAML_RESPONSE_INVALID: 'The identity provider sent a malformed sign-in response.',
  SAML_METADATA_INVALID: 'The identity provider metadata is invalid.',
  SAML_IN_RESPONSE_TO_MISMATCH: 'The sign-in response does not answer this sign-in request. Please start again.',
  ASSERTION_UNVERIFIED: 'The sign-in response could not be verified.',
  ASSERTION_ALGORITHM_REFUSED: 'The identity provider used a signing or encryption algorithm that is not allowed.',
  ASSERTION_ISSUER_MISMATCH: 'The sign-in response came from another identity provider.',
  ASSERTION_AUDIENCE_MISMATCH: 'The sign-in response was meant for another application.',
  ASSERTION_EXPIRED: 'The sign-in response has expired or is not valid yet. Please sign in again.',
  // single-use and unsolicited IdP responses
  ASSERTION_REPLAYED: 'This sign-in response was already used. Please sign in again.',
  UNSOLICITED_RESPONSE: 'Sign-in started at the identity provider is not accepted here. Please sign in from this application.',
  RELAY_STATE_INVALID: 'This sign-in response does not belong to a sign-in started in this browser. Please start again.',
  // actors
  NOT_AUTHENTICATED: 'You must be authenticated to link accounts.',
  NOT_AUTHORIZED: 'You are not allowed to manage single sign-on for this organization.',
  UID_MISMATCH: 'There was an error encountered during authentication.',
  NOT_A_MEMBER: 'You are not a member of this organization.',
  /**
   * @deprecated Never returned by a public call: the signed-in user is always the account an
   * identity is attached to (N1). Kept only as the defensive refusal of the attach planner.
   */
  SESSION_USER_MISMATCH: 'The signed-in user does not match the account being linked.',
  USER_SUSPENDED: 'This account is suspended.',
  // linking
  IDENTITY_CONFLICT: 'An account with this email already exists. Sign in to link it instead.',
  MERGE_FAILED: 'You must sign in to the existing account before linking it.',
  OP_NOT_ALLOWED: 'That choice is not available for this sign-in.',
  VERIFICATION_INVALID: 'The verification link is invalid or has expired.',
  /** Too many verification mails for the account, or the host's `isRateLimited` hook refused. */
  RATE_LIMITED: 'Too many attempts. Please wait a while and try again.',
  /**
   * @deprecated Never returned: an invalid session invite is ignored (with a trace entry) and the
   * login goes on (docs/login-flow.md).
   */
  INVITE_INVALID: 'The invitation is invalid or has expired.',
  // HTTP handler (ssoflow/http)
  CSRF_INVALID: 'This form has expired or did not come from this site. Please start again.',
  CROSS_SITE_REQUEST: 'This request came from another site and was refused.',
  BODY_TOO_LARGE: 'The request was too large.',
  CONTENT_TYPE_INVALID: 'The request was not a form this page accepts.',
  ROUTE_NOT_FOUND: 'This page does not exist.',
  INTERNAL_ERROR: 'Something went wrong on our side. Please start again.',
  // infrastructure
  STORAGE_CONFLICT: 'A concurrent change conflicted with this request. Please retry.',
  STORAGE_UNAVAILABLE: 'The service is temporarily unavailable. Please retry.',
} as const

/**
 * A stable error code.
 * @group Errors
 */
export type AuthErrorCode = keyof typeof ERROR_CODES

/**
 * Which page an error sends the user back to: the org login (login flow), the org's auth
 * settings (setup flow), or the app root when the flow is unknown (Sentry's single error exit).
 * @group Errors
 */
export type ErrorRedirectHint = 'orgLogin' | 'authSettings' | 'root'

/**
 * An expected failure, returned as a value (never thrown).
 * @group Errors
 */
export interface AuthError {
  readonly kind: 'authError'
  readonly code: AuthErrorCode
  /** A human message safe to show to the end user. Never contains provider or driver text. */
  readonly message: string
  /** Where the host should send the user. */
  readonly redirect: ErrorRedirectHint
  /** True when retrying the same request may succeed (conflicts, unavailable storage). */
  readonly retryable: boolean
  /** Machine-readable details (which field was invalid...). Safe to log. */
  readonly details?: Readonly<Record<string, unknown>> | undefined
  /** The underlying error (provider text, driver error). Log it; do not show it. */
  readonly cause?: unknown
}

const RETRYABLE: ReadonlySet<AuthErrorCode> = new Set(['STORAGE_CONFLICT', 'STORAGE_UNAVAILABLE', 'STATE_CONFLICT', 'PROVIDER_UNAVAILABLE'])

/**
 * Builds an {@link AuthError}. The `cause` is kept non-enumerable so that serializing the error
 * (JSON, structured logs that copy own enumerable props) never leaks tokens or provider bodies.
 *
 * @example
 * ```ts
 * import { authError } from 'ssoflow'
 *
 * // A custom provider step refusing a response: the cause is kept for logs but never serialized.
 * const error = authError('PROVIDER_ERROR', { redirect: 'orgLogin', details: { stage: 'token' }, cause: new Error('HTTP 401 from the IdP') })
 * error.message // 'The identity provider returned an error.' (the code's default, safe to show)
 * JSON.stringify(error).includes('401') // false
 * ```
 * @group Errors
 */
export function authError(
  code: AuthErrorCode,
  options: {
    message?: string | undefined
    redirect?: ErrorRedirectHint | undefined
    details?: Readonly<Record<string, unknown>> | undefined
    cause?: unknown
  } = {},
): AuthError {
  const error: AuthError = {
    kind: 'authError',
    code,
    message: options.message ?? ERROR_CODES[code],
    redirect: options.redirect ?? 'root',
    retryable: RETRYABLE.has(code),
    ...(options.details !== undefined ? { details: options.details } : {}),
  }
  if (options.cause !== undefined) {
    Object.defineProperty(error, 'cause', { value: options.cause, enumerable: false })
  }
  return error
}

/**
 * Type guard for {@link AuthError}.
 *
 * @example
 * ```ts
 * import { isAuthError } from 'ssoflow'
 *
 * // The host's error handler: ssoflow's typed failures keep their code and safe message.
 * function toProblem(error: unknown): { code: string; message: string } {
 *   return isAuthError(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL_ERROR', message: 'Something went wrong.' }
 * }
 * isAuthError({ kind: 'authError', code: 'NOT_A_CODE' }) // false: only the codes of ERROR_CODES
 * ```
 * @group Errors
 */
export function isAuthError(value: unknown): value is AuthError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'authError' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ERROR_CODES, (value as { code: string }).code)
  )
}

/**
 * Thrown only for programmer errors (invalid options to `createAuthPipeline`, a port that breaks
 * its contract) and by `unwrap` helpers. Expected failures are {@link AuthError} values.
 * @group Errors
 */
export class SsoflowError extends Error {
  readonly code: AuthErrorCode
  /** `CONFIG_INVALID` from `createAuthPipeline`: every problem of the options, by path. */
  readonly issues: readonly { readonly path: string; readonly message: string }[]
  constructor(
    code: AuthErrorCode,
    message?: string,
    options?: { cause?: unknown; issues?: readonly { readonly path: string; readonly message: string }[] | undefined },
  ) {
    super(message ?? ERROR_CODES[code], options?.cause !== undefined ? { cause: options.cause } : undefined)
    this.name = 'SsoflowError'
    this.code = code
    this.issues = options?.issues ?? []
  }
}
