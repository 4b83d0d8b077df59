import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decideDisable, decideSettings } from '../../src/core/setup/admin.js'
import { decideSetup, type SetupFacts } from '../../src/core/setup/decide-setup.js'
import {
  linkRequestKey,
  needsLinkRequest,
  planLinkRequests,
  planUnlinkNotices,
  RESEND_WINDOW_MS,
  resendLinkRequestKey,
  unlinkNoticeKey,
} from '../../src/core/setup/link-requests.js'
import { REDACTED, redactConfigDefault } from '../../src/core/setup/redact.js'
import { decideRefresh, type RefreshCheck } from '../../src/core/setup/refresh.js'
import type { JsonObject, JsonValue } from '../../src/model/identity.js'
import { toIdentity } from '../../src/model/identity.js'
import { LIMITS } from '../../src/model/limits.js'
import type { Member, MemberFlags } from '../../src/model/records.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../../src/testing/fixtures.js'

const NOW = new Date('2026-03-01T10:00:00.000Z')
const IDS = { provider: 'p1', identity: 'i1', auditOrgEdit: 'a1', auditLink: 'a2', auditEnable: 'a3' }

function facts(overrides: Partial<SetupFacts> = {}): SetupFacts {
  const admin = makeUser({ id: 'admin' })
  return {
    now: NOW,
    ids: IDS,
    organization: makeOrganization({ id: 'org-1', require2fa: true }),
    admin: { user: admin, member: makeMember({ id: 'm-admin', organizationId: 'org-1', userId: 'admin', role: 'owner' }) },
    initiatorUserId: 'admin',
    existingProvider: null,
    providerKey: 'dummy',
    config: { clientSecret: 's' },
    redactedConfig: { clientSecret: REDACTED },
    identity: toIdentity({ id: 'ext-1', email: 'someone-else@example.com', emailVerified: true }),
    ip: '198.51.100.1',
    ...overrides,
  }
}

const flagsArb: fc.Arbitrary<MemberFlags> = fc.record({
  ssoLinked: fc.boolean(),
  ssoInvalid: fc.boolean(),
  memberLimitRestricted: fc.boolean(),
  idpProvisioned: fc.boolean(),
  idpRoleRestricted: fc.boolean(),
})

