// Issue 13 item 3: verified domains (admin API) and home-realm discovery (`beginLogin({ email })`)
// on the memory storage. The storage contract (test/contract, test/kysely, test/drizzle) covers
// the adapters, including the concurrent-verification race on PostgreSQL and MariaDB.
import { describe, expect, it } from 'vitest'
import { createMemoryStorage } from '../../src/memory/index.js'
import type { StoragePort } from '../../src/ports/storage.js'
import { dataOf, defaultRows, expectCode, makeWorld, readySetup, session, unwrapStep } from './harness.js'

const ADMIN = session('admin')
const ADMIN2 = session('admin2')

/** org-1 with the dummy provider set up. */
async function withProvider() {
  const w = makeWorld()
  const input = await readySetup(w)
  unwrapStep(await w.sso.finishSetup(input).then((r) => r._unsafeUnwrap()))
  return w
}

describe('domain admin API', () => {
  it('add -> DNS record; verify -> audited; list; remove', async () => {
    const w = makeWorld()
    const added = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: ' Acme.TEST ' }))._unsafeUnwrap()
    expect(added.kind).toBe('domainAdded')
    expect(added.created).toBe(true)
    expect(added.domain.domain).toBe('acme.test')
    expect(added.domain.verified).toBe(false)
    expect(added.domain.dnsRecord.name).toBe('_ssoflow-challenge.acme.test')
    expect(added.domain.dnsRecord.value).toMatch(/^ssoflow-domain-verification=[A-Za-z0-9_-]{43}$/)

    const again = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }))._unsafeUnwrap()
    expect(again.created).toBe(false)
    expect(again.domain.dnsRecord).toEqual(added.domain.dnsRecord)

    const verified = (await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'ACME.test' }))._unsafeUnwrap()
    expect(verified).toMatchObject({
      kind: 'domainVerified',
      changed: true,
      domain: { verified: true, verifiedAt: w.clock.now().toISOString() },
    })
    const twice = (await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }))._unsafeUnwrap()
    expect(twice.changed).toBe(false)

    const listed = (await w.sso.listDomains({ organizationId: 'org-1', session: ADMIN }))._unsafeUnwrap()
    expect(listed.domains.map((d) => [d.domain, d.verified])).toEqual([['acme.test', true]])

    const removed = (await w.sso.removeDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }))._unsafeUnwrap()
    expect(removed).toEqual({ kind: 'domainRemoved', domain: 'acme.test' })
    expect(w.storage.snapshot().domains).toEqual([])

    const audit = w.storage.snapshot().audit.filter((a) => a.event.startsWith('domain.'))
    expect(audit.map((a) => [a.event, a.actorUserId, a.organizationId, a.data])).toEqual([
      ['domain.add', 'admin', 'org-1', { domain: 'acme.test' }],
      ['domain.verify', 'admin', 'org-1', { domain: 'acme.test' }],
      ['domain.remove', 'admin', 'org-1', { domain: 'acme.test' }],
    ])
    expect(audit.every((a) => a.ip === '203.0.113.7')).toBe(true)
  })

  it('an IDN is stored as A-labels', async () => {
    const w = makeWorld()
    const added = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'Bücher.example' }))._unsafeUnwrap()
    expect(added.domain.domain).toBe('xn--bcher-kva.example')
  })

  it('verifying a domain another org has verified is DOMAIN_TAKEN, nothing written', async () => {
    const w = makeWorld()
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    expect((await w.sso.addDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' })).isOk()).toBe(true)
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.verifyDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' }), 'DOMAIN_TAKEN')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    // Once org-1 lets it go, org-2 may verify it.
    await w.sso.removeDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    expect((await w.sso.verifyDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' }))._unsafeUnwrap().changed).toBe(true)
  })

  it('concurrent verifications by two orgs: exactly one wins, the other is DOMAIN_TAKEN', async () => {
    const w = makeWorld({ yieldOnRead: true })
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'race.test' })
    await w.sso.addDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'race.test' })
    const results = await Promise.all([
      w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'race.test' }),
      w.sso.verifyDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'race.test' }),
    ])
    expect(results.filter((r) => r.isOk())).toHaveLength(1)
    expect(results.filter((r) => r.isErr()).map((r) => r._unsafeUnwrapErr().code)).toEqual(['DOMAIN_TAKEN'])
    expect(w.storage.snapshot().domains?.filter((d) => d.verifiedAt !== null)).toHaveLength(1)
  })

  it('rights: anonymous, a plain member, another org admin are refused, nothing written', async () => {
    const w = makeWorld()
    const before = dataOf(w.storage.snapshot())
    expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: session(null), domain: 'acme.test' }), 'NOT_AUTHENTICATED')
    expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: session('plain'), domain: 'acme.test' }), 'NOT_AUTHORIZED')
    expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN2, domain: 'acme.test' }), 'NOT_A_MEMBER')
    expectCode(await w.sso.listDomains({ organizationId: 'org-1', session: session('plain') }), 'NOT_AUTHORIZED')
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('listDomains refusals go to the auth settings page (an unknown organization to the root)', async () => {
    const users = defaultRows().users.map((u) => (u.id === 'manager' ? { ...u, isSuspended: true } : u))
    const w = makeWorld({ users })
    const list = (s: ReturnType<typeof session>, organizationId = 'org-1') => w.sso.listDomains({ organizationId, session: s })
    for (const [s, code] of [
      [session(null), 'NOT_AUTHENTICATED'],
      [session('inactive'), 'NOT_AUTHENTICATED'],
      [session('manager'), 'USER_SUSPENDED'],
      [ADMIN2, 'NOT_A_MEMBER'],
      [session('plain'), 'NOT_AUTHORIZED'],
    ] as const) {
      expect(expectCode(await list(s), code).redirect, code).toBe('authSettings')
    }
    expect(expectCode(await list(ADMIN, 'org-missing'), 'ORGANIZATION_NOT_FOUND').redirect).toBe('root')
  })

  it('verify or remove a domain the org has not claimed: DOMAIN_UNKNOWN', async () => {
    const w = makeWorld()
    expectCode(await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'DOMAIN_UNKNOWN')
    expectCode(await w.sso.removeDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'DOMAIN_UNKNOWN')
  })

  it.each([
    ['acme.test.', 'trailing-dot'],
    ['192.0.2.1', 'ip-address'],
    ['localhost', 'not-a-host-name'],
    ['acme.test/path', 'invalid-characters'],
    ['xn--zz.test', 'idn-invalid'],
  ])('a bad domain %j: INPUT_INVALID naming the field, nothing written', async (domain, reason) => {
    const w = makeWorld()
    const before = dataOf(w.storage.snapshot())
    const error = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain }), 'INPUT_INVALID')
    expect(error.details).toEqual({ field: 'domain', reason })
    expect(error.message).toMatch(/^The domain /)
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('a storage without domain support: CONFIG_INVALID (domains-not-supported)', async () => {
    const inner = createMemoryStorage()
    const { listOrganizationDomains: _l, findVerifiedDomains: _f, ...rest } = inner
    const w = makeWorld({ storage: Object.assign(Object.create(null), rest) as never })
    void (w.storage as StoragePort)
    const error = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'CONFIG_INVALID')
    expect(error.details).toEqual({ reason: 'domains-not-supported' })
    expectCode(await w.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'CONFIG_INVALID')
  })
})

