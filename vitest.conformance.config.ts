import { defineConfig } from 'vitest/config';

/**
 * The conformance profiles run against the `livematrix` processes as a vendor or an operator
 * starts them (`npm run test:conformance`, after `npm test`): each test file starts the processes
 * of one role, runs `livematrix-conformance <profile>` as a process and reads its report. Kept
 * out of `npm test` so that both stay within their time budgets.
 */
export default defineConfig({
  test: {
    include: ['cli/conformance/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    // one temporary directory per run, removed at its end (vitest.tmpdir.ts)
    globalSetup: ['./vitest.tmpdir.ts'],
    pool: 'forks',
    // one profile at a time: the device and gateway profiles pace streams at a printer's rate
    // and measure the other side's timing, which a second profile on 2 cores would disturb
    maxWorkers: 1,
    minWorkers: 1,
    reporters: ['default'],
  },
});
