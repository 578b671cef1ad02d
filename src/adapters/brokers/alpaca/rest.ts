import type { Logger } from '../../../logging';
import { BrokerRateLimitedError, BrokerRejectedError, BrokerUnavailableError, type BrokerCallOptions } from '../broker';
import { RequestBudget, type BrokerCallPriority } from '../request-budget';
import type { AlpacaErrorBody } from './wire';
import { brokerErrors, brokerOperation, brokerRequests, rateLimitWaitSeconds, rateLimitWaits } from '../../../metrics';

/** Error kind of a non-2xx answer, for sat_broker_errors_total. */
function errorKind(status: number): string {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status >= 500) return 'server';
  return 'rejected';
}

/**
 * Thin REST transport for Alpaca v2. Every request first takes a token from the process's request
 * budget (RequestBudget), by priority. The only retry it ever makes is of a request answered 429 (see
 * `request`); anything else — timeouts, resets, 5xx — is the caller's decision, because only the
 * caller knows whether a retry must first look the order up (POST /v2/orders is not idempotent on the
 * wire; a blind retry after a lost response is how duplicate orders happen).
 */

export type HttpMethod = 'GET' | 'POST' | 'DELETE';

export interface RestResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

export interface AlpacaRestOptions {
  baseUrl: string;
  keyId: string;
  secretKey: string;
  timeoutMs: number;
  logger: Logger;
  fetch?: typeof fetch;
  now?: () => number;
  /** The process's request budget. Default: an unlimited one (429 pauses still apply). */
  budget?: RequestBudget;
}

export interface RequestOptions extends BrokerCallOptions {
  query?: Record<string, string>;
  body?: unknown;
  priority: BrokerCallPriority;
}

/** Bounds for a 429's wait: at least 1 s (reset is whole seconds), at most the 60 s rate window (clock skew). */
export const MIN_RETRY_AFTER_MS = 1_000;
export const MAX_RETRY_AFTER_MS = 60_000;

