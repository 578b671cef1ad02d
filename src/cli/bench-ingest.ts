/**
 * `npm run bench:ingest`: market-data ingest throughput on the real RabbitMQ, in one run:
 *
 *   bare amqplib   each bar serialised and published persistent on a confirm channel (a window of confirms in
 *                  flight), a manual-ack consumer that acks each message and counts: the textbook amqplib loop;
 *   per-message    the Dataflow path (replayBars → ConfirmPublisher.publishBatch, one bar per message, every
 *                  bar confirmed) consumed by a validating, de-duplicating consumer (consumeJson, batched acks →
 *                  barsOfMessage → SeriesDedupe);
 *   batched        the same with BAR_BATCH_SIZE bars of one symbol per message.
 *
 * Each mode runs on a private durable queue bound to a private exchange (deleted afterwards), with the same
 * synthetic bars (seeded GBM), and counts bars/s from the first publish until the consumer has every bar. The
 * consumer also checks the count and uniqueness, so a figure is never printed for a run that lost or doubled a
 * bar. Both paths get a warm-up run (JIT) before the measured ones. The sequence bare, per-message, batched runs
 * `--rounds` times (default 5; then bare once more): each per-message run is compared with the bare runs either
 * side of it, and the medians are printed, which is what makes a figure from a busy shared machine usable (one
 * round's ratio swung from 0.4 to 1.35 at load average 6-9).
 * Each mode also reports the CPU time this process spent per message, and, when the broker runs on this machine,
 * the broker's CPU time per message and how many of the machine's cores were busy: together they say what bounds
 * the figure (on 2 cores the broker's persist-confirm-deliver work is the larger share of both loops').
 *
 * Both loops serialise each bar as they publish it, inside their clocks: a producer of bars has to, and the
 * comparison is of the rest. The bare loop is still the broker's and amqplib's ceiling, not a like-for-like
 * pipeline: its consumer neither parses, validates nor de-duplicates. The output says so and measures that work
 * in-process (µs per bar, CPU time) in the same run, so the gap can be read against it.
 * The last two lines are machine-readable:
 *
 *   per-message: <N> bars/s (<R>x bare amqplib <M> msg/s)
 *   batched: <N> bars/s
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { barsOfMessage, type Bar } from '../contracts/bar';
import { loadConfig } from '../config';
import { createLogger } from '../logging';
import { gbmBars } from '../domain/marketdata/synthetic';
import { mergeByTime, toBarMessage } from '../adapters/marketdata/replay';
import { ConfirmPublisher, RabbitConnection, consumeJson, withChannel } from '../adapters/rabbitmq';
import { replayBars } from '../services/bar-publishing';
import { CpuSampler, findListenerPid, type ProcSnapshot } from './bench/cpu';

const USAGE = `Usage: npm run bench:ingest -- [options]

Measures bars/s published with confirms and consumed by a validating, de-duplicating consumer, one bar per
message and batched, beside a bare amqplib publish/consume loop (persistent, confirms, manual acks), on the
local RabbitMQ (RABBITMQ_*). Uses private queues; prints progress and a summary.

Options:
  --bars <n>       bars per mode (default 30000)
  --batch <n>      bars per message in the batched mode (default 100)
  --window <n>     unconfirmed messages in flight (default 256)
  --prefetch <n>   consumer prefetch (default 1000)
  --rounds <n>     measured rounds of bare, per-message, batched (default 5); medians are printed
  -h, --help       this help
`;

interface Result {
  messages: number;
  bars: number;
  seconds: number;
  /** CPU time of this process (user + system) during the run, ms. */
  cpuMs: number;
  /** The local broker's CPU time during the run, ms (NaN when the broker is not on this machine). */
  brokerMs: number;
  /** Busy cores of the whole machine during the run. */
  machineCores: number;
  /** This process's read and write system calls during the run (socket reads and writes, mostly). */
  syscalls: { reads: number; writes: number };
}

/** This process's read and write system calls so far (/proc/self/io): a count that does not move with load. */
function syscalls(): { reads: number; writes: number } {
  try {
    const io = fs.readFileSync('/proc/self/io', 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? NaN);
    return { reads: field('syscr'), writes: field('syscw') };
  } catch {
    return { reads: NaN, writes: NaN };
  }
}

function syscallsSince(a: { reads: number; writes: number }): { reads: number; writes: number } {
  const b = syscalls();
  return { reads: b.reads - a.reads, writes: b.writes - a.writes };
}

/**
 * The broker this run talks to, when it runs on this machine (the process listening on RABBITMQ_PORT), and the
 * machine, from /proc: the broker's share is most of each message's CPU, and it is not in this process's figure.
 */
