// Self time per function (and per file) of a V8 .cpuprofile: node bench/top-functions.mjs FILE [N]
import { readFileSync } from 'node:fs'

const profile = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const top = Number(process.argv[3] ?? 30)
const dt = new Map()
for (let i = 0; i < profile.samples.length; i++)
  dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
const self = new Map()
const byFile = new Map()
let total = 0
for (const node of profile.nodes) {
  const t = dt.get(node.id) ?? 0
  total += t
  const f = node.callFrame
  const file = f.url.replace(/^.*\/(src|node_modules)\//, '$1/')
  const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + t)
  byFile.set(file || '(native)', (byFile.get(file || '(native)') ?? 0) + t)
}
const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)}%`
console.log(`total ${(total / 1000).toFixed(0)} ms`)
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(t), k)
console.log('--- by file')
for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(pct(t), k)
