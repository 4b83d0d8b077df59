// The tests Stryker runs against each mutant of src/core, src/state and src/engine: the fast,
// in-memory suites that exercise them (no real databases, browsers or IdP servers).
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'test/core/**/*.test.ts',
      'test/state/**/*.test.ts',
      'test/model/**/*.test.ts',
      'test/login/**/*.test.ts',
      'test/setup/admin.test.ts',
      'test/setup/begin-setup.test.ts',
      'test/setup/deciders.test.ts',
      'test/setup/finish-setup.test.ts',
      'test/errors/codes.test.ts',
      'test/errors/config.test.ts',
      'test/providers/steps.test.ts',
      'test/providers/extension-points.test.ts',
      'test/security/s01-pre-hijacking.test.ts',
      'test/security/s02-idp-claims.test.ts',
      'test/security/s04-pipeline-state.test.ts',
      'test/security/s06-email-normalisation.test.ts',
      'test/security/s10-setup.test.ts',
      'test/security/faults.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
