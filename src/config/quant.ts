import { bool, type Parsed } from './fields';

/** The `quant` section: how the quant process (src/workers/quant.ts) starts. */
export const quantVars = {
  QUANT_WARMUP: bool(true),
};

export interface QuantConfig {
  /** Replay the bar store's recent bars through the strategies on start, so a restart resumes warm (docs/quant.md). */
  warmup: boolean;
}

export function quantSection(e: Parsed<typeof quantVars>): QuantConfig {
  return { warmup: e.QUANT_WARMUP };
}
