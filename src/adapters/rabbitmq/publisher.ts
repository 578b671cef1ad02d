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
  /** Publishes still waiting for a channel, for drain or for the broker to unblock (the slow path). */
  private readonly waiting = new Set<Promise<void>>();
  /**
   * Publishes written to the channel whose confirm has not arrived, oldest first. One sweep timer enforces the
   * confirm timeout for all of them: a timer per publish costs more than the publish itself at market-data rates.
   */
  private readonly unconfirmed = new Set<Unconfirmed>();
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
      if (this.unconfirmed.size === 0 && this.sweep) {
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
