/**
 * `npm run bench:risk-snapshot`: what risk's ledger snapshot costs under the account lock when the account has a
 * long history. Every evaluation reads the snapshot (loadPortfolio) while holding the account's advisory lock,
 * so its time bounds how many evaluations of one account can be decided per second.
 *
 * A scratch database (dropped afterwards) gets an account with --decisions approved decisions (50 symbols,
 * 5 strategies) and --held open positions; the snapshot of an evaluation (cooldown key given) is then read
 * --runs times. Prints the buffers the statement touches (from EXPLAIN ANALYZE: a count that does not depend on
 * the machine) and the median and best wall time per snapshot, with the load average (a figure, not a test).
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { createLogger } from '../logging';
import { buffersTouched } from '../adapters/postgres/benchmark-queries';
import { recordFills, recordOrderIntent } from '../adapters/postgres/ledger';
import { ensureAccount, loadPortfolio, portfolioQuery, seedApprovedDecisions } from '../adapters/postgres/risk-store';
import { createScratchDatabase } from '../adapters/postgres/scratch-database';

const USAGE = `Usage: npm run bench:risk-snapshot -- [options]

Times risk's ledger snapshot (read under the account lock on every evaluation) for an account with a long
history, in a scratch database on the local PostgreSQL (DATABASE_URL), dropped afterwards.

Options:
  --decisions <n>  approved risk decisions of the account (default 200000, about a year at 800 a day)
  --held <n>       open positions (default 10)
  --runs <n>       snapshots timed (default 25)
  -h, --help       this help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      decisions: { type: 'string', default: '200000' },
      held: { type: 'string', default: '10' },
      runs: { type: 'string', default: '25' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const decisions = Number(values.decisions);
  const held = Number(values.held);
  const runs = Number(values.runs);
  if (![decisions, held, runs].every((n) => Number.isInteger(n) && n > 0) || held > 50) {
    process.stderr.write(`bad option: --decisions, --runs positive integers, --held 1-50\n${USAGE}`);
    return 2;
  }
  const cfg = loadConfig();
  const log = createLogger('bench-risk-snapshot', { level: 'warn' });
  const db = await createScratchDatabase(cfg.databaseUrl, `sat_bench_snapshot_${randomBytes(4).toString('hex')}`, {
    poolMax: 2,
    logger: log,
  });
  try {
    process.stderr.write(`seeding ${decisions} approved decisions and ${held} positions...\n`);
    const accountId = 'bench-account';
    await ensureAccount(db.pool, accountId, 10_000_000);
    await seedApprovedDecisions(db.pool, accountId, decisions);
    // The held positions, booked through the ledger as a filled order each.
    for (let i = 0; i < held; i++) {
      const ctx = { workflowId: `bench-hold-${i}`, accountId, correlationId: `bench-hold-${i}`, broker: 'simulated' };
      const clientOrderId = `bench-hold-${i}`;
      const symbol = `SYM${i}`;
      await recordOrderIntent(db.pool, {
        ...ctx,
        request: { clientOrderId, symbol, side: 'buy', qty: 10, type: 'market', timeInForce: 'day' },
      });
      await recordFills(db.pool, accountId, ctx.correlationId, [
        {
          executionId: `bench-hold-${i}`,
          clientOrderId,
          brokerOrderId: `bench-hold-${i}`,
          symbol,
          side: 'buy',
          qty: 10,
          price: 1,
          fee: 0,
          cumQty: 10,
          timestamp: new Date().toISOString(),
        },
      ]);
    }
    const opts = { cooldownKey: { symbol: 'SYM7', strategy: 'strategy2' } };
    const statement = portfolioQuery(accountId, opts);
    const buffers = await buffersTouched(db.pool, String(statement.text), statement.values ?? []);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await loadPortfolio(db.pool, accountId, opts);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    const load = os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    process.stdout.write(
      `risk snapshot, ${decisions} approved decisions, ${held} positions: ${buffers} buffers touched; ` +
        `median ${ms[Math.floor(runs / 2)]!.toFixed(2)} ms, best ${ms[0]!.toFixed(2)} ms over ${runs} runs ` +
        `(load average ${load})\n`,
    );
    return 0;
  } finally {
    await db.drop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:risk-snapshot failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
