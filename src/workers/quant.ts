/**
 * Quant worker: consumes bars from `quant.bars`, runs every configured strategy (STRATEGY_TYPE, a list; several
 * side by side) per (symbol, interval), and publishes trade signals to `trade.signals`, each carrying its strategy;
 * the signals of the bars handled in one turn travel in one `signal_batch` message (QUANT_SIGNALS_PER_MESSAGE).
 *
 *   npm exec tsx src/workers/quant.ts -- [--prefetch 1000]       (strategies and parameters: see .env.example)
 *
 * No loss, no duplicates (see docs/messaging.md):
 *  - a bar is acked only after every signal it produced is confirmed by the broker (ack-after-publish); if a
 *    publish fails the bar is requeued and, on redelivery, the *remembered* signals are re-published (the bar is
 *    not fed to the strategies twice). Confirms are pipelined: the next bars go through the strategies while
 *    earlier bars' signals wait for theirs (up to `prefetch` bars in flight);
 *  - signal_id is derived from strategy + symbol + bar timestamp, so any re-publication carries the same id and
 *    the intake starts at most one workflow for it;
 *  - a malformed bar is dead-lettered to `quant.bars.dlq` with the reason in `x-rejection-reason`, then acked.
 */
import { parseArgs } from 'node:util';
import { barsOfMessage, type Bar } from '../contracts/bar';
import { findReplayFile, loadReplay, toBarMessage } from '../adapters/marketdata/replay';
import { loadBars } from '../adapters/postgres/bars';
import { createPool } from '../adapters/postgres/pool';
import type { Config } from '../config';
import { MAX_SIGNALS_PER_MESSAGE, formatZodError, signalBatchBody, type TradeSignal } from '../contracts/signal';
import { loadConfig } from '../config';
import { createLogger, withCorrelation, type Logger } from '../logging';
import {
  ConfirmPublisher,
  QUANT_BARS_QUEUE,
  RabbitConnection,
  TRADE_SIGNALS_EXCHANGE,
  topologySetup,
  consumeJson,
  signalBatchRoutingKey,
  signalRoutingKey,
  type ConsumeContext,
  type ConsumerHandle,
} from '../adapters/rabbitmq';
import { barsReceived, signalsPublished } from '../metrics';
import { CounterTally } from '../metrics/tally';
import { rabbitCheck, startOps } from './ops';
import {
  STRATEGY_NAMES,
  SignalEngineSet,
  strategyFactories,
  strategySet,
  type EngineOutcome,
  type StrategyFactory,
} from '../domain/strategies';
import { intArg } from '../config/cli-args';
import { sleep } from '../lib/sleep';

/**
 * Un-acked bars in flight. A bar is acked only once the message carrying its signals is confirmed, and a confirm
 * of a persistent message in a quorum queue waits for the broker's write to disk (tens of ms on a busy machine),
 * so the quant's rate is at most prefetch / confirm latency: 100 capped it at 1.5-2.9k bars/s one bar per message
 * in bench:quant, 1000 did not (docs/quant.md, "The live path"). A thousand bars are a few hundred kB; after a
 * crash they are redelivered and recognised (remembered outcomes, the same signal ids).
 */
export const DEFAULT_QUANT_PREFETCH = 1000;

/**
 * Signals of one turn travel in one `signal_batch` message, up to this many (QUANT_SIGNALS_PER_MESSAGE). The broker
 * pays per message, not per byte: with every strategy on, one persistent, confirmed message per signal into a
 * quorum queue cost it about as much CPU as the bar's own trip (docs/quant.md, "The live path").
 */
export const DEFAULT_SIGNALS_PER_MESSAGE = 500;

/** The quant's bar counter is labelled by symbol only. */
const symbolLabels = (symbol: string) => ({ symbol });
/** Its signal counter by strategy and side. */
const signalLabels = (strategy: string, side: string) => ({ strategy, side });

const noop = () => undefined;

/** A bar's logger: the quant's, with the bar's correlation id, symbol and time. */
function barLogger(log: Logger, bar: Bar): Logger {
  return withCorrelation(log, bar.correlation_id, { symbol: bar.symbol, bar_ts: bar.timestamp });
}

