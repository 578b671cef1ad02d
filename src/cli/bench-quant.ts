/**
 * `npm run bench:quant`: the quant's throughput, measured three ways on the real data in ../shared/data.
 *
 *  1. in-process: every bar of both daily series and the index-future minute series (39,937 bars) through the
 *     quant core as the worker runs it (SignalEngineSet over strategySet: partial/duplicate checks, per-series
 *     state, every signal with its id and contract validation) with EVERY strategy on at once; best of 5 rounds,
 *     fresh engines each round. Strategy-only throughput (each strategy on its own instances) is printed beside it.
 *  2. backtest: both daily series (9,048 bars) with the MA crossover through the backtester (strategy, risk engine,
 *     simulated exchange with fees and fills, per-bar accounting audit); best of 10 runs after a warm-up.
 *  3. live: the futures minute bars published to RabbitMQ (private exchanges and queues on the local broker),
 *     consumed by startQuant with every strategy on, signals published with confirms: bars/s from the first
 *     publish to the last bar acked.
 *
 * Output ends with `in-process: <N> bars/s`, `backtest: <N> ms for <B> bars` and `live: <N> bars/s`.
 * `--skip-live` skips part 3 (no broker needed).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readBarsCsvSync } from '../adapters/marketdata/csv';
import {
  ConfirmPublisher,
  RabbitConnection,
  assertConsumerQueue,
  barRoutingKey,
  dlqName,
  withChannel,
} from '../adapters/rabbitmq';
import { sleep } from '../lib/sleep';
import { loadConfig } from '../config';
import { BarSchema, type Bar, type OhlcvBar } from '../contracts/bar';
import { barMessageId } from '../contracts/ids';
import { STRATEGY_NAMES } from '../contracts/strategies';
import { mergeSeries, runBacktest } from '../domain/backtest';
import { SignalEngineSet, strategyFactory, strategySet } from '../domain/strategies';
import { createLogger } from '../logging';
import { startQuant } from '../workers/quant';

const DATA = path.resolve(__dirname, '../../../shared/data');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function toBar(b: OhlcvBar, interval: string): Bar {
  const message_id = barMessageId('bench', b.symbol, interval, b.timestamp);
  return BarSchema.parse({ ...b, interval, message_id, source: 'bench', correlation_id: `corr-${message_id}` });
}

function load() {
  const nvda = readBarsCsvSync(path.join(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' });
  const orcl = readBarsCsvSync(path.join(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' });
  const fut = readBarsCsvSync(path.join(DATA, 'index-futures-2006-1min.csv'), { symbol: 'ES' });
  return { nvda, orcl, fut };
}

/** CPU time of this process (user + system), ms: what a round costs whatever else the machine is running. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function inProcess(bars: Bar[]): { engine: number; engineCpu: number; strategies: number; signals: number } {
  let bestEngine = Infinity;
  let bestEngineCpu = Infinity;
  let bestStrat = Infinity;
  let signals = 0;
  for (let round = 0; round < 5; round++) {
    const engine = new SignalEngineSet(strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n))));
    let t0 = performance.now();
    const c0 = cpuMs();
    signals = 0;
    // Indexed loops: an iterator per bar and a result object per outcome were the harness's own garbage, not
    // the quant's work (the engine and its outcomes are the same).
    for (let i = 0; i < bars.length; i++) {
      const outs = engine.process(bars[i]!);
      for (let j = 0; j < outs.length; j++) if (outs[j]!.kind === 'signal') signals++;
    }
    bestEngine = Math.min(bestEngine, performance.now() - t0);
    bestEngineCpu = Math.min(bestEngineCpu, cpuMs() - c0);
    const perSymbol = new Map<string, ReturnType<ReturnType<typeof strategyFactory>>[]>();
    t0 = performance.now();
    for (const bar of bars) {
      let s = perSymbol.get(bar.symbol);
      if (!s) perSymbol.set(bar.symbol, (s = STRATEGY_NAMES.map((n) => strategyFactory(n)())));
      for (const x of s) x.onBar(bar);
    }
    bestStrat = Math.min(bestStrat, performance.now() - t0);
  }
  return {
    engine: bars.length / (bestEngine / 1000),
    engineCpu: bars.length / (bestEngineCpu / 1000),
    strategies: bars.length / (bestStrat / 1000),
    signals,
  };
}

function backtest(bars: OhlcvBar[]): { ms: number; cpuMs: number; trades: number; signals: number } {
  const factory = strategyFactory('sma-cross');
  runBacktest(bars, { strategy: factory }); // warm-up (JIT)
  let best = Infinity;
  let bestCpu = Infinity;
  let trades = 0;
  let signals = 0;
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    const r = runBacktest(bars, { strategy: factory });
    best = Math.min(best, performance.now() - t0);
    bestCpu = Math.min(bestCpu, cpuMs() - c0);
    trades = r.trades.length;
    signals = r.signals.length;
  }
  return { ms: best, cpuMs: bestCpu, trades, signals };
}

async function live(bars: Bar[]): Promise<{ barsPerSec: number; signals: number }> {
  const cfg = loadConfig();
  const log = createLogger('bench-quant', { level: 'warn' });
  const id = randomBytes(4).toString('hex');
  const BARS_EX = `bench.bars.${id}`;
  const SIGNALS_EX = `bench.signals.${id}`;
  const BARS_Q = `bench.quant.bars.${id}`;
  const SIGNALS_Q = `bench.quant.signals.${id}`;
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `bench-quant-${id}`,
    logger: log,
    setup: (conn) =>
      withChannel(conn, async (ch) => {
        await ch.assertExchange(BARS_EX, 'topic', { durable: false, autoDelete: false });
        await ch.assertExchange(SIGNALS_EX, 'topic', { durable: false, autoDelete: false });
        await assertConsumerQueue(ch, { queue: BARS_Q, exchange: BARS_EX, bindingKeys: ['bars.#'] });
        await assertConsumerQueue(ch, { queue: SIGNALS_Q, exchange: SIGNALS_EX, bindingKeys: ['signal.#'] });
      }),
    maxInitialAttempts: 5,
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  await rabbit.start();
  const quant = startQuant({
    rabbit,
    publisher,
    strategies: STRATEGY_NAMES.map((n) => strategyFactory(n)),
    logger: log,
    queue: BARS_Q,
    signalsExchange: SIGNALS_EX,
    prefetch: 200,
  });
  try {
    await quant.consumer.ready();
    const t0 = performance.now();
    const window = 500;
    const inflight: Promise<void>[] = [];
    for (const bar of bars) {
      inflight.push(
        publisher.publishJson(BARS_EX, barRoutingKey(bar.interval, bar.symbol), bar, {
          messageId: bar.message_id,
          correlationId: bar.correlation_id,
        }),
      );
      if (inflight.length >= window) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
    const deadline = Date.now() + 600_000;
    while (quant.consumer.stats.acked < bars.length && Date.now() < deadline) await sleep(20);
    const secs = (performance.now() - t0) / 1000;
    if (quant.consumer.stats.acked < bars.length) throw new Error(`only ${quant.consumer.stats.acked} bars acked`);
    return { barsPerSec: bars.length / secs, signals: quant.stats.signals };
  } finally {
    await quant.stop();
    if (rabbit.connection) {
      await withChannel(rabbit.connection, async (ch) => {
        for (const q of [BARS_Q, SIGNALS_Q]) {
          await ch.deleteQueue(q);
          await ch.deleteQueue(dlqName(q));
        }
        await ch.deleteExchange(BARS_EX);
        await ch.deleteExchange(SIGNALS_EX);
      });
    }
    await publisher.close();
    await rabbit.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'skip-live': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run bench:quant [-- --skip-live]\n\nQuant throughput: in-process (every strategy), backtest wall time, live (RabbitMQ). See docs/quant.md.\n',
    );
    return;
  }
  const { nvda, orcl, fut } = load();
  const daily = mergeSeries([nvda, orcl]);
  const all = [...mergeSeries([nvda, orcl]).map((b) => toBar(b, '1d')), ...fut.map((b) => toBar(b, '1m'))];
  console.log(`strategies: ${STRATEGY_NAMES.join(', ')}`);
  const ip = inProcess(all);
  console.log(
    `in-process: ${all.length} bars x ${STRATEGY_NAMES.length} strategies, ${ip.signals} signals; strategies alone ${fmt(ip.strategies)} bars/s; ` +
      `CPU time alone ${fmt(ip.engineCpu)} bars/s (the figure with the machine's other load taken out)`,
  );
  const bt = backtest(daily);
  console.log(
    `backtest: sma-cross over NVDA+ORCL daily, ${bt.signals} signals through the risk engine, ${bt.trades} fills, best of 10; ` +
      `CPU time ${bt.cpuMs.toFixed(1)} ms`,
  );
  let liveLine = 'live: skipped (--skip-live)';
  if (!values['skip-live']) {
    const l = await live(fut.map((b) => toBar(b, '1m')));
    console.log(
      `live: ${fut.length} minute bars through RabbitMQ, ${STRATEGY_NAMES.length} strategies, ${l.signals} signals`,
    );
    liveLine = `live: ${fmt(l.barsPerSec)} bars/s`;
  }
  console.log(`in-process: ${fmt(ip.engine)} bars/s`);
  console.log(`backtest: ${bt.ms.toFixed(1)} ms for ${daily.length} bars`);
  console.log(liveLine);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:quant: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
