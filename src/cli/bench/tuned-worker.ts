/**
 * The product trade worker (runTradeWorker, unchanged) with some Worker.create options overridden, so the
 * benchmark can measure worker tunings (--worker-tuning) without editing the worker:
 *
 *   tsx src/cli/bench/tuned-worker.ts --worker-tuning '{"maxCachedWorkflows":2000}'
 *
 * Started by the benchmark (stack.ts) in place of src/workers/trade-worker.ts.
 */
import { loadConfig } from '../../config';
import { createLogger } from '../../logging';
import { installTemporalRuntime } from '../../workers/temporal-runtime';
import { runTradeWorker, type TradeWorkerTuning } from '../../workers/trade-worker';
import { pollerShorthands } from './options';

/** The JSON object after --worker-tuning (the benchmark's parsed K=V pairs). */
export function parseTuning(argv: readonly string[]): TradeWorkerTuning {
  const i = argv.indexOf('--worker-tuning');
  const raw = i >= 0 ? argv[i + 1] : undefined;
  if (raw === undefined) throw new Error('usage: tuned-worker.ts --worker-tuning JSON');
  const tuning: unknown = JSON.parse(raw);
  if (typeof tuning !== 'object' || tuning === null || Array.isArray(tuning))
    throw new Error('--worker-tuning needs a JSON object of Worker.create options');
  return pollerShorthands(tuning as Record<string, unknown>) as TradeWorkerTuning;
}

async function main(): Promise<void> {
  const tuning = parseTuning(process.argv.slice(2));
  const cfg = loadConfig();
  const log = createLogger('trade-worker', { level: cfg.logLevel });
  log.info({ tuning }, 'bench: worker options overridden');
  installTemporalRuntime(log, 'INFO', { metricsBindAddress: cfg.ops.sdkMetricsAddress });
  await runTradeWorker(cfg, log, { workerOptions: tuning });
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
