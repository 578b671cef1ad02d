import type { OhlcvBar } from '../../contracts/bar';
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
import type { SignalIntent, Stance, Strategy, StrategyFactory, StrategySetFactory } from './types';
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
      return new EnsembleStrategy(ENSEMBLE_MEMBERS.map((m) => build(m, p)));
  }
}

/** The original's AGGREGATED members: legacy MA crossover, MACD, Bollinger, ML and RSI. */
const ENSEMBLE_MEMBERS: readonly StrategyName[] = [SMA_CROSS, MACD, BOLLINGER, ML, RSI];

/** The parameters a strategy depends on (two instances with equal ones, fed the same bars, are in the same state). */
function paramsOf(name: StrategyName, p: StrategyParams): unknown {
  switch (name) {
    case SMA_CROSS:
    case EMA_CROSS:
      return p.maCross;
    case ENSEMBLE:
      return p;
    default:
      return p[name];
  }
}

const SPECS = new WeakMap<StrategyFactory, { name: StrategyName; params: StrategyParams }>();

/** A factory for per-symbol instances of the named strategy (validates parameters once, up front). */
export function strategyFactory(name: string, opts: StrategyOptions = {}): StrategyFactory {
  const resolved = resolveStrategyName(name);
  const params = resolveParams(opts);
  build(resolved, params); // throws now on bad parameters rather than on the first bar
  const factory = () => build(resolved, params);
  SPECS.set(factory, { name: resolved, params });
  return factory;
}

/**
 * The strategies of one series for a SignalEngineSet, side by side. When the ensemble runs next to one of its
 * members with the same parameters (every strategy on: all five), the two slots share one instance: the member
 * takes each bar once (SharedStrategy), its intent goes out as its own signal and its stance into the vote. Both
 * are deterministic functions of the same bars, so this is the same state computed once instead of twice (the
 * ensemble re-ran five strategies on every bar). Factories not made by strategyFactory are never shared.
 */
export function strategySet(factories: readonly StrategyFactory[]): StrategySetFactory {
  if (factories.length === 0) throw new RangeError('no strategy');
  const specs = factories.map((f) => SPECS.get(f));
  const ensemble = specs.find((x) => x?.name === ENSEMBLE);
  const shareable = new Set<StrategyName>();
  if (ensemble) {
    for (const x of specs) {
      if (
        x &&
        ENSEMBLE_MEMBERS.includes(x.name) &&
        JSON.stringify(paramsOf(x.name, x.params)) === JSON.stringify(paramsOf(x.name, ensemble.params))
      )
        shareable.add(x.name);
    }
  }
  if (!ensemble || shareable.size === 0) {
    return () => ({ strategies: factories.map((f) => f()), nextBar: noClock });
  }
  return () => {
    const clock = { bar: 0 };
    const shared = new Map<StrategyName, SharedStrategy>();
    for (let i = 0; i < factories.length; i++) {
      const x = specs[i];
      if (x && shareable.has(x.name)) shared.set(x.name, new SharedStrategy(factories[i]!(), clock));
    }
    const strategies = factories.map((f, i) => {
      const x = specs[i];
      if (x?.name === ENSEMBLE) {
        return new EnsembleStrategy(ENSEMBLE_MEMBERS.map((m) => shared.get(m) ?? build(m, x.params)));
      }
      return (x && shared.get(x.name)) ?? f();
    });
    return { strategies, nextBar: () => clock.bar++ };
  };
}

const noClock = (): void => {};

/**
 * One strategy instance in two slots of a set: fed each bar once, whichever slot comes first (`clock.bar` is
 * advanced by the set before every bar), its intent given to both.
 */
class SharedStrategy implements Strategy {
  private fedAt = -1;
  private intent: SignalIntent | null = null;

  constructor(
    private readonly inner: Strategy,
    private readonly clock: { bar: number },
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get stance(): Stance | null {
    return this.inner.stance;
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    if (this.fedAt !== this.clock.bar) {
      this.fedAt = this.clock.bar;
      this.intent = this.inner.onBar(bar);
    }
    return this.intent;
  }
}

/** Factories for a STRATEGY_TYPE list ("sma-cross,macd" or "AGGREGATED"); duplicates are refused. */
export function strategyFactories(list: string | readonly string[], opts: StrategyOptions = {}): StrategyFactory[] {
  return resolveStrategyList(list).map((n) => strategyFactory(n, opts));
}

export * from './signal';
export * from './engine';
