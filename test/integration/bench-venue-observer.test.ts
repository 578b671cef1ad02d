import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { VenueOrderObserver } from '../../src/cli/bench/venue-observer';
import { createLogger } from '../../src/logging';
import { startAlpacaCompatServer, type AlpacaCompatServer } from '../../src/venue/alpaca-compat';
import { SimulatedBroker } from '../../src/venue/simulated';

/**
 * `bench:trades` times "order submitted" by the venue's own trade_updates stream (venue-observer.ts). Here the
 * observer runs against the venue the bench starts (SimulatedBroker behind the Alpaca-compatible server, as
 * exchange-sim runs it), found the way the bench finds it (BROKER=simulated, SIM_EXCHANGE_PORT), while a second
 * client places orders the way the trade worker does.
 */

const SYMBOL = 'NVDA';
const silent = createLogger('test', { level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Wait for a condition (not a timing assertion: only a bound on how long a broken run hangs). */
async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let day = 0;
const bar = (price: number) => ({
  symbol: SYMBOL,
  timestamp: new Date(Date.UTC(2015, 0, 2) + ++day * 86_400_000).toISOString(),
  open: price,
  high: price,
  low: price,
  close: price,
  volume: 1_000_000,
});

async function venue(): Promise<{ sim: SimulatedBroker; server: AlpacaCompatServer; trader: AlpacaBroker }> {
  const sim = new SimulatedBroker({ symbols: [SYMBOL], slippageBps: 0, seed: 3, orderIdPrefix: `OBS${process.pid}` });
  sim.feedBar(bar(20));
  const server = await startAlpacaCompatServer({ broker: sim, port: 0, logger: silent });
  const trader = new AlpacaBroker({
    name: 'simulated',
    baseUrl: server.url,
    keyId: 'k',
    secretKey: 's',
    logger: silent,
    httpTimeoutMs: 2_000,
  });
  cleanups.push(async () => {
    await trader.close();
    await server.close();
    await sim.close();
  });
  return { sim, server, trader };
}

describe('bench:trades venue observer (trade_updates stream)', () => {
  it("records the bench clock at an order's first update, keeps it through the fill, and counts stream drops", async () => {
    const { sim, server, trader } = await venue();
    const observer = await VenueOrderObserver.open({ BROKER: 'simulated', SIM_EXCHANGE_PORT: String(server.port) });
    cleanups.push(() => observer.close());
    expect(observer.health()).toEqual({ ready: true, drops: 0, ordersSeen: 0, updates: 0 });

    const cid = 'trade-bench-obs-1';
    const before = Date.now();
    await trader.submitOrder({
      clientOrderId: cid,
      symbol: SYMBOL,
      side: 'buy',
      qty: 1,
      type: 'market',
      timeInForce: 'day',
    });
    await until('the order on the stream', () => observer.sighting(cid) !== undefined);
    const first = observer.sighting(cid)!;
    expect(first.event).toBe('new');
    expect(first.at).toBeGreaterThanOrEqual(before);

    // The fill at the next bar is a later update: the first sighting stays.
    sim.feedBar(bar(20.5));
    await until('the fill on the stream', () => observer.health().updates >= 2);
    expect((await trader.getOrderByClientOrderId(cid))?.status).toBe('filled');
    expect(observer.sighting(cid)).toEqual(first);
    expect(observer.sighting('trade-bench-never-placed')).toBeUndefined();

    // A dropped connection is noticed (updates may have been lost while it was down).
    server.disconnectStreams();
    await until('the drop to be noticed', () => observer.health().drops >= 1);
    expect(observer.health()).toMatchObject({ ready: true, ordersSeen: 1 });
  });

  it('a venue whose stream never listens: not ready, with the reason, and no throw', async () => {
    // A port nothing listens on.
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const observer = await VenueOrderObserver.open({ BROKER: 'simulated', SIM_EXCHANGE_PORT: String(port) }, 300);
    cleanups.push(() => observer.close());
    const h = observer.health();
    expect(h.ready).toBe(false);
    expect(h.error).toMatch(
      new RegExp(
        `^the venue's trade_updates stream \\(simulated venue, 127\\.0\\.0\\.1:${port}\\) was not listening after 300 ms`,
      ),
    );
  });
});
