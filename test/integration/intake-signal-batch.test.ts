import { defineSearchAttributeKey } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  RabbitConnection,
  REJECTION_REASON_HEADER,
  TRADE_SIGNALS_EXCHANGE,
  dlqName,
  signalBatchRoutingKey,
} from '../../src/adapters/rabbitmq';
import { signalBatchBody, type TradeSignalInput } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { startIntake, tradeStartOptions, type IntakeHandle } from '../../src/workers/signal-intake';
import { testSignal } from '../support/pipeline';
import { uniqueTaskQueue, type DevServer } from '../support/temporal';
import { openIntakeRig, type IntakeRig } from '../support/intake-rig';
import { drain, queueDepth, waitFor, workflowExists } from '../support/queues';

/**
 * Intake reads the quant's batched form (`signal_batch`, contracts/signal.ts) against the real Temporal dev server
 * and real RabbitMQ (private vhost, private task queues; no worker needed: a started trade waits on its queue):
 * one trade per signal of a batch, none twice however the signals are re-published or re-grouped; a batch that
 * breaks the contract is dead-lettered whole with the reason and starts nothing; a batch with a refused start
 * starts the rest and is dead-lettered whole with the refused signal named.
 */
const log = createLogger('test-intake-batch', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const UNREGISTERED = defineSearchAttributeKey('SatNoSuchAttribute', 'KEYWORD');

let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
let temporal: DevServer;
let rig: IntakeRig | undefined;
let started: string[] = [];

beforeAll(async () => {
  rig = await openIntakeRig('intake-batch', log);
  ({ rabbit, publisher, temporal, started } = rig);
});

afterAll(async () => {
  await rig?.close();
});

async function publishBatch(signals: readonly TradeSignalInput[], body: unknown = signalBatchBody(signals)) {
  await publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalBatchRoutingKey(signals[0]?.symbol), body, {
    messageId: `${signals[0]?.signal_id ?? 'empty'}+${signals.length}`,
    correlationId: signals[0]?.correlation_id ?? 'corr-empty',
  });
}

function runIntake(taskQueue: string, extra: Partial<Parameters<typeof startIntake>[0]> = {}): IntakeHandle {
  return startIntake({ rabbit, publisher, client: temporal.client, taskQueue, logger: log, prefetch: 8, ...extra });
}

describe('intake: batched signals (real Temporal dev server, real RabbitMQ)', () => {
  it('one trade per signal of a batch; the same signals re-published in other groupings start none twice', async () => {
    const intake = runIntake(uniqueTaskQueue('intake-batch'));
    try {
      await intake.consumer.ready();
      const first = Array.from({ length: 5 }, (_, i) =>
        testSignal({ strategy: 'batch', side: i % 2 ? 'sell' : 'buy' }),
      );
      const more = Array.from({ length: 2 }, () => testSignal({ strategy: 'batch', symbol: 'ORCL' }));
      started.push(...[...first, ...more].map((s) => `trade-${s.signal_id}`));
      await publishBatch(first);
      await waitFor(
        'the batch to be acked',
        async () => intake.stats.started === 5 && intake.consumer.stats.acked === 1,
      );
      for (const s of first) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(true);

      // A producer restarted after a crash re-publishes the same signals, grouped otherwise, beside new ones.
      await publishBatch([first[3]!, ...more, first[0]!]);
      await publishBatch([first[1]!, first[2]!]);
      await publishBatch([first[4]!]);
      await waitFor('the re-published batches to be acked', () => intake.consumer.stats.acked === 4);
      expect(intake.stats).toMatchObject({ received: 12, started: 7, duplicates: 5, deadLettered: 0 });
      for (const s of more) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(true);
      expect(await queueDepth(rabbit, INTAKE_SIGNALS_QUEUE)).toBe(0);
      expect(await queueDepth(rabbit, dlqName(INTAKE_SIGNALS_QUEUE))).toBe(0);
    } finally {
      await intake.stop();
    }
  });

  it('a batch that breaks the contract is dead-lettered whole, with the reason, and starts nothing', async () => {
    const intake = runIntake(uniqueTaskQueue('intake-batch-bad'));
    try {
      await intake.consumer.ready();
      const signals = [testSignal({ strategy: 'batch' }), testSignal({ strategy: 'batch', confidence: 2 })];
      const body = signalBatchBody(signals);
      await publishBatch(signals, body);
      const [dead] = await drain(rabbit, dlqName(INTAKE_SIGNALS_QUEUE), 1);
      expect(dead).toBeDefined();
      expect(JSON.parse(dead!.content.toString())).toEqual(body);
      expect(String(dead!.properties.headers![REJECTION_REASON_HEADER])).toMatch(
        /^invalid signal: signals\.1\.confidence: /,
      );
      for (const s of signals) expect(await workflowExists(temporal.client, `trade-${s.signal_id}`)).toBe(false);
      expect(intake.stats).toMatchObject({ started: 0, deadLettered: 1 });
    } finally {
      await intake.stop();
    }
  });

  it('a refused start in a batch: the others start, the message is dead-lettered whole naming the refused signal', async () => {
    const signals = Array.from({ length: 4 }, (_, i) => testSignal({ strategy: i === 2 ? 'bad-sa' : 'batch' }));
    const intake = runIntake(uniqueTaskQueue('intake-batch-refused'), {
      startOptions: (signal, tq) => {
        const o = tradeStartOptions(signal, tq);
        if (signal.strategy !== 'bad-sa') return o;
        return { ...o, typedSearchAttributes: [...o.typedSearchAttributes, { key: UNREGISTERED, value: 'x' }] };
      },
    });
    try {
      await intake.consumer.ready();
      started.push(...signals.map((s) => `trade-${s.signal_id}`));
      const body = signalBatchBody(signals);
      await publishBatch(signals, body);
      const [dead] = await drain(rabbit, dlqName(INTAKE_SIGNALS_QUEUE), 1);
      expect(dead).toBeDefined();
      expect(JSON.parse(dead!.content.toString())).toEqual(body);
      const reason = String(dead!.properties.headers![REJECTION_REASON_HEADER]);
      expect(reason).toMatch(
        new RegExp(`^1 of 4 signals refused: ${signals[2]!.signal_id}: workflow start refused \\(INVALID_ARGUMENT: `),
      );
      for (const [i, s] of signals.entries())
        expect(await workflowExists(temporal.client, `trade-${s.signal_id}`), s.signal_id).toBe(i !== 2);
      expect(intake.stats).toMatchObject({ received: 4, started: 3, startRejected: 1, deadLettered: 1 });
      await waitFor('the original to be acked', () => intake.consumer.stats.acked === 1);
      expect(await queueDepth(rabbit, INTAKE_SIGNALS_QUEUE)).toBe(0);
    } finally {
      await intake.stop();
    }
  });
});
