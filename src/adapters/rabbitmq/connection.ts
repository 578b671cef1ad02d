import type { Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import amqp, { type ChannelModel } from 'amqplib';
import { QueueDeclarationError } from './topology';
import { createLogger, type Logger } from '../../logging';
import { backoffDelay } from '../../lib/backoff';
import { sleep } from '../../lib/sleep';

/**
 * A managed AMQP connection. amqplib 0.10 has no recovery of its own: when the broker restarts or an operator
 * force-closes the connection, the ChannelModel and every channel on it are dead for good. This class
 *  - connects with exponential backoff and jitter (the broker may start after us),
 *  - knows every node of a RabbitMQ cluster (`urls`): each attempt goes to the next node, and after a lost
 *    connection the next node is tried first (the lost one is likely down); the backoff applies once a whole
 *    round of nodes has failed. Any node serves any queue (a quorum queue's leader may be elsewhere: the node
 *    proxies), so which node a client lands on changes nothing but the hop,
 *  - reconnects automatically whenever the connection closes for any reason other than our own `close()`,
 *  - runs every registered setup callback on each (re)connect, so publishers get a fresh confirm channel and
 *    consumers re-subscribe (un-acked deliveries of the dead connection are redelivered by the broker, so
 *    nothing is lost; at-least-once delivery plus deterministic ids make the redelivery harmless),
 *  - reports state changes as events and log lines.
 *
 * Events: 'state' (RabbitState), 'connected' (ChannelModel), 'disconnected' (Error | undefined),
 * 'blocked' (reason), 'unblocked'.
 */

export type RabbitState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closing' | 'closed';

export type SetupFn = (conn: ChannelModel) => Promise<void> | void;

export interface RabbitConnectionOptions {
  /** amqp://user:pass@host:port/vhost (config.rabbitmq.url). */
  url: string;
  /**
   * Every node of a cluster, one URL each (config.rabbitmq.urls); when given, `url` is not used. Connections
   * go to one node at a time, rotating on failure.
   */
  urls?: readonly string[];
  /** Shown in the management UI (`connection_name` client property) and in log lines. */
  name?: string;
  logger?: Logger;
  /** Heartbeat in seconds; detects a dead peer (half-open TCP) within ~2 intervals. Default 10. */
  heartbeatSec?: number;
  /** TCP connect timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** First backoff step. Default 200 ms. */
  initialDelayMs?: number;
  /** Backoff ceiling. Default 10000 ms. */
  maxDelayMs?: number;
  /** Give up the *initial* connect after this many failed attempts (reconnects never give up). Default Infinity. */
  maxInitialAttempts?: number;
  /** Run on every (re)connect, before any callback registered with `onConnect`. */
  setup?: SetupFn;
}

export class RabbitConnectionClosedError extends Error {
  override readonly name = 'RabbitConnectionClosedError';
  constructor(message = 'RabbitConnection is closed') {
    super(message);
  }
}

export class RabbitConnection extends EventEmitter {
  readonly name: string;
  private readonly log: Logger;
  private readonly opts: Required<Omit<RabbitConnectionOptions, 'setup' | 'logger' | 'name' | 'urls'>>;
  private readonly urls: readonly string[];
  /** Index into `urls` of the node the next attempt goes to. */
  private nextNode = 0;
  private readonly setups: SetupFn[] = [];
  private conn: ChannelModel | undefined;
  private _state: RabbitState = 'idle';
  private loop: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private everConnected = false;

  constructor(options: RabbitConnectionOptions) {
    super();
    this.name = options.name ?? `stockautotrader-${process.pid}`;
    this.log = (options.logger ?? createLogger('rabbitmq')).child({ component: 'rabbitmq', connection: this.name });
    this.opts = {
      url: options.url,
      heartbeatSec: options.heartbeatSec ?? 10,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      initialDelayMs: options.initialDelayMs ?? 200,
      maxDelayMs: options.maxDelayMs ?? 10_000,
      maxInitialAttempts: options.maxInitialAttempts ?? Number.POSITIVE_INFINITY,
    };
    this.urls = options.urls && options.urls.length > 0 ? [...options.urls] : [options.url];
    if (options.setup) this.setups.push(options.setup);
  }

  get state(): RabbitState {
    return this._state;
  }

  /** The live connection, if any. Do not cache it: it is replaced on every reconnect. */
  get connection(): ChannelModel | undefined {
    return this.conn;
  }

  get isClosing(): boolean {
    return this._state === 'closing' || this._state === 'closed';
  }

  /**
   * Connect (retrying with backoff) and run the setups. Resolves once connected the first time; rejects only if
   * `maxInitialAttempts` is exhausted or `close()` is called first.
   */
  async start(): Promise<void> {
    if (this.isClosing) throw new RabbitConnectionClosedError();
    if (this.conn && this._state === 'connected') return;
    this.ensureLoop();
    await this.loop;
    if (!this.conn) throw new RabbitConnectionClosedError('RabbitConnection closed before it connected');
  }

  /**
   * Register a setup callback for every (re)connect. If already connected it also runs now on the current
   * connection. A setup that throws makes the connection recycle (closed and reconnected with backoff), so a
   * half-set-up process never runs silently. Returns an unregister function.
   */
  onConnect(setup: SetupFn): () => void {
    this.setups.push(setup);
    const current = this.conn;
    if (current && this._state === 'connected') {
      void this.runOne(current, setup).catch((err: unknown) => this.recycle(current, err));
    }
    return () => {
      const i = this.setups.indexOf(setup);
      if (i >= 0) this.setups.splice(i, 1);
    };
  }

  /** Resolve with the live connection, waiting for a (re)connect if needed. */
  async waitForConnection(timeoutMs = 30_000): Promise<ChannelModel> {
    if (this.conn && this._state === 'connected') return this.conn;
    if (this.isClosing) throw new RabbitConnectionClosedError();
    return new Promise<ChannelModel>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`RabbitMQ connection not available within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnected = (c: ChannelModel) => {
        cleanup();
        resolve(c);
      };
      const onState = (s: RabbitState) => {
        if (s === 'closing' || s === 'closed') {
          cleanup();
          reject(new RabbitConnectionClosedError());
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('connected', onConnected);
        this.off('state', onState);
      };
      this.on('connected', onConnected);
      this.on('state', onState);
    });
  }

  /** Graceful shutdown: stop reconnecting and close the connection (which closes its channels). Idempotent. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    this.setState('closing');
    this.stop.abort();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      try {
        await conn.close();
      } catch (err) {
        this.log.debug({ err }, 'error while closing the AMQP connection (already closed?)');
      }
    }
    try {
      await this.loop;
    } catch {
      // the connect loop rejects when aborted; nothing to report
    }
    this.setState('closed');
  }

  private setState(s: RabbitState): void {
    if (s === this._state) return;
    const from = this._state;
    this._state = s;
    const level = s === 'reconnecting' ? 'warn' : 'info';
    this.log[level]({ from, to: s }, `RabbitMQ connection ${s}`);
    this.emit('state', s);
  }

  private ensureLoop(): void {
    if (this.loop || this.isClosing) return;
    this.loop = this.connectLoop().finally(() => {
      this.loop = undefined;
    });
    // start() awaits the loop; reconnect loops started from a 'close' handler have no awaiter.
    this.loop.catch((err: unknown) => this.log.error({ err }, 'RabbitMQ connect loop gave up'));
  }

  private urlWithHeartbeat(u: string): string {
    if (/[?&]heartbeat=/.test(u)) return u;
    return `${u}${u.includes('?') ? '&' : '?'}heartbeat=${this.opts.heartbeatSec}`;
  }

  private async connectLoop(): Promise<void> {
    let attempt = 0;
    while (!this.isClosing) {
      this.setState(this.everConnected ? 'reconnecting' : 'connecting');
      let conn: ChannelModel | undefined;
      const url = this.urls[this.nextNode % this.urls.length]!;
      try {
        conn = await amqp.connect(this.urlWithHeartbeat(url), {
          timeout: this.opts.connectTimeoutMs,
          clientProperties: { connection_name: this.name },
        });
        if (this.isClosing) {
          await conn.close().catch(() => undefined);
          return;
        }
        coalesceWrites(conn);
        this.attach(conn);
        this.conn = conn;
        for (const setup of [...this.setups]) await this.runOne(conn, setup);
        // The connection may have died while the setups ran (their channel calls would usually throw, but
        // a setup that did no I/O would not notice). Only a still-current connection counts as connected.
        if (this.conn !== conn) throw new Error('connection closed during setup');
        this.everConnected = true;
        attempt = 0;
        if (this.urls.length > 1) this.log.info({ node: nodeOf(url) }, 'RabbitMQ connected to cluster node');
        this.setState('connected');
        this.emit('connected', conn);
        return;
      } catch (err) {
        if (conn && this.conn === conn) {
          // Setup failed on a live connection: drop it (detached first so its 'close' does not start a 2nd loop).
          this.conn = undefined;
          await conn.close().catch(() => undefined);
        }
        if (this.isClosing) return;
        attempt += 1;
        this.nextNode += 1;
        // A queue that exists with other arguments (a classic queue left by an older version) will be refused
        // on every attempt: fail start() with the error that says what to do, instead of retrying for ever.
        // After a first successful start it is logged and retried (someone re-declared it under a running system).
        if (!this.everConnected && err instanceof QueueDeclarationError) throw err;
        if (!this.everConnected && attempt >= this.opts.maxInitialAttempts) {
          throw new Error(`RabbitMQ: could not connect after ${attempt} attempts: ${(err as Error).message}`);
        }
        // With several nodes the next one is tried at once; the backoff starts when a whole round failed.
        const round = Math.floor((attempt - 1) / this.urls.length);
        const delay =
          attempt % this.urls.length === 0 ? backoffDelay(round, this.opts.initialDelayMs, this.opts.maxDelayMs) : 0;
        this.log.warn({ err, attempt, node: nodeOf(url), retry_in_ms: delay }, 'RabbitMQ connect failed; retrying');
        if (delay > 0) await sleep(delay, this.stop.signal);
      }
    }
  }

  private async runOne(conn: ChannelModel, setup: SetupFn): Promise<void> {
    await setup(conn);
  }

  private recycle(conn: ChannelModel, err: unknown): void {
    this.log.error({ err }, 'RabbitMQ setup failed; recycling the connection');
    // Closing emits 'close', whose handler starts the reconnect loop.
    conn.close().catch(() => undefined);
  }

  private attach(conn: ChannelModel): void {
    conn.on('error', (err: Error) => {
      // Always followed by 'close'; logged here because it carries the reason (e.g. 320 CONNECTION_FORCED).
      this.log.warn({ err }, 'RabbitMQ connection error');
    });
    conn.on('blocked', (reason: string) => {
      // A broker resource alarm: publishes stall (confirms wait) until 'unblocked'.
      this.log.warn({ reason }, 'RabbitMQ connection blocked by the broker');
      this.emit('blocked', reason);
    });
    conn.on('unblocked', () => {
      this.log.info('RabbitMQ connection unblocked');
      this.emit('unblocked');
    });
    conn.on('close', (err?: Error) => {
      if (this.conn !== conn) return; // a connection we already dropped or replaced
      this.conn = undefined;
      // The node we lost is likely down: the reconnect starts with the next one.
      this.nextNode += 1;
      this.emit('disconnected', err);
      if (this.isClosing) return;
      this.log.warn({ err }, 'RabbitMQ connection lost; reconnecting');
      this.ensureLoop();
    });
  }
}

/** host:port of an AMQP URL, for log lines (never the credentials). */
function nodeOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(unparsable URL)';
  }
}

/** Wait for `p` but at most `ms`; the timer is cleared either way so it never keeps the process alive. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  const stop = new AbortController();
  try {
    await Promise.race([
      p.then(
        () => undefined,
        () => undefined,
      ),
      sleep(ms, stop.signal),
    ]);
  } finally {
    stop.abort();
  }
}

/**
 * One socket write per turn of amqplib's writer, not one per frame. amqplib queues each channel's frames and a
 * Mux writes them to the socket chunk by chunk on setImmediate: a confirm window of market data is hundreds of
 * publishes (and the consumer's acks) a turn, each its own write(2). Corked for the Mux's turn, they go out as
 * one writev. Nothing waits longer: the uncork is in the same turn, after the last chunk. amqplib 0.10's
 * internals (Connection.muxer._readIncoming, Connection.stream): when they are not there, nothing is changed.
 */
function coalesceWrites(model: ChannelModel): void {
  const c = (model as unknown as { connection?: { muxer?: { _readIncoming?: () => void }; stream?: Writable } })
    .connection;
  const mux = c?.muxer;
  const stream = c?.stream;
  const drain = mux?._readIncoming;
  if (!mux || !stream || typeof drain !== 'function' || typeof stream.cork !== 'function') return;
  mux._readIncoming = function corked(this: unknown) {
    stream.cork();
    try {
      drain.call(this);
    } finally {
      stream.uncork();
    }
  };
}
