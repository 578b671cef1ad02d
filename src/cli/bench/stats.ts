/** Distributions, rates and text tables for the report (pure). */

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Dist {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function dist(values: readonly number[]): Dist {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

/**
 * Rates from event times (ms) relative to `t0`: overall = n / (last − t0); sustained = the slope between the
 * 10th and 90th percentile of completions (ramp-up and the drain tail excluded).
 */
export function rates(times: readonly number[], t0: number): { overall: number; sustained: number; spanS: number } {
  const s = [...times].sort((a, b) => a - b);
  if (s.length === 0) return { overall: 0, sustained: 0, spanS: 0 };
  const last = s[s.length - 1]!;
  const spanS = (last - t0) / 1000;
  const i10 = Math.floor(s.length * 0.1);
  const i90 = Math.max(i10 + 1, Math.ceil(s.length * 0.9) - 1);
  const dt = ((s[Math.min(i90, s.length - 1)] ?? last) - s[i10]!) / 1000;
  return {
    overall: spanS > 0 ? s.length / spanS : 0,
    sustained: dt > 0 ? (Math.min(i90, s.length - 1) - i10) / dt : 0,
    spanS,
  };
}

export const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
export const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
export const mean = (v: readonly number[]) => dist(v).mean;

export function table(head: string[], rows: string[][], alignLeft = 1): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < alignLeft ? c.padEnd(w[i]!) : c.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
