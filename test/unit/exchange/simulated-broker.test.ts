import { describe, expect, it } from 'vitest';
import { BrokerRejectedError, BrokerUnavailableError } from '../../../src/adapters/brokers/broker';
import { SimulatedBroker } from '../../../src/venue/simulated';
import { parseEnv } from '../../../src/config';
import type { OrderRequest, OrderUpdate } from '../../../src/contracts/order';
import { nvda2008, on } from './support';

const bars = nvda2008();
const req = (patch: Partial<OrderRequest> = {}): OrderRequest => ({
  clientOrderId: 'wf-1',
  symbol: 'NVDA',
  side: 'buy',
  qty: 100,
  type: 'market',
  timeInForce: 'day',
  ...patch,
});

async function rejectionOf(p: Promise<unknown>): Promise<BrokerRejectedError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BrokerRejectedError) return err;
    throw err;
  }
  throw new Error('expected a BrokerRejectedError');
}

describe('SimulatedBroker', () => {
  it('submits, streams the fill, and reports account and positions', async () => {
    const broker = new SimulatedBroker();
    const updates: OrderUpdate[] = [];
    broker.onOrderUpdate((u) => updates.push(u));
    broker.feedBar(on(bars, '2008-06-20'));
    const o = await broker.submitOrder(req());
    expect(o).toMatchObject({ status: 'new', createdAt: '2008-06-20T00:00:00.000Z', filledQty: 0 }); // clock = last bar
    broker.feedBar(on(bars, '2008-06-23'));
    expect(updates.map((u) => u.event)).toEqual(['new', 'fill']);
    expect(updates[1]!.fill).toMatchObject({
      executionId: `${o.brokerOrderId}-1`,
      qty: 100,
      price: 19.92, // 19.91 open + 5 bps = 19.919955, printed on the cent against the buyer
    });
    expect(await broker.getOrderByClientOrderId('wf-1')).toMatchObject({ status: 'filled', filledQty: 100 });
    expect(await broker.getPositions()).toEqual([
      { symbol: 'NVDA', qty: 100, avgEntryPrice: expect.closeTo(19.92, 10), marketValue: expect.closeTo(1935, 9) },
    ]);
    const a = await broker.getAccount();
    expect(a).toEqual({
      cash: expect.closeTo(100_000 - 1992 - 0.5, 9),
      equity: expect.closeTo(98_007.5 + 1935, 9),
      buyingPower: expect.closeTo(98_007.5, 9),
      tradingBlocked: false,
    });
    expect(await broker.listOpenOrders()).toEqual([]);
  });

  it('a synchronous rejection throws BrokerRejectedError and leaves a rejected order on record', async () => {
    const broker = new SimulatedBroker();
    const updates: OrderUpdate[] = [];
    broker.onOrderUpdate((u) => updates.push(u));
    broker.feedBar(on(bars, '2008-06-20'));
    const err = await rejectionOf(broker.submitOrder(req({ qty: 5000 })));
    expect(err).toMatchObject({
      code: 'insufficient_buying_power',
      httpStatus: 403,
      message: 'insufficient buying power: order needs $101789.00, buying power is $100000.00',
    });
    expect(await broker.getOrderByClientOrderId('wf-1')).toMatchObject({ status: 'rejected', reason: err.message });
    expect(updates.map((u) => u.event)).toEqual(['rejected']);
    // Same id again (e.g. an activity retry): same answer, still one order, no second event.
    expect((await rejectionOf(broker.submitOrder(req({ qty: 5000 })))).code).toBe('insufficient_buying_power');
    expect(broker.exchange.listOrders()).toHaveLength(1);
    expect(updates).toHaveLength(1);
  });

  it('maps every venue refusal to a broker error code', async () => {
    const broker = new SimulatedBroker();
    broker.feedBar(on(bars, '2008-06-20'));
    broker.halt('NVDA');
    expect(await rejectionOf(broker.submitOrder(req({ clientOrderId: 'h' })))).toMatchObject({
      code: 'symbol_halted',
      httpStatus: 422,
    });
    broker.resume('NVDA');
    expect(await rejectionOf(broker.submitOrder(req({ clientOrderId: 'u', symbol: 'ZZZZ' })))).toMatchObject({
      code: 'unknown_symbol',
      httpStatus: 422,
    });
    expect(await rejectionOf(broker.submitOrder(req({ clientOrderId: 'i', qty: 0 })))).toMatchObject({
      code: 'invalid_order',
      httpStatus: 422,
    });
    expect(await rejectionOf(broker.submitOrder(req({ clientOrderId: 's', side: 'sell' })))).toMatchObject({
      code: 'insufficient_qty',
      httpStatus: 403,
    });
  });

  it('is idempotent by client order id, also with isRetry', async () => {
    const broker = new SimulatedBroker();
    broker.feedBar(on(bars, '2008-06-20'));
    const a = await broker.submitOrder(req());
    const b = await broker.submitOrder(req({ qty: 7 }), { isRetry: true });
    expect(b.brokerOrderId).toBe(a.brokerOrderId);
    expect(b.qty).toBe(100);
    expect(broker.exchange.listOrders()).toHaveLength(1);
  });

  it('cancelOrder: cancels a working order, is idempotent, null for unknown ids', async () => {
    const broker = new SimulatedBroker();
    broker.feedBar(on(bars, '2008-06-20'));
    await broker.submitOrder(req({ type: 'limit', limitPrice: 10, timeInForce: 'gtc' }));
    expect((await broker.listOpenOrders()).map((o) => o.clientOrderId)).toEqual(['wf-1']);
    const c = await broker.cancelOrder('wf-1');
    expect(c).toMatchObject({ status: 'canceled' });
    expect(await broker.cancelOrder('wf-1')).toEqual(c);
    expect(await broker.cancelOrder('nope')).toBeNull();
    expect(await broker.listOpenOrders()).toEqual([]);
  });

  it('latencyMs: bars that arrive while the order is in flight are already known, so it cannot fill on them', async () => {
    let release!: () => void;
    const sleeps: number[] = [];
    const broker = new SimulatedBroker({
      latencyMs: 250,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise<void>((r) => (release = r));
      },
    });
    broker.feedBar(on(bars, '2008-06-20'));
    const first = broker.submitOrder(req());
    const dup = broker.submitOrder(req()); // same id while in flight: shares the one attempt
    expect(await broker.getOrderByClientOrderId('wf-1')).toBeNull(); // not at the venue yet
    expect(broker.feedBar(on(bars, '2008-06-23'))).toEqual([]); // arrives meanwhile
    release();
    const [a, b] = await Promise.all([first, dup]);
    expect(sleeps).toEqual([250]);
    expect(b).toEqual(a);
    expect(a.createdAt).toBe('2008-06-23T00:00:00.000Z');
    const [u] = broker.feedBar(on(bars, '2008-06-24'));
    expect(u!.fill!.price).toBe(19.25); // the 06-24 open (19.24962 + slippage, on the cent), not 06-23's
  });

  it('close: no more submits or cancels, listeners dropped, reads still work', async () => {
    const broker = new SimulatedBroker();
    const updates: OrderUpdate[] = [];
    broker.onOrderUpdate((u) => updates.push(u));
    broker.feedBar(on(bars, '2008-06-20'));
    await broker.submitOrder(req());
    await broker.close();
    await expect(broker.submitOrder(req({ clientOrderId: 'late' }))).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(broker.cancelOrder('wf-1')).rejects.toMatchObject({ ambiguous: false });
    broker.feedBar(on(bars, '2008-06-23'));
    expect(updates.map((u) => u.event)).toEqual(['new']);
    expect(await broker.getOrderByClientOrderId('wf-1')).toMatchObject({ status: 'filled' });
  });

  it('fromConfig builds the venue from SIM_* settings', async () => {
    const broker = SimulatedBroker.fromConfig(
      parseEnv({
        SIM_SLIPPAGE_BPS: '10',
        SIM_FEE_PER_SHARE: '0.01',
        SIM_FEE_BPS: '2',
        SIM_MAX_VOLUME_PCT: '0.05',
        SIM_SEED: '7',
        STARTING_CASH: '50000',
      }).sim.venue,
      { orderIdPrefix: 'T' },
    );
    expect(broker.exchange.options).toMatchObject({
      slippageBps: 10,
      feePerShare: 0.01,
      feeBps: 2,
      maxVolumePct: 0.05,
      seed: 7,
      startingCash: 50_000,
      allowShort: false,
      orderIdPrefix: 'T',
    });
    broker.feedBar(on(bars, '2008-06-20'));
    const o = await broker.submitOrder(req());
    expect(o.brokerOrderId).toBe('T-000001');
    const [u] = broker.feedBar(on(bars, '2008-06-23'));
    expect(u!.fill!.price).toBe(19.93); // 19.91 × 1.001 = 19.92991, on the cent against the buyer
    expect(u!.fill!.fee).toBe(1.4); // 100 × $0.01 + 2 bps of $1,993 = $1.3986, charged in whole cents
    expect(() => SimulatedBroker.fromConfig(parseEnv({ SIM_MAX_VOLUME_PCT: '2' }).sim.venue)).toThrow();
    expect(SimulatedBroker.fromConfig(parseEnv({}).sim.venue).exchange.options.orderIdPrefix).toMatch(
      /^SIM-[0-9A-Z]+$/,
    );
  });
});
