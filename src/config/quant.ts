import { bool, int, type Parsed } from './fields';
import { MAX_SIGNALS_PER_MESSAGE } from '../contracts/signal';

/** The `quant` section: how the quant process (src/workers/quant.ts) starts. */
export const quantVars = {
  QUANT_WARMUP: bool(true),
  QUANT_SIGNALS_PER_MESSAGE: int(500, 1, MAX_SIGNALS_PER_MESSAGE),
};

export interface QuantConfig {
  /** Replay the bar store's recent bars through the strategies on start, so a restart resumes warm (docs/quant.md). */
  warmup: boolean;
  /**
   * Most signals in one `signal_batch` message (the signals of one turn travel together); 1 = a message per signal,
   * for a consumer that reads only the single form (docs/quant.md, "The live path").
   */
  signalsPerMessage: number;
}

export function quantSection(e: Parsed<typeof quantVars>): QuantConfig {
  return { warmup: e.QUANT_WARMUP, signalsPerMessage: e.QUANT_SIGNALS_PER_MESSAGE };
}
