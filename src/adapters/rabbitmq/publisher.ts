import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { createLogger, type Logger } from '../../logging';
import { backoffDelay } from '../../lib/backoff';
import { sleep } from '../../lib/sleep';
import { settleWithin, type RabbitConnection } from './connection';

/**
 * Publishing with publisher confirms: a publish resolves only when the broker has taken responsibility for the
 * message (for a persistent message routed to a durable queue, after it is written to disk), and rejects on a
 * nack, on an unroutable return (mandatory), on a timeout, or when the channel/connection dies first. It never
 * reports success without a confirm, so a caller that acks its input only after `publish` resolves
 * (ack-after-publish) can never lose a message. The other side of the trade-off: a rejection does not prove the
 * message was *not* delivered (the confirm may have been lost with the connection), so callers retry and
 * consumers dedupe by the deterministic message id / signal id.
 *
 * Survives reconnects: it registers with the RabbitConnection and opens a fresh confirm channel on every
 * (re)connect, and re-opens the channel if the broker closes only the channel (e.g. 404 on a missing exchange).
 *
 * Two ways to publish: `publish`/`publishJson`, a promise per message (signals, dead letters: a few a second);
 * and `publishBatch`, an ordered stream of messages with a window of unconfirmed ones, tracked by position and
 * reported as a confirmed prefix (market data: tens of thousands a second, where a promise, its callbacks and
 * their microtasks per message cost as much as the broker round trip's share of this process).
 */

export type PublishFailure = 'nack' | 'channel-closed' | 'unroutable' | 'timeout' | 'unavailable' | 'closed';

export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    readonly reason: PublishFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface PublishJsonOptions {
  /** Deterministic id (bar message_id, signal_id): lets every consumer dedupe a retried publish. */
  messageId: string;
  correlationId: string;
  headers?: Record<string, unknown>;
}

export interface PublishRawOptions {
  messageId?: string;
  correlationId?: string;
  headers?: Record<string, unknown>;
  contentType?: string;
  contentEncoding?: string;
  /** Seconds since the epoch (AMQP timestamp). Default: now. */
  timestamp?: number;
  /** Override the publisher's default. */
  mandatory?: boolean;
}

/** One message of a `publishBatch`: persistent, application/json, timestamped like `publishJson`. */
export interface BatchMessage {
  routingKey: string;
  /** The serialised JSON body. */
  content: Buffer;
  /** Deterministic id: consumers de-duplicate a re-published message by it. */
  messageId: string;
  correlationId: string;
}

export interface PublishBatchOptions {
  /** Unconfirmed messages in flight at most (counted from the first unconfirmed one). Default 256. */
  window?: number;
  /**
   * Called whenever the confirmed prefix grows: items [0, confirmed) are all confirmed. Called in the confirm's
   * turn, before later messages are written.
   */
  onConfirmed?: (confirmed: number) => void;
  /** Stop writing; resolves once what was written has settled. */
  signal?: AbortSignal;
}

/**
 * How a batch ended. `confirmed` items, from the first, are confirmed; with an `error`, the ones after may or may
 * not have reached the broker (their confirms failed or never came), so a caller resumes from `confirmed` with
 * the same message ids and consumers de-duplicate. It ends only when everything it wrote has settled (confirmed,
 * nacked, or its channel closed), except on a confirm timeout, so a resumed batch never overlaps the old one.
 */
export interface BatchOutcome {
  confirmed: number;
  error?: PublishError;
}

/** A running publishBatch: positions, not promises (see ConfirmPublisher.publishBatch). */
interface BatchRun<T> {
  readonly exchange: string;
  readonly items: readonly T[];
  readonly encode: (item: T) => BatchMessage;
  readonly window: number;
  readonly onConfirmed: ((confirmed: number) => void) | undefined;
  readonly signal: AbortSignal | undefined;
  /** Reused for every message (amqplib copies it into the frame at once). */
  readonly props: Options.Publish;
  /** Per item: confirmed (1). Confirms may come out of order across queues; the prefix is what counts. */
  readonly acked: Uint8Array;
  next: number;
  confirmed: number;
  inFlight: number;
  /** The channel the in-flight messages went to. */
  st: ChannelState | undefined;
  /** Date.now() of the last confirm (or of the first write after an idle spell): for the confirm timeout. */
  progressAt: number;
  error: PublishError | undefined;
  waiting: boolean;
  finished: boolean;
  resolve: (outcome: BatchOutcome) => void;
  onAbort: (() => void) | undefined;
}

