import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ServiceRunner, type ServiceProcess } from '../../src/cli/service-runner';
import { PRECOMPILED_DIR, precompileServices, precompiledScript } from '../../src/cli/precompiled-services';

/**
 * The one child-process runner (npm start, bench:trades, the end-to-end tests) on real processes: Node scripts
 * that print, ignore SIGTERM, start grandchildren. What it guarantees: the whole process group goes on a stop (a
 * crash test's SIGKILL leaves nothing running; a graceful stop sweeps what the leader left behind), SIGKILL
 * follows SIGTERM only after the grace period, readiness fails fast when the process dies, and a drained stop waits
 * for the queue.
 */

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sat-service-runner-'));
const runner = new ServiceRunner({ logDir });
const node = (code: string) => ({ command: process.execPath, args: ['-e', code] });

/** A process is gone once signal 0 fails or it is a zombie (dead, waiting to be reaped by whoever adopted it). */
async function gone(pid: number, withinMs = 10_000): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    try {
      process.kill(pid, 0);
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    } catch {
      return true;
    }
    if (Date.now() - t0 > withinMs) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A grandchild that ignores SIGTERM (and says so once its handler is in place), started by a leader that prints its pid. */
const WITH_GRANDCHILD = `
  const { spawn } = require('node:child_process');
  const g = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('grandchild ready'); setInterval(() => {}, 1000)"],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  console.log('grandchild ' + g.pid);
  process.on('SIGTERM', () => process.exit(0));
  setInterval(() => {}, 1000);
`;

/**
 * Both lines of WITH_GRANDCHILD, in either order: on a loaded machine the leader can be descheduled between the
 * spawn and its own line, and the grandchild's "ready" then comes first.
 */
const GRANDCHILD_READY = /^(?=[\s\S]*grandchild \d+)(?=[\s\S]*grandchild ready)/;

/** Grandchildren seen, killed after each test whatever its outcome (a failed test must not leave one running). */
const grandchildren: number[] = [];
const grandchildPid = (svc: ServiceProcess) => {
  const pid = Number(/grandchild (\d+)/.exec(svc.output())![1]);
  grandchildren.push(pid);
  return pid;
};

