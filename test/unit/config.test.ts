import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';

describe('config', () => {
  it('applies defaults to an empty environment', () => {
    const c = parseEnv({});
    expect(c.temporal.address).toBe('127.0.0.1:7233');
    expect(c.temporal.taskQueue).toBe('trades');
    expect(c.env.CONFIDENCE_THRESH).toBe(0.75);
    expect(c.broker).toBe('simulated');
  });

  it.each([
    ['CONFIDENCE_THRESH', '1.5'],
    ['CONFIDENCE_THRESH', 'abc'],
    ['RABBITMQ_PORT', '99999'],
    ['TEMPORAL_ADDRESS', 'not an address'],
    ['DATABASE_URL', 'mysql://x'],
    ['BROKER', 'ibkr'],
    ['RISK_ALLOW_SHORT', 'maybe'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => parseEnv({ [name]: value })).toThrow(new RegExp(`^Invalid configuration: ${name} must be`));
  });

  it('requires broker credentials for alpaca and never echoes secrets', () => {
    expect(() => parseEnv({ BROKER: 'alpaca' })).toThrow(/BROKER_API_KEY and BROKER_API_SECRET/);
    try {
      parseEnv({ RABBITMQ_PASS: '' as string, RABBITMQ_PORT: 'x' });
    } catch (e) {
      expect((e as Error).message).not.toContain('stockautotrader-local');
    }
  });
});
