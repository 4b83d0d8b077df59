import { existsSync } from 'node:fs'
import { defineConfig } from 'tsup'

/**
 * One entry per subpath export (`.` is `src/index.ts`, `./<p>` is `src/<p>/index.ts`), mirroring
 * package.json `exports`. An entry whose source file does not exist yet is skipped with a warning
 * so that the build keeps working while a subpath is being written; `scripts/smoke.mjs`
 * (run by `npm run smoke`) fails when an exported subpath has no built file.
 */
const SUBPATHS = [
  'ports',
  'memory',
  'testing',
  'dummy',
  'oidc',
  'kysely',
  'drizzle',
  'prisma',
  'redis',
  'node',
  'http',
  'hono',
  'express',
  'fastify',
  'saml',
] as const

const entry: Record<string, string> = { index: 'src/index.ts' }
for (const subpath of SUBPATHS) {
  const file = `src/${subpath}/index.ts`
  if (existsSync(file)) entry[`${subpath}/index`] = file
  else console.warn(`tsup: skipping ./${subpath} (${file} does not exist yet)`)
}

export default defineConfig({
  entry,
  format: ['esm'],
  target: 'es2022',
  platform: 'neutral',
  splitting: true,
  treeshake: true,
  sourcemap: true,
  clean: true,
  // Declarations through tsup's rollup-plugin-dts; needs "ignoreDeprecations": "6.0" in tsconfig.json
  // under TypeScript 6 (guides/toolchain.md).
  dts: true,
  outDir: 'dist',
  // Dependencies and peers are external by default; Node built-ins (only in ./kysely, ./redis, ./node, ./saml)
  // must stay imports as well, because the neutral platform does not know them.
  external: [/^node:/],
})
