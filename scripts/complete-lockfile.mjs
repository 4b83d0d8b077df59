#!/usr/bin/env node
// Completes package-lock.json with entries for other platforms' optional binaries.
//
// Why: the registry this project installs from serves only some platform builds of packages
// such as @biomejs/cli-*, @rollup/rollup-* and @deno/* (the linux-x64 ones we use). `npm install`
// then writes a lockfile without the others, and `npm ci` refuses it ("Missing: ... from lock
// file"). An entry that names the version, os, cpu (and libc) with `optional: true` satisfies
// npm ci's check; npm ci never fetches it on a platform it does not match.
//
// Run after every `npm install` that changes the lockfile: `node scripts/complete-lockfile.mjs`.
// `--check` exits 1 (and changes nothing) when entries are missing.
import { readFileSync, writeFileSync } from 'node:fs'

const path = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(path, 'utf8'))
const packages = lock.packages

const OSES = ['darwin', 'win32', 'android', 'freebsd', 'openbsd', 'openharmony', 'sunos', 'aix', 'linux']
const CPUS = [
  ['arm64', 'arm64'],
  ['x64', 'x64'],
  ['ia32', 'ia32'],
  ['loong64', 'loong64'],
  ['ppc64', 'ppc64'],
  ['riscv64', 'riscv64'],
  ['s390x', 's390x'],
  ['arm-', 'arm'],
  ['arm', 'arm'],
]

function platformOf(name) {
  const base = name.split('/').pop()
  const os = OSES.find((o) => base.includes(o))
  const cpu = CPUS.find(([needle]) => `${base}-`.includes(needle))?.[1]
  if (!os || !cpu) return null
  const entry = { os: [os], cpu: [cpu] }
  if (base.includes('musl')) entry.libc = ['musl']
  else if (os === 'linux' && (base.includes('gnu') || base.includes('glibc'))) entry.libc = ['glibc']
  return entry
}

const added = []
for (const [key, pkg] of Object.entries(packages)) {
  if (!key.startsWith('node_modules/') && key !== '') continue
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    // Resolution as npm does it: nested first, then hoisted.
    const nested = `${key ? `${key}/` : ''}node_modules/${dep}`
    if (packages[nested] || packages[`node_modules/${dep}`]) continue
    const platform = platformOf(dep)
    if (!platform) continue // not a platform binary: leave it to npm
    packages[`node_modules/${dep}`] = { version, ...platform, optional: true, ...(pkg.dev ? { dev: true } : {}) }
    added.push(`${dep}@${version}`)
  }
}

if (process.argv.includes('--check')) {
  if (added.length > 0) {
    console.error(`package-lock.json lacks ${added.length} platform entries; run node scripts/complete-lockfile.mjs`)
    process.exit(1)
  }
  process.exit(0)
}
if (added.length > 0) writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`complete-lockfile: added ${added.length} platform entr${added.length === 1 ? 'y' : 'ies'}`)
