// Examples are tests (issue 18): every TypeScript block of README.md and docs/**/*.md and every
// TSDoc @example in src/ type-checks against the package's exports (scripts/check-examples.ts).
// CI also runs the checker against the built package (.ci/run, stage "examples").
import { describe, expect, it } from 'vitest'
import {
  checkBlocks,
  collectExamples,
  type ExampleBlock,
  elide,
  exampleSources,
  formatProblems,
  markdownBlocks,
  tsdocBlocks,
} from '../../scripts/check-examples.js'

/** Broken blocks the checker must report at exactly these places (self-check). */
const BROKEN: readonly ExampleBlock[] = [
  // Forgets the import of createAuthPipeline (the README's OIDC example did).
  {
    file: 'docs/fake.md',
    line: 10,
    lang: 'ts',
    flags: new Set(),
    code: 'const x = 1\nconst sso = createAuthPipeline({ ...ports, providers: {}, secret, urls })',
  },
  // Misses five URL functions (the README's integration did) and is not marked partial.
  {
    file: 'src/fake.ts',
    line: 40,
    lang: 'ts',
    flags: new Set(),
    code: "import { createAuthPipeline } from 'ssoflow'\n\ncreateAuthPipeline({ ...ports, providers: {}, secret, urls: { baseUrl: 'https://a.example', orgLogin: () => '/' } })",
  },
  // A partial block: the elision is fine, a wrong type is still an error.
  {
    file: 'docs/fake.md',
    line: 30,
    lang: 'ts',
    flags: new Set(['partial']),
    code: "import { createAuthPipeline } from 'ssoflow'\ncreateAuthPipeline({ ...ports, secret: 42, ... })",
  },
]

describe('documented examples', () => {
  it('every example block type-checks against the package exports (and broken ones are reported by file and line)', () => {
    const { blocks, problems } = collectExamples()
    expect(blocks.length).toBeGreaterThan(15)
    const checked = checkBlocks([...blocks, ...BROKEN])
    const real = [...problems, ...checked.filter((p) => !p.file.includes('fake'))]
    expect(
      real,
      `\n${formatProblems(real)}\nHost placeholders go in docs/examples/prelude.ts; fragments are fenced \`\`\`ts partial.`,
    ).toEqual([])
    const fake = checked.filter((p) => p.file.includes('fake')).map((p) => `${p.file}:${p.line} ${p.message.split('\n')[0]}`)
    expect(fake).toEqual([
      "docs/fake.md:11 TS2304: Cannot find name 'createAuthPipeline'.",
      expect.stringMatching(/^src\/fake\.ts:42 TS2739: .*authSettings, providerSettings, afterLogin, pipelineCallback, verifyAccount/),
      expect.stringMatching(/^docs\/fake\.md:31 TS2322: Type 'number' is not assignable to type 'string \| Uint8Array/),
    ])
  }, 180_000)

  it('reads README.md, every docs/**/*.md (but docs/api) and every source file, so new docs are checked without registering them', () => {
    const { markdown, sources } = exampleSources()
    expect(markdown).toContain('README.md')
    expect(markdown).toContain('docs/errors.md')
    expect(markdown.every((f) => f === 'README.md' || (f.startsWith('docs/') && !f.startsWith('docs/api/')))).toBe(true)
    expect(sources).toContain('src/engine/create.ts')
  })
})

describe('block extraction', () => {
  it('takes ts/js fences with their flags and the line of the first code line', () => {
    const md = ['# T', '', '```ts partial', 'const a = 1', '```', 'text', '```js', 'let b', '```', '```sh', 'npm test', '```'].join('\n')
    const { blocks, problems } = markdownBlocks('docs/x.md', md)
    expect(problems).toEqual([])
    expect(blocks.map((b) => [b.line, b.lang, [...b.flags], b.code])).toEqual([
      [4, 'ts', ['partial'], 'const a = 1'],
      [8, 'js', [], 'let b'],
    ])
  })

  it('reports an untagged block that looks like TypeScript, and an unknown flag', () => {
    const md = ['```', "import { createAuthPipeline } from 'ssoflow'", '```', '```ts skip', 'x', '```'].join('\n')
    const { problems } = markdownBlocks('docs/x.md', md)
    expect(problems.map((p) => `${p.line} ${p.message}`)).toEqual([
      expect.stringMatching(/^1 an untagged code block that looks like TypeScript/),
      expect.stringMatching(/^4 unknown fence flag "skip"/),
    ])
  })

  it('takes TSDoc @example fences with source line numbers, and reports an @example without a fence', () => {
    const src = [
      '/**',
      ' * Does things.',
      ' *',
      ' * @example',
      ' * ```ts',
      " * import { x } from 'ssoflow'",
      ' * x()',
      ' * ```',
      ' * @group Engine',
      ' */',
      'export function f() {}',
      '/**',
      ' * @example',
      ' * f() // no fence',
      ' */',
    ].join('\n')
    const { blocks, problems } = tsdocBlocks('src/x.ts', src)
    expect(blocks.map((b) => [b.line, b.code])).toEqual([[6, "import { x } from 'ssoflow'\nx()"]])
    expect(problems.map((p) => `${p.line} ${p.message}`)).toEqual(['13 @example without a ```ts code fence'])
  })

  it('elides `...` placeholders without touching spreads or line count', () => {
    expect(elide('f({ ...ports, ..., a })\ng(...)\n[1, ...]\n{ a, ... }')).toBe('f({ ...ports,  a })\ng()\n[1, ]\n{ a,  }')
  })
})