export interface QuantStats {
  bars: number;
  signals: number;
  republished: number;
  duplicates: number;
  stale: number;
  partial: number;
  /** Bars that failed the Bar schema or could not make a valid signal (dead-lettered; see consumer.stats for all). */
  invalid: number;
  /** Stored bars replayed into the strategies on start (warm-up; nothing is published for them). */
  warmed: number;
  /** Messages written to the signals exchange (a batch or a lone signal each; re-publications included). */
  signalMessages: number;
}

/**
 * The recorded history of one series, oldest first, as bar messages: at least every bar a previous quant process
 * may have processed (acked) before the first bar this process received at `firstDelivered`. It may run past that
 * bar: a warmed bar that is delivered later is a duplicate, and its remembered signal is published then.
 */
export type WarmupSource = (symbol: string, interval: string, firstDelivered: string) => Promise<Bar[]>;

export interface QuantOptions {
  rabbit: RabbitConnection;
  publisher: ConfirmPublisher;
  /** The strategies to run side by side (each bar goes to each, in this order). */
  strategies?: StrategyFactory[];
  /** One strategy (kept for callers that run a single one); added to `strategies`. */
  strategy?: StrategyFactory;
  /** Scope of the signal ids: the account the signals trade for (signalIdFor). Default: unscoped. */
  signalScope?: string;
  logger?: Logger;
  /** Default `quant.bars`. */
  queue?: string;
  /** Default `trade.signals`. */
  signalsExchange?: string;
  prefetch?: number;
  /**
   * At most this many signals in one message (QUANT_SIGNALS_PER_MESSAGE): the signals of the bars handled in one
   * turn (one socket read's deliveries) go out together as a `signal_batch`, a lone signal as a plain signal.
   * 1 = every signal in a message of its own. Default DEFAULT_SIGNALS_PER_MESSAGE.
   */
  signalsPerMessage?: number;
  /** Requeues of a bar whose signal cannot be published before it is dead-lettered. Default 20. */
  maxAttempts?: number;
  /** Base requeue backoff. Default 500 ms. */
  retryDelayMs?: number;
  /**
   * State that survives a restart: on the first bar of each series this process sees, the series' earlier bars
   * are fed to every strategy first (outcomes remembered, nothing published), so the strategies are exactly
   * where an uninterrupted run would be and the signals that follow are the same, with the same ids.
   */
  warmup?: WarmupSource;
}

export interface QuantHandle {
  readonly stats: Readonly<QuantStats>;
  readonly consumer: ConsumerHandle;
  /** The engine of every strategy, side by side. */
  readonly engine: SignalEngineSet;
  /** Stop consuming and wait for in-flight bars (their signal confirms) to settle. */
  stop(): Promise<void>;
}

