import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { EPHEMERAL_OPS_ENV, parseEnv, type Config } from '../../src/config';
import { ServiceRunner, type ServiceProcess } from '../../src/cli/service-runner';
import { sleep } from '../../src/lib/sleep';

/**
 * The cluster profile (scripts/stack-up.sh --cluster, docs/scaling.md) as the cluster test tier sees it:
 * scripts/test.sh exports its settings (TEMPORAL_ADDRESS of the Temporal server on PostgreSQL, RABBITMQ_NODES of
 * the three-node RabbitMQ cluster, RABBITMQ_PORT/MANAGEMENT_PORT of node 1). Faults go through the profile's own
 * scripts (scripts/provision/rabbitmq-cluster.sh kill|start N, temporal-server.sh stop|start), so the test breaks
 * and mends the real servers the way an operator would.
 */

const ROOT = path.resolve(__dirname, '../..');
export const CLUSTER_LOG_DIR = path.join(ROOT, '.data/test-logs');
const run = promisify(execFile);

export function clusterConfig(): Config {
  const cfg = parseEnv(process.env);
  if (cfg.rabbitmq.urls.length < 3) {
    throw new Error(
      'the cluster tier needs the cluster profile: run it through `bash scripts/test.sh cluster` (RABBITMQ_NODES is unset)',
    );
  }
  return cfg;
}

/**
 * Under `npm test` the cluster tier's vitest starts while the cluster profile is still coming up (on a fresh
 * machine: while its Temporal server is still being built), so that its own start-up is off the run's critical
 * path. scripts/test.sh then names a file in CLUSTER_PROFILE_READY_FILE and writes `ready` to it once the profile
 * is up, or why not (`failed`, `stopped`): nothing touches the profile's servers before this returns. Without
 * the variable (`bash scripts/test.sh cluster`: the profile is up before vitest starts) it returns at once.
 */
export async function awaitClusterProfile(): Promise<void> {
  const file = process.env.CLUSTER_PROFILE_READY_FILE;
  if (!file) return;
  for (;;) {
    let state = '';
    try {
      state = (await readFile(file, 'utf8')).trim();
    } catch {
      // not written yet
    }
    if (state === 'ready') return;
    if (state) throw new Error(`the cluster profile did not come up (${state}; see .data/logs/cluster-profile-up.log)`);
    await sleep(200);
  }
}

/** Run one of the profile's scripts (stderr kept for the failure message). */
export async function clusterScript(script: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/provision', script), ...args], {
      cwd: ROOT,
      env: process.env,
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Management API ports of the nodes, in node order (node i: 15700 + i, scripts/cluster/env.sh). */
export function managementPorts(cfg: Config): number[] {
  return cfg.rabbitmq.urls.map((u) => Number(new URL(u).port) + 10_000);
}

/** GET from the management API of the first node that answers (any node sees the whole cluster). */
export async function managementGet<T>(cfg: Config, apiPath: string): Promise<T> {
  const auth = Buffer.from(`${cfg.rabbitmq.user}:${cfg.env.RABBITMQ_PASS}`).toString('base64');
  let last: unknown;
  for (const port of managementPorts(cfg)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api${apiPath}`, {
        headers: { authorization: `Basic ${auth}` },
        signal: AbortSignal.timeout(5_000),
      });
      if (res.ok) return (await res.json()) as T;
      last = new Error(`HTTP ${res.status} ${await res.text()}`);
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no node's management API answered ${apiPath}: ${String(last)}`);
}

export interface QuorumQueueInfo {
  leader?: string;
  members?: string[];
  online?: string[];
  messages?: number;
  consumers?: number;
  type?: string;
}

/** A queue's type, Raft leader and members (node names sat-c<i>@localhost). */
export async function queueInfo(cfg: Config, vhost: string, queue: string): Promise<QuorumQueueInfo> {
  return managementGet<QuorumQueueInfo>(cfg, `/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`);
}

/** The node number (1..3) of a node name like sat-c2@localhost. */
export function nodeNumber(nodeName: string): number {
  const m = /(\d+)@/.exec(nodeName);
  if (!m) throw new Error(`not a cluster node name: ${nodeName}`);
  return Number(m[1]);
}

export type ClusterRole = 'trade-worker' | 'signal-intake';
const SCRIPTS: Record<ClusterRole, { script: string; ready: RegExp }> = {
  'trade-worker': { script: 'src/workers/trade-worker.ts', ready: /trade worker running/ },
  'signal-intake': { script: 'src/workers/signal-intake.ts', ready: /signal intake running/ },
};

/**
 * Replicas of the pipeline's roles (`trade-worker-1`, `trade-worker-2`, ...) on the one ServiceRunner that
 * npm start and the other tests use: each in its own process group, so a SIGKILL takes the whole replica.
 */
export class Replicas {
  readonly runner: ServiceRunner;
  constructor(
    private readonly tag: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.runner = new ServiceRunner({
      logDir: CLUSTER_LOG_DIR,
      logName: (name) => `${tag}-${name}.log`,
      env: { ...env, ...EPHEMERAL_OPS_ENV },
      cwd: ROOT,
    });
  }

  async start(role: ClusterRole, n: number, timeoutMs = 180_000): Promise<ServiceProcess> {
    const { script, ready } = SCRIPTS[role];
    const svc = this.runner.start(`${role}-${n}`, { script: path.join(ROOT, script) });
    await svc.waitReady({ line: ready, timeoutMs });
    return svc;
  }

  get(name: string): ServiceProcess | undefined {
    return this.runner.get(name);
  }

  running(): string[] {
    return this.runner
      .all()
      .filter((s) => s.running)
      .map((s) => s.name)
      .sort();
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.runner.all().map((s) => s.stop({ graceMs: 10_000 })));
  }
}
