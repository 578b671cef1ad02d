import { createLogger, type Logger } from '../../../logging';
import {
  AggsResponseSchema,
  ErrorBodySchema,
  parseAggRow,
  polygonRange,
  type PolygonTimespan,
  type RowParse,
} from './wire';
import { backoffDelay } from '../../../lib/backoff';
import { sleep } from '../../../lib/sleep';

/**
 * Polygon.io (Massive) REST aggregates: `GET /v2/aggs/ticker/{T}/range/{multiplier}/{timespan}/{from}/{to}`.
 *
 * Hand-written on Node's fetch rather than the official `@massive.com/client-js` (v10.8): that client sends the
 * key as an `apiKey` query parameter (so it rides along in every URL an HTTP error or a log prints), its
 * auto-pagination fetches every `next_url` back to back with no rate limiting and no 429 handling (the free
 * tier's 5 requests/min then fails long ranges: polygon-io/issues #303, #333), and it pulls axios, cross-fetch,
 * websocket and openapi-generator-cli in at run time. It does accept a custom base URL; that alone does not
 * make it fit. Here:
 *
 * - the key travels only in `Authorization: Bearer` (as the official Python client sends it), and only to the
 *   configured origin: a `next_url` is re-based onto POLYGON_BASE_URL, never followed to another host;
 * - at most `requestsPerWindow` requests start per `windowMs` (free tier: 5 per minute), across pages;
 * - 429 waits for `Retry-After` / `X-RateLimit-Reset` (else a backoff) and retries, without counting as a
 *   failure of the source; 5xx, timeouts and dropped connections retry with exponential backoff and jitter
 *   up to `maxAttempts`; 401/403/404 fail at once (retrying a bad key only burns the quota);
 * - a malformed row is skipped and counted; the rest of the page is kept.
 */

export type PolygonErrorKind = 'unauthorized' | 'forbidden' | 'not_found' | 'unavailable' | 'bad_response';

export class PolygonError extends Error {
  override readonly name = 'PolygonError';
  constructor(
    readonly kind: PolygonErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Worth trying again later (network, 5xx, rate limits), as opposed to a configuration problem. */
  get transient(): boolean {
    return this.kind === 'unavailable';
  }
}

export interface PolygonRestOptions {
  baseUrl: string;
  apiKey: string;
  logger?: Logger;
  /** Requests that may start per window. Default 5 (the free tier). 0 = unlimited. */
  requestsPerWindow?: number;
  /** Default 60 000 ms. */
  windowMs?: number;
  /** Per-request timeout. Default 10 000 ms. */
  timeoutMs?: number;
  /** Attempts per request on transient failures. Default 5. */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Longest 429 wait honoured before giving up on the request. Default 120 000 ms. */
  maxRateLimitWaitMs?: number;
  fetchImpl?: typeof fetch;
  random?: () => number;
}

export interface PolygonRestStats {
  requests: number;
  retries: number;
  rateLimited: number;
  pages: number;
  malformedRows: number;
}

export interface AggregatesQuery {
  ticker: string;
  /** `1d`, `1m`, `5m`, … */
  interval: string;
  /** `YYYY-MM-DD` or ms since epoch (inclusive). */
  from: string | number;
  to: string | number;
  /** Split-adjusted prices. Default true. */
  adjusted?: boolean;
  /** Base aggregates per page (max 50 000). Default 50 000. */
  limit?: number;
  signal?: AbortSignal;
}

/** Sliding-window limiter: at most `n` starts in any `windowMs`. */
export class RequestWindow {
  /** One stamp per request in the window, oldest first: its start, then the moment its answer came. */
  private readonly stamps: { t: number }[] = [];
  constructor(
    private readonly n: number,
    private readonly windowMs: number,
  ) {}

  /**
   * Wait (if needed) until a request may start, and record it. Call `answered()` when its response (or error)
   * arrives: the request then counts from that moment. The server counts arrivals, which trail our starts by a
   * delay that a loaded machine stretches without bound; an arrival never comes after its answer, so counting
   * from the answer keeps us inside the server's window however late each request reaches it.
   */
  async take(signal?: AbortSignal): Promise<{ answered(): void }> {
    if (this.n <= 0) return { answered: () => undefined };
    for (;;) {
      const now = Date.now();
      while (this.stamps.length && this.stamps[0]!.t <= now - this.windowMs) this.stamps.shift();
      if (this.stamps.length < this.n) {
        const stamp = { t: now };
        this.stamps.push(stamp);
        return {
          answered: () => {
            stamp.t = Math.max(stamp.t, Date.now());
            this.stamps.sort((a, b) => a.t - b.t);
          },
        };
      }
      // A small margin on top of the window, for the server's clock and rounding.
      await sleep(this.stamps[0]!.t + this.windowMs - now + Math.max(250, this.windowMs / 50), signal);
      if (signal?.aborted) throw new PolygonError('unavailable', 'aborted');
    }
  }

