#!/usr/bin/env node
// Smoke test of the published artifact (`npm run smoke`, after `npm run build`):
//  1. every `exports` entry points at built files, and every subpath has a source entry;
//  2. `npm pack` contains exactly dist/ + package.json, README.md, CHANGELOG.md, LICENSE;
//  3. the tarball installs into an empty temp project with --omit=dev plus the neverthrow peer;
//     the runtime-neutral subpaths import from Node WITHOUT the optional peers (kysely, ioredis);
//  4. the published declarations type-check in a consumer project (NodeNext, no @types/node);
//  5. with the optional peers added, every subpath imports from Node, and ./saml builds a
//     provider and its SP metadata;
//  6. Deno runs test/deno/smoke_test.mjs against dist/ and imports every neutral subpath of the
//     installed package; with the peers added, Deno imports ./saml and builds its SP metadata;
//  7. examples/hono-deno type-checks with `deno check` and signs a user in under `deno run`
//     (its npm: specifiers resolve from the installed tarball).
// Exits non-zero with a message naming the failed step. Cleans its temp folder.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
/** Subpaths whose code must run without Node built-ins and without optional peers. */
const NEUTRAL = ['.', './ports', './memory', './testing', './dummy', './oidc', './http']
/** Named exports each subpath must have (the rest only needs at least one export). */
const REQUIRED_EXPORTS = {
  '.': ['createAuthPipeline', 'ERROR_CODES', 'authError', 'isAuthError', 'StorageConflictError'],
  './ports': ['StorageConflictError', 'isStorageConflict', 'normalizeEmail', 'NO_FLAGS'],
  './memory': ['createMemoryStorage'],
  './dummy': ['dummyProvider'],
  './testing': ['createRecordingMailer', 'createRecordingSignals', 'fixedClock', 'sequentialIds'],
  './http': ['createSsoHandler', 'ssoHandlerUrls'],
  './saml': ['samlProvider', 'SAML_PRESETS', 'SAML_STEP_IDS'],
}
const ALLOWED_TOP = new Set(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE'])

let step = 'start'
function fail(message) {
  console.error(`\nsmoke: FAILED at "${step}": ${message}`)
  process.exit(1)
}
function run(cmd, args, options = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
  } catch (e) {
    fail(`${cmd} ${args.join(' ')} exited ${e.status}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}
function section(name) {
  step = name
  console.log(`smoke: ${name}`)
}

const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json')

section('exports map points at built files')
for (const key of subpaths) {
  const entry = pkg.exports[key]
  const src = key === '.' ? 'src/index.ts' : `src/${key.slice(2)}/index.ts`
  if (!existsSync(path.join(ROOT, src))) fail(`${key}: source entry ${src} does not exist`)
  for (const condition of ['types', 'default']) {
    const file = entry[condition]
    if (typeof file !== 'string') fail(`${key}: no "${condition}" condition`)
    if (!existsSync(path.join(ROOT, file))) fail(`${key}: ${file} is missing (run npm run build first)`)
  }
}

const tmp = mkdtempSync(path.join(tmpdir(), 'ssoflow-smoke-'))
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }))
const npmFlags = ['--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--loglevel=error']

section('npm pack file list')
const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp, '--loglevel=error'], { cwd: ROOT }))[0]
const tarball = path.join(tmp, packed.filename)
const files = packed.files.map((f) => f.path)
// prisma/: ssoflow's tables as Prisma models, for hosts to copy into their schema (docs/prisma.md).
const PRISMA_MODELS = ['prisma/ssoflow.postgresql.prisma', 'prisma/ssoflow.mysql.prisma', 'prisma/ssoflow.sqlite.prisma']
const stray = files.filter((f) => !f.startsWith('dist/') && !ALLOWED_TOP.has(f) && !PRISMA_MODELS.includes(f))
if (stray.length > 0) fail(`unexpected files in the tarball: ${stray.join(', ')}`)
for (const must of [...ALLOWED_TOP, ...PRISMA_MODELS]) if (!files.includes(must)) fail(`${must} is missing from the tarball`)
if (files.some((f) => f.endsWith('.test.js') || f.includes('/test/'))) fail('tests leaked into the tarball')
console.log(`smoke:   ${files.length} files, ${(packed.size / 1024).toFixed(1)} KiB packed`)

const app = path.join(tmp, 'app')
mkdirSync(app)
writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'smoke-app', private: true, type: 'module' }, null, 2))

section('install tarball --omit=dev with the neverthrow peer only')
const neverthrow = `neverthrow@${pkg.peerDependencies.neverthrow}`
run('npm', ['install', tarball, neverthrow, '--omit=dev', ...npmFlags], { cwd: app })
for (const optional of ['kysely', 'ioredis', 'vitest', 'typescript']) {
  if (existsSync(path.join(app, 'node_modules', optional))) fail(`${optional} was installed but must not be`)
}
const ls = run('npm', ['ls', 'neverthrow', '--all', '--parseable', '--loglevel=error'], { cwd: app }).trim().split('\n').filter(Boolean)
if (ls.length !== 1) fail(`expected exactly one neverthrow copy, found ${ls.length}: ${ls.join(', ')}`)

function importScript(keys) {
  const lines = keys.map((key, i) => {
    const spec = key === '.' ? 'ssoflow' : `ssoflow/${key.slice(2)}`
    const required = JSON.stringify(REQUIRED_EXPORTS[key] ?? [])
    return `{ const m${i} = await import('${spec}'); const names = Object.keys(m${i});
      if (names.length === 0) throw new Error('${spec} has no exports');
      for (const n of ${required}) if (!(n in m${i})) throw new Error('${spec} lacks export ' + n);
      console.log('smoke:   ${spec}: ' + names.length + ' exports') }`
  })
  return lines.join('\n')
}

section('Node imports the neutral subpaths without optional peers')
console.log(run('node', ['--input-type=module', '-e', importScript(NEUTRAL.filter((k) => subpaths.includes(k)))], { cwd: app }).trimEnd())

section('published declarations type-check in a NodeNext consumer without @types/node')
const consumer = NEUTRAL.filter((k) => subpaths.includes(k))
  .map(
    (key, i) =>
      `import * as m${i} from '${key === '.' ? 'ssoflow' : `ssoflow/${key.slice(2)}`}'\nexport const n${i}: number = Object.keys(m${i}).length`,
  )
  .join('\n')
writeFileSync(
  path.join(app, 'consumer.ts'),
  `${consumer}
import { createAuthPipeline, type AuthError, type LoginOutcome } from 'ssoflow'
import { createMemoryStorage } from 'ssoflow/memory'
import { dummyProvider } from 'ssoflow/dummy'
import type { ResultAsync } from 'neverthrow'
export function make(): ReturnType<typeof createAuthPipeline> {
  return createAuthPipeline({
    storage: createMemoryStorage(),
    mailer: { send: async () => {} },
    signals: { emit: async () => {} },
    providers: { dummy: dummyProvider() },
    secret: 'x'.repeat(32),
    urls: {
      baseUrl: 'https://app.example',
      orgLogin: (o) => '/auth/' + o.slug,
      authSettings: (o) => '/settings/' + o.slug + '/auth',
      providerSettings: (o) => '/settings/' + o.slug + '/auth',
      afterLogin: (o) => '/' + o.slug,
      pipelineCallback: () => '/auth/sso',
      verifyAccount: (t) => '/auth/verify/' + t,
    },
  })
}
export type Finish = ResultAsync<LoginOutcome, AuthError>
`,
)
writeFileSync(
  path.join(app, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      types: [],
      skipLibCheck: false,
    },
    files: ['consumer.ts'],
  }),
)
run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app })

section('Deno runs test/deno against dist/ and imports the installed package')
const deno = path.join(ROOT, 'node_modules/.bin/deno')
const denoEnv = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }
console.log(run(deno, ['test', '-A', '--no-check', 'test/deno/smoke_test.mjs'], { cwd: ROOT, env: denoEnv }).trimEnd())
writeFileSync(path.join(app, 'deno_import.mjs'), importScript(NEUTRAL.filter((k) => subpaths.includes(k))))
console.log(run(deno, ['run', '-A', 'deno_import.mjs'], { cwd: app, env: denoEnv }).trimEnd())

section('install the optional peers and import every subpath')
const peers = Object.entries(pkg.peerDependenciesMeta ?? {})
  .filter(([, meta]) => meta.optional)
  .map(([name]) => `${name}@${pkg.peerDependencies[name]}`)
run('npm', ['install', ...peers, '--omit=dev', ...npmFlags], { cwd: app })
console.log(run('node', ['--input-type=module', '-e', importScript(subpaths)], { cwd: app }).trimEnd())

// ./saml is Node-only (node-saml, node:crypto): build a provider and its SP metadata on Node, then
// on Deno through its npm compatibility layer.
const samlScript = `
  const { samlProvider } = await import('ssoflow/saml')
  const provider = samlProvider()
  const md = await provider.serviceMetadata({ organization: { id: 'o', slug: 'acme', name: 'Acme', defaultRole: 'member', require2fa: false }, callbackUrl: 'https://app.example/auth/sso/acme/', config: null })
  if (!md.body.includes('entityID="https://app.example/saml/metadata/acme/"')) throw new Error('unexpected SP metadata')
  console.log('smoke:   ssoflow/saml: provider ' + provider.key + ', SP metadata ' + md.body.length + ' bytes')
`
if (subpaths.includes('./saml')) {
  section('./saml builds SP metadata on Node and on Deno (peers installed)')
  console.log(run('node', ['--input-type=module', '-e', samlScript], { cwd: app }).trimEnd())
  writeFileSync(path.join(app, 'deno_saml.mjs'), samlScript)
  console.log(run(deno, ['run', '-A', 'deno_saml.mjs'], { cwd: app, env: denoEnv }).trimEnd())
}

section('examples/hono-deno: deno check, then deno run --smoke with npm: specifiers (resolved from the installed tarball)')
writeFileSync(path.join(app, 'hono_deno_example.ts'), readFileSync(path.join(ROOT, 'examples/hono-deno/main.ts'), 'utf8'))
run(deno, ['check', '--node-modules-dir=manual', 'hono_deno_example.ts'], { cwd: app, env: denoEnv })
console.log(run(deno, ['run', '-A', '--node-modules-dir=manual', 'hono_deno_example.ts', '--smoke'], { cwd: app, env: denoEnv }).trimEnd())

step = 'done'
console.log(`smoke: OK (${subpaths.length} subpaths)`)
