/**
 * From ID-token and userinfo claims to the identity's email, verification flag and name.
 *
 * Threat 61: a verification flag counts only for the address it came with. The ID token's
 * `email_verified` never applies to an email taken from userinfo, and userinfo's flag applies to
 * the ID token's email only when userinfo names that same address.
 *
 * @module
 */

import { type AuthError, authError } from '../../errors.js'
import { LIMITS } from '../../model/limits.js'

/**
 * When the userinfo endpoint is called: `'auto'` whenever the ID token lacks a claim the mapping
 * needs (`email`, or a boolean `email_verified`), `'always'`, or `'never'`.
 * @group Providers
 */
export type OidcUserinfoMode = 'auto' | 'always' | 'never'

type Claims = Readonly<Record<string, unknown>>

/** True when the userinfo endpoint should be called for these ID-token claims. */
export function needsUserinfo(mode: OidcUserinfoMode, idToken: Claims): boolean {
  if (mode === 'never') return false
  if (mode === 'always') return true
  return typeof idToken.email !== 'string' || typeof idToken.email_verified !== 'boolean'
}

/** How userinfo went: called, not offered by the provider, or not needed / disabled. */
export type UserinfoStatus = 'fetched' | 'no-endpoint' | 'not-needed' | 'disabled'

/** The mapped claims. */
export interface MappedClaims {
  readonly email: string
  readonly emailVerified: boolean
  readonly name: string | null
  /** Where the email came from. */
  readonly emailSource: 'id_token' | 'userinfo'
}

/** Claim names safe to report (bounded, at most 50, sorted). */
export function claimNames(claims: Claims | null): string[] | null {
  if (claims === null) return null
  return Object.keys(claims)
    .filter((k) => /^[A-Za-z0-9_.:-]{1,64}$/.test(k))
    .slice(0, 50)
    .sort()
}

function validEmail(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= LIMITS.email
}

/**
 * Maps the claims. A malformed `email` or `name` in either source is `PROVIDER_RESPONSE_INVALID`
 * naming the claim and the source; no email from any source is `IDENTITY_INVALID` whose details
 * name the missing claim, the claims that did arrive from each source, and what happened to
 * userinfo.
 */
export function mapClaims(idToken: Claims, userinfo: Claims | null, status: UserinfoStatus): MappedClaims | AuthError {
  for (const [source, claims] of [
    ['id_token', idToken],
    ['userinfo', userinfo],
  ] as const) {
    if (claims === null) continue
    if (claims.email !== undefined && claims.email !== null && !validEmail(claims.email)) {
      return authError('PROVIDER_RESPONSE_INVALID', { details: { stage: 'claims', reason: 'claim-invalid', claim: 'email', source } })
    }
    if (claims.name !== undefined && claims.name !== null && typeof claims.name !== 'string') {
      return authError('PROVIDER_RESPONSE_INVALID', { details: { stage: 'claims', reason: 'claim-invalid', claim: 'name', source } })
    }
  }
  const rawName = typeof idToken.name === 'string' ? idToken.name : typeof userinfo?.name === 'string' ? userinfo.name : null
  const name = rawName === null ? null : Array.from(rawName).slice(0, LIMITS.name).join('')
  if (validEmail(idToken.email)) {
    const sameAddressInUserinfo = userinfo !== null && userinfo.email === idToken.email
    return {
      email: idToken.email,
      emailVerified: idToken.email_verified === true || (sameAddressInUserinfo && userinfo.email_verified === true),
      name,
      emailSource: 'id_token',
    }
  }
  if (userinfo !== null && validEmail(userinfo.email)) {
    return { email: userinfo.email, emailVerified: userinfo.email_verified === true, name, emailSource: 'userinfo' }
  }
  return authError('IDENTITY_INVALID', {
    details: {
      reason: 'missing-claim',
      claim: 'email',
      idTokenClaims: claimNames(idToken),
      userinfoClaims: claimNames(userinfo),
      userinfo: status,
    },
  })
}
