// One source of limits (issue 16 item 4). The migrations create every string column from
// COLUMN_LIMITS; the boundary (the zod schemas of createAuthPipeline, the identity parser) reads the
// same LIMITS. On every database this file
// - walks the string columns the migrations created and checks each against COLUMN_LIMITS (none
//   missing, none extra, same width), and that every column has a declared source below;
// - writes a value of exactly the limit through the engine into every column the boundary feeds
//   (it must be stored, never a storage error), and
// - offers one character more at the boundary: a typed input error (INPUT_INVALID; identity
//   fields IDENTITY_INVALID, the identity parser's code), not retryable, nothing written.
// PGlite and SQLite always, PostgreSQL and MariaDB when DATABASE_URL / MYSQL_URL are set.
import { sql } from 'kysely'
import type { ResultAsync } from 'neverthrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveContext } from '../../src/engine/context.js'
import { createAuthPipeline } from '../../src/engine/create.js'
import { ACCOUNT_VERIFICATION_PURPOSE, VERIFICATION_SENDS_PURPOSE } from '../../src/engine/login.js'
import { SINGLE_USE_PURPOSE } from '../../src/engine/single-use.js'
import type { AuthPipelineOptions, SessionInfo } from '../../src/engine/types.js'
import type { AuthError } from '../../src/errors.js'
import { COLUMN_LIMITS, LIMITS } from '../../src/model/limits.js'
import type { AuditEvent, InviteStatus } from '../../src/model/records.js'
import type { StorageSnapshot } from '../../src/ports/storage.js'
import { dummyProvider } from '../../src/providers/dummy/index.js'
import { createRecordingMailer, createRecordingSignals, fixedClock, sequentialIds } from '../../src/testing/fakes.js'
import { makeMember, makeOrganization, makeUser } from '../../src/testing/fixtures.js'
import { DATABASES, freshStorage, reportSkip, type TestDatabase } from '../helpers/databases.js'
import { readySetup, SECRET, urls } from '../setup/harness.js'

type Table = keyof typeof COLUMN_LIMITS
type Source =
  /** Reaches the column from an entry point's input: the named boundary check below covers it. */
  | { readonly kind: 'boundary'; readonly via: string }
  /** Written by the engine from a value it generates; `max` is the longest it generates. */
  | { readonly kind: 'generated'; readonly max: number }
  /** Written only by the host (seed, its own admin screens); the engine never writes it. */
  | { readonly kind: 'host' }
  /** Copied from another column with the same or a smaller limit. */
  | { readonly kind: 'copy'; readonly of: readonly [Table, string] }

const ULID = 26
const SHA256_HEX = 64
const EVENTS = [
  'member.add',
  'member.accept-invite',
  'sso-identity.link',
  'sso-identity.claim',
  'sso.enable',
  'sso.disable',
  'sso.edit',
  'org.edit',
  'domain.add',
  'domain.verify',
  'domain.remove',
] as const satisfies readonly AuditEvent[]
// Fails to compile when an audit event is added without being listed above.
const eventsCovered: [Exclude<AuditEvent, (typeof EVENTS)[number]>] extends [never] ? true : false = true
const STATUSES = ['approved', 'requested_to_be_invited', 'requested_to_join'] as const satisfies readonly InviteStatus[]
const statusesCovered: [Exclude<InviteStatus, (typeof STATUSES)[number]>] extends [never] ? true : false = true
const WORK_KINDS = ['link-requests', 'unlink-notices'] as const
const PURPOSES = [ACCOUNT_VERIFICATION_PURPOSE, VERIFICATION_SENDS_PURPOSE, SINGLE_USE_PURPOSE] as const

