/**
 * The per-provider trust policy: what an identity provider's word about an email address is
 * worth. Typed data, validated with zod when a provider is created and when setup stores it.
 *
 * The policy decides what counts as a verified address for a NEW account's invite match and for
 * linking a signed-in member's own address. It never links an anonymous visitor to an existing
 * account: that takes the account's own proof (being signed in, or the emailed link), whatever
 * the policy says (DESIGN.md section 1).
 *
 * @module
 */

import { err, ok, type Result } from 'neverthrow'
import { z } from 'zod'

/**
 * How the provider's statement about an address counts:
 * - `'claim'`: the address counts as verified when the provider says so (`email_verified: true`,
 *   a strict boolean);
 * - `'asserted'`: every address the provider sends in one of `domains` counts as verified, with
 *   or without `email_verified` (for a provider that owns those domains and never sends the
 *   claim: a tenant-bound Entra ID, JumpCloud, OneLogin). Needs `domains`;
 * - `'never'`: nothing the provider says makes an address verified.
 * @group Trust
 */
export type EmailTrust = 'claim' | 'asserted' | 'never'

/**
 * A provider's trust policy.
 *
 * @example
 * ```ts
 * import type { TrustPolicy } from 'ssoflow'
 * const trust: TrustPolicy = { name: 'acme-entra', emailVerified: 'asserted', domains: ['acme.com'], inviteMatch: true }
 * ```
 * @group Trust
 */
export interface TrustPolicy {
  /** Named in every trace entry of a decision that used the policy (1-64 of `a-z 0-9 . _ -`). */
  readonly name: string
  /** How `email_verified` counts (see {@link EmailTrust}). */
  readonly emailVerified: EmailTrust
  /**
   * Email domains (lowercase ASCII, IDNs as `xn--` A-labels, no trailing dot) for which the
   * provider's statement counts; an address in any other domain is treated as unverified.
   * Exact match: `acme.com` does not cover `eu.acme.com`. Omitted: every domain (not allowed with
   * `'asserted'`). At most 100.
   */
  readonly domains?: readonly string[] | undefined
  /**
   * Whether an address from this provider that counts as verified may accept a pending invite
   * sent to that address. An invite in the session (its link was followed) is accepted whatever
   * this says. Must be false with `emailVerified: 'never'`.
   */
  readonly inviteMatch: boolean
}

/**
 * The policy of a provider that says nothing about trust (and of every provider before 0.2):
 * the IdP's strict-boolean `email_verified` counts for every domain, and may match an invite.
 * @group Trust
 */
export const DEFAULT_TRUST_POLICY: TrustPolicy = Object.freeze({ name: 'default', emailVerified: 'claim', inviteMatch: true })

/** One label of a domain name: letters, digits, hyphens inside, 1-63 characters. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/**
 * Why `domain` is not a usable domain for a trust policy or an organization domain, or null.
 * Lowercase ASCII only: an IDN must be given as its `xn--` A-label, a trailing dot is refused.
 *
 * @example
 * ```ts
 * import { domainProblem } from 'ssoflow'
 * domainProblem('acme.com') // null
 * domainProblem('acme.com.') // 'must not end with a dot'
 * ```
 * @group Trust
 */
export function domainProblem(domain: string): string | null {
  if (domain.length === 0 || domain.length > 253) return 'must be 1-253 characters'
  if (domain.endsWith('.')) return 'must not end with a dot'
  if (/[^\x21-\x7e]/.test(domain)) return 'must be ASCII: give an internationalized domain as its xn-- form'
  if (domain !== domain.toLowerCase()) return 'must be lowercase'
  const labels = domain.split('.')
  if (labels.length < 2) return 'must have at least two labels (example.com)'
  if (!labels.every((l) => LABEL.test(l))) return 'must be letters, digits and hyphens between dots'
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) return 'must not be an IP address'
  return null
}

const domainSchema = z.string().superRefine((value, ctx) => {
  const problem = domainProblem(value)
  if (problem) ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 64)}" ${problem}` })
})

/**
 * The zod schema of {@link TrustPolicy}: strict (an unknown field is refused by name), and the
 * unsafe or conflicting combinations refused with the reason.
 * @group Trust
 */
