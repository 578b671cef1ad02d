import type { Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AckBatcher, type AckChannel, type AckEntry } from '../../src/adapters/rabbitmq/ack-batcher';

/**
 * The bookkeeping rules of batched acks (pure logic; the broker side is proven against the real RabbitMQ in
 * test/integration/rabbitmq-adapter.test.ts): what goes on the wire is recorded as `ack 5*` (multiple), `ack 5`
 * or `nack 5`, and checked against the deliveries still running.
 */
function setup(maxPending = 100) {
  const wire: string[] = [];
  const ch: AckChannel = {
    ack: (m, all) => wire.push(`ack ${m.fields.deliveryTag}${all ? '*' : ''}`),
    nack: (m, all, requeue) => wire.push(`nack ${m.fields.deliveryTag}${all ? '*' : ''}${requeue ? ' requeue' : ''}`),
  };
  let sent = 0;
  const acks = new AckBatcher(ch, maxPending, (n) => (sent += n));
  const deliver = (n: number): AckEntry[] =>
    Array.from({ length: n }, (_, i) => {
      const e: AckEntry = { msg: { fields: { deliveryTag: i + 1 } } as unknown as Message, ackState: 0 };
      acks.track(e);
      return e;
    });
  return { wire, acks, deliver, sent: () => sent };
}

/** Which tags a wire log acknowledges, given the deliveries (1..n) — what the broker would remove. */
function ackedBy(wire: string[]): Set<number> {
  const out = new Set<number>();
  const nacked = new Set<number>();
  for (const w of wire) {
    const [op, t] = w.split(' ');
    const tag = Number(t!.replace('*', ''));
    if (op === 'nack') nacked.add(tag);
    else if (!t!.endsWith('*')) out.add(tag);
    else {
      for (let k = 1; k <= tag; k++) if (!nacked.has(k)) out.add(k);
    }
  }
  return out;
}

describe('AckBatcher', () => {
  it('covers a settled prefix with one multiple ack, on the next turn of the event loop', async () => {
    const { wire, acks, deliver, sent } = setup();
    const d = deliver(5);
    for (const e of d) acks.ack(e);
    expect(wire).toEqual([]); // nothing written in the delivering turn
    await new Promise((r) => setImmediate(r));
    expect(wire).toEqual(['ack 5*']);
    expect(sent()).toBe(5);
  });

  it('flushes at once when maxPending acks are due', () => {
    const { wire, acks, deliver } = setup(3);
    const d = deliver(7);
    for (const e of d) acks.ack(e);
    expect(wire).toEqual(['ack 3*', 'ack 6*']);
    acks.flush();
    expect(wire).toEqual(['ack 3*', 'ack 6*', 'ack 7*']);
  });

  it('never covers a delivery whose handler is still running; the acks behind it go one by one', () => {
    const { wire, acks, deliver, sent } = setup();
    const d = deliver(6);
    acks.ack(d[0]!);
    acks.ack(d[1]!);
    // d[2] is still running
    acks.ack(d[3]!);
    acks.ack(d[5]!);
    acks.flush();
    expect(wire).toEqual(['ack 2*', 'ack 4', 'ack 6']);
    expect(ackedBy(wire).has(3)).toBe(false);
    expect(ackedBy(wire).has(5)).toBe(false);
    acks.ack(d[2]!);
    acks.ack(d[4]!);
    acks.flush();
    // 3..5 are settled now; the multiple ack names 5 (acked here, not yet sent), never an already-acked tag.
    expect(wire.slice(3)).toEqual(['ack 5*']);
    expect([...ackedBy(wire)].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sent()).toBe(6);
  });

  it('sends nacks at once and on their own; a multiple ack never names a nacked tag', () => {
    const { wire, acks, deliver } = setup();
    const d = deliver(4);
    acks.ack(d[0]!);
    acks.nack(d[1]!, true);
    acks.ack(d[2]!);
    expect(wire).toEqual(['nack 2 requeue']);
    acks.nack(d[3]!, false);
    acks.flush();
    expect(wire).toEqual(['nack 2 requeue', 'nack 4', 'ack 3*']);
    expect([...ackedBy(wire)].sort()).toEqual([1, 3]);
  });

  it('settles once: a second ack or a nack after an ack is ignored', () => {
    const { wire, acks, deliver } = setup();
    const [e] = deliver(1);
    acks.ack(e!);
    acks.ack(e!);
    acks.nack(e!, true);
    acks.flush();
    expect(wire).toEqual(['ack 1*']);
  });

  it('after close (the channel is gone) nothing more is written', async () => {
    const { wire, acks, deliver } = setup();
    const d = deliver(2);
    acks.ack(d[0]!);
    acks.close();
    acks.ack(d[1]!);
    acks.flush();
    await new Promise((r) => setImmediate(r));
    expect(wire).toEqual([]);
  });

  it('a write that throws (channel closing) stops the batcher and reports it', () => {
    const lost: unknown[] = [];
    const acks = new AckBatcher(
      {
        ack: () => {
          throw new Error('Channel closed');
        },
        nack: () => undefined,
      },
      10,
      () => undefined,
      (err) => lost.push(err),
    );
    const e: AckEntry = { msg: { fields: { deliveryTag: 1 } } as unknown as Message, ackState: 0 };
    acks.track(e);
    acks.ack(e);
    acks.flush();
    expect(lost).toHaveLength(1);
  });
});
