import type { Message } from 'amqplib';

/**
 * Acks of one consumer channel, sent together: one `basic.ack` with `multiple=true` covers every delivery up to
 * its tag. At market-data rates an ack per message is a socket write (a syscall) and a frame for the broker to
 * parse per message, as much as the rest of the consumer's work together (bench:ingest); batched, it is one per
 * event-loop turn or per `maxPending` settled deliveries, whichever comes first.
 *
 * The rule that keeps at-least-once delivery: a multiple ack names the tag of a delivery that is acked here and
 * not yet sent, and it is only sent once EVERY delivery with a lower tag on this channel is settled (acked, or
 * already nacked on its own). A delivery whose handler is still running is never covered, so a crash or a lost
 * connection still gets it redelivered. Acks waiting behind a delivery that is still running are sent one by one
 * instead, so a slow handler (a retry backoff, a dead-letter publish) holds neither them nor the prefetch credit.
 * Nacks are sent at once, on their own (`multiple=false`).
 *
 * Delivery tags are per channel: one batcher per channel, dropped with it (whatever it had not sent is then
 * redelivered by the broker, as with any un-acked message on a closed channel).
 */

/** The part of an amqplib channel the batcher writes to. */
export interface AckChannel {
  ack(message: Message, allUpTo?: boolean): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
}

/** One delivery as the batcher tracks it, in delivery (tag) order. */
export interface AckEntry {
  readonly msg: Message;
  /** Managed by the batcher: UNSETTLED, ACK_PENDING (acked here, not yet sent) or SENT. */
  ackState: number;
}

export const UNSETTLED = 0;
const ACK_PENDING = 1;
const SENT = 2;

export class AckBatcher {
  /** Deliveries not yet known to be settled at the broker, oldest (lowest tag) first, from `head`. */
  private entries: AckEntry[] = [];
  private head = 0;
  private pending = 0;
  private scheduled = false;
  private closed = false;
  private readonly flushNow = () => this.flush();

  /**
   * @param maxPending settled deliveries that may wait for one multiple ack (1 = ack each at once). Keep it below
   *   the channel's prefetch, or the broker stops delivering while the acks wait (they still go out on the next
   *   turn of the event loop).
   * @param onSent called with how many deliveries each flush acknowledged (for the consumer's stats).
   * @param onLost called when a write fails because the channel is closing; nothing more is sent.
   */
  constructor(
    private readonly ch: AckChannel,
    private readonly maxPending: number,
    private readonly onSent: (count: number) => void,
    private readonly onLost: (err: unknown) => void = () => undefined,
  ) {}

  /** A new delivery: call in delivery order, before it can be settled. */
  track(entry: AckEntry): void {
    entry.ackState = UNSETTLED;
    this.entries.push(entry);
  }

  /** The delivery's handler is done: its ack goes out with the next flush. */
  ack(entry: AckEntry): void {
    if (this.closed || entry.ackState !== UNSETTLED) return;
    entry.ackState = ACK_PENDING;
    if (++this.pending >= this.maxPending) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate, not a microtask: everything delivered in this turn of the event loop (a socket read holds
      // hundreds of deliveries under load) is settled first, and is covered by one frame.
      setImmediate(this.flushNow);
    }
  }

  /** Nack one delivery at once (never with `multiple`: the others are not this handler's to reject). */
  nack(entry: AckEntry, requeue: boolean): void {
    if (this.closed || entry.ackState !== UNSETTLED) return;
    entry.ackState = SENT;
    // Acks waiting for the flush keep their place: the nack does not cover them and they do not cover it.
    try {
      this.ch.nack(entry.msg, false, requeue);
    } catch (err) {
      this.lost(err);
    }
  }

  /** Send every ack that is due: one multiple ack for the settled prefix, single acks behind a running handler. */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.pending === 0) return;
    const { entries } = this;
    let count = 0;
    let last: AckEntry | undefined;
    let i = this.head;
    for (; i < entries.length && entries[i]!.ackState !== UNSETTLED; i++) {
      const e = entries[i]!;
      if (e.ackState === ACK_PENDING) {
        e.ackState = SENT;
        last = e;
        count++;
      }
    }
    this.head = i;
    try {
      // Every delivery up to `last` is settled, and `last` itself is still outstanding at the broker (acked
      // here, not sent), so the multiple ack names a tag the broker knows and covers nothing still running.
      if (last) this.ch.ack(last.msg, true);
      if (count < this.pending) {
        for (let j = i; j < entries.length; j++) {
          const e = entries[j]!;
          if (e.ackState !== ACK_PENDING) continue;
          this.ch.ack(e.msg, false);
          e.ackState = SENT;
          count++;
        }
      }
    } catch (err) {
      this.lost(err);
      return;
    }
    this.pending = 0;
    if (this.head === entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > entries.length) {
      this.entries = entries.slice(this.head);
      this.head = 0;
    }
    this.onSent(count);
  }

  /** A write failed: the channel is closing (amqplib throws IllegalOperationError); the broker redelivers. */
  private lost(err: unknown): void {
    this.close();
    this.onLost(err);
  }

  /** The channel is gone: nothing more is sent on it (the broker redelivers whatever was not acked). */
  close(): void {
    this.closed = true;
    this.entries = [];
    this.head = 0;
    this.pending = 0;
  }
}
