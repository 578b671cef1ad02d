import { resolve } from 'node:path';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../../../src/contracts/bar';
import type { OrderRequest, OrderUpdate } from '../../../src/contracts/order';
import { SimulatedExchange, type SimulatedExchangeOptions } from '../../../src/domain/exchange';

/** Real bars copied from /work/shared/data (see test/fixtures/bars/README.md). */
export const fixture = (name: string, symbol: string): OhlcvBar[] =>
  readBarsCsvSync(resolve(__dirname, '../../fixtures/bars', name), { symbol });
export const nvda2008 = () => fixture('nvda-2008-06-20_2008-07-15.csv', 'NVDA');
export const nvda2013 = () => fixture('nvda-2013-04-15_2013-06-10.csv', 'NVDA');
export const orcl2011 = () => fixture('orcl-2011-12-12_2011-12-30.csv', 'ORCL');
export const futures2006 = () => fixture('index-futures-2006-01-02_03-1min.csv', 'ES');

/** The bar of one date (daily fixtures). Throws if absent so a typo cannot silently pass. */
export function on(bars: OhlcvBar[], date: string): OhlcvBar {
  const b = bars.find((x) => x.timestamp.startsWith(date));
  if (!b) throw new Error(`no bar on ${date}`);
  return b;
}

/**
 * A test venue wired to a bar list: `through(date)` feeds every bar up to and including that date, and
 * `now` is the timestamp of the last bar fed (an order submitted then cannot see any later bar).
 */
export class Harness {
  readonly ex: SimulatedExchange;
  readonly events: OrderUpdate[] = [];
  private i = 0;
  now = '1970-01-01T00:00:00.000Z';

  constructor(
    readonly bars: OhlcvBar[],
    opts: SimulatedExchangeOptions = {},
  ) {
    // These tests pin the bar-level fill arithmetic to the model's exact prices; tick rounding (the
    // venue's default) is pinned by simulated-broker.test.ts and determinism.test.ts.
    this.ex = new SimulatedExchange({ tickPrices: false, ...opts });
    this.ex.onUpdate((u) => this.events.push(u));
  }

  /** Feed bars until (and including) the first whose timestamp starts with `prefix`. Returns the updates. */
  through(prefix: string): OrderUpdate[] {
    const out: OrderUpdate[] = [];
    for (;;) {
      const b = this.bars[this.i];
      if (!b) throw new Error(`ran out of bars before ${prefix}`);
      this.i++;
      out.push(...this.ex.onBar(b));
      this.now = b.timestamp;
      if (b.timestamp.startsWith(prefix)) return out;
    }
  }

  /** Feed the next n bars. */
  next(n = 1): OrderUpdate[] {
    const out: OrderUpdate[] = [];
    for (let k = 0; k < n; k++) {
      const b = this.bars[this.i++];
      if (!b) throw new Error('ran out of bars');
      out.push(...this.ex.onBar(b));
      this.now = b.timestamp;
    }
    return out;
  }

  rest(): OrderUpdate[] {
    return this.next(this.bars.length - this.i);
  }

  submit(req: Partial<OrderRequest> & Pick<OrderRequest, 'clientOrderId'>) {
    return this.ex.submit(
      { symbol: this.bars[0]!.symbol, side: 'buy', qty: 100, type: 'market', timeInForce: 'gtc', ...req },
      this.now,
    );
  }

  eventsFor(clientOrderId: string): OrderUpdate[] {
    return this.events.filter((e) => e.order.clientOrderId === clientOrderId);
  }
}
