import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';

describe('config', () => {
  it('applies defaults to an empty environment', () => {
    const c = parseEnv({});
    expect(c.temporal.address).toBe('127.0.0.1:7233');
    expect(c.temporal.taskQueue).toBe('trades');
    expect(c.env.CONFIDENCE_THRESH).toBe(0.75);
    expect(c.broker.kind).toBe('simulated');
  });

  it.each([
    ['CONFIDENCE_THRESH', '1.5'],
    ['CONFIDENCE_THRESH', 'abc'],
    ['RABBITMQ_PORT', '99999'],
    ['TEMPORAL_ADDRESS', 'not an address'],
    ['DATABASE_URL', 'mysql://x'],
    ['BROKER', 'ibkr'],
    ['RISK_ALLOW_SHORT', 'maybe'],
    ['BROKER_RATE_LIMIT_PER_MIN', '0'],
    ['BROKER_RATE_LIMIT_PER_MIN', '2.5'],
    ['SIM_RATE_LIMIT_PER_MIN', '-1'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => parseEnv({ [name]: value })).toThrow(new RegExp(`^Invalid configuration: ${name} must be`));
  });

  it('broker request budget: 200/min for Alpaca, unlimited for the local venue, each configurable', () => {
    const alpaca = { BROKER: 'alpaca', BROKER_API_KEY: 'k', BROKER_API_SECRET: 's' };
    expect(parseEnv(alpaca).broker.rateLimitPerMin).toBe(200);
    expect(parseEnv({ ...alpaca, BROKER_RATE_LIMIT_PER_MIN: '1000' }).broker.rateLimitPerMin).toBe(1000);
    expect(parseEnv({}).broker.rateLimitPerMin).toBe(0);
    expect(parseEnv({ SIM_RATE_LIMIT_PER_MIN: '600' }).broker.rateLimitPerMin).toBe(600);
  });

  it('requires broker credentials for alpaca and never echoes secrets', () => {
    expect(() => parseEnv({ BROKER: 'alpaca' })).toThrow(/BROKER_API_KEY and BROKER_API_SECRET/);
    try {
      parseEnv({ RABBITMQ_PASS: '' as string, RABBITMQ_PORT: 'x' });
    } catch (e) {
      expect((e as Error).message).not.toContain('stockautotrader-local');
    }
  });

  it('strategy section: defaults, the original STRATEGY_TYPE values, several side by side', () => {
    const d = parseEnv({}).strategy;
    expect(d.types).toEqual(['sma-cross']);
    expect(d.maCross).toEqual({ fast: 2, slow: 5, useRsi: false, rsiPeriod: 14, rsiBuy: 30, rsiSell: 70 });
    expect(d.macd).toEqual({ fast: 12, slow: 26, signal: 9 });
    expect(d.ml).toEqual({ window: 50, retrainEvery: 50 });
    expect(parseEnv({ STRATEGY_TYPE: 'AGGREGATED' }).strategy.types).toEqual(['ensemble']);
    expect(parseEnv({ STRATEGY_TYPE: 'symbol, macd,ML' }).strategy.types).toEqual(['sma-cross', 'macd', 'ml']);
    const c = parseEnv({ MA_SHORT: '3', MA_LONG: '8', USE_RSI_CONFIRMATION: 'yes', BOLLINGER_STDDEV: '2.5' }).strategy;
    expect(c.maCross).toMatchObject({ fast: 3, slow: 8, useRsi: true });
    expect(c.bollinger.k).toBe(2.5);
  });

  it.each([
    [{ STRATEGY_TYPE: 'fallback' }, /^Invalid configuration: STRATEGY_TYPE unknown strategy "fallback"/],
    [{ STRATEGY_TYPE: 'macd,MACD' }, /^Invalid configuration: STRATEGY_TYPE strategy "macd" is listed twice/],
    [{ MA_SHORT: '5', MA_LONG: '5' }, /^Invalid configuration: MA_SHORT must be < MA_LONG/],
    [{ MACD_FAST: '30' }, /^Invalid configuration: MACD_FAST must be < MACD_SLOW/],
    [{ RSI_BUY_THRESHOLD: '80' }, /^Invalid configuration: RSI_BUY_THRESHOLD must be < RSI_SELL_THRESHOLD/],
    [{ RSI_SELL_THRESHOLD: '100' }, /^Invalid configuration: RSI_SELL_THRESHOLD must be < 100/],
    [{ ML_WINDOW: '5' }, /^Invalid configuration: ML_WINDOW must be >= 10/],
  ])('strategy section rejects %o naming the variable', (env, msg) => {
    expect(() => parseEnv(env)).toThrow(msg);
  });
});
