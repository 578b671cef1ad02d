// Apply pending database migrations: `npm run migrate` (scripts/provision/postgres.sh runs it on stack-up).
// Loads and validates the whole configuration first, so a bad setting fails here with one line naming it.
import { loadConfig } from '../config';
import { runMigrations } from '../adapters/postgres/migrate';
import { scrubSecrets } from '../logging';

async function main(): Promise<void> {
  const config = loadConfig();
  const applied = await runMigrations(config.databaseUrl);
  if (applied.length === 0) {
    console.log('migrations: database is up to date');
  } else {
    for (const name of applied) console.log(`migrations: applied ${name}`);
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`migrate failed: ${scrubSecrets(message)}\n`);
  process.exit(1);
});
