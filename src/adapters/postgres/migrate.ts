import path from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../../logging';

/** Versioned SQL migrations live in /migrations; node-pg-migrate records applied ones in `pgmigrations`. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '../../../migrations');

/** Apply every pending migration. Safe to run on every start: applied versions are skipped. */
export async function runMigrations(databaseUrl: string, logger?: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Infinity,
    // A single lock so two processes starting at once cannot apply the same migration twice.
    noLock: false,
    log: (msg: string) => logger?.debug({ migration: msg }, 'migration'),
    verbose: false,
  });
  return applied.map((m) => m.name);
}
