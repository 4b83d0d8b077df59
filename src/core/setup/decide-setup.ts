import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../../errors.js'
import type { Identity, JsonObject } from '../../model/identity.js'
import type { AuthProvider, Member, Organization, User } from '../../model/records.js'
import { planAttach } from '../attach.js'
import type { AfterCommitEffect, TraceEntry, TxEffect } from '../effects.js'
import { linkFixup, planIds } from '../membership.js'

/**
 * A change to an org security policy made by setup, returned on the outcome so the host can
 * show or review it (threat 59). Every change is also audited.
 * @group Core
 */
export interface PolicyChange {
  readonly setting: 'require2fa'
  readonly from: boolean
  readonly to: boolean
  readonly reason: string
}

/** Ids pre-allocated by the shell for the rows a setup may create. @group Core */
export interface SetupIds {
  readonly provider: string
  readonly identity: string
  readonly auditOrgEdit: string
  readonly auditLink: string
  readonly auditEnable: string
}

/**
 * Everything `decideSetup` needs, read inside the setup transaction.
 * @group Core
 */
export interface SetupFacts {
  readonly now: Date
  readonly ids: SetupIds
  readonly organization: Organization
  /** The session user, re-authorized inside the transaction, and their membership. */
  readonly admin: { readonly user: User; readonly member: Member }
  /** The user who started the pipeline (from the state). */
  readonly initiatorUserId: string | null
  /** The org's provider as read in the transaction; must be null. */
  readonly existingProvider: AuthProvider | null
  readonly providerKey: string
  /** The config built by the provider from the bound setup state. */
  readonly config: JsonObject
  /** The same config with secrets removed (for the audit entry). */
  readonly redactedConfig: JsonObject
  /** The validated identity the IdP returned for the admin. */
  readonly identity: Identity
  readonly ip: string | null
}

/** The setup decision: what to write, what to do after commit, and why. @group Core */
export interface SetupPlan {
  readonly provider: AuthProvider
  readonly identityId: string
  readonly txEffects: readonly TxEffect[]
  /** The `sso_enabled` signal. Link-request mails are paged by the shell after commit. */
  readonly afterCommit: readonly AfterCommitEffect[]
  readonly policyChanges: readonly PolicyChange[]
  readonly trace: readonly TraceEntry[]
}

/** Reason recorded when setup turns the org's require-2FA flag off. @group Core */
export const REQUIRE_2FA_OFF_REASON = 'to false when enabling SSO'

/**
 * The setup pipeline's decision (spec 3.11 with the 2026 fixes, DESIGN.md section 1):
 * 1. the session user must be the initiator (`UID_MISMATCH`), and is the only possible
 *    target of the identity: the IdP's email is never used to pick a user (N9, threat 8);
 * 2. an org that already has a provider gets `PROVIDER_EXISTS`;
 * 3. when the org requires 2FA the flag is turned off with an `org.edit` audit entry, and the
 *    change is reported in `policyChanges`;
 * 4. the provider is created with the built config;
 * 5. the identity is attached to the admin: the provider is new, so this is always a new
 *    identity row plus an `sso-identity.link` audit entry;
 * 6. the admin's membership gets the link fix-up (`ssoLinked` on, `ssoInvalid` off, other flags
 *    preserved; nothing written when already so);
 * 7. `sso.enable` is audited with the provider key and the redacted config (the last write);
 * 8. after commit: the `sso_enabled` signal.
 * Pure: identical facts give an identical plan.
 * @group Core
 */
export function decideSetup(facts: SetupFacts): Result<SetupPlan, AuthError> {
  const redirect = 'authSettings' as const
  const { admin, organization, now, ids } = facts
  const trace: TraceEntry[] = []
  if (facts.initiatorUserId === null || admin.user.id !== facts.initiatorUserId) {
    return err(authError('UID_MISMATCH', { redirect }))
  }
  if (admin.member.organizationId !== organization.id || admin.member.userId !== admin.user.id) {
    return err(authError('UID_MISMATCH', { redirect }))
  }
  trace.push({
    rule: 'setup.target.admin',
    detail: 'the identity is linked to the admin who started and finishes setup; the IdP email is ignored',
  })
  if (facts.existingProvider !== null) return err(authError('PROVIDER_EXISTS', { redirect }))

  const txEffects: TxEffect[] = []
  const policyChanges: PolicyChange[] = []
  if (organization.require2fa) {
    txEffects.push(
      { type: 'organization.update', id: organization.id, patch: { require2fa: false } },
      {
        type: 'audit.record',
        entry: {
          id: ids.auditOrgEdit,
          event: 'org.edit',
          actorUserId: admin.user.id,
          organizationId: organization.id,
          targetId: organization.id,
          targetUserId: null,
          ip: facts.ip,
          data: { require2fa: REQUIRE_2FA_OFF_REASON },
          createdAt: now,
        },
      },
    )
    policyChanges.push({ setting: 'require2fa', from: true, to: false, reason: 'SSO and required 2FA are mutually exclusive' })
    trace.push({ rule: 'setup.require2fa.off', detail: 'the org required 2FA: turned off (audited as org.edit)' })
  }

  const provider: AuthProvider = {
    id: ids.provider,
    organizationId: organization.id,
    providerKey: facts.providerKey,
    config: facts.config,
    allowUnlinked: false,
    scimEnabled: false,
    createdAt: now,
  }
  txEffects.push({ type: 'provider.create', provider })
  trace.push({ rule: 'setup.provider.create', detail: `provider ${facts.providerKey} created` })

  // The attach rules of the login pipeline (spec 3.7) with the admin as target and session
  // user. The provider row is created in this same transaction, so no identity can exist for it:
  // both lookups are empty and the plan is always a new identity plus `sso-identity.link`.
  const attach = planAttach(
    {
      authProviderId: provider.id,
      organizationId: organization.id,
      identity: facts.identity,
      target: admin.user,
      sessionUserId: admin.user.id,
      byIdent: null,
      byUser: null,
      previousOwnerMember: null,
      allowRekey: false,
      now,
      ip: facts.ip,
      redirect,
    },
    planIds([ids.identity, ids.auditLink]),
  )
  if (attach.isErr()) return err(attach.error)
  txEffects.push(...attach.value.txEffects)
  trace.push(...attach.value.trace)
  const fixup = linkFixup(admin.member)
  if (fixup) {
    txEffects.push({ type: 'member.update', id: admin.member.id, patch: fixup })
    trace.push({ rule: 'setup.member.link-fixup', detail: "the admin's membership: ssoLinked on, ssoInvalid off" })
  } else {
    trace.push({ rule: 'setup.member.already-linked', detail: "the admin's membership is already linked: no write" })
  }

  txEffects.push({
    type: 'audit.record',
    entry: {
      id: ids.auditEnable,
      event: 'sso.enable',
      actorUserId: admin.user.id,
      organizationId: organization.id,
      targetId: provider.id,
      targetUserId: null,
      ip: facts.ip,
      data: { provider: facts.providerKey, config: facts.redactedConfig },
      createdAt: now,
    },
  })
  return ok({
    provider,
    identityId: attach.value.identity.id,
    txEffects,
    afterCommit: [
      {
        type: 'signal.emit',
        signal: { name: 'sso_enabled', payload: { organizationId: organization.id, userId: admin.user.id, provider: facts.providerKey } },
      },
    ],
    policyChanges,
    trace,
  })
}
