// resolveTarget (spec 3.4, N1) as a pure function: the session user, the narrowing of several
// accounts with one address, the trace that explain() shows. Issue 12 item 4 (mutation run).
import { describe, expect, it } from 'vitest'
import { resolveTarget } from '../../src/core/login/target.js'
import type { Member, User } from '../../src/model/records.js'
import type { UserEmailMatch } from '../../src/ports/storage.js'
import { makeMember, makeUser } from '../../src/testing/fixtures.js'
import { ORG } from '../login/harness.js'

const user = (id: string, over: Partial<User> = {}) => makeUser({ id, email: 'shared@corp.example', ...over })
const match = (u: User, isVerified = false, isPrimary = false, email = 'shared@corp.example'): UserEmailMatch => ({
  user: u,
  email: { userId: u.id, email, emailNormalized: email, isVerified, isPrimary },
})
const memberOf = (u: User): Member => makeMember({ id: `m-${u.id}`, organizationId: ORG.id, userId: u.id })
const resolve = (emailMatches: UserEmailMatch[], sessionUser: User | null = null, members = new Map<string, Member | null>()) =>
  resolveTarget({ sessionUser, emailMatches, members })

const a = user('a')
const b = user('b')
const c = user('c')

describe('resolveTarget: the session user', () => {
  it('an active session user is the target whatever the address matches', () => {
    expect(resolve([match(a, true, true)], b)).toEqual({
      user: b,
      via: 'session',
      candidates: [],
      trace: [{ rule: 'target.session-user', detail: 'the signed-in user b is the target (N1)' }],
    })
  })

  it('an inactive session user counts as anonymous, and the trace says so first', () => {
    const gone = user('gone', { isActive: false })
    expect(resolve([match(a)], gone)).toEqual({
      user: a,
      via: 'email',
      candidates: [],
      trace: [
        { rule: 'target.session-user-inactive', detail: 'the session user is inactive: treated as anonymous' },
        { rule: 'target.email-match', detail: 'the email resolves to user a' },
      ],
    })
  })
})

describe('resolveTarget: by address', () => {
  it('no match: no target, one trace entry', () => {
    expect(resolve([])).toEqual({
      user: null,
      via: 'none',
      candidates: [],
      trace: [{ rule: 'target.email-none', detail: 'no active user has this email' }],
    })
  })

  it('an inactive user is never a candidate', () => {
    const gone = user('gone', { isActive: false })
    expect(resolve([match(gone, true, true)])).toMatchObject({ user: null, via: 'none' })
    // and does not make an otherwise single match ambiguous
    expect(resolve([match(gone, true, true), match(a)])).toEqual({
      user: a,
      via: 'email',
      candidates: [],
      trace: [{ rule: 'target.email-match', detail: 'the email resolves to user a' }],
    })
  })

  it('one user with several rows is one candidate; no narrowing step is traced for a single user', () => {
    expect(resolve([match(a), match(a, false, false, 'other@corp.example')]).trace).toEqual([
      { rule: 'target.email-match', detail: 'the email resolves to user a' },
    ])
  })

  it('narrowed by a verified row, which may be any of the user’s rows', () => {
    const r = resolve([match(a, true, false, 'alias@corp.example'), match(b), match(a)])
    expect(r).toEqual({
      user: a,
      via: 'email',
      candidates: [],
      trace: [
        { rule: 'target.email-narrowed.verified', detail: 'several users have this email; narrowed by verified' },
        { rule: 'target.email-match', detail: 'the email resolves to user a' },
      ],
    })
  })

  it('narrowed by membership of this organization when verification does not decide (a null member is no member)', () => {
    const members = new Map<string, Member | null>([
      ['a', null],
      ['b', memberOf(b)],
    ])
    const r = resolve([match(a, true), match(b, true), match(c)], null, members)
    expect(r.user).toBe(b)
    expect(r.trace.map((t) => t.rule)).toEqual(['target.email-narrowed.org-member', 'target.email-match'])
    expect(r.trace[0]?.detail).toBe('several users have this email; narrowed by org-member')
  })

  it('narrowed by the primary address last', () => {
    const members = new Map([
      ['a', memberOf(a)],
      ['b', memberOf(b)],
    ])
    const r = resolve([match(b, true, true), match(a, true, false), match(b, true, false, 'alias@corp.example')], null, members)
    expect(r.user).toBe(b)
    expect(r.trace).toEqual([
      { rule: 'target.email-narrowed.primary', detail: 'several users have this email; narrowed by primary' },
      { rule: 'target.email-match', detail: 'the email resolves to user b' },
    ])
  })

  it('a step that would remove everyone is skipped, the next one decides', () => {
    // nobody verified, nobody a member: primary decides
    const r = resolve([match(a, false, true), match(b, false, false)])
    expect(r.user).toBe(a)
    expect(r.trace.map((t) => t.rule)).toEqual(['target.email-narrowed.primary', 'target.email-match'])
  })

  it('still several: ambiguous, no target, candidates sorted whatever the order of the matches (threat 10)', () => {
    for (const order of [
      [c, a, b],
      [b, c, a],
      [a, b, c],
      [c, b, a],
    ]) {
      const r = resolve(order.map((u) => match(u, true, true)))
      expect(r).toEqual({
        user: null,
        via: 'ambiguous',
        candidates: ['a', 'b', 'c'],
        trace: [{ rule: 'target.email-ambiguous', detail: 'the email matches several users (a, b, c): no target is chosen' }],
      })
    }
  })

  it('narrowing keeps the survivors of each step: two verified of three, then ambiguous between them', () => {
    const r = resolve([match(c, true), match(a), match(b, true)])
    expect(r).toMatchObject({ user: null, via: 'ambiguous', candidates: ['b', 'c'] })
  })
})