/** Wire the engine to RabbitMQ. The caller owns (and starts/closes) the connection and the publisher. */
export function startQuant(opts: QuantOptions): QuantHandle {
  const log = opts.logger ?? createLogger('quant');
  const queue = opts.queue ?? QUANT_BARS_QUEUE;
  const exchange = opts.signalsExchange ?? TRADE_SIGNALS_EXCHANGE;
  const factories = [...(opts.strategy ? [opts.strategy] : []), ...(opts.strategies ?? [])];
  if (factories.length === 0) throw new Error('startQuant: no strategy');
  const engine = new SignalEngineSet(
    strategySet(factories),
    opts.signalScope === undefined ? {} : { signalScope: opts.signalScope },
  );
  const names = engine.strategyNames;
  if (new Set(names).size !== names.length)
    throw new Error(`startQuant: a strategy is listed twice (${names.join(', ')})`);
  const stats: QuantStats = {
    bars: 0,
    signals: 0,
    republished: 0,
    duplicates: 0,
    stale: 0,
    partial: 0,
    invalid: 0,
    warmed: 0,
    signalMessages: 0,
  };
  const warming = new Map<string, Promise<void>>();
  /** Signal ids this process has published (bounded): tells a re-publication from a warmed bar's first one. */
  const publishedHere = new Set<string>();
  const remember = (id: string) => {
    if (publishedHere.size >= 200_000) publishedHere.clear();
    publishedHere.add(id);
  };

  /** Warm one series up, once per process; retried until it works (its bars wait un-acked meanwhile). */
  async function warmSeries(source: WarmupSource, symbol: string, interval: string, before: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const history = await source(symbol, interval, before);
        let n = 0;
        for (const h of history) {
          engine.process(h);
          n++;
        }
        stats.warmed += n;
        log.info({ symbol, interval, bars: n, before }, 'series warmed up from history');
        return;
      } catch (err) {
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
        log.warn({ err, symbol, interval, attempt, retry_in_ms: delay }, 'warm-up failed; retrying');
        await sleep(delay);
      }
    }
  }

  // Bars counted per symbol in bulk, not a labelled inc per bar (src/metrics/tally.ts); flushed at stop too.
  const barTally = new CounterTally(barsReceived, symbolLabels);
  // Signals likewise (0.9 a bar with every strategy on): a labelled inc hashes its labels object into a key per call.
  const signalTally = new CounterTally(signalsPublished, signalLabels);

  /**
   * Settles (never rejects) once every bar message handed to the consumer so far is done with its signals. Bars are
   * acked in delivery order through it: a bar whose signals are confirmed while an earlier bar still waits for its
   * own confirms waits too, so the consumer's batched ack covers both with one `multiple` ack instead of acking
   * the later one on its own (a frame per bar for the broker). It only orders completions: a bar's ack still
   * waits for its own signals' confirms, never the other way round, and a failed bar does not hold later ones
   * (its retry and nack are its own).
   */
  let tail: Promise<void> | undefined;
  const inOrder = (own: Promise<void> | undefined): Promise<void> | undefined => {
    const prev = tail;
    if (own === undefined) return prev; // nothing of its own to wait for: done when the bars before it are
    if (prev !== undefined) own.catch(noop); // its failure is reported through `done`, once `prev` has settled
    const done = prev === undefined ? own : prev.then(() => own);
    const settled = done.then(noop, noop);
    tail = settled;
    void settled.then(() => {
      if (tail === settled) tail = undefined; // idle again: the next bar without signals is acked at once
    });
    return done;
  };

  /**
   * The bars of one message through every strategy, synchronously, in delivery order; then every signal they
   * produced is written to the broker at once (in bar and strategy order), and the message is done when all
   * of them are confirmed. Nothing here waits for the broker before the next bar is processed: with a confirm
   * window of up to `prefetch` bars the quant is bound by throughput, not by a confirm round trip per signal.
   */
  const handleBars = (ctx: ConsumeContext, bars: readonly Bar[]): Promise<void> | undefined => {
    let outcomes: (readonly EngineOutcome[])[] | undefined;
    let single: readonly EngineOutcome[] | undefined;
    let invalid: string | undefined;
    for (const bar of bars) {
      const outs = engine.process(bar);
      barTally.add(bar.symbol);
      stats.bars++;
      for (const o of outs) if (o.kind === 'invalid') invalid ??= o.reason;
      if (bars.length === 1) single = outs;
      else (outcomes ??= []).push(outs);
    }
    if (invalid !== undefined) {
      stats.invalid++;
      // Returned, not dropped: the consumer acks a handler that returns nothing at once, and this message may only
      // be acked once its dead-letter copy is confirmed (deadLetter acks it then, or requeues it on a failure).
      return ctx.deadLetter(invalid);
    }
    let pubs: Promise<void>[] | undefined;
    if (single) pubs = publishOutcomes(single, pubs);
    else for (const outs of outcomes!) pubs = publishOutcomes(outs, pubs);
    if (pubs === undefined) {
      // No signal: nothing of this message is waiting for the broker. Still count what the strategies said.
      record(bars, single, outcomes);
      return inOrder(undefined);
    }
    const confirmed = pubs.length === 1 ? pubs[0]! : Promise.all(pubs);
    // The bookkeeping (counts, logs) for signals the broker confirmed; on a failure the consumer requeues the
    // bar (with backoff) and the redelivery re-publishes the remembered signals with the same ids.
    return inOrder(confirmed.then(() => record(bars, single, outcomes)));
  };

  /**
   * Queue the signals of one bar's outcomes (`outbox`), adding the promise of each message they go into to `pubs`
   * once. A function of startQuant, not a closure per bar: under tsx (esbuild's keepNames) every named closure
   * created costs a naming call, per bar here.
   */
  function publishOutcomes(
    outs: readonly EngineOutcome[],
    pubs: Promise<void>[] | undefined,
  ): Promise<void>[] | undefined {
    for (const out of outs) {
      if (out.kind === 'partial') break; // the same for every strategy
      // A duplicate's remembered signal is re-published: its first publish may not have been confirmed.
      const signal = out.kind === 'signal' || out.kind === 'duplicate' ? out.signal : null;
      if (!signal) continue;
      const confirmed = outbox(signal);
      if (pubs === undefined) pubs = [confirmed];
      else if (pubs[pubs.length - 1] !== confirmed) pubs.push(confirmed); // one promise per message it went into
    }
    return pubs;
  }

  /** Counters and log lines for one message's outcomes, once its signals are confirmed. */
  function record(
    bars: readonly Bar[],
    single: readonly EngineOutcome[] | undefined,
    outcomes: (readonly EngineOutcome[])[] | undefined,
  ): void {
    for (let i = 0; i < bars.length; i++) {
      const outs = single ?? outcomes![i]!;
      const bar = bars[i]!;
      // The per-bar logger (a pino child with the correlation id) only when something is logged: building one
      // per bar cost more than the strategies (profiled). No closure per bar for it (see publishOutcomes).
      let blog: Logger | undefined;
      barLoop: for (const out of outs) {
        switch (out.kind) {
          case 'none':
          case 'invalid':
            break;
          case 'partial':
            stats.partial++;
            break barLoop; // the same for every strategy
          case 'stale':
            stats.stale++;
            if (log.isLevelEnabled('debug'))
              (blog ??= barLogger(log, bar)).debug('bar older than the remembered window; skipped');
            break;
          case 'duplicate':
            stats.duplicates++;
            if (!out.signal) break;
            // The remembered signal was re-published (its first publish may not have been confirmed). Same id.
            if (publishedHere.has(out.signal.signal_id)) {
              stats.republished++;
              (blog ??= barLogger(log, bar)).info(
                { signal_id: out.signal.signal_id },
                'redelivered bar: signal re-published',
              );
            } else {
              // A bar warmed up from history before it was delivered, or a retried delivery whose signals were
              // not all confirmed the first time: its first confirmed publication here.
              remember(out.signal.signal_id);
              stats.signals++;
              signalTally.add(out.signal.strategy, out.signal.side);
              (blog ??= barLogger(log, bar)).info(
                { signal_id: out.signal.signal_id, strategy: out.signal.strategy },
                'signal (bar seen before: warm-up or a retried delivery)',
              );
            }
            break;
          case 'signal':
            remember(out.signal.signal_id);
            stats.signals++;
            signalTally.add(out.signal.strategy, out.signal.side);
            // The reason and indicator record are built when read (a strategy formats them lazily): only if logged.
            if (!log.isLevelEnabled('info')) break;
            (blog ??= barLogger(log, bar)).info(
              {
                signal_id: out.signal.signal_id,
                strategy: out.signal.strategy,
                side: out.signal.side,
                price: out.signal.price,
                confidence: out.signal.confidence,
                ...out.indicators,
              },
              `signal: ${out.reason}`,
            );
            break;
        }
      }
    }
  }

  function publishSignal(signal: TradeSignal): Promise<void> {
    stats.signalMessages++;
    return opts.publisher.publishJson(exchange, signalRoutingKey(signal.strategy, signal.symbol), signal, {
      messageId: signal.signal_id,
      correlationId: signal.correlation_id,
    });
  }

  const perMessage = opts.signalsPerMessage ?? DEFAULT_SIGNALS_PER_MESSAGE;
  if (!Number.isInteger(perMessage) || perMessage < 1 || perMessage > MAX_SIGNALS_PER_MESSAGE)
    throw new Error(`startQuant: signalsPerMessage must be an integer in [1, ${MAX_SIGNALS_PER_MESSAGE}]`);

  /** The signals of this turn, not written yet; one promise for the message they will travel in. */
  interface Outgoing {
    readonly signals: TradeSignal[];
    readonly confirmed: Promise<void>;
    resolve: () => void;
    reject: (err: unknown) => void;
  }
  let outgoing: Outgoing | undefined;

  /**
   * Queue a signal for this turn's message; resolves when that message is confirmed. Every bar delivered in one
   * socket read is handled in one turn (amqplib emits them synchronously), so their signals leave together at
   * the end of it (a microtask: no timer, no added wait). A bar's ack still waits for the confirm of the message
   * that carries its signals; a failed publish fails every bar in it, and each is retried (redelivered bars
   * re-publish their remembered signals, the same ids: the intake starts one trade per id however they are grouped).
   */
  function outbox(signal: TradeSignal): Promise<void> {
    if (perMessage === 1) return publishSignal(signal);
    let o = outgoing;
    if (o === undefined || o.signals.length >= perMessage) {
      if (o !== undefined) send(o); // full: written now, the rest of the turn starts a new message
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const confirmed = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const next: Outgoing = { signals: [], confirmed, resolve, reject };
      outgoing = o = next;
      queueMicrotask(() => {
        if (outgoing === next) send(next);
      });
    }
    o.signals.push(signal);
    return o.confirmed;
  }

  function send(o: Outgoing): void {
    if (outgoing === o) outgoing = undefined;
    const { signals } = o;
    const first = signals[0]!;
    let published: Promise<void>;
    if (signals.length === 1) {
      published = publishSignal(first); // a lone signal in its own form, exactly as before batching
    } else {
      let symbol: string | undefined = first.symbol;
      for (const s of signals) if (s.symbol !== symbol) symbol = undefined;
      stats.signalMessages++;
      // A deterministic message id for the same group (the consumer de-duplicates by each signal_id, not by it).
      published = opts.publisher.publishJson(exchange, signalBatchRoutingKey(symbol), signalBatchBody(signals), {
        messageId: `${first.signal_id}+${signals.length}`,
        correlationId: first.correlation_id,
      });
    }
    published.then(o.resolve, o.reject);
  }

  /** Series whose warm-up is done: their bars are handled synchronously again (no await, no extra turn). */
  const warmed = new Set<string>();

  const consumer = consumeJson(
    opts.rabbit,
    queue,
    {
      prefetch: opts.prefetch ?? DEFAULT_QUANT_PREFETCH,
      publisher: opts.publisher,
      logger: log,
      maxAttempts: opts.maxAttempts ?? 20,
      retryDelayMs: opts.retryDelayMs ?? 500,
    },
    (ctx) => {
      // A message is one bar or a batch of one symbol's bars (contracts/bar.ts); both are handled bar by bar.
      const m = barsOfMessage(ctx.body);
      // The bars are copies (barOf), sharing the parsed body's strings; the body's own objects are not needed
      // again (a dead-letter copies the raw message), and a message stays in memory until its signals' confirm.
      // Batched, with every delivered message waiting for a confirm, those waiting messages are most of what the
      // young-generation GC copies: let the body's hundred raw bar objects go now, not at the ack.
      if (m.ok) ctx.body = undefined;
      if (!m.ok) {
        stats.bars++;
        stats.invalid++;
        return ctx.deadLetter(`invalid bar: ${formatZodError(m.error)}`);
      }
      const first = m.bars[0];
      if (opts.warmup && first) {
        const key = `${first.symbol}|${first.interval}`;
        if (!warmed.has(key)) return afterWarmup(opts.warmup, key, first, ctx, m.bars);
      }
      return handleBars(ctx, m.bars);
    },
  );

  /**
   * A bar of a series not warmed up yet: wait for the series' warm-up (started by its first bar), then handle it.
   * Every bar of the series awaits the same promise, so they resume in delivery order (FIFO reactions), and the
   * series is marked warmed before that promise resolves, so no later delivery (a later macrotask) overtakes them.
   */
  async function afterWarmup(
    source: WarmupSource,
    key: string,
    first: Bar,
    ctx: ConsumeContext,
    bars: readonly Bar[],
  ): Promise<void> {
    let w = warming.get(key);
    if (!w) {
      w = warmSeries(source, first.symbol, first.interval, first.timestamp).then(() => {
        warmed.add(key);
        warming.delete(key);
      });
      warming.set(key, w);
    }
    await w;
    await handleBars(ctx, bars);
  }

  return {
    stats,
    consumer,
    engine,
    stop: async () => {
      await consumer.cancel();
      barTally.flush();
      signalTally.flush();
    },
  };
}

