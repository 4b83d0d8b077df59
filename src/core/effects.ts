import type { AuditEntry, AuthIdentity, AuthProvider, Member, MemberFlags, User, UserEmail } from '../model/records.js'
import type { MailMessage } from '../ports/mailer.js'
import type { Signal } from '../ports/signals.js'
import type { AuthIdentityPatch, AuthProviderPatch, InviteAcceptance, MemberPatch, OrganizationPatch } from '../ports/storage.js'

/**
 * A write the engine applies inside the flow's single transaction. Decisions are data: the
 * pure core returns these, the shell interprets them one port call each.
 * @group Core
 */
export type TxEffect =
  | { readonly type: 'user.create'; readonly user: User; readonly email: UserEmail }
  | { readonly type: 'identity.create'; readonly identity: AuthIdentity }
  | { readonly type: 'identity.update'; readonly id: string; readonly patch: AuthIdentityPatch }
  | { readonly type: 'identity.delete'; readonly id: string }
  | {
      readonly type: 'identity.deleteForUser'
      readonly authProviderId: string
      readonly userId: string
      readonly exceptId: string | null
    }
  | { readonly type: 'identity.deleteForProvider'; readonly authProviderId: string }
  | { readonly type: 'member.create'; readonly member: Member }
  | { readonly type: 'member.update'; readonly id: string; readonly patch: MemberPatch }
  /** Accepts a pending invite (a guarded write: the shell retries the decision when it was taken first). */
  | { readonly type: 'member.acceptInvite'; readonly id: string; readonly acceptance: InviteAcceptance }
  | { readonly type: 'member.delete'; readonly id: string }
  | { readonly type: 'member.setFlagsForOrganization'; readonly organizationId: string; readonly flags: Partial<MemberFlags> }
  | { readonly type: 'provider.create'; readonly provider: AuthProvider }
  | { readonly type: 'provider.update'; readonly id: string; readonly patch: AuthProviderPatch }
  | { readonly type: 'provider.delete'; readonly id: string }
  | { readonly type: 'organization.update'; readonly id: string; readonly patch: OrganizationPatch }
  | { readonly type: 'audit.record'; readonly entry: AuditEntry }

/**
 * Work done only after the transaction committed: mail and signals.
 * @group Core
 */
export type AfterCommitEffect =
  | { readonly type: 'mail.send'; readonly message: MailMessage }
  | { readonly type: 'signal.emit'; readonly signal: Signal }

/**
 * One rule that fired while deciding, for `explain()` and logs. No secrets, no tokens.
 * @group Core
 */
export interface TraceEntry {
  /** Stable rule id, e.g. `existing.link-fixup`, `unknown.target.session-user`. */
  readonly rule: string
  /** Human-readable explanation. */
  readonly detail: string
}
