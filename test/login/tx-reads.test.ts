// Issue 12 item 4 (src/engine/login.ts, decideInTx): which reads and locks the login transaction
// takes, recorded at the transaction port. The memory store serializes its transactions (its
// `lockEmail` is a no-op), so the locks are checked by the calls made, not by a race: a returning
// user's lock-free read, the guarded refresh and its retry under the identity lock, the address
// lock of a possible sign-up (threats 10, 52), and the adapters' one-round-trip variants
// (`lockIdentityAndEmail`, `readSignUp`).
import { describe, expect, it } from 'vitest'
import { NO_FLAGS } from '../../src/model/records.js'
import { StorageConflictError, type StorageTx } from '../../src/ports/storage.js'
import { makeIdentity, makeMember, makeUser, primaryEmailOf } from '../../src/testing/fixtures.js'
import { finishOk, ident, ORG, PROVIDER, session, start, type World, world } from './harness.js'

const NOW = new Date('2026-03-01T12:00:00.000Z')
const alice = makeUser({ id: 'alice', email: 'alice@corp.example' })
const aliceMember = makeMember({ id: 'm-alice', organizationId: ORG.id, userId: 'alice', flags: { ...NO_FLAGS, ssoLinked: true } })
const stale = makeIdentity({ id: 'ai-alice', authProviderId: PROVIDER.id, userId: 'alice', ident: 'ext-alice' })
const fresh = { ...stale, lastVerified: NOW, lastSynced: NOW }

const RECORDED = [
  'readLinkedIdentity',
  'lockIdentity',
  'lockEmail',
  'updateIdentityIfUnchanged',
  'readSignUp',
  'lockIdentityAndEmail',
] as const

interface Recorder {
  /** One list per transaction: each recorded call as [name, ...string arguments]. */
  readonly txs: string[][][]
}

interface RecordOptions {
  /** The transaction offers lockIdentityAndEmail (lockIdentity then lockEmail). */
  readonly lockIdentityAndEmail?: boolean
  /** The transaction offers readSignUp (the three reads it stands for). */
  readonly readSignUp?: boolean
  /** The first guarded refresh finds the row changed (a concurrent login refreshed it first). */
  readonly loseFirstGuardedWrite?: boolean
  /** The transaction of this number (1 for the first) fails with a uniqueness conflict before any call. */
  readonly conflictInTx?: number
}

function record(w: World, o: RecordOptions = {}): Recorder {
  const txs: string[][][] = []
  // The port the engine calls (the legacy world's wraps the memory store's).
  const port = w.ctx.storage as typeof w.storage
  const original = port.transaction.bind(port)
  let lost = false
  ;(port as { transaction: typeof original }).transaction = (fn) =>
    original((tx) => {
      const calls: string[][] = []
      txs.push(calls)
      if (txs.length === o.conflictInTx) throw new StorageConflictError('user.username')
      const t = Object.create(tx) as Record<string, unknown>
      const log = (name: string, args: unknown[]) => calls.push([name, ...args.map((a) => (typeof a === 'string' ? a : typeof a))])
      for (const name of RECORDED) {
        const f = (tx as unknown as Record<string, unknown>)[name]
        if (typeof f !== 'function') continue
        t[name] = async (...args: unknown[]) => {
          log(name, args)
          if (name === 'updateIdentityIfUnchanged' && o.loseFirstGuardedWrite && !lost) {
            lost = true
            return false
          }
          return (f as (...a: unknown[]) => Promise<unknown>).apply(tx, args)
        }
      }
      if (o.lockIdentityAndEmail) {
        t.lockIdentityAndEmail = async (providerId: string, identId: string, email: string) => {
          log('lockIdentityAndEmail', [providerId, identId, email])
          const row = await tx.lockIdentity(providerId, identId)
          await tx.lockEmail(email)
          return row
        }
      }
      if (o.readSignUp) {
        t.readSignUp = async (providerId: string, identId: string, orgId: string, email: string) => {
          log('readSignUp', [providerId, identId, orgId, email])
          return {
            linked: await tx.getLinkedIdentity(providerId, identId, orgId),
            emailMatches: await tx.findUsersByEmail(email),
            invite: await tx.getInviteByEmail(orgId, email),
          }
        }
      }
      return fn(t as unknown as StorageTx)
    })
  return { txs }
}

