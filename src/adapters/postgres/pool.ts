import { Client, Pool, types, type ClientConfig, type PoolClient, type QueryConfig, type QueryResult } from 'pg';
import { createLogger, type Logger } from '../../logging';

export interface PoolOptions {
  /** Where connection errors are reported (default: a `postgres` logger). */
  logger?: Logger;
  /** application_name shown in pg_stat_activity. */
  applicationName?: string;
  /**
   * node-postgres' pipeline mode: a statement is written to the server as soon as it is issued, without waiting
   * for the answer to the one before, so `inOneRoundTrip` sends a batch in one round trip. Statements still run
   * and answer in order; code that awaits each statement behaves exactly as without it. Not for pg-cursor,
   * pg-query-stream or `rows:` queries (node-postgres refuses them on a pipelined connection).
   */
  pipeline?: boolean;
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
    pipeline: opts.pipeline ?? false,
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

/**
 * Call `onRoundTrip` once per round trip made on the pool's connections from now on: a statement sent while
 * none of its connection's statements is unanswered starts one; statements pipelined behind it ride along. A
 * machine-independent measure of how often the code waits for PostgreSQL (sat_pg_round_trips_total).
 * Connections the pool opened before this call are not counted.
 */
export function countRoundTrips(pool: Pool, onRoundTrip: () => void): void {
  pool.on('connect', (client) => {
    let unanswered = 0;
    const answered = () => void unanswered--;
    const send = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      if (unanswered++ === 0) onRoundTrip();
      const answer = send(...args);
      if (answer instanceof Promise) answer.then(answered, answered);
      // The callback and submittable forms (not used by this code base) count as answered at once: each of
      // them then starts a round trip of its own, which over-counts rather than hides one.
      else answered();
      return answer;
    };
  });
}

/** One statement with its parameters, as built by a module that owns the table it touches. */
export type Statement = QueryConfig<unknown[]>;

/** Whether the connection was opened in pipeline mode (createPool's `pipeline`). */
export function isPipelined(c: PoolClient): boolean {
  return (c as unknown as { pipeline?: unknown }).pipeline === true;
}

/**
 * Send `statements` in order and wait for every answer: on a pipelined connection in ONE round trip (all are
 * written before the first answer is read), otherwise one after another. PostgreSQL runs them in order either
 * way, each with its own snapshot under READ COMMITTED (a read after a lock statement sees everything committed
 * before the lock was granted). The first failure rejects; inside a transaction every statement after it then
 * fails too (the transaction is aborted), so nothing after a failed statement takes effect.
 */
export async function inOneRoundTrip(c: PoolClient, statements: readonly Statement[]): Promise<QueryResult[]> {
  if (!isPipelined(c)) {
    const out: QueryResult[] = [];
    for (const s of statements) out.push(await c.query(s));
    return out;
  }
  // Promise.all subscribes to every answer, so the ones that fail after the first failure are handled too.
  return Promise.all(statements.map((s) => c.query(s)));
}

/** How a pipelined transaction ends: its last writes, then COMMIT (or ROLLBACK), in one round trip. */
export interface TransactionEnd<T> {
  /** Written in order, then COMMIT (or ROLLBACK when `commit` is false), in the same round trip. */
  writes: readonly Statement[];
  commit: boolean;
  /** The transaction's result, from the answers to `writes` (in order; read once COMMIT has succeeded). */
  result(writes: QueryResult[]): T;
}

/** A transaction's batches: `batch` sends statements in one round trip (the first batch carries BEGIN). */
export interface PipelinedTransaction {
  batch(statements: readonly Statement[]): Promise<QueryResult[]>;
}

/**
 * A transaction sent in batches on a pipelined connection: BEGIN rides with the first `batch`, and the writes
 * `fn` ends with ride with COMMIT. Each batch is one round trip (inOneRoundTrip; one statement at a time on a
 * connection without pipeline mode, with the same effect). Any failure (a statement, `fn` throwing) rolls back.
 */
export async function withPipelinedTransaction<T>(
  pool: Pool,
  fn: (tx: PipelinedTransaction) => Promise<TransactionEnd<T>>,
): Promise<T> {
  const client = await pool.connect();
  let begun = false;
  const tx: PipelinedTransaction = {
    async batch(statements) {
      if (begun) return inOneRoundTrip(client, statements);
      begun = true;
      return (await inOneRoundTrip(client, [{ text: 'BEGIN' }, ...statements])).slice(1);
    },
  };
  let out: T;
  try {
    const end = await fn(tx);
    const answers = await tx.batch([...end.writes, { text: end.commit ? 'COMMIT' : 'ROLLBACK' }]);
    out = end.result(answers.slice(0, end.writes.length));
  } catch (err) {
    // After a failed write the last batch's COMMIT has already ended the transaction (as a rollback); a
    // ROLLBACK then only draws a warning.
    await rollBackAndRelease(client);
    throw err;
  }
  client.release();
  return out;
}

/**
 * A short transaction in two round trips on a pipelined connection: BEGIN and the `first` statements (a lock,
 * the reads) in one, then `decide` (synchronous: no I/O while the transaction is open) turns their results into
 * the writes, which go out with COMMIT in the other.
 */
export async function withTransactionInTwoRoundTrips<T>(
  pool: Pool,
  first: readonly Statement[],
  decide: (results: QueryResult[]) => TransactionEnd<T>,
): Promise<T> {
  return withPipelinedTransaction(pool, async (tx) => decide(await tx.batch(first)));
}

/**
 * Roll back a failed transaction and give its connection back. A failed ROLLBACK means the connection itself is
 * broken (a server restart): its error goes to release(), so the pool destroys this client instead of lending it
 * out again.
 */
async function rollBackAndRelease(client: PoolClient): Promise<void> {
  const broken = await client.query('ROLLBACK').then(
    () => undefined,
    (rollbackErr: unknown) => (rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr))),
  );
  client.release(broken);
}

/** Run `fn` in one transaction on a dedicated connection; roll back on any error. */
export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let out: T;
  try {
    await client.query('BEGIN');
    out = await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    await rollBackAndRelease(client);
    throw err;
  }
  client.release();
  return out;
}
