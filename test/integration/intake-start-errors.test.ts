import net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  RabbitConnection,
  REJECTION_REASON_HEADER,
  TRADE_SIGNALS_EXCHANGE,
  dlqName,
  signalRoutingKey,
} from '../../src/adapters/rabbitmq';
import type { TradeSignalInput } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { startIntake, tradeStartOptions, type IntakeHandle } from '../../src/workers/signal-intake';
import { freePort, testSignal } from '../support/pipeline';
import { uniqueTaskQueue, type DevServer } from '../support/temporal';
import { openIntakeRig, type IntakeRig } from '../support/intake-rig';
import { drain, queueDepth, waitFor, workflowExists } from '../support/queues';

/**
 * Intake sorts workflow-start errors by gRPC status (issue 8 §6), against the real Temporal dev server and real
 * RabbitMQ (private vhost, private task queue; no worker needed: a started trade simply waits on its queue).
 *
 * The permanent errors are the server's own answers: a search attribute the namespace has no mapping for and a
 * memo over the blob size limit (INVALID_ARGUMENT), an unknown namespace (NOT_FOUND). A start over gRPC's 4 MiB
 * message limit (RESOURCE_EXHAUSTED "larger than max") is sorted in the unit test only: the SDK's own gRPC retry
 * spends about 42 s on it before intake sees the error (measured against the dev server). They are provoked through intake's `startOptions` hook
 * (what a deployment with an unprovisioned server or a bad namespace setting does to every start).
 */
const log = createLogger('test-intake-errors', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const UNREGISTERED = defineSearchAttributeKey('SatNoSuchAttribute', 'KEYWORD');
const PREFETCH = 8;

let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
let temporal: DevServer;
let rig: IntakeRig | undefined;
let started: string[] = [];

beforeAll(async () => {
  rig = await openIntakeRig('intake-errors', log);
  ({ rabbit, publisher, temporal, started } = rig);
});

afterAll(async () => {
  await rig?.close();
});

async function publish(signal: TradeSignalInput): Promise<void> {
  await publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(signal.strategy, signal.symbol), signal, {
    messageId: signal.signal_id,
    correlationId: signal.correlation_id,
  });
}

function runIntake(client: Client, taskQueue: string, extra: Partial<Parameters<typeof startIntake>[0]> = {}) {
  return startIntake({ rabbit, publisher, client, taskQueue, logger: log, prefetch: PREFETCH, ...extra });
}