export interface ConfirmPublisherOptions {
  logger?: Logger;
  /**
   * Publish with `mandatory`: an unroutable message (no bound queue) comes back as basic.return and the publish
   * rejects with reason 'unroutable' instead of being confirmed and silently dropped. Default true.
   */
  mandatory?: boolean;
  /** Reject a publish whose confirm has not arrived within this time. Default 30000 ms. */
  confirmTimeoutMs?: number;
  /** How long a publish waits for a channel (during a reconnect) before rejecting 'unavailable'. Default 30000 ms. */
  channelWaitMs?: number;
}

interface ChannelState {
  ch: ConfirmChannel;
  conn: ChannelModel;
  open: boolean;
  /** Unroutable returns waiting for their confirm, by `exchange|routingKey|messageId`. */
  returned: Map<string, number>;
  /** Set while the socket buffer is full (publish returned false); cleared on 'drain'. */
  drain: Promise<void> | undefined;
  resolveDrain: (() => void) | undefined;
}

interface Unconfirmed {
  /** Date.now() after which the publish rejects with 'timeout'. */
  deadline: number;
  exchange: string;
  routingKey: string;
  fail(err: PublishError): void;
}

function returnKey(exchange: string, routingKey: string, messageId: string | undefined): string {
  return `${exchange}|${routingKey}|${messageId ?? ''}`;
}

export class ConfirmPublisher {
  private readonly log: Logger;
  private readonly mandatory: boolean;
  private readonly confirmTimeoutMs: number;
  private readonly channelWaitMs: number;
  private state: ChannelState | undefined;
  private readonly waiters = new Set<() => void>();
  /** Publishes still waiting for a channel, for drain or for the broker to unblock (the slow path), and running
   * batches: close() waits for them. */
  private readonly waiting = new Set<Promise<unknown>>();
  /**
   * Publishes written to the channel whose confirm has not arrived, oldest first. One sweep timer enforces the
   * confirm timeout for all of them: a timer per publish costs more than the publish itself at market-data rates.
   */
  private readonly unconfirmed = new Set<Unconfirmed>();
  /** Running publishBatch calls (the sweep enforces their confirm timeout too). */
  private readonly batches = new Set<BatchRun<unknown>>();
  private sweep: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly unregister: () => void;
  private readonly stop = new AbortController();
  /** Set while the broker has blocked the connection (resource alarm): new publishes wait on it. */
  private blockedGate: { promise: Promise<void>; release: () => void; reason: string } | undefined;
  private readonly offBlocked: () => void;

  constructor(
    private readonly rabbit: RabbitConnection,
    options: ConfirmPublisherOptions = {},
  ) {
    this.log = (options.logger ?? createLogger('rabbitmq')).child({ component: 'confirm-publisher' });
    this.mandatory = options.mandatory ?? true;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
    this.channelWaitMs = options.channelWaitMs ?? 30_000;
    // On every (re)connect: a fresh confirm channel. Throwing here recycles the connection (see RabbitConnection).
    this.unregister = rabbit.onConnect((conn) => {
      this.releaseBlocked(); // a fresh connection starts unblocked
      return this.openChannel(conn);
    });
    // Flow control as backpressure: while the broker blocks the connection (memory or disk alarm) nothing it
    // receives is processed, so a write would only sit in buffers and run its confirm timeout down. New
    // publishes wait for 'unblocked' instead (the caller's await is the backpressure).
    const onBlocked = (reason: string) => {
      if (this.blockedGate) return;
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      this.blockedGate = { promise, release, reason };
      this.log.warn({ reason }, 'publishing paused: the broker blocked the connection');
    };
    const onUnblocked = () => {
      if (this.blockedGate) this.log.info('publishing resumed: the broker unblocked the connection');
      this.releaseBlocked();
    };
    rabbit.on('blocked', onBlocked);
    rabbit.on('unblocked', onUnblocked);
    this.offBlocked = () => {
      rabbit.off('blocked', onBlocked);
      rabbit.off('unblocked', onUnblocked);
    };
  }