describe('the login transaction reads and locks (decideInTx)', () => {
  it('a returning member whose row is fresh: one lock-free read, no identity lock, nothing written', async () => {
    const w = world({ users: [alice], identities: [fresh], members: [aliceMember], policy: { identityRefreshSeconds: 3600 } })
    const handle = await start(w)
    const r = record(w)
    const before = w.storage.snapshot()
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice', memberId: 'm-alice' })
    expect(r.txs).toEqual([[['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id]]])
    expect(w.storage.snapshot().identities).toEqual(before.identities)
  })

  it('a returning member whose row is stale: the refresh is one guarded write on the row as read, no identity lock', async () => {
    const w = world({ users: [alice], identities: [stale], members: [aliceMember] })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice' })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id],
        ['updateIdentityIfUnchanged', 'object', 'object'],
      ],
    ])
    expect(w.storage.snapshot().identities).toEqual([{ ...stale, lastVerified: NOW, lastSynced: NOW }])
  })

  it('a guarded refresh that finds the row changed rolls back and decides again under the identity lock at once', async () => {
    const w = world({ users: [alice], identities: [stale], members: [aliceMember] })
    const handle = await start(w)
    const r = record(w, { loseFirstGuardedWrite: true })
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice' })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id],
        ['updateIdentityIfUnchanged', 'object', 'object'],
      ],
      [['lockIdentity', PROVIDER.id, 'ext-alice']],
    ])
    // Written once, by the locked path (the lost guarded write wrote nothing).
    expect(w.storage.snapshot().identities).toEqual([{ ...stale, lastVerified: NOW, lastSynced: NOW }])
  })

  it('a lost guarded refresh does not use up the retry of a conflict: lost, conflict, then decided under the lock', async () => {
    const w = world({ users: [alice], identities: [stale], members: [aliceMember] })
    const handle = await start(w)
    const r = record(w, { loseFirstGuardedWrite: true, conflictInTx: 2 })
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice' })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id],
        ['updateIdentityIfUnchanged', 'object', 'object'],
      ],
      [],
      [['lockIdentity', PROVIDER.id, 'ext-alice']],
    ])
    // A conflict alone: the retry takes the lock-free read again (only a lost guarded write skips it).
    const w2 = world({ users: [alice], identities: [stale], members: [aliceMember] })
    const handle2 = await start(w2)
    const r2 = record(w2, { conflictInTx: 1 })
    await finishOk(w2, { handle: handle2, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(r2.txs).toEqual([
      [],
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id],
        ['updateIdentityIfUnchanged', 'object', 'object'],
      ],
    ])
  })

  it('a returning member whose membership is missing: not a refresh only, decided under the identity lock', async () => {
    const w = world({ users: [alice], identities: [stale], members: [] })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-alice', email: 'alice@corp.example' }) })
    expect(out).toMatchObject({ kind: 'signedIn', userId: 'alice', created: { member: true } })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-alice', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-alice'],
      ],
    ])
  })

  it('op=newuser: no lock-free read; the identity lock, then the address lock', async () => {
    const w = world()
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'New@Corp.example' }),
      op: 'newuser',
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
    expect(r.txs).toEqual([
      [
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        ['lockEmail', 'new@corp.example'],
      ],
    ])
  })

  it('op=newuser on an adapter with lockIdentityAndEmail and readSignUp: one call each, nothing read or locked again', async () => {
    const w = world()
    const handle = await start(w)
    const r = record(w, { lockIdentityAndEmail: true, readSignUp: true })
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'New@Corp.example' }),
      op: 'newuser',
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true, identity: true, member: true } })
    expect(r.txs).toEqual([
      [
        ['lockIdentityAndEmail', PROVIDER.id, 'ext-new', 'new@corp.example'],
        ['readSignUp', PROVIDER.id, 'ext-new', ORG.id, 'new@corp.example'],
      ],
    ])
  })

  it("policy.newUser 'create', anonymous, unknown identity: the lock-free read finds nothing, then both locks (threats 10, 52)", async () => {
    const w = world({ policy: { newUser: 'create' } })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'new@corp.example', emailVerified: true }),
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true } })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        // Once: gather knows the lock is held (it used to take it again).
        ['lockEmail', 'new@corp.example'],
      ],
    ])
  })

  it("policy.newUser 'create' on an adapter without the lock-free read: gather takes the address lock before the sign-up read", async () => {
    const w = world({ policy: { newUser: 'create' }, legacyTx: true })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'New@corp.example', emailVerified: true }),
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true } })
    expect(r.txs).toEqual([
      // The first transaction finds no tx.pipelineStates and ends at once; the state is claimed.
      [],
      [
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        ['lockEmail', 'new@corp.example'],
      ],
    ])
  })

  it("policy.newUser 'create' without the lock-free read, for a signed-in user: no address lock (no sign-up at once)", async () => {
    const w = world({ users: [alice], policy: { newUser: 'create' }, legacyTx: true })
    const handle = await start(w, { initiatorUserId: 'alice' })
    const r = record(w)
    const out = await finishOk(w, {
      handle,
      session: session({ userId: 'alice' }),
      identity: ident({ id: 'ext-new', email: 'alice@corp.example', emailVerified: true }),
    })
    expect(out).toMatchObject({ kind: 'confirmationRequired' })
    expect(r.txs).toEqual([[], [['lockIdentity', PROVIDER.id, 'ext-new']]])
  })

  it("the anonymous visitor's page for a passwordless account: its address locked (normalized) before its mails are read (threat 28)", async () => {
    const owner = makeUser({ id: 'u', email: 'U@Corp.example', hasUsablePassword: false })
    const w = world({ users: [owner] })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        ['lockEmail', 'u@corp.example'],
      ],
    ])
    // With a password no link can go out: no address lock.
    const w2 = world({ users: [{ ...owner, hasUsablePassword: true }] })
    const handle2 = await start(w2)
    const r2 = record(w2)
    await finishOk(w2, { handle: handle2, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(r2.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
      ],
    ])
  })

  it("policy.newUser 'create', a passwordless account matched through another of its addresses: both addresses locked (threats 28, 52)", async () => {
    const owner = makeUser({ id: 'u', email: 'Primary@Corp.example', hasUsablePassword: false })
    const alias = { userId: 'u', email: 'alias@corp.example', emailNormalized: 'alias@corp.example', isVerified: true, isPrimary: false }
    const w = world({ users: [owner], userEmails: [primaryEmailOf(owner), alias], policy: { newUser: 'create' } })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'alias@corp.example' }) })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        // The sign-up's address, held from here (gather does not ask for it again) ...
        ['lockEmail', 'alias@corp.example'],
        // ... and the account's own address, where its link mails are counted.
        ['lockEmail', 'primary@corp.example'],
      ],
    ])
  })

  it('a signed-in passwordless user attaching an identity: no link can be mailed, so no address lock (threat 28 is the anonymous page)', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    const w = world({ users: [owner] })
    const handle = await start(w, { initiatorUserId: 'u' })
    const r = record(w)
    await w.login.finishLogin({ handle, session: session({ userId: 'u' }), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(r.txs.flat().filter((c) => c[0] === 'lockEmail')).toEqual([])
    expect(r.txs.flat().filter((c) => c[0] === 'lockIdentity')).toEqual([['lockIdentity', PROVIDER.id, 'ext-new']])
  })

  it('op=newuser on the address of a passwordless account: no link can be mailed, so only the sign-up lock of the address', async () => {
    const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })
    const w = world({ users: [owner] })
    const handle = await start(w)
    const r = record(w)
    await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }), op: 'newuser' })
    expect(r.txs).toEqual([
      [
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        ['lockEmail', 'u@corp.example'],
      ],
    ])
  })

  it("policy.newUser 'create' on an adapter with readSignUp: the address locked once, gather told so", async () => {
    const w = world({ policy: { newUser: 'create' } })
    const handle = await start(w)
    const r = record(w, { readSignUp: true })
    const out = await finishOk(w, {
      handle,
      session: session(),
      identity: ident({ id: 'ext-new', email: 'new@corp.example', emailVerified: true }),
    })
    expect(out).toMatchObject({ kind: 'signedIn', created: { user: true } })
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
        ['lockEmail', 'new@corp.example'],
        ['readSignUp', PROVIDER.id, 'ext-new', ORG.id, 'new@corp.example'],
      ],
    ])
  })

  it("policy.newUser 'create', an identity linked to a deactivated account: no sign-up at once, so no address lock", async () => {
    const w = world({ users: [{ ...alice, isActive: false }], identities: [stale], members: [aliceMember], policy: { newUser: 'create' } })
    const handle = await start(w)
    const r = record(w)
    await w.login.finishLogin({
      handle,
      session: session(),
      identity: ident({ id: 'ext-alice', email: 'alice@corp.example', emailVerified: true }),
    })
    expect(r.txs.flat().filter((c) => c[0] === 'lockEmail')).toEqual([])
    expect(r.txs.flat().filter((c) => c[0] === 'lockIdentity')).toEqual([['lockIdentity', PROVIDER.id, 'ext-alice']])
  })

  it("policy.newUser 'confirm', anonymous, unknown identity, no account with the address: no address lock", async () => {
    const w = world({ policy: { newUser: 'confirm' } })
    const handle = await start(w)
    const r = record(w)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'new@corp.example' }) })
    expect(out.kind).toBe('confirmationRequired')
    expect(r.txs).toEqual([
      [
        ['readLinkedIdentity', PROVIDER.id, 'ext-new', ORG.id],
        ['lockIdentity', PROVIDER.id, 'ext-new'],
      ],
    ])
  })
})
