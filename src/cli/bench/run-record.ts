/**
 * Interrupted runs: a run records on disk what it created (database, vhost, task queue, service pids) while it
 * runs; the next run cleans up after any run whose process is gone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { dropScratchDatabase } from '../../adapters/postgres/scratch-database';
import type { RabbitManagement } from '../../adapters/rabbitmq';
import type { Config } from '../../config';
import { ROOT, say } from './constants';

/**
 * What a run created, on disk while it runs. Ctrl-C normally cleans up (services stopped, database and vhost
 * dropped, unfinished workflows terminated), but the tsx wrapper SIGKILLs a child that does not acknowledge a
 * signal within 30 ms (easy on a busy machine), so the next run cleans up after any run whose process is gone.
 */
interface RunMarker {
  pid: number;
  runId: string;
  database: string;
  vhost: string;
  taskQueue: string;
  temporalAddress: string;
  /** Service processes (and their children). */
  pids: number[];
}

const RUNS_DIR = path.join(ROOT, 'bench-results', '.runs');
/** Command lines of the processes a run starts (also those of runs by older versions of the benchmark). */
const SERVICE_CMDLINE = /src\/workers\/|bench\/tuned-worker\.ts|bench-trades\.ts --internal-worker|start-dev/;

function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export class RunRecord {
  private readonly file: string;
  constructor(private readonly m: RunMarker) {
    fs.mkdirSync(RUNS_DIR, { recursive: true });
    this.file = path.join(RUNS_DIR, `${m.runId}.json`);
    this.save();
  }
  addService(pid: number | undefined): void {
    if (!pid) return;
    this.m.pids = [...new Set([...this.m.pids, pid, ...childPids(pid)])];
    this.save();
  }
  remove(): void {
    fs.rmSync(this.file, { force: true });
  }
  private save(): void {
    fs.writeFileSync(this.file, `${JSON.stringify(this.m)}\n`);
  }
}

export async function cleanUpInterruptedRuns(cfg: Config, management: RabbitManagement): Promise<void> {
  if (!fs.existsSync(RUNS_DIR)) return;
  for (const f of fs.readdirSync(RUNS_DIR).filter((x) => x.endsWith('.json'))) {
    let m: RunMarker;
    try {
      m = JSON.parse(fs.readFileSync(path.join(RUNS_DIR, f), 'utf8')) as RunMarker;
    } catch {
      continue;
    }
    if (/bench-trades|bench\/trades\.ts/.test(cmdlineOf(m.pid))) continue; // still running
    for (const pid of m.pids) {
      // Only what is still one of its services (a pid may have been reused since).
      if (SERVICE_CMDLINE.test(cmdlineOf(pid))) process.kill(pid, 'SIGTERM');
    }
    await dropScratchDatabase(cfg.databaseUrl, m.database);
    await management.deleteVhost(m.vhost).catch(() => undefined);
    let terminated = 0;
    try {
      const connection = await Connection.connect({ address: m.temporalAddress, connectTimeout: 2000 });
      const client = new Client({ connection, namespace: cfg.temporal.namespace });
      for await (const w of client.workflow.list({
        query: `TaskQueue = "${m.taskQueue}" AND ExecutionStatus = "Running"`,
      })) {
        await client.workflow
          .getHandle(w.workflowId)
          .terminate('bench-trades: the run was interrupted')
          .then(
            () => terminated++,
            () => undefined,
          );
      }
      await connection.close();
    } catch {
      // a private dev server of that run is gone with its workflows
    }
    fs.rmSync(path.join(RUNS_DIR, f), { force: true });
    say(`cleaned up after interrupted run ${m.runId}: database, vhost, ${terminated} unfinished workflows`);
  }
}
