// `allowedOps` is advice for rendering the confirmation page (issue 18, item 5): the engine
// decides again on the facts at POST time, and an op the page did not offer always ends in
// MERGE_FAILED (confirm without proof of ownership) or IDENTITY_CONFLICT (a new account with an
// email an active account has), writing nothing and leaving the page open. The page does not
// depend on whether another account has the address (threat 29), so `newuser` is offered there
// too and refused the same way when one does. An op that is not `confirm` or `newuser` is
// INPUT_INVALID at the boundary. Public API only.
import { describe, expect, it } from 'vitest'
import type { LoginOp, SessionInfo } from '../../src/index.js'
import { makeMember, makeUser } from '../../src/testing/index.js'
import { ACME, dataOf, type Harness, harness } from '../errors/harness.js'

interface PageCase {
  readonly name: string
  readonly page: string
  readonly allowedOps: readonly LoginOp[]
  /** What an op the page did not offer gets. */
  readonly refused: Partial<Record<LoginOp, string>>
  /** An offered op the decision refuses all the same (an account has the address: threat 29). */
  readonly offeredButRefused?: Partial<Record<LoginOp, string>>
  readonly form: Record<string, string>
  readonly session?: (h: Harness) => SessionInfo
  readonly seed?: (h: Harness) => void
}

const CASES: readonly PageCase[] = [
  {
    name: 'anonymous, no account has the email',
    page: 'confirm-identity',
    allowedOps: ['newuser'],
    refused: { confirm: 'MERGE_FAILED' },
    form: { id: 'ext-new', email: 'nobody@corp.example' },
  },
  {
    name: 'anonymous, a password account has the email',
    page: 'confirm-identity',
    allowedOps: ['newuser'],
    refused: { confirm: 'MERGE_FAILED' },
    offeredButRefused: { newuser: 'IDENTITY_CONFLICT' },
    form: { id: 'ext-alice', email: 'alice@corp.example' },
  },
  {
    name: 'anonymous, two accounts share the email (ambiguous)',
    page: 'confirm-identity',
    allowedOps: ['newuser'],
    refused: { confirm: 'MERGE_FAILED' },
    offeredButRefused: { newuser: 'IDENTITY_CONFLICT' },
    form: { id: 'ext-twin', email: 'twin@corp.example' },
    seed: (h) =>
      h.storage.seed({
        users: [makeUser({ id: 'twin-1', email: 'twin@corp.example' }), makeUser({ id: 'twin-2', email: 'twin@corp.example' })],
      }),
  },
  {
    name: 'anonymous, a passwordless account with a verified address (a link is mailed)',
    page: 'confirm-identity',
    allowedOps: ['newuser'],
    refused: { confirm: 'MERGE_FAILED' },
    offeredButRefused: { newuser: 'IDENTITY_CONFLICT' },
    form: { id: 'ext-pat', email: 'pat@corp.example' },
    seed: (h) =>
      h.storage.seed({
        users: [makeUser({ id: 'pat', email: 'pat@corp.example', hasUsablePassword: false })],
        members: [makeMember({ id: 'm-pat', organizationId: ACME, userId: 'pat' })],
      }),
  },
  {
    name: "signed in, the IdP asserts another account's email",
    page: 'confirm-link',
    allowedOps: ['confirm', 'newuser'],
    refused: {},
    offeredButRefused: { newuser: 'IDENTITY_CONFLICT' },
    form: { id: 'ext-m', email: 'alice@corp.example' },
    session: (h) => h.session('member'),
  },
]

describe('allowedOps is advice: an op the page did not offer is refused by the decision itself', () => {
  it.each(CASES)('$name: page $page offers $allowedOps', async (c) => {
    const h = harness()
    c.seed?.(h)
    const session = c.session?.(h) ?? h.session()
    const { handle, step } = await h.login(c.form, session)
    expect(step).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: c.page }, allowedOps: c.allowedOps })
    const ops: LoginOp[] = ['confirm', 'newuser']
    const notOffered = ops.filter((op) => !c.allowedOps.includes(op))
    expect(Object.keys(c.refused).sort()).toEqual([...notOffered].sort())
    const refused = { ...c.refused, ...c.offeredButRefused }
    for (const op of [...notOffered, ...(Object.keys(c.offeredButRefused ?? {}) as LoginOp[])]) {
      const before = dataOf(h.storage.snapshot())
      const mails = h.mailer.sent.length
      const result = await h.sso.finishLogin({ handle, session, op })
      expect(result.isErr() && result.error.code, op).toBe(refused[op])
      expect(dataOf(h.storage.snapshot()), `${op} wrote nothing`).toEqual(before)
      expect(h.mailer.sent.length).toBe(mails)
    }
    // The page is still open: finishing without an op shows it again.
    const again = await h.sso.finishLogin({ handle, session })
    expect(again._unsafeUnwrap()).toMatchObject({ kind: 'confirmationRequired', confirmation: { page: c.page } })
  })

  it('an op that does not exist is INPUT_INVALID at the boundary, naming the field, nothing read', async () => {
    const h = harness()
    const { handle } = await h.login({ id: 'ext-new', email: 'nobody@corp.example' })
    const result = await h.sso.finishLogin({ handle, session: h.session(), op: 'merge' as LoginOp })
    expect(result._unsafeUnwrapErr()).toMatchObject({ code: 'INPUT_INVALID', redirect: 'root', retryable: false, details: { field: 'op' } })
  })
})