describe('decideSetup (pure)', () => {
  it('plans, in order: 2FA off + org.edit, provider, identity + link audit, member fix-up, sso.enable last', () => {
    const plan = decideSetup(facts())._unsafeUnwrap()
    expect(plan.txEffects.map((e) => (e.type === 'audit.record' ? `audit:${e.entry.event}` : e.type))).toEqual([
      'organization.update',
      'audit:org.edit',
      'provider.create',
      'identity.create',
      'audit:sso-identity.link',
      'member.update',
      'audit:sso.enable',
    ])
    expect(plan.afterCommit).toEqual([
      { type: 'signal.emit', signal: { name: 'sso_enabled', payload: { organizationId: 'org-1', userId: 'admin', provider: 'dummy' } } },
    ])
    expect(plan.policyChanges).toEqual([expect.objectContaining({ setting: 'require2fa', from: true, to: false })])
    const enable = plan.txEffects.at(-1)
    expect(enable?.type === 'audit.record' && enable.entry.data).toEqual({ provider: 'dummy', config: { clientSecret: REDACTED } })
  })

  it('is deterministic: identical facts give identical plans', () => {
    expect(decideSetup(facts())).toEqual(decideSetup(facts()))
  })

  it('rejects a session user who is not the initiator, and a missing initiator', () => {
    expect(decideSetup(facts({ initiatorUserId: 'other' }))._unsafeUnwrapErr().code).toBe('UID_MISMATCH')
    expect(decideSetup(facts({ initiatorUserId: null }))._unsafeUnwrapErr().code).toBe('UID_MISMATCH')
    const f = facts()
    expect(
      decideSetup({ ...f, admin: { ...f.admin, member: { ...f.admin.member, organizationId: 'org-2' } } })._unsafeUnwrapErr().code,
    ).toBe('UID_MISMATCH')
  })

  it('rejects an org that already has a provider', () => {
    expect(decideSetup(facts({ existingProvider: makeProvider({ id: 'old', organizationId: 'org-1' }) }))._unsafeUnwrapErr().code).toBe(
      'PROVIDER_EXISTS',
    )
  })

  it('property: the identity always goes to the admin, whatever the IdP asserts; other flags are preserved', () => {
    fc.assert(
      fc.property(
        fc.emailAddress(),
        fc.boolean(),
        fc.string({ minLength: 1, maxLength: 40 }),
        flagsArb,
        fc.boolean(),
        (email, verified, ident, flags, require2fa) => {
          const f = facts({
            identity: toIdentity({ id: ident, email, emailVerified: verified }),
            organization: makeOrganization({ id: 'org-1', require2fa }),
            admin: {
              user: makeUser({ id: 'admin' }),
              member: makeMember({ id: 'm-admin', organizationId: 'org-1', userId: 'admin', role: 'owner', flags }),
            },
          })
          const plan = decideSetup(f)._unsafeUnwrap()
          for (const e of plan.txEffects) {
            if (e.type === 'identity.create') expect(e.identity).toMatchObject({ userId: 'admin', ident, authProviderId: 'p1' })
            if (e.type === 'member.update') {
              expect(e.id).toBe('m-admin')
              expect(e.patch.flags).toEqual({ ...flags, ssoLinked: true, ssoInvalid: false })
            }
            expect(e.type).not.toBe('user.create')
            expect(e.type).not.toBe('member.create')
          }
          // The fix-up writes only when needed.
          expect(plan.txEffects.some((e) => e.type === 'member.update')).toBe(!flags.ssoLinked || flags.ssoInvalid)
          // 2FA is touched only when it was on.
          expect(plan.txEffects.some((e) => e.type === 'organization.update')).toBe(require2fa)
          expect(plan.policyChanges.length).toBe(require2fa ? 1 : 0)
        },
      ),
    )
  })

  it('property: a rejection never carries effects', () => {
    fc.assert(
      fc.property(fc.option(fc.constantFrom('admin', 'other'), { nil: null }), fc.boolean(), (initiator, exists) => {
        const r = decideSetup(
          facts({ initiatorUserId: initiator, existingProvider: exists ? makeProvider({ id: 'old', organizationId: 'org-1' }) : null }),
        )
        expect(r.isOk()).toBe(initiator === 'admin' && !exists)
      }),
    )
  })
})

describe('redactConfigDefault', () => {
  it('removes secrets at any depth and keeps the rest', () => {
    const config: JsonObject = {
      clientId: 'cid',
      clientSecret: 'x',
      client_secret: 'x',
      issuer: 'https://idp',
      saml: { x509cert: 'public', privateKey: 'x', private_key_pem: 'x', sp: [{ signing_key: 'x', apiKey: 'x' }] },
      password: 'x',
      refreshToken: 'x',
      providerKey: 'okta',
    }
    const out = redactConfigDefault(config)
    expect(out).toEqual({
      clientId: 'cid',
      clientSecret: REDACTED,
      client_secret: REDACTED,
      issuer: 'https://idp',
      saml: { x509cert: 'public', privateKey: REDACTED, private_key_pem: REDACTED, sp: [{ signing_key: REDACTED, apiKey: REDACTED }] },
      password: REDACTED,
      refreshToken: REDACTED,
      providerKey: 'okta',
    })
    expect(config.clientSecret).toBe('x') // input untouched
  })
})

