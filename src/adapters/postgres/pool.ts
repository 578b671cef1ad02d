import { Pool, types } from 'pg';

// NUMERIC (oid 1700) and BIGINT (oid 20) arrive as strings by default; ledger code converts explicitly
// with toNumber() where it needs arithmetic, so money never passes through an implicit float parse.
export function createPool(databaseUrl: string, max = 10): Pool {
  return new Pool({ connectionString: databaseUrl, max, application_name: 'stockautotrader' });
}

/** Parse a NUMERIC column. */
export function toNumber(v: string | number | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : Number(v);
}

export { types };
