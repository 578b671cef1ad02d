import type { Logger } from '../../src/logging';
import { PolygonRestClient } from '../../src/adapters/marketdata/polygon/rest';
import { consumeJson, type ConfirmPublisher, type RabbitConnection } from '../../src/adapters/rabbitmq';
import { barsOfMessage, type Bar } from '../../src/contracts/bar';
import { MarketFeed } from '../../src/services/market-feed';
import { restPollingSource, websocketSource } from '../../src/services/market-sources';
import { replayBars } from '../../src/services/bar-publishing';
import type { FakePolygon } from '../fakes/fake-polygon';

/**
 * The two halves of the live-feed integration tests (dataflow-polygon, dataflow-rabbitmq-restart): a consumer
 * that keeps every distinct bar in arrival order and counts redeliveries, and the Polygon WebSocket → REST feed
 * against the fake, publishing with confirms.
 */
export function collectBars(
  rabbit: RabbitConnection,
  queue: string,
  opts: { prefetch: number; publisher: ConfirmPublisher; logger: Logger },
): { got: Bar[]; duplicates: () => number; consumer: ReturnType<typeof consumeJson> } {
  const got: Bar[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  const consumer = consumeJson(rabbit, queue, opts, (ctx) => {
    const m = barsOfMessage(ctx.body);
    if (!m.ok) throw new Error('invalid bar');
    for (const b of m.bars) {
      if (seen.has(b.message_id)) duplicates++;
      else {
        seen.add(b.message_id);
        got.push(b);
      }
    }
  });
  return { got, duplicates: () => duplicates, consumer };
}

/** A one-symbol (ES, 1m) live feed: the fake's WebSocket first, its REST aggregates as the fallback. */
export function liveFeed(opts: {
  fake: FakePolygon;
  apiKey: string;
  publisher: ConfirmPublisher;
  logger: Logger;
  pollMs: number;
  publishAttempts: number;
}): MarketFeed {
  const { fake, apiKey, publisher, logger } = opts;
  const rest = new PolygonRestClient({
    baseUrl: fake.url,
    apiKey,
    requestsPerWindow: 0,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    maxAttempts: 2,
    logger,
  });
  const first = Date.parse(fake.bars('ES')[0]!.timestamp);
  return new MarketFeed({
    symbols: ['ES'],
    interval: '1m',
    sources: [
      websocketSource({ url: fake.wsUrl, apiKey, symbols: ['ES'], interval: '1m', logger }),
      restPollingSource({ client: rest, pollMs: opts.pollMs, startFromMs: first }),
    ],
    publish: async (bars) => {
      await replayBars({ publisher, bars, logger, maxAttempts: opts.publishAttempts });
    },
    backfill: (symbol, since, signal) =>
      rest.aggregates({ ticker: symbol, interval: '1m', from: since + 1, to: Date.now(), signal }),
    startFromMs: first,
    failureThreshold: 2,
    probeAfterMs: 300,
    probeEveryMs: 100,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    logger,
  });
}
