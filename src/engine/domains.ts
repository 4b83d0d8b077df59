/**
 * Verified domains and home-realm discovery (issue 13 item 3): the admin calls `addDomain`,
 * `verifyDomain`, `removeDomain`, `listDomains`, and `discover`, which `beginLogin({ email })`
 * uses to find the one organization that has the address's domain verified.
 *
 * Ownership is the host's to prove: `addDomain` hands out a DNS TXT record, the host checks it
 * (or any proof it trusts) and then calls `verifyDomain`. Every change is one storage transaction
 * (authorization re-checked inside, the audit entry written with it); nothing else is sent.
 *
 * @module
 */
import { err, ok, type Result, ResultAsync } from 'neverthrow'
import type { TraceEntry } from '../core/effects.js'
import { type AuthError, authError, type ErrorRedirectHint, isAuthError } from '../errors.js'
import { type DomainProblem, emailDomain, normalizeDomain } from '../model/domain.js'
import type { AuditEntry, OrganizationDomain } from '../model/records.js'
import type { StoragePort, StorageTx } from '../ports/storage.js'
import { randomToken } from '../state/crypto.js'
import { applyTxEffects } from './apply.js'
import { authorizeSsoAdmin } from './authorize.js'
import type { EngineContext } from './context.js'
import { withRedirect } from './redirect.js'
import { inTransaction, storageFailure } from './transaction.js'
import type { AdminInput, AuthPipeline, DomainAdded, DomainInput, DomainRemoved, DomainVerified, DomainView, SessionInfo } from './types.js'

/** The domain part of the engine. Internal; exposed through {@link AuthPipeline}. */
export type DomainApi = Pick<AuthPipeline, 'addDomain' | 'verifyDomain' | 'removeDomain' | 'listDomains'>

const REDIRECT: ErrorRedirectHint = 'authSettings'

/** The DNS name under which the verification record is published. */
export const DNS_RECORD_PREFIX = '_ssoflow-challenge.'
/** The TXT value's prefix; the token follows. */
export const DNS_VALUE_PREFIX = 'ssoflow-domain-verification='

const PROBLEMS: Readonly<Record<DomainProblem, string>> = {
  empty: 'is empty',
  'too-long': 'is too long',
  'trailing-dot': 'ends with a dot',
  'invalid-characters': 'contains characters a domain cannot have',
  'idn-invalid': 'is an internationalized domain that cannot be converted',
  'not-a-host-name': 'is not a domain name like example.com',
  'ip-address': 'is an IP address, not a domain',
  'no-domain': 'has no domain (expected name@company.com)',
  'local-part-empty': 'has nothing before the @',
}

/** INPUT_INVALID naming the field, with a message that says what is wrong. */
function badDomain(field: 'email' | 'domain', problem: DomainProblem, redirect: ErrorRedirectHint): AuthError {
  const what = field === 'email' ? 'The email address' : 'The domain'
  return authError('INPUT_INVALID', {
    redirect,
    message: `${what} ${PROBLEMS[problem]}.`,
    details: { field, reason: problem },
  })
}

function notSupported(redirect: ErrorRedirectHint): AuthError {
  return authError('CONFIG_INVALID', {
    redirect,
    message: 'The storage adapter does not support verified domains.',
    details: { reason: 'domains-not-supported' },
  })
}

/** The domain members of a transaction, or null when the adapter lacks one of them. */
function domainWrites(tx: StorageTx) {
  const create = tx.createOrganizationDomain?.bind(tx)
  const verify = tx.verifyOrganizationDomain?.bind(tx)
  const remove = tx.deleteOrganizationDomain?.bind(tx)
  const list = tx.listOrganizationDomains?.bind(tx)
  const find = tx.findVerifiedDomains?.bind(tx)
  if (!create || !verify || !remove || !list || !find) return null
  return { create, verify, remove, list, find }
}

type DomainWrites = NonNullable<ReturnType<typeof domainWrites>>
/** What a change returns: its value, whether it wrote (and so is audited), and the row it changed. */
interface Changed<T> {
  readonly value: T
  readonly audit: boolean
  readonly targetId: string | null
}

/** True when the storage offers the domain reads (the writes are checked in the transaction). */
function supportsDomains(storage: StoragePort): boolean {
  return typeof storage.listOrganizationDomains === 'function' && typeof storage.findVerifiedDomains === 'function'
}

