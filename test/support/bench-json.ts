import type { BenchJson } from '../../src/cli/bench/report';

/** The machine and stack lines of a bench:trades JSON, as the report and comparison tests build them. */
export const BENCH_MACHINE_AND_SETUP: Pick<BenchJson, 'machine' | 'setup'> = {
  machine: { cores: 2, cpuModel: 'cpu', loadBefore: [1, 1, 1], loadAfter: [1, 1, 1], node: 'v20', memMb: 1 },
  setup: {
    temporal: '127.0.0.1:7233',
    vhost: 'v',
    database: 'd',
    taskQueue: 'q',
    prefetch: 32,
    intakes: 1,
    workers: 1,
    workerTuning: {},
    logLevel: 'info',
    barIntervalMs: 500,
    childEnv: {},
  },
};
