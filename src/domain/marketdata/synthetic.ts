import type { OhlcvBar } from '../../contracts/bar';
import { SeededRandom } from '../random';

/**
 * Synthetic bars from a seeded geometric Brownian motion, for load tests and demos (never for decisions: the
 * prices are noise around a drift). The same seed and parameters give the same bars on every run.
 *
 *   S(t+dt) = S(t) · exp((μ − σ²/2)·dt + σ·√dt·Z),  Z ~ N(0,1)
 *
 * Each bar's close follows the path; its open is the previous close; high/low add a half-normal excursion
 * beyond the body (so high >= max(open, close) and low <= min(open, close) by construction); volume is
 * log-normal around `meanVolume`.
 */
export interface GbmOptions {
  symbol: string;
  seed: number;
  startPrice: number;
  /** Annualised drift μ (0.05 = 5 %/year). */
  drift: number;
  /** Annualised volatility σ (0.3 = 30 %). */
  volatility: number;
  /** First bar start, ms since epoch. */
  startMs: number;
  /** Bar length in ms. */
  stepMs: number;
  count: number;
  meanVolume?: number;
}

const YEAR_MS = 365.25 * 86_400_000;

/** Standard normal by Box-Muller from the seeded generator. */
function normal(rng: SeededRandom): number {
  const u = 1 - rng.next(); // (0, 1]: log(u) is finite
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

export function gbmBars(o: GbmOptions): OhlcvBar[] {
  if (!(o.startPrice > 0) || !(o.volatility >= 0) || !(o.stepMs > 0)) throw new RangeError('invalid GBM parameters');
  const rng = new SeededRandom(o.seed);
  const dt = o.stepMs / YEAR_MS;
  const mu = (o.drift - (o.volatility * o.volatility) / 2) * dt;
  const sd = o.volatility * Math.sqrt(dt);
  const meanVolume = o.meanVolume ?? 1_000_000;
  const out: OhlcvBar[] = [];
  let prev = o.startPrice;
  for (let i = 0; i < o.count; i++) {
    const close = prev * Math.exp(mu + sd * normal(rng));
    const open = prev;
    const wick = () => Math.abs(normal(rng)) * sd * 0.5;
    const high = Math.max(open, close) * (1 + wick());
    const low = Math.min(open, close) * (1 - wick());
    const volume = Math.round(meanVolume * Math.exp(0.5 * normal(rng) - 0.125));
    const b = { open: round4(open), high: round4(high), low: round4(low), close: round4(close) };
    // Rounding must not break the bounds.
    b.high = Math.max(b.high, b.open, b.close);
    b.low = Math.max(0.0001, Math.min(b.low, b.open, b.close));
    out.push({ symbol: o.symbol, timestamp: new Date(o.startMs + i * o.stepMs).toISOString(), ...b, volume });
    prev = close;
  }
  return out;
}

/** Bar length of an interval like `1m`, `5m`, `1h`, `1d`. */
export function intervalMs(interval: string): number {
  const m = /^([1-9]\d{0,3})([smhdw])$/.exec(interval);
  if (!m) throw new Error(`interval "${interval}" is not <n><s|m|h|d|w>`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[m[2] as 's'];
  return Number(m[1]) * unit;
}
