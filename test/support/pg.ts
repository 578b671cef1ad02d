import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { createScratchDatabase } from '../../src/adapters/postgres/scratch-database';
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
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  // An idle client can be killed by DROP DATABASE ... WITH (FORCE) at teardown; that is expected, not a failure
  // (createPool's listener logs it; tests keep that quiet unless TEST_LOG_LEVEL asks).
  const db = await createScratchDatabase(testDatabaseUrl(), name, { poolMax: 20, logger: quietLog });
  return { url: db.url, pool: db.pool, drop: () => db.drop() };
}
