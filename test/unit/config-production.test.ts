import { describe, expect, it } from 'vitest';
import { ConfigError, PRODUCTION_REQUIRED, parseEnv } from '../../src/config';

describe('NODE_ENV=production', () => {
  const explicit = {
    NODE_ENV: 'production',
    RABBITMQ_USER: 'trader',
    RABBITMQ_PASS: 'rabbit-secret',
    DATABASE_URL: 'postgres://ledger:pg-secret@postgres:5432/stockautotrader',
  };

  it('starts with every credential given explicitly', () => {
    const cfg = parseEnv(explicit);
    expect(cfg.rabbitmq.user).toBe('trader');
    expect(cfg.databaseUrl).toBe(explicit.DATABASE_URL);
  });

  it('refuses the local default credentials, naming the missing variable and never its value', () => {
    for (const name of PRODUCTION_REQUIRED) {
      for (const missing of [undefined, '']) {
        const env: Record<string, string | undefined> = { ...explicit, [name]: missing };
        expect(() => parseEnv(env), name).toThrow(ConfigError);
        expect(() => parseEnv(env), name).toThrow(`${name} must be set when NODE_ENV=production`);
      }
    }
    try {
      parseEnv({ ...explicit, RABBITMQ_USER: undefined });
    } catch (err) {
      expect(String(err)).not.toContain('rabbit-secret');
      expect(String(err)).not.toContain('pg-secret');
    }
  });

  it('keeps the local defaults in development', () => {
    expect(parseEnv({}).rabbitmq.user).toBe('stockautotrader');
  });
});
