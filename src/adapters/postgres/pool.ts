import { Pool, types, type PoolClient } from 'pg';

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

/** Run `fn` in one transaction on a dedicated connection; roll back on any error. */
export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
