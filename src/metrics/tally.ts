import type { Counter, LabelValues } from 'prom-client';

/**
 * Counts that come once per market-data message (bars out of Dataflow, bars into the quant), added up in memory
 * and handed to a labelled prom-client counter in bulk: a labelled `inc` per bar costs as much as a strategy's
 * update (bench:quant, bench:ingest). The counts reach the counter every `maxPending` of them, at most
 * `maxDelayMs` after the first one still pending, and on `flush()`. The time bound is what a scrape needs: a
 * paced replay (npm start's, 600 bars) never adds up to `maxPending`, and its progress lines and summary read
 * these counters (the summary's last scrape precedes SIGTERM, so a flush at stop comes too late for it).
 */
export class CounterTally<L extends string> {
  private readonly children = new Map<string, { counter: Counter.Internal; pending: number }>();
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushNow = () => this.flush();

  /**
   * @param labelsOf the label values of a key, called the first time the key is seen (a function defined once by
   *   the caller, so `add` allocates nothing per count).
   */
  constructor(
    private readonly counter: Counter<L>,
    private readonly labelsOf: (key: string) => LabelValues<L>,
    private readonly maxPending = 1024,
    private readonly maxDelayMs = 200,
  ) {}

  /** One count for the series named by `key`. */
  add(key: string): void {
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = { counter: this.counter.labels(this.labelsOf(key)), pending: 0 }));
    c.pending++;
    if (++this.pending >= this.maxPending) this.flush();
    else if (this.timer === undefined) this.timer = setTimeout(this.flushNow, this.maxDelayMs).unref();
  }

  /** Hand every pending count to the counter now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending === 0) return;
    for (const c of this.children.values()) {
      if (c.pending > 0) c.counter.inc(c.pending);
      c.pending = 0;
    }
    this.pending = 0;
  }
}
