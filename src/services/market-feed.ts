import type { Bar, OhlcvBar } from '../contracts/bar';
import { toBarMessage } from '../adapters/marketdata/replay';
import { PolygonError } from '../adapters/marketdata/polygon/rest';
import { backoffDelay } from '../lib/backoff';
import { sleep } from '../lib/sleep';
import { POLYGON_PROVIDER } from '../adapters/marketdata/polygon/wire';
import { CircuitBreaker } from '../domain/marketdata/circuit-breaker';
import { BarValidator, type BarRejection } from '../domain/marketdata/validation';
import { createLogger, type Logger } from '../logging';
import { marketDataSourceSwitches } from '../metrics';

/**
 * The live market-data feed: a chain of sources in order of preference (default: Polygon WebSocket → Polygon
 * REST polling → replay), one circuit breaker per source, and one ordered, de-duplicated, validated output.
 *
 * - A failing source is retried with exponential backoff and jitter; after `failureThreshold` consecutive
 *   failures (or at once for a configuration error such as a bad key) its breaker opens and the feed switches
 *   to the next source. Every switch is logged and counted (sat_marketdata_source_switches_total).
 * - While on a fallback, sources higher in the chain are probed every `probeEveryMs` once their breaker allows
 *   (`probeAfterMs` after it opened); a successful probe switches back.
 * - When a source becomes live (`ctx.ready()`), the gap since the last published bar of each symbol is filled
 *   from REST first (`backfill`), so a switch leaves no hole.
 * - Every bar passes the validator (impossible bars and bars at or before the last published bar of their
 *   symbol are dropped and counted) and a message-id check (a bar already published, e.g. from REST after the
 *   WebSocket delivered it, is skipped). Ids are per provider, so Polygon REST and WebSocket copies of a bar
 *   share one id, and downstream consumers de-duplicate by it too.
 * - Bars are handed to `publish` in order, one call at a time; a publish failure stops the feed (it is the
 *   publisher's job to retry; a bar that cannot be published must not be skipped).
 */

export type SourcedBar = OhlcvBar & { vwap?: number };

export interface FeedContext {
  readonly signal: AbortSignal;
  readonly symbols: readonly string[];
  readonly interval: string;
  /** Last published bar start (ms) of a symbol. */
  since(symbol: string): number | undefined;
  /** Validate, de-duplicate and publish, in order. Resolves once published (confirmed). */
  emit(bars: readonly SourcedBar[], source: string): Promise<void>;
  /** The source works (resets its breaker). */
  healthy(): void;
  /** The source is live from now on: fill the gap since the last bar (REST) before its bars are published. */
  ready(): Promise<void>;
}

export interface FeedSource {
  readonly name: string;
  /** Run until ctx.signal aborts (resolve) or the source fails (reject). Resolving early = exhausted. */
  run(ctx: FeedContext): Promise<void>;
  /** A cheap check that the source works again (WebSocket: connect, auth, subscribe). */
  probe?(signal: AbortSignal): Promise<void>;
}

export class FeedPublishError extends Error {
  override readonly name = 'FeedPublishError';
}

export interface MarketFeedOptions {
  sources: FeedSource[];
  symbols: readonly string[];
  interval: string;
  publish: (bars: Bar[]) => Promise<void>;
  /** Where history starts for a symbol with no bar yet (the first gap fill). Default: no initial fill. */
  startFromMs?: number;
  /** Fill a gap from REST: bars of `symbol` with start > `sinceMs` up to now. */
  backfill?: (symbol: string, sinceMs: number, signal: AbortSignal) => Promise<SourcedBar[]>;
  failureThreshold?: number;
  probeAfterMs?: number;
  probeEveryMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface MarketFeedStats {
  published: number;
  duplicates: number;
  rejected: Partial<Record<BarRejection, number>>;
  switches: Array<{ from: string; to: string; reason: string }>;
  failures: Record<string, number>;
  backfilled: number;
  active: string | undefined;
  /** Times a source went live (ready, gap filled). */
  readies: number;
}

function providerOf(source: string): string {
  return source.startsWith('polygon') ? POLYGON_PROVIDER : source;
}

const SEEN_CAP = 200_000;

export class MarketFeed {
  readonly stats: MarketFeedStats = {
    published: 0,
    duplicates: 0,
    rejected: {},
    switches: [],
    failures: {},
    backfilled: 0,
    active: undefined,
    readies: 0,
  };
  readonly breakers: CircuitBreaker[];
  private readonly validator: BarValidator;
  private readonly seen = new Set<string>();
  private readonly log: Logger;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: MarketFeedOptions) {
    if (opts.sources.length === 0) throw new Error('market feed: at least one source');
    this.log = (opts.logger ?? createLogger('dataflow')).child({ component: 'market-feed' });
    this.validator = new BarValidator({ now: opts.now ?? Date.now });
    this.breakers = opts.sources.map(
      () =>
        new CircuitBreaker({
          failureThreshold: opts.failureThreshold ?? 3,
          probeAfterMs: opts.probeAfterMs ?? 60_000,
          ...(opts.now ? { now: opts.now } : {}),
        }),
    );
  }