describe('link-request planning', () => {
  const org = { organizationName: 'Acme', providerName: 'Okta', loginUrl: '/auth/login/acme/', authProviderId: 'p1' }

  it('mails accepted, unlinked members with an active user; skips linked, invites, missing and inactive users', () => {
    const u = (id: string, isActive = true) => makeUser({ id, isActive })
    const m = (id: string, userId: string | null, ssoLinked = false): Member =>
      makeMember({
        id,
        organizationId: 'org-1',
        userId,
        email: userId ? null : `${id}@x.io`,
        flags: { ...makeMember({ id, organizationId: 'o' }).flags, ssoLinked },
      })
    const recipients = [
      { member: m('m1', 'u1'), user: u('u1') },
      { member: m('m2', 'u2', true), user: u('u2') },
      { member: m('m3', null), user: null },
      { member: m('m4', 'u4'), user: null },
      { member: m('m5', 'u5'), user: u('u5', false) },
      { member: m('m6', 'u6'), user: u('someone-else') },
    ]
    const effects = planLinkRequests({ ...org, recipients, reason: { kind: 'setup' } })
    expect(effects).toEqual([
      {
        type: 'mail.send',
        message: {
          template: 'ssoLinkRequest',
          to: 'u1@example.com',
          data: { organizationName: 'Acme', providerName: 'Okta', loginUrl: '/auth/login/acme/' },
          idempotencyKey: linkRequestKey('p1', 'm1'),
        },
      },
    ])
    expect(recipients.filter(needsLinkRequest).map((r) => r.member.id)).toEqual(['m1'])
  })

  it('resend keys are stable within a window and change across windows; setup keys differ from resend keys', () => {
    const t = new Date(Math.floor(NOW.getTime() / RESEND_WINDOW_MS) * RESEND_WINDOW_MS)
    expect(resendLinkRequestKey('p', 'm', t)).toBe(resendLinkRequestKey('p', 'm', new Date(t.getTime() + RESEND_WINDOW_MS - 1)))
    expect(resendLinkRequestKey('p', 'm', t)).not.toBe(resendLinkRequestKey('p', 'm', new Date(t.getTime() + RESEND_WINDOW_MS)))
    expect(resendLinkRequestKey('p', 'm', t)).not.toBe(linkRequestKey('p', 'm'))
    expect(linkRequestKey('p1', 'm')).not.toBe(linkRequestKey('p2', 'm'))
  })
})

describe('decideDisable / decideSettings (pure)', () => {
  const organization = makeOrganization({ id: 'org-1' })
  const provider = makeProvider({ id: 'p1', organizationId: 'org-1' })
  const actor = { userId: 'admin', ip: null }

  it('disable: audit first, then flags, identities, provider', () => {
    const plan = decideDisable({ now: NOW, auditId: 'a', actor, organization, provider, redactedConfig: {} })._unsafeUnwrap()
    expect(plan.txEffects.map((e) => e.type)).toEqual([
      'audit.record',
      'member.setFlagsForOrganization',
      'identity.deleteForProvider',
      'provider.delete',
    ])
    expect(plan.txEffects[1]).toEqual({
      type: 'member.setFlagsForOrganization',
      organizationId: 'org-1',
      flags: { ssoLinked: false, ssoInvalid: false },
    })
  })

  it("disable: no provider, or another org's provider -> PROVIDER_NOT_CONFIGURED", () => {
    expect(decideDisable({ now: NOW, auditId: 'a', actor, organization, provider: null, redactedConfig: {} })._unsafeUnwrapErr().code).toBe(
      'PROVIDER_NOT_CONFIGURED',
    )
    const foreign = makeProvider({ id: 'p2', organizationId: 'org-2' })
    expect(
      decideDisable({ now: NOW, auditId: 'a', actor, organization, provider: foreign, redactedConfig: {} })._unsafeUnwrapErr().code,
    ).toBe('PROVIDER_NOT_CONFIGURED')
  })

  it('settings property: audit lists exactly the changed fields; no change -> no effects', () => {
    fc.assert(
      fc.property(
        fc.record({ allowUnlinked: fc.boolean(), scimEnabled: fc.boolean(), role: fc.constantFrom('member', 'admin') }),
        fc.record({
          requireSso: fc.option(fc.boolean(), { nil: undefined }),
          scimEnabled: fc.option(fc.boolean(), { nil: undefined }),
          defaultRole: fc.option(fc.constantFrom('member', 'admin'), { nil: undefined }),
        }),
        (current, change) => {
          const plan = decideSettings({
            now: NOW,
            auditId: 'a',
            actor,
            organization: makeOrganization({ id: 'org-1', defaultRole: current.role }),
            provider: makeProvider({
              id: 'p1',
              organizationId: 'org-1',
              allowUnlinked: current.allowUnlinked,
              scimEnabled: current.scimEnabled,
            }),
            change,
          })._unsafeUnwrap()
          const expected: string[] = []
          if (change.requireSso !== undefined && current.allowUnlinked !== !change.requireSso) expected.push('requireSso')
          if (change.scimEnabled !== undefined && current.scimEnabled !== change.scimEnabled) expected.push('scimEnabled')
          if (change.defaultRole !== undefined && current.role !== change.defaultRole) expected.push('defaultRole')
          expect(plan.changed).toEqual(expected)
          if (expected.length === 0) {
            expect(plan.txEffects).toEqual([])
          } else {
            const audit = plan.txEffects.at(-1)
            expect(audit?.type === 'audit.record' && Object.keys(audit.entry.data)).toEqual(expected)
            expect(audit?.type === 'audit.record' && audit.entry.event).toBe('sso.edit')
          }
        },
      ),
    )
  })
})

