/**
 * The engine floor (issue 12): on the same Temporal server, the least a trade can cost with one workflow per
 * signal and the order placed by an activity, a one-activity workflow (floor-workflow.ts) run by a worker in this
 * process. The report's `floor ratio:` line compares the trade pipeline with it.
 */
import type { Client } from '@temporalio/client';
import { sleep } from '../../lib/sleep';

import { EV, tsMs, type TsLike } from './histories';
import type { BenchOptions } from './options';
import { dist, type Dist } from './stats';

/** The engine floor: a one-activity workflow on the same server, started by a client, run by a TS worker. */
export interface FloorReport {
  burst: { n: number; perS: number };
  /** Start request → the activity's ActivityTaskCompleted (server time), like signal → order submitted. */
  atRate: { n: number; rate: number; latencyMs: Dist };
}

/**
 * Run the floor: a Worker in this process on a private task queue, N workflows started as fast as the client
 * can (window 200) and timed to their results, then workflows at the latency phase's rate.
 */
export async function measureFloor(
  client: Client,
  address: string,
  runId: string,
  opts: BenchOptions,
): Promise<FloorReport> {
  const { NativeConnection, Worker } = await import('@temporalio/worker');
  const connection = await NativeConnection.connect({ address });
  const taskQueue = `bench-floor-${runId}`;
  try {
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowsPath: require.resolve('./floor-workflow'),
      activities: { floorStep: async (n: number) => n },
    });
    return await worker.runUntil(async () => {
      const start = (id: string) =>
        client.workflow.start('oneActivityWorkflow', { taskQueue, workflowId: id, args: [1] });
      // Warm-up (bundle caches, sticky queues), excluded.
      await Promise.all(Array.from({ length: 10 }, (_, i) => start(`floor-${runId}-w${i}`).then((h) => h.result())));
      let next = 0;
      const t0 = Date.now();
      let last = t0;
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          while (next < opts.floor) {
            const h = await start(`floor-${runId}-b${next++}`);
            await h.result();
            last = Math.max(last, Date.now());
          }
        }),
      );
      const burst = { n: opts.floor, perS: opts.floor / Math.max(0.001, (last - t0) / 1000) };
      const n = opts.signals;
      const startedAt: number[] = [];
      const handles: Array<Promise<string>> = [];
      const tr = Date.now();
      for (let i = 0; i < n; i++) {
        const due = tr + (i * 1000) / opts.rate;
        if (due > Date.now()) await sleep(due - Date.now());
        startedAt[i] = Date.now();
        handles.push(start(`floor-${runId}-r${i}`).then(async (h) => (await h.result(), h.workflowId)));
      }
      const ids = await Promise.all(handles);
      const latencies = await Promise.all(
        ids.map(async (id, i) => {
          const h = await client.workflow.getHandle(id).fetchHistory();
          const done = (h.events ?? []).find((e) => e.eventType === EV.ACT_COMPLETED);
          return done ? tsMs(done.eventTime as TsLike) - startedAt[i]! : NaN;
        }),
      );
      return { burst, atRate: { n, rate: opts.rate, latencyMs: dist(latencies) } };
    });
  } finally {
    await connection.close();
  }
}
