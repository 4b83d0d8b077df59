import { err, ok, type Result } from 'neverthrow'
import { type AuthError, authError } from '../errors.js'
import type { Member, Organization, User } from '../model/records.js'
import type { StorageReader } from '../ports/storage.js'
import type { EngineContext } from './context.js'
import type { SessionInfo } from './types.js'

/** The authorized SSO administrator of an organization. */
export interface SsoAdmin {
  readonly user: User
  readonly member: Member
  readonly organization: Organization
}

/**
 * Checks that the session user may manage SSO for the organization: authenticated
 * (NOT_AUTHENTICATED), organization exists (ORGANIZATION_NOT_FOUND), user active and not
 * suspended, a member (NOT_A_MEMBER) and allowed by the `authorize` hook (NOT_AUTHORIZED).
 * Errors redirect to the auth settings page, except ORGANIZATION_NOT_FOUND (root). Reads through `reader` (the storage, or a
 * transaction so the check holds at commit time).
 */
export async function authorizeSsoAdmin(
  ctx: EngineContext,
  reader: StorageReader,
  organizationId: string,
  session: SessionInfo,
): Promise<Result<SsoAdmin, AuthError>> {
  const redirect = 'authSettings' as const
  const userId = session.userId
  if (typeof userId !== 'string' || userId.length === 0) return err(authError('NOT_AUTHENTICATED', { redirect }))
  // One call at a time: `reader` may be a transaction handle, which runs one statement at a time
  // (node-postgres refuses overlapping queries on one client in pg 9).
  const organization = await reader.getOrganization(organizationId)
  const user = await reader.getUser(userId)
  const member = await reader.getMember(organizationId, userId)
  if (!organization) return err(authError('ORGANIZATION_NOT_FOUND', { redirect: 'root' }))
  if (!user?.isActive) return err(authError('NOT_AUTHENTICATED', { redirect }))
  if (user.isSuspended) return err(authError('USER_SUSPENDED', { redirect }))
  if (!member) return err(authError('NOT_A_MEMBER', { redirect }))
  const allowed = await ctx.hooks.authorize({ user, member, organization })
  if (allowed !== true) return err(authError('NOT_AUTHORIZED', { redirect }))
  return ok({ user, member, organization })
}
