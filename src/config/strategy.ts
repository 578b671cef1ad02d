import { resolveStrategyList, type StrategyName } from '../contracts/strategies';
import { ConfigError, bool, int, num, str, type Parsed } from './fields';

/** The `strategy` section's variables: quant strategies (original names and defaults where they exist; docs/quant.md). */
export const strategyVars = {
  STRATEGY_TYPE: str('sma-cross'),
  MA_SHORT: int(2, 1, 10_000),
  MA_LONG: int(5, 2, 10_000),
  USE_RSI_CONFIRMATION: bool(false),
  RSI_PERIOD: int(14, 1, 10_000),
  RSI_BUY_THRESHOLD: num(30, (s) => s.gt(0).lt(100)),
  RSI_SELL_THRESHOLD: num(70, (s) => s.gt(0).lt(100)),
  MACD_FAST: int(12, 1, 10_000),
  MACD_SLOW: int(26, 2, 10_000),
  MACD_SIGNAL: int(9, 1, 10_000),
  BOLLINGER_WINDOW: int(20, 2, 10_000),
  BOLLINGER_STDDEV: num(2, (s) => s.positive().max(10)),
  MOMENTUM_PERIOD: int(10, 1, 10_000),
  MOMENTUM_THRESHOLD: num(0.02, (s) => s.min(0).lt(1)),
  MRM_WINDOW: int(10, 2, 10_000),
  MRM_THRESHOLD: num(0.01, (s) => s.min(0).lt(1)),
  ML_WINDOW: int(50, 10, 100_000),
  ML_RETRAIN_EVERY: int(50, 1, 100_000),
};

/** The `strategy` section: which strategies the quant runs side by side, and every strategy's parameters. */
export interface StrategyConfig {
  types: StrategyName[];
  maCross: { fast: number; slow: number; useRsi: boolean; rsiPeriod: number; rsiBuy: number; rsiSell: number };
  macd: { fast: number; slow: number; signal: number };
  bollinger: { window: number; k: number };
  rsi: { period: number; buy: number; sell: number };
  momentum: { period: number; threshold: number };
  mrm: { window: number; threshold: number };
  ml: { window: number; retrainEvery: number };
}

/** STRATEGY_TYPE's value as the list of strategies; a ConfigError naming the variable when it is not one. */
export function strategyTypes(value: string): StrategyName[] {
  try {
    return resolveStrategyList(value);
  } catch (err) {
    throw new ConfigError(`Invalid configuration: STRATEGY_TYPE ${(err as Error).message} (got "${value}")`);
  }
}

export function strategySection(e: Parsed<typeof strategyVars>): StrategyConfig {
  const types = strategyTypes(e.STRATEGY_TYPE);
  const order = (a: keyof typeof e, b: keyof typeof e) => {
    if (!((e[a] as number) < (e[b] as number))) {
      throw new ConfigError(`Invalid configuration: ${a} must be < ${b} (got ${String(e[a])} and ${String(e[b])})`);
    }
  };
  order('MA_SHORT', 'MA_LONG');
  order('MACD_FAST', 'MACD_SLOW');
  order('RSI_BUY_THRESHOLD', 'RSI_SELL_THRESHOLD');
  return {
    types,
    maCross: {
      fast: e.MA_SHORT,
      slow: e.MA_LONG,
      useRsi: e.USE_RSI_CONFIRMATION,
      rsiPeriod: e.RSI_PERIOD,
      rsiBuy: e.RSI_BUY_THRESHOLD,
      rsiSell: e.RSI_SELL_THRESHOLD,
    },
    macd: { fast: e.MACD_FAST, slow: e.MACD_SLOW, signal: e.MACD_SIGNAL },
    bollinger: { window: e.BOLLINGER_WINDOW, k: e.BOLLINGER_STDDEV },
    rsi: { period: e.RSI_PERIOD, buy: e.RSI_BUY_THRESHOLD, sell: e.RSI_SELL_THRESHOLD },
    momentum: { period: e.MOMENTUM_PERIOD, threshold: e.MOMENTUM_THRESHOLD },
    mrm: { window: e.MRM_WINDOW, threshold: e.MRM_THRESHOLD },
    ml: { window: e.ML_WINDOW, retrainEvery: e.ML_RETRAIN_EVERY },
  };
}
