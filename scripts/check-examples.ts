/**
 * Examples are tests (issue 18). Extracts every TypeScript/JavaScript code block of README.md,
 * docs/**\/*.md and every TSDoc `@example` in src/, and type-checks each as its own module
 * against the package's own exports (`ssoflow`, `ssoflow/memory`, ...):
 *
 * - `--against src` (default, what `npm test` runs): the subpaths map onto src/<p>/index.ts;
 * - `--against dist` (CI, after `npm run build`): the package resolves itself through
 *   package.json `exports` to the built declarations in dist/, as an installed copy would.
 *
 * Host placeholders (your mailer, your web framework, a session...) come from ONE declared
 * prelude, docs/examples/prelude.ts; a block never gets imports or declarations added behind its
 * back, so an example that forgets `import { createAuthPipeline } from 'ssoflow'` fails.
 *
 * Fences: ```ts / ```typescript / ```js / ```javascript (also mts, mjs). Words after the
 * language are flags:
 * - `partial`: a fragment. A bare `...` stands for elided code (removed before checking) and
 *   "missing property" errors are forgiven; everything written is still checked.
 * - `run`: the block is also executed by test/docs/readme-integration.test.ts.
 * An untagged fence whose content looks like TypeScript (imports ssoflow, calls `sso.` or
 * `createAuthPipeline(`) is an error, and so is an `@example` without a ```ts fence.
 *
 * It also checks that every function exported by an entry point of typedoc.json, and every method
 * of `AuthPipeline` and `SsoHandler`, has an `@example` ({@link apiExamples}).
 *
 * Usage: `npx tsx scripts/check-examples.ts [--against src|dist]`. Prints one line per problem,
 * `file:line:column message`, and exits 1 when there is any.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** One code block taken from a markdown file or a TSDoc comment. */
export interface ExampleBlock {
  /** Path relative to the repository root, with forward slashes. */
  readonly file: string
  /** 1-based line of the block's first code line in `file`. */
  readonly line: number
  readonly lang: 'ts' | 'js'
  readonly flags: ReadonlySet<string>
  readonly code: string
}

/** A problem found in a block, located in the file the block came from. */
export interface ExampleProblem {
  readonly file: string
  readonly line: number
  readonly column: number
  readonly message: string
}

const LANGS: Readonly<Record<string, 'ts' | 'js'>> = {
  ts: 'ts',
  typescript: 'ts',
  mts: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
}
const KNOWN_FLAGS = new Set(['partial', 'run'])
/** An untagged block with one of these looks like TypeScript that escaped the check. */
const LOOKS_LIKE_TS = /from ['"]ssoflow|\bcreateAuthPipeline\(|\bsso\.[a-zA-Z]+\(/
/** Fenced blocks: the opening fence's info string, then the body up to the closing fence. */
const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/

export const PRELUDE = 'docs/examples/prelude.ts'

/** Root of the repository this script lives in. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function toPosix(p: string): string {
  return p.split(path.sep).join('/')
}

function walk(dir: string, keep: (file: string) => boolean, skip: (dir: string) => boolean = () => false): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name)
      if (statSync(full).isDirectory()) return skip(full) ? [] : walk(full, keep, skip)
      return keep(full) ? [full] : []
    })
}

/** The markdown and source files the checker reads: README.md, docs/**\/*.md (not docs/api), src/**\/*.ts. */
export function exampleSources(root: string = ROOT): { markdown: string[]; sources: string[] } {
  const markdown = [
    ...(existsSync(path.join(root, 'README.md')) ? [path.join(root, 'README.md')] : []),
    ...walk(
      path.join(root, 'docs'),
      (f) => f.endsWith('.md'),
      (d) => toPosix(path.relative(root, d)) === 'docs/api',
    ),
  ]
  const sources = walk(path.join(root, 'src'), (f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  return { markdown: markdown.map((f) => toPosix(path.relative(root, f))), sources: sources.map((f) => toPosix(path.relative(root, f))) }
}

/**
 * Fenced blocks of `lines` (already stripped of any comment prefix). `firstLine` is the 1-based
 * line number of `lines[0]` in the file.
 */
function fencedBlocks(
  file: string,
  lines: readonly string[],
  firstLine: number,
  blocks: ExampleBlock[],
  problems: ExampleProblem[],
): number {
  let found = 0
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i] ?? '')
    if (!open) continue
    const [, indent = '', fence = '```', info = '', rest = ''] = open
    let end = i + 1
    while (end < lines.length && !(lines[end] ?? '').trimStart().startsWith(fence)) end++
    const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()))
    const code = body.join('\n')
    const lang = LANGS[info.toLowerCase()]
    const at = { file, line: firstLine + i, column: 1 }
    if (lang) {
      found++
      const flags = new Set(rest.split(/\s+/).filter((w) => w.length > 0))
      for (const flag of flags) {
        if (!KNOWN_FLAGS.has(flag))
          problems.push({ ...at, message: `unknown fence flag "${flag}" (known: ${[...KNOWN_FLAGS].join(', ')})` })
      }
      blocks.push({ file, line: firstLine + i + 1, lang, flags, code })
    } else if (info === '' && LOOKS_LIKE_TS.test(code)) {
      problems.push({
        ...at,
        message: 'an untagged code block that looks like TypeScript: fence it as ```ts (```ts partial for a fragment)',
      })
    }
    i = end
  }
  return found
}

