import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { checkLayering, layerOf, packageName, type SourceFile, scanSource } from './layering.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

function sourceFiles(dir: string): SourceFile[] {
  const out: SourceFile[] = []
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`
    if (entry.isDirectory()) out.push(...sourceFiles(rel))
    else if (entry.name.endsWith('.ts')) out.push({ path: rel, text: readFileSync(path.join(ROOT, rel), 'utf8') })
  }
  return out
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}
const RUNTIME = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])

describe('src/** import layering (the real tree)', () => {
  const files = sourceFiles('src')

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(10)
    expect(files.map((f) => f.path)).toContain('src/errors.ts')
  })

  it('has no layering violations', () => {
    expect(checkLayering(files, RUNTIME)).toEqual([])
  })
})

describe('the checker itself', () => {
  const check = (filePath: string, text: string) =>
    checkLayering(
      [{ path: filePath, text }],
      new Set([
        'zod',
        'neverthrow',
        'ulid',
        'oauth4webapi',
        'kysely',
        'ioredis',
        '@node-saml/node-saml',
        '@xmldom/xmldom',
        'xml-crypto',
        'xml-encryption',
      ]),
    )

  it('classifies layers', () => {
    expect(layerOf('src/errors.ts')).toBe('(root)')
    expect(layerOf('src/core/login/target.ts')).toBe('core')
    expect(layerOf('src/providers/oidc/index.ts')).toBe('providers/oidc')
    expect(layerOf('src/providers/types.ts')).toBe('providers')
    expect(packageName('@scope/pkg/sub')).toBe('@scope/pkg')
    expect(packageName('zod/mini')).toBe('zod')
  })

  it('sees static, re-export, type-only, dynamic and import-type specifiers', () => {
    const { imports } = scanSource(
      'x.ts',
      [
        "import { a } from './a.js'",
        "import type { B } from './b.js'",
        "export * from './c.js'",
        "export type { D } from './d.js'",
        "const e = await import('./e.js')",
        "type F = import('./f.js').F",
      ].join('\n'),
    )
    expect(imports.map((i) => [i.specifier, i.kind])).toEqual([
      ['./a.js', 'value'],
      ['./b.js', 'type'],
      ['./c.js', 'value'],
      ['./d.js', 'type'],
      ['./e.js', 'value'],
      ['./f.js', 'type'],
    ])
  })

  it.each([
    ['src/core/x.ts', "import { createMemoryStorage } from '../memory/index.js'", 'core must not import memory'],
    ['src/core/login/x.ts', "import type { EngineContext } from '../../engine/context.js'", 'core must not import engine'],
    ['src/model/x.ts', "import type { Provider } from '../providers/types.js'", 'model must not import providers'],
    ['src/state/x.ts', "export type { Provider } from '../providers/types.js'", 'state must not import providers'],
    ['src/state/x.ts', "import { Kysely } from '../kysely/index.js'", 'state must not import kysely'],
    ['src/ports/x.ts', "import type { AuthError } from '../errors.js'", 'ports may import only model'],
    ['src/ports/x.ts', "import type { TxEffect } from '../core/effects.js'", 'ports may import only model'],
    ['src/engine/x.ts', "import { fixedClock } from '../testing/fakes.js'", 'only src/testing may import src/testing'],
    ['src/memory/x.ts', "import { makeUser } from '../testing/fixtures.js'", 'only src/testing may import src/testing'],
    ['src/core/x.ts', "import { createHash } from 'node:crypto'", "must not import Node built-in 'node:crypto'"],
    ['src/engine/x.ts', "import { setTimeout } from 'node:timers/promises'", "must not import Node built-in 'node:timers/promises'"],
    ['src/engine/x.ts', "import pg from 'pg'", "imports 'pg', which is not a dependency or peer"],
    ['src/engine/x.ts', "import * as oauth from 'oauth4webapi'", "only oidc, providers/oidc may import 'oauth4webapi'"],
    ['src/memory/x.ts', "import type { Redis } from 'ioredis'", "only redis may import 'ioredis'"],
    ['src/engine/x.ts', "import { SAML } from '@node-saml/node-saml'", "only saml, providers/saml may import '@node-saml/node-saml'"],
    ['src/providers/oidc/x.ts', "import { DOMParser } from '@xmldom/xmldom'", "only saml, providers/saml may import '@xmldom/xmldom'"],
    ['src/providers/oidc/x.ts', "import { X509Certificate } from 'node:crypto'", "must not import Node built-in 'node:crypto'"],
    ['src/providers/x.ts', 'export const b = Buffer.alloc(1)', "uses the Node global 'Buffer'"],
    ['src/core/x.ts', "import { samlProvider } from '../saml/index.js'", 'core must not import saml'],
    ['src/core/x.ts', "import { a } from './a'", "relative import './a' must end in .js"],
    ['src/core/x.ts', 'export const b = Buffer.from("x")', "uses the Node global 'Buffer'"],
    ['src/state/x.ts', 'export const e = process.env.SECRET', "uses the Node global 'process'"],
    ['src/model/x.ts', 'export type B = Buffer', "uses the Node global 'Buffer'"],
    ['src/net/x.ts', "import type { Provider } from '../providers/types.js'", 'net may import only itself and src/errors.ts'],
    ['src/net/x.ts', "import { lookup } from 'node:dns/promises'", "must not import Node built-in 'node:dns/promises'"],
  ])('reports %s: %s', (file, code, message) => {
    const violations = check(file, code)
    expect(violations).toHaveLength(1)
    expect(violations[0]).toContain(message)
  })

  it('reports both rules when pure code imports the test kit', () => {
    expect(check('src/state/x.ts', "export { fixedClock } from '../testing/fakes.js'")).toEqual([
      "src/state/x.ts:1 state must not import testing ('../testing/fakes.js')",
      "src/state/x.ts:1 only src/testing may import src/testing ('../testing/fakes.js')",
    ])
  })

  it.each([
    ['src/core/x.ts', "import type { MailMessage } from '../ports/mailer.js'\nimport { authError } from '../errors.js'"],
    ['src/core/x.ts', "import { ok } from 'neverthrow'\nimport { z } from 'zod'"],
    ['src/ports/x.ts', "import type { User } from '../model/records.js'\nimport { ulid } from 'ulid'"],
    ['src/testing/x.ts', "import { fixedClock } from './fakes.js'\nimport { createMemoryStorage } from '../memory/index.js'"],
    ['src/kysely/x.ts', "import { createHash } from 'node:crypto'\nimport { Kysely } from 'kysely'\nexport const b = Buffer.alloc(1)"],
    ['src/redis/x.ts', "import { Redis } from 'ioredis'\nexport const p = process.env.X"],
    ['src/providers/oidc/x.ts', "import * as oauth from 'oauth4webapi'"],
    ['src/net/x.ts', "import { authError } from '../errors.js'\nimport { classifyAddress } from './address.js'"],
    [
      'src/node/x.ts',
      "import { lookup } from 'node:dns/promises'\nimport { checkUrl } from '../net/policy.js'\nexport const n = Buffer.byteLength('x')",
    ],
    [
      'src/providers/saml/x.ts',
      "import { X509Certificate } from 'node:crypto'\nimport { SAML } from '@node-saml/node-saml'\nimport * as xmlenc from 'xml-encryption'\nexport const b = Buffer.alloc(1)",
    ],
    ['src/saml/x.ts', "import { DOMParser } from '@xmldom/xmldom'\nexport * from '../providers/saml/index.js'"],
    [
      'src/core/x.ts',
      'const o = { process: 1, Buffer: 2 }\nexport const v = o.process + o.Buffer\nexport function f(process: number) { return 1 }',
    ],
  ])('accepts %s: %s', (file, code) => {
    expect(check(file, code)).toEqual([])
  })
})