describe('decideRefresh (pure)', () => {
  const identity = makeIdentity({ id: 'i1', authProviderId: 'p1', userId: 'u1', data: { a: 1 } })
  const member = (flags: MemberFlags) => makeMember({ id: 'm1', organizationId: 'org-1', userId: 'u1', flags })
  const checkArb: fc.Arbitrary<RefreshCheck> = fc.oneof(
    fc.record({ kind: fc.constant('ok' as const), data: fc.constant({ b: 2 }) }),
    fc.record({ kind: fc.constant('invalid' as const), reason: fc.string() }),
    fc.record({ kind: fc.constant('error' as const), reason: fc.string() }),
  )

  it('property: flags follow the table, other flags are kept, timestamps stamped unless deleted', () => {
    fc.assert(
      fc.property(flagsArb, checkArb, fc.boolean(), (flags, check, isMember) => {
        const plan = decideRefresh({ now: NOW, identity, member: isMember ? member(flags) : null, check })
        if (!isMember) {
          expect(plan.outcome).toEqual({ kind: 'identityDeleted' })
          expect(plan.txEffects).toEqual([{ type: 'identity.delete', id: 'i1' }])
          return
        }
        const wanted =
          check.kind === 'ok'
            ? { ...flags, ssoLinked: true, ssoInvalid: false }
            : check.kind === 'invalid'
              ? { ...flags, ssoLinked: false, ssoInvalid: true }
              : { ...flags, ssoInvalid: true }
        const memberWrite = plan.txEffects.find((e) => e.type === 'member.update')
        const changes = wanted.ssoLinked !== flags.ssoLinked || wanted.ssoInvalid !== flags.ssoInvalid
        expect(memberWrite).toEqual(changes ? { type: 'member.update', id: 'm1', patch: { flags: wanted } } : undefined)
        const identityWrite = plan.txEffects.find((e) => e.type === 'identity.update')
        expect(identityWrite?.type === 'identity.update' && identityWrite.patch).toMatchObject({ lastVerified: NOW, lastSynced: NOW })
        expect(identityWrite?.type === 'identity.update' && 'data' in identityWrite.patch).toBe(check.kind === 'ok')
        expect(plan.txEffects.some((e) => e.type === 'identity.delete')).toBe(false)
      }),
    )
  })

  it('a membership of another user is no membership', () => {
    const plan = decideRefresh({
      now: NOW,
      identity,
      member: { ...member(makeMember({ id: 'x', organizationId: 'o' }).flags), userId: 'u2' },
      check: { kind: 'ok', data: {} },
    })
    expect(plan.outcome.kind).toBe('identityDeleted')
  })
})

