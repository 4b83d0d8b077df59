// Issue 13 item 3: verified domains (admin API) and home-realm discovery (`beginLogin({ email })`)
// on the memory storage. The storage contract (test/contract, test/kysely, test/drizzle) covers
// the adapters, including the concurrent-verification race on PostgreSQL and MariaDB.
import { describe, expect, it } from 'vitest'
import { discover } from '../../src/engine/domains.js'
import { authError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { StorageConflictError, type StoragePort } from '../../src/ports/storage.js'
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
    expect(added.domain.dnsRecord.type).toBe('TXT')
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
    const taken = expectCode(await w.sso.verifyDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' }), 'DOMAIN_TAKEN')
    // Refused by the engine's own check (no storage conflict behind it), for the settings page.
    expect([taken.redirect, taken.cause]).toEqual(['authSettings', undefined])
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
    // Another org's claim, and another domain of this org's, do not count.
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'other.test' })
    await w.sso.addDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' })
    const before = dataOf(w.storage.snapshot())
    for (const call of [w.sso.verifyDomain, w.sso.removeDomain]) {
      const error = expectCode<unknown>(await call({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'DOMAIN_UNKNOWN')
      expect([error.details, error.redirect]).toEqual([{ reason: 'not-claimed' }, 'authSettings'])
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
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

describe('domain support is all or nothing', () => {
  const TX_METHODS = [
    'createOrganizationDomain',
    'verifyOrganizationDomain',
    'deleteOrganizationDomain',
    'listOrganizationDomains',
    'findVerifiedDomains',
  ] as const

  /** The memory storage whose transactions lack `missing`. */
  function txWithout(missing: string) {
    const inner = createMemoryStorage()
    return new Proxy(inner, {
      get(target, name, receiver) {
        if (name !== 'transaction') return Reflect.get(target, name, receiver)
        return (fn: (tx: unknown) => Promise<unknown>) =>
          target.transaction((tx) => fn(new Proxy(tx, { get: (t, n, r) => (n === missing ? undefined : Reflect.get(t, n, r)) })))
      },
    })
  }

  for (const missing of TX_METHODS) {
    it(`a transaction without ${missing}: addDomain is CONFIG_INVALID to the settings page, nothing written`, async () => {
      const w = makeWorld({ storage: txWithout(missing) as never })
      const before = dataOf(w.storage.snapshot())
      const error = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'CONFIG_INVALID')
      expect(error).toMatchObject({
        redirect: 'authSettings',
        message: 'The storage adapter does not support verified domains.',
        details: { reason: 'domains-not-supported' },
      })
      expect(dataOf(w.storage.snapshot())).toEqual(before)
    })
  }

  for (const missing of ['listOrganizationDomains', 'findVerifiedDomains'] as const) {
    it(`a storage without ${missing}: listDomains and discovery are CONFIG_INVALID`, async () => {
      const inner = createMemoryStorage()
      const storage = new Proxy(inner, { get: (t, n, r) => (n === missing ? undefined : Reflect.get(t, n, r)) })
      const w = makeWorld({ storage: storage as never })
      expect(expectCode(await w.sso.listDomains({ organizationId: 'org-1', session: ADMIN }), 'CONFIG_INVALID').redirect).toBe(
        'authSettings',
      )
      expect(
        expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'a.test' }), 'CONFIG_INVALID').redirect,
      ).toBe('authSettings')
      const found = expectCode(await w.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'CONFIG_INVALID')
      expect(found).toMatchObject({ redirect: 'root', details: { reason: 'domains-not-supported' } })
    })
  }

  it('write refusals keep their page: the settings page, the root for an unknown organization', async () => {
    const w = makeWorld()
    const add = (s: ReturnType<typeof session>, organizationId = 'org-1') =>
      w.sso.addDomain({ organizationId, session: s, domain: 'acme.test' })
    expect(expectCode(await add(session(null)), 'NOT_AUTHENTICATED').redirect).toBe('authSettings')
    expect(expectCode(await add(session('plain')), 'NOT_AUTHORIZED').redirect).toBe('authSettings')
    expect(expectCode(await add(ADMIN, 'org-missing'), 'ORGANIZATION_NOT_FOUND').redirect).toBe('root')
  })

  it('verify or remove an unclaimed domain: DOMAIN_UNKNOWN (not-claimed) to the settings page; the record is a TXT record', async () => {
    const w = makeWorld()
    const input = { organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }
    for (const error of [
      expectCode(await w.sso.verifyDomain(input), 'DOMAIN_UNKNOWN'),
      expectCode(await w.sso.removeDomain(input), 'DOMAIN_UNKNOWN'),
    ]) {
      expect(error).toMatchObject({ redirect: 'authSettings', details: { reason: 'not-claimed' } })
    }
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'other.test' })
    const added = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }))._unsafeUnwrap()
    expect(added.domain.dnsRecord.type).toBe('TXT')
    expect(added.created).toBe(true)
    // Another org's claim of the same domain is not this org's.
    expectCode(await w.sso.verifyDomain({ organizationId: 'org-2', session: ADMIN2, domain: 'acme.test' }), 'DOMAIN_UNKNOWN')
  })

  it('discovery whose domain read fails: STORAGE_UNAVAILABLE to the root', async () => {
    const inner = createMemoryStorage()
    const storage = new Proxy(inner, {
      get: (t, n, r) => (n === 'findVerifiedDomains' ? async () => Promise.reject(new Error('down')) : Reflect.get(t, n, r)),
    })
    const w = makeWorld({ storage: storage as never })
    const error = expectCode(await w.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'STORAGE_UNAVAILABLE')
    expect(error.redirect).toBe('root')
  })

  for (const [method, call] of [
    ['verifyOrganizationDomain', 'verifyDomain'],
    ['deleteOrganizationDomain', 'removeDomain'],
  ] as const) {
    it(`${call} of a domain removed meanwhile (${method} finds no row): STORAGE_CONFLICT (domain-removed)`, async () => {
      const inner = createMemoryStorage()
      const storage = new Proxy(inner, {
        get(target, name, receiver) {
          if (name !== 'transaction') return Reflect.get(target, name, receiver)
          return (fn: (tx: unknown) => Promise<unknown>) =>
            target.transaction((tx) => fn(new Proxy(tx, { get: (t, n, r) => (n === method ? async () => false : Reflect.get(t, n, r)) })))
        },
      })
      const w = makeWorld({ storage: storage as never })
      ;(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }))._unsafeUnwrap()
      const error = expectCode<unknown>(
        await w.sso[call]({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }),
        'STORAGE_CONFLICT',
      )
      expect(error).toMatchObject({ redirect: 'authSettings', details: { reason: 'domain-removed' } })
    })
  }

  it('a bad email at discovery: INPUT_INVALID to the root', async () => {
    const w = makeWorld()
    expect(expectCode(await w.sso.beginLogin({ email: 'not an email', session: session(null) }), 'INPUT_INVALID').redirect).toBe('root')
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

// Mutation testing (issue 12 item 4): the edges of src/engine/domains.ts that the tests above
// leave open (messages, partial adapters, failed and lost writes, the audit row's fields).
describe('verified domains: messages, partial adapters, lost writes, the audit row', () => {
  type Tx = Parameters<Parameters<StoragePort['transaction']>[0]>[0]
  /** The memory storage, its transactions' members changed by `patch` (and its own by `own`). */
  function wrapped(patch: (tx: Tx) => Tx, own: Partial<Record<keyof StoragePort, unknown>> = {}) {
    const inner = createMemoryStorage()
    return Object.assign(Object.create(null), inner, own, {
      transaction: <T>(fn: (tx: Tx) => Promise<T>) => inner.transaction((tx) => fn(patch(tx))),
    }) as typeof inner
  }

  it.each([
    ['', 'empty', 'The domain is empty.'],
    [
      `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.test`,
      'too-long',
      'The domain is too long.',
    ],
    ['acme.test.', 'trailing-dot', 'The domain ends with a dot.'],
    ['acme.test/path', 'invalid-characters', 'The domain contains characters a domain cannot have.'],
    ['xn--zz.test', 'idn-invalid', 'The domain is an internationalized domain that cannot be converted.'],
    ['localhost', 'not-a-host-name', 'The domain is not a domain name like example.com.'],
    ['192.0.2.1', 'ip-address', 'The domain is an IP address, not a domain.'],
  ])('the domain %j: the message says what is wrong (%s), for the settings page', async (domain, reason, message) => {
    const w = makeWorld()
    const error = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain }), 'INPUT_INVALID')
    expect([error.details, error.message, error.redirect]).toEqual([{ field: 'domain', reason }, message, 'authSettings'])
  })

  it.each([
    ['ada', 'The email address has no domain (expected name@company.com).'],
    ['@acme.test', 'The email address has nothing before the @.'],
    ['ada@acme.test.', 'The email address ends with a dot.'],
    ['ada@192.0.2.1', 'The email address is an IP address, not a domain.'],
  ])('the email %j: the message says what is wrong, for the root page', async (email, message) => {
    const w = makeWorld()
    const error = expectCode(await w.sso.beginLogin({ email, session: session(null) }), 'INPUT_INVALID')
    expect([error.message, error.redirect]).toEqual([message, 'root'])
  })

  it.each(['listOrganizationDomains', 'findVerifiedDomains'] as const)(
    'a storage without %s alone: CONFIG_INVALID everywhere, nothing written',
    async (missing) => {
      const w = makeWorld({ storage: wrapped((tx) => tx, { [missing]: undefined }) })
      const before = dataOf(w.storage.snapshot())
      const add = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'CONFIG_INVALID')
      expect([add.message, add.details, add.redirect]).toEqual([
        'The storage adapter does not support verified domains.',
        { reason: 'domains-not-supported' },
        'authSettings',
      ])
      const list = expectCode(await w.sso.listDomains({ organizationId: 'org-1', session: ADMIN }), 'CONFIG_INVALID')
      expect(list.redirect).toBe('authSettings')
      const login = expectCode(await w.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'CONFIG_INVALID')
      expect([login.details, login.redirect]).toEqual([{ reason: 'domains-not-supported' }, 'root'])
      expect(dataOf(w.storage.snapshot())).toEqual(before)
    },
  )

  it.each([
    'createOrganizationDomain',
    'verifyOrganizationDomain',
    'deleteOrganizationDomain',
    'listOrganizationDomains',
    'findVerifiedDomains',
  ] as const)('transactions without %s: CONFIG_INVALID for every change, nothing written', async (missing) => {
    const w = makeWorld({ storage: wrapped((tx) => ({ ...tx, [missing]: undefined })) })
    const before = dataOf(w.storage.snapshot())
    for (const call of [w.sso.addDomain, w.sso.verifyDomain, w.sso.removeDomain]) {
      const error = expectCode<unknown>(await call({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'CONFIG_INVALID')
      expect([error.details, error.redirect]).toEqual([{ reason: 'domains-not-supported' }, 'authSettings'])
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('a failing storage: STORAGE_UNAVAILABLE on the settings page (root for discovery), nothing written', async () => {
    const boom = async () => {
      throw new Error('connection reset')
    }
    const w = makeWorld({ storage: wrapped((tx) => ({ ...tx, listOrganizationDomains: boom })) })
    const before = dataOf(w.storage.snapshot())
    for (const call of [w.sso.addDomain, w.sso.verifyDomain, w.sso.removeDomain]) {
      const error = expectCode<unknown>(await call({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'STORAGE_UNAVAILABLE')
      expect(error.redirect).toBe('authSettings')
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
    const reads = makeWorld({ storage: wrapped((tx) => tx, { listOrganizationDomains: boom, findVerifiedDomains: boom }) })
    const list = expectCode(await reads.sso.listDomains({ organizationId: 'org-1', session: ADMIN }), 'STORAGE_UNAVAILABLE')
    expect(list.redirect).toBe('authSettings')
    const login = expectCode(await reads.sso.beginLogin({ email: 'ada@acme.test', session: session(null) }), 'STORAGE_UNAVAILABLE')
    expect(login.redirect).toBe('root')
  })

  it('an AuthError the storage throws comes out unchanged', async () => {
    const thrown = authError('STORAGE_CONFLICT', { redirect: 'root', details: { reason: 'host' } })
    const w = makeWorld({
      storage: wrapped((tx) => tx, {
        listOrganizationDomains: async () => {
          throw thrown
        },
      }),
    })
    expect((await w.sso.listDomains({ organizationId: 'org-1', session: ADMIN }))._unsafeUnwrapErr()).toBe(thrown)
  })

  it('an AuthError thrown inside a change comes out with its code, for the settings page', async () => {
    const thrown = authError('STORAGE_CONFLICT', { redirect: 'root' })
    const w = makeWorld({
      storage: wrapped((tx) => ({
        ...tx,
        listOrganizationDomains: async () => {
          throw thrown
        },
      })),
    })
    const error = expectCode(await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'STORAGE_CONFLICT')
    expect([error.redirect, error.details]).toEqual(['authSettings', undefined])
  })

  it('a unique conflict on the verified index is DOMAIN_TAKEN; any other conflict stays STORAGE_CONFLICT, both for the settings page', async () => {
    for (const [constraint, code] of [
      ['organization_domain.verified', 'DOMAIN_TAKEN'],
      ['organization_domain.domain', 'STORAGE_CONFLICT'],
    ] as const) {
      const conflict = new StorageConflictError(constraint as never)
      const w = makeWorld({
        storage: wrapped((tx) => ({
          ...tx,
          verifyOrganizationDomain: async () => {
            throw conflict
          },
        })),
      })
      await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
      const before = dataOf(w.storage.snapshot())
      const error = expectCode(await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), code)
      expect([error.redirect, error.cause]).toEqual(['authSettings', conflict])
      expect(dataOf(w.storage.snapshot())).toEqual(before)
    }
  })

  it('a row removed between the read and the write: STORAGE_CONFLICT (domain-removed), nothing audited', async () => {
    const w = makeWorld({
      storage: wrapped((tx) => ({ ...tx, verifyOrganizationDomain: async () => false, deleteOrganizationDomain: async () => false })),
    })
    await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' })
    const before = dataOf(w.storage.snapshot())
    for (const call of [w.sso.verifyDomain, w.sso.removeDomain]) {
      const error = expectCode<unknown>(await call({ organizationId: 'org-1', session: ADMIN, domain: 'acme.test' }), 'STORAGE_CONFLICT')
      expect([error.details, error.redirect]).toEqual([{ reason: 'domain-removed' }, 'authSettings'])
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('refusals of a change go to the settings page, an unknown organization to the root; nothing written', async () => {
    const w = makeWorld()
    const before = dataOf(w.storage.snapshot())
    for (const call of [w.sso.addDomain, w.sso.verifyDomain, w.sso.removeDomain]) {
      const anonymous = expectCode<unknown>(
        await call({ organizationId: 'org-1', session: session(null), domain: 'acme.test' }),
        'NOT_AUTHENTICATED',
      )
      expect(anonymous.redirect).toBe('authSettings')
      const plain = expectCode<unknown>(
        await call({ organizationId: 'org-1', session: session('plain'), domain: 'acme.test' }),
        'NOT_AUTHORIZED',
      )
      expect(plain.redirect).toBe('authSettings')
      const missing = expectCode<unknown>(
        await call({ organizationId: 'org-missing', session: ADMIN, domain: 'acme.test' }),
        'ORGANIZATION_NOT_FOUND',
      )
      expect(missing.redirect).toBe('root')
    }
    expect(dataOf(w.storage.snapshot())).toEqual(before)
  })

  it('two domains: each call acts on its own row; the audit names the row, the time, and no ip when the session has none', async () => {
    const w = makeWorld()
    const noIp = { id: 'sess-admin', userId: 'admin' } as ReturnType<typeof session>
    const a = (await w.sso.addDomain({ organizationId: 'org-1', session: noIp, domain: 'a.test' }))._unsafeUnwrap()
    const b = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'b.test' }))._unsafeUnwrap()
    expect(a.domain.createdAt).toBe(w.clock.now().toISOString())
    expect(a.domain.verifiedAt).toBeNull()
    expect(b.domain.dnsRecord.value).not.toBe(a.domain.dnsRecord.value)
    const bAgain = (await w.sso.addDomain({ organizationId: 'org-1', session: ADMIN, domain: 'b.test' }))._unsafeUnwrap()
    expect([bAgain.created, bAgain.domain]).toEqual([false, b.domain])

    const verified = (await w.sso.verifyDomain({ organizationId: 'org-1', session: ADMIN, domain: 'b.test' }))._unsafeUnwrap()
    expect([verified.changed, verified.domain.domain, verified.domain.dnsRecord]).toEqual([true, 'b.test', b.domain.dnsRecord])
    expect(
      (await w.sso.listDomains({ organizationId: 'org-1', session: ADMIN }))._unsafeUnwrap().domains.map((d) => [d.domain, d.verified]),
    ).toEqual([
      ['a.test', false],
      ['b.test', true],
    ])
    ;(await w.sso.removeDomain({ organizationId: 'org-1', session: ADMIN, domain: 'a.test' }))._unsafeUnwrap()
    const rows = w.storage.snapshot().domains ?? []
    expect(rows.map((d) => [d.domain, d.verifiedAt !== null])).toEqual([['b.test', true]])
    const ids = { a: 'x', b: rows[0]?.id }
    const audit = w.storage.snapshot().audit.filter((e) => e.event.startsWith('domain.'))
    expect(audit.map((e) => [e.event, e.data, e.ip, e.targetUserId, e.createdAt.toISOString()])).toEqual([
      ['domain.add', { domain: 'a.test' }, null, null, w.clock.now().toISOString()],
      ['domain.add', { domain: 'b.test' }, '203.0.113.7', null, w.clock.now().toISOString()],
      ['domain.verify', { domain: 'b.test' }, '203.0.113.7', null, w.clock.now().toISOString()],
      ['domain.remove', { domain: 'a.test' }, '203.0.113.7', null, w.clock.now().toISOString()],
    ])
    expect(audit[1]?.targetId).toBe(ids.b)
    expect(audit[2]?.targetId).toBe(ids.b)
    expect(audit[0]?.targetId).toBe(audit[3]?.targetId)
    expect(audit[0]?.targetId).not.toBe(ids.b)
    expect(new Set(audit.map((e) => e.id)).size).toBe(4)
  })

  it('discovery counts only verified rows of the exact domain, and logs a domain verified twice', async () => {
    const w = makeWorld()
    const t = w.clock.now()
    const row = (id: string, organizationId: string, domain: string, verifiedAt: Date | null) => ({
      id,
      organizationId,
      domain,
      verificationToken: id,
      verifiedAt,
      createdAt: t,
    })
    const warnings: unknown[][] = []
    const logger = { warn: (...a: unknown[]) => warnings.push(a), error: () => {}, info: () => {}, debug: () => {} }
    const withRows = (rows: ReturnType<typeof row>[]) =>
      ({ ...w.ctx, logger, storage: wrapped((tx) => tx, { findVerifiedDomains: async () => rows }) }) as typeof w.ctx
    const unknown = async (rows: ReturnType<typeof row>[]) => {
      const found = await discover(withRows(rows), 'ada@acme.test')
      expect(found.isErr() && found.error.code).toBe('DOMAIN_UNKNOWN')
      expect(found.isErr() && found.error.redirect).toBe('root')
    }
    await unknown([row('d1', 'org-1', 'acme.test', null)])
    await unknown([row('d1', 'org-1', 'other.test', t)])
    expect(warnings).toEqual([])
    await unknown([row('d1', 'org-1', 'acme.test', t), row('d2', 'org-2', 'acme.test', t)])
    expect(warnings).toEqual([
      ['ssoflow: a domain is verified by more than one organization; discovery refused', { domain: 'acme.test', organizations: 2 }],
    ])
    const one = await discover(withRows([row('d0', 'org-2', 'acme.test', null), row('d1', 'org-1', 'acme.test', t)]), 'ada@acme.test')
    expect(one._unsafeUnwrap()).toEqual({
      organizationId: 'org-1',
      domain: 'acme.test',
      trace: [{ rule: 'discovery.verified-domain', detail: 'acme.test is verified by organization org-1' }],
    })
    expect(warnings).toHaveLength(1)
  })
})
