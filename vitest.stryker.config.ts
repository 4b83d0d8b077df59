// The tests Stryker runs against each mutant of src/core, src/state and src/engine: the fast,
// in-memory suites that exercise them (no real databases, browsers or IdP servers). The suites
// that run on every backend (test/helpers/worlds.ts) run on memory only here: the SQL backends
// test the storage, not these folders, and would multiply each mutant's time.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'test/core/**/*.test.ts',
      'test/engine/**/*.test.ts',
      'test/state/**/*.test.ts',
      'test/model/**/*.test.ts',
      'test/login/**/*.test.ts',
      'test/setup/admin.test.ts',
      'test/setup/begin-setup.test.ts',
      'test/setup/deciders.test.ts',
      'test/setup/finish-setup.test.ts',
      'test/setup/domains.test.ts',
      'test/setup/housekeeping.test.ts',
      'test/setup/pending-work.test.ts',
      'test/setup/inline-mail.test.ts',
      'test/setup/provider-races.test.ts',
      'test/setup/finish-setup-edges.test.ts',
      'test/setup/admin-edges.test.ts',
      'test/http/handler.test.ts',
      'test/errors/codes.test.ts',
      'test/errors/config.test.ts',
      'test/providers/steps.test.ts',
      'test/providers/extension-points.test.ts',
      'test/security/s01-pre-hijacking.test.ts',
      'test/security/s02-idp-claims.test.ts',
      'test/security/s03-linking-proof.test.ts',
      'test/security/s04-pipeline-state.test.ts',
      'test/security/s06-email-normalisation.test.ts',
      'test/security/s07-invites.test.ts',
      'test/security/s09-dos-injection.test.ts',
      'test/security/s10-setup.test.ts',
      'test/security/s10b-idp-config-lifecycle-2fa.test.ts',
      'test/security/faults.test.ts',
    ],
    env: { SSOFLOW_TEST_MEMORY_ONLY: '1', SSOFLOW_PROPERTY_RUNS: '0.1' },
    // One module graph per worker, not per test file: the file imports were half of a surviving
    // mutant's time. Safe for mutant switching (the active mutant is read at run time; static
    // mutants are ignored) and the suites pass the same without isolation.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
