import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerRateLimitedError, BrokerRejectedError, BrokerUnavailableError } from '../../adapters/brokers/broker';
import { ALPACA_CODES, AlpacaWireError } from '../../adapters/brokers/alpaca/wire';

/**
 * Alpaca's HTTP conventions on the venue side: JSON bodies, `{"code","message"}` error bodies with Alpaca's
 * numeric codes, and the mapping from the Broker port's errors to the status a real Alpaca would answer —
 * the client adapter (alpaca/rest.ts) classifies retries by exactly these statuses and codes.
 */

/** An answer that is an error: status, Alpaca error body, extra headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? status));
  }
}

export const notFound = (what = 'order not found') =>
  new HttpError(404, { code: ALPACA_CODES.NOT_FOUND, message: what });

export const validationError = (message: string) => new HttpError(422, { code: ALPACA_CODES.VALIDATION, message });

const MAX_BODY_BYTES = 1 << 20;

/** Alpaca codes are numbers on the wire; a venue reject code that is not numeric passes through as a string. */
function alpacaCode(code: string): number | string {
  return /^\d+$/.test(code) ? Number(code) : code;
}

/** A Broker error → Alpaca status + body. undefined for anything else (a bug: the caller answers 500). */
export function toHttpError(err: unknown, nowMs: number): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof BrokerRejectedError) {
    const status =
      err.httpStatus ??
      (err.code === 'unauthorized' ? 401 : err.code.startsWith('403') ? 403 : err.code.startsWith('404') ? 404 : 422);
    return new HttpError(status, { code: alpacaCode(err.code), message: err.message });
  }
  if (err instanceof BrokerRateLimitedError) {
    return new HttpError(
      429,
      { code: ALPACA_CODES.RATE_LIMITED, message: 'rate limit exceeded' },
      { 'X-Ratelimit-Remaining': '0', 'X-Ratelimit-Reset': String(Math.ceil((nowMs + err.retryAfterMs) / 1000)) },
    );
  }
  if (err instanceof BrokerUnavailableError) {
    return new HttpError(503, { code: ALPACA_CODES.INTERNAL, message: err.message });
  }
  if (err instanceof AlpacaWireError)
    return new HttpError(422, { code: ALPACA_CODES.VALIDATION, message: err.message });
  return undefined;
}

/** The request body, at most 1 MiB (413 beyond, and the connection is dropped). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, { code: ALPACA_CODES.MALFORMED_BODY, message: 'request body too large' }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The raw body as JSON (undefined when empty); 400 / 40010000 when it is not JSON, as Alpaca answers. */
export function parseJsonBody(raw: string): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw new HttpError(400, { code: ALPACA_CODES.MALFORMED_BODY, message: 'request body format is invalid' });
  }
}

/** Write a JSON answer, unless the response already ended (a hook may have answered or destroyed it). */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.writableEnded || res.destroyed) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    ...(text
      ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) }
      : {}),
  });
  res.end(text);
}