/** Where every string column's values come from. A new column fails the walk until it is listed. */
const SOURCES: { readonly [T in Table]: { readonly [C in keyof (typeof COLUMN_LIMITS)[T]]: Source } } = {
  organizations: {
    id: { kind: 'boundary', via: 'organizationId' },
    slug: { kind: 'host' },
    name: { kind: 'host' },
    default_role: { kind: 'boundary', via: 'settings.defaultRole' },
  },
  users: {
    id: { kind: 'boundary', via: 'session.userId' },
    username: { kind: 'generated', max: 32 },
    email: { kind: 'boundary', via: 'identity.email' },
    name: { kind: 'boundary', via: 'identity.name' },
  },
  user_emails: {
    user_id: { kind: 'copy', of: ['users', 'id'] },
    email: { kind: 'boundary', via: 'identity.email' },
    email_normalized: { kind: 'boundary', via: 'identity.email' },
  },
  auth_providers: {
    id: { kind: 'generated', max: ULID },
    organization_id: { kind: 'copy', of: ['organizations', 'id'] },
    provider_key: { kind: 'boundary', via: 'providerKey' },
  },
  auth_identities: {
    id: { kind: 'generated', max: ULID },
    auth_provider_id: { kind: 'copy', of: ['auth_providers', 'id'] },
    user_id: { kind: 'copy', of: ['users', 'id'] },
    ident: { kind: 'boundary', via: 'identity.id' },
  },
  members: {
    id: { kind: 'generated', max: ULID },
    organization_id: { kind: 'copy', of: ['organizations', 'id'] },
    user_id: { kind: 'copy', of: ['users', 'id'] },
    email: { kind: 'host' },
    email_normalized: { kind: 'host' },
    role: { kind: 'copy', of: ['organizations', 'default_role'] },
    invite_token_hash: { kind: 'generated', max: SHA256_HEX },
    invite_status: { kind: 'generated', max: Math.max(...STATUSES.map((s) => s.length)) },
  },
  audit_log: {
    id: { kind: 'generated', max: ULID },
    event: { kind: 'generated', max: Math.max(...EVENTS.map((e) => e.length)) },
    actor_user_id: { kind: 'copy', of: ['users', 'id'] },
    organization_id: { kind: 'copy', of: ['organizations', 'id'] },
    target_id: { kind: 'copy', of: ['auth_identities', 'id'] },
    target_user_id: { kind: 'copy', of: ['users', 'id'] },
    ip: { kind: 'boundary', via: 'session.ip' },
  },
  organization_domains: {
    id: { kind: 'generated', max: ULID },
    organization_id: { kind: 'copy', of: ['organizations', 'id'] },
    // normalizeDomain's output: a DNS host name of at most 253 characters.
    domain: { kind: 'generated', max: LIMITS.domain },
    verified_domain: { kind: 'copy', of: ['organization_domains', 'domain'] },
    // randomToken(32): 43 base64url characters.
    verification_token: { kind: 'generated', max: 43 },
  },
  pipeline_states: { id: { kind: 'generated', max: 32 } },
  one_time_tokens: {
    hash: { kind: 'generated', max: SHA256_HEX },
    purpose: { kind: 'generated', max: Math.max(...PURPOSES.map((p) => p.length)) },
  },
  pending_work: {
    id: { kind: 'generated', max: ULID },
    kind: { kind: 'generated', max: Math.max(...WORK_KINDS.map((k) => k.length)) },
    organization_id: { kind: 'copy', of: ['organizations', 'id'] },
    // `<kind>:<provider id>`
    work_key: { kind: 'generated', max: Math.max(...WORK_KINDS.map((k) => k.length)) + 1 + LIMITS.id },
    after_id: { kind: 'copy', of: ['members', 'id'] },
    claim_token: { kind: 'generated', max: ULID },
  },
}

/** The boundary checks of this file, by the `via` names above. */
const BOUNDARY_CHECKS = new Set([
  'organizationId',
  'session.userId',
  'settings.defaultRole',
  'session.ip',
  'providerKey',
  'identity.id',
  'identity.email',
  'identity.name',
])