/** The admin API's view of a row, with the DNS record to publish. */
export function domainView(row: OrganizationDomain): DomainView {
  return {
    domain: row.domain,
    verified: row.verifiedAt !== null,
    verifiedAt: row.verifiedAt === null ? null : row.verifiedAt.toISOString(),
    createdAt: row.createdAt.toISOString(),
    dnsRecord: { type: 'TXT', name: `${DNS_RECORD_PREFIX}${row.domain}`, value: `${DNS_VALUE_PREFIX}${row.verificationToken}` },
  }
}

/** Wraps an async Result-returning function as a ResultAsync that never rejects. */
function run<T>(fn: () => Promise<Result<T, AuthError>>, redirect: ErrorRedirectHint = REDIRECT): ResultAsync<T, AuthError> {
  return new ResultAsync(fn().catch((cause: unknown) => err<T, AuthError>(isAuthError(cause) ? cause : storageFailure(cause, redirect))))
}

/** A conflict on the verified-domain index: another organization won. */
function takenOnConflict(error: AuthError): AuthError {
  if (error.code === 'STORAGE_CONFLICT' && error.details?.constraint === 'organization_domain.verified') {
    return authError('DOMAIN_TAKEN', { redirect: REDIRECT, cause: error.cause })
  }
  return withRedirect(error, REDIRECT)
}

/** Creates the domain admin API over an engine context. */
export function createDomainApi(ctx: EngineContext): DomainApi {
  /**
   * One admin transaction over a domain: authorization inside it, then `body` with the domain
   * writes and the authorized admin. The audit entry `body` returns is written in the same
   * transaction.
   */
  function change<T>(
    input: DomainInput,
    event: AuditEntry['event'],
    body: (w: DomainWrites, domain: string) => Promise<Result<Changed<T>, AuthError>>,
  ): ResultAsync<T, AuthError> {
    return run(async () => {
      if (!supportsDomains(ctx.storage)) return err(notSupported(REDIRECT))
      const normalized = normalizeDomain(input.domain)
      if (!normalized.ok) return err(badDomain('domain', normalized.problem, REDIRECT))
      const domain = normalized.domain
      const session: SessionInfo = input.session
      const now = ctx.clock.now()
      const auditId = ctx.ids.next()
      const committed = await inTransaction(
        ctx.storage,
        async (tx) => {
          const w = domainWrites(tx)
          if (w === null) return err(notSupported(REDIRECT))
          const admin = await authorizeSsoAdmin(ctx, tx, input.organizationId, session)
          if (admin.isErr()) return err(withRedirect(admin.error, admin.error.redirect === 'root' ? 'root' : REDIRECT))
          const done = await body(w, domain)
          if (done.isErr()) return err(done.error)
          if (done.value.audit) {
            const entry: AuditEntry = {
              id: auditId,
              event,
              actorUserId: admin.value.user.id,
              organizationId: input.organizationId,
              targetId: done.value.targetId,
              targetUserId: null,
              ip: session.ip ?? null,
              data: { domain },
              createdAt: now,
            }
            await applyTxEffects(tx, ctx.audit, [{ type: 'audit.record', entry }])
          }
          return ok(done.value.value)
        },
        REDIRECT,
      ).mapErr(takenOnConflict)
      return committed
    })
  }

  const addDomain: DomainApi['addDomain'] = (input) => {
    const id = ctx.ids.next()
    const token = randomToken(32)
    return change(input, 'domain.add', async (w, domain): Promise<Result<Changed<DomainAdded>, AuthError>> => {
      const existing = (await w.list(input.organizationId)).find((d) => d.domain === domain)
      if (existing)
        return ok({ value: { kind: 'domainAdded' as const, domain: domainView(existing), created: false }, audit: false, targetId: null })
      const row: OrganizationDomain = {
        id,
        organizationId: input.organizationId,
        domain,
        verificationToken: token,
        verifiedAt: null,
        createdAt: ctx.clock.now(),
      }
      await w.create(row)
      return ok({ value: { kind: 'domainAdded' as const, domain: domainView(row), created: true }, audit: true, targetId: id })
    })
  }

  const verifyDomain: DomainApi['verifyDomain'] = (input) =>
    change(input, 'domain.verify', async (w, domain): Promise<Result<Changed<DomainVerified>, AuthError>> => {
      const row = (await w.list(input.organizationId)).find((d) => d.domain === domain)
      if (!row) return err(authError('DOMAIN_UNKNOWN', { redirect: REDIRECT, details: { reason: 'not-claimed' } }))
      if (row.verifiedAt !== null) {
        return ok({ value: { kind: 'domainVerified' as const, domain: domainView(row), changed: false }, audit: false, targetId: null })
      }
      // Checked here for a clear answer; the unique index decides a concurrent race (DOMAIN_TAKEN).
      const others = (await w.find(domain)).filter((d) => d.organizationId !== input.organizationId)
      if (others.length > 0) return err(authError('DOMAIN_TAKEN', { redirect: REDIRECT }))
      const at = ctx.clock.now()
      if (!(await w.verify(row.id, at))) {
        return err(authError('STORAGE_CONFLICT', { redirect: REDIRECT, details: { reason: 'domain-removed' } }))
      }
      const verified: OrganizationDomain = { ...row, verifiedAt: at }
      return ok({ value: { kind: 'domainVerified' as const, domain: domainView(verified), changed: true }, audit: true, targetId: row.id })
    })

  const removeDomain: DomainApi['removeDomain'] = (input) =>
    change(input, 'domain.remove', async (w, domain): Promise<Result<Changed<DomainRemoved>, AuthError>> => {
      const row = (await w.list(input.organizationId)).find((d) => d.domain === domain)
      if (!row) return err(authError('DOMAIN_UNKNOWN', { redirect: REDIRECT, details: { reason: 'not-claimed' } }))
      if (!(await w.remove(row.id))) {
        return err(authError('STORAGE_CONFLICT', { redirect: REDIRECT, details: { reason: 'domain-removed' } }))
      }
      return ok({ value: { kind: 'domainRemoved' as const, domain }, audit: true, targetId: row.id })
    })

  const listDomains: DomainApi['listDomains'] = (input: AdminInput) =>
    run(async () => {
      const list = ctx.storage.listOrganizationDomains?.bind(ctx.storage)
      if (!list || !supportsDomains(ctx.storage)) return err(notSupported(REDIRECT))
      const admin = await authorizeSsoAdmin(ctx, ctx.storage, input.organizationId, input.session)
      if (admin.isErr()) return err(admin.error)
      const rows = await list(input.organizationId)
      return ok({ kind: 'domains' as const, domains: rows.map(domainView) })
    })

  return { addDomain, verifyDomain, removeDomain, listDomains }
}

