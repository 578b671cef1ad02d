import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../../src/config';
import { ASSET_CLASS_LIMITS, DEFAULT_RISK_LIMITS, barsNeeded, riskLimits } from '../../../src/domain/risk';

describe('riskLimits', () => {
  it('an empty environment gives the documented defaults', () => {
    expect(riskLimits(parseEnv({}).risk)).toEqual(DEFAULT_RISK_LIMITS);
  });

  it('maps every RISK_* variable and CONFIDENCE_THRESH', () => {
    const risk = parseEnv({
      CONFIDENCE_THRESH: '0.6',
      RISK_MAX_VIX: '40',
      RISK_MAX_REALIZED_VOL: '2',
      RISK_CIRCUIT_BREAKER_PCT: '0.03',
      RISK_MARGIN_CALL_PCT: '0.2',
      RISK_MAX_POSITION_SHARES: '500',
      RISK_MAX_ORDER_NOTIONAL: '25000',
      RISK_STRESS_DROP_PCT: '0.2',
      RISK_STRESS_THRESHOLD_PCT: '0.1',
      RISK_PER_TRADE_PCT: '0.02',
      RISK_ATR_PERIOD: '10',
      RISK_ATR_STOP_MULTIPLE: '3',
      RISK_DUPLICATE_COOLDOWN_SEC: '0',
      RISK_ALLOW_SHORT: 'true',
    }).risk;
    expect(riskLimits(risk)).toEqual({
      ...DEFAULT_RISK_LIMITS,
      confidenceThreshold: 0.6,
      maxVix: 40,
      maxRealizedVol: 2,
      circuitBreakerPct: 0.03,
      marginCallPct: 0.2,
      maxPositionShares: 500,
      maxOrderNotional: 25_000,
      stressDropPct: 0.2,
      stressThresholdPct: 0.1,
      riskPerTradePct: 0.02,
      atrPeriod: 10,
      atrStopMultiple: 3,
      duplicateCooldownSec: 0,
      allowShort: true,
    });
  });

  it('keeps the original asset-class table', () => {
    expect(ASSET_CLASS_LIMITS).toEqual({
      equity: { leverageLimit: 2, maxExposurePct: 0.1 },
      options: { leverageLimit: 1.5, maxExposurePct: 0.15 },
      futures: { leverageLimit: 5, maxExposurePct: 0.2 },
      crypto: { leverageLimit: 2.5, maxExposurePct: 0.1 },
    });
  });

  it('loads enough bars for the ATR and the volatility window', () => {
    expect(barsNeeded(DEFAULT_RISK_LIMITS)).toBe(21);
    expect(barsNeeded({ atrPeriod: 30, realizedVolWindow: 20 })).toBe(31);
  });
});
