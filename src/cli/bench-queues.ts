/**
 * `npm run bench:queues`: what the switch to quorum queues costs, on the real RabbitMQ, in one run.
 *
 * The same persistent 1 KB messages are published on a confirm channel (a window of confirms in flight) into a
 * private queue and consumed with manual acks, first into a classic v2 queue (what the project declared before),
 * then into a quorum queue declared exactly as the project's consumer queues are (`consumerQueueArguments`), and
 * again classic, so drift in the machine's load shows. Counts every message back (a figure is never printed for
 * a run that lost one). The last line is machine-readable:
 *
 *   quorum/classic: <ratio> (<quorum msg/s> vs <classic msg/s>)
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { consumerQueueArguments } from '../adapters/rabbitmq';
import { loadConfig } from '../config';

const USAGE = `Usage: npm run bench:queues -- [options]

Publishes persistent messages with confirms into a private queue and consumes them with manual acks, on a
classic v2 queue and on a quorum queue with the project's consumer-queue arguments (x-delivery-limit,
at-least-once dead-lettering), in the order classic, quorum, classic. Prints msg/s per run and the ratio
quorum/classic (against the mean of the two classic runs). Uses private queues in RABBITMQ_VHOST, deleted after.

Options:
  --messages <n>   messages per run (default 20000)
  --size <bytes>   body size (default 1024)
  --window <n>     unconfirmed publishes in flight (default 256)
  --prefetch <n>   consumer prefetch (default 500)
  -h, --help       this help
`;

type Kind = 'classic' | 'quorum';

async function runOnce(url: string, kind: Kind, n: number, size: number, window: number, prefetch: number) {
  const queue = `bench.queues.${kind}.${randomBytes(4).toString('hex')}`;
  const conn = await amqp.connect(url);
  try {
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    const args = kind === 'quorum' ? consumerQueueArguments(queue) : { 'x-queue-version': 2 };
    await pub.assertQueue(queue, { durable: true, arguments: args });
    await sub.prefetch(prefetch);
    const body = Buffer.alloc(size, 'x');
    let received = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await sub.consume(queue, (m) => {
      if (!m) return;
      sub.ack(m);
      if (++received === n) done();
    });
    const t0 = process.hrtime.bigint();
    let inFlight = 0;
    let nacked = 0;
    let waiters: Array<() => void> = [];
    for (let i = 0; i < n; i++) {
      while (inFlight >= window) await new Promise<void>((r) => waiters.push(r));
      inFlight++;
      pub.sendToQueue(queue, body, { persistent: true, messageId: String(i) }, (err) => {
        if (err) nacked++;
        inFlight--;
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      });
    }
    await pub.waitForConfirms().catch(() => undefined);
    if (nacked > 0) throw new Error(`${kind}: ${nacked} publishes nacked`);
    await all;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await pub.deleteQueue(queue);
    return { received, seconds, rate: received / seconds };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string' },
      size: { type: 'string' },
      window: { type: 'string' },
      prefetch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const int = (v: string | undefined, def: number, name: string) => {
    const n = v === undefined ? def : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const n = int(values.messages, 20_000, 'messages');
  const size = int(values.size, 1024, 'size');
  const window = int(values.window, 256, 'window');
  const prefetch = int(values.prefetch, 500, 'prefetch');
  const cfg = loadConfig();
  process.stdout.write(
    `bench:queues: ${n} persistent ${size}-byte messages per run, confirm window ${window}, prefetch ${prefetch}, ` +
      `RabbitMQ ${cfg.rabbitmq.host}:${cfg.rabbitmq.port} vhost ${cfg.rabbitmq.vhost}\n`,
  );
  const rates: Record<Kind, number[]> = { classic: [], quorum: [] };
  for (const kind of ['classic', 'quorum', 'classic'] as const) {
    const r = await runOnce(cfg.rabbitmq.url, kind, n, size, window, prefetch);
    if (r.received !== n) throw new Error(`${kind}: received ${r.received} of ${n}`);
    rates[kind].push(r.rate);
    process.stdout.write(`  ${kind.padEnd(7)} ${r.rate.toFixed(0).padStart(7)} msg/s (${r.seconds.toFixed(2)} s)\n`);
  }
  const classic = (rates.classic[0]! + rates.classic[1]!) / 2;
  const quorum = rates.quorum[0]!;
  process.stdout.write(
    `quorum/classic: ${(quorum / classic).toFixed(2)} (${quorum.toFixed(0)} vs ${classic.toFixed(0)} msg/s)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:queues failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
