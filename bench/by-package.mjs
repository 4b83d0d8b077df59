// Main-thread time of a V8 .cpuprofile by package, each sample charged to the nearest frame of
// its stack that belongs to a named package (native frames, such as a socket write, count for
// the package that called them); idle time left out. Optionally only the samples between two
// seconds of the profile (the measured window of a peer-bench cell):
//   node bench/by-package.mjs FILE [FROM_S TO_S]
import { readFileSync } from 'node:fs'

const [file, fromArg, toArg] = process.argv.slice(2)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const from = Number(fromArg ?? 0)
const to = Number(toArg ?? Number.POSITIVE_INFINITY)
const PACKAGES = [
  ['pg (driver)', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string)\//],
  ['kysely', /node_modules\/kysely\//],
  ['ssoflow', /node_modules\/ssoflow\/|\/src\/(engine|core|state|http|providers|kysely|memory|model)\//],
  ['oauth4webapi', /node_modules\/oauth4webapi\//],
  ['zod', /node_modules\/zod\//],
  ['undici (fetch)', /undici/],
  ['better-auth', /node_modules\/(better-auth|@better-auth|better-call)\//],
  ['harness', /peer-bench[^/]*\/(bench|lib|idp|subjects)|\/pb-[^/]+\/(bench|lib|idp|subjects)/],
]
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const memo = new Map()
function packageOf(id) {
  if (memo.has(id)) return memo.get(id)
  let found = 'other (GC, node internals, native)'
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const hit = PACKAGES.find(([, re]) => re.test(byId.get(cur).callFrame.url))
    if (hit) {
      found = hit[0]
      break
    }
  }
  memo.set(id, found)
  return found
}
const totals = new Map()
let busy = 0
let t = 0
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0
  const s = t / 1e6
  if (s < from || s >= to) continue
  const node = byId.get(profile.samples[i])
  if (node.callFrame.functionName === '(idle)') continue
  const d = profile.timeDeltas[i + 1] ?? 0
  busy += d
  const p = packageOf(node.id)
  totals.set(p, (totals.get(p) ?? 0) + d)
}
console.log(`busy ${(busy / 1000).toFixed(0)} ms`)
for (const [p, v] of [...totals].sort((a, b) => b[1] - a[1]))
  console.log(`${((v / busy) * 100).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(7)} ms  ${p}`)