const USAGE = `Usage: tsx src/workers/quant.ts [options]

Consumes bars from the RabbitMQ queue quant.bars, runs every configured strategy per symbol and publishes
trade signals to the trade.signals exchange (routing key signal.<strategy>.<symbol>; the signals of one turn in
one signal_batch message, routed signal.batch.<symbol>). Runs until SIGINT/SIGTERM.

Strategies come from the configuration (environment or .env; see .env.example and docs/quant.md):
  STRATEGY_TYPE       comma-separated list of ${STRATEGY_NAMES.join(', ')}
                      (or the original's SYMBOL, MRM, ML, AGGREGATED); default sma-cross
  MA_SHORT, MA_LONG, USE_RSI_CONFIRMATION, RSI_*, MACD_*, BOLLINGER_*, MOMENTUM_*, MRM_*, ML_*: parameters
  QUANT_SIGNALS_PER_MESSAGE  most signals in one message (a signal_batch; 1 = one message per signal); default 500

Options:
  --prefetch <n>      un-acked bars in flight; default ${DEFAULT_QUANT_PREFETCH}
  --stats-every <s>   log counters every s seconds (0 = never); default 30
  -h, --help          this help

Connection: RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASS, RABBITMQ_VHOST (see .env.example).
`;

/**
 * Where a restarted quant finds what it saw before: the bar store (market_bars, written by the bar-store worker from
 * the same bars), from REPLAY_FROM on when replaying (what an uninterrupted run of this replay saw); if the store
 * has none of the series (no bar store running), the replay source's bars before the first delivered one (the
 * best it can do: bars acked out of order after that one are not known then).
 */
