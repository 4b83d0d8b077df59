/**
 * Facts and plans of the login decision. Facts are plain data loaded by the shell (no ports,
 * no functions); plans are data the shell interprets.
 * @module
 */
import type { AuthError } from '../../errors.js'
import type { Identity } from '../../model/identity.js'
import type { AuthIdentity, Member, Organization, User } from '../../model/records.js'
import type { TrustJudgement } from '../../model/trust.js'
import type { UserEmailMatch } from '../../ports/storage.js'
import type { AfterCommitEffect, TraceEntry, TxEffect } from '../effects.js'
import type { SessionInviteFacts } from '../membership.js'
import type { VerificationSends } from './verification-limit.js'

/** A choice on a confirmation page. @group Core */
export type LoginChoice = 'confirm' | 'newuser'

/**
 * What the emailed account-verification token is bound to (spec 3.12, threat 18). Stored as
 * the token record's payload; only the SHA-256 of the token itself is stored.
 * @group Core
 */
export interface VerificationBinding {
  readonly userId: string
  /** The account address the link was mailed to. */
  readonly email: string
  readonly organizationId: string
  readonly authProviderId: string
  /** The external id being linked. */
  readonly ident: string
  /** The pipeline that requested the link. */
  readonly pipelineId: string
}

/**
 * The linked identity found by (provider, external id), or by the legacy id.
 * @group Core
 */
export interface LinkedFacts {
  readonly identity: AuthIdentity
  readonly user: User
  /** `legacy` when found through the migrating id's legacy value (its ident is rewritten). */
  readonly via: 'ident' | 'legacy'
}

/**
 * Everything `decideLogin` needs.
 * @group Core
 */
export interface LoginFacts {
  readonly now: Date
  /** Pre-allocated record ids, taken in a fixed order (at least 6). */
  readonly ids: readonly string[]
  /** Pre-generated random 32-hex username for a new user. */
  readonly newUsername: string
  readonly organization: Organization
  readonly provider: { readonly id: string; readonly key: string; readonly displayName: string }
  readonly pipeline: {
    readonly id: string
    readonly referrer: string | null
    /** When this pipeline last mailed an account-verification link (ms), or null. */
    readonly verificationSentAt: number | null
    /**
     * Who was signed in when the pipeline began (null: anonymous). An anonymous pipeline that
     * proves an existing account (emailed link, or signing in to it) claims it (threats 2, 3).
     */
    readonly initiatorUserId: string | null
  }
  /**
   * The validated identity (from the IdP, or stored on the state by an earlier finish), its
   * `emailVerified` as the provider's trust policy judged it.
   */
  readonly identity: Identity
  /**
   * What the provider's trust policy made of the identity's address (named in the trace).
   * Omitted: the IdP's `emailVerified` counts as it is, and may match an invite.
   */
  readonly trust?: TrustJudgement | undefined
  readonly op: LoginChoice | null
  readonly session: {
    readonly userId: string | null
    /** The user whose second factor the session passed (threat 63), or null. */
    readonly twoFactorUserId: string | null
    readonly ip: string | null
  }
  /** The session user's record (null when anonymous or unknown). */
  readonly sessionUser: User | null
  readonly linked: LinkedFacts | null
  /** Active users having the identity's (normalized) email. */
  readonly emailMatches: readonly UserEmailMatch[]
  /** Membership in the organization by user id, for every user the decision may touch. */
  readonly members: ReadonlyMap<string, Member | null>
  /** Identity for this provider by user id (the attach target's). */
  readonly identitiesByUser: ReadonlyMap<string, AuthIdentity | null>
  /**
   * Every identity (all providers) by user id, loaded for the target of a possible claim: an
   * anonymous pipeline holding an emailed link or finishing signed in (threat 3).
   */
  readonly identitiesOfUser: ReadonlyMap<string, readonly AuthIdentity[]>
  /** Pending invite of the organization by normalized email. */
  readonly invitesByEmail: ReadonlyMap<string, Member | null>
  /**
   * Verified normalized addresses by user id, loaded for users who have an invite by email
   * (in addition to what `emailMatches` shows).
   */
  readonly verifiedAddresses: ReadonlyMap<string, readonly string[]>
  readonly sessionInvite: SessionInviteFacts | null
  /** The binding of the session's verification token (looked up by its hash), or null. */
  readonly verification: VerificationBinding | null
  readonly memberLimitReached: boolean
  /** Where the host's login page is (offered on confirmation pages). */
  readonly loginUrl: string
  /** A fresh verification token, used only when the decision mails a link. */
  readonly newVerification: { readonly tokenHash: string; readonly url: string }
  /**
   * The verification mails the target user already got (threat 28), loaded only when the
   * decision may mail a link (anonymous, no op, a passwordless target); null when none or not loaded.
   */
  readonly verificationSends: VerificationSends | null
  readonly policy: {
    readonly verificationTtlSeconds: number
    readonly verificationResendSeconds: number
    readonly verificationDailyLimit: number
    /**
     * `'create'`: an anonymous login of an unknown identity whose email matches no account
     * creates the user at once (just-in-time); `'confirm'`: it shows confirm-identity first.
     */
    readonly newUser: 'confirm' | 'create'
    /** What a claim does with the identities of other providers on the account (threat 3). */
    readonly identitiesOnClaim: 'keep' | 'remove'
    /**
     * A returning login leaves its identity row alone when the merged data is unchanged and
     * `lastVerified` and `lastSynced` are less than this many seconds old (0: always rewrite).
     * Absent: 0.
     */
    readonly identityRefreshSeconds?: number | undefined
    /** False: a returning identity whose user has no membership is refused (threat 51). Absent: true. */
    readonly rejoinOnLogin?: boolean | undefined
  }
}

