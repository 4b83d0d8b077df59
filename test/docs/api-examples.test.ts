// The TypeDoc reference has an example for every public function (issue 13, item 4): every
// function exported by an entry point of typedoc.json, and every method of AuthPipeline and
// SsoHandler, carries an @example in its TSDoc. examples.test.ts type-checks each of them against
// the package's exports; this file makes sure none is missing as the API grows.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { API_INTERFACES, apiExamples, formatMissing, typedocEntryPoints } from '../../scripts/check-examples.js'

describe('API reference examples', () => {
  it('every exported function of every TypeDoc entry point, and every AuthPipeline and SsoHandler method, has an @example', () => {
    const { checked, missing } = apiExamples()
    expect(missing, `\n${formatMissing(missing)}\nAdd an @example (a \`\`\`ts block that compiles, see docs/examples/prelude.ts).`).toEqual(
      [],
    )
    // The scan really sees the API (a scan that finds nothing would pass the line above).
    expect(checked).toEqual(
      expect.arrayContaining([
        'createAuthPipeline',
        'createSsoHandler',
        'ssoExpress',
        'migrateSsoflow',
        'registerSuite',
        'AuthPipeline.beginLogin',
        'AuthPipeline.runPendingWork',
        'SsoHandler.fetch',
        'SsoHandler.loginUrl',
      ]),
    )
    expect(checked.filter((name) => name.startsWith('AuthPipeline.')).length).toBeGreaterThanOrEqual(14)
    expect(checked.length).toBeGreaterThanOrEqual(97)
  }, 60_000)

  it('reads the entry points from typedoc.json and the interfaces users call', () => {
    expect(typedocEntryPoints()).toEqual(expect.arrayContaining(['src/index.ts', 'src/http/index.ts', 'src/testing/index.ts']))
    expect(API_INTERFACES).toEqual(['AuthPipeline', 'SsoHandler'])
  })

  describe('on a fixture package', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ssoflow-api-examples-'))
    afterAll(() => rmSync(root, { recursive: true, force: true }))
    const write = (file: string, text: string): void => {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
      writeFileSync(path.join(root, file), text)
    }
    write(
      'src/index.ts',
      [
        "export { reexported, reexportedBare } from './inner.js'",
        "export { Outside } from 'some-package'",
        '/**',
        ' * Documented.',
        ' * @example',
        ' * ```ts',
        ' * documented()',
        ' * ```',
        ' */',
        'export function documented(): void {}',
        '/** No example. */',
        'export function bare(): void {}',
        'export const arrow = (): number => 1',
        '/** @internal */',
        'export function hidden(): void {}',
        'export const notAFunction = 42',
        'export interface AuthPipeline {',
        '  /**',
        '   * @example',
        '   * ```ts',
        '   * sso.shown()',
        '   * ```',
        '   */',
        '  shown(): void',
        '  missing(): void',
        '  readonly asProperty: (x: number) => void',
        '  readonly data: string',
        '}',
        'export interface Other { notChecked(): void }',
      ].join('\n'),
    )
    write(
      'src/inner.ts',
      [
        '/**',
        ' * @example',
        ' * ```ts',
        ' * reexported()',
        ' * ```',
        ' */',
        'export function reexported(): void {}',
        'export function reexportedBare(): void {}',
      ].join('\n'),
    )
    write('src/other.ts', "export { documented as again } from './index.js'\nexport function otherBare(): void {}\n")

    it('reports each function and method without an example once, where it is declared, and skips @internal ones', () => {
      const { checked, missing } = apiExamples({ root, entryPoints: ['src/index.ts', 'src/other.ts'] })
      expect(missing.map((m) => `${m.file}:${m.line} ${m.name} (${m.entry})`)).toEqual([
        'src/index.ts:12 bare (src/index.ts)',
        'src/index.ts:13 arrow (src/index.ts)',
        'src/index.ts:25 AuthPipeline.missing (AuthPipeline)',
        'src/index.ts:26 AuthPipeline.asProperty (AuthPipeline)',
        'src/inner.ts:8 reexportedBare (src/index.ts)',
        'src/other.ts:2 otherBare (src/other.ts)',
      ])
      expect(checked).toEqual([
        'AuthPipeline.asProperty',
        'AuthPipeline.missing',
        'AuthPipeline.shown',
        'arrow',
        'bare',
        'documented',
        'otherBare',
        'reexported',
        'reexportedBare',
      ])
    })
  })
})
