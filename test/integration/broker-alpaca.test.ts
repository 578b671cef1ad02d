import { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { createLogger } from '../../src/logging';
import { startFakeAlpaca } from '../fakes/fake-alpaca';
import { brokerContractSuite } from './broker-contract';

/** The Broker contract against the production Alpaca adapter talking to the fake Alpaca over HTTP + WebSocket. */
brokerContractSuite('alpaca (AlpacaBroker + fake Alpaca)', async () => {
  const fake = await startFakeAlpaca({ apiKey: 'test-key', apiSecret: 'test-secret' });
  const broker = new AlpacaBroker({
    baseUrl: fake.url,
    keyId: 'test-key',
    secretKey: 'test-secret',
    logger: createLogger('test', { level: 'silent' }),
    httpTimeoutMs: 2_000,
    pollIntervalMs: 100,
    cancelSettleMs: 500,
    reconnectInitialMs: 50,
  });
  // Fills are driven only once the stream is up, so updates carry the venue's execution ids.
  if (!(await broker.waitForStream(5_000))) throw new Error('trade_updates stream did not come up');
  return {
    broker,
    symbol: 'NVDA',
    price: 100,
    driveFill: async (cid, qty, price) => {
      await fake.fill(cid, qty, price);
    },
    close: async () => {
      await broker.close();
      await fake.close();
    },
  };
});
