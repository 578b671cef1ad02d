/**
 * Strategy names: part of the signal contract (the `strategy` field, the `signal.<strategy>.<symbol>` routing key
 * and the signal id), and what STRATEGY_TYPE selects. The implementations live in src/domain/strategies.
 */
export const STRATEGY_NAMES = [
  'sma-cross',
  'ema-cross',
  'macd',
  'bollinger',
  'rsi',
  'momentum',
  'mrm',
  'ml',
  'ensemble',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The original's STRATEGY_TYPE values (it upper-cased them) and what they run here. */
export const ORIGINAL_STRATEGY_TYPES: Readonly<Record<string, StrategyName>> = {
  SYMBOL: 'sma-cross',
  MRM: 'mrm',
  ML: 'ml',
  AGGREGATED: 'ensemble',
};

/** Resolve one name (ours in any case, or the original's) to a strategy name; throws for anything else. */
export function resolveStrategyName(name: string): StrategyName {
  const trimmed = name.trim();
  const original = ORIGINAL_STRATEGY_TYPES[trimmed.toUpperCase()];
  if (original) return original;
  const lower = trimmed.toLowerCase();
  if ((STRATEGY_NAMES as readonly string[]).includes(lower)) return lower as StrategyName;
  throw new Error(
    `unknown strategy "${name}" (known: ${STRATEGY_NAMES.join(', ')}; or the original's ${Object.keys(ORIGINAL_STRATEGY_TYPES).join(', ')})`,
  );
}

/** Resolve a comma-separated list ("sma-cross,macd", "AGGREGATED"); empty lists and duplicates are refused. */
export function resolveStrategyList(list: string | readonly string[]): StrategyName[] {
  const names = (typeof list === 'string' ? list.split(',') : [...list]).map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new Error('no strategy listed');
  const resolved = names.map(resolveStrategyName);
  const dup = resolved.find((n, i) => resolved.indexOf(n) !== i);
  if (dup) throw new Error(`strategy "${dup}" is listed twice`);
  return resolved;
}