  /** The broker's flow-control state: true while it blocks publishing on this connection. */
  get blocked(): boolean {
    return this.blockedGate !== undefined;
  }

  private releaseBlocked(): void {
    const g = this.blockedGate;
    this.blockedGate = undefined;
    g?.release();
  }

  /** True when a confirm channel is open right now. */
  get ready(): boolean {
    return this.state?.open === true;
  }

  /** Publish a JSON body: persistent, application/json, with message id, correlation id and timestamp. */
  publishJson(exchange: string, routingKey: string, body: unknown, opts: PublishJsonOptions): Promise<void> {
    const content = Buffer.from(JSON.stringify(body), 'utf8');
    return this.publish(exchange, routingKey, content, {
      messageId: opts.messageId,
      correlationId: opts.correlationId,
      headers: opts.headers,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
    });
  }

  /** Publish raw bytes (persistent). Resolves on the broker's confirm; rejects with a PublishError otherwise. */
  publish(exchange: string, routingKey: string, content: Buffer, opts: PublishRawOptions = {}): Promise<void> {
    // Fast path, synchronous up to the write: an open channel, no drain pending, not blocked. Writing in the
    // caller's turn also keeps messages in call order, which replay relies on.
    const st = this.state;
    if (!this.closed && this.blockedGate === undefined && st?.open === true && st.drain === undefined) {
      return this.send(st, exchange, routingKey, content, opts);
    }
    const p = this.publishWhenReady(exchange, routingKey, content, opts);
    this.waiting.add(p);
    const forget = () => this.waiting.delete(p);
    p.then(forget, forget);
    return p;
  }

  /**
   * Publish `items` in order, each encoded when it is written, with at most `window` unconfirmed: the market-data
   * path. Same guarantees as `publishJson` per message (persistent, confirmed, mandatory, flow control: nothing is
   * written while the broker blocks the connection or the socket buffer is full), but tracked by position:
   * amqplib keeps one callback per message, and this keeps a flag, instead of a promise with its resolve/reject
   * closures, a bookkeeping entry and a microtask hop each. Never rejects for a publish failure: the outcome
   * says how far it got (BatchOutcome); throws only what `encode` throws.
   */
  publishBatch<T>(
    exchange: string,
    items: readonly T[],
    encode: (item: T) => BatchMessage,
    opts: PublishBatchOptions = {},
  ): Promise<BatchOutcome> {
    if (items.length === 0) return Promise.resolve({ confirmed: 0 });
    let resolve!: (outcome: BatchOutcome) => void;
    const outcome = new Promise<BatchOutcome>((r) => (resolve = r));
    const b: BatchRun<T> = {
      exchange,
      items,
      encode,
      window: Math.max(1, opts.window ?? 256),
      onConfirmed: opts.onConfirmed,
      signal: opts.signal,
      props: {
        persistent: true, // delivery_mode 2: survives a broker restart once confirmed
        mandatory: this.mandatory,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId: undefined,
        correlationId: undefined,
        timestamp: 0,
      },
      acked: new Uint8Array(items.length),
      next: 0,
      confirmed: 0,
      inFlight: 0,
      st: undefined,
      progressAt: Date.now(),
      error: undefined,
      waiting: false,
      finished: false,
      resolve,
      onAbort: undefined,
    };
    const run = b as BatchRun<unknown>;
    this.batches.add(run);
    // close() waits (bounded) for running batches as for any other publish.
    this.waiting.add(outcome);
    void outcome.then(() => this.waiting.delete(outcome));
    if (opts.signal) {
      run.onAbort = () => this.settleBatch(run);
      opts.signal.addEventListener('abort', run.onAbort, { once: true });
    }
    this.pump(run);
    return outcome;
  }

