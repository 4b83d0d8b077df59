// Mutation testing (issue 12 item 4): `npm run mutate`, not in CI (see docs/security.md for the
// time it takes). Scope with MUTATE=glob[,glob] (default: src/core, src/state, src/engine) and
// STRYKER_CONCURRENCY (default 2: the machine is shared). Re-run only what changed with
// `--incremental --incrementalFile reports/stryker-incremental-<folder>.json`; list what survived
// with `node scripts/mutation-survivors.mjs`.
// Check the dry run's "Ran N tests": a mutant that makes a module fail to load (an invalid regex
// literal, e.g. `\v` mutated to `\V` under the `u` flag) makes every suite importing it fail to
// load, and the vitest runner does not report that as a failed dry run (it ran 174 of 661 tests).
// @ts-check
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: (process.env.MUTATE ?? 'src/core/**/*.ts,src/state/**/*.ts,src/engine/**/*.ts').split(','),
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  thresholds: { high: 90, low: 80, break: null },
  timeoutMS: 15_000,
  ignoreStatic: true,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