/** Blocks of one markdown text. */
export function markdownBlocks(file: string, text: string): { blocks: ExampleBlock[]; problems: ExampleProblem[] } {
  const blocks: ExampleBlock[] = []
  const problems: ExampleProblem[] = []
  fencedBlocks(file, text.split('\n'), 1, blocks, problems)
  return { blocks, problems }
}

/** Blocks of every `@example` in the TSDoc comments of one source text. */
export function tsdocBlocks(file: string, text: string): { blocks: ExampleBlock[]; problems: ExampleProblem[] } {
  const blocks: ExampleBlock[] = []
  const problems: ExampleProblem[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\/\*\*/.test(lines[i] ?? '')) continue
    let end = i
    while (end < lines.length && !(lines[end] ?? '').includes('*/')) end++
    // Comment body lines without the leading ` * `.
    const body = lines.slice(i, end + 1).map((l) =>
      l
        .replace(/^\s*\/\*\*\s?/, '')
        .replace(/\*\/\s*$/, '')
        .replace(/^\s*\* ?/, ''),
    )
    for (let j = 0; j < body.length; j++) {
      if (!/^@example\b/.test(body[j] ?? '')) continue
      let stop = j + 1
      while (stop < body.length && !/^@[a-zA-Z]/.test(body[stop] ?? '')) stop++
      const found = fencedBlocks(file, body.slice(j + 1, stop), i + j + 2, blocks, problems)
      if (found === 0) problems.push({ file, line: i + j + 1, column: 1, message: '@example without a ```ts code fence' })
      j = stop - 1
    }
    i = end
  }
  return { blocks, problems }
}

/** Every example block of the repository, and the extraction problems. */
export function collectExamples(root: string = ROOT): { blocks: ExampleBlock[]; problems: ExampleProblem[] } {
  const { markdown, sources } = exampleSources(root)
  const blocks: ExampleBlock[] = []
  const problems: ExampleProblem[] = []
  for (const file of markdown) {
    const r = markdownBlocks(file, readFileSync(path.join(root, file), 'utf8'))
    blocks.push(...r.blocks)
    problems.push(...r.problems)
  }
  for (const file of sources) {
    const r = tsdocBlocks(file, readFileSync(path.join(root, file), 'utf8'))
    blocks.push(...r.blocks)
    problems.push(...r.problems)
  }
  return { blocks, problems }
}

/** Removes the `...` elisions of a partial block (same line count, so positions still map). */
export function elide(code: string): string {
  return code.replace(/\.\.\.\s*,/g, '').replace(/\.\.\.(?=\s*[)\]}])/g, '')
}

/** "X is missing the following properties" and friends: forgiven in partial blocks. */
const MISSING_PROPERTY = new Set([2739, 2740, 2741])
const WRAPPERS = new Set([2322, 2345])

function chainCodes(chain: ts.DiagnosticMessageChain | string): number[] {
  if (typeof chain === 'string') return []
  return [chain.code, ...(chain.next ?? []).flatMap(chainCodes)]
}

function forgivenInPartial(d: ts.Diagnostic): boolean {
  const codes = [d.code, ...chainCodes(d.messageText)]
  return codes.some((c) => MISSING_PROPERTY.has(c)) && codes.every((c) => MISSING_PROPERTY.has(c) || WRAPPERS.has(c))
}

/** The virtual file name of a block (under the root, so the package resolves itself). */
function virtualName(root: string, block: ExampleBlock): string {
  const base = `${block.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.line}`
  return path.join(root, '.examples', `${base}.${block.lang === 'ts' ? 'mts' : 'mjs'}`)
}

export interface CheckOptions {
  readonly root?: string
  /** Where `ssoflow` resolves: the sources (default) or the built package in dist/. */
  readonly against?: 'src' | 'dist'
}

