import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // two test files at a time: most of them wait on brokers, sockets and timers rather than
    // compute, and one at a time takes the suite past 5 minutes on a 2-core machine
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