export function historySource(cfg: Config, pool: ReturnType<typeof createPool>, log: Logger): WarmupSource {
  const from = cfg.dataflow.source === 'replay' ? cfg.dataflow.replay.from : undefined;
  return async (symbol, interval, before) => {
    // Every stored bar, not only those before the first delivery: acks are not in bar order (a bar waiting for its
    // signal's confirm is acked after the next one), so a crashed quant may have acked bars after the first one
    // redelivered now. Those must be warmed too, or the strategies would miss them.
    const stored = await loadBars(pool, symbol, interval, from ? { from } : {});
    const bars = stored.map((b) => toBarMessage(b, interval, b.source));
    if (bars.length > 0 || cfg.dataflow.source !== 'replay') return bars;
    let file: string;
    try {
      file = await findReplayFile(cfg.dataflow.replay.dataDir, symbol);
    } catch {
      return []; // not a replayed symbol: nothing before this bar
    }
    const r = await loadReplay(file, symbol, from ? { from } : {});
    if (r.interval !== interval) return [];
    log.info({ symbol, file }, 'bar store has no history of the series: warming up from the replay source');
    return r.bars.filter((b) => b.timestamp < before);
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prefetch: { type: 'string' },
      'stats-every': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const cfg = loadConfig();
  const log = createLogger('quant', { level: cfg.logLevel });
  const factories = strategyFactories(cfg.strategy.types, cfg.strategy);
  const prefetch = intArg('prefetch', values.prefetch, DEFAULT_QUANT_PREFETCH, 1);
  const statsEvery = intArg('stats-every', values['stats-every'], 30, 0);

  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `quant-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const pool = cfg.quant.warmup ? createPool(cfg.databaseUrl, 2) : undefined;
  // Signals trade for ACCOUNT_ID: their ids are scoped to it, so a fresh paper account trades the same bars again.
  const quant = startQuant({
    ...(pool ? { warmup: historySource(cfg, pool, log) } : {}),
    rabbit,
    publisher,
    strategies: factories,
    logger: log,
    prefetch,
    signalScope: cfg.accountId,
    signalsPerMessage: cfg.quant.signalsPerMessage,
  });
  const ops = await startOps(cfg.ops, 'quant', log, { ready: { rabbitmq: rabbitCheck(rabbit) } });
  await rabbit.start();
  log.info(
    {
      strategies: quant.engine.strategyNames,
      prefetch,
      signals_per_message: cfg.quant.signalsPerMessage,
      account_id: cfg.accountId,
    },
    'quant running',
  );

  const timer =
    statsEvery > 0
      ? setInterval(
          () =>
            log.info(
              { ...quant.stats, series: quant.engine.seriesCount, consumer: quant.consumer.stats },
              'quant stats',
            ),
          statsEvery * 1000,
        )
      : undefined;
  timer?.unref();

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down: cancelling the consumer, waiting for in-flight confirms');
    if (timer) clearInterval(timer);
    await quant.stop();
    await pool?.end().catch(() => undefined);
    await publisher.close();
    await rabbit.close();
    await ops.close();
    log.info({ ...quant.stats, consumer: quant.consumer.stats }, 'quant stopped');
  };
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        shutdown(sig).then(resolve, (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve();
        });
      });
    }
  });
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`quant: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