/**
 * Confirmation page models. An anonymous visitor gets one page, `confirm-identity`, whatever
 * accounts exist (threat 29): it names only what the IdP asserted, offers a new account, a sign-in
 * to link an existing one, and says that a link was mailed if an account can be proven by mail
 * (the mail goes to the account's own address; it is the only channel that tells more). A
 * signed-in visitor gets `confirm-link`. The engine exports this type as `ConfirmationPage`.
 * @group Core
 */
export type ConfirmationPageModel =
  | {
      readonly page: 'confirm-link'
      readonly organization: { readonly name: string; readonly slug: string }
      readonly provider: string
      readonly identityDisplayName: string
      readonly identityIdentifier: string
      readonly currentUser: { readonly id: string; readonly email: string; readonly name: string }
    }
  | {
      readonly page: 'confirm-identity'
      readonly organization: { readonly name: string; readonly slug: string }
      readonly provider: string
      readonly identityDisplayName: string
      readonly identityIdentifier: string
      readonly loginUrl: string
    }

/**
 * An identity found on a claimed account (threat 3): never its provider data.
 * @group Core
 */
export interface ClaimedAccountIdentity {
  readonly id: string
  readonly authProviderId: string
  /** The external id at that provider. */
  readonly ident: string
  /** When it was linked (ISO 8601). */
  readonly createdAt: string
}

/**
 * An anonymous pipeline proved an existing account (threats 2, 3): by the emailed one-time link
 * (`emailLink`) or by signing in to it during the pipeline (`signIn`). The host must revoke the
 * account's other sessions (the `revokeOtherSessions` session effect) and should show the owner
 * the identities left on it.
 * @group Core
 */
export interface AccountClaim {
  readonly proof: 'emailLink' | 'signIn'
  /** Identities of other providers still linked to the account (policy `identitiesOnClaim: 'keep'`). */
  readonly identitiesKept: readonly ClaimedAccountIdentity[]
  /** Identities of other providers the claim removed (policy `identitiesOnClaim: 'remove'`). */
  readonly identitiesRemoved: readonly ClaimedAccountIdentity[]
}

/**
 * A verification token the shell must store (hash only) before mailing the link.
 * @group Core
 */
export interface VerificationIssue {
  readonly tokenHash: string
  readonly binding: VerificationBinding
  readonly expiresAt: Date
  /** The new `verificationSentAt` of the pipeline (ms). */
  readonly sentAt: number
  /** The user's previous live link, revoked by this one (one live link per user, threat 28). */
  readonly revokeTokenHash: string | null
  /** The user's send record after this mail, and until when to keep it (ms). */
  readonly sends: VerificationSends
  readonly sendsKeepUntil: number
}

/**
 * The login decision.
 * @group Core
 */
export type LoginDecision =
  | {
      readonly kind: 'signIn'
      readonly path: 'existing' | 'attach' | 'newUser'
      readonly userId: string
      readonly memberId: string
      readonly created: { readonly user: boolean; readonly identity: boolean; readonly member: boolean }
      /** True when an identity was newly linked or re-pointed/re-keyed to the user. */
      readonly linked: boolean
      readonly acceptedInviteId: string | null
      /** The session's verification token proved ownership and must be consumed. */
      readonly consumesVerification: boolean
      /** Set when an anonymous pipeline proved an existing account (threats 2, 3). */
      readonly claim: AccountClaim | null
    }
  | {
      readonly kind: 'confirm'
      readonly page: ConfirmationPageModel
      readonly allowedOps: readonly LoginChoice[]
      readonly verification: VerificationIssue | null
    }
  | { readonly kind: 'twoFactor'; readonly userId: string }
  | {
      readonly kind: 'reject'
      readonly error: AuthError
      /** True when the pipeline stays open (the user may choose again), false when it ends. */
      readonly keepState: boolean
    }

/**
 * A decision with its effects. Only `signIn` carries transaction effects; `confirm` may carry
 * one after-commit mail (the verification link).
 * @group Core
 */
export interface LoginPlan {
  readonly decision: LoginDecision
  readonly txEffects: readonly TxEffect[]
  readonly afterCommit: readonly AfterCommitEffect[]
  readonly trace: readonly TraceEntry[]
}