// Mutation testing (issue 12 item 4): the exact plans, errors and traces of the admin deciders.
describe('decideDisable / decideSettings: exact plans', () => {
  const organization = makeOrganization({ id: 'org-1', defaultRole: 'member' })
  const provider = makeProvider({ id: 'p1', organizationId: 'org-1', providerKey: 'okta', allowUnlinked: true, scimEnabled: false })
  const actor = { userId: 'admin', ip: '198.51.100.7' }
  const settings = (change: Parameters<typeof decideSettings>[0]['change'], p: typeof provider | null = provider) =>
    decideSettings({ now: NOW, auditId: 'a', actor, organization, provider: p, change })

  it('disable: the audit entry and the trace', () => {
    const plan = decideDisable({ now: NOW, auditId: 'a', actor, organization, provider, redactedConfig: { k: REDACTED } })._unsafeUnwrap()
    expect(plan.txEffects[0]).toEqual({
      type: 'audit.record',
      entry: {
        id: 'a',
        event: 'sso.disable',
        actorUserId: 'admin',
        organizationId: 'org-1',
        targetId: 'p1',
        targetUserId: null,
        ip: '198.51.100.7',
        data: { provider: 'okta', config: { k: REDACTED } },
        createdAt: NOW,
      },
    })
    expect(plan.trace).toEqual([
      { rule: 'admin.disable', detail: 'disable provider okta: clear member link flags, delete identities and provider' },
    ])
    const none = decideDisable({ now: NOW, auditId: 'a', actor, organization, provider: null, redactedConfig: {} })._unsafeUnwrapErr()
    expect(none.redirect).toBe('authSettings')
  })

  it("settings: no provider, or another org's: PROVIDER_NOT_CONFIGURED to the settings page", () => {
    for (const p of [null, makeProvider({ id: 'p2', organizationId: 'org-2' })]) {
      const e = settings({ requireSso: true }, p)._unsafeUnwrapErr()
      expect([e.code, e.redirect]).toEqual(['PROVIDER_NOT_CONFIGURED', 'authSettings'])
    }
  })

  it('settings: a value of the wrong type or an invalid role is INPUT_INVALID naming the field', () => {
    const field = (change: Record<string, unknown>) => {
      const e = settings(change as Parameters<typeof settings>[0])._unsafeUnwrapErr()
      return [e.code, e.redirect, e.details]
    }
    expect(field({ requireSso: 'yes' })).toEqual(['INPUT_INVALID', 'authSettings', { field: 'requireSso' }])
    expect(field({ scimEnabled: 1 })).toEqual(['INPUT_INVALID', 'authSettings', { field: 'scimEnabled' }])
    for (const role of [7, '', 'a'.repeat(LIMITS.role + 1), 'has space'])
      expect(field({ defaultRole: role })).toEqual(['INPUT_INVALID', 'authSettings', { field: 'defaultRole' }])
    expect(settings({ defaultRole: 'a'.repeat(LIMITS.role) }).isOk()).toBe(true)
    expect(settings({ defaultRole: 'org:admin.v2_x-y' }).isOk()).toBe(true)
  })

  it('settings: each change writes only its own record, audited as "to X"', () => {
    const sso = settings({ requireSso: true })._unsafeUnwrap()
    expect(sso.txEffects.slice(0, -1)).toEqual([{ type: 'provider.update', id: 'p1', patch: { allowUnlinked: false } }])
    const scim = settings({ scimEnabled: true })._unsafeUnwrap()
    expect(scim.txEffects.slice(0, -1)).toEqual([{ type: 'provider.update', id: 'p1', patch: { scimEnabled: true } }])
    const audit = scim.txEffects.at(-1)
    expect(audit?.type === 'audit.record' && audit.entry.data).toEqual({ scimEnabled: 'to true' })
    const role = settings({ defaultRole: 'admin' })._unsafeUnwrap()
    expect(role.txEffects.slice(0, -1)).toEqual([{ type: 'organization.update', id: 'org-1', patch: { defaultRole: 'admin' } }])
    expect(role.trace).toEqual([{ rule: 'admin.settings.changed', detail: 'changed: defaultRole' }])
    const all = settings({ requireSso: true, scimEnabled: true, defaultRole: 'admin' })._unsafeUnwrap()
    expect(all.trace).toEqual([{ rule: 'admin.settings.changed', detail: 'changed: requireSso, scimEnabled, defaultRole' }])
    const allAudit = all.txEffects.at(-1)
    expect(allAudit?.type === 'audit.record' && allAudit.entry.data).toEqual({
      requireSso: 'to true',
      scimEnabled: 'to true',
      defaultRole: 'to admin',
    })
  })

  it('settings: nothing changed, nothing written, and the trace says so', () => {
    expect(settings({ requireSso: false, scimEnabled: false, defaultRole: 'member' })._unsafeUnwrap()).toEqual({
      changed: [],
      txEffects: [],
      trace: [{ rule: 'admin.settings.unchanged', detail: 'no setting changed; nothing written' }],
    })
  })
})

