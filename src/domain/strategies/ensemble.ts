import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import type { SignalIntent, Stance, Strategy } from './types';

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
  stance: Stance | null = null;

  constructor(readonly members: readonly Strategy[]) {
    if (members.length === 0) throw new RangeError('ensemble needs at least one member');
    const names = new Set(members.map((m) => m.name));
    if (names.size !== members.length) throw new RangeError('ensemble members must be distinct strategies');
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    for (const m of this.members) m.onBar(bar);
    const vote = weightedVote(this.members);
    if (!vote.side) return null;
    this.stance = { side: vote.side, confidence: vote.confidence };
    if (vote.side === this.last) return null;
    this.last = vote.side;
    const voters = this.members.filter((m) => m.stance).map((m) => `${m.name}:${m.stance!.side}`);
    return {
      side: vote.side,
      confidence: vote.confidence,
      reason: `weighted vote ${vote.buy.toFixed(2)} buy / ${vote.sell.toFixed(2)} sell (${voters.join(', ')})`,
      indicators: { vote_buy: vote.buy, vote_sell: vote.sell },
    };
  }
}
