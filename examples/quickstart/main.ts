/**
 * ssoflow quickstart (`npm run quickstart`; `npm start` serves the web demo): one organization, an admin who sets up SSO with the dummy
 * provider, then three logins: a new user, the same user returning, and an invited user.
 * Everything runs in memory; mail and signals are printed as they go out. Each step prints its
 * outcome kind and the decision trace (the rules that fired).
 *
 * In your app, import from the package instead of the sources:
 *   import { createAuthPipeline } from 'ssoflow'
 *   import { createMemoryStorage } from 'ssoflow/memory'
 *   import { dummyProvider } from 'ssoflow/dummy'
 */
import { createHash, randomBytes } from 'node:crypto'
import { dummyProvider } from '../../src/dummy/index.js'
import {
  type AuthError,
  createAuthPipeline,
  type LoginOutcome,
  type MailerPort,
  NO_FLAGS,
  type SessionEffect,
  type SessionInfo,
  type SetupOutcome,
  type SignalPort,
  type Step,
  type TraceEntry,
} from '../../src/index.js'
import { createMemoryStorage } from '../../src/memory/index.js'

// ---------------------------------------------------------------- printing helpers
const out = (line = ''): void => {
  process.stdout.write(`${line}\n`)
}
const indent = (text: string, by = 4): string =>
  text
    .split('\n')
    .map((l) => ' '.repeat(by) + l)
    .join('\n')

function printTrace(trace: readonly TraceEntry[]): void {
  if (trace.length === 0) return
  out('    decision trace:')
  trace.forEach((entry, i) => {
    out(`      ${String(i + 1).padStart(2)}. ${entry.rule.padEnd(36)} ${entry.detail}`)
  })
}

function printSession(effects: readonly SessionEffect[]): void {
  if (effects.length === 0) return
  const parts = effects.map((e) => {
    switch (e.type) {
      case 'login':
        return `login(${e.userId})`
      case 'markSsoComplete':
        return `markSsoComplete(${e.organizationId})`
      case 'activeOrg':
        return `activeOrg(${e.slug})`
      case 'pendingTwoFactor':
        return `pendingTwoFactor(${e.userId})`
      default:
        return e.type
    }
  })
  out(`    session changes for the host: ${parts.join(', ')}`)
}

// ---------------------------------------------------------------- ports the host provides
/** A mailer that prints each message as it is sent (after the transaction committed). */
const mailer: MailerPort & { count: number } = {
  count: 0,
  async send(message) {
    mailer.count++
    out(`    ✉  mail "${message.template}" to ${message.to} (idempotency key ${message.idempotencyKey.slice(0, 24)}…)`)
  },
}

/** A signal bus that prints each signal (after commit). */
const signals: SignalPort & { count: number } = {
  count: 0,
  async emit(signal) {
    signals.count++
    out(`    ⚡ signal ${signal.name} ${JSON.stringify(signal.payload)}`)
  },
}

// ---------------------------------------------------------------- the host's data
const ORG_ID = 'org_acme'
const EPOCH = new Date('2026-01-01T00:00:00.000Z')
const storage = createMemoryStorage()

const inviteToken = randomBytes(32).toString('base64url')
const invite = {
  id: 'member_invite_carol',
  organizationId: ORG_ID,
  userId: null,
  email: 'carol@acme.test',
  emailNormalized: 'carol@acme.test',
  role: 'member',
  flags: NO_FLAGS,
  inviteTokenHash: createHash('sha256').update(inviteToken).digest('hex'),
  inviteExpiresAt: new Date(Date.now() + 7 * 24 * 3600 * 1000),
  inviteStatus: 'approved' as const,
  createdAt: EPOCH,
}

storage.seed({
  organizations: [{ id: ORG_ID, slug: 'acme', name: 'Acme Inc.', defaultRole: 'member', require2fa: false }],
  users: [
    {
      id: 'user_alice',
      username: 'alice',
      email: 'alice@acme.test',
      name: 'Alice Admin',
      isActive: true,
      isSuspended: false,
      hasUsablePassword: true,
      has2fa: false,
      createdAt: EPOCH,
    },
  ],
  members: [
    {
      id: 'member_alice',
      organizationId: ORG_ID,
      userId: 'user_alice',
      email: null,
      emailNormalized: null,
      role: 'owner',
      flags: NO_FLAGS,
      inviteTokenHash: null,
      inviteExpiresAt: null,
      inviteStatus: 'approved',
      createdAt: EPOCH,
    },
    invite,
  ],
})

