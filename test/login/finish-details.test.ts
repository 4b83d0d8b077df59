// Issue 12 item 4 (src/engine/login.ts: finish, deliverInBackground): the confirm-identity page's
// rate-limit question and its failure, the mail sent after the response and its failure reported
// to the host's logger (threat 29), and the outcomes' exact shapes.
import { describe, expect, it } from 'vitest'
import { makeUser } from '../../src/testing/fixtures.js'
import { finishErr, finishOk, ident, ORG, PROVIDER, session, start, world } from './harness.js'

// A passwordless account: the anonymous visitor's page for its address mails a link.
const owner = makeUser({ id: 'u', email: 'u@corp.example', hasUsablePassword: false })

describe('the confirm-identity page (finish)', () => {
  it("a failed link mail is reported to the host's logger after the response, with where it happened", async () => {
    const warned: { message: string; fields: Record<string, unknown> | undefined }[] = []
    let reported: () => void = () => {}
    const logged = new Promise<void>((resolve) => {
      reported = resolve
    })
    const w = world({
      users: [owner],
      logger: {
        warn: (message, fields) => {
          warned.push({ message, fields })
          reported()
        },
      },
    })
    const handle = await start(w)
    w.mailer.failNext(1)
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(out).toMatchObject({ kind: 'confirmationRequired', handle, session: [], warnings: [] })
    await logged
    expect(warned).toEqual([
      {
        message: 'ssoflow: an after-commit effect failed after the response',
        fields: expect.objectContaining({ code: 'MAILER_FAILED', organizationId: ORG.id, pipelineId: handle.split('.')[0] }),
      },
    ])
    // The link was stored in the transaction all the same.
    expect(w.storage.snapshot().oneTimeTokens.filter((t) => t.purpose === 'account-verification')).toHaveLength(1)
  })

  it('asks the limiter with no target when no link is due, and a non-string ip as null', async () => {
    const asked: unknown[] = []
    const w = world({
      hooks: {
        isRateLimited: (r) => {
          asked.push(r)
          return false
        },
      },
    })
    const handle = await start(w, { sessionId: 'visitor' })
    const out = await finishOk(w, {
      handle,
      session: session({ id: 'visitor', ip: 42 as unknown as string }),
      identity: ident({ id: 'ext-new', email: 'nobody@corp.example' }),
    })
    expect(out.kind === 'confirmationRequired' && out.confirmation.page).toBe('confirm-identity')
    expect(asked).toEqual([
      {
        action: 'accountVerificationMail',
        organizationId: ORG.id,
        authProviderId: PROVIDER.id,
        targetUserId: null,
        sessionId: 'visitor',
        ip: null,
      },
    ])
  })

  it('a limiter that throws: STORAGE_UNAVAILABLE to the organization login naming the hook, nothing stored or mailed, the state open', async () => {
    let failing = true
    const w = world({
      users: [owner],
      hooks: {
        isRateLimited: () => {
          if (failing) throw new Error('limiter down')
          return false
        },
      },
    })
    const handle = await start(w)
    const before = w.storage.snapshot()
    const e = await finishErr(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(e).toMatchObject({ code: 'STORAGE_UNAVAILABLE', redirect: 'orgLogin', details: { hook: 'isRateLimited' } })
    expect(w.storage.snapshot().oneTimeTokens).toEqual(before.oneTimeTokens)
    expect(w.mailer.sent).toEqual([])
    failing = false
    const out = await finishOk(w, { handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
    expect(out.kind).toBe('confirmationRequired')
    expect(w.mailer.sent).toHaveLength(1)
  })

  it('a limiter that answers true refuses with RATE_LIMITED (host); only true counts', async () => {
    for (const [answer, limited] of [
      [true, true],
      ['yes', false],
      [1, false],
    ] as const) {
      const w = world({ users: [owner], hooks: { isRateLimited: () => answer as unknown as boolean } })
      const handle = await start(w)
      const r = await w.login.finishLogin({ handle, session: session(), identity: ident({ id: 'ext-new', email: 'u@corp.example' }) })
      if (limited) expect(r._unsafeUnwrapErr()).toMatchObject({ code: 'RATE_LIMITED', details: { reason: 'host' } })
      else expect(r._unsafeUnwrap().kind).toBe('confirmationRequired')
      expect(w.mailer.sent).toHaveLength(limited ? 0 : 1)
    }
  })
})