describe('home-realm discovery: beginLogin({ email })', () => {
  async function verifiedWorld() {
    const w = await withProvider()
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    return w
  }

  it('finds the org by its verified domain, passes the email as the login hint, traces the decision', async () => {
    const w = await verifiedWorld()
    const step = (await w.sso.beginLogin({ email: 'Ada@ACME.test', session: session(null, 'sess-x') }))._unsafeUnwrap()
    if (step.kind !== 'render') throw new Error(`expected the dummy form, got ${step.kind}`)
    expect(step.discovery).toEqual({
      domain: 'acme.test',
      organizationId: 'org-1',
      trace: [{ rule: 'discovery.verified-domain', detail: 'acme.test is verified by organization org-1' }],
    })
    // The pipeline is org-1's: finishing it signs in a member of org-1.
    const done = (
      await w.sso.advance({
        handle: step.handle,
        request: { method: 'POST', query: {}, form: { id: 'ext-admin', email: 'admin@example.com', name: 'Admin' } },
        session: session(null, 'sess-x'),
      })
    )._unsafeUnwrap()
    expect(done.kind === 'signedIn' && done.organizationId).toBe('org-1')
  })

  it('the email reaches the provider as its login hint', async () => {
    const w = await verifiedWorld()
    const hints: (string | null)[] = []
    const { createStepApi } = await import('../../src/engine/steps.js')
    const provider = w.ctx.providers.get('dummy')
    if (!provider) throw new Error('no dummy provider')
    const steps = provider.loginSteps.bind(provider)
    ;(provider as { loginSteps: typeof provider.loginSteps }).loginSteps = (config) =>
      steps(config).map((step) => ({
        ...step,
        handle: (ctx) => {
          hints.push(ctx.loginHint ?? null)
          return step.handle(ctx)
        },
      }))
    const api = createStepApi(w.ctx)
    ;(await api.beginLogin({ email: ' Ada@ACME.test ', session: session(null) }))._unsafeUnwrap()
    expect(hints).toEqual(['Ada@ACME.test'])
  })

  it('a claimed but unverified domain, an unknown domain: the same DOMAIN_UNKNOWN, nothing written', async () => {
    const w = await withProvider()
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    const before = w.storage.snapshot()
    const unverified = expectCode(await w.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'DOMAIN_UNKNOWN')
    const unknown = expectCode(await w.sso.beginLogin({ email: 'ada@nobody.test', session: session(null) }), 'DOMAIN_UNKNOWN')
    expect(unverified).toEqual(unknown)
    expect(unknown.redirect).toBe('root')
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('a domain verified by two orgs (host data): the same DOMAIN_UNKNOWN as no match', async () => {
    const w = await withProvider()
    const t = w.clock.now()
    const row = (id: string, organizationId: string) => ({
      id,
      organizationId,
      domain: 'twice.test',
      verificationToken: id,
      verifiedAt: t,
      createdAt: t,
    })
    // A host's store without the unique index: the memory store is given the rows behind its back.
    const storage = w.storage
    const find = storage.findVerifiedDomains?.bind(storage)
    if (!find) throw new Error('memory storage has findVerifiedDomains')
    Object.assign(storage, {
      findVerifiedDomains: async (domain: string) => (domain === 'twice.test' ? [row('d1', 'org-1'), row('d2', 'org-2')] : find(domain)),
    })
    const both = expectCode(await w.sso.beginLogin({ email: 'ada@twice.test', session: session(null) }), 'DOMAIN_UNKNOWN')
    const none = expectCode(await w.sso.beginLogin({ email: 'ada@none.test', session: session(null) }), 'DOMAIN_UNKNOWN')
    expect(both).toEqual(none)
  })

  it.each([
    ['ada', 'no-domain'],
    ['ada@', 'no-domain'],
    ['@acme.test', 'local-part-empty'],
    ['ada@acme.test.', 'trailing-dot'],
    ['ada@xn--zz.test', 'idn-invalid'],
    ['ada@192.0.2.1', 'ip-address'],
  ])('a bad email %j: INPUT_INVALID naming the field, nothing written', async (email, reason) => {
    const w = await verifiedWorld()
    const before = w.storage.snapshot()
    const error = expectCode(await w.sso.beginLogin({ email, session: session(null) }), 'INPUT_INVALID')
    expect(error.details).toEqual({ field: 'email', reason })
    expect(error.message).toMatch(/^The email address /)
    expect(w.storage.snapshot()).toEqual(before)
  })

  it('an IDN address finds the org that verified its A-label domain', async () => {
    const w = await withProvider()
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'xn--bcher-kva.example' })
    await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'bücher.example' })
    const step = (await w.sso.beginLogin({ email: 'ada@BÜCHER.example', session: session(null) }))._unsafeUnwrap()
    expect('discovery' in step && step.discovery?.organizationId).toBe('org-1')
  })

  it('size limits and shape: over-long email, both or neither of organizationId and email', async () => {
    const w = await verifiedWorld()
    expectCode(await w.sso.beginLogin({ email: `${'a'.repeat(320)}@acme.test`, session: session(null) }), 'INPUT_INVALID')
    const both = expectCode(
      await w.sso.beginLogin({ email: 'ada@acme.test', organizationId: 'org-1', session: session(null) } as never),
      'INPUT_INVALID',
    )
    expect(both.details?.field).toBe('email')
    expectCode(await w.sso.beginLogin({ session: session(null) } as never), 'INPUT_INVALID')
  })
})