  /** Write batch messages while the window, the channel, flow control and the socket buffer allow. */
  private pump(b: BatchRun<unknown>): void {
    const { items, props } = b;
    while (b.error === undefined && b.next < items.length && b.next - b.confirmed < b.window) {
      if (b.signal?.aborted) {
        this.settleBatch(b);
        return;
      }
      const st = this.state;
      if (this.closed || this.blockedGate !== undefined || st?.open !== true || st.drain !== undefined) {
        this.pumpWhenWritable(b);
        return;
      }
      const m = b.encode(items[b.next]);
      const i = b.next++;
      // The confirm callback keeps the routing key and the id, never the message: its body would otherwise stay
      // alive (and be copied by every young-generation GC) for the whole confirm round trip of a window.
      const { routingKey, messageId } = m;
      props.messageId = messageId;
      props.correlationId = m.correlationId;
      props.timestamp = Math.floor(Date.now() / 1000);
      if (b.inFlight++ === 0) b.progressAt = Date.now();
      b.st = st;
      let ok: boolean;
      try {
        ok = st.ch.publish(b.exchange, routingKey, m.content, props, (err: unknown) =>
          this.onBatchConfirm(b, i, routingKey, messageId, err),
        );
      } catch (err) {
        // The channel is already closed (IllegalOperationError): this one was not sent.
        b.inFlight--;
        this.failBatch(
          b,
          new PublishError(
            'channel-closed',
            `publish to ${b.exchange}/${m.routingKey} failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          ),
        );
        return;
      }
      this.ensureSweep();
      if (!ok) this.startDrain(st); // buffered; the next message waits for 'drain'
    }
  }

  /** The slow path of a batch: wait out a block, a reconnect or a drain (bounded like `publish`), then pump. */
  private pumpWhenWritable(b: BatchRun<unknown>): void {
    if (b.waiting) return;
    b.waiting = true;
    const wait = async () => {
      if (this.closed) throw new PublishError('closed', 'publisher is closed');
      while (this.blockedGate && !this.closed) await this.blockedGate.promise;
      const st = await this.channel();
      if (st.drain) await st.drain;
    };
    wait().then(
      () => {
        b.waiting = false;
        this.pump(b);
      },
      (err: unknown) => {
        b.waiting = false;
        this.failBatch(b, err instanceof PublishError ? err : new PublishError('unavailable', String(err)));
      },
    );
  }

  private onBatchConfirm(b: BatchRun<unknown>, i: number, routingKey: string, messageId: string, err: unknown): void {
    if (b.finished) return; // timed out: its outcome is already out
    b.inFlight--;
    if (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // As in send(): 'message nacked' on basic.nack, 'channel closed' when the channel died first.
      const reason: PublishFailure = /nack/i.test(msg) ? 'nack' : 'channel-closed';
      this.failBatch(
        b,
        new PublishError(reason, `publish to ${b.exchange}/${routingKey} not confirmed: ${msg}`, { cause: err }),
      );
      return;
    }
    const st = b.st!;
    if (
      b.props.mandatory &&
      st.returned.size > 0 &&
      this.takeReturn(st, returnKey(b.exchange, routingKey, messageId))
    ) {
      this.failBatch(
        b,
        new PublishError('unroutable', `no queue bound for ${b.exchange}/${routingKey}; message returned`),
      );
      return;
    }
    b.progressAt = Date.now();
    b.acked[i] = 1;
    const before = b.confirmed;
    while (b.confirmed < b.next && b.acked[b.confirmed] === 1) b.confirmed++;
    if (b.confirmed !== before) b.onConfirmed?.(b.confirmed);
    if (b.error !== undefined || b.signal?.aborted || b.confirmed === b.items.length) {
      if (b.inFlight === 0) this.settleBatch(b);
      return;
    }
    this.pump(b);
  }

  /** Stop writing; the outcome goes out once the messages in flight have settled. */
  private failBatch(b: BatchRun<unknown>, err: PublishError): void {
    b.error ??= err;
    if (b.inFlight === 0) this.settleBatch(b);
  }

  /** Resolve the batch's outcome (once); in flight confirms that come later are ignored. */
  private settleBatch(b: BatchRun<unknown>): void {
    if (b.finished || (b.inFlight > 0 && b.error?.reason !== 'timeout')) return;
    b.finished = true;
    this.batches.delete(b);
    if (b.onAbort) b.signal?.removeEventListener('abort', b.onAbort);
    b.resolve(b.error ? { confirmed: b.confirmed, error: b.error } : { confirmed: b.confirmed });
  }

  /** Stop accepting publishes, wait (bounded) for in-flight confirms, close the channel. Idempotent. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unregister();
    this.offBlocked();
    this.releaseBlocked();
    this.stop.abort();
    for (const w of [...this.waiters]) w();
    await settleWithin(Promise.allSettled([...this.waiting, this.allConfirmed()]), timeoutMs);
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
    const st = this.state;
    this.state = undefined;
    if (st?.open) await st.ch.close().catch(() => undefined);
  }

  /** The slow path: wait out a block, a reconnect or a drain, then send. */
  private async publishWhenReady(
    exchange: string,
    routingKey: string,
    content: Buffer,
    opts: PublishRawOptions,
  ): Promise<void> {
    if (this.closed) throw new PublishError('closed', 'publisher is closed');
    while (this.blockedGate && !this.closed) await this.blockedGate.promise;
    if (this.closed) throw new PublishError('closed', 'publisher is closed');
    const st = await this.channel();
    if (st.drain) await st.drain;
    if (!st.open) throw new PublishError('channel-closed', 'channel closed while waiting for drain; retry');
    return this.send(st, exchange, routingKey, content, opts);
  }

  private send(
    st: ChannelState,
    exchange: string,
    routingKey: string,
    content: Buffer,
    opts: PublishRawOptions,
  ): Promise<void> {
    const mandatory = opts.mandatory ?? this.mandatory;
    const props: Options.Publish = {
      persistent: true, // delivery_mode 2: survives a broker restart once confirmed
      mandatory,
      contentType: opts.contentType,
      contentEncoding: opts.contentEncoding,
      messageId: opts.messageId,
      correlationId: opts.correlationId,
      timestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
      headers: opts.headers,
    };
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        this.unconfirmed.delete(entry);
        if (this.unconfirmed.size === 0) this.onAllConfirmed();
        if (err) reject(err);
        else resolve();
      };
      const entry: Unconfirmed = {
        deadline: Date.now() + this.confirmTimeoutMs,
        exchange,
        routingKey,
        fail: finish,
      };
      this.unconfirmed.add(entry);
      let ok: boolean;
      try {
        ok = st.ch.publish(exchange, routingKey, content, props, (err: unknown) => {
          if (err) {
            const msg = err instanceof Error ? err.message : String(err);
            // amqplib calls back with 'message nacked' on basic.nack and 'channel closed' when the channel dies
            // with the confirm outstanding. Either way the caller must treat the message as not published.
            const reason: PublishFailure = /nack/i.test(msg) ? 'nack' : 'channel-closed';
            finish(
              new PublishError(reason, `publish to ${exchange}/${routingKey} not confirmed: ${msg}`, { cause: err }),
            );
            return;
          }
          // A mandatory message that no queue took comes back as basic.return just before its confirm.
          if (
            mandatory &&
            st.returned.size > 0 &&
            this.takeReturn(st, returnKey(exchange, routingKey, opts.messageId))
          ) {
            finish(new PublishError('unroutable', `no queue bound for ${exchange}/${routingKey}; message returned`));
            return;
          }
          finish();
        });
      } catch (err) {
        // The channel is already closed (IllegalOperationError): nothing was sent.
        finish(
          new PublishError('channel-closed', `publish to ${exchange}/${routingKey} failed: ${(err as Error).message}`, {
            cause: err,
          }),
        );
        return;
      }
      this.ensureSweep();
      if (!ok) this.startDrain(st);
    });
  }

  /** Rejects, oldest first, every publish whose confirm is overdue; stops itself when nothing is outstanding. */
  private ensureSweep(): void {
    if (this.sweep) return;
    const every = Math.max(5, Math.min(1000, Math.floor(this.confirmTimeoutMs / 10)));
    this.sweep = setInterval(() => {
      const now = Date.now();
      // Deadlines grow in insertion order (one timeout for all), so the first live entry ends the sweep.
      for (const u of this.unconfirmed) {
        if (u.deadline > now) break;
        u.fail(
          new PublishError(
            'timeout',
            `no confirm within ${this.confirmTimeoutMs} ms for ${u.exchange}/${u.routingKey}`,
          ),
        );
      }
      // A batch times out when nothing it has in flight was confirmed for the whole timeout.
      for (const b of this.batches) {
        if (b.inFlight === 0 || now - b.progressAt < this.confirmTimeoutMs) continue;
        b.error = new PublishError(
          'timeout',
          `no confirm within ${this.confirmTimeoutMs} ms for ${b.inFlight} messages to ${b.exchange}`,
        );
        this.settleBatch(b);
      }
      if (this.unconfirmed.size === 0 && this.batches.size === 0 && this.sweep) {
        clearInterval(this.sweep);
        this.sweep = undefined;
      }
    }, every);
  }

  private allConfirmed(): Promise<void> {
    if (this.unconfirmed.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onAllConfirmed(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Backpressure: the socket buffer is full. The message is buffered; later publishes wait for 'drain'. */
  private startDrain(st: ChannelState): void {
    if (st.drain) return;
    st.drain = new Promise<void>((resolve) => {
      st.resolveDrain = () => {
        st.drain = undefined;
        st.resolveDrain = undefined;
        resolve();
      };
    });
  }

  private takeReturn(st: ChannelState, key: string): boolean {
    const n = st.returned.get(key) ?? 0;
    if (n <= 0) return false;
    if (n === 1) st.returned.delete(key);
    else st.returned.set(key, n - 1);
    return true;
  }

  /** The open channel, waiting (bounded) across a reconnect. */
  private async channel(): Promise<ChannelState> {
    const deadline = Date.now() + this.channelWaitMs;
    while (!this.closed) {
      const st = this.state;
      if (st?.open) return st;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(wake, left);
        const waiters = this.waiters;
        function wake() {
          clearTimeout(t);
          waiters.delete(wake);
          resolve();
        }
        waiters.add(wake);
      });
    }
    if (this.closed) throw new PublishError('closed', 'publisher is closed');
    throw new PublishError('unavailable', `no RabbitMQ channel within ${this.channelWaitMs} ms (broker down?)`);
  }

  private async openChannel(conn: ChannelModel): Promise<void> {
    if (this.closed) return;
    if (this.state?.open && this.state.conn === conn) return;
    const ch = await conn.createConfirmChannel();
    if (this.closed || (this.state?.open && this.state.conn === conn)) {
      // Lost a race with a concurrent re-open (setup vs. channel-only recovery): keep the one we have.
      await ch.close().catch(() => undefined);
      return;
    }
    const st: ChannelState = { ch, conn, open: true, returned: new Map(), drain: undefined, resolveDrain: undefined };
    ch.on('error', (err: Error) => {
      // Followed by 'close'. E.g. 404 NOT_FOUND when publishing to an exchange that does not exist.
      this.log.warn({ err }, 'confirm channel error');
    });
    ch.on('return', (msg: Message) => {
      const k = returnKey(msg.fields.exchange, msg.fields.routingKey, msg.properties.messageId as string | undefined);
      st.returned.set(k, (st.returned.get(k) ?? 0) + 1);
      this.log.warn(
        { exchange: msg.fields.exchange, routing_key: msg.fields.routingKey, message_id: msg.properties.messageId },
        'message returned unroutable',
      );
    });
    ch.on('drain', () => st.resolveDrain?.());
    ch.on('close', () => {
      st.open = false;
      // Publishes waiting for drain must not hang: release them; they see !open and reject.
      st.resolveDrain?.();
      if (this.state === st) this.state = undefined;
      if (this.closed) return;
      // Only the channel died while the connection lives on: re-open it here. If the connection died, the
      // RabbitConnection reconnects and calls openChannel again.
      if (this.rabbit.connection === conn) void this.reopen(conn);
    });
    this.state = st;
    this.log.debug('confirm channel open');
    for (const w of [...this.waiters]) w();
  }

  private async reopen(conn: ChannelModel): Promise<void> {
    for (let attempt = 0; !this.closed && this.rabbit.connection === conn && !this.state?.open; attempt++) {
      await sleep(backoffDelay(attempt, 100, 5000), this.stop.signal);
      if (this.closed || this.rabbit.connection !== conn || this.state?.open) return;
      try {
        await this.openChannel(conn);
        return;
      } catch (err) {
        this.log.warn({ err, attempt }, 'could not re-open the confirm channel; retrying');
      }
    }
  }
}
