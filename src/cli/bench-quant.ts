/**
 * `npm run bench:quant`: the quant's throughput, measured three ways on the real data in ../shared/data.
 *
 *  1. in-process: every bar of both daily series and the index-future minute series (39,937 bars) through the
 *     quant core as the worker runs it (SignalEngineSet over strategySet: partial/duplicate checks, per-series
 *     state, every signal with its id and contract validation) with EVERY strategy on at once; the bars built by
 *     the replay source (toBarMessage); best of 10 rounds after 3 untimed ones, fresh engines each round.
 *     Strategy-only throughput (each strategy on its own instances) is printed beside it.
 *  2. backtest: both daily series (9,048 bars) with the MA crossover through the backtester (strategy, risk engine,
 *     simulated exchange with fees and fills, per-bar accounting audit); best of 20 runs after 8 untimed ones.
 *  Both print the CPU time of their best and median round beside the wall clock (the `in-process:` and
 *  `backtest:` lines), which on a shared machine mostly measures the other processes' load.
 *  3. live: the futures minute bars published to RabbitMQ by Dataflow's own publishing path on a connection of its
 *     own (private exchanges and quorum queues of the production shape on the local broker), consumed by
 *     startQuant with every strategy on, signals published with confirms, each bar acked after its signals'
 *     confirms: bars/s from the first publish to the last bar acked, one bar per message (`live:`, Dataflow's
 *     default form) and batched; beside it, in the same run, Dataflow's per-message path into the same queues
 *     read by a validating, de-duplicating consumer (the rate the quant has to keep up with), and the ratio;
 *     then the same feed paced at that rate with the quant behind it: its backlog and drain (does it keep up?).
 *
 * Output ends with `in-process: <N> bars/s`, `backtest: <N> ms for <B> bars` and `live: <N> bars/s`.
 * `--skip-live` skips part 3 (no broker needed); `--live-only` runs only part 3; `--rounds n` repeats it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readBarsCsvSync } from '../adapters/marketdata/csv';
import {
  ConfirmPublisher,
  RabbitConnection,
  assertConsumerQueue,
  consumeJson,
  dlqName,
  withChannel,
} from '../adapters/rabbitmq';
import { sleep } from '../lib/sleep';
import { loadConfig } from '../config';
import { barsOfMessage, type Bar, type OhlcvBar } from '../contracts/bar';
import { parseSignalMessage } from '../contracts/signal';
import { toBarMessage } from '../adapters/marketdata/replay';
import { STRATEGY_NAMES } from '../contracts/strategies';
import { mergeSeries, runBacktest } from '../domain/backtest';
import { SignalEngineSet, strategyFactory, strategySet } from '../domain/strategies';
import { createLogger } from '../logging';
import { intArg } from '../config/cli-args';
import { findListenerPid } from './bench/cpu';
import { replayBars } from '../services/bar-publishing';
import { DEFAULT_QUANT_PREFETCH, DEFAULT_SIGNALS_PER_MESSAGE, startQuant } from '../workers/quant';

const DATA = path.resolve(__dirname, '../../../shared/data');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A recorded bar as the replay source publishes it (source `bench`). */
const toBar = (b: OhlcvBar, interval: string): Bar => toBarMessage(b, interval, 'bench');

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

/**
 * Rounds that are run before the timed ones and not counted: V8 compiles the hot code while it runs (and
 * re-optimises it after its first deoptimisations), and a long-running quant or backtest runs at the speed it
 * settles at. Under tsx the first in-process rounds cost 1.5-4x the settled one, and the backtest took 6-10 runs
 * to settle (docs/quant.md); with 1 untimed run and 5 or 10 timed ones the best round was often still a warming one.
 */
/**
 * A paced round counts as keeping up when the quant's backlog never exceeds its prefetch (every bar published is
 * already in its hands) and it is through the last bar within this long of its publish: the last slice's bars and
 * their signals' confirms still travel after it. A quant 5 % slower than a 2-s feed of 30,889 bars ends ~1,500
 * bars and ~100 ms behind, growing with the length of the feed.
 */
const KEEPS_UP_DRAIN_MS = 100;
const IN_PROCESS_WARMUP = 3;
const IN_PROCESS_ROUNDS = 10;
const BACKTEST_WARMUP = 8;
const BACKTEST_ROUNDS = 20;

