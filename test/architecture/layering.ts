/**
 * The layering rules of ssoflow (docs/architecture.md, "Import rules"), as a pure checker over
 * source texts so that the rules themselves can be tested against synthetic violations.
 */
import path from 'node:path'
import ts from 'typescript'

/** One import found in a source file. */
export interface FoundImport {
  readonly specifier: string
  /** `type` for `import type` / `export type` / `import('x').T`, else `value`. */
  readonly kind: 'type' | 'value'
  readonly line: number
}

/** A Node global used as a value or type (not as a property name). */
export interface FoundGlobal {
  readonly name: string
  readonly line: number
}

/** Node-only globals that neutral code must not touch. */
export const NODE_GLOBALS: ReadonlySet<string> = new Set([
  'Buffer',
  'process',
  '__dirname',
  '__filename',
  'require',
  'global',
  'setImmediate',
  'module',
])

/**
 * Layers (folders under src/, or `providers/<name>`) that are Node-only and may use Node built-ins
 * and globals; everything else must run on any runtime.
 */
export const NODE_FOLDERS: ReadonlySet<string> = new Set(['kysely', 'drizzle', 'prisma', 'redis', 'node', 'saml', 'providers/saml'])

/** Layers that form the pure core: nothing from the shell, adapters or test kit. */
const PURE_LAYERS: ReadonlySet<string> = new Set(['core', 'model', 'state'])
const FORBIDDEN_FOR_PURE: ReadonlySet<string> = new Set([
  'engine',
  'storage',
  'providers',
  'testing',
  'kysely',
  'drizzle',
  'prisma',
  'redis',
  'memory',
  'dummy',
  'oidc',
  'http',
  'express',
  'fastify',
  'hono',
  'saml',
])

/** Packages that only one adapter folder may import (by layer folder). */
const PACKAGE_OWNERS: Readonly<Record<string, readonly string[]>> = {
  oauth4webapi: ['oidc', 'providers/oidc'],
  // SHA-256, HMAC and HKDF for the state codec and the engine (src/state/crypto.ts only).
  '@noble/hashes': ['state'],
  // ssoflow/prisma runs the Kysely storage over the host's Prisma client (src/prisma/dialect.ts).
  kysely: ['kysely', 'prisma'],
  'drizzle-orm': ['drizzle'],
  ioredis: ['redis'],
  hono: ['hono'],
  express: ['express'],
  fastify: ['fastify'],
  '@node-saml/node-saml': ['saml', 'providers/saml'],
  '@xmldom/xmldom': ['saml', 'providers/saml'],
  'xml-crypto': ['saml', 'providers/saml'],
  'xml-encryption': ['saml', 'providers/saml'],
}

/** Extracts every module specifier (static, re-export, dynamic, import type) and Node global use. */
export function scanSource(fileName: string, text: string): { imports: FoundImport[]; globals: FoundGlobal[] } {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS)
  const imports: FoundImport[] = []
  const globals: FoundGlobal[] = []
  const lineOf = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = node.importClause?.isTypeOnly === true
      imports.push({ specifier: node.moduleSpecifier.text, kind: typeOnly ? 'type' : 'value', line: lineOf(node) })
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      imports.push({ specifier: node.moduleSpecifier.text, kind: node.isTypeOnly ? 'type' : 'value', line: lineOf(node) })
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expr = node.moduleReference.expression
      if (ts.isStringLiteral(expr)) imports.push({ specifier: expr.text, kind: 'value', line: lineOf(node) })
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0]
      if (arg && ts.isStringLiteralLike(arg)) imports.push({ specifier: arg.text, kind: 'value', line: lineOf(node) })
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal))
        imports.push({ specifier: arg.literal.text, kind: 'type', line: lineOf(node) })
    } else if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text) && isGlobalReference(node)) {
      globals.push({ name: node.text, line: lineOf(node) })
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return { imports, globals }
}