let lastId = 0
const sso = createAuthPipeline({
  storage,
  mailer,
  signals,
  providers: { dummy: dummyProvider() },
  // Readable ids for the printout; the default is ULIDs.
  ids: { next: () => `id${String(++lastId).padStart(3, '0')}` },
  // At least 32 bytes. In production: from your secret store, stable across restarts.
  secret: randomBytes(32),
  urls: {
    baseUrl: 'http://localhost:3000',
    orgLogin: (org) => `/auth/login/${org.slug}/`,
    authSettings: (org) => `/settings/${org.slug}/auth/`,
    providerSettings: (org) => `/settings/${org.slug}/auth/`,
    afterLogin: (org) => `/organizations/${org.slug}/`,
    pipelineCallback: () => '/auth/sso/',
    verifyAccount: (token) => `/auth/verify/${token}/`,
  },
})

// ---------------------------------------------------------------- driving one pipeline
/** What the person in front of the dummy provider's form types in. */
interface FormAnswers {
  readonly id?: string
  readonly email: string
  readonly name: string
  readonly verified: boolean
}

type Final = LoginOutcome | SetupOutcome

/**
 * Plays the browser: renders become form posts (the dummy provider's form), confirmation pages
 * become the user's choice, and the loop stops at a final outcome. Returns null on an error.
 */
async function drive(first: Step, session: SessionInfo, answers: FormAnswers): Promise<Final | null> {
  let step: Step = first
  for (let guard = 0; guard < 10; guard++) {
    switch (step.kind) {
      case 'render': {
        out(`  → render "${step.view}" (the provider's form); the user submits ${answers.email}`)
        const form: Record<string, string> = { email: answers.email, name: answers.name }
        if (answers.id) form.id = answers.id
        if (answers.verified) form.email_verified = 'on'
        const next = await sso.advance({ handle: step.handle, session, request: { method: 'POST', query: {}, form } })
        if (next.isErr()) return printError(next.error)
        step = next.value
        break
      }
      case 'redirect': {
        out(`  → redirect to ${step.url}`)
        const next = await sso.advance({ handle: step.handle, session, request: { method: 'GET', query: {}, form: {} } })
        if (next.isErr()) return printError(next.error)
        step = next.value
        break
      }
      case 'confirmationRequired': {
        const op = step.allowedOps.includes('newuser') ? 'newuser' : 'confirm'
        out(`  → confirmationRequired: page "${step.confirmation.page}", allowed ops [${step.allowedOps.join(', ')}]`)
        printTrace(step.trace)
        out(`    the user clicks "${op}"`)
        const next = await sso.finishLogin({ handle: step.handle, session, op })
        if (next.isErr()) return printError(next.error)
        step = next.value
        break
      }
      case 'twoFactorRequired':
        out(`  → twoFactorRequired for ${step.userId} (the host asks for the second factor, then finishes again)`)
        printTrace(step.trace)
        printSession(step.session)
        return step
      case 'signedIn':
        out(`  → signedIn as ${step.userId} (member ${step.memberId}), redirect ${step.redirect}`)
        out(
          `    created: user=${step.created.user} identity=${step.created.identity} member=${step.created.member}; linked=${step.linked}; invite accepted=${step.acceptedInviteId ?? 'none'}`,
        )
        printTrace(step.trace)
        printSession(step.session)
        return step
      case 'setupComplete':
        out(`  → setupComplete: provider ${step.providerKey} (${step.authProviderId}), redirect ${step.redirect}`)
        out(`    link requests queued: ${step.linkRequestsQueued}`)
        printTrace(step.trace)
        printSession(step.session)
        return step
    }
  }
  out('  ✗ too many steps')
  return null
}