  since(symbol: string): number | undefined {
    return this.validator.lastAccepted(symbol, this.opts.interval);
  }

  /** Validate, de-duplicate and publish in order (serialised across callers). */
  emit(bars: readonly SourcedBar[], source: string): Promise<void> {
    const run = this.chain.then(() => this.emitNow(bars, source));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async emitNow(bars: readonly SourcedBar[], source: string): Promise<void> {
    const out: Bar[] = [];
    for (const b of bars) {
      if (!this.opts.symbols.includes(b.symbol)) continue;
      const check = this.validator.check(b, this.opts.interval);
      if (!check.ok) {
        if (check.reason === 'out_of_order') {
          // At or before the last published bar: a copy from an overlapping source, not bad data.
          this.stats.duplicates++;
          continue;
        }
        this.stats.rejected[check.reason] = (this.stats.rejected[check.reason] ?? 0) + 1;
        this.log.warn(
          { symbol: b.symbol, bar_ts: b.timestamp, source, reason: check.reason, detail: check.detail },
          'impossible bar skipped',
        );
        continue;
      }
      const bar = toBarMessage(b, this.opts.interval, source, b.vwap, providerOf(source));
      if (this.seen.has(bar.message_id)) {
        this.stats.duplicates++;
        continue;
      }
      out.push(bar);
    }
    if (out.length === 0) return;
    try {
      await this.opts.publish(out);
    } catch (err) {
      throw new FeedPublishError(`publishing ${out.length} bar(s) failed: ${(err as Error).message}`, { cause: err });
    }
    for (const b of out) {
      if (this.seen.size >= SEEN_CAP) this.seen.delete(this.seen.values().next().value as string);
      this.seen.add(b.message_id);
    }
    this.stats.published += out.length;
  }

  private async fillGap(signal: AbortSignal): Promise<void> {
    if (!this.opts.backfill) return;
    for (const symbol of this.opts.symbols) {
      const since = this.since(symbol) ?? (this.opts.startFromMs === undefined ? undefined : this.opts.startFromMs - 1);
      if (since === undefined) continue;
      try {
        const bars = await this.opts.backfill(symbol, since, signal);
        const before = this.stats.published;
        await this.emit(bars, 'polygon-rest');
        const n = this.stats.published - before;
        this.stats.backfilled += n;
        if (n > 0) this.log.info({ symbol, bars: n, since: new Date(since).toISOString() }, 'gap backfilled from REST');
      } catch (err) {
        if (err instanceof FeedPublishError) throw err;
        this.log.warn({ err, symbol }, 'gap backfill from REST failed; the gap stays open until the next switch');
      }
    }
  }

  /** Run the chain until `signal` aborts or the last source is exhausted. */
  async run(signal: AbortSignal): Promise<void> {
    const { sources } = this.opts;
    let active = 0;
    let previous: number | undefined;
    let reason = 'start';
    while (!signal.aborted) {
      if (previous !== active) {
        const from = previous === undefined ? '(none)' : sources[previous]!.name;
        const to = sources[active]!.name;
        this.stats.active = to;
        if (previous !== undefined) {
          this.stats.switches.push({ from, to, reason });
          marketDataSourceSwitches.inc({ from, to });
          this.log.warn({ from, to, reason }, 'market data source switched');
        } else {
          this.log.info({ source: to }, 'market data source');
        }
        previous = active;
      }
      const src = sources[active]!;
      const breaker = this.breakers[active]!;
      const runAbort = new AbortController();
      const onOuter = () => runAbort.abort();
      signal.addEventListener('abort', onOuter, { once: true });
      let promoteTo: number | undefined;
      let probing = false;
      const probeTimer =
        active > 0
          ? setInterval(() => {
              if (probing || promoteTo !== undefined) return;
              probing = true;
              void this.probeHigher(active, runAbort.signal).then((i) => {
                probing = false;
                if (i !== undefined && promoteTo === undefined) {
                  promoteTo = i;
                  runAbort.abort();
                }
              });
            }, this.opts.probeEveryMs ?? 5_000)
          : undefined;
      const ctx: FeedContext = {
        signal: runAbort.signal,
        symbols: this.opts.symbols,
        interval: this.opts.interval,
        since: (s) => this.since(s),
        emit: (bars, source) => this.emit(bars, source),
        healthy: () => breaker.recordSuccess(),
        ready: async () => {
          breaker.recordSuccess();
          await this.fillGap(runAbort.signal);
          this.stats.readies++;
        },
      };
      try {
        await src.run(ctx);
        if (promoteTo !== undefined) {
          reason = `${sources[promoteTo]!.name} is back (probe succeeded)`;
          active = promoteTo;
          continue;
        }
        if (signal.aborted) break;
        if (active === sources.length - 1) {
          this.log.info({ source: src.name }, 'last market data source exhausted; feed ends');
          break;
        }
        reason = `${src.name} exhausted`;
        this.breakers[active]!.recordFailure();
        active = this.nextAvailable(active);
      } catch (err) {
        if (err instanceof FeedPublishError) throw err;
        if (promoteTo !== undefined) {
          reason = `${sources[promoteTo]!.name} is back (probe succeeded)`;
          active = promoteTo;
          continue;
        }
        if (signal.aborted) break;
        this.stats.failures[src.name] = (this.stats.failures[src.name] ?? 0) + 1;
        const permanent = err instanceof PolygonError && !err.transient;
        let opened = breaker.recordFailure();
        while (permanent && !opened && !breaker.isOpen) opened = breaker.recordFailure();
        this.log.warn(
          { err, source: src.name, consecutive_failures: breaker.consecutiveFailures, breaker: breaker.state },
          'market data source failed',
        );
        if (breaker.isOpen && active < sources.length - 1) {
          reason = `${src.name} failed ${breaker.consecutiveFailures}x: ${(err as Error).message}`;
          active = this.nextAvailable(active);
        } else {
          // The last resort, or not yet enough failures to give up on it: back off and try again.
          const delay = backoffDelay(
            Math.max(0, breaker.consecutiveFailures - 1),
            this.opts.backoffBaseMs ?? 1000,
            this.opts.backoffMaxMs ?? 30_000,
          );
          await sleep(delay, signal);
        }
      } finally {
        if (probeTimer) clearInterval(probeTimer);
        signal.removeEventListener('abort', onOuter);
        runAbort.abort();
      }
    }
    await this.chain;
  }

  /** The first source after `i` whose breaker is not open (the last one if all are). */
  private nextAvailable(i: number): number {
    const n = this.opts.sources.length;
    for (let j = i + 1; j < n; j++) if (!this.breakers[j]!.isOpen) return j;
    return n - 1;
  }

  /** Probe sources above `active` whose breaker is due; the index of the first that works. */
  private async probeHigher(active: number, signal: AbortSignal): Promise<number | undefined> {
    for (let i = 0; i < active; i++) {
      const b = this.breakers[i]!;
      if (!b.tryProbe()) continue;
      const src = this.opts.sources[i]!;
      try {
        if (!src.probe) throw new Error('no probe');
        await src.probe(signal);
        b.recordSuccess();
        this.log.info({ source: src.name }, 'market data source probe succeeded');
        return i;
      } catch (err) {
        b.recordFailure();
        this.log.info({ source: src.name, err: (err as Error).message }, 'market data source probe failed; staying');
      }
    }
    return undefined;
  }
}