describe('decideSetup: exact errors and traces', () => {
  it('every refusal goes back to the settings page', () => {
    const f = facts()
    const refusals = [
      facts({ initiatorUserId: 'other' }),
      { ...f, admin: { ...f.admin, member: { ...f.admin.member, organizationId: 'org-2' } } },
      // a membership row of another user is not the admin's membership
      { ...f, admin: { ...f.admin, member: { ...f.admin.member, userId: 'someone' } } },
      facts({ existingProvider: makeProvider({ id: 'old', organizationId: 'org-1' }) }),
    ]
    expect(refusals.map((r) => decideSetup(r)._unsafeUnwrapErr()).map((e) => [e.code, e.redirect])).toEqual([
      ['UID_MISMATCH', 'authSettings'],
      ['UID_MISMATCH', 'authSettings'],
      ['UID_MISMATCH', 'authSettings'],
      ['PROVIDER_EXISTS', 'authSettings'],
    ])
  })

  it('an org requiring 2FA, an unlinked admin: the policy change and every trace entry', () => {
    const plan = decideSetup(facts())._unsafeUnwrap()
    expect(plan.policyChanges).toEqual([
      { setting: 'require2fa', from: true, to: false, reason: 'SSO and required 2FA are mutually exclusive' },
    ])
    expect(plan.txEffects[0]).toEqual({ type: 'organization.update', id: 'org-1', patch: { require2fa: false } })
    expect(plan.txEffects[2]).toMatchObject({ type: 'provider.create', provider: { allowUnlinked: false, scimEnabled: false } })
    expect(plan.trace.map((t) => [t.rule, t.detail])).toEqual([
      ['setup.target.admin', 'the identity is linked to the admin who started and finishes setup; the IdP email is ignored'],
      ['setup.require2fa.off', 'the org required 2FA: turned off (audited as org.edit)'],
      ['setup.provider.create', 'provider dummy created'],
      ['attach.new', 'new identity linked to user admin'],
      ['setup.member.link-fixup', "the admin's membership: ssoLinked on, ssoInvalid off"],
      ...plan.trace.slice(5).map((t) => [t.rule, t.detail]),
    ])
  })

  it('no 2FA requirement, an already linked admin: no policy change, no member write, and the trace says so', () => {
    const f = facts({ organization: makeOrganization({ id: 'org-1', require2fa: false }) })
    const linked = { ...f, admin: { ...f.admin, member: { ...f.admin.member, flags: { ...f.admin.member.flags, ssoLinked: true } } } }
    const plan = decideSetup(linked)._unsafeUnwrap()
    expect(plan.policyChanges).toEqual([])
    expect(plan.txEffects.map((e) => e.type)).not.toContain('member.update')
    expect(plan.trace.map((t) => t.rule)).not.toContain('setup.require2fa.off')
    expect(plan.trace).toContainEqual({ rule: 'setup.member.already-linked', detail: "the admin's membership is already linked: no write" })
  })
})

