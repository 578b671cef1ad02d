import { defineConfig } from 'vitest/config';

/**
 * Three tiers that run separately and together:
 * - unit: pure logic, no servers;
 * - workflow: Temporal's time-skipping test server;
 * - integration: real RabbitMQ, PostgreSQL and the Temporal dev server (started by scripts/test.sh).
 */
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'workflow',
          include: ['test/workflow/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One time-skipping server per file; files in sequence keep 2 cores from thrashing the 5 s start window.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