  /** The server said we are over: nothing more starts before `untilMs`. */
  blockUntil(untilMs: number): void {
    if (this.n <= 0) return;
    // Fill the window with stamps that expire at untilMs (stamps of requests in flight are dropped with it).
    this.stamps.length = 0;
    for (let i = 0; i < this.n; i++) this.stamps.push({ t: untilMs - this.windowMs });
  }
}

/** Milliseconds to wait from a 429's headers: Retry-After (seconds or HTTP date), else X-RateLimit-Reset. */
export function rateLimitWaitMs(headers: Headers, nowMs: number): number | undefined {
  const ra = headers.get('retry-after');
  if (ra !== null) {
    const s = Number(ra);
    if (Number.isFinite(s) && s >= 0) return s * 1000;
    const d = Date.parse(ra);
    if (!Number.isNaN(d)) return Math.max(0, d - nowMs);
  }
  const reset = headers.get('x-ratelimit-reset');
  if (reset !== null) {
    const n = Number(reset);
    if (Number.isFinite(n)) {
      const ms = n > 1e12 ? n : n * 1000; // epoch ms or epoch seconds
      return Math.max(0, ms - nowMs);
    }
  }
  return undefined;
}

export interface AggregatesPage {
  bars: Array<Extract<RowParse, { ok: true }>['bar']>;
  malformed: Array<{ index: number; detail: string }>;
  timespan: PolygonTimespan;
}

export class PolygonRestClient {
  readonly stats: PolygonRestStats = { requests: 0, retries: 0, rateLimited: 0, pages: 0, malformedRows: 0 };
  private readonly log: Logger;
  private readonly window: RequestWindow;
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;
  private readonly random: () => number;
  /** After a 429: no request starts before this instant (whatever the configured window). */
  private pausedUntil = 0;

  constructor(private readonly opts: PolygonRestOptions) {
    if (!opts.apiKey) throw new PolygonError('unauthorized', 'POLYGON_API_KEY is required for the Polygon source');
    this.log = (opts.logger ?? createLogger('polygon')).child({ component: 'polygon-rest' });
    this.window = new RequestWindow(opts.requestsPerWindow ?? 5, opts.windowMs ?? 60_000);
    this.base = new URL(opts.baseUrl);
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.random = opts.random ?? Math.random;
  }

  /** Every page of a range, following next_url, oldest first. */
  async *aggregatePages(q: AggregatesQuery): AsyncGenerator<AggregatesPage> {
    const { multiplier, timespan } = polygonRange(q.interval);
    const adjusted = q.adjusted ?? true;
    const path = `/v2/aggs/ticker/${encodeURIComponent(q.ticker)}/range/${multiplier}/${timespan}/${q.from}/${q.to}`;
    let url: URL | undefined = new URL(path, this.base);
    url.searchParams.set('adjusted', String(adjusted));
    url.searchParams.set('sort', 'asc');
    url.searchParams.set('limit', String(q.limit ?? 50_000));
    while (url) {
      const body = await this.getJson(url, q.signal);
      const env = AggsResponseSchema.safeParse(body);
      if (!env.success) throw new PolygonError('bad_response', `aggregates for ${q.ticker}: unexpected body shape`);
      if (env.data.status !== 'OK' && env.data.status !== 'DELAYED') {
        throw new PolygonError('bad_response', `aggregates for ${q.ticker}: status ${env.data.status}`);
      }
      if (env.data.adjusted !== undefined && env.data.adjusted !== adjusted) {
        throw new PolygonError('bad_response', `asked for adjusted=${adjusted}, got adjusted=${env.data.adjusted}`);
      }
      this.stats.pages++;
      const page: AggregatesPage = { bars: [], malformed: [], timespan };
      (env.data.results ?? []).forEach((row, index) => {
        const r = parseAggRow(row, q.ticker, timespan);
        if (r.ok) page.bars.push(r.bar);
        else page.malformed.push({ index, detail: r.detail });
      });
      if (page.malformed.length) {
        this.stats.malformedRows += page.malformed.length;
        this.log.warn(
          { ticker: q.ticker, malformed: page.malformed.length, first: page.malformed[0] },
          'malformed aggregate rows skipped',
        );
      }
      yield page;
      url = env.data.next_url ? this.rebase(env.data.next_url) : undefined;
    }
  }

