import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * One writer per table (docs/architecture.md, "The ledger"): every INSERT / UPDATE / DELETE of a table in
 * src/ sits in that table's owner module, and all SQL (reads too) lives under src/adapters/postgres. The money
 * tables are pinned to the ledger module, so a second writer of a position, a fill or a reservation cannot
 * creep in.
 */

const ROOT = path.resolve(__dirname, '../..');
const LEDGER = 'src/adapters/postgres/ledger/';

/** Tables whose owner is decided here; any other table just needs a single owner module. */
const OWNERS: Record<string, string> = {
  accounts: LEDGER,
  cash_movements: LEDGER,
  positions: LEDGER,
  fills: LEDGER,
  orders: LEDGER,
  trades: LEDGER,
  reservations: LEDGER,
  risk_decisions: 'src/adapters/postgres/risk-store.ts',
  trading_state: 'src/adapters/postgres/risk-store.ts',
  trading_state_history: 'src/adapters/postgres/risk-store.ts',
  reconciliation_issues: 'src/adapters/postgres/reconciliation.ts',
  market_bars: 'src/adapters/postgres/bars.ts',
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

function tablesOf(sql: string): string[] {
  return [...sql.matchAll(/CREATE TABLE(?: IF NOT EXISTS)?\s+([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]!.toLowerCase());
}

/** The module a file belongs to: the ledger is one module spread over a folder; anything else is its file. */
const moduleOf = (file: string) => (file.startsWith(LEDGER) ? LEDGER : file);

/** `table → files writing it`, from the statements in src/ (comments stripped, so prose does not count). */
function writers(tables: Set<string>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const file of sourceFiles('src')) {
    const code = fs
      .readFileSync(path.join(ROOT, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of code.matchAll(/\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_][a-z0-9_]*)/g)) {
      const table = m[1]!;
      if (!tables.has(table)) continue;
      if (!out.has(table)) out.set(table, new Set());
      out.get(table)!.add(file);
    }
  }
  return out;
}

describe('table ownership', () => {
  const migrations = fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql'));
  const tables = new Set(
    migrations.flatMap((f) => tablesOf(fs.readFileSync(path.join(ROOT, 'migrations', f), 'utf8'))),
  );
  const found = writers(tables);

  it('finds the schema and its writers (the scan itself works)', () => {
    for (const t of Object.keys(OWNERS)) expect(tables, t).toContain(t);
    // Every money table has a writer: a scan that found nothing would make the checks below vacuous.
    for (const t of ['accounts', 'cash_movements', 'positions', 'fills', 'orders', 'trades', 'reservations']) {
      expect(found.get(t)?.size ?? 0, t).toBeGreaterThan(0);
    }
  });

  it('every table is written by one module, its owner, under src/adapters/postgres', () => {
    const problems: string[] = [];
    for (const [table, files] of found) {
      const modules = new Set([...files].map(moduleOf));
      const owner = OWNERS[table];
      if (owner && [...modules].some((m) => m !== owner)) {
        problems.push(`${table}: written by ${[...files].join(', ')}; its owner is ${owner}`);
      } else if (modules.size > 1) {
        problems.push(`${table}: written by ${modules.size} modules (${[...files].join(', ')}); give it one owner`);
      }
      for (const f of files) {
        if (!f.startsWith('src/adapters/postgres/'))
          problems.push(`${table}: SQL outside src/adapters/postgres (${f})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('no module outside src/adapters/postgres runs a query (reads included)', () => {
    const outside = sourceFiles('src')
      .filter((f) => !f.startsWith('src/adapters/postgres/'))
      .filter((f) => /\.query\s*[(<]/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    expect(outside).toEqual([]);
  });
});
