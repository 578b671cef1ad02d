import os from 'node:os';
import { loadConfig } from '../config';
import { createPool } from '../adapters/postgres/pool';
import { ensureAccount, setTradingState } from '../adapters/postgres/risk-store';
import { TRADING_STATES, type TradingState } from '../domain/risk';
import { scrubSecrets } from '../logging';

/**
 * Kill switch: `npm run halt | resume | reduce-only [-- --reason "..."]`
 * (= tsx src/cli/trading-state.ts HALTED | ACTIVE | REDUCING).
 *
 * The change is committed under the account's risk lock before this exits, so every evaluation that
 * starts after the command returns sees it (the store reads the state inside its locked transaction;
 * nothing caches it).
 */

const USAGE = `Usage: tsx src/cli/trading-state.ts <ACTIVE|HALTED|REDUCING> [--reason "text"] [--by name]

  HALTED    reject every new trade (trading_halted)
  REDUCING  only trades that shrink an existing position (reduce_only)
  ACTIVE    normal trading

Account and database come from the environment (.env): ACCOUNT_ID, STARTING_CASH, DATABASE_URL.
npm scripts: npm run halt | npm run reduce-only | npm run resume  (add -- --reason "..." for a reason)`;

interface Args {
  state: TradingState;
  reason: string | null;
  by: string;
}

export function parseArgs(argv: readonly string[]): Args | { help: true } | { error: string } {
  let state: TradingState | undefined;
  let reason: string | null = null;
  let by: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return { help: true };
    if (a === '--reason' || a === '--by') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return { error: `${a} needs a value` };
      if (a === '--reason') reason = v;
      else by = v;
      i++;
      continue;
    }
    if (a.startsWith('--reason=')) {
      reason = a.slice('--reason='.length);
      continue;
    }
    if (a.startsWith('-')) return { error: `unknown option ${a}` };
    const s = TRADING_STATES.find((t) => t === a.toUpperCase());
    if (!s) return { error: `unknown state "${a}" (expected ${TRADING_STATES.join(', ')})` };
    if (state && state !== s) return { error: 'give exactly one state' };
    state = s;
  }
  if (!state) return { error: 'missing state' };
  return { state, reason, by: by ?? `cli:${safeUser()}` };
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if ('help' in args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ('error' in args) {
    process.stderr.write(`trading-state: ${args.error}\n${USAGE}\n`);
    return 2;
  }
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, 1);
  try {
    await ensureAccount(pool, config.accountId, config.startingCash);
    const change = await setTradingState(pool, config.accountId, args.state, args.by, args.reason);
    process.stdout.write(
      `account ${change.accountId}: trading state ${change.state} (was ${change.previous ?? 'unset'}) ` +
        `set by ${change.changedBy} at ${change.changedAt}${change.reason ? ` reason: ${change.reason}` : ''}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`trading-state: failed: ${scrubSecrets(err instanceof Error ? err.message : String(err))}\n`);
    return 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`trading-state: ${scrubSecrets(String(err))}\n`);
      process.exit(1);
    },
  );
}