  /** All bars of a range (every page). */
  async aggregates(q: AggregatesQuery): Promise<AggregatesPage['bars']> {
    const out: AggregatesPage['bars'] = [];
    for await (const page of this.aggregatePages(q)) out.push(...page.bars);
    return out;
  }

  /** next_url on our configured origin (never send the key to a host we were not configured for). */
  private rebase(nextUrl: string): URL {
    const u = new URL(nextUrl, this.base);
    const out = new URL(u.pathname + u.search, this.base);
    out.searchParams.delete('apiKey');
    return out;
  }

  private async getJson(url: URL, signal?: AbortSignal): Promise<unknown> {
    const maxAttempts = this.opts.maxAttempts ?? 5;
    const what = `GET ${url.pathname}`; // no query string, no key: safe for logs and errors
    let attempt = 0;
    for (;;) {
      attempt++;
      const pause = this.pausedUntil - Date.now();
      if (pause > 0) await sleep(pause, signal);
      if (signal?.aborted) throw new PolygonError('unavailable', `${what}: aborted`);
      const slot = await this.window.take(signal);
      this.stats.requests++;
      let res: Response;
      try {
        res = await this.fetchImpl(url, {
          headers: { authorization: `Bearer ${this.opts.apiKey}`, accept: 'application/json' },
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs ?? 10_000)])
            : AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
        });
        slot.answered();
      } catch (err) {
        slot.answered();
        if (signal?.aborted) throw new PolygonError('unavailable', `${what}: aborted`);
        const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed';
        if (attempt >= maxAttempts) {
          throw new PolygonError('unavailable', `${what}: ${reason} after ${attempt} attempts`, undefined, {
            cause: err,
          });
        }
        await this.backoff(attempt, what, reason, signal);
        continue;
      }
      if (res.ok) {
        try {
          return await res.json();
        } catch (err) {
          // A connection dropped mid-body, or a proxy's HTML page: transient.
          if (attempt >= maxAttempts) throw new PolygonError('unavailable', `${what}: unreadable body`, res.status);
          await this.backoff(attempt, what, `unreadable body (${(err as Error).message})`, signal);
          continue;
        }
      }
      const detail = await errorDetail(res);
      if (res.status === 401) throw new PolygonError('unauthorized', `${what}: 401 ${detail}`, 401);
      if (res.status === 403) throw new PolygonError('forbidden', `${what}: 403 ${detail}`, 403);
      if (res.status === 404) throw new PolygonError('not_found', `${what}: 404 ${detail}`, 404);
      if (res.status === 429) {
        this.stats.rateLimited++;
        const wait = rateLimitWaitMs(res.headers, Date.now()) ?? backoffDelay(attempt, 1000, 60_000, this.random);
        if (wait > (this.opts.maxRateLimitWaitMs ?? 120_000)) {
          throw new PolygonError('unavailable', `${what}: 429, reset in ${wait} ms is too far`, 429);
        }
        this.pausedUntil = Date.now() + wait;
        this.window.blockUntil(this.pausedUntil);
        attempt--; // a 429 is the server pacing us, not a failure: no attempt is used up
        this.log.warn({ path: url.pathname, wait_ms: wait }, 'Polygon rate limit (429): waiting for the reset');
        continue;
      }
      if (res.status >= 500 || res.status === 408 || res.status === 413 || res.status === 499) {
        if (attempt >= maxAttempts) {
          throw new PolygonError('unavailable', `${what}: ${res.status} after ${attempt} attempts`, res.status);
        }
        await this.backoff(attempt, what, `${res.status} ${detail}`, signal);
        continue;
      }
      throw new PolygonError('bad_response', `${what}: ${res.status} ${detail}`, res.status);
    }
  }

  private async backoff(attempt: number, what: string, reason: string, signal?: AbortSignal): Promise<void> {
    this.stats.retries++;
    const delay = backoffDelay(
      attempt - 1,
      this.opts.backoffBaseMs ?? 500,
      this.opts.backoffMaxMs ?? 30_000,
      this.random,
    );
    this.log.warn({ request: what, reason, attempt, retry_in_ms: delay }, 'Polygon request failed; retrying');
    await sleep(delay, signal);
    if (signal?.aborted) throw new PolygonError('unavailable', `${what}: aborted`);
  }
}

async function errorDetail(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const b = ErrorBodySchema.parse(JSON.parse(text));
    return [b.status, b.message ?? b.error].filter(Boolean).join(': ').slice(0, 300);
  } catch {
    return text.slice(0, 120).replace(/\s+/g, ' ');
  }
}
