import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseEnv } from '../../src/config';

/**
 * docker-compose.yml, checked without a Docker engine (there is none on the development machines):
 *  - Debian's `docker-compose config` validates it and resolves it (anchors, merges, variables);
 *  - its wiring: every address a service is given (environment, Prometheus targets, Grafana's data source) names a
 *    service that listens on that port on a non-loopback interface, where "listens" comes from the service itself:
 *    for our processes, their own configuration module (src/config) applied to the environment compose gives them;
 *    for the official images, the settings they document (BIND_ON_IP, PROMETHEUS_ENDPOINT, fixed ports).
 */

const ROOT = path.resolve(__dirname, '../..');
const COMPOSE = path.join(ROOT, 'docker-compose.yml');
const REQUIRED = ['RABBITMQ_USER', 'RABBITMQ_PASS', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'GRAFANA_ADMIN_PASSWORD'];
const CREDENTIALS: Record<string, string> = {
  RABBITMQ_USER: 'trader',
  RABBITMQ_PASS: 'rabbit-secret',
  POSTGRES_USER: 'ledger',
  POSTGRES_PASSWORD: 'pg-secret',
  GRAFANA_ADMIN_PASSWORD: 'grafana-secret',
};
const ONE_SHOT = new Set(['migrate', 'temporal-schema', 'temporal-setup', 'dataflow']);

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test: string[] | string };
  restart?: string;
  profiles?: string[];
  volumes?: Array<string | { type: string; source: string }>;
}

let dockerCompose: string;

function composeConfig(env: Record<string, string | undefined>): Promise<{ code: number; out: string; err: string }> {
  // Only what the test passes: no .env, no stray variables of the machine running the tests.
  const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  return new Promise((resolve) =>
    execFile(
      dockerCompose,
      ['--project-directory', ROOT, '-f', COMPOSE, 'config'],
      { env: clean, maxBuffer: 8 * 1024 * 1024 },
      (err, out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: stderr }),
    ),
  );
}

/** The role a pipeline service runs: src/workers/<role>.ts (or the migrate CLI). */
function roleOf(svc: Service): string | undefined {
  const script = (svc.command ?? []).find((a) => a.startsWith('src/'));
  return script ? path.basename(script, '.ts') : undefined;
}

const LOOPBACK = /^(127\.|localhost$|::1$|\[::1\]$)/;

