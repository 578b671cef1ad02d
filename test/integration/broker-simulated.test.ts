import { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { startAlpacaCompatServer } from '../../src/venue/alpaca-compat';
import { SimulatedBroker } from '../../src/venue/simulated';
import type { OhlcvBar } from '../../src/contracts/bar';
import { createLogger } from '../../src/logging';
import { brokerContractSuite, type BrokerHarness } from './broker-contract';

/**
 * The Broker contract against the simulated exchange, twice:
 *  1. SimulatedBroker in-process;
 *  2. the BROKER=simulated production path: AlpacaBroker → HTTP/WebSocket → Alpaca-compatible server →
 *     SimulatedBroker (what src/adapters/brokers/index.ts builds against the venue process).
 * Fills are driven by feeding one bar that trades exactly at the price with exactly the wanted volume.
 */

const SYMBOL = 'NVDA';
const silent = createLogger('test', { level: 'silent' });

function makeSim(): { sim: SimulatedBroker; driveFill: BrokerHarness['driveFill'] } {
  // maxVolumePct 1: a bar's volume is exactly the shares it can fill; fills at the open for a marketable limit.
  const sim = new SimulatedBroker({
    symbols: [SYMBOL],
    maxVolumePct: 1,
    slippageBps: 0,
    seed: 7,
    orderIdPrefix: `CT${process.pid}`,
  });
  let day = 0;
  const driveFill: BrokerHarness['driveFill'] = async (_cid, qty, price) => {
    const ts = new Date(Date.UTC(2024, 0, 2) + ++day * 86_400_000).toISOString();
    const bar: OhlcvBar = {
      symbol: SYMBOL,
      timestamp: ts,
      open: price,
      high: price,
      low: price,
      close: price,
      volume: qty,
    };
    sim.feedBar(bar);
  };
  return { sim, driveFill };
}

brokerContractSuite('simulated (SimulatedBroker in-process)', async () => {
  const { sim, driveFill } = makeSim();
  return { broker: sim, symbol: SYMBOL, price: 100, driveFill, close: () => sim.close() };
});

brokerContractSuite(
  'simulated venue over the Alpaca wire (AlpacaBroker → compat server → SimulatedBroker)',
  async () => {
    const { sim, driveFill } = makeSim();
    const server = await startAlpacaCompatServer({ broker: sim, port: 0, logger: silent });
    const broker = new AlpacaBroker({
      name: 'simulated',
      baseUrl: server.url,
      keyId: 'sim-key',
      secretKey: 'sim-secret',
      logger: silent,
      httpTimeoutMs: 2_000,
      pollIntervalMs: 100,
      cancelSettleMs: 500,
      reconnectInitialMs: 50,
    });
    if (!(await broker.waitForStream(5_000))) throw new Error('trade_updates stream did not come up');
    return {
      broker,
      symbol: SYMBOL,
      price: 100,
      driveFill,
      close: async () => {
        await broker.close();
        await server.close();
        await sim.close();
      },
    };
  },
);
