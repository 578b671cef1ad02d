import type { Pool } from 'pg';
import type { Logger } from '../../logging';
import { runMigrations } from './migrate';
import { createClient, createPool } from './pool';
import { sleep } from '../../lib/sleep';

/** A fresh, migrated database of its own on the server, for a benchmark run: the working ledger is never touched. */
export interface ScratchDatabase {
  name: string;
  url: string;
  pool: Pool;
  /** End the pool and drop the database (WITH FORCE: whatever still holds a connection is cut off). */
  drop(): Promise<void>;
}

/**
 * Create and migrate database `name` on the server of `baseUrl` (the role needs CREATEDB; scripts/provision
 * grants it). `name` must be a plain identifier (letters, digits, underscores).
 */
export async function createScratchDatabase(
  baseUrl: string,
  name: string,
  opts: { poolMax?: number; applicationName?: string; logger?: Logger } = {},
): Promise<ScratchDatabase> {
  checkName(name);
  const admin = createClient(baseUrl, opts.logger);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  await runMigrations(url.toString());
  const pool = createPool(url.toString(), opts.poolMax ?? 4, {
    ...(opts.applicationName ? { applicationName: opts.applicationName } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  return {
    name,
    url: url.toString(),
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      await dropScratchDatabase(baseUrl, name, opts.logger);
    },
  };
}

/** PostgreSQL's insufficient_privilege: FORCE met a backend this role may not terminate. */
const INSUFFICIENT_PRIVILEGE = '42501';

/**
 * Drop database `name` (if it exists) on the server of `baseUrl`, cutting off its connections. FORCE terminates
 * them with this role's rights, so an autovacuum worker that has just started on the database (the superuser's)
 * refuses it ("must be a member of the role whose process is being terminated"); it exits within moments, so the
 * drop is tried again.
 */
export async function dropScratchDatabase(baseUrl: string, name: string, logger?: Logger): Promise<void> {
  checkName(name);
  const admin = createClient(baseUrl, logger);
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE || attempt >= 20) throw err;
        await sleep(250);
      }
    }
  } finally {
    await admin.end();
  }
}

function checkName(name: string): void {
  // Interpolated into DDL (identifiers cannot be bound parameters).
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${JSON.stringify(name)}`);
}
