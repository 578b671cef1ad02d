import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import { HeldStance, type SignalIntent, type Stance, type Strategy } from './types';

/**
 * `ensemble`: the original's AGGREGATED mode, its weighted vote kept:
 *   weights legacy MA 1.0, MACD 1.0, Bollinger 1.0, ML 0.6, RSI 1.0 (unknown members 1.0);
 *   when RSI has a view, every other member's weight is ×1.2 if it agrees with RSI and ×0.8 if not;
 *   buy = Σ confidence·weight over members favouring BUY, sell likewise; the larger side wins with confidence
 *   winner / (buy + sell); a tie or no view at all is no view.
 *
 * What changed: the original voted on the signals emitted on the same tick (so, with signals emitted only on change,
 * members almost never voted together) and published a vote on every tick, without a price. Here members vote with
 * their current stance (MA: which side fast is on; MACD: histogram sign; Bollinger, ML, momentum: last signal /
 * prediction; RSI: the zone it is in now), and the ensemble emits only when the winning side changes, as a
 * complete signal (the engine adds price, symbol and strategy). Confidence is in [0.5, 1].
 */

export const ENSEMBLE = 'ensemble';

/** The original's weights by member. */
export const ENSEMBLE_WEIGHTS: Readonly<Record<string, number>> = {
  'sma-cross': 1.0,
  'ema-cross': 1.0,
  macd: 1.0,
  bollinger: 1.0,
  ml: 0.6,
  rsi: 1.0,
};
export const RSI_AGREE = 1.2;
export const RSI_DISAGREE = 0.8;

export interface Vote {
  side: Side | null;
  confidence: number;
  buy: number;
  sell: number;
}

/** The original's aggregate_signals on stances (members without a stance abstain). */
export function weightedVote(stances: ReadonlyArray<{ name: string; stance: Stance | null }>): Vote {
  const rsi = stances.find((s) => s.name === 'rsi')?.stance ?? null;
  let buy = 0;
  let sell = 0;
  for (const { name, stance } of stances) {
    if (!stance) continue;
    let w = ENSEMBLE_WEIGHTS[name] ?? 1.0;
    if (rsi && name !== 'rsi') w *= stance.side === rsi.side ? RSI_AGREE : RSI_DISAGREE;
    if (stance.side === 'buy') buy += stance.confidence * w;
    else sell += stance.confidence * w;
  }
  if (buy === sell) return { side: null, confidence: 0, buy, sell };
  return buy > sell
    ? { side: 'buy', confidence: buy / (buy + sell), buy, sell }
    : { side: 'sell', confidence: sell / (buy + sell), buy, sell };
}

export class EnsembleStrategy implements Strategy {
  readonly name = ENSEMBLE;
  private last: Side | undefined;
  private readonly held = new HeldStance();
  stance: Stance | null = null;
  /** Each member's weight and the RSI member's index (-1: none), looked up once rather than on every bar. */
  private readonly weights: Float64Array;
  private readonly rsiIndex: number;

  constructor(readonly members: readonly Strategy[]) {
    if (members.length === 0) throw new RangeError('ensemble needs at least one member');
    const names = new Set(members.map((m) => m.name));
    if (names.size !== members.length) throw new RangeError('ensemble members must be distinct strategies');
    if (members.length > 15) throw new RangeError('ensemble takes at most 15 members'); // two bits each in an int32
    this.weights = Float64Array.from(members, (m) => ENSEMBLE_WEIGHTS[m.name] ?? 1.0);
    this.rsiIndex = members.findIndex((m) => m.name === 'rsi');
  }

  /**
   * weightedVote on the members' stances, without its per-bar objects: the same products and sums in the same
   * order (so the same bits; a unit test compares the two).
   */
  onBar(bar: OhlcvBar): SignalIntent | null {
    const members = this.members;
    for (let i = 0; i < members.length; i++) members[i]!.onBar(bar);
    const rsi = this.rsiIndex >= 0 ? members[this.rsiIndex]!.stance : null;
    let buy = 0;
    let sell = 0;
    let voters = 0; // each member's vote in two bits (0 none, 1 buy, 2 sell), for the reason
    for (let i = 0; i < members.length; i++) {
      const stance = members[i]!.stance;
      if (!stance) continue;
      let w = this.weights[i]!;
      if (rsi && i !== this.rsiIndex) w *= stance.side === rsi.side ? RSI_AGREE : RSI_DISAGREE;
      if (stance.side === 'buy') {
        buy += stance.confidence * w;
        voters |= 1 << (2 * i);
      } else {
        sell += stance.confidence * w;
        voters |= 2 << (2 * i);
      }
    }
    if (buy === sell) return null;
    const side: Side = buy > sell ? 'buy' : 'sell';
    const confidence = buy > sell ? buy / (buy + sell) : sell / (buy + sell);
    this.stance = this.held.set(side, confidence);
    if (side === this.last) return null;
    this.last = side;
    return new VoteIntent(this.members, side, confidence, buy, sell, voters);
  }
}

/** The vote's intent: its reason (which lists the voters) and indicator record are built when read. */
class VoteIntent implements SignalIntent {
  constructor(
    private readonly members: readonly Strategy[],
    readonly side: Side,
    readonly confidence: number,
    private readonly buy: number,
    private readonly sell: number,
    private readonly voters: number,
  ) {}

  get reason(): string {
    const voters: string[] = [];
    for (let i = 0; i < this.members.length; i++) {
      const v = (this.voters >> (2 * i)) & 3;
      if (v !== 0) voters.push(`${this.members[i]!.name}:${v === 1 ? 'buy' : 'sell'}`);
    }
    return `weighted vote ${this.buy.toFixed(2)} buy / ${this.sell.toFixed(2)} sell (${voters.join(', ')})`;
  }

  get indicators(): Record<string, number> {
    return { vote_buy: this.buy, vote_sell: this.sell };
  }
}
