/**
 * A returning login on the memory storage with the dummy provider, in a loop, for profiling:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-login.ts [logins]
 *   node bench/top-functions.mjs /tmp/prof/<file>.cpuprofile
 */
import { dummyProvider } from '../src/dummy/index.js'
import { createAuthPipeline, type SessionInfo } from '../src/index.js'
import { createMemoryStorage } from '../src/memory/index.js'
import { makeIdentity, makeMember, makeOrganization, makeProvider, makeUser } from '../src/testing/index.js'

const LOGINS = Number(process.argv[2] ?? 20_000)
const storage = createMemoryStorage()
storage.seed({
  organizations: [makeOrganization({ id: 'org', slug: 'acme' })],
  providers: [makeProvider({ id: 'ap', organizationId: 'org', providerKey: 'dummy' })],
  users: [makeUser({ id: 'u1', email: 'u1@acme.test' })],
  members: [makeMember({ id: 'm1', organizationId: 'org', userId: 'u1' })],
  identities: [makeIdentity({ id: 'i1', authProviderId: 'ap', userId: 'u1', ident: 'ext-u1' })],
})
const sso = createAuthPipeline({
  storage,
  mailer: { send: async () => {} },
  signals: { emit: async () => {} },
  providers: { dummy: dummyProvider() },
  secret: 'a bench secret of at least thirty-two bytes',
  urls: {
    baseUrl: 'https://app.example.com',
    orgLogin: () => '/',
    authSettings: () => '/',
    providerSettings: () => '/',
    afterLogin: () => '/',
    pipelineCallback: () => 'https://app.example.com/cb',
    verifyAccount: (t) => `https://app.example.com/v/${t}`,
  },
})
const FORM = { id: 'ext-u1', email: 'u1@acme.test', email_verified: 'on' }
const t0 = performance.now()
for (let i = 0; i < LOGINS; i++) {
  const session: SessionInfo = { id: `s-${i}` }
  const begun = await sso.beginLogin({ organizationId: 'org', session })
  if (begun.isErr() || begun.value.kind !== 'render') throw new Error('begin failed')
  const done = await sso.advance({ handle: begun.value.handle, session, request: { method: 'POST', query: {}, form: FORM } })
  if (done.isErr() || done.value.kind !== 'signedIn') throw new Error(`finish failed ${done.isErr() ? done.error.code : done.value.kind}`)
}
const ms = performance.now() - t0
console.log(
  `${LOGINS} returning logins in ${ms.toFixed(0)} ms: ${((LOGINS / ms) * 1000).toFixed(0)} logins/s, ${((ms / LOGINS) * 1000).toFixed(1)} µs each`,
)
