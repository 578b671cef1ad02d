import type { Bar } from '../contracts/bar';
import type { PolygonRestClient } from '../adapters/marketdata/polygon/rest';
import { sleep } from '../lib/sleep';
import { PolygonStream, type PolygonStreamOptions, type StreamBar } from '../adapters/marketdata/polygon/stream';
import { POLYGON_REST_SOURCE, POLYGON_WS_SOURCE } from '../adapters/marketdata/polygon/wire';
import type { FeedContext, FeedSource, SourcedBar } from './market-feed';

/** The sources of the live feed's fallback chain (services/market-feed.ts). */

/** Polygon WebSocket aggregates (AM for 1m, A for 1s). Fails on a drop; the feed decides what next. */
export function websocketSource(opts: PolygonStreamOptions): FeedSource {
  return {
    name: POLYGON_WS_SOURCE,
    async run(ctx: FeedContext) {
      const stream = new PolygonStream(opts);
      // Aggregates arrive synchronously in order; publish them in that order, after the gap fill.
      let chain: Promise<void> = Promise.resolve();
      let failed: unknown;
      const push = (f: () => Promise<void>) => {
        chain = chain.then(f).catch((err: unknown) => {
          failed ??= err;
        });
      };
      let streamErr: unknown;
      try {
        await stream.run(
          (bar: StreamBar) => push(() => (failed ? Promise.resolve() : ctx.emit([bar], POLYGON_WS_SOURCE))),
          ctx.signal,
          () => push(() => ctx.ready()),
        );
      } catch (err) {
        streamErr = err;
      }
      // Bars received before a drop are still published, in order, before the feed moves on.
      await chain;
      if (failed) throw failed as Error;
      if (streamErr) throw streamErr as Error;
    },
    async probe(signal: AbortSignal) {
      const ac = new AbortController();
      const stop = () => ac.abort();
      signal.addEventListener('abort', stop, { once: true });
      try {
        await new PolygonStream(opts).run(
          () => undefined,
          ac.signal,
          () => ac.abort(),
        );
      } finally {
        signal.removeEventListener('abort', stop);
      }
      if (signal.aborted) throw new Error('probe aborted');
    },
  };
}

/**
 * Polygon REST polling: every `pollMs`, each symbol's aggregates since its last published bar (or `startFromMs`)
 * up to now. The rate limit lives in the client (free tier: 5/min across every symbol).
 */
export function restPollingSource(opts: {
  client: PolygonRestClient;
  pollMs: number;
  startFromMs: number;
  adjusted?: boolean;
  now?: () => number;
}): FeedSource {
  const now = opts.now ?? Date.now;
  return {
    name: POLYGON_REST_SOURCE,
    async run(ctx: FeedContext) {
      while (!ctx.signal.aborted) {
        for (const symbol of ctx.symbols) {
          if (ctx.signal.aborted) return;
          const from = (ctx.since(symbol) ?? opts.startFromMs - 1) + 1;
          const bars = await opts.client.aggregates({
            ticker: symbol,
            interval: ctx.interval,
            from,
            to: now(),
            adjusted: opts.adjusted ?? true,
            signal: ctx.signal,
          });
          ctx.healthy();
          await ctx.emit(bars, POLYGON_REST_SOURCE);
        }
        await sleep(opts.pollMs, ctx.signal);
      }
    },
    async probe(signal: AbortSignal) {
      const t = now();
      await opts.client.aggregates({ ticker: 'SPY', interval: '1d', from: t - 86_400_000, to: t, signal });
    },
  };
}

/**
 * Recorded bars (the watchlist replay), from after the last published bar of each symbol: the chain's last
 * resort, and the main job's source. Ends (resolves) when the recording does.
 */
export function replaySource(opts: { bars: readonly Bar[]; intervalMs: number }): FeedSource {
  return {
    name: 'replay',
    async run(ctx: FeedContext) {
      for (const bar of opts.bars) {
        if (ctx.signal.aborted) return;
        const since = ctx.since(bar.symbol);
        if (since !== undefined && Date.parse(bar.timestamp) <= since) continue;
        const b: SourcedBar = {
          symbol: bar.symbol,
          timestamp: bar.timestamp,
          open: bar.open,
          high: bar.high,
          low: bar.low,
          close: bar.close,
          volume: bar.volume,
        };
        await ctx.emit([b], 'replay');
        ctx.healthy();
        if (opts.intervalMs > 0) await sleep(opts.intervalMs, ctx.signal);
      }
    },
  };
}