export const trustPolicySchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9._-]+$/, 'must be lowercase letters, digits, ".", "_" or "-"'),
    emailVerified: z.enum(['claim', 'asserted', 'never']),
    domains: z.array(domainSchema).min(1).max(100).optional(),
    inviteMatch: z.boolean(),
  })
  .superRefine((p, ctx) => {
    if (p.emailVerified === 'asserted' && p.domains === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['domains'],
        message: "emailVerified 'asserted' trusts every address the provider sends: list the domains it owns in domains",
      })
    }
    if (p.emailVerified === 'never' && p.inviteMatch) {
      ctx.addIssue({
        code: 'custom',
        path: ['inviteMatch'],
        message: "inviteMatch needs an address that counts as verified, and with emailVerified 'never' none does",
      })
    }
    if (p.emailVerified === 'never' && p.domains !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['domains'], message: "domains has no effect with emailVerified 'never': remove it" })
    }
    if (p.domains && new Set(p.domains).size !== p.domains.length) {
      ctx.addIssue({ code: 'custom', path: ['domains'], message: 'lists a domain twice' })
    }
  })

/** One problem of a trust policy: the field (dotted path under `trust`) and why. @group Trust */
export interface TrustPolicyIssue {
  readonly field: string
  readonly message: string
}

/**
 * The problems of `value` as a trust policy, each naming its field (`trust.domains.0` ...).
 *
 * @example
 * ```ts
 * import { trustPolicyIssues } from 'ssoflow'
 * trustPolicyIssues({ name: 'x', emailVerified: 'never', inviteMatch: true })[0]?.field // 'trust.inviteMatch'
 * ```
 * @group Trust
 */
export function trustPolicyIssues(value: unknown, prefix = 'trust'): TrustPolicyIssue[] {
  const parsed = trustPolicySchema.safeParse(value)
  return parsed.success ? [] : issuesOf(parsed.error, prefix)
}

function issuesOf(error: z.ZodError, prefix: string): TrustPolicyIssue[] {
  return error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys : undefined
    const path = [prefix, ...i.path.map(String)].join('.')
    return keys?.length
      ? { field: `${path}.${keys[0]}`, message: `unknown field ${keys.map((k) => `"${k.slice(0, 64)}"`).join(', ')}` }
      : { field: path, message: i.message }
  })
}

/**
 * Parses a trust policy; the error lists every bad field (`trust.domains`, `trust.inviteMatch` ...)
 * with the reason.
 *
 * @example
 * ```ts
 * import { parseTrustPolicy } from 'ssoflow'
 * const r = parseTrustPolicy({ name: 'x', emailVerified: 'asserted', inviteMatch: true })
 * r.isErr() && r.error[0]?.field // 'trust.domains'
 * ```
 * @group Trust
 */
export function parseTrustPolicy(value: unknown, prefix = 'trust'): Result<TrustPolicy, readonly TrustPolicyIssue[]> {
  // One parse: its issues when it fails, its value when it passes.
  const parsed = trustPolicySchema.safeParse(value)
  if (!parsed.success) return err(issuesOf(parsed.error, prefix))
  const p = parsed.data
  return ok(p.domains ? { ...p, domains: [...p.domains] } : { name: p.name, emailVerified: p.emailVerified, inviteMatch: p.inviteMatch })
}

/**
 * What a trust policy made of one identity's address, named for the trace.
 * @group Trust
 */
export interface TrustJudgement {
  /** The policy's name. */
  readonly policy: string
  /** Whether the address counts as verified under the policy. */
  readonly emailVerified: boolean
  /** Whether the address may match a pending invite sent to it. */
  readonly inviteMatch: boolean
  /** Why, in words (for the trace). */
  readonly reason: string
}

/**
 * Applies `policy` to an address and the provider's strict-boolean `email_verified`. PURE.
 *
 * @example
 * ```ts
 * import { DEFAULT_TRUST_POLICY, judgeEmail } from 'ssoflow'
 * judgeEmail(DEFAULT_TRUST_POLICY, 'ada@acme.com', true).emailVerified // true
 * ```
 * @group Trust
 */
export function judgeEmail(policy: TrustPolicy, emailNormalized: string, claimedVerified: boolean): TrustJudgement {
  const at = emailNormalized.lastIndexOf('@')
  const domain = at >= 0 ? emailNormalized.slice(at + 1) : ''
  const judged = (emailVerified: boolean, reason: string): TrustJudgement => ({
    policy: policy.name,
    emailVerified,
    inviteMatch: emailVerified && policy.inviteMatch,
    reason,
  })
  if (policy.emailVerified === 'never') return judged(false, "emailVerified 'never': the provider's word never verifies an address")
  if (policy.domains && !policy.domains.includes(domain)) {
    return judged(false, `the address's domain is not one of the policy's domains (${policy.domains.join(', ')})`)
  }
  if (policy.emailVerified === 'asserted') return judged(true, `emailVerified 'asserted' for ${domain}`)
  return claimedVerified
    ? judged(true, "emailVerified 'claim': the provider sent email_verified true")
    : judged(false, "emailVerified 'claim': the provider did not send email_verified true")
}
