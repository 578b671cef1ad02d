import { describe, expect, it } from 'vitest';
import { adversarialRig } from '../support/adversarial-broker';
import { activityAttempts, retryTimeoutTypes } from '../support/faults';
import { printAudit } from '../support/trade-audit';

/**
 * Issue 8, adversarial broker suite (test/support/adversarial-broker.ts), the longest mode on a rig of its own so
 * that it runs beside the other modes (trade-adversarial-broker.test.ts): Alpaca answers 429 for 60 s with
 * X-Ratelimit-Reset; the trade must wait the storm out, place exactly one order and be booked once.
 */
describe('trade worker against an adversarial Alpaca: a 60 s rate-limit storm', () => {
  const rig = adversarialRig('adversarial-429');
  const { start, results, expectAllReconciled } = rig;

  it('429 for 60 s with X-Ratelimit-Reset: the trade waits it out and finishes, booked once', async () => {
    const limitedBefore = rig.fake.rateLimitedResponses;
    const postsBefore = rig.fake.postsReceived;
    rig.fake.marketFills({ when: 'after-accept', delayMs: 100 });
    rig.fake.rateLimitFor(60_000);
    const id = await start('429-for-60s');
    const [r] = await results([id], 170_000);
    rig.fake.marketFills(undefined);
    expect(r).toMatchObject({ phase: 'FILLED', filledQty: 2 });
    expect(rig.fake.rateLimitedResponses - limitedBefore).toBeGreaterThan(0);
    // 429s are answered before the order handler: only the POST after the storm placed the order.
    expect(rig.fake.ordersCreated).toBe(rig.trades.length);
    expect(rig.fake.postsReceived - postsBefore).toBeGreaterThanOrEqual(1);
    // Each submit attempt ended by BrokerRateLimited (the storm's reset falls past the attempt's deadline), its reset
    // the retry's delay: none was timed out as if its worker had died.
    expect(await retryTimeoutTypes(rig, id, 'submitOrder')).toEqual([]);
    const report = await expectAllReconciled('429 for 60 s');
    printAudit('adversarial broker: 429 for 60 s', report);
  }, 240_000);

  it('a 429 whose reset is 15 s away, inside the attempt: the submit waits on heartbeats, never timed out as dead', async () => {
    const limitedBefore = rig.fake.rateLimitedResponses;
    rig.fake.marketFills({ when: 'after-accept', delayMs: 100 });
    rig.fake.rateLimitNext(1, 15);
    const id = await start('429-reset-in-15s');
    const [r] = await results([id], 120_000);
    rig.fake.marketFills(undefined);
    expect(r).toMatchObject({ phase: 'FILLED', filledQty: 2 });
    expect(rig.fake.rateLimitedResponses - limitedBefore).toBe(1);
    // The wait (15 s) is longer than the submit's heartbeat timeout (10 s): only its heartbeats kept the one attempt
    // alive. A submit without them would be timed out and retried beside itself while still waiting.
    expect(await retryTimeoutTypes(rig, id, 'submitOrder')).toEqual([]);
    expect((await activityAttempts(rig, id)).submitOrder).toEqual([1]);
    await expectAllReconciled('429 with a reset 15 s away');
  }, 180_000);
});