interface Timed {
  /** Best wall-clock round, ms. */
  wall: number;
  /** Best CPU-time round, ms (user + system time of the process). */
  cpu: number;
  /** Median CPU-time round, ms. */
  cpuMedian: number;
}

/** Runs `round` warmup + rounds times; the timed rounds' best wall, best CPU and median CPU time. */
function timeRounds(warmup: number, rounds: number, round: () => void): Timed {
  for (let i = 0; i < warmup; i++) round();
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    round();
    walls.push(performance.now() - t0);
    cpus.push(cpuMs() - c0);
  }
  return { wall: Math.min(...walls), cpu: Math.min(...cpus), cpuMedian: median(cpus) };
}

function inProcess(bars: Bar[]): { engine: Timed; strategies: Timed; signals: number } {
  let signals = 0;
  const engine = timeRounds(IN_PROCESS_WARMUP, IN_PROCESS_ROUNDS, () => {
    // Fresh engines every round, as a fresh quant process has.
    const set = new SignalEngineSet(strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n))));
    signals = 0;
    // Indexed loops: an iterator per bar and a result object per outcome were the harness's own garbage, not
    // the quant's work (the engine and its outcomes are the same).
    for (let i = 0; i < bars.length; i++) {
      const outs = set.process(bars[i]!);
      for (let j = 0; j < outs.length; j++) if (outs[j]!.kind === 'signal') signals++;
    }
  });
  const strategies = timeRounds(IN_PROCESS_WARMUP, IN_PROCESS_ROUNDS, () => {
    const perSymbol = new Map<string, ReturnType<ReturnType<typeof strategyFactory>>[]>();
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i]!;
      let s = perSymbol.get(bar.symbol);
      if (!s) perSymbol.set(bar.symbol, (s = STRATEGY_NAMES.map((n) => strategyFactory(n)())));
      for (let j = 0; j < s.length; j++) s[j]!.onBar(bar);
    }
  });
  return { engine, strategies, signals };
}

function backtest(bars: OhlcvBar[]): { timed: Timed; trades: number; signals: number } {
  const factory = strategyFactory('sma-cross');
  let trades = 0;
  let signals = 0;
  const timed = timeRounds(BACKTEST_WARMUP, BACKTEST_ROUNDS, () => {
    const r = runBacktest(bars, { strategy: factory });
    trades = r.trades.length;
    signals = r.signals.length;
  });
  return { timed, trades, signals };
}

interface LiveResult {
  barsPerSec: number;
  messages: number;
  signals: number;
  /** Messages the signals travelled in (signal_batch messages and lone signals). */
  signalMessages: number;
  /** CPU time of this process per bar (user + system): the quant and the feed together. */
  cpuUsPerBar: number;
  /** CPU time of the local broker (beam.smp) per bar, when it runs on this machine; else undefined. */
  brokerUsPerBar: number | undefined;
  /** A paced round only (`pace`): how the feed and the consumer did against the pace. */
  paced?: PacedFigures;
}

/**
 * A paced round: the feed publishes one bar per message at a fixed rate (Dataflow's per-message rate measured in
 * the same run), not as fast as it can, so the quant is asked the question of the target directly: does it keep up
 * with the bars as they come? A quant that does holds a small backlog throughout and finishes a moment after the
 * last publish; one that does not ends with a backlog of (1 − its rate / the feed's) of the bars. Whether the feed
 * itself holds the pace is the other half: the broker and the two cores also carry the quant and its signals.
 */
interface PacedFigures {
  /** The rate asked for, bars/s. */
  pace: number;
  /** The rate the feed achieved: bars over the time to its last publish. */
  feedRate: number;
  /** Bars published and not yet through the quant, sampled after each publish and each 1 ms pause. */
  backlogP50: number;
  backlogMax: number;
  /** From the last publish to the last bar through the quant (acked after its signals' confirms), ms. */
  drainMs: number;
  /** The quant's rate over the whole round (first publish → last bar through) against the feed's. */
  quantVsFeed: number;
}

