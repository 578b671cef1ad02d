import { describe, expect, it } from 'vitest';
import { childEnv, parseEnv, strategyTypes } from '../../src/config';

describe('childEnv: settings a parent hands to the services it starts', () => {
  it('puts each setting where the child process reads it, over the base environment', () => {
    const base = { LOG_LEVEL: 'debug', ACCOUNT_ID: 'default', RABBITMQ_HOST: 'mq' };
    const env = childEnv(
      { logLevel: 'warn', accountId: 'paper-1', quantWarmup: false, strategyTypes: 'macd,ml' },
      base,
    );
    const child = parseEnv(env);
    expect(child.logLevel).toBe('warn');
    expect(child.accountId).toBe('paper-1');
    expect(child.quant.warmup).toBe(false);
    expect(child.strategy.types).toEqual(['macd', 'ml']);
    expect(child.rabbitmq.host).toBe('mq');
    expect(base).toEqual({ LOG_LEVEL: 'debug', ACCOUNT_ID: 'default', RABBITMQ_HOST: 'mq' });
  });

  it('leaves what is not given as it is', () => {
    expect(childEnv({}, { ACCOUNT_ID: 'a' })).toEqual({ ACCOUNT_ID: 'a' });
  });

  it('strategyTypes checks a strategy list by STRATEGY_TYPE rules, naming the variable', () => {
    expect(strategyTypes('symbol, macd')).toEqual(['sma-cross', 'macd']);
    expect(() => strategyTypes('fallback')).toThrow(
      /^Invalid configuration: STRATEGY_TYPE unknown strategy "fallback"/,
    );
  });
});
