import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { runMigrations } from '../../src/adapters/postgres/migrate';
import { createClient, createPool } from '../../src/adapters/postgres/pool';
import { createLogger } from '../../src/logging';

const quietLog = createLogger('test-pg', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** The server the test command provisioned (scripts/test.sh exports DATABASE_URL). */
export function testDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run integration tests through `npm test` (scripts/test.sh)');
  return url;
}

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database per test file on the real PostgreSQL server, so files never share state.
 * Needs the project role to have CREATEDB (scripts/provision/postgres.sh grants it).
 */
export async function createTestDatabase(prefix = 'sat_test'): Promise<TestDatabase> {
  const base = new URL(testDatabaseUrl());
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = createClient(base.toString(), quietLog);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  await runMigrations(url.toString());
  // An idle client can be killed by DROP DATABASE ... WITH (FORCE) at teardown; that is expected, not a failure
  // (createPool's listener logs it; tests keep that quiet unless TEST_LOG_LEVEL asks).
  const pool = createPool(url.toString(), 20, { logger: quietLog });
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const c = createClient(base.toString(), quietLog);
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
