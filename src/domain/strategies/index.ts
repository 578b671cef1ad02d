import { SMA_CROSS, SmaCrossStrategy, type SmaCrossParams } from './sma-cross';
import type { StrategyFactory } from './types';

export * from './types';
export * from './sma-cross';

export const STRATEGY_NAMES = [SMA_CROSS] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface StrategyOptions {
  smaCross?: Partial<SmaCrossParams>;
}

/** A factory for per-symbol instances of the named strategy (validates parameters once, up front). */
export function strategyFactory(name: string, opts: StrategyOptions = {}): StrategyFactory {
  switch (name) {
    case SMA_CROSS: {
      new SmaCrossStrategy(opts.smaCross); // throws now on bad parameters rather than on the first bar
      return () => new SmaCrossStrategy(opts.smaCross);
    }
    default:
      throw new Error(`unknown strategy "${name}" (known: ${STRATEGY_NAMES.join(', ')})`);
  }
}
export * from './signal';
export * from './engine';