async function stringColumns(database: TestDatabase, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (database.kind === 'sqlite') {
    const { rows: tables } = await sql<{
      name: string
    }>`select name from sqlite_master where type = 'table' and name like ${`${prefix}%`}`.execute(database.db)
    for (const { name } of tables) {
      const { rows } = await sql<{ name: string; type: string }>`select name, type from pragma_table_info(${name})`.execute(database.db)
      for (const c of rows) {
        const m = /^varchar\((\d+)\)$/i.exec(c.type)
        if (m) out.set(`${name}.${c.name}`, Number(m[1]))
      }
    }
    return out
  }
  const { rows } =
    database.kind === 'mysql'
      ? await sql<{ t: string; c: string; n: number }>`select table_name as t, column_name as c, character_maximum_length as n
          from information_schema.columns where table_schema = database() and data_type = 'varchar' and table_name like ${`${prefix}%`}`.execute(
          database.db,
        )
      : await sql<{ t: string; c: string; n: number }>`select table_name as t, column_name as c, character_maximum_length as n
          from information_schema.columns where table_schema = current_schema() and data_type = 'character varying'
           and table_name like ${`${prefix}%`}`.execute(database.db)
  for (const r of rows) out.set(`${r.t}.${r.c}`, Number(r.n))
  return out
}

/** Exactly `length` characters: an IPv6 address with a zone id, padded in the zone. */
function ipv6WithZone(length: number): string {
  const base = 'fe80:0000:0000:0000:0202:b3ff:fe1e:8329%'
  return base + 'z'.repeat(length - base.length)
}

const O = 'o'.repeat(LIMITS.id)
const U = 'u'.repeat(LIMITS.id)

