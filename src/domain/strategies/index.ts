import { EMA_CROSS, MaCrossStrategy, SMA_CROSS, DEFAULT_MA_CROSS, type MaCrossParams } from './ma-cross';
import {
  BOLLINGER,
  BollingerStrategy,
  DEFAULT_BOLLINGER,
  DEFAULT_MACD,
  DEFAULT_MOMENTUM,
  DEFAULT_MRM,
  DEFAULT_RSI,
  MACD,
  MOMENTUM,
  MRM,
  MacdStrategy,
  MeanReversionStrategy,
  MomentumStrategy,
  RSI,
  RsiStrategy,
  type BollingerParams,
  type MacdParams,
  type MomentumParams,
  type MrmParams,
  type RsiParams,
} from './oscillators';
import { DEFAULT_LOGISTIC, LogisticStrategy, ML, type LogisticParams } from './logistic';
import { ENSEMBLE, EnsembleStrategy } from './ensemble';
import type { Strategy, StrategyFactory } from './types';
import {
  ORIGINAL_STRATEGY_TYPES,
  STRATEGY_NAMES,
  resolveStrategyList,
  resolveStrategyName,
  type StrategyName,
} from '../../contracts/strategies';

export * from './types';
export * from './ma-cross';
export * from './oscillators';
export * from './logistic';
export * from './ensemble';

export { STRATEGY_NAMES, ORIGINAL_STRATEGY_TYPES, resolveStrategyName, resolveStrategyList };
export type { StrategyName };

/** Every strategy's parameters: the `strategy` section of the configuration. */
export interface StrategyParams {
  maCross: MaCrossParams;
  macd: MacdParams;
  bollinger: BollingerParams;
  rsi: RsiParams;
  momentum: MomentumParams;
  mrm: MrmParams;
  ml: LogisticParams;
}

export const DEFAULT_STRATEGY_PARAMS: StrategyParams = {
  maCross: DEFAULT_MA_CROSS,
  macd: DEFAULT_MACD,
  bollinger: DEFAULT_BOLLINGER,
  rsi: DEFAULT_RSI,
  momentum: DEFAULT_MOMENTUM,
  mrm: DEFAULT_MRM,
  ml: DEFAULT_LOGISTIC,
};

export interface StrategyOptions extends Partial<{ [K in keyof StrategyParams]: Partial<StrategyParams[K]> }> {
  /** @deprecated alias of maCross (the SMA crossover's parameters). */
  smaCross?: Partial<MaCrossParams>;
}

function resolveParams(opts: StrategyOptions): StrategyParams {
  const d = DEFAULT_STRATEGY_PARAMS;
  return {
    maCross: { ...d.maCross, ...opts.smaCross, ...opts.maCross },
    macd: { ...d.macd, ...opts.macd },
    bollinger: { ...d.bollinger, ...opts.bollinger },
    rsi: { ...d.rsi, ...opts.rsi },
    momentum: { ...d.momentum, ...opts.momentum },
    mrm: { ...d.mrm, ...opts.mrm },
    ml: { ...d.ml, ...opts.ml },
  };
}

function build(name: StrategyName, p: StrategyParams): Strategy {
  switch (name) {
    case SMA_CROSS:
      return new MaCrossStrategy('sma', p.maCross);
    case EMA_CROSS:
      return new MaCrossStrategy('ema', p.maCross);
    case MACD:
      return new MacdStrategy(p.macd);
    case BOLLINGER:
      return new BollingerStrategy(p.bollinger);
    case RSI:
      return new RsiStrategy(p.rsi);
    case MOMENTUM:
      return new MomentumStrategy(p.momentum);
    case MRM:
      return new MeanReversionStrategy(p.mrm);
    case ML:
      return new LogisticStrategy(p.ml);
    case ENSEMBLE:
      // The original's AGGREGATED members: legacy MA crossover, MACD, Bollinger, ML and RSI.
      return new EnsembleStrategy([
        new MaCrossStrategy('sma', p.maCross),
        new MacdStrategy(p.macd),
        new BollingerStrategy(p.bollinger),
        new LogisticStrategy(p.ml),
        new RsiStrategy(p.rsi),
      ]);
  }
}

/** A factory for per-symbol instances of the named strategy (validates parameters once, up front). */
export function strategyFactory(name: string, opts: StrategyOptions = {}): StrategyFactory {
  const resolved = resolveStrategyName(name);
  const params = resolveParams(opts);
  build(resolved, params); // throws now on bad parameters rather than on the first bar
  return () => build(resolved, params);
}

/** Factories for a STRATEGY_TYPE list ("sma-cross,macd" or "AGGREGATED"); duplicates are refused. */
export function strategyFactories(list: string | readonly string[], opts: StrategyOptions = {}): StrategyFactory[] {
  return resolveStrategyList(list).map((n) => strategyFactory(n, opts));
}

export * from './signal';
export * from './engine';