describe('intake: workflow-start errors sorted by gRPC status (real Temporal dev server)', () => {
  it('permanent refusals are dead-lettered with the reason; 40 of them (5× the prefetch) do not stop valid signals behind them', async () => {
    const taskQueue = uniqueTaskQueue('intake-err');
    // Mostly the cheap refusal; a few of the multi-megabyte one (each costs a 3 MB encode and send).
    const kindOf = (i: number) => (i % 10 === 3 ? 'big-memo' : 'bad-sa');
    const bad = Array.from({ length: 40 }, (_, i) => testSignal({ strategy: kindOf(i) }));
    const good = Array.from({ length: 10 }, () => testSignal({ strategy: 'valid' }));
    const intake: IntakeHandle = runIntake(temporal.client, taskQueue, {
      startOptions: (signal, tq) => {
        const o = tradeStartOptions(signal, tq);
        if (signal.strategy === 'bad-sa')
          return { ...o, typedSearchAttributes: [...o.typedSearchAttributes, { key: UNREGISTERED, value: 'x' }] };
        // The dev server's blob/memo limit is 2 MB.
        if (signal.strategy === 'big-memo') return { ...o, memo: { ...o.memo, blob: 'x'.repeat(3_000_000) } };
        return o;
      },
    });
    try {
      await intake.consumer.ready();
      for (const s of bad) await publish(s);
      for (const s of good) await publish(s);
      started.push(...good.map((s) => `trade-${s.signal_id}`));

      await waitFor(
        'every signal to be started or refused',
        () => intake.stats.started + intake.stats.startRejected === bad.length + good.length,
        180_000,
      );
      const dead = await drain(rabbit, dlqName(INTAKE_SIGNALS_QUEUE), bad.length);
      expect(intake.stats).toMatchObject({
        started: good.length,
        startRejected: bad.length,
        deadLettered: bad.length,
        startRetries: 0,
        duplicates: 0,
      });
      for (const s of good) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(true);
      for (const s of bad) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(false);

      // Every refused signal is in the DLQ, unchanged, with the server's reason.
      expect(dead.map((m) => m.properties.messageId as string).sort()).toEqual(bad.map((s) => s.signal_id).sort());
      const reasonOf = new Map(dead.map((m) => [m.properties.messageId as string, m]));
      for (const s of bad) {
        const m = reasonOf.get(s.signal_id)!;
        expect(JSON.parse(m.content.toString())).toEqual(s);
        const reason = String(m.properties.headers![REJECTION_REASON_HEADER]);
        if (s.strategy === 'bad-sa')
          expect(reason).toMatch(/^workflow start refused \(INVALID_ARGUMENT: .*SatNoSuchAttribute/);
        if (s.strategy === 'big-memo')
          expect(reason).toMatch(/^workflow start refused \(INVALID_ARGUMENT: .*size exceeds limit/i);
      }
      expect(await queueDepth(rabbit, INTAKE_SIGNALS_QUEUE)).toBe(0);
    } finally {
      await intake.stop();
    }
  });

  it('an unknown namespace is permanent: every signal is dead-lettered with "namespace not found", none held', async () => {
    const client = new Client({ connection: temporal.connection, namespace: 'sat-no-such-namespace' });
    const intake = runIntake(client, uniqueTaskQueue('intake-ns'));
    try {
      await intake.consumer.ready();
      const signals = Array.from({ length: PREFETCH + 2 }, () => testSignal({ strategy: 'ns' }));
      for (const s of signals) await publish(s);
      const dead = await drain(rabbit, dlqName(INTAKE_SIGNALS_QUEUE), signals.length);
      expect(dead).toHaveLength(signals.length);
      for (const m of dead) {
        expect(m.properties.headers![REJECTION_REASON_HEADER]).toBe(
          'workflow start refused (namespace not found: sat-no-such-namespace)',
        );
      }
      expect(intake.stats).toMatchObject({ startRejected: signals.length, started: 0, startRetries: 0 });
    } finally {
      await intake.stop();
    }
  });

  it('a transient outage (Temporal unreachable) is retried with backoff, holding the message: nothing dead-lettered', async () => {
    // Intake reaches Temporal through a TCP relay that refuses connections until the test opens it.
    const port = await freePort();
    const target = new URL(`http://${temporal.address}`);
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    // No SDK-level gRPC retry: every UNAVAILABLE reaches intake, which must retry it itself.
    const connection = Connection.lazy({ address: `127.0.0.1:${port}`, interceptors: [] });
    const client = new Client({ connection, namespace: temporal.namespace });
    const taskQueue = uniqueTaskQueue('intake-outage');
    const intake = runIntake(client, taskQueue, { maxRetryDelayMs: 1000 });
    try {
      await intake.consumer.ready();
      const signals = Array.from({ length: 3 }, () => testSignal({ strategy: 'outage' }));
      for (const s of signals) await publish(s);
      started.push(...signals.map((s) => `trade-${s.signal_id}`));
      await waitFor('start attempts to fail against the closed relay', () => intake.stats.startRetries >= 6);
      expect(intake.stats).toMatchObject({ started: 0, deadLettered: 0 });
      await new Promise<void>((r) => relay.listen(port, '127.0.0.1', () => r()));
      await waitFor('the held signals to be started', () => intake.stats.started === signals.length, 90_000);
      for (const s of signals) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(true);
      expect(intake.stats.deadLettered).toBe(0);
      expect(await queueDepth(rabbit, dlqName(INTAKE_SIGNALS_QUEUE))).toBe(0);
    } finally {
      await intake.stop();
      await connection.close().catch(() => undefined);
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });
});