afterEach(() => {
  runner.signalAll('SIGKILL');
  for (const pid of grandchildren.splice(0)) {
    try {
      // Only if the pid is still our grandchild (not reused since).
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('grandchild ready')) process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
});
afterAll(() => fs.rmSync(logDir, { recursive: true, force: true }));

describe('ServiceRunner', () => {
  it('is ready on its log line; keeps its output, writes its log file and hands over whole lines', async () => {
    const lines: string[] = [];
    const svc = runner.start('printer', {
      ...node(`process.stdout.write('par'); setTimeout(() => { console.log('tial line'); console.error('to stderr');
        console.log(JSON.stringify({ message: 'ops endpoint listening', url: 'http://127.0.0.1:1234' }));
        console.log('service running'); }, 200); setInterval(() => {}, 1000);`),
      onLine: (line, isErr) => lines.push(`${isErr ? 'err' : 'out'}:${line}`),
    });
    await svc.waitReady({ line: /service running/, timeoutMs: 30_000 });
    // stdout and stderr are separate pipes: their lines keep their order within a stream, not across streams.
    expect(lines.filter((l) => l.startsWith('out:')).slice(0, 2)).toEqual([
      'out:partial line',
      'out:{"message":"ops endpoint listening","url":"http://127.0.0.1:1234"}',
    ]);
    await vi.waitFor(() => expect(lines).toContain('err:to stderr'), { timeout: 10_000 });
    expect(svc.opsUrl()).toBe('http://127.0.0.1:1234');
    await svc.stop();
    expect(await svc.exited).toBeNull(); // ended by SIGTERM
    expect(svc.running).toBe(false);
    const log = fs.readFileSync(path.join(logDir, 'printer.log'), 'utf8');
    expect(log).toContain('partial line');
    expect(log).toContain('to stderr');
  });

  it('readiness fails at once, with the output, when the service exits before it is ready', async () => {
    const svc = runner.start('dies', node(`console.error('cannot connect'); process.exit(3)`));
    await expect(svc.waitReady({ line: /never/, timeoutMs: 60_000 })).rejects.toThrow(
      /dies exited \(3\) before ready:[\s\S]*cannot connect/,
    );
  });

  it('readiness by probe, whatever the log says', async () => {
    const svc = runner.start('quiet', node(`setInterval(() => {}, 1000)`));
    let calls = 0;
    await svc.waitReady({ probe: async () => ++calls >= 3, timeoutMs: 30_000 });
    expect(calls).toBe(3);
    await svc.stop();
  });

  it('a spawn failure is an exit before ready, not a crash of the job', async () => {
    const svc = runner.start('missing', { command: path.join(logDir, 'no-such-binary') });
    // The ready line must not occur in the spawn error, which quotes the (random) temp path of the binary.
    await expect(svc.waitReady({ line: /service is ready/, timeoutMs: 30_000 })).rejects.toThrow(
      /missing exited .* before ready/,
    );
    expect(await svc.exited).toBeNull();
  });

  it('SIGKILL (a crash test) takes down the whole process group, grandchildren included', async () => {
    const svc = runner.start('crash', node(WITH_GRANDCHILD));
    await svc.waitReady({ line: GRANDCHILD_READY, timeoutMs: 30_000 });
    const g = grandchildPid(svc);
    await svc.stop({ signal: 'SIGKILL' });
    expect(await gone(g)).toBe(true);
  });

  it('a TypeScript service stops gracefully when the job that started it is SIGKILLed (its lifeline closes)', async () => {
    // The job is killed, not the service: nothing relays a SIGKILL, and the service leads its own process group.
    const marker = path.join(logDir, `lifeline-${process.pid}.txt`);
    const job = runner.start('lifeline-job', {
      script: path.resolve(__dirname, '../fixtures/processes/lifeline-parent.ts'),
      env: { ...process.env, LIFELINE_MARKER: marker },
    });
    await job.waitReady({ line: /^child \d+$/m, timeoutMs: 60_000 });
    const childPid = Number(/^child (\d+)$/m.exec(job.output())![1]);
    try {
      expect(await gone(childPid, 500)).toBe(false); // alive while its job is
      process.kill(job.child.pid!, 'SIGKILL'); // the job's leader only, as an OOM kill would
      expect(await gone(childPid, 30_000)).toBe(true);
      expect(fs.readFileSync(marker, 'utf8')).toBe('stopped on SIGTERM\n'); // its own graceful stop ran
    } finally {
      try {
        if (fs.readFileSync(`/proc/${childPid}/cmdline`, 'utf8').includes('lifeline-child')) {
          process.kill(childPid, 'SIGKILL');
        }
      } catch {
        // gone, as it should be
      }
    }
  });

  it('a service under src/ starts from its compiled copy while that is current, with the lifeline preloaded', async () => {
    // What npm test and npm start build (dist/services/): rebuilt here so the copy is current whatever was edited
    // since (the swap is atomic: parallel test files starting services meanwhile see the old or the new copy).
    await precompileServices();
    const script = path.resolve(__dirname, '../../src/workers/exchange-sim.ts');
    const compiled = path.join(PRECOMPILED_DIR, 'workers/exchange-sim.js');
    expect(precompiledScript(script)).toBe(compiled);
    const svc = runner.start('compiled', { script, args: ['--help'] });
    expect(await svc.exited).toBe(0);
    expect(svc.output()).toContain('Usage: tsx src/workers/exchange-sim.ts');
    const args = svc.child.spawnargs.slice(1);
    expect(args).toEqual([
      '--require',
      path.resolve(__dirname, '../../src/lib/parent-lifeline.cjs'),
      compiled,
      '--help',
    ]);
    // Outside src/ (test fixtures) there is no compiled copy: those run from source with tsx.
    expect(precompiledScript(path.resolve(__dirname, '../fixtures/processes/lifeline-parent.ts'))).toBeUndefined();
  });

  it('a graceful stop lets the leader exit on SIGTERM, then removes what it left behind in its group', async () => {
    const svc = runner.start('graceful', node(WITH_GRANDCHILD));
    await svc.waitReady({ line: GRANDCHILD_READY, timeoutMs: 30_000 });
    const g = grandchildPid(svc);
    await svc.stop();
    expect(await svc.exited).toBe(0); // the leader's own SIGTERM handler ran
    expect(await gone(g)).toBe(true); // the grandchild ignored SIGTERM: the sweep's SIGKILL took it
  });

  it('SIGKILL follows SIGTERM only when the service does not exit within the grace period', async () => {
    const svc = runner.start(
      'stubborn',
      node(`process.on('SIGTERM', () => console.log('SIGTERM ignored'));
      console.log('ready'); setInterval(() => {}, 1000);`),
    );
    await svc.waitReady({ line: /ready/, timeoutMs: 30_000 });
    let killed = 0;
    await svc.stop({ graceMs: 1000, onKill: () => killed++ });
    expect(killed).toBe(1);
    expect(svc.output()).toContain('SIGTERM ignored');
    expect(svc.child.signalCode).toBe('SIGKILL');

    const polite = runner.start(
      'polite',
      node(`process.on('SIGTERM', () => process.exit(0)); console.log('ready');
      setInterval(() => {}, 1000);`),
    );
    await polite.waitReady({ line: /ready/, timeoutMs: 30_000 });
    await polite.stop({ graceMs: 60_000, onKill: () => killed++ });
    expect(killed).toBe(1);
    expect(await polite.exited).toBe(0);
  });

  it('a drained stop waits until the queue is empty twice in a row, then stops', async () => {
    const svc = runner.start(
      'consumer',
      node(`process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`),
    );
    const depths = [5, 0, 2, 0, 0];
    const seen: Array<[number, boolean]> = [];
    await svc.drainAndStop(async () => {
      const d = depths.shift() ?? 0;
      seen.push([d, svc.running]);
      return d === 0;
    });
    // Asked until two empty answers in a row, running all along: never stopped while messages were queued.
    expect(seen).toEqual([
      [5, true],
      [0, true],
      [2, true],
      [0, true],
      [0, true],
    ]);
    expect(await svc.exited).toBe(0);
  });

  it('the runner keeps the latest process under a name (a restart replaces it)', async () => {
    const a = runner.start('restarted', node(`setInterval(() => {}, 1000)`));
    await a.stop({ signal: 'SIGKILL' });
    const b = runner.start('restarted', node(`setInterval(() => {}, 1000)`));
    expect(runner.get('restarted')).toBe(b);
    expect(b.pid).not.toBe(a.pid);
    await runner.stopInOrder(['restarted']);
    expect(b.running).toBe(false);
  });
});
