/**
 * Generates the Prisma 7 clients the tests use (`prisma-client` generator, driver adapters, no
 * query engine) from ssoflow's schema files, into .tmp/prisma/<provider>/ (ignored by git, not
 * part of the typecheck). Only npm packages are needed: `prisma generate` needs no engine binary,
 * but the CLI checks for the schema engine before every command and would download it from
 * binaries.prisma.sh, so PRISMA_SCHEMA_ENGINE_BINARY points at a stub when none is installed.
 * Regenerates only when the schema or the Prisma version changed; a lock directory keeps
 * parallel test files from generating the same client at once.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

export type PrismaProvider = 'postgresql' | 'mysql' | 'sqlite'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const require = createRequire(import.meta.url)

function schemaFor(provider: PrismaProvider): string {
  const fragment = readFileSync(join(ROOT, `prisma/ssoflow.${provider}.prisma`), 'utf8')
  return `datasource db {\n  provider = "${provider}"\n}\n\ngenerator client {\n  provider = "prisma-client"\n  output   = "./client"\n}\n\n${fragment}`
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Generates the client for `provider` when it is missing or stale; returns its `client.ts` URL. */
export async function ensurePrismaClient(provider: PrismaProvider): Promise<string> {
  const dir = join(ROOT, '.tmp', 'prisma', provider)
  const cli = require.resolve('prisma/build/index.js')
  const version = (require('prisma/package.json') as { version: string }).version
  const schema = schemaFor(provider)
  const stamp = createHash('sha256').update(`${version}\n${schema}`).digest('hex')
  const stampFile = join(dir, 'stamp')
  const entry = join(dir, 'client', 'client.ts')
  const fresh = () => existsSync(entry) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp
  if (fresh()) return pathToFileURL(entry).href
  mkdirSync(dirname(dir), { recursive: true })
  const lock = `${dir}.lock`
  for (let waited = 0; ; waited += 100) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (waited > 120_000) throw new Error(`prisma generate: ${lock} is held for two minutes; remove it if no test runs`)
      await sleep(100)
    }
  }
  try {
    if (fresh()) return pathToFileURL(entry).href
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'schema.prisma'), schema)
    const env: NodeJS.ProcessEnv = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' }
    if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath
    try {
      await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', join(dir, 'schema.prisma')], { cwd: dir, env })
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? error)
      throw new Error(`prisma generate failed for ${provider}: ${stderr.slice(0, 2000)}`)
    }
    writeFileSync(stampFile, stamp)
    return pathToFileURL(entry).href
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}
