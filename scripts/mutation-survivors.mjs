// Lists the mutants a Stryker run left alive, one line each (file:line:column, status, mutator,
// replacement, the original line), then the counts and score per folder. Issue 12 item 4.
//   node scripts/mutation-survivors.mjs [reports/mutation/mutation.json] [status regex, default Survived|NoCoverage]
import { readFileSync } from 'node:fs'

const [file = 'reports/mutation/mutation.json', statusRe = 'Survived|NoCoverage'] = process.argv.slice(2)
const report = JSON.parse(readFileSync(file, 'utf8'))
const re = new RegExp(statusRe)
const totals = {}
for (const [path, f] of Object.entries(report.files)) {
  const lines = f.source.split('\n')
  const folder = path.split('/').slice(0, 2).join('/')
  for (const m of f.mutants) {
    totals[folder] ??= {}
    const t = totals[folder]
    t[m.status] = (t[m.status] ?? 0) + 1
    if (!re.test(m.status)) continue
    const l = m.location.start.line
    const orig = lines[l - 1].trim().slice(0, 100)
    console.log(
      `${path}:${l}:${m.location.start.column} ${m.status} ${m.mutatorName} => ${JSON.stringify((m.replacement ?? '').slice(0, 80))}  | ${orig}`,
    )
  }
}
for (const [folder, t] of Object.entries(totals)) {
  const killed = (t.Killed ?? 0) + (t.Timeout ?? 0)
  const valid = killed + (t.Survived ?? 0) + (t.NoCoverage ?? 0)
  console.log(folder, JSON.stringify(t), 'score', ((100 * killed) / valid).toFixed(2))
}
