// decideNewUser (spec 3.8) through decideLogin, as a pure function: the whole plan (rows, mail,
// signal, decision, trace), the inactive owner's row, the address conflict. Issue 12 item 4.
import { describe, expect, it } from 'vitest'
import { decideLogin } from '../../src/core/login/decide.js'
import type { LoginFacts } from '../../src/core/login/facts.js'
import { mailText } from '../../src/core/mail.js'
import { makeIdentity, makeUser } from '../../src/testing/fixtures.js'
import { ORG, PROVIDER } from '../login/harness.js'
import { facts, identity, NOW } from './login-facts.js'

const newUser = (partial: Partial<LoginFacts> = {}) => decideLogin(facts({ op: 'newuser', ...partial }))

describe('new user: the plan', () => {
  it('user, address, identity and membership rows; the mail and the signal after commit; the trace', () => {
    const plan = newUser({
      identity: identity('Ada@Corp.example', true, { name: 'Ada L', data: { k: 'v' } }),
      pipeline: { id: 'p1', referrer: 'landing', verificationSentAt: null, initiatorUserId: null },
    })
    const user = {
      id: 'n1',
      username: '0'.repeat(32),
      email: 'Ada@Corp.example',
      name: 'Ada L',
      isActive: true,
      isSuspended: false,
      hasUsablePassword: false,
      has2fa: false,
      createdAt: NOW,
    }
    expect(plan.txEffects.slice(0, 2)).toEqual([
      {
        type: 'user.create',
        user,
        email: { userId: 'n1', email: 'Ada@Corp.example', emailNormalized: 'ada@corp.example', isVerified: false, isPrimary: true },
      },
      {
        type: 'identity.create',
        identity: {
          id: 'n2',
          authProviderId: PROVIDER.id,
          userId: 'n1',
          ident: 'ext-ada',
          data: { k: 'v' },
          lastVerified: NOW,
          lastSynced: NOW,
          createdAt: NOW,
        },
      },
    ])
    expect(plan.txEffects.slice(2).map((e) => e.type)).toEqual(['member.create', 'audit.record'])
    expect(plan.afterCommit).toEqual([
      {
        type: 'mail.send',
        message: {
          template: 'newUserConfirmation',
          to: 'Ada@Corp.example',
          data: { userName: 'Ada L', organizationName: ORG.name, providerName: 'IdP' },
          idempotencyKey: 'new-user-confirmation:n1',
        },
      },
      {
        type: 'signal.emit',
        signal: { name: 'user_signup', payload: { userId: 'n1', source: 'sso', provider: 'dummy', referrer: 'landing' } },
      },
    ])
    expect(plan.decision).toEqual({
      kind: 'signIn',
      path: 'newUser',
      userId: 'n1',
      memberId: 'n3',
      created: { user: true, identity: true, member: true },
      linked: true,
      acceptedInviteId: null,
      consumesVerification: false,
      claim: null,
    })
    expect(plan.trace.slice(-2)).toEqual([
      { rule: 'newuser.create', detail: 'new user n1 without a password, linked to the identity' },
      { rule: 'membership.new', detail: 'new membership with the org default role member' },
    ])
  })

  it('a nameless identity: the mail greets the address (made inert); no referrer: in-app', () => {
    const plan = newUser({ identity: identity('ada@corp.example', true, { name: '' }) })
    expect(plan.afterCommit[0]).toMatchObject({ message: { data: { userName: mailText('ada@corp.example') } } })
    expect(plan.afterCommit[1]).toMatchObject({ signal: { payload: { referrer: 'in-app' } } })
  })

  it('the row of an inactive owner moves to the new user (N8): no identity created, the trace names both', () => {
    const ghost = makeUser({ id: 'ghost', isActive: false })
    const row = makeIdentity({ id: 'ai-ghost', authProviderId: PROVIDER.id, userId: 'ghost', ident: 'legacy', data: { old: 1 } })
    const plan = newUser({ linked: { identity: row, user: ghost, via: 'legacy' } })
    expect(plan.txEffects[1]).toEqual({
      type: 'identity.update',
      id: 'ai-ghost',
      patch: { userId: 'n1', ident: 'ext-ada', data: facts().identity.data, lastVerified: NOW, lastSynced: NOW },
    })
    expect(plan.txEffects.map((e) => e.type)).toEqual(['user.create', 'identity.update', 'member.create', 'audit.record'])
    expect(plan.decision).toMatchObject({ memberId: 'n2', created: { user: true, identity: false, member: true } })
    expect(plan.trace).toContainEqual({
      rule: 'newuser.claims-inactive-identity',
      detail: 'identity ai-ghost of inactive user ghost moves to the new user',
    })
  })

  it('an active account has the address: IDENTITY_CONFLICT, the pipeline stays, nothing written (N4)', () => {
    const ada = makeUser({ id: 'ada', email: 'ada@corp.example' })
    const email = { userId: 'ada', email: 'ada@corp.example', emailNormalized: 'ada@corp.example', isVerified: true, isPrimary: true }
    const plan = newUser({ emailMatches: [{ user: ada, email }] })
    expect(plan.decision).toMatchObject({ kind: 'reject', keepState: true, error: { code: 'IDENTITY_CONFLICT' } })
    expect(plan.txEffects).toEqual([])
    expect(plan.afterCommit).toEqual([])
    expect(plan.trace.at(-1)).toEqual({
      rule: 'newuser.email-conflict',
      detail: 'an active account already has this email: sign in to link it instead (N4)',
    })
  })
})
