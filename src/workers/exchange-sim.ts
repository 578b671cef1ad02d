/**
 * The local simulated venue: a SimulatedBroker (bar-driven matching engine, docs/fill-model.md) served over
 * Alpaca's v2 wire protocol on SIM_EXCHANGE_BIND:SIM_EXCHANGE_PORT, fed with market bars from RabbitMQ.
 *
 *   tsx src/workers/exchange-sim.ts
 *
 * It runs as its own process on purpose: killing a trade worker must not take the venue's order book with it
 * (the fault-injection tests kill workers mid-order), and with BROKER=simulated the worker talks to it through
 * the same AlpacaBroker adapter it uses for Alpaca, so paper trading exercises the production code path.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { barsOfMessage } from '../contracts/bar';
import { formatZodError } from '../contracts/signal';
import { createLogger } from '../logging';
import {
  ConfirmPublisher,
  MARKET_BARS_EXCHANGE,
  RabbitConnection,
  assertConsumerQueue,
  topologySetup,
  consumeJson,
  withChannel,
} from '../adapters/rabbitmq';
import { SIM_PLACEHOLDER_KEY, SIM_PLACEHOLDER_SECRET } from '../adapters/brokers';
import { SimulatedBroker, startAlpacaCompatServer } from '../venue';
import { barsReceived } from '../metrics';
import { rabbitCheck, startOps } from './ops';

/** The venue's own copy of the bar stream. */
export const EXCHANGE_BARS_QUEUE = 'exchange.bars';

const USAGE = `Usage: tsx src/workers/exchange-sim.ts

Serves the simulated exchange on SIM_EXCHANGE_BIND:SIM_EXCHANGE_PORT (default 127.0.0.1:8787; 0.0.0.0 in a
container) with Alpaca's v2 REST endpoints and trade_updates WebSocket, matching orders against bars consumed
from the RabbitMQ queue
${EXCHANGE_BARS_QUEUE} (bound to ${MARKET_BARS_EXCHANGE} bars.#). Fill model knobs: SIM_SLIPPAGE_BPS,
SIM_FEE_PER_SHARE, SIM_FEE_BPS, SIM_MAX_VOLUME_PCT, SIM_LATENCY_MS, SIM_SEED. Runs until SIGINT/SIGTERM.
`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const cfg = loadConfig();
  const log = createLogger('exchange-sim', { level: cfg.logLevel });
  const broker = SimulatedBroker.fromConfig(cfg.sim.venue);
  const server = await startAlpacaCompatServer({
    broker,
    port: cfg.sim.listen.port,
    host: cfg.sim.listen.host,
    apiKey: SIM_PLACEHOLDER_KEY,
    apiSecret: SIM_PLACEHOLDER_SECRET,
    logger: log,
  });

  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `exchange-sim-${process.pid}`,
    logger: log,
    setup: async (conn) => {
      await topologySetup(cfg.rabbitmq)(conn);
      await withChannel(conn, (ch) =>
        assertConsumerQueue(ch, {
          queue: EXCHANGE_BARS_QUEUE,
          exchange: MARKET_BARS_EXCHANGE,
          bindingKeys: ['bars.#'],
        }),
      );
    },
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  let bars = 0;
  const consumer = consumeJson(rabbit, EXCHANGE_BARS_QUEUE, { prefetch: 100, publisher, logger: log }, async (ctx) => {
    // One bar or a batch of one symbol's bars (contracts/bar.ts): the venue matches against each in order.
    const m = barsOfMessage(ctx.body);
    if (!m.ok) {
      await ctx.deadLetter(`invalid bar: ${formatZodError(m.error)}`);
      return;
    }
    for (const b of m.bars) {
      const updates = broker.feedBar({
        symbol: b.symbol,
        timestamp: b.timestamp,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
      });
      bars++;
      barsReceived.inc({ symbol: b.symbol });
      log.debug({ correlation_id: b.correlation_id, symbol: b.symbol, bar_ts: b.timestamp }, 'bar fed to the book');
      for (const u of updates) {
        if (u.fill)
          log.info(
            { client_order_id: u.order.clientOrderId, qty: u.fill.qty, price: u.fill.price, bar: b.timestamp },
            'fill',
          );
      }
    }
  });
  const ops = await startOps(cfg.ops, 'exchange-sim', log, { ready: { rabbitmq: rabbitCheck(rabbit) } });
  await rabbit.start();
  log.info({ url: server.url }, 'simulated exchange listening');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info({ bars }, 'simulated exchange stopping');
  await consumer.cancel();
  await publisher.close();
  await rabbit.close();
  await server.close();
  await broker.close();
  await ops.close();
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`exchange-sim: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
