import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // one temporary directory per run, removed at its end (vitest.tmpdir.ts)
    globalSetup: ['./vitest.tmpdir.ts'],
    pool: 'forks',
    // three test files at a time on a 2-core machine: most of them wait on brokers, processes,
    // sockets and timers (printers consuming at a printer's pace) rather than compute; two at a
    // time takes the suite past 5 minutes since the fleet service's suites came (issue 14)
    maxWorkers: 3,
    minWorkers: 1,
    reporters: ['default'],
  },
});