/** The value, or the test fails with the error's code and details. */
function unwrap<T>(r: { isErr(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }, what: string): T {
  if (r.isErr()) throw new Error(`${what}: ${JSON.stringify(r._unsafeUnwrapErr())}`)
  return r._unsafeUnwrap()
}

/** A valid address of exactly `length` characters (local part 64, labels of at most 63). */
function email(length: number, local = 'a'): string {
  const labels: string[] = []
  let rest = length - 65 - 4
  while (rest > 63) {
    labels.push('x'.repeat(62))
    rest -= 63
  }
  labels.push('x'.repeat(rest))
  return `${local.repeat(64)}@${labels.join('.')}.com`
}

type Failing = { readonly code: string; readonly retryable: boolean }

describe('limits: LIMITS and COLUMN_LIMITS', () => {
  it('every column has a source; generated values and copies fit; every boundary source is checked below', () => {
    expect(eventsCovered && statusesCovered).toBe(true)
    for (const [table, columns] of Object.entries(SOURCES) as [Table, Record<string, Source>][]) {
      const widths = COLUMN_LIMITS[table] as Record<string, number>
      expect(Object.keys(columns).sort(), table).toEqual(Object.keys(widths).sort())
      for (const [column, source] of Object.entries(columns)) {
        const width = widths[column] ?? 0
        if (source.kind === 'generated') expect(source.max, `${table}.${column}`).toBeLessThanOrEqual(width)
        if (source.kind === 'copy') {
          const [t, c] = source.of
          expect((COLUMN_LIMITS[t] as Record<string, number>)[c], `${table}.${column} copies ${t}.${c}`).toBeLessThanOrEqual(width)
        }
        if (source.kind === 'boundary') expect(BOUNDARY_CHECKS.has(source.via), `${table}.${column} via ${source.via}`).toBe(true)
      }
    }
    // The boundary limits behind the columns the boundary feeds.
    expect(COLUMN_LIMITS.organizations.default_role).toBe(LIMITS.role)
    expect(COLUMN_LIMITS.audit_log.ip).toBe(LIMITS.ip)
    expect(COLUMN_LIMITS.auth_identities.ident).toBe(LIMITS.id)
    expect(COLUMN_LIMITS.users.email).toBe(LIMITS.email)
    expect(COLUMN_LIMITS.users.name).toBeGreaterThanOrEqual(LIMITS.name)
  })
})

for (const database of DATABASES) {
  if (!database.enabled) {
    reportSkip(`limits on ${database.name}`, database.variable ?? '')
    continue
  }
  describe(`limits on ${database.name}`, { timeout: 120_000 }, () => {
    let db: TestDatabase
    beforeAll(async () => {
      db = await database.open()
    })
    afterAll(async () => {
      await db?.close()
    })

    async function world() {
      const clock = fixedClock('2026-03-01T10:00:00.000Z')
      const fresh = await freshStorage(db, { clock })
      await fresh.storage.seed({
        organizations: [makeOrganization({ id: O, slug: 's'.repeat(LIMITS.id), name: 'N'.repeat(LIMITS.id) })],
        users: [makeUser({ id: U, username: 'x'.repeat(LIMITS.id), email: email(LIMITS.email), name: 'Owner' })],
        members: [makeMember({ id: 'm-owner', organizationId: O, userId: U, role: 'owner' })],
      })
      const options: AuthPipelineOptions = {
        storage: fresh.storage,
        mailer: createRecordingMailer(),
        signals: createRecordingSignals(),
        providers: { dummy: dummyProvider() },
        secret: SECRET,
        urls,
        clock,
        ids: sequentialIds('L'),
        policy: { newUser: 'create' },
      }
      return { ...fresh, sso: createAuthPipeline(options), ctx: resolveContext(options) }
    }

    it('the created string columns are exactly COLUMN_LIMITS', async () => {
      const w = await world()
      try {
        const found = await stringColumns(db, `${w.prefix}_`)
        const expected = new Map<string, number>()
        for (const [table, columns] of Object.entries(COLUMN_LIMITS))
          for (const [column, width] of Object.entries(columns)) expected.set(`${w.prefix}_${table}.${column}`, width)
        found.delete(`${w.prefix}_migrations.name`)
        expect(new Map([...found].sort())).toEqual(new Map([...expected].sort()))
      } finally {
        await w.drop()
      }
    })

    it('values of exactly the limit go through the engine into every boundary-fed column', async () => {
      const w = await world()
      try {
        const chain = `${ipv6WithZone(LIMITS.ip)}, ${'10.0.0.1, '.repeat(300)}192.0.2.1`
        expect(chain.length).toBeLessThanOrEqual(LIMITS.ipChain)
        const owner: SessionInfo = { id: 'sess-owner', userId: U, ip: chain }
        const input = await readySetup(w, {
          org: O,
          sess: owner,
          form: { id: 'e'.repeat(LIMITS.id), email: email(LIMITS.email), name: 'Owner' },
        })
        unwrap(await w.sso.finishSetup(input), 'finishSetup')

        const role = 'r'.repeat(LIMITS.role)
        const settings = await w.sso.updateSettings({ organizationId: O, session: owner, settings: { defaultRole: role } })
        expect(unwrap(settings, 'updateSettings').changed).toEqual(['defaultRole'])

        // A just-in-time sign-up: new user (email at the limit, name over LIMITS.name is cut),
        // membership with the 64-character default role, identity at the limit.
        const guest: SessionInfo = { id: 'sess-guest', ip: ipv6WithZone(LIMITS.ip) }
        const begun = unwrap(await w.sso.beginLogin({ organizationId: O, session: guest }), 'beginLogin')
        if (begun.kind !== 'render') throw new Error(`expected the dummy form, got ${begun.kind}`)
        const finished = await w.sso.advance({
          handle: begun.handle,
          request: {
            method: 'POST',
            query: {},
            form: { id: 'n'.repeat(LIMITS.id), email: email(LIMITS.email, 'b'), name: 'G'.repeat(4 * LIMITS.name) },
          },
          session: guest,
        })
        expect(unwrap(finished, 'advance').kind).toBe('signedIn')

        const disabled = await w.sso.disableProvider({ organizationId: O, session: owner })
        expect(unwrap(disabled, 'disableProvider').kind).toBe('providerDisabled')

        const snap: StorageSnapshot = await w.storage.snapshot()
        expect(snap.organizations[0]?.defaultRole).toBe(role)
        const guestUser = snap.users.find((u) => u.id !== U)
        expect(guestUser?.email).toHaveLength(LIMITS.email)
        expect(guestUser?.name).toHaveLength(LIMITS.name)
        expect(snap.userEmails.find((e) => e.userId === guestUser?.id)?.emailNormalized).toHaveLength(LIMITS.email)
        expect(snap.members.find((m) => m.userId === guestUser?.id)?.role).toBe(role)
        const audit = snap.audit
        expect(audit.map((a) => a.event)).toEqual(expect.arrayContaining(['sso.enable', 'sso.edit', 'member.add', 'sso.disable']))
        for (const a of audit) {
          expect(a.organizationId).toBe(O)
          // The first address of the chain, whole (IPv6 with its zone).
          expect(a.ip).toBe(ipv6WithZone(LIMITS.ip))
        }
        expect(audit.find((a) => a.event === 'sso.disable')?.actorUserId).toBe(U)
      } finally {
        await w.drop()
      }
    })

    it('one character over the limit is a typed input error at the boundary, nothing written', async () => {
      const w = await world()
      try {
        const owner: SessionInfo = { id: 'sess-owner', userId: U, ip: '203.0.113.7' }
        const before = await w.storage.snapshot()
        const refused: [string, Failing][] = []
        const add = async <T>(what: string, r: ResultAsync<T, AuthError>) => {
          const result = await r
          expect(result.isErr(), what).toBe(true)
          refused.push([what, result._unsafeUnwrapErr()])
        }
        // The reported case: a 255-character role into varchar(64).
        await add(
          'defaultRole 255',
          w.sso.updateSettings({ organizationId: O, session: owner, settings: { defaultRole: 'r'.repeat(255) } }),
        )
        await add(
          'defaultRole 65',
          w.sso.updateSettings({ organizationId: O, session: owner, settings: { defaultRole: 'r'.repeat(LIMITS.role + 1) } }),
        )
        const longIp = { ...owner, ip: `${ipv6WithZone(LIMITS.ip + 1)}, 10.0.0.1` }
        await add('session.ip first address 65', w.sso.disableProvider({ organizationId: O, session: longIp }))
        await add('session.ip first address 65 (settings)', w.sso.updateSettings({ organizationId: O, session: longIp, settings: {} }))
        await add(
          'session.ip chain over ipChain',
          w.sso.disableProvider({ organizationId: O, session: { ...owner, ip: `1.2.3.4,${' '.repeat(LIMITS.ipChain)}` } }),
        )
        await add('organizationId 256', w.sso.disableProvider({ organizationId: `${O}o`, session: owner }))
        await add('session.userId 256', w.sso.disableProvider({ organizationId: O, session: { ...owner, userId: `${U}u` } }))
        await add('providerKey 256', w.sso.beginSetup({ organizationId: O, providerKey: 'd'.repeat(LIMITS.id + 1), session: owner }))
        for (const r of refused) expect(r, r[0]).toEqual([r[0], expect.objectContaining({ code: 'INPUT_INVALID', retryable: false })])
        expect(await w.storage.snapshot()).toEqual(before)

        // Identity fields, through the real setup step (the identity parser's code).
        for (const [what, form] of [
          ['identity.id 256', { id: 'e'.repeat(LIMITS.id + 1), email: 'owner@corp.example' }],
          ['identity.email 321', { id: 'ext', email: email(LIMITS.email + 1) }],
        ] as const) {
          const input = await readySetup(w, { org: O, sess: owner, form })
          const result = await w.sso.finishSetup(input)
          expect(result.isErr(), what).toBe(true)
          expect(result._unsafeUnwrapErr(), what).toEqual(expect.objectContaining({ code: 'IDENTITY_INVALID', retryable: false }))
        }
        const after = await w.storage.snapshot()
        expect({ ...after, pipelineStates: [] }).toEqual({ ...before, pipelineStates: [] })
      } finally {
        await w.drop()
      }
    })
  })
}
