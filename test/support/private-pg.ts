import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runMigrations } from '../../src/adapters/postgres/migrate';
import { createClient, createPool } from '../../src/adapters/postgres/pool';
import { createLogger } from '../../src/logging';
import type { TestDatabase } from './pg';
import { restartablePort } from './ports';

const run = promisify(execFile);
const quietLog = createLogger('test-private-pg', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * A PostgreSQL server of the test's own (initdb into a temp directory, its own port), for tests that stop and
 * restart the server: the shared server on 5432 serves every other test and agent and must never be restarted.
 * Uses the binaries scripts/provision/postgres.sh installs (Debian's /usr/lib/postgresql/<version>/bin). When we
 * are root the server runs as the `postgres` OS user (it refuses to run as root), like the project's own cluster.
 */
export interface PrivatePostgres {
  port: number;
  dataDir: string;
  logFile: string;
  /** A fresh migrated database on this server (TestDatabase shape, so PipelineHarness can use it). */
  database: TestDatabase;
  /** `pg_ctl restart -m fast`: every session is terminated ("terminating connection due to administrator command"). */
  restart(): Promise<void>;
  /** Stop (`fast` terminates sessions cleanly; `immediate` is a crash: recovery runs at the next start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stop the server and delete its directory. */
  destroy(): Promise<void>;
}

function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  const v = versions.at(-1);
  if (!v) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin (scripts/provision/postgres.sh)');
  return path.join(root, v, 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Run a PostgreSQL binary as the cluster's OS user. */
async function pgRun(bin: string, args: string[]): Promise<string> {
  const exe = path.join(pgBinDir(), bin);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const { stdout } = await run(cmd, argv, { timeout: 120_000 });
  return stdout;
}

export async function startPrivatePostgres(prefix = 'sat-pg'): Promise<PrivatePostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const dataDir = path.join(dir, 'data');
  const sockDir = path.join(dir, 'run');
  const logFile = path.join(dir, 'postgres.log');
  fs.mkdirSync(sockDir);
  if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
  const port = await restartablePort(); // kept across restarts: see ports.ts
  await pgRun('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const opts = `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  const ctl = (...args: string[]) =>
    pgRun('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', opts, '-w', '-t', '60', ...args]);
  await ctl('start');

  const baseUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const name = 'sat_private';
  const admin = createClient(baseUrl, quietLog);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = `postgres://postgres@127.0.0.1:${port}/${name}`;
  await runMigrations(url);
  const pool = createPool(url, 10, { logger: quietLog });

  let running = true;
  const server: PrivatePostgres = {
    port,
    dataDir,
    logFile,
    database: {
      url,
      pool,
      async drop() {
        await pool.end().catch(() => undefined);
      },
    },
    async restart() {
      await ctl('restart', '-m', 'fast');
      running = true;
    },
    async stop(mode = 'fast') {
      await ctl('stop', '-m', mode);
      running = false;
    },
    async start() {
      await ctl('start');
      running = true;
    },
    async destroy() {
      await pool.end().catch(() => undefined);
      if (running) await ctl('stop', '-m', 'immediate').catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