/** What the live quant must publish for these bars: the pure engine with every strategy, as startQuant runs it. */
function expectedSignals(bars: readonly Bar[]): Set<string> {
  const engine = new SignalEngineSet(strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n))));
  const ids = new Set<string>();
  for (const bar of bars)
    for (const out of engine.process(bar)) if (out.kind === 'signal') ids.add(out.signal.signal_id);
  return ids;
}

/**
 * The broker this run talks to, when it runs on this machine (the process listening on RABBITMQ_PORT, as
 * bench:ingest finds it): its CPU time around a round is the broker's cost of that round's messages (with
 * whatever else it served meanwhile: on the shared machine, other agents' runs too).
 */
function brokerPid(): number | undefined {
  try {
    return findListenerPid(loadConfig().rabbitmq.port);
  } catch {
    return undefined; // no /proc
  }
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime (fields 14 and 15), USER_HZ = 100 on Linux
  } catch {
    return undefined;
  }
}

/** Read every message of a queue (no ack needed: the queue is deleted after) and return the signal ids in them. */
async function drainSignalIds(rabbit: RabbitConnection, queue: string, want: number): Promise<string[]> {
  const ch = await rabbit.connection!.createChannel();
  ch.on('error', () => undefined);
  const ids: string[] = [];
  let bad = 0;
  try {
    await ch.prefetch(0);
    await ch.consume(
      queue,
      (m) => {
        if (!m) return;
        const r = parseSignalMessage(m.content);
        if (r.ok) for (const s of r.value) ids.push(s.signal_id);
        else bad++;
      },
      { noAck: true },
    );
    let last = -1;
    for (let idle = 0; ids.length < want && idle < 400;) {
      await sleep(25);
      idle = ids.length === last ? idle + 1 : 0;
      last = ids.length;
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  if (bad) throw new Error(`live: ${bad} messages on the signals queue break the signal contract`);
  return ids;
}

/**
 * One live round on private exchanges and queues of the production shape (quorum queues with their DLQs):
 *  - the feed is Dataflow's own path (replayBars → ConfirmPublisher.publishBatch, a window of 256 confirms) on a
 *    connection of its own, as the Dataflow process has; `batch` bars of one symbol per message (1 = the
 *    per-message form, Dataflow's default);
 *  - `consumer` is what reads them: the quant (startQuant, every strategy, signals confirmed before each bar is
 *    acked, at its default prefetch), or, for the same-run baseline, Dataflow benchmark's own consumer
 *    (consumeJson → barsOfMessage → a set of message ids; bench:ingest's de-duplicates per series);
 *  - bars/s from the first publish until every bar is acked. The round fails rather than print a figure if a bar
 *    or a signal is missing or doubled.
 */
async function liveRound(
  bars: Bar[],
  batch: number,
  consumer: 'quant' | 'dataflow',
  signalsPerMessage = DEFAULT_SIGNALS_PER_MESSAGE,
  prefetch = DEFAULT_QUANT_PREFETCH,
  pace?: number,
): Promise<LiveResult> {
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
  const feedRabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `bench-quant-feed-${id}`,
    logger: log,
    maxInitialAttempts: 5,
  });
  const feed = new ConfirmPublisher(feedRabbit, { logger: log });
  await rabbit.start();
  await feedRabbit.start();
  const want = consumer === 'quant' ? expectedSignals(bars) : new Set<string>();
  const seen = new Set<string>();
  let duplicates = 0;
  const quant =
    consumer === 'quant'
      ? startQuant({
          rabbit,
          publisher,
          strategies: STRATEGY_NAMES.map((n) => strategyFactory(n)),
          logger: log,
          queue: BARS_Q,
          signalsExchange: SIGNALS_EX,
          signalsPerMessage,
          prefetch,
        })
      : undefined;
  const sub =
    quant?.consumer ??
    consumeJson(rabbit, BARS_Q, { prefetch, publisher, logger: log }, (ctx) => {
      const m = barsOfMessage(ctx.body);
      if (!m.ok) return;
      for (const b of m.bars) {
        if (seen.has(b.message_id)) duplicates++;
        else seen.add(b.message_id);
      }
    });
  const barsDone = () => (quant ? quant.stats.bars : seen.size + duplicates);
  const broker = brokerPid();
  try {
    await sub.ready();
    const b0 = processCpuMs(broker);
    const c0 = cpuMs();
    const t0 = performance.now();
    let paced: Omit<PacedFigures, 'drainMs' | 'quantVsFeed'> | undefined;
    let lastPublishAt = t0;
    let sent: { published: number };
    if (pace === undefined) {
      sent = await replayBars({ publisher: feed, bars, exchange: BARS_EX, window: 256, batchSize: batch });
    } else {
      // Every bar due by now (pace × elapsed), in order: one slice at a time, each confirmed before the next is
      // sent (slices side by side could interleave, and a bar older than one the quant has seen counts as a
      // duplicate). A slow confirm makes the next slice bigger, so the feed holds the pace while the broker can.
      const backlog: number[] = [];
      let published = 0;
      while (published < bars.length) {
        const due = Math.min(bars.length, Math.floor(((performance.now() - t0) / 1000) * pace));
        if (due > published) {
          const slice = await replayBars({
            publisher: feed,
            bars: bars.slice(published, due),
            exchange: BARS_EX,
            window: 256,
          });
          if (slice.published !== due - published) break;
          published = due;
        } else await sleep(1);
        backlog.push(published - barsDone());
      }
      lastPublishAt = performance.now();
      sent = { published };
      backlog.sort((a, b) => a - b);
      paced = {
        pace,
        feedRate: published / ((lastPublishAt - t0) / 1000),
        backlogP50: backlog[Math.floor(backlog.length / 2)] ?? 0,
        backlogMax: backlog.at(-1) ?? 0,
      };
    }
    const deadline = Date.now() + 600_000;
    // Done when every bar went through and every delivery is acked (the quant acks a bar after its signals' confirms).
    while (
      (barsDone() < bars.length || sub.inFlight > 0 || sub.stats.acked < sub.stats.delivered) &&
      Date.now() < deadline
    )
      await sleep(5);
    const doneAt = performance.now();
    const secs = (doneAt - t0) / 1000;
    const cpu = cpuMs() - c0;
    const b1 = processCpuMs(broker);
    if (sent.published !== bars.length)
      throw new Error(`live: only ${sent.published} of ${bars.length} bars published`);
    if (barsDone() < bars.length) throw new Error(`live: only ${barsDone()} of ${bars.length} bars consumed in time`);
    if (quant) {
      const st = quant.stats;
      // Every signal the engine gives, each once, whatever messages they travelled in (read after the clock stopped).
      const onQueue = await drainSignalIds(rabbit, SIGNALS_Q, want.size);
      const distinct = new Set(onQueue);
      const missing = [...want].filter((x) => !distinct.has(x)).length;
      if (
        st.bars !== bars.length ||
        st.duplicates ||
        st.invalid ||
        st.signals !== want.size ||
        onQueue.length !== want.size ||
        distinct.size !== want.size ||
        missing
      )
        throw new Error(
          `live: ${st.bars} bars (${st.duplicates} redelivered, ${st.invalid} invalid), ${st.signals} signals ` +
            `published; ${onQueue.length} on the queue (${distinct.size} distinct, ${missing} of the engine's ` +
            `missing); the engine gives ${want.size}`,
        );
    } else if (duplicates || seen.size !== bars.length)
      throw new Error(`live baseline: ${seen.size}/${bars.length} bars, ${duplicates} duplicates`);
    return {
      barsPerSec: bars.length / secs,
      messages: sub.stats.delivered,
      signals: quant?.stats.signals ?? 0,
      signalMessages: quant?.stats.signalMessages ?? 0,
      cpuUsPerBar: (cpu * 1000) / bars.length,
      brokerUsPerBar: b0 === undefined || b1 === undefined ? undefined : ((b1 - b0) * 1000) / bars.length,
      ...(paced
        ? { paced: { ...paced, drainMs: doneAt - lastPublishAt, quantVsFeed: bars.length / secs / paced.feedRate } }
        : {}),
    };
  } finally {
    if (quant) await quant.stop();
    else await sub.cancel();
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
    await feed.close();
    await feedRabbit.close();
    await publisher.close();
    await rabbit.close();
  }
}

