import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../../errors.js'
import type { JsonObject } from '../../model/identity.js'
import { LIMITS } from '../../model/limits.js'
import type { AuthProvider, Organization } from '../../model/records.js'
import type { AuthProviderPatch, OrganizationPatch } from '../../ports/storage.js'
import type { TraceEntry, TxEffect } from '../effects.js'

/** Who performs an administrative action, for audit entries. @group Core */
export interface AdminActor {
  readonly userId: string
  readonly ip: string | null
}

/** Facts for disabling SSO. @group Core */
export interface DisableFacts {
  readonly now: Date
  /** Pre-allocated id of the `sso.disable` audit entry. */
  readonly auditId: string
  readonly actor: AdminActor
  readonly organization: Organization
  /** The org's provider, or null when SSO is not configured. */
  readonly provider: AuthProvider | null
  /** The provider config with secrets removed (for the audit entry). */
  readonly redactedConfig: JsonObject
}

/** What disabling SSO writes. @group Core */
export interface DisablePlan {
  readonly provider: AuthProvider
  readonly txEffects: readonly TxEffect[]
  readonly trace: readonly TraceEntry[]
}

/**
 * Disables SSO (spec 3.13): audit `sso.disable`, clear `ssoLinked` and `ssoInvalid` on every
 * member of the org (other flags untouched), delete the provider's identities, delete the
 * provider. All in the caller's one transaction. No provider: `PROVIDER_NOT_CONFIGURED`.
 * @group Core
 */
export function decideDisable(facts: DisableFacts): Result<DisablePlan, AuthError> {
  const provider = facts.provider
  if (!provider || provider.organizationId !== facts.organization.id) {
    return err(authError('PROVIDER_NOT_CONFIGURED', { redirect: 'authSettings' }))
  }
  const txEffects: TxEffect[] = [
    {
      type: 'audit.record',
      entry: {
        id: facts.auditId,
        event: 'sso.disable',
        actorUserId: facts.actor.userId,
        organizationId: facts.organization.id,
        targetId: provider.id,
        targetUserId: null,
        ip: facts.actor.ip,
        data: { provider: provider.providerKey, config: facts.redactedConfig },
        createdAt: facts.now,
      },
    },
    { type: 'member.setFlagsForOrganization', organizationId: facts.organization.id, flags: { ssoLinked: false, ssoInvalid: false } },
    { type: 'identity.deleteForProvider', authProviderId: provider.id },
    { type: 'provider.delete', id: provider.id },
  ]
  return ok({
    provider,
    txEffects,
    trace: [
      {
        rule: 'admin.disable',
        detail: `disable provider ${provider.providerKey}: clear member link flags, delete identities and provider`,
      },
    ],
  })
}

/** A requested settings change, already typed. @group Core */
export interface SettingsChange {
  readonly requireSso?: boolean | undefined
  readonly scimEnabled?: boolean | undefined
  readonly defaultRole?: string | undefined
}

/** Facts for a settings change. @group Core */
export interface SettingsFacts {
  readonly now: Date
  readonly auditId: string
  readonly actor: AdminActor
  readonly organization: Organization
  readonly provider: AuthProvider | null
  readonly change: SettingsChange
}

/** What a settings change writes (nothing when nothing changed). @group Core */
export interface SettingsPlan {
  /** Names of the changed settings, in a fixed order: requireSso, scimEnabled, defaultRole. */
  readonly changed: readonly string[]
  readonly txEffects: readonly TxEffect[]
  readonly trace: readonly TraceEntry[]
}

const ROLE = /^[A-Za-z0-9_.:-]+$/

/**
 * Changes SSO settings (spec 3.13): Require SSO (stored as `allowUnlinked = !requireSso`),
 * the SCIM flag, and the org's default role. Writes only changed fields and one `sso.edit`
 * audit entry listing each change as `"to X"`; writes nothing when nothing changed. A default
 * role must be 1-64 characters (`LIMITS.role`) of `[A-Za-z0-9_.:-]` (`INPUT_INVALID`).
 * @group Core
 */
export function decideSettings(facts: SettingsFacts): Result<SettingsPlan, AuthError> {
  const redirect = 'authSettings' as const
  const provider = facts.provider
  if (!provider || provider.organizationId !== facts.organization.id) return err(authError('PROVIDER_NOT_CONFIGURED', { redirect }))
  const { requireSso, scimEnabled, defaultRole } = facts.change
  if (requireSso !== undefined && typeof requireSso !== 'boolean') {
    return err(authError('INPUT_INVALID', { redirect, details: { field: 'requireSso' } }))
  }
  if (scimEnabled !== undefined && typeof scimEnabled !== 'boolean') {
    return err(authError('INPUT_INVALID', { redirect, details: { field: 'scimEnabled' } }))
  }
  if (
    defaultRole !== undefined &&
    (typeof defaultRole !== 'string' || defaultRole.length === 0 || defaultRole.length > LIMITS.role || !ROLE.test(defaultRole))
  ) {
    return err(authError('INPUT_INVALID', { redirect, details: { field: 'defaultRole' } }))
  }
  const providerPatch: { -readonly [K in keyof AuthProviderPatch]: AuthProviderPatch[K] } = {}
  const orgPatch: { -readonly [K in keyof OrganizationPatch]: OrganizationPatch[K] } = {}
  const data: JsonObject = {}
  const changed: string[] = []
  if (requireSso !== undefined && provider.allowUnlinked !== !requireSso) {
    providerPatch.allowUnlinked = !requireSso
    data.requireSso = `to ${requireSso}`
    changed.push('requireSso')
  }
  if (scimEnabled !== undefined && provider.scimEnabled !== scimEnabled) {
    providerPatch.scimEnabled = scimEnabled
    data.scimEnabled = `to ${scimEnabled}`
    changed.push('scimEnabled')
  }
  if (defaultRole !== undefined && facts.organization.defaultRole !== defaultRole) {
    orgPatch.defaultRole = defaultRole
    data.defaultRole = `to ${defaultRole}`
    changed.push('defaultRole')
  }
  if (changed.length === 0) {
    return ok({ changed, txEffects: [], trace: [{ rule: 'admin.settings.unchanged', detail: 'no setting changed; nothing written' }] })
  }
  const txEffects: TxEffect[] = []
  if (Object.keys(providerPatch).length > 0) txEffects.push({ type: 'provider.update', id: provider.id, patch: providerPatch })
  if (Object.keys(orgPatch).length > 0) txEffects.push({ type: 'organization.update', id: facts.organization.id, patch: orgPatch })
  txEffects.push({
    type: 'audit.record',
    entry: {
      id: facts.auditId,
      event: 'sso.edit',
      actorUserId: facts.actor.userId,
      organizationId: facts.organization.id,
      targetId: provider.id,
      targetUserId: null,
      ip: facts.actor.ip,
      data,
      createdAt: facts.now,
    },
  })
  return ok({ changed, txEffects, trace: [{ rule: 'admin.settings.changed', detail: `changed: ${changed.join(', ')}` }] })
}