describe('decideRefresh: exact outcomes and traces', () => {
  const identity = makeIdentity({ id: 'i1', authProviderId: 'p1', userId: 'u1' })
  const member = (flags: Partial<MemberFlags>) =>
    makeMember({
      id: 'm1',
      organizationId: 'org-1',
      userId: 'u1',
      flags: { ...makeMember({ id: 'x', organizationId: 'o' }).flags, ...flags },
    })
  const refresh = (check: RefreshCheck, flags: Partial<MemberFlags> | null) =>
    decideRefresh({ now: NOW, identity, member: flags ? member(flags) : null, check })

  it('each outcome with its reason and trace', () => {
    const gone = refresh({ kind: 'ok', data: {} }, null)
    expect([gone.outcome, gone.trace]).toEqual([
      { kind: 'identityDeleted' },
      [{ rule: 'refresh.no-membership', detail: 'the identity user is not a member of the org: identity deleted' }],
    ])
    const invalid = refresh({ kind: 'invalid', reason: 'gone at the IdP' }, { ssoLinked: true })
    expect([invalid.outcome, invalid.trace]).toEqual([
      { kind: 'invalid', reason: 'gone at the IdP' },
      [{ rule: 'refresh.invalid', detail: 'the provider rejected the identity: member unlinked and marked invalid' }],
    ])
    const error = refresh({ kind: 'error', reason: 'timeout' }, { ssoLinked: true })
    expect([error.outcome, error.trace]).toEqual([
      { kind: 'error', reason: 'timeout' },
      [{ rule: 'refresh.error', detail: 'the provider check failed: member marked invalid, link flag kept' }],
    ])
    const ok = refresh({ kind: 'ok', data: { b: 2 } }, { ssoLinked: true })
    expect([ok.outcome, ok.trace]).toEqual([
      { kind: 'valid' },
      [{ rule: 'refresh.ok', detail: 'the provider confirmed the identity: member linked and valid' }],
    ])
  })

  it('member flags are written only when one of the wanted flags differs', () => {
    const writes = (check: RefreshCheck, flags: Partial<MemberFlags>) =>
      refresh(check, flags).txEffects.filter((e) => e.type === 'member.update').length
    expect(writes({ kind: 'error', reason: 'r' }, { ssoLinked: false, ssoInvalid: true })).toBe(0)
    expect(writes({ kind: 'error', reason: 'r' }, { ssoLinked: true, ssoInvalid: true })).toBe(0)
    expect(writes({ kind: 'error', reason: 'r' }, { ssoLinked: true, ssoInvalid: false })).toBe(1)
    expect(writes({ kind: 'ok', data: {} }, { ssoLinked: true, ssoInvalid: false })).toBe(0)
    expect(writes({ kind: 'ok', data: {} }, { ssoLinked: true, ssoInvalid: true })).toBe(1)
    expect(writes({ kind: 'invalid', reason: 'r' }, { ssoLinked: false, ssoInvalid: true })).toBe(0)
    expect(writes({ kind: 'invalid', reason: 'r' }, { ssoLinked: true, ssoInvalid: true })).toBe(1)
    // nothing to change: the identity's timestamps are the only write
    expect(refresh({ kind: 'error', reason: 'r' }, { ssoLinked: true, ssoInvalid: true }).txEffects).toEqual([
      { type: 'identity.update', id: 'i1', patch: { lastVerified: NOW, lastSynced: NOW } },
    ])
  })
})

describe('redactConfigDefault and planUnlinkNotices: edges', () => {
  it('keeps plain values of every JSON type as they are', () => {
    const config: JsonObject = { s: 'text', n: 1, b: false, z: null, list: ['a', 1, null, { k: 'v' }], nested: { s: 'x' } }
    expect(redactConfigDefault(config)).toEqual(config)
  })

  it('anything nested deeper than 32 levels (objects or arrays) is redacted whole', () => {
    const nest = (levels: number, leaf: JsonValue, asArray = false): JsonValue => {
      let value = leaf
      for (let i = 0; i < levels; i++) value = asArray ? [value] : { a: value }
      return value
    }
    // A top-level value nested 32 levels deep keeps its leaf; 33 levels deep, the leaf becomes REDACTED.
    expect(redactConfigDefault({ a: nest(32, 'leaf') })).toEqual({ a: nest(32, 'leaf') })
    expect(redactConfigDefault({ a: nest(33, 'leaf') })).toEqual({ a: nest(33, REDACTED) })
    expect(redactConfigDefault({ a: nest(32, 'leaf', true) })).toEqual({ a: nest(32, 'leaf', true) })
    expect(redactConfigDefault({ a: nest(33, 'leaf', true) })).toEqual({ a: nest(33, REDACTED, true) })
  })

  it('unlink notices: every accepted member with their active user, exactly; nobody else', () => {
    const u = (id: string, isActive = true) => makeUser({ id, isActive })
    const m = (id: string, userId: string | null): Member =>
      makeMember({ id, organizationId: 'org-1', userId, email: userId ? null : `${id}@x.io` })
    const recipients = [
      { member: m('m1', 'u1'), user: u('u1') },
      { member: m('m3', null), user: u('u3') },
      { member: m('m4', 'u4'), user: null },
      { member: m('m5', 'u5'), user: u('u5', false) },
      { member: m('m6', 'u6'), user: u('someone-else') },
    ]
    expect(planUnlinkNotices({ recipients, authProviderId: 'p1', organizationName: 'Acme <x>', providerName: 'Okta' })).toEqual([
      {
        type: 'mail.send',
        message: {
          template: 'ssoUnlinked',
          to: 'u1@example.com',
          data: { organizationName: 'Acme \u2039x\u203A', providerName: 'Okta' },
          idempotencyKey: unlinkNoticeKey('p1', 'm1'),
        },
      },
    ])
  })
})
