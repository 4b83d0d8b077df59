import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')

interface PackageJson {
  exports: Record<string, string | { types: string; default: string }>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  devDependencies: Record<string, string>
  sideEffects: boolean
  type: string
  engines: { node: string }
  files: string[]
}
const pkg = JSON.parse(read('package.json')) as PackageJson
const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json')
const sourceOf = (key: string) => (key === '.' ? 'src/index.ts' : `src/${key.slice(2)}/index.ts`)

describe('package.json exports, tsup entries and TypeDoc entry points agree', () => {
  it('exports the subpaths, each mirroring src/<p>/index.ts', () => {
    expect(subpaths).toEqual([
      '.',
      './ports',
      './memory',
      './testing',
      './dummy',
      './oidc',
      './kysely',
      './drizzle',
      './prisma',
      './redis',
      './node',
      './http',
      './hono',
      './express',
      './fastify',
      './saml',
    ])
    for (const key of subpaths) {
      const dir = key === '.' ? '' : `${key.slice(2)}/`
      expect(pkg.exports[key]).toEqual({ types: `./dist/${dir}index.d.ts`, default: `./dist/${dir}index.js` })
    }
    expect(pkg.exports['./package.json']).toBe('./package.json')
  })

  it.each(subpaths)('%s has a source entry with a @module comment', (key) => {
    const file = sourceOf(key)
    expect(existsSync(path.join(ROOT, file)), `${file} exists`).toBe(true)
    expect(read(file)).toMatch(/@module/)
  })

  it('TypeDoc documents exactly the subpath entries', () => {
    const typedoc = JSON.parse(read('typedoc.json')) as { entryPoints: string[]; treatWarningsAsErrors: boolean }
    expect(typedoc.entryPoints).toEqual(subpaths.map(sourceOf))
    expect(typedoc.treatWarningsAsErrors).toBe(true)
  })

  it('tsup builds exactly the subpath entries', () => {
    const match = /const SUBPATHS = \[([^\]]*)\]/.exec(read('tsup.config.ts'))
    const listed = [...(match?.[1] ?? '').matchAll(/'([a-z]+)'/g)].map((m) => `./${m[1]}`)
    expect(['.', ...listed]).toEqual(subpaths)
  })

  it('is an ESM-only, side-effect-free package with the agreed dependencies and peers', () => {
    expect(pkg.type).toBe('module')
    expect(pkg.sideEffects).toBe(false)
    expect(pkg.engines.node).toBe('>=20')
    expect(pkg.files.sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'dist', 'prisma'])
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@noble/hashes', 'oauth4webapi', 'ulid', 'zod'])
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual([
      '@node-saml/node-saml',
      '@prisma/client',
      '@xmldom/xmldom',
      'drizzle-orm',
      'express',
      'fastify',
      'hono',
      'ioredis',
      'kysely',
      'neverthrow',
      'xml-crypto',
      'xml-encryption',
    ])
    expect(pkg.peerDependencies.kysely).toBe('>=0.28.0 <0.30.0')
    // Drizzle 0.x breaks its API between minors: one minor, the one the tests run.
    expect(pkg.peerDependencies['drizzle-orm']).toBe('>=0.45.0 <0.46.0')
    // The SAML stack is pinned to releases with the 2024-2025 signature-verification fixes
    // (docs/saml.md, "Library versions"): node-saml 5.1.0 (CVE-2025-54369, CVE-2025-54419),
    // xml-crypto 6.1.2 (node-saml 5.1's floor; CVE-2025-29774/29775 fixed in 6.0.1), xmldom 0.8.15.
    expect(pkg.peerDependencies['@node-saml/node-saml']).toBe('^5.1.0')
    expect(pkg.peerDependencies['xml-crypto']).toBe('^6.1.2')
    expect(pkg.peerDependencies['@xmldom/xmldom']).toBe('^0.8.15')
    // ssoflow/prisma types the client structurally; the peer states the supported major.
    expect(pkg.peerDependencies['@prisma/client']).toBe('>=7.0.0 <8.0.0')
    expect(pkg.peerDependenciesMeta).toEqual({
      '@prisma/client': { optional: true },
      'drizzle-orm': { optional: true },
      express: { optional: true },
      fastify: { optional: true },
      hono: { optional: true },
      ioredis: { optional: true },
      kysely: { optional: true },
      '@node-saml/node-saml': { optional: true },
      '@xmldom/xmldom': { optional: true },
      'xml-crypto': { optional: true },
      'xml-encryption': { optional: true },
    })
    // Peers are also dev dependencies so that the repository's own tests install them.
    for (const peer of Object.keys(pkg.peerDependencies)) expect(pkg.devDependencies[peer], peer).toBeDefined()
  })
})
