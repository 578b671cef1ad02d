/**
 * `npm run bench:trades -- --cluster`: the same benchmark twice in one run, first on the dev stack (Temporal dev
 * server on SQLite, one RabbitMQ node), then on the cluster profile (the Temporal server on PostgreSQL, a three-node
 * RabbitMQ cluster; docs/scaling.md), with the same options, and the two side by side with the ratio cluster / dev.
 *
 * Each pass is a child run of this benchmark (its own database, vhost, task queue and services; its full report
 * printed as usual, its JSON under <out>/compare-<time>/<profile>/). The cluster pass gets the cluster profile's
 * connection settings from scripts/cluster/print-env.sh (their one source, scripts/cluster/env.sh) and
 * `--profile cluster`, so it samples the right server processes.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { inheritedEnv } from '../../config';
import { tsxCommand } from '../service-runner';
import { ROOT, say } from './constants';
import type { BenchOptions } from './options';
import type { BenchJson } from './report';
import { orderSourceLine, sideBySideRows } from './comparison';
import { f1, table } from './stats';

type Profile = BenchOptions['profile'];

/** argv without --cluster, --profile and --out (each pass gets its own), and --no-baseline unless --baseline. */
export function passArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--cluster') continue;
    if (a === '--profile' || a === '--out') {
      i++;
      continue;
    }
    if (a.startsWith('--profile=') || a.startsWith('--out=')) continue;
    out.push(a);
  }
  // Each pass is a plain run, which would measure the baseline by default: only when --baseline was given.
  if (!out.some((a) => a === '--baseline' || a.startsWith('--baseline='))) out.push('--no-baseline');
  return out;
}

/** The cluster profile's settings (TEMPORAL_ADDRESS, RABBITMQ_NODES, ...) from scripts/cluster/print-env.sh. */
function clusterSettings(): Record<string, string> {
  const text = execFileSync('bash', [path.join(ROOT, 'scripts/cluster/print-env.sh')], { cwd: ROOT }).toString();
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  if (!env.TEMPORAL_ADDRESS || !env.RABBITMQ_NODES) throw new Error(`scripts/cluster/print-env.sh printed no settings`);
  return env;
}

async function runPass(profile: Profile, args: string[], dir: string, env: NodeJS.ProcessEnv): Promise<BenchJson> {
  fs.mkdirSync(dir, { recursive: true });
  const cmd = tsxCommand(path.join(ROOT, 'src/cli/bench/trades.ts'), [...args, '--profile', profile, '--out', dir]);
  say(`── ${profile} profile: ${[...args, '--profile', profile].join(' ')}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(cmd.command, cmd.args, { cwd: ROOT, env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const json = fs.readdirSync(dir).find((f) => /^trades-.*\.json$/.test(f));
  if (!json) throw new Error(`the ${profile} pass wrote no report (exit ${code}); its output is above`);
  return JSON.parse(fs.readFileSync(path.join(dir, json), 'utf8')) as BenchJson;
}

/** The figures both passes print, side by side. */
export function formatComparison(dev: BenchJson, cluster: BenchJson): string {
  const rows = sideBySideRows(dev, cluster);
  const loss = (j: BenchJson) =>
    `${j.loss.zeroLoss ? 'zero loss' : 'LOSS'} (${j.loss.published} published, ${j.loss.workflowsOnTaskQueue} workflows, ` +
    `${j.loss.ledgerFilled} filled, ${j.loss.venueOrdersFound} venue orders)`;
  return [
    '',
    '══ bench:trades --cluster: dev stack vs cluster profile (same options, same run) ══',
    `dev:     ${dev.setup.temporal}; JSON ${dev.jsonPath}`,
    `cluster: ${cluster.setup.temporal}; JSON ${cluster.jsonPath}`,
    orderSourceLine(dev, cluster, ['dev', 'cluster']),
    table(['', 'dev', 'cluster', 'cluster / dev'], rows),
    `dev:     ${loss(dev)}`,
    `cluster: ${loss(cluster)}`,
    `load average before/after: dev ${dev.machine.loadBefore.map(f1).join(' ')} / ${dev.machine.loadAfter.map(f1).join(' ')}, ` +
      `cluster ${cluster.machine.loadBefore.map(f1).join(' ')} / ${cluster.machine.loadAfter.map(f1).join(' ')}`,
  ].join('\n');
}

/** Run both passes; exit code 0 only when both completed with zero loss. */
export async function compareProfiles(argv: readonly string[], opts: BenchOptions): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.join(opts.out, `compare-${stamp}`);
  const args = passArgs(argv);
  const settings = clusterSettings();
  const dev = await runPass('dev', args, path.join(dir, 'dev'), inheritedEnv());
  const cluster = await runPass('cluster', args, path.join(dir, 'cluster'), { ...inheritedEnv(), ...settings });
  const text = formatComparison(dev, cluster);
  fs.writeFileSync(path.join(dir, 'comparison.txt'), `${text}\n`);
  process.stdout.write(`${text}\n`);
  return dev.loss.zeroLoss && cluster.loss.zeroLoss ? 0 : 1;
}
