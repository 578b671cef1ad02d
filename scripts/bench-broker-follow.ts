/**
 * npm run bench:broker-follow [-- --orders 50 --seconds 10]
 *
 * Requests that following N open orders costs the broker request budget, counted at the fake Alpaca
 * (test/fakes/fake-alpaca.ts) with the production adapter defaults (200/min budget, 2 s poll while the
 * stream is down, 30 s safety poll while it is up). Counts, not timings: they do not depend on the machine.
 * For comparison, the reads of one re-read per order every 5 s (what followOrder did before it stopped
 * polling, on top of the adapter's own per-order poller) are printed beside them.
 */
import { parseArgs } from 'node:util';
import { AlpacaBroker } from '../src/adapters/brokers/alpaca';
import { createLogger } from '../src/logging';
import { startFakeAlpaca } from '../test/fakes/fake-alpaca';
import { sleep } from '../src/lib/sleep';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '50' }, seconds: { type: 'string', default: '10' } },
});
const N = Number(values.orders);
const SECONDS = Number(values.seconds);
const POLL_MS = 2_000;

async function run(streamUp: boolean): Promise<void> {
  const fake = await startFakeAlpaca({ apiKey: 'k', apiSecret: 's' });
  const broker = new AlpacaBroker({
    baseUrl: fake.url,
    keyId: 'k',
    secretKey: 's',
    logger: createLogger('bench', { level: 'silent' }),
    rateLimitPerMinute: 200,
    pollIntervalMs: POLL_MS,
    reconnectInitialMs: 50,
  });
  broker.onOrderUpdate(() => undefined);
  await broker.waitForStream(5_000);
  for (let i = 0; i < N; i++) {
    await broker.submitOrder({
      clientOrderId: `bench-${streamUp ? 'up' : 'down'}-${i}`,
      symbol: 'NVDA',
      side: 'buy',
      qty: 1,
      type: 'limit',
      timeInForce: 'day',
      limitPrice: 100,
    });
  }
  if (!streamUp) {
    fake.refuseStream(true);
    fake.dropStream();
  }
  const before = fake.requests.length;
  process.stderr.write(`following ${N} orders for ${SECONDS} s, stream ${streamUp ? 'up' : 'down'}...\n`);
  await sleep(SECONDS * 1_000);
  const reqs = fake.requests.slice(before);
  const perOrder = Math.floor(SECONDS / 5) * N;
  console.log(
    `stream ${streamUp ? 'up  ' : 'down'}: ${reqs.length} requests in ${SECONDS} s for ${N} orders ` +
      `(${reqs.filter((r) => r.path === '/v2/orders').length} listings, ` +
      `${reqs.filter((r) => r.path.includes('by_client_order_id')).length} per-order lookups); ` +
      `a re-read per order every 5 s would be ${perOrder}`,
  );
  await broker.close();
  await fake.close();
}

void (async () => {
  await run(true);
  await run(false);
})();
