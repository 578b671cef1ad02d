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
  /**
   * Children by the key's two parts (a source, then a symbol), nested rather than joined: a joined key is a new
   * string per count, hashed afresh on every lookup, where the parts are the bar's own strings, whose hashes V8
   * caches (a string built and hashed per bar was the larger part of the tally's cost, bench:ingest).
   */
  private readonly children = new Map<string, Map<string, { counter: Counter.Internal; pending: number }>>();
  private readonly all: Array<{ counter: Counter.Internal; pending: number }> = [];
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushNow = () => this.flush();

  /**
   * @param labelsOf the label values of a key, called the first time the key is seen (a function defined once by
   *   the caller, so `add` allocates nothing per count).
   */
  constructor(
    private readonly counter: Counter<L>,
    private readonly labelsOf: (key: string, subkey: string) => LabelValues<L>,
    private readonly maxPending = 1024,
    private readonly maxDelayMs = 200,
  ) {}

  /** One count for the series named by `key` (and `subkey`, when the counter has a second label). */
  add(key: string, subkey = ''): void {
    let byKey = this.children.get(key);
    if (!byKey) this.children.set(key, (byKey = new Map()));
    let c = byKey.get(subkey);
    if (!c) {
      byKey.set(subkey, (c = { counter: this.counter.labels(this.labelsOf(key, subkey)), pending: 0 }));
      this.all.push(c);
    }
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
    for (const c of this.all) {
      if (c.pending > 0) c.counter.inc(c.pending);
      c.pending = 0;
    }
    this.pending = 0;
  }
}
