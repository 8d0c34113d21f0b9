import { defineConfig } from 'vitest/config';

// One command runs everything (`npm test`): unit tests next to the code (src/**) and integration tests with real
// peers (test/**). Peer-dependent tests skip with a printed reason unless PARE_REQUIRE_PEERS=1 (see test/helpers/peers.ts).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Each test file's TMPDIR is its own directory, removed afterwards (test/helpers/setup-tmp.ts).
    setupFiles: ['./test/helpers/setup-tmp.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'] } },
    ],
  },
});
