// Deno smoke test of the BUILT package (dist/): the core, memory storage, dummy provider and
// the testing kit run on Deno 2 with no Node built-ins. Run by `npm run smoke` after `npm run
// build` as: npx deno test -A --no-check test/deno/smoke_test.mjs
// Plain JavaScript on purpose: dist/ does not exist before a build, so a .ts file here would
// break `tsc --noEmit` on a clean clone. No assertion library (no network): small helpers below.

import { dummyProvider } from '../../dist/dummy/index.js'
import { createAuthPipeline, ERROR_CODES, isAuthError } from '../../dist/index.js'
import { createMemoryStorage } from '../../dist/memory/index.js'
import {
  createRecordingMailer,
  createRecordingSignals,
  fixedClock,
  makeMember,
  makeOrganization,
  makeUser,
  sequentialIds,
} from '../../dist/testing/index.js'

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`)
}
function assertEquals(actual, expected, message) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`assertion failed: ${message}\n  actual:   ${a}\n  expected: ${e}`)
}

const ORG = 'org1'

function setup() {
  const clock = fixedClock('2026-03-01T12:00:00.000Z')
  const storage = createMemoryStorage({ clock })
  const mailer = createRecordingMailer()
  const signals = createRecordingSignals()
  storage.seed({
    organizations: [makeOrganization({ id: ORG, slug: 'acme' })],
    users: [makeUser({ id: 'admin', email: 'admin@acme.test' })],
    members: [makeMember({ id: 'm-admin', organizationId: ORG, userId: 'admin', role: 'owner' })],
  })
  const sso = createAuthPipeline({
    storage,
    mailer,
    signals,
    providers: { dummy: dummyProvider() },
    secret: 'deno smoke secret, at least thirty-two bytes long',
    clock,
    ids: sequentialIds('d'),
    urls: {
      baseUrl: 'https://app.example',
      orgLogin: (o) => `/auth/${o.slug}/`,
      authSettings: (o) => `/settings/${o.slug}/auth/`,
      providerSettings: (o) => `/settings/${o.slug}/auth/`,
      afterLogin: (o) => `/${o.slug}/`,
      pipelineCallback: () => '/auth/sso/',
      verifyAccount: (t) => `/auth/verify/${t}/`,
    },
  })
  return { sso, storage, mailer, signals }
}

const post = (form) => ({ method: 'POST', query: {}, form })

Deno.test('dist: error codes and guards are plain values', () => {
  assert(Object.keys(ERROR_CODES).length > 10, 'ERROR_CODES has codes')
  assert(!isAuthError({ kind: 'authError', code: 'NOT_A_CODE' }), 'unknown codes are not AuthErrors')
  assert(isAuthError({ kind: 'authError', code: 'STATE_EXPIRED' }), 'known code is an AuthError')
})

Deno.test('dist: a forged handle is refused with STATE_INVALID and writes nothing', async () => {
  const { sso, storage } = setup()
  const before = storage.snapshot()
  const result = await sso.advance({ handle: 'forged.handle', session: { id: 's' }, request: post({ email: 'x@acme.test' }) })
  assert(result.isErr(), 'forged handle is an Err')
  assertEquals(result.error.code, 'STATE_INVALID', 'error code')
  assertEquals(storage.snapshot(), before, 'storage unchanged')
})

Deno.test('dist: setup then a new-user login through the dummy provider', async () => {
  const { sso, storage, signals, mailer } = setup()
  const admin = { id: 'sess-admin', userId: 'admin' }
  const setupStep = await sso.beginSetup({ organizationId: ORG, providerKey: 'dummy', session: admin })
  assert(setupStep.isOk(), `beginSetup ok: ${JSON.stringify(setupStep.isErr() ? setupStep.error : null)}`)
  assertEquals(setupStep.value.kind, 'render', 'setup renders the dummy form')
  const setupDone = await sso.advance({
    handle: setupStep.value.handle,
    session: admin,
    request: post({ email: 'admin@acme.test', email_verified: 'on' }),
  })
  assert(setupDone.isOk(), `setup finished: ${JSON.stringify(setupDone.isErr() ? setupDone.error : null)}`)
  assertEquals(setupDone.value.kind, 'setupComplete', 'setup outcome')
  assertEquals(storage.snapshot().providers.length, 1, 'one provider row')

  const anon = { id: 'sess-new' }
  const loginStep = await sso.beginLogin({ organizationId: ORG, session: anon })
  assert(loginStep.isOk(), 'beginLogin ok')
  let outcome = await sso.advance({
    handle: loginStep.value.handle,
    session: anon,
    request: post({ id: 'ext-1', email: 'new@acme.test', email_verified: 'on', name: 'New' }),
  })
  assert(outcome.isOk(), `login advanced: ${JSON.stringify(outcome.isErr() ? outcome.error : null)}`)
  if (outcome.value.kind === 'confirmationRequired') {
    assert(outcome.value.allowedOps.includes('newuser'), 'new user may be created')
    outcome = await sso.finishLogin({ handle: outcome.value.handle, session: anon, op: 'newuser' })
    assert(outcome.isOk(), 'newuser finished')
  }
  assertEquals(outcome.value.kind, 'signedIn', 'login outcome')
  assertEquals(outcome.value.created, { user: true, identity: true, member: true }, 'created user, identity, member')
  const snap = storage.snapshot()
  assertEquals(snap.users.length, 2, 'two users')
  assertEquals(snap.identities.map((i) => i.ident).sort(), ['admin@acme.test', 'ext-1'], 'two identities')
  assert(
    signals.emitted.some((s) => s.name === 'user_signup'),
    'user_signup emitted after commit',
  )
  assert(
    mailer.sent.some((m) => m.template === 'newUserConfirmation' && m.to === 'new@acme.test'),
    'confirmation mail sent',
  )
})