/** The subpath exports of package.json, as `ssoflow/<p>` -> `src/<p>/index.ts`. */
function sourcePaths(root: string): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> }
  const paths: Record<string, string[]> = {}
  for (const key of Object.keys(pkg.exports)) {
    if (key === './package.json') continue
    const spec = key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`
    const file = key === '.' ? 'src/index.ts' : `src/${key.slice(2)}/index.ts`
    paths[spec] = [path.join(root, file)]
  }
  return paths
}

/** Type-checks every block of the repository; returns the problems (extraction problems included). */
export function checkExamples(options: CheckOptions = {}): { blocks: ExampleBlock[]; problems: ExampleProblem[] } {
  const { blocks, problems } = collectExamples(options.root ?? ROOT)
  return { blocks, problems: [...problems, ...checkBlocks(blocks, options)] }
}

/** Type-checks `blocks` (with the prelude) in one program; returns their problems. */
export function checkBlocks(blocks: readonly ExampleBlock[], options: CheckOptions = {}): ExampleProblem[] {
  const root = options.root ?? ROOT
  const against = options.against ?? 'src'
  const problems: ExampleProblem[] = []
  if (against === 'dist' && !existsSync(path.join(root, 'dist', 'index.d.ts'))) {
    throw new Error('dist/index.d.ts does not exist: run `npm run build` first')
  }
  const virtual = new Map<string, { block: ExampleBlock; text: string }>()
  for (const block of blocks) {
    const code = block.flags.has('partial') ? elide(block.code) : block.code
    // `export {}` makes every block a module of its own (no clashes between blocks, top-level await).
    virtual.set(virtualName(root, block), { block, text: `${code}\nexport {}\n` })
  }
  const compilerOptions: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    ...(against === 'src' ? { paths: sourcePaths(root) } : {}),
  }
  const host = ts.createCompilerHost(compilerOptions, true)
  const readFile = host.readFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const getSourceFile = host.getSourceFile.bind(host)
  host.readFile = (f) => virtual.get(path.resolve(f))?.text ?? readFile(f)
  host.fileExists = (f) => virtual.has(path.resolve(f)) || fileExists(f)
  host.getSourceFile = (f, lang, onError, create) => {
    const v = virtual.get(path.resolve(f))
    if (v) return ts.createSourceFile(f, v.text, lang, true, v.block.lang === 'ts' ? ts.ScriptKind.TS : ts.ScriptKind.JS)
    return getSourceFile(f, lang, onError, create)
  }
  const prelude = path.join(root, PRELUDE)
  const program = ts.createProgram({ rootNames: [prelude, ...virtual.keys()], options: compilerOptions, host })
  const preludeFile = program.getSourceFile(prelude)
  for (const d of [...program.getSyntacticDiagnostics(preludeFile), ...program.getSemanticDiagnostics(preludeFile)]) {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : { line: 0, character: 0 }
    problems.push({
      file: PRELUDE,
      line: pos.line + 1,
      column: pos.character + 1,
      message: `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    })
  }
  for (const [name, { block }] of virtual) {
    const sf = program.getSourceFile(name)
    if (!sf) continue
    const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]
    for (const d of diagnostics) {
      if (block.flags.has('partial') && forgivenInPartial(d)) continue
      const pos = d.start !== undefined ? sf.getLineAndCharacterOfPosition(d.start) : { line: 0, character: 0 }
      problems.push({
        file: block.file,
        line: block.line + pos.line,
        column: pos.character + 1,
        message: `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      })
    }
  }
  return problems
}

/** One line per problem: `file:line:column message`. */
export function formatProblems(problems: readonly ExampleProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message.replace(/\n/g, '\n    ')}`).join('\n')
}

/** A public function or method of the reference without an `@example` (issue 13: every one has one). */
export interface MissingExample {
  /** The entry point that exports it (`src/http/index.ts`), or the interface it belongs to. */
  readonly entry: string
  /** `createSsoHandler`, or `AuthPipeline.beginLogin` for a method. */
  readonly name: string
  readonly file: string
  readonly line: number
}

/** What {@link apiExamples} looks at: the functions and methods it found and those without an example. */
export interface ApiExamples {
  /** Every function and method checked, as `name` (`AuthPipeline.beginLogin` for methods), sorted. */
  readonly checked: readonly string[]
  readonly missing: readonly MissingExample[]
}

/** The interfaces whose methods users call directly: each method needs an example too. */
export const API_INTERFACES: readonly string[] = ['AuthPipeline', 'SsoHandler']

/** The entry points of typedoc.json (the published reference). */
export function typedocEntryPoints(root: string = ROOT): string[] {
  const config = JSON.parse(readFileSync(path.join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[] }
  return config.entryPoints
}

function hasTag(node: ts.Node, tag: string): boolean {
  return ts.getJSDocTags(node).some((t) => t.tagName.text === tag)
}

/** A function as TypeDoc lists it: a function declaration, or a const initialized with a function. */
function functionDeclarations(symbol: ts.Symbol): ts.Declaration[] {
  return (symbol.declarations ?? []).filter(
    (d) =>
      ts.isFunctionDeclaration(d) ||
      (ts.isVariableDeclaration(d) &&
        d.initializer !== undefined &&
        (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer))),
  )
}

/** A method of an interface: a method signature, or a property typed as a function. */
function isMethodDeclaration(d: ts.Declaration): boolean {
  return (
    ts.isMethodSignature(d) ||
    ts.isMethodDeclaration(d) ||
    (ts.isPropertySignature(d) && d.type !== undefined && ts.isFunctionTypeNode(d.type))
  )
}

/**
 * Checks that every function exported by the entry points (typedoc.json's by default) and every
 * method of {@link API_INTERFACES} has an `@example` in its TSDoc. Reads the sources with the
 * TypeScript compiler API (exports resolved through re-exports; `@internal` ones are skipped, as
 * TypeDoc skips them); no type check, so it takes a few seconds. Whether each example compiles is
 * {@link checkExamples}'s job.
 */
export function apiExamples(
  options: { readonly root?: string; readonly entryPoints?: readonly string[]; readonly interfaces?: readonly string[] } = {},
): ApiExamples {
  const root = options.root ?? ROOT
  const entryPoints = options.entryPoints ?? typedocEntryPoints(root)
  const interfaces = new Set(options.interfaces ?? API_INTERFACES)
  // Only the package's own sources matter: no lib, no @types, and imports of other packages are
  // left unresolved (their declarations are never read), which keeps this a parse-and-bind pass.
  const compilerOptions: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    noEmit: true,
    noLib: true,
    types: [],
  }
  const host = ts.createCompilerHost(compilerOptions, true)
  host.resolveModuleNameLiterals = (literals, containingFile) =>
    literals.map((literal) =>
      literal.text.startsWith('.')
        ? ts.resolveModuleName(literal.text, containingFile, compilerOptions, host)
        : { resolvedModule: undefined },
    )
  const program = ts.createProgram({ rootNames: entryPoints.map((e) => path.join(root, e)), options: compilerOptions, host })
  const checker = program.getTypeChecker()
  const seen = new Set<ts.Node>()
  const checked: string[] = []
  const missing: MissingExample[] = []
  const visit = (entry: string, name: string, declarations: readonly ts.Declaration[]): void => {
    const fresh = declarations.filter((d) => !seen.has(d))
    if (fresh.length === 0 || declarations.some((d) => hasTag(d, 'internal'))) return
    for (const d of fresh) seen.add(d)
    checked.push(name)
    if (declarations.some((d) => hasTag(d, 'example'))) return
    const first = declarations[0] as ts.Declaration
    const sf = first.getSourceFile()
    missing.push({
      entry,
      name,
      file: toPosix(path.relative(root, sf.fileName)),
      line: sf.getLineAndCharacterOfPosition(first.getStart(sf)).line + 1,
    })
  }
  for (const entry of entryPoints) {
    const sf = program.getSourceFile(path.join(root, entry))
    const moduleSymbol = sf && checker.getSymbolAtLocation(sf)
    if (!moduleSymbol) throw new Error(`${entry}: not a module the compiler can read`)
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
      const functions = functionDeclarations(symbol)
      if (functions.length > 0) visit(entry, exported.name, functions)
      if (interfaces.has(exported.name) && symbol.flags & ts.SymbolFlags.Interface) {
        for (const member of checker.getDeclaredTypeOfSymbol(symbol).getProperties()) {
          const methods = (member.declarations ?? []).filter(isMethodDeclaration)
          if (methods.length > 0) visit(exported.name, `${exported.name}.${member.name}`, methods)
        }
      }
    }
  }
  missing.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line)
  return { checked: checked.sort(), missing }
}