/** Transport errors where the request provably never reached the server (safe, not ambiguous). */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class AlpacaRestClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  readonly budget: RequestBudget;
  /** 429 answers received and waited out (never counted as a failure). */
  rateLimitedResponses = 0;

  constructor(private readonly opts: AlpacaRestOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
    this.budget = opts.budget ?? new RequestBudget({ limitPerMinute: 0, now: this.now });
  }

  /**
   * One logical request through the budget. A 429 is waited out and the same request sent again, as
   * often as it takes: it never counts as a failed attempt. The whole budget pauses until the broker's
   * reset, so other callers queue instead of drawing more 429s.
   *
   * Re-sending after a 429 is safe for every method, including POST /v2/orders: Alpaca's rate limiter
   * answers before the request reaches order handling, so a 429'd POST placed nothing; and were that
   * ever not so, the re-POST carries the same client_order_id, which Alpaca refuses to reuse ("client_order_id
   * must be unique"), and submitOrder turns that answer into the existing order — never a second one.
   *
   * Bounded by the caller: when `signal` fires or the reset falls after `deadlineMs`, it throws
   * BrokerRateLimitedError with the wait still needed (retryAfterMs) instead of waiting.
   */
  async request(method: HttpMethod, path: string, opts: RequestOptions): Promise<RestResponse> {
    const acquire = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    for (;;) {
      await this.budget.acquire(opts.priority, acquire);
      const res = await this.send(method, path, opts);
      if (res.status !== 429) return res;
      this.rateLimitedResponses++;
      const waitMs = this.retryAfterMs(res.headers);
      const where = opts.priority === 'poll' ? 'order_poll' : `broker_${opts.priority}`;
      rateLimitWaits.inc({ where });
      rateLimitWaitSeconds.inc({ where }, waitMs / 1000);
      this.budget.pauseUntil(this.now() + waitMs);
      const giveUp =
        opts.signal?.aborted === true || (opts.deadlineMs !== undefined && this.now() + waitMs > opts.deadlineMs);
      this.opts.logger.warn(
        { method, path, retryAfterMs: waitMs, priority: opts.priority, giveUp },
        giveUp ? 'alpaca 429: past the caller deadline' : 'alpaca 429: budget paused until the reset; will resend',
      );
      if (giveUp) throw this.errorFor(method, path, res);
    }
  }

  /**
   * One HTTP exchange. Resolves with any HTTP status (callers handle the statuses that are not errors
   * for them, e.g. 404 on a lookup); rejects only with BrokerUnavailableError for transport failures.
   * The timeout covers the whole exchange including reading the body.
   */
  async send(
    method: HttpMethod,
    path: string,
    opts: { query?: Record<string, string>; body?: unknown } = {},
  ): Promise<RestResponse> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.opts.timeoutMs);
    const started = this.now();
    // POST (and DELETE) may have been executed when the response is lost; GET never changes anything.
    const mutating = method !== 'GET';
    const operation = brokerOperation(method, path);
    brokerRequests.inc({ operation });
    try {
      const headers: Record<string, string> = {
        'APCA-API-KEY-ID': this.opts.keyId,
        'APCA-API-SECRET-KEY': this.opts.secretKey,
        accept: 'application/json',
      };
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      const res = await this.fetchImpl(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: ctl.signal,
      });
      const text = await res.text();
      let body: unknown = null;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = { message: text.slice(0, 500) };
        }
      }
      // Never log headers: they carry the key pair.
      this.opts.logger.debug(
        { method, path: url.pathname, status: res.status, ms: this.now() - started },
        'alpaca http',
      );
      // 404 on a lookup by client order id is an answer ("no such order"), not a failure.
      if (res.status >= 400 && !(res.status === 404 && method === 'GET')) {
        brokerErrors.inc({ operation, kind: errorKind(res.status) });
      }
      return { status: res.status, body, headers: res.headers };
    } catch (err) {
      const code = causeCode(err);
      const timedOut = ctl.signal.aborted;
      brokerErrors.inc({ operation, kind: timedOut ? 'timeout' : 'network' });
      const ambiguous = mutating && (timedOut || !(code !== undefined && NOT_SENT_CODES.has(code)));
      const what = timedOut
        ? `timed out after ${this.opts.timeoutMs} ms`
        : `failed (${code ?? (err as Error).message})`;
      this.opts.logger.warn(
        { method, path: url.pathname, ms: this.now() - started, code, ambiguous },
        `alpaca http ${what}`,
      );
      throw new BrokerUnavailableError(`Alpaca ${method} ${url.pathname} ${what}`, ambiguous);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Map a non-2xx response to the Broker error vocabulary (see docs/brokers.md, error table). */
  errorFor(method: HttpMethod, path: string, res: RestResponse): Error {
    const body = (res.body && typeof res.body === 'object' ? res.body : {}) as AlpacaErrorBody;
    const message = typeof body.message === 'string' && body.message ? body.message : `HTTP ${res.status}`;
    const code = body.code === undefined || body.code === null ? undefined : String(body.code);
    const what = `Alpaca ${method} ${path}: ${message}`;
    if (res.status === 401)
      return new BrokerRejectedError(
        `${what} (check BROKER_API_KEY / BROKER_API_SECRET and ALPACA_BASE_URL)`,
        'unauthorized',
        401,
      );
    if (res.status === 429) return new BrokerRateLimitedError(what, this.retryAfterMs(res.headers));
    if (res.status >= 500) {
      // A 5xx on POST can follow a successful placement (Alpaca-API#270): ambiguous.
      return new BrokerUnavailableError(`${what} (HTTP ${res.status})`, method !== 'GET');
    }
    if (res.status === 408) return new BrokerUnavailableError(`${what} (HTTP 408)`, method !== 'GET');
    // 400/403/404/409/422 and other 4xx: a definitive answer. Keep Alpaca's own code and message.
    return new BrokerRejectedError(message, code ?? `http_${res.status}`, res.status);
  }

  /** X-Ratelimit-Reset is the epoch second when the window resets; Retry-After (seconds) as a fallback. */
  retryAfterMs(headers: Headers): number {
    const reset = Number(headers.get('x-ratelimit-reset'));
    let ms = Number.NaN;
    if (Number.isFinite(reset) && reset > 0) ms = reset * 1000 - this.now();
    else {
      const ra = Number(headers.get('retry-after'));
      if (Number.isFinite(ra) && ra >= 0) ms = ra * 1000;
    }
    if (!Number.isFinite(ms)) return MIN_RETRY_AFTER_MS;
    return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, Math.ceil(ms)));
  }
}