function brokerSampler(port: number): CpuSampler {
  let pid: number | undefined;
  const roots = (): number[] => {
    pid ??= findListenerPid(port);
    return pid === undefined ? [] : [pid];
  };
  return new CpuSampler([{ name: 'broker', roots }]);
}

function brokerFigures(
  brokerCpu: CpuSampler,
  a: ProcSnapshot,
  seconds: number,
): { brokerMs: number; machineCores: number } {
  const b = brokerCpu.snapshot();
  const cores = CpuSampler.between(a, b);
  const brokerMs = a.groups.broker && b.groups.broker ? (cores.broker ?? NaN) * seconds * 1000 : NaN;
  return { brokerMs, machineCores: cores.machine ?? NaN };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The consumer's de-duplication, as the quant does it: a bar at or before the last bar taken of its series is a
 * copy (a redelivery, or a re-publish after an unconfirmed window: both only ever repeat bars already sent, and
 * a series arrives in order). One small map lookup and a string compare a bar, where a set of every id seen
 * grows without bound and misses the cache on each lookup (it cost more CPU than parsing and validating the bar
 * together, measured with perf). The bench's bars are all one interval, so a series is a symbol.
 */
class SeriesDedupe {
  private readonly last = new Map<string, string>();
  /** True for a bar after the last one taken of its series (taken now), false for a copy. */
  take(bar: Bar): boolean {
    const prev = this.last.get(bar.symbol);
    if (prev !== undefined && bar.timestamp <= prev) return false;
    this.last.set(bar.symbol, bar.timestamp);
    return true;
  }

  lastOf(symbol: string): string | undefined {
    return this.last.get(symbol);
  }
}

/**
 * The bench's own check, after the clock: every bar taken exactly once. Taken bars of a series are strictly in
 * time order (SeriesDedupe), so no bar was taken twice; n of them, each series ending at its last bar, is every
 * bar published.
 */
function checkTaken(
  tag: string,
  dedupe: SeriesDedupe,
  bars: readonly Bar[],
  taken: number,
  copies: number,
  invalid: number,
): void {
  const ends = new Map(bars.map((b) => [b.symbol, b.timestamp]));
  const unfinished = [...ends].filter(([symbol, last]) => dedupe.lastOf(symbol) !== last).map(([s]) => s);
  if (invalid || copies || taken !== bars.length || unfinished.length > 0) {
    throw new Error(
      `${tag}: ${taken}/${bars.length} bars taken, ${copies} duplicates, ${invalid} invalid messages` +
        (unfinished.length ? `, series not at their last bar: ${unfinished.join(', ')}` : ''),
    );
  }
}

function syntheticBars(n: number): Bar[] {
  const symbols = ['SYNA', 'SYNB', 'SYNC', 'SYND'];
  const per = Math.ceil(n / symbols.length);
  const series = symbols.map((symbol, k) =>
    gbmBars({
      symbol,
      seed: 1000 + k,
      startPrice: 50 + 10 * k,
      drift: 0.05,
      volatility: 0.3,
      startMs: Date.parse('2020-01-01T00:00:00Z'),
      stepMs: 60_000,
      count: per,
    }).map((b) => toBarMessage(b, '1m', 'synthetic')),
  );
  return mergeByTime(series).slice(0, n);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bars: { type: 'string', default: '30000' },
      batch: { type: 'string', default: '100' },
      window: { type: 'string', default: '256' },
      prefetch: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const n = Number(values.bars);
  const batch = Number(values.batch);
  const window = Number(values.window);
  const prefetch = Number(values.prefetch);
  const rounds = Number(values.rounds);
  for (const [k, v] of Object.entries({ bars: n, batch, window, prefetch, rounds })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be an integer >= 1`);
  }
  const cfg = loadConfig();
  const log = createLogger('bench-ingest', { level: 'warn' });
  const id = randomBytes(4).toString('hex');
  const exchange = `bench.ingest.${id}`;
  const bars = syntheticBars(n);
  const brokerCpu = brokerSampler(cfg.rabbitmq.port);
  const say = (s: string) => process.stdout.write(`${s}\n`);
  say(
    `bench:ingest: ${n} synthetic bars (4 symbols, 1m) per mode, window ${window}, prefetch ${prefetch}, batch ${batch}, ${rounds} round(s)`,
  );
  say(`RabbitMQ ${cfg.rabbitmq.host}:${cfg.rabbitmq.port} vhost ${cfg.rabbitmq.vhost}; private exchange ${exchange}`);

  // ── bare amqplib ────────────────────────────────────────────────────────────────────────────────────────
  const bare = async (): Promise<Result> => {
    const queue = `${exchange}.bare`;
    const conn = await amqp.connect(cfg.rabbitmq.url);
    const pubCh = await conn.createConfirmChannel();
    const subCh = await conn.createChannel();
    await pubCh.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await pubCh.assertQueue(queue, { durable: true, arguments: { 'x-queue-version': 2 } });
    await pubCh.bindQueue(queue, exchange, 'bars.#');
    await subCh.prefetch(prefetch);
    let received = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await subCh.consume(queue, (msg) => {
      if (!msg) return;
      subCh.ack(msg);
      if (++received === n) done();
    });
    const p0 = brokerCpu.snapshot();
    const s0 = syscalls();
    const c0 = cpuMs();
    const t0 = performance.now();
    let inFlight = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < n; i++) {
      while (inFlight >= window) await new Promise<void>((r) => (wake = r));
      inFlight++;
      const bar = bars[i]!;
      // Serialised here, inside the clock, as the Dataflow path serialises each bar when it writes it.
      const ok = pubCh.publish(
        exchange,
        `bars.1m.${bar.symbol}`,
        Buffer.from(JSON.stringify(bar), 'utf8'),
        { persistent: true, messageId: bar.message_id, contentType: 'application/json' },
        (err) => {
          if (err) throw err;
          inFlight--;
          wake?.();
        },
      );
      if (!ok) await new Promise<void>((r) => pubCh.once('drain', () => r()));
    }
    await pubCh.waitForConfirms();
    await all;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuMs() - c0;
    const broker = brokerFigures(brokerCpu, p0, seconds);
    const sys = syscallsSince(s0);
    await subCh.close();
    await pubCh.deleteQueue(queue);
    await pubCh.close();
    await conn.close();
    return { messages: n, bars: n, seconds, cpuMs: cpu, ...broker, syscalls: sys };
  };

  // ── the Dataflow path ───────────────────────────────────────────────────────────────────────────────────
  const dataflow = async (batchSize: number, tag: string): Promise<Result> => {
    const queue = `${exchange}.${tag}`;
    const rabbit = new RabbitConnection({ url: cfg.rabbitmq.url, name: `bench-ingest-${tag}`, logger: log });
    const publisher = new ConfirmPublisher(rabbit, { logger: log });
    await rabbit.start();
    await withChannel(rabbit.connection!, async (ch) => {
      await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-version': 2 } });
      await ch.bindQueue(queue, exchange, 'bars.#');
    });
    const dedupe = new SeriesDedupe();
    let taken = 0;
    let messages = 0;
    let duplicates = 0;
    let invalid = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const consumer = consumeJson(rabbit, queue, { prefetch, publisher, logger: log }, (ctx) => {
      messages++;
      const m = barsOfMessage(ctx.body);
      if (!m.ok) {
        invalid++;
        return;
      }
      for (const b of m.bars) {
        if (dedupe.take(b)) taken++;
        else duplicates++;
      }
      if (taken === n) done();
    });
    await consumer.ready();
    const p0 = brokerCpu.snapshot();
    const s0 = syscalls();
    const c0 = cpuMs();
    const t0 = performance.now();
    await replayBars({ publisher, bars, exchange, window, batchSize, logger: log });
    await all;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuMs() - c0;
    const broker = brokerFigures(brokerCpu, p0, seconds);
    const sys = syscallsSince(s0);
    await consumer.cancel();
    await withChannel(rabbit.connection!, (ch) => ch.deleteQueue(queue).then(() => undefined));
    await publisher.close();
    await rabbit.close();
    checkTaken(tag, dedupe, bars, taken, duplicates, invalid);
    return { messages, bars: n, seconds, cpuMs: cpu, ...broker, syscalls: sys };
  };

  /** Serialising (both loops do it) and the work the bare loop leaves out, per bar, CPU time here (best of 5). */
  const skippedWork = (): { serialise: number; consume: number } => {
    let serialise = Infinity;
    let consume = Infinity;
    let payloads: Buffer[] = [];
    for (let r = 0; r < 5; r++) {
      let c0 = cpuMs();
      payloads = bars.map((b) => Buffer.from(JSON.stringify(b), 'utf8'));
      serialise = Math.min(serialise, cpuMs() - c0);
      c0 = cpuMs();
      const dedupe = new SeriesDedupe();
      let taken = 0;
      let duplicates = 0;
      let invalid = 0;
      for (const p of payloads) {
        const m = barsOfMessage(JSON.parse(p.toString('utf8')));
        if (!m.ok) {
          invalid++;
          continue;
        }
        for (const b of m.bars) {
          if (dedupe.take(b)) taken++;
          else duplicates++;
        }
      }
      consume = Math.min(consume, cpuMs() - c0);
      checkTaken('in-process', dedupe, bars, taken, duplicates, invalid);
    }
    return { serialise: (serialise * 1000) / n, consume: (consume * 1000) / n };
  };

  const rate = (r: Result) => r.bars / r.seconds;
  const line = (name: string, r: Result) =>
    say(
      `  ${name.padEnd(12)} ${r.bars} bars in ${r.messages} messages, ${r.seconds.toFixed(2)} s: ` +
        `${Math.round(rate(r))} bars/s, ${Math.round(r.messages / r.seconds)} msg/s, ` +
        `CPU here ${((r.cpuMs * 1000) / r.messages).toFixed(1)} µs/msg, broker ` +
        `${Number.isNaN(r.brokerMs) ? 'n/a' : `${((r.brokerMs * 1000) / r.messages).toFixed(1)} µs/msg`}, ` +
        `machine ${r.machineCores.toFixed(2)} cores busy, syscalls here ` +
        `${(r.syscalls.writes / r.messages).toFixed(2)} writes + ${(r.syscalls.reads / r.messages).toFixed(2)} reads/msg`,
    );
  try {
    say('warm-up …');
    await bare();
    await dataflow(1, 'warm-up');
    const bares: Result[] = [];
    const perMessage: Result[] = [];
    const batched: Result[] = [];
    for (let k = 0; k < rounds; k++) {
      if (rounds > 1) say(`round ${k + 1}/${rounds}`);
      bares.push(await bare());
      line('bare amqplib', bares.at(-1)!);
      perMessage.push(await dataflow(1, 'per-message'));
      line('per-message', perMessage.at(-1)!);
      batched.push(await dataflow(batch, 'batched'));
      line('batched', batched.at(-1)!);
    }
    bares.push(await bare());
    line('bare amqplib', bares.at(-1)!);
    // Each per-message run against the bare runs just before and after it (the machine's load drifts).
    const bareAround = perMessage.map((_, k) => (rate(bares[k]!) + rate(bares[k + 1]!)) / 2);
    const ratios = perMessage.map((r, k) => rate(r) / bareAround[k]!);
    const bareRate = median(bareAround);
    const pmRate = median(perMessage.map(rate));
    const ratio = median(ratios);
    const cpuPerMsg = (rs: Result[]) => median(rs.map((r) => (r.cpuMs * 1000) / r.messages));
    if (rounds > 1) {
      say(
        `per-message / bare ratios by round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; ` +
          `medians follow (the ratio is the median of the rounds' ratios)`,
      );
    } else say(`bare amqplib: mean of the runs before and after: ${Math.round(bareRate)} msg/s`);
    say(
      `CPU time of this process per message (median): bare ${cpuPerMsg(bares).toFixed(1)} µs, ` +
        `per-message ${cpuPerMsg(perMessage).toFixed(1)} µs; the broker's work per message (persist, confirm, ` +
        `deliver, ack: one ack frame per turn instead of one a message on the per-message path) is not in them`,
    );
    const brokerPerMsg = (rs: Result[]) => median(rs.map((r) => (r.brokerMs * 1000) / r.messages));
    if (!Number.isNaN(brokerPerMsg(bares))) {
      say(
        `the broker's CPU time per message (median): bare ${brokerPerMsg(bares).toFixed(1)} µs, per-message ` +
          `${brokerPerMsg(perMessage).toFixed(1)} µs; machine busy (median) ` +
          `${median(bares.map((r) => r.machineCores)).toFixed(2)} / ` +
          `${median(perMessage.map((r) => r.machineCores)).toFixed(2)} of ${os.cpus().length} cores`,
      );
    }
    const skipped = skippedWork();
    say(
      `both loops serialise each bar inside their clocks (${skipped.serialise.toFixed(1)} µs/bar); bare amqplib ` +
        `skips parse + validate + de-duplicate (${skipped.consume.toFixed(1)} µs/bar, its consumer only acks), ` +
        `CPU time in this process; it also publishes without the mandatory flag, correlation id, timestamp ` +
        `and content encoding the pipeline's messages carry, and acks each message where the pipeline's consumer acks in batches ` +
        `(multiple). A bare message takes ${(1e6 / bareRate).toFixed(0)} µs of wall time`,
    );
    say(`per-message: ${Math.round(pmRate)} bars/s (${ratio.toFixed(2)}x bare amqplib ${Math.round(bareRate)} msg/s)`);
    say(`batched: ${Math.round(median(batched.map(rate)))} bars/s`);
  } finally {
    const conn = await amqp.connect(cfg.rabbitmq.url).catch(() => undefined);
    if (conn) {
      const ch = await conn.createChannel();
      await ch.deleteExchange(exchange).catch(() => undefined);
      await conn.close().catch(() => undefined);
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:ingest: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