/** One line per missing example, `file:line name (entry) has no @example`. */
export function formatMissing(missing: readonly MissingExample[]): string {
  return missing.map((m) => `${m.file}:${m.line} ${m.name} (${m.entry}) has no @example`).join('\n')
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (invokedDirectly) {
  const i = process.argv.indexOf('--against')
  const against = i >= 0 ? process.argv[i + 1] : 'src'
  if (against !== 'src' && against !== 'dist') {
    console.error('usage: tsx scripts/check-examples.ts [--against src|dist]')
    process.exit(2)
  }
  const started = Date.now()
  const { blocks, problems } = checkExamples({ against })
  const api = apiExamples()
  if (api.missing.length > 0) {
    console.error(formatMissing(api.missing))
    console.error(`\n${api.missing.length} public function(s) or method(s) without an @example (every one has one: issue 13).`)
    process.exitCode = 1
  }
  if (problems.length > 0) {
    console.error(formatProblems(problems))
    console.error(
      `\n${problems.length} problem(s) in ${blocks.length} example blocks (against ${against}). Host placeholders go in ${PRELUDE}.`,
    )
    process.exit(1)
  }
  if (api.missing.length > 0) process.exit(1)
  console.log(
    `${blocks.length} example blocks type-check against ${against}; ${api.checked.length} public functions and methods have one (${Date.now() - started} ms)`,
  )
}
