import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmPublisher, PublishError, TRADE_SIGNALS_EXCHANGE, signalRoutingKey } from '../../src/adapters/rabbitmq';
import type { TradeSignalInput } from '../../src/contracts/signal';
import type { TradeStatus } from '../../src/workflows/shared';
import { logEvents, resultWithin, sleep, waitUntil } from '../support/faults';
import { PipelineHarness, testSignal } from '../support/pipeline';
import { startPrivateRabbit, type PrivateRabbit } from '../support/private-rabbit';

/**
 * RabbitMQ restarted (stop_app / start_app) while signals are being published and consumed. The producer
 * re-publishes, under the same signal_id, every publish that was not confirmed; signal intake (the same process
 * throughout) must reconnect by itself and start exactly one workflow per signal, however often a signal is
 * delivered. See docs/fault-tolerance.md.
 *
 * The broker restarted is a private node of this file's own (test/support/private-rabbit.ts): the shared node
 * serves the other integration files running beside this one, and other runs on the machine.
 */
const N = 30;
const PACE_MS = 250;
const RESTART_AFTER = 10;

describe('RabbitMQ restarted during intake (private RabbitMQ node, Temporal dev server)', () => {
  let node: PrivateRabbit;
  let h: PipelineHarness;
  let publisher: ConfirmPublisher;

  beforeAll(async () => {
    node = await startPrivateRabbit('sat-faults-rmq');
    // The scale-out layout: intake as its own process, so its pid and re-subscription are observable.
    h = await PipelineHarness.create({ ...node.rabbitEnv, INTAKE_IN_WORKER: 'false' });
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await h.start('signal-intake');
    // The producer: gives up on a publish quickly (no channel within 1 s, no confirm within 5 s) and re-publishes.
    publisher = new ConfirmPublisher(h.rabbit, { confirmTimeoutMs: 5000, channelWaitMs: 1000 });
  }, 300_000);
  afterAll(async () => {
    await node?.ensureStarted(); // the harness's processes stop cleanly, whatever failed
    await publisher?.close().catch(() => undefined);
    await h?.close();
    await node?.destroy();
  }, 180_000);

  it('every signal published across the restart gets exactly one workflow; intake recovers on its own', async () => {
    // Signals risk rejects at once (confidence below the threshold): the test is about intake, not fills.
    const signals: TradeSignalInput[] = Array.from({ length: N }, () => testSignal({ confidence: 0.1 }));
    const ids = signals.map((s) => `trade-${s.signal_id}`);
    const intakePid = h.services.get('signal-intake')!.child.pid;

    let rejectedPublishes = 0;
    /** The producer's contract: a publish that was not confirmed is published again, with the same signal_id. */
    const publishUntilConfirmed = async (s: TradeSignalInput): Promise<void> => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        try {
          await publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(s.strategy, s.symbol), s, {
            messageId: s.signal_id,
            correlationId: s.correlation_id,
          });
          return;
        } catch (err) {
          if (!(err instanceof PublishError) || Date.now() > deadline) throw err;
          rejectedPublishes++;
          await sleep(200);
        }
      }
    };

    // A steady stream of signals; the broker restarts after the first RESTART_AFTER have gone out.
    let restart: Promise<void> | undefined;
    const publishes: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      if (i === RESTART_AFTER) {
        restart = node.restart(2);
        // The rest of the stream must meet the broker down: rabbitmqctl's stop_app can take seconds to land on a
        // loaded machine (an Erlang VM boots for it), longer than the remaining signals take to go out.
        await waitUntil('the broker to go down', async () => !publisher.ready, 120_000, 20);
      }
      publishes.push(publishUntilConfirmed(signals[i]!));
      await sleep(PACE_MS);
    }
    await restart;
    await Promise.all(publishes);
    expect(rejectedPublishes, 'the restart happened while signals were being published').toBeGreaterThan(0);

    // Every signal's trade ran (risk rejected it: low confidence).
    for (const id of ids) {
      const r: TradeStatus = await resultWithin(h, id, 60_000);
      expect(r.phase).toBe('REJECTED');
      expect(r.reasonCode).toBe('low_confidence');
    }

    // The producer cannot know which publishes got through before the cut: it re-sends everything.
    const handled = () =>
      logEvents(h, 'signal-intake', 'trade workflow started').length +
      logEvents(h, 'signal-intake', 'signal already has its trade; duplicate delivery acked').length;
    const handledBefore = handled();
    for (const s of signals) await publishUntilConfirmed(s);
    await waitUntil('intake to handle the re-sent signals', async () => handled() >= handledBefore + N, 60_000);

    // Exactly one workflow run per signal (REJECT_DUPLICATE: not even a finished trade is started again).
    const runs = await waitUntil(
      'visibility to list every run',
      async () => {
        const c = await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`);
        return c.count >= N ? c.count : null;
      },
      30_000,
    );
    expect(runs).toBe(N);
    for (const id of ids) expect((await h.client.workflow.count(`WorkflowId = "${id}"`)).count, id).toBe(1);
    const started = logEvents(h, 'signal-intake', 'trade workflow started').map((e) => e.workflow_id);
    expect([...started].sort()).toEqual([...ids].sort());

    // The same intake process throughout: it reconnected and re-subscribed by itself.
    const intake = h.services.get('signal-intake')!;
    expect(intake.child.pid).toBe(intakePid);
    expect(intake.child.exitCode).toBeNull();
    expect(
      logEvents(h, 'signal-intake', 'consuming').length,
      'intake re-subscribed after the restart',
    ).toBeGreaterThanOrEqual(2);
  });
});
