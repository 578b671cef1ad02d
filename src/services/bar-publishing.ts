/**
 * Publishing bars to `market.bars` with publisher confirms, the one way every producer of bars (the Dataflow
 * worker's replay, synthetic and live feeds, `npm run backfill`, the ingest benchmark) puts them on the exchange:
 * - impossible bars are dropped before they are published (logged with the reason, counted);
 * - bars are grouped into messages of one symbol (BarBatch) when not paced;
 * - every message waits for its confirm, in order: on a failure the publisher resumes from the FIRST unconfirmed
 *   message with the same message ids, so downstream sees duplicates at worst, never a gap or a reordering.
 */
import type { Bar, BarBatch } from '../contracts/bar';
import { shortHash } from '../contracts/ids';
import type { Logger } from '../logging';
import type { BarValidator } from '../domain/marketdata/validation';
import { speedDelayMs } from '../adapters/marketdata/replay';
import {
  MARKET_BARS_EXCHANGE,
  PublishError,
  barRoutingKey,
  type BatchMessage,
  type ConfirmPublisher,
} from '../adapters/rabbitmq';
import { backoffDelay } from '../lib/backoff';
import { sleep } from '../lib/sleep';
import { barsPublished } from '../metrics';
import { CounterTally } from '../metrics/tally';

/**
 * Drop impossible bars (high < low, price <= 0, negative volume, future, out of order per symbol) before they
 * are published: each is logged with its reason and counted in the validator; the feed carries on.
 */
export function dropInvalidBars(bars: readonly Bar[], validator: BarValidator, logger?: Logger): Bar[] {
  const out: Bar[] = [];
  for (const bar of bars) {
    const r = validator.check(bar, bar.interval);
    if (r.ok) out.push(bar);
    else
      logger?.warn(
        { symbol: bar.symbol, bar_ts: bar.timestamp, source: bar.source, reason: r.reason, detail: r.detail },
        'impossible bar skipped',
      );
  }
  return out;
}

export interface ReplayOptions {
  publisher: ConfirmPublisher;
  bars: readonly Bar[];
  /** Default `market.bars`. */
  exchange?: string;
  /** Pause between bars. 0 = as fast as confirms allow (pipelined, `window` in flight). */
  intervalMs?: number;
  /** Replay speed factor against market time (1 = real time); overrides intervalMs. 0 = as fast as possible. */
  speed?: number;
  /** Messages in flight (unconfirmed) when not paced. Default 64. */
  window?: number;
  /** Bars of one symbol per message when not paced (BarBatch). Default 1. */
  batchSize?: number;
  /** Consecutive failed attempts before giving up. Default 10. */
  maxAttempts?: number;
  logger?: Logger;
  /** Called after each confirmed bar (1-based count). */
  onProgress?: (published: number, bar: Bar) => void;
  signal?: AbortSignal;
}

export interface ReplaySummary {
  published: number;
  retries: number;
  elapsedMs: number;
  first?: string;
  last?: string;
}

/** One RabbitMQ message: a single bar, or a batch of bars of one series (contracts/bar.ts BarBatchSchema). */
export interface BarUnit {
  bars: Bar[];
  body: Bar | BarBatch;
  messageId: string;
  correlationId: string;
  routingKey: string;
}

/**
 * Group bars into messages of up to `batchSize` bars of ONE symbol, preserving each symbol's order. Bars are
 * taken in windows of `batchSize × symbols` from the (time-interleaved) stream, so symbols stay roughly in
 * step with each other. batchSize 1 = one message per bar.
 */
export function toBarUnits(bars: readonly Bar[], batchSize = 1): BarUnit[] {
  const single = (bar: Bar): BarUnit => ({
    bars: [bar],
    body: bar,
    messageId: bar.message_id,
    correlationId: bar.correlation_id,
    routingKey: barRoutingKey(bar.interval, bar.symbol),
  });
  if (batchSize <= 1) return bars.map(single);
  const symbols = new Set(bars.map((b) => b.symbol)).size || 1;
  const span = batchSize * symbols;
  const out: BarUnit[] = [];
  for (let i = 0; i < bars.length; i += span) {
    const groups = new Map<string, Bar[]>();
    for (const bar of bars.slice(i, i + span)) {
      const k = `${bar.symbol}|${bar.interval}`;
      const g = groups.get(k) ?? [];
      g.push(bar);
      groups.set(k, g);
    }
    for (const g of groups.values()) {
      for (let j = 0; j < g.length; j += batchSize) {
        const chunk = g.slice(j, j + batchSize);
        if (chunk.length === 1) {
          out.push(single(chunk[0]!));
          continue;
        }
        const first = chunk[0]!;
        const messageId = `batch-${shortHash(first.message_id, chunk[chunk.length - 1]!.message_id, chunk.length)}`;
        const body: BarBatch = {
          schema_version: 1,
          kind: 'bar_batch',
          message_id: messageId,
          symbol: first.symbol,
          interval: first.interval,
          correlation_id: `corr-${messageId}`,
          bars: chunk,
        };
        out.push({
          bars: chunk,
          body,
          messageId,
          correlationId: body.correlation_id,
          routingKey: barRoutingKey(first.interval, first.symbol),
        });
      }
    }
  }
  return out;
}

/** The publisher's bar counter is labelled by source and symbol: the tally's key and subkey. */
const sourceSymbolLabels = (source: string, symbol: string) => ({ source, symbol });