/** False for identifiers that are names of properties, members or declarations. */
function isGlobalReference(node: ts.Identifier): boolean {
  const parent = node.parent
  if (!parent) return true
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false
  if (ts.isQualifiedName(parent) && parent.right === node) return false
  if (
    (ts.isPropertyAssignment(parent) ||
      ts.isPropertySignature(parent) ||
      ts.isPropertyDeclaration(parent) ||
      ts.isMethodDeclaration(parent) ||
      ts.isMethodSignature(parent) ||
      ts.isGetAccessor(parent) ||
      ts.isSetAccessor(parent) ||
      ts.isEnumMember(parent)) &&
    parent.name === node
  ) {
    return false
  }
  // A local declaration with that name (a parameter called `process`...) shadows the global.
  if (
    (ts.isVariableDeclaration(parent) || ts.isParameter(parent) || ts.isFunctionDeclaration(parent) || ts.isBindingElement(parent)) &&
    parent.name === node
  ) {
    return false
  }
  if ((ts.isImportSpecifier(parent) || ts.isExportSpecifier(parent)) && (parent.name === node || parent.propertyName === node)) return false
  return true
}

/**
 * The layer of a path relative to the repository root: the first folder under `src/`
 * (`core`, `engine`, `memory`...), `providers/<name>` for provider subfolders, or `(root)`
 * for files directly in `src/` (index.ts, errors.ts).
 */
export function layerOf(relPath: string): string {
  const parts = relPath.split('/')
  if (parts[0] !== 'src') return '(outside)'
  if (parts.length === 2) return '(root)'
  if (parts[1] === 'providers' && parts.length > 3) return `providers/${parts[2]}`
  return parts[1] ?? '(root)'
}

/** The folder (first segment under src/) of a layer: `providers/oidc` -> `providers`. */
function folderOf(layer: string): string {
  return layer.split('/')[0] ?? layer
}

/** Input of {@link checkLayering}: source files by path relative to the repo root. */
export interface SourceFile {
  readonly path: string
  readonly text: string
}

/**
 * Returns one human-readable line per violation (empty when the tree follows the rules).
 * `runtimePackages` are the names a published file may import (dependencies + peers).
 */
export function checkLayering(files: readonly SourceFile[], runtimePackages: ReadonlySet<string>): string[] {
  const violations: string[] = []
  for (const file of files) {
    const from = layerOf(file.path)
    const fromFolder = folderOf(from)
    const nodeAllowed = NODE_FOLDERS.has(from) || NODE_FOLDERS.has(fromFolder)
    const { imports, globals } = scanSource(file.path, file.text)
    const where = (line: number) => `${file.path}:${line}`
    for (const imp of imports) {
      const spec = imp.specifier
      if (spec.startsWith('.')) {
        if (!spec.endsWith('.js')) violations.push(`${where(imp.line)} relative import '${spec}' must end in .js`)
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.path), spec))
        if (!target.startsWith('src/')) {
          violations.push(`${where(imp.line)} imports '${spec}' from outside src/`)
          continue
        }
        const to = layerOf(target)
        const toFolder = folderOf(to)
        if (PURE_LAYERS.has(fromFolder) && FORBIDDEN_FOR_PURE.has(toFolder)) {
          violations.push(`${where(imp.line)} ${fromFolder} must not import ${toFolder} ('${spec}')`)
        }
        if (fromFolder === 'ports' && toFolder !== 'ports' && toFolder !== 'model') {
          violations.push(`${where(imp.line)} ports may import only model ('${spec}')`)
        }
        if (fromFolder === 'net' && toFolder !== 'net' && to !== '(root)') {
          violations.push(`${where(imp.line)} net may import only itself and src/errors.ts ('${spec}')`)
        }
        if (toFolder === 'testing' && fromFolder !== 'testing') {
          violations.push(`${where(imp.line)} only src/testing may import src/testing ('${spec}')`)
        }
        continue
      }
      if (spec.startsWith('node:')) {
        if (!nodeAllowed) violations.push(`${where(imp.line)} ${from} must not import Node built-in '${spec}'`)
        continue
      }
      const pkg = packageName(spec)
      if (!runtimePackages.has(pkg)) {
        violations.push(`${where(imp.line)} imports '${pkg}', which is not a dependency or peer of the package`)
        continue
      }
      const owners = PACKAGE_OWNERS[pkg]
      if (owners && !owners.includes(from) && !owners.includes(fromFolder)) {
        violations.push(`${where(imp.line)} only ${owners.join(', ')} may import '${pkg}'`)
      }
    }
    if (!nodeAllowed) {
      for (const g of globals) violations.push(`${where(g.line)} ${from} uses the Node global '${g.name}'`)
    }
  }
  return violations
}

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? specifier)
}