function printError(error: AuthError): null {
  out(`  ✗ ${error.code}: ${error.message} (redirect hint: ${error.redirect})`)
  if (error.details) out(indent(JSON.stringify(error.details), 4))
  process.exitCode = 1
  return null
}

function heading(title: string): void {
  out()
  out(`━━ ${title} ${'━'.repeat(Math.max(3, 72 - title.length))}`)
}

// ---------------------------------------------------------------- the story
out('ssoflow quickstart: memory storage, dummy provider, one organization (Acme Inc.)')

heading('1. Alice (owner) sets up SSO')
{
  const session: SessionInfo = { id: 'browser-alice', userId: 'user_alice' }
  const begun = await sso.beginSetup({ organizationId: ORG_ID, providerKey: 'dummy', session })
  const done = begun.isErr()
    ? printError(begun.error)
    : await drive(begun.value, session, { email: 'alice@acme.test', name: 'Alice Admin', verified: true })
  if (done?.kind !== 'setupComplete') out('  (setup did not complete; the logins below will fail)')
}

heading('2. Dave signs in for the first time (new user)')
let daveId: string | null = null
{
  const session: SessionInfo = { id: 'browser-dave-1' }
  const begun = await sso.beginLogin({ organizationId: ORG_ID, session, next: '/organizations/acme/issues/' })
  const done = begun.isErr()
    ? printError(begun.error)
    : await drive(begun.value, session, { id: 'idp-dave', email: 'dave@acme.test', name: 'Dave', verified: true })
  if (done?.kind === 'signedIn') daveId = done.userId
}

heading('3. Dave comes back the next day (returning user)')
{
  const session: SessionInfo = { id: 'browser-dave-2' }
  const begun = await sso.beginLogin({ organizationId: ORG_ID, session })
  const done = begun.isErr()
    ? printError(begun.error)
    : await drive(begun.value, session, { id: 'idp-dave', email: 'dave@acme.test', name: 'Dave', verified: true })
  if (done?.kind === 'signedIn' && daveId !== null) {
    out(
      `    same user as in step 2: ${done.userId === daveId}; anything created: ${done.created.user || done.created.identity || done.created.member}`,
    )
  }
}

heading('4. Carol follows her invite link, then signs in with SSO (invited user)')
{
  const session: SessionInfo = { id: 'browser-carol', invite: { memberId: invite.id, token: inviteToken, organizationId: ORG_ID } }
  const begun = await sso.beginLogin({ organizationId: ORG_ID, session })
  await (begun.isErr()
    ? printError(begun.error)
    : drive(begun.value, session, { id: 'idp-carol', email: 'carol@acme.test', name: 'Carol', verified: true }))
}

heading('5. The background drain sends the queued link mails and sweeps expired rows')
{
  // In an app: a cron job, pg-boss or BullMQ worker calls this every minute (docs/operations.md).
  const drained = await sso.runPendingWork()
  if (drained.isOk()) {
    const r = drained.value
    out(`  → ${r.pages} page(s), ${r.mailsSent} mail(s) sent, ${r.completed} item(s) done; swept ${r.swept.pipelineStates} state(s)`)
  } else printError(drained.error)
}

heading('What the storage holds now')
{
  const snap = storage.snapshot()
  out(`  users:       ${snap.users.map((u) => `${u.id} <${u.email}>`).join(', ')}`)
  out(
    `  members:     ${snap.members.map((m) => `${m.id}(${m.userId ?? 'pending'}, ${m.role}${m.flags.ssoLinked ? ', sso:linked' : ''})`).join(', ')}`,
  )
  out(`  identities:  ${snap.identities.map((i) => `${i.ident} → ${i.userId}`).join(', ')}`)
  out(`  providers:   ${snap.providers.map((p) => `${p.providerKey} for ${p.organizationId}`).join(', ')}`)
  out(`  audit:       ${snap.audit.map((a) => a.event).join(', ')}`)
  out(`  mails sent:  ${mailer.count}; signals emitted: ${signals.count}`)
}
out()
out(process.exitCode ? 'quickstart finished with errors (see ✗ above)' : 'quickstart finished: all four flows completed')