/** A bar message as publishBatch writes it: the JSON body, serialised when it is written. */
function encodeUnit(u: BarUnit): BatchMessage {
  return {
    routingKey: u.routingKey,
    content: Buffer.from(JSON.stringify(u.body), 'utf8'),
    messageId: u.messageId,
    correlationId: u.correlationId,
  };
}

/** A bar as its own message (one bar a message, unpaced), as publishBatch writes it. */
function encodeBar(bar: Bar): BatchMessage {
  return {
    routingKey: barRoutingKey(bar.interval, bar.symbol),
    content: Buffer.from(JSON.stringify(bar), 'utf8'),
    messageId: bar.message_id,
    correlationId: bar.correlation_id,
  };
}

/** Publish bars in order, each confirmed; on a failure resumes from the first unconfirmed message (same ids). */
export async function replayBars(opts: ReplayOptions): Promise<ReplaySummary> {
  const exchange = opts.exchange ?? MARKET_BARS_EXCHANGE;
  const maxAttempts = opts.maxAttempts ?? 10;
  const intervalMs = opts.intervalMs ?? 0;
  const window = Math.max(1, opts.window ?? 64);
  const t0 = Date.now();
  let published = 0;
  let retries = 0;
  const paced = opts.speed !== undefined ? opts.speed > 0 : intervalMs > 0;
  const batchSize = paced ? 1 : (opts.batchSize ?? 1);
  // One bar a message, unpaced (the default, and the market-data rate): the bars themselves are the messages,
  // encoded as they are written (encodeBar). A unit built up front for each bar would outlive every
  // young-generation GC of the replay and be copied by each (bench:ingest).
  const barsAreMessages = !paced && batchSize <= 1;
  const units: readonly BarUnit[] = barsAreMessages ? [] : toBarUnits(opts.bars, batchSize);
  const messages = barsAreMessages ? opts.bars.length : units.length;

  // Per-bar bookkeeping stays off the hot path: the counts go to the labelled counter in bulk
  // (src/metrics/tally.ts), and the debug line is only built when debug is on.
  const tally = new CounterTally(barsPublished, sourceSymbolLabels);
  const debug = opts.logger?.isLevelEnabled('debug') ?? false;
  const confirmedBar = (bar: Bar) => {
    published++;
    tally.add(bar.source, bar.symbol);
    if (debug) {
      opts.logger?.debug(
        { correlation_id: bar.correlation_id, symbol: bar.symbol, bar_ts: bar.timestamp },
        'bar published',
      );
    }
    opts.onProgress?.(published, bar);
  };

  // Bars must reach the quant in time order (a bar older than one it has seen is treated as a duplicate), so a
  // failure never lets later bars overtake: messages go out in order, and on a failure we resume — after a
  // backoff — from the FIRST unconfirmed message, re-sending anything after it too (duplicates of confirmed bars
  // are harmless, same message ids; a gap or a reordering is not). Pacing sends one at a time, like a live feed.
  let i = 0; // first unconfirmed message
  let failures = 0;
  try {
    while (i < messages && !opts.signal?.aborted) {
      let err: PublishError | undefined;
      if (paced) {
        try {
          const u = units[i]!;
          await opts.publisher.publishJson(exchange, u.routingKey, u.body, {
            messageId: u.messageId,
            correlationId: u.correlationId,
          });
          for (const bar of u.bars) confirmedBar(bar);
          i++;
          failures = 0;
          if (i < messages) {
            const wait =
              opts.speed !== undefined
                ? speedDelayMs(units[i - 1]!.bars[0], units[i]!.bars[0]!, opts.speed)
                : intervalMs;
            if (wait > 0) await sleep(wait, opts.signal);
          }
          continue;
        } catch (e) {
          if (!(e instanceof PublishError)) throw e;
          err = e;
        }
      } else {
        // A sliding window of `window` unconfirmed messages, topped up as confirms stream back (temporal-guide
        // C.2/C.3: streaming confirms), tracked by position (publishBatch): no promise per message.
        const base = i;
        const batch = { window, signal: opts.signal };
        const outcome = barsAreMessages
          ? await opts.publisher.publishBatch(exchange, base === 0 ? opts.bars : opts.bars.slice(base), encodeBar, {
              ...batch,
              onConfirmed: (confirmed) => {
                for (const end = base + confirmed; i < end; i++) confirmedBar(opts.bars[i]!);
                failures = 0;
              },
            })
          : await opts.publisher.publishBatch(exchange, base === 0 ? units : units.slice(base), encodeUnit, {
              ...batch,
              onConfirmed: (confirmed) => {
                for (const end = base + confirmed; i < end; i++) for (const bar of units[i]!.bars) confirmedBar(bar);
                failures = 0;
              },
            });
        // publishBatch ends only once everything it wrote has settled, so resending from `i` overtakes nothing.
        err = outcome.error;
        if (err === undefined) continue;
      }
      failures++;
      if (err.reason === 'closed' || failures >= maxAttempts) throw err;
      retries++;
      const delay = backoffDelay(failures - 1, 200, 5000);
      opts.logger?.warn(
        {
          err,
          attempt: failures,
          message_id: barsAreMessages ? opts.bars[i]?.message_id : units[i]?.messageId,
          retry_in_ms: delay,
        },
        'bar publish not confirmed; resuming from it',
      );
      await sleep(delay, opts.signal);
    }
  } finally {
    tally.flush();
  }
  return {
    published,
    retries,
    elapsedMs: Date.now() - t0,
    first: published > 0 ? opts.bars[0]?.timestamp : undefined,
    last: published > 0 ? opts.bars[published - 1]?.timestamp : undefined,
  };
}