const USAGE = `Usage: npm run bench:quant -- [options]

Quant throughput on the real data in ../shared/data: in-process bars/s (every strategy), the backtest's wall
time, and live bars/s through RabbitMQ (bars in, signals out with confirms, bars acked after them) beside
Dataflow's per-message path measured in the same run. See docs/quant.md.

Options:
  --skip-live         no broker: in-process and backtest only
  --live-only         the live part only
  --rounds <n>        live rounds (Dataflow baseline, live per-message, live batched, paced, each n times);
                      medians are printed; default 1
  --batch <n>         bars per message in the batched live round; default 100
  --prefetch <n>      the consumers' prefetch in the live rounds (the quant's --prefetch); default
                      ${DEFAULT_QUANT_PREFETCH}
  --signals-per-message <n>
                      the quant's QUANT_SIGNALS_PER_MESSAGE in the live rounds (1 = a message per signal);
                      default ${DEFAULT_SIGNALS_PER_MESSAGE}
  -h, --help          this help

Its last three lines read \`in-process: <N> bars/s\`, \`backtest: <N> ms for <B> bars\` and \`live: <N> bars/s\`.
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'skip-live': { type: 'boolean', default: false },
      'live-only': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
      batch: { type: 'string', default: '100' },
      'signals-per-message': { type: 'string' },
      prefetch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const rounds = intArg('rounds', values.rounds, 1, 1);
  const batch = intArg('batch', values.batch, 100, 2);
  const prefetch = intArg('prefetch', values.prefetch, DEFAULT_QUANT_PREFETCH, 1);
  const signalsPer = intArg('signals-per-message', values['signals-per-message'], DEFAULT_SIGNALS_PER_MESSAGE, 1);
  if (values['skip-live'] && values['live-only']) throw new Error('--skip-live and --live-only exclude each other');
  const { nvda, orcl, fut } = load();
  const daily = mergeSeries([nvda, orcl]);
  const all = [...mergeSeries([nvda, orcl]).map((b) => toBar(b, '1d')), ...fut.map((b) => toBar(b, '1m'))];
  console.log(`strategies: ${STRATEGY_NAMES.join(', ')}`);
  let inProcessLine = 'in-process: skipped (--live-only)';
  let backtestLine = 'backtest: skipped (--live-only)';
  if (!values['live-only']) {
    const ip = inProcess(all);
    const rate = (ms: number) => fmt(all.length / (ms / 1000));
    console.log(
      `in-process: ${all.length} bars x ${STRATEGY_NAMES.length} strategies, ${ip.signals} signals, ` +
        `best of ${IN_PROCESS_ROUNDS} rounds after ${IN_PROCESS_WARMUP} untimed; CPU time: best ${rate(ip.engine.cpu)} bars/s, ` +
        `median ${rate(ip.engine.cpuMedian)} bars/s (the figures with the machine's other load taken out); ` +
        `strategies alone ${rate(ip.strategies.wall)} bars/s (CPU time ${rate(ip.strategies.cpu)})`,
    );
    const bt = backtest(daily);
    console.log(
      `backtest: sma-cross over NVDA+ORCL daily, ${bt.signals} signals through the risk engine, ${bt.trades} fills, ` +
        `best of ${BACKTEST_ROUNDS} runs after ${BACKTEST_WARMUP} untimed; CPU time: best ${bt.timed.cpu.toFixed(1)} ms, ` +
        `median ${bt.timed.cpuMedian.toFixed(1)} ms`,
    );
    inProcessLine = `in-process: ${rate(ip.engine.wall)} bars/s`;
    backtestLine = `backtest: ${bt.timed.wall.toFixed(1)} ms for ${daily.length} bars`;
  }
  let liveLine = 'live: skipped (--skip-live)';
  if (!values['skip-live']) {
    const bars = fut.map((b) => toBar(b, '1m'));
    console.log(
      `live: ${bars.length} minute bars (one series) through RabbitMQ, fed by Dataflow's publisher on its own ` +
        `connection, ${STRATEGY_NAMES.length} strategies, quorum queues, prefetch ${prefetch}, ` +
        `at most ${signalsPer} signals a message; ` +
        `${rounds} round(s) of: Dataflow per-message, live per-message, Dataflow batched and live batched ` +
        `(${batch} bars a message)`,
    );
    const baseline: LiveResult[] = [];
    const perMessage: LiveResult[] = [];
    const baselineBatched: LiveResult[] = [];
    const batched: LiveResult[] = [];
    const show = (name: string, r: LiveResult) =>
      console.log(
        `  ${name.padEnd(22)} ${fmt(r.barsPerSec)} bars/s, ${r.messages} messages, ${r.signals} signals in ` +
          `${r.signalMessages} messages, CPU here ${r.cpuUsPerBar.toFixed(1)} µs/bar` +
          (r.brokerUsPerBar === undefined ? '' : `, broker ${r.brokerUsPerBar.toFixed(1)} µs/bar`),
      );
    for (let k = 0; k < rounds; k++) {
      baseline.push(await liveRound(bars, 1, 'dataflow', signalsPer, prefetch));
      show('dataflow per-message', baseline.at(-1)!);
      perMessage.push(await liveRound(bars, 1, 'quant', signalsPer, prefetch));
      show('live per-message', perMessage.at(-1)!);
      baselineBatched.push(await liveRound(bars, batch, 'dataflow', signalsPer, prefetch));
      show(`dataflow batched (${batch})`, baselineBatched.at(-1)!);
      batched.push(await liveRound(bars, batch, 'quant', signalsPer, prefetch));
      show(`live batched (${batch})`, batched.at(-1)!);
    }
    const rate = (rs: LiveResult[]) => median(rs.map((r) => r.barsPerSec));
    const ratios = perMessage.map((r, k) => r.barsPerSec / baseline[k]!.barsPerSec);
    const batchedRatios = batched.map((r, k) => r.barsPerSec / baselineBatched[k]!.barsPerSec);
    const each = (xs: number[]) => (rounds > 1 ? ` (rounds: ${xs.map((x) => x.toFixed(2)).join(', ')})` : '');
    console.log(
      `live batched: ${fmt(rate(batched))} bars/s; Dataflow into the same queues (same run): per-message ` +
        `${fmt(rate(baseline))} bars/s, batched ${fmt(rate(baselineBatched))} bars/s; live / Dataflow: ` +
        `per-message ${median(ratios).toFixed(2)}x${each(ratios)}, batched ${median(batchedRatios).toFixed(2)}x` +
        each(batchedRatios),
    );
    // The direct question: the feed paced at Dataflow's per-message rate of this run, the quant behind it.
    const pacedRuns: PacedFigures[] = [];
    for (let k = 0; k < rounds; k++) {
      const p = (await liveRound(bars, 1, 'quant', signalsPer, prefetch, rate(baseline))).paced!;
      pacedRuns.push(p);
      console.log(
        `  live paced              fed at ${fmt(p.feedRate)} bars/s (${(p.feedRate / p.pace).toFixed(2)}x the pace ` +
          `asked), backlog p50 ${fmt(p.backlogP50)} max ${fmt(p.backlogMax)} bars, drained ` +
          `${Math.round(p.drainMs)} ms after the last publish; the quant at ${p.quantVsFeed.toFixed(2)}x the feed`,
      );
    }
    const mid = (f: (p: PacedFigures) => number) => median(pacedRuns.map(f));
    const keepsUp = pacedRuns.every((p) => p.backlogMax <= prefetch && p.drainMs <= KEEPS_UP_DRAIN_MS);
    console.log(
      `live paced at Dataflow's per-message rate of this run (${fmt(rate(baseline))} bars/s): the feed held ` +
        `${mid((p) => p.feedRate / p.pace).toFixed(2)}x the pace with the quant beside it on the same broker and ` +
        `cores; the quant's backlog peaked at ${fmt(Math.max(...pacedRuns.map((p) => p.backlogMax)))} bars and ` +
        `drained ${Math.round(mid((p) => p.drainMs))} ms after the last publish (median): ` +
        (keepsUp
          ? `it keeps up with the bars as they come`
          : `it does NOT keep up (a backlog over the prefetch of ${prefetch}, or drained later than ` +
            `${KEEPS_UP_DRAIN_MS} ms)`),
    );
    liveLine = `live: ${fmt(rate(perMessage))} bars/s`;
  }
  console.log(inProcessLine);
  console.log(backtestLine);
  console.log(liveLine);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:quant: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
