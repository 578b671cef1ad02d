/**
 * Batch textbook formulas of the indicators, written from the definitions (O(n·period), window slices, two-pass σ):
 * the independent reference that the streaming classes and the strategies' rules are checked against.
 */
// ── Batch textbook formulas (deliberately naive: O(n·period), straight from the definitions) ──────────────
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const popSd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
};
export function batchSma(xs: number[], n: number): Array<number | undefined> {
  return xs.map((_, i) => (i < n - 1 ? undefined : mean(xs.slice(i - n + 1, i + 1))));
}
export function batchEma(xs: number[], n: number): Array<number | undefined> {
  const out: Array<number | undefined> = [];
  const a = 2 / (n + 1);
  let e: number | undefined;
  xs.forEach((x, i) => {
    if (i === n - 1) e = mean(xs.slice(0, n));
    else if (i >= n) e = a * x + (1 - a) * e!;
    out.push(e);
  });
  return out;
}
export function batchRsi(xs: number[], n: number): Array<number | undefined> {
  const out: Array<number | undefined> = [undefined];
  let g = 0;
  let l = 0;
  for (let i = 1; i < xs.length; i++) {
    const ch = xs[i]! - xs[i - 1]!;
    if (i < n) {
      out.push(undefined);
      continue;
    }
    if (i === n) {
      const chs = xs.slice(1, n + 1).map((x, k) => x - xs[k]!);
      g = mean(chs.map((c) => Math.max(c, 0)));
      l = mean(chs.map((c) => Math.max(-c, 0)));
    } else {
      g = (g * (n - 1) + Math.max(ch, 0)) / n;
      l = (l * (n - 1) + Math.max(-ch, 0)) / n;
    }
    out.push(l === 0 ? (g === 0 ? 50 : 100) : 100 - 100 / (1 + g / l));
  }
  return out;
}
export function batchMacd(xs: number[], f: number, s: number, g: number) {
  const ef = batchEma(xs, f);
  const es = batchEma(xs, s);
  const line = xs.map((_, i) => (es[i] === undefined ? undefined : ef[i]! - es[i]!));
  const defined = line.filter((v): v is number => v !== undefined);
  const sig = batchEma(defined, g);
  const offset = line.length - defined.length;
  const signal = line.map((_, i) => (i < offset ? undefined : sig[i - offset]));
  const hist = line.map((m, i) => (signal[i] === undefined ? undefined : m! - signal[i]!));
  return { line, signal, hist };
}
export function batchBollinger(xs: number[], n: number, k: number) {
  return xs.map((_, i) => {
    if (i < n - 1) return undefined;
    const w = xs.slice(i - n + 1, i + 1);
    const m = mean(w);
    const sd = popSd(w);
    return { upper: m + k * sd, middle: m, lower: m - k * sd };
  });
}
export function batchZ(xs: number[], n: number) {
  return xs.map((x, i) => {
    if (i < n - 1) return undefined;
    const w = xs.slice(i - n + 1, i + 1);
    const sd = popSd(w);
    return sd === 0 ? 0 : (x - mean(w)) / sd;
  });
}
export const batchRoc = (xs: number[], n: number) =>
  xs.map((x, i) => (i < n ? undefined : (x - xs[i - n]!) / xs[i - n]!));