/** What home-realm discovery found: the organization and the trace of the decision. */
export interface Discovered {
  readonly organizationId: string
  readonly domain: string
  readonly trace: readonly TraceEntry[]
}

/**
 * Home-realm discovery: the one organization that has the email's domain verified. Reads only.
 * A malformed address is INPUT_INVALID (`details.field: 'email'`); no organization, or more than
 * one (a host's own data), is the same DOMAIN_UNKNOWN (nothing else revealed; the second case is
 * logged for the host).
 */
export async function discover(ctx: EngineContext, email: string): Promise<Result<Discovered, AuthError>> {
  const parsed = emailDomain(email)
  if (!parsed.ok) return err(badDomain('email', parsed.problem, 'root'))
  const domain = parsed.domain
  const find = ctx.storage.findVerifiedDomains?.bind(ctx.storage)
  if (!find || !supportsDomains(ctx.storage)) return err(notSupported('root'))
  let rows: readonly OrganizationDomain[]
  try {
    rows = await find(domain)
  } catch (cause) {
    return err(storageFailure(cause, 'root'))
  }
  const verified = rows.filter((r) => r.domain === domain && r.verifiedAt !== null)
  const first = verified[0]
  if (verified.length > 1) {
    ctx.logger?.warn('ssoflow: a domain is verified by more than one organization; discovery refused', {
      domain,
      organizations: verified.length,
    })
  }
  if (first === undefined || verified.length > 1) return err(authError('DOMAIN_UNKNOWN', { redirect: 'root' }))
  return ok({
    organizationId: first.organizationId,
    domain,
    trace: [{ rule: 'discovery.verified-domain', detail: `${domain} is verified by organization ${first.organizationId}` }],
  })
}