describe('docker-compose.yml', () => {
  let services: Record<string, Service>;

  beforeAll(async () => {
    dockerCompose = execFileSync('bash', [path.join(ROOT, 'scripts/provision/docker-compose.sh')], {
      encoding: 'utf8',
    }).trim();
    const r = await composeConfig(CREDENTIALS);
    expect(r.code, r.err).toBe(0);
    services = (parseYaml(r.out) as { services: Record<string, Service> }).services;
  }, 300_000);

  it("is valid for Debian's docker-compose with the credentials set", async () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'bar-store',
        'dataflow',
        'exchange-sim',
        'grafana',
        'migrate',
        'postgres',
        'prometheus',
        'quant',
        'rabbitmq',
        'signal-intake',
        'temporal',
        'temporal-schema',
        'temporal-setup',
        'temporal-ui',
        'trade-worker',
      ].sort(),
    );
  });

  it('refuses to start without each credential, naming it (no default credentials)', async () => {
    for (const name of REQUIRED) {
      const r = await composeConfig({ ...CREDENTIALS, [name]: undefined });
      expect(r.code, name).not.toBe(0);
      expect(r.err, name).toContain(`set ${name} in .env`);
    }
    const text = fs.readFileSync(COMPOSE, 'utf8');
    for (const name of REQUIRED) expect(text, name).not.toMatch(new RegExp(`\\$\\{${name}:?-`));
  });

  it('runs a production Temporal server on PostgreSQL with its schema set-up step, not start-dev', () => {
    const text = fs.readFileSync(COMPOSE, 'utf8');
    expect(text).not.toContain('start-dev');
    expect(services.temporal!.image).toMatch(/^temporalio\/server:/);
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres' });
    expect(services.temporal!.depends_on).toMatchObject({
      'temporal-schema': { condition: 'service_completed_successfully' },
    });
    expect(services['temporal-schema']!.image).toMatch(/^temporalio\/admin-tools:/);
    expect(services['temporal-ui']!.image).toMatch(/^temporalio\/ui:/);
    // Search attributes are registered on start, by the setup job every pipeline service waits for.
    const setup = fs.readFileSync(path.join(ROOT, 'deploy/temporal/setup-namespace.sh'), 'utf8');
    for (const sa of ['Symbol', 'Side', 'Strategy', 'TradeStatus']) expect(setup).toContain(sa);
    for (const s of ['trade-worker', 'signal-intake']) {
      expect(services[s]!.depends_on, s).toMatchObject({
        'temporal-setup': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('runs the signal intake inside the trade worker by default; a separate intake only with its profile', async () => {
    // Read through the trade worker's own configuration module, as the process would.
    const envOf = (svc: Service) =>
      Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, v ?? '']));
    const worker = parseEnv(envOf(services['trade-worker']!));
    expect(worker.rabbitmq.intakeInWorker).toBe(true);
    // A deployment reconciles on a schedule (npm start's short runs do not: RECONCILE_EVERY_MINUTES defaults to 0).
    expect(worker.temporal.reconcileEveryMinutes).toBe(15);
    expect(services['trade-worker']!.depends_on).toMatchObject({ rabbitmq: { condition: 'service_healthy' } });
    // Without the profile there is one consumer of intake.signals: the worker. Nothing started by default
    // may wait for the profiled process (compose would start it, and two intakes would consume).
    expect(services['signal-intake']!.profiles).toEqual(['intake-process']);
    for (const [name, svc] of Object.entries(services)) {
      expect(Object.keys(svc.depends_on ?? {}), name).not.toContain('signal-intake');
    }
    // Scale-out: INTAKE_IN_WORKER=false turns the worker's intake off for the profiled process.
    const r = await composeConfig({ ...CREDENTIALS, INTAKE_IN_WORKER: 'false' });
    expect(r.code, r.err).toBe(0);
    const off = (parseYaml(r.out) as { services: Record<string, Service> }).services;
    expect(parseEnv(envOf(off['trade-worker']!)).rabbitmq.intakeInWorker).toBe(false);
  });

  it('gives one-shot jobs on-failure restarts, long-running services healthchecks, and conditions on every dependency', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (ONE_SHOT.has(name)) expect(svc.restart, name).toBe('on-failure');
      else {
        expect(svc.restart, name).toBe('unless-stopped');
        expect(svc.healthcheck, `${name} has a healthcheck`).toBeDefined();
      }
      const deps = svc.depends_on ?? {};
      expect(Array.isArray(deps), `${name}: depends_on with conditions`).toBe(false);
      for (const [dep, d] of Object.entries(deps as Record<string, { condition?: string }>)) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        const wanted = ONE_SHOT.has(dep) ? 'service_completed_successfully' : 'service_healthy';
        expect(d.condition, `${name} → ${dep}`).toBe(wanted);
      }
    }
  });

  it('builds every pipeline role from one Dockerfile, with the data baked in or mounted from inside the repository', () => {
    const roles = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(roles.map(([n]) => n).sort()).toEqual(
      ['bar-store', 'dataflow', 'exchange-sim', 'migrate', 'quant', 'signal-intake', 'trade-worker'].sort(),
    );
    for (const [name, s] of roles) expect(s.build, name).toEqual(roles[0]![1].build);
    const dockerfile = fs.readFileSync(path.join(ROOT, 'scripts/docker/Dockerfile'), 'utf8');
    expect(dockerfile).toContain('COPY deploy/data ./data/replay');
    expect(services.dataflow!.environment!.REPLAY_DATA_DIR).toBe('/app/data/replay');
    expect(fs.readdirSync(path.join(ROOT, 'deploy/data')).filter((f) => f.endsWith('.csv')).length).toBe(2);
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0]! : v.type === 'bind' ? v.source : '';
        if (!source.startsWith('/') && !source.startsWith('.')) continue; // a named volume
        const abs = path.resolve(ROOT, source);
        expect(abs.startsWith(ROOT + path.sep), `${name} mounts ${source}`).toBe(true);
        expect(fs.existsSync(abs), `${name} mounts ${source}`).toBe(true);
      }
    }
  });

  it('wires every address to a service that listens there on a non-loopback interface', () => {
    /** service → port → interface it binds. */
    const listens = new Map<string, Map<number, string>>();
    const listen = (svc: string, port: number, host: string) => {
      if (!listens.has(svc)) listens.set(svc, new Map());
      listens.get(svc)!.set(port, host);
    };
    const splitHostPort = (hp: string): [string, number] => {
      const i = hp.lastIndexOf(':');
      return [hp.slice(0, i), Number(hp.slice(i + 1))];
    };
    for (const [name, s] of Object.entries(services)) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v ?? '']));
      const image = s.image?.split(':')[0] ?? '';
      const role = s.build !== undefined ? roleOf(s) : undefined;
      if (role && role !== 'migrate') {
        // Our own process: what src/config makes of exactly this environment.
        const cfg = parseEnv(env);
        listen(name, cfg.ops.ports[role as keyof typeof cfg.ops.ports], cfg.ops.host);
        if (role === 'exchange-sim') listen(name, cfg.env.SIM_EXCHANGE_PORT, cfg.env.SIM_EXCHANGE_BIND);
        if (role === 'trade-worker' && cfg.ops.sdkMetricsAddress) {
          const [h, p] = splitHostPort(cfg.ops.sdkMetricsAddress);
          listen(name, p, h);
        }
      } else if (image === 'temporalio/server') {
        listen(name, 7233, env.BIND_ON_IP ?? '127.0.0.1');
        if (env.PROMETHEUS_ENDPOINT) {
          const [h, p] = splitHostPort(env.PROMETHEUS_ENDPOINT);
          listen(name, p, h);
        }
      } else if (image === 'postgres') listen(name, 5432, '0.0.0.0');
      else if (image === 'rabbitmq') {
        listen(name, 5672, '0.0.0.0');
        listen(name, 15672, '0.0.0.0');
      } else if (image === 'temporalio/ui') listen(name, Number(env.TEMPORAL_UI_PORT || 8080), '0.0.0.0');
      else if (image === 'prom/prometheus') listen(name, 9090, '0.0.0.0');
      else if (image === 'grafana/grafana') listen(name, 3000, '0.0.0.0');
    }

    /** Every (host, port) a service is told to reach. */
    const wants: Array<{ from: string; host: string; port: number; via: string }> = [];
    const want = (from: string, host: string, port: number, via: string) => wants.push({ from, host, port, via });
    for (const [name, s] of Object.entries(services)) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v ?? '']));
      if (s.build !== undefined) {
        const cfg = parseEnv(env);
        const [th, tp] = splitHostPort(cfg.temporal.address);
        want(name, th, tp, 'TEMPORAL_ADDRESS');
        want(name, cfg.rabbitmq.host, cfg.rabbitmq.port, 'RABBITMQ_HOST:RABBITMQ_PORT');
        want(name, cfg.rabbitmq.host, cfg.rabbitmq.managementPort, 'RABBITMQ_HOST:RABBITMQ_MANAGEMENT_PORT');
        const db = new URL(cfg.databaseUrl);
        want(name, db.hostname, Number(db.port || 5432), 'DATABASE_URL');
        if (cfg.broker.kind === 'simulated')
          want(name, cfg.env.SIM_EXCHANGE_HOST, cfg.env.SIM_EXCHANGE_PORT, 'SIM_EXCHANGE_HOST');
      }
      if (env.TEMPORAL_ADDRESS && s.build === undefined) {
        const [h, p] = splitHostPort(env.TEMPORAL_ADDRESS);
        want(name, h, p, 'TEMPORAL_ADDRESS');
      }
      if (env.POSTGRES_SEEDS) want(name, env.POSTGRES_SEEDS, Number(env.DB_PORT || 5432), 'POSTGRES_SEEDS');
    }
    const prom = parseYaml(fs.readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    for (const job of prom.scrape_configs) {
      for (const t of job.static_configs.flatMap((c) => c.targets)) {
        const [h, p] = splitHostPort(t);
        want('prometheus', h, p, `scrape job ${job.job_name}`);
      }
    }
    const grafana = parseYaml(
      fs.readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
    ) as { datasources: Array<{ url: string }> };
    for (const ds of grafana.datasources) {
      const u = new URL(ds.url);
      want('grafana', u.hostname, Number(u.port), 'data source');
    }

    expect(wants.length).toBeGreaterThan(40);
    const problems: string[] = [];
    for (const w of wants) {
      const where = `${w.from} → ${w.host}:${w.port} (${w.via})`;
      const target = listens.get(w.host);
      if (!services[w.host]) problems.push(`${where}: no service named ${w.host}`);
      else if (!target?.has(w.port)) problems.push(`${where}: ${w.host} does not listen on ${w.port}`);
      else if (LOOPBACK.test(target.get(w.port)!)) {
        problems.push(`${where}: ${w.host} listens on ${target.get(w.port)} only (loopback)`);
      }
    }
    expect(problems).toEqual([]);
    // Every scrape target of ours is a role Prometheus actually reaches, and every pipeline role is scraped.
    const scraped = new Set(wants.filter((w) => w.from === 'prometheus').map((w) => w.host));
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined && roleOf(s) !== 'migrate') expect(scraped.has(name), `${name} scraped`).toBe(true);
    }
  });

  it('checks health the way each process reports it: its own /readyz port', () => {
    for (const [name, s] of Object.entries(services)) {
      const role = s.build !== undefined ? roleOf(s) : undefined;
      if (!role || ONE_SHOT.has(name)) continue; // a one-shot job is waited for by its exit, not its health
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v ?? '']));
      const cfg = parseEnv(env);
      const test = [s.healthcheck?.test ?? []].flat().join(' ');
      expect(test, name).toContain(`http://127.0.0.1:${cfg.ops.ports[role as keyof typeof cfg.ops.ports]}/readyz`);
    }
  });
});
