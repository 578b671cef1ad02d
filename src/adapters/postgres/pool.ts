import { Client, Pool, types, type ClientConfig, type PoolClient } from 'pg';
import { createLogger, type Logger } from '../../logging';

export interface PoolOptions {
  /** Where connection errors are reported (default: a `postgres` logger). */
  logger?: Logger;
  /** application_name shown in pg_stat_activity. */
  applicationName?: string;
}

/**
 * A pool that survives PostgreSQL going away (restart, failover, `pg_terminate_backend`).
 *
 * node-postgres emits `'error'` on the pool for an idle client whose connection dies, and on the *client* for a
 * checked-out one (the server's "terminating connection due to administrator command" is followed by the socket
 * closing, which a client reports as an `'error'` event even after its running query was failed). An `'error'`
 * event without a listener is an uncaught exception that ends the process, so both get a listener here: the
 * error is logged, the pool discards the broken client, and the next `connect()` dials a fresh one. The query
 * that was running when the server went away fails with the error, and its caller (a Temporal activity) retries.
 *
 * NUMERIC (oid 1700) and BIGINT (oid 20) arrive as strings by default; ledger code converts explicitly
 * with toNumber() where it needs arithmetic, so money never passes through an implicit float parse.
 */
export function createPool(databaseUrl: string, max = 10, opts: PoolOptions = {}): Pool {
  const log = (opts.logger ?? createLogger('postgres')).child({ component: 'pg-pool' });
  const pool = new Pool({
    connectionString: databaseUrl,
    max,
    application_name: opts.applicationName ?? 'stockautotrader',
    // Notice a half-open connection (server host gone without a FIN) instead of waiting on it for ever: TCP
    // keepalive probes start after 10 s idle (the OS default would wait two hours).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A server that accepts TCP but never answers (starting up, overloaded) fails the connect instead of hanging it.
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', (err) => {
    log.warn({ err: pgErrorSummary(err) }, 'idle PostgreSQL connection lost; the pool replaces it');
  });
  pool.on('connect', (client) => {
    client.on('error', (err) => {
      log.warn({ err: pgErrorSummary(err) }, 'PostgreSQL connection lost while checked out; its query is retried');
    });
  });
  return pool;
}

/**
 * A single connection for short admin work (CREATE DATABASE, ...), with the same `'error'` listener a pool's
 * clients get: a server restart while it is open fails its query instead of crashing the process.
 */
export function createClient(config: string | ClientConfig, logger?: Logger): Client {
  const client = new Client(typeof config === 'string' ? { connectionString: config } : config);
  const log = (logger ?? createLogger('postgres')).child({ component: 'pg-client' });
  client.on('error', (err) => log.warn({ err: pgErrorSummary(err) }, 'PostgreSQL connection lost'));
  return client;
}

/** The parts of a pg error worth logging (message, SQLSTATE), never the connection string. */
export function pgErrorSummary(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown };
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}

/** One round trip on a pooled connection: PostgreSQL answers (readiness checks). */
export async function pingDatabase(pool: Pool): Promise<void> {
  await pool.query('SELECT 1');
}

/** Parse a NUMERIC column. */
export function toNumber(v: string | number | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : Number(v);
}

export { types };

/** Where a statement can run: the pool (its own implicit transaction) or a client inside a caller's transaction. */
export type Queryable = Pool | PoolClient;

/** Run `fn` in one transaction on a dedicated connection; roll back on any error. */
export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let out: T;
  try {
    await client.query('BEGIN');
    out = await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    // A failed ROLLBACK means the connection itself is broken (server restart): hand the error to release()
    // so the pool destroys this client instead of lending it out again.
    const broken = await client.query('ROLLBACK').then(
      () => undefined,
      (rollbackErr: unknown) => (rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr))),
    );
    client.release(broken);
    throw err;
  }
  client.release();
  return out;
}
