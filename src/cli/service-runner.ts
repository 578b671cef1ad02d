/**
 * The one child-process runner for the pipeline's services (exchange-sim, trade-worker, signal-intake, bar-store,
 * quant, dataflow, and a private `temporal server start-dev` for the benchmark). Used by `npm start`
 * (cli/pipeline.ts), the trade benchmark (cli/bench/) and the end-to-end and fault-injection tests
 * (test/support/pipeline.ts), so all three spawn, log, wait for readiness, stop and drain the same way.
 *
 * - A TypeScript service runs as Node itself with tsx's hooks, not through the tsx CLI: the CLI runs the script in
 *   a grandchild that a SIGKILL of the CLI (which cannot relay it) would orphan, still consuming and trading.
 * - Each service is the leader of its own process group (`detached`): a terminal Ctrl-C reaches only the job,
 *   which stops its services in order instead of all at once, and a stop or a crash test's SIGKILL signals the
 *   whole group, so nothing the service started outlives it.
 * - A TypeScript service stops by itself when the process that started it dies, even by SIGKILL (which nothing
 *   can relay to the services' own groups): lib/parent-lifeline.cjs watches a pipe this process holds.
 * - A stop is SIGTERM first (each service finishes what it holds: in-flight activities, un-acked messages), and
 *   SIGKILL only after the grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep } from '../lib/sleep';
import { precompiledScript } from './precompiled-services';

/** How to start one service. */
export interface ServiceSpec {
  /** A TypeScript entry point (run by Node with tsx's hooks), or `command` for any other executable. */
  script?: string;
  command?: string;
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each complete output line as it arrives (stderr: `isErr`). */
  onLine?: (line: string, isErr: boolean) => void;
}

export interface ReadyOptions {
  /** Ready once the output matches this (the service's "running" log line). */
  line?: RegExp;
  /** …or once this answers true (independent of the log level: consuming its queue, polling its task queue). */
  probe?: () => Promise<boolean>;
  timeoutMs?: number;
  intervalMs?: number;
}

export interface StopOptions {
  /** SIGTERM (graceful, the default), or e.g. SIGKILL for a crash. */
  signal?: NodeJS.Signals;
  /** After a graceful signal, SIGKILL the group if it has not exited within this (default: wait as long as it takes). */
  graceMs?: number;
  /** Called when the grace period ran out, before the SIGKILL. */
  onKill?: () => void;
}

/** A TCP port free on 127.0.0.1 right now (for a service's listener: the venue, a private Temporal server). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** `node --require tsx/preflight --import tsx <script> <args>` (tsx resolved from the child's cwd). */
export function tsxCommand(script: string, args: readonly string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--require', 'tsx/preflight', '--import', 'tsx', script, ...args] };
}

/** lib/parent-lifeline.cjs, preloaded into the runner's TypeScript services. */
const PARENT_LIFELINE = path.resolve(__dirname, '../lib/parent-lifeline.cjs');

/** Signal a detached child's process group (its pid is the group id); no-op when the group is gone. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** How long stop() waits, after the exit, for the log file to be written out and closed. */
const LOG_CLOSE_WAIT_MS = 2_000;

/** One running (or exited) service process. */
export class ServiceProcess<N extends string = string> {
  /** The exit code; null when a signal ended it (or it never started). */
  readonly exited: Promise<number | null>;
  /** The log file is complete and closed: its last writes land after the exit, when the child's pipes close. */
  private readonly logClosed: Promise<void>;
  private out = '';
  private lastOpsUrl: string | undefined;
  private spawnFailed = false;

  constructor(
    readonly name: N,
    readonly child: ChildProcess,
    logFile: string,
    private readonly keepOutputChars: number,
    onLine?: (line: string, isErr: boolean) => void,
  ) {
    const log = fs.createWriteStream(logFile, { flags: 'a' });
    log.on('error', () => undefined); // a log file problem must not take the job down
    this.logClosed = new Promise((resolve) => {
      log.once('close', resolve);
      log.once('error', () => resolve());
    });
    let resolveExit: (code: number | null) => void = () => undefined;
    this.exited = new Promise((resolve) => (resolveExit = resolve));
    child.on('exit', (code) => resolveExit(code));
    child.on('error', (err) => {
      // A failed spawn surfaces as an exit before ready, with the reason in the output.
      this.append(`\nspawn failed: ${err.message}\n`);
      if (child.pid === undefined) {
        this.spawnFailed = true;
        resolveExit(null);
      }
    });
    for (const [stream, isErr] of [
      [child.stdout, false],
      [child.stderr, true],
    ] as const) {
      let buf = '';
      stream?.on('data', (d: Buffer) => {
        if (!log.writableEnded) log.write(d);
        const text = d.toString();
        this.append(text);
        buf += text;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.noteOpsUrl(line);
          onLine?.(line, isErr);
        }
      });
    }
    // The log closes with the child's pipes ('close' comes after the last output), not at 'exit'.
    child.on('close', () => log.end());
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.spawnFailed && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Its output so far (the last `keepOutputChars` of it). */
  output(): string {
    return this.out;
  }

  /** Base URL of its /metrics, /healthz and /readyz endpoint, from its "ops endpoint listening" log line. */
  opsUrl(): string | undefined {
    return this.lastOpsUrl;
  }

  /** Its /readyz answers 200: its real connections work. */
  async readyz(): Promise<boolean> {
    if (!this.lastOpsUrl) return false;
    return fetch(`${this.lastOpsUrl}/readyz`, { signal: AbortSignal.timeout(5000) })
      .then((r) => r.ok)
      .catch(() => false);
  }

  async waitReady(opts: ReadyOptions): Promise<void> {
    const { line, probe, timeoutMs = 120_000, intervalMs = 100 } = opts;
    const t0 = Date.now();
    for (;;) {
      if (line?.test(this.out)) return;
      if (probe && (await probe().catch(() => false))) return;
      if (!this.running) {
        const how = this.child.exitCode ?? this.child.signalCode ?? 'spawn failed';
        throw new Error(`${this.name} exited (${how}) before ready:\n${this.out.slice(-3000)}`);
      }
      if (Date.now() - t0 > timeoutMs)
        throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.out.slice(-3000)}`);
      await sleep(intervalMs);
    }
  }

  /** Send a signal to its whole process group without waiting. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) signalGroup(this.child, sig);
  }

  /**
   * Signal the process group and wait for the exit; SIGKILL after `graceMs` if given. Once the leader has
   * exited, whatever it left behind in its group is killed too.
   */
  async stop(opts: StopOptions = {}): Promise<void> {
    const { signal = 'SIGTERM', graceMs, onKill } = opts;
    if (!this.running) return;
    signalGroup(this.child, signal);
    if (signal !== 'SIGKILL' && graceMs !== undefined) {
      const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        onKill?.();
        signalGroup(this.child, 'SIGKILL');
      }
    }
    await this.exited;
    if (signal !== 'SIGKILL') signalGroup(this.child, 'SIGKILL');
    // Stopped means its log is whole: the writes of its last output are asynchronous and may still be in flight
    // at the exit. Bounded, in case a process outside the group still holds the pipes open.
    await Promise.race([this.logClosed, sleep(LOG_CLOSE_WAIT_MS)]);
  }

  /**
   * Wait until a consumer's queue is empty (`isDrained` twice in a row, 300 ms apart), while it runs and `abort`
   * is not signalled. Its producers must already be stopped.
   */
  async waitDrained(isDrained: () => Promise<boolean>, abort?: AbortSignal): Promise<void> {
    let empty = 0;
    while (this.running && empty < 2 && !abort?.aborted) {
      empty = (await isDrained().catch(() => true)) ? empty + 1 : 0;
      if (empty < 2) await sleep(300);
    }
  }

  /**
   * Stop a consumer once its queue is empty: the messages still queued are processed first, and the consumer's
   * own shutdown (SIGTERM) waits for the ones it holds un-acked.
   */
  async drainAndStop(
    isDrained: () => Promise<boolean>,
    opts: StopOptions & { abort?: AbortSignal } = {},
  ): Promise<void> {
    await this.waitDrained(isDrained, opts.abort);
    await this.stop(opts);
  }

  private append(text: string): void {
    this.out += text;
    if (this.out.length > this.keepOutputChars) this.out = this.out.slice(-this.keepOutputChars);
  }

  private noteOpsUrl(line: string): void {
    if (!line.includes('ops endpoint listening')) return;
    try {
      this.lastOpsUrl = (JSON.parse(line) as { url?: string }).url ?? this.lastOpsUrl;
    } catch {
      // not a log line
    }
  }
}

export interface ServiceRunnerOptions {
  /** Where each service's log goes: `<logDir>/<logName(name)>` (appended, kept across restarts). */
  logDir: string;
  logName?: (name: string) => string;
  /** Defaults for every service. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output kept in memory per service (default: all of it). */
  keepOutputChars?: number;
}

/** A set of named services: started, looked up, restarted (a new process under the same name) and stopped. */
export class ServiceRunner<N extends string = string> {
  readonly services = new Map<N, ServiceProcess<N>>();

  constructor(private readonly opts: ServiceRunnerOptions) {
    fs.mkdirSync(opts.logDir, { recursive: true });
  }

  start(name: N, spec: ServiceSpec): ServiceProcess<N> {
    if (!spec.script && !spec.command) throw new Error(`service ${name}: neither script nor command`);
    // A TypeScript service also gets the lifeline (fd 3, lib/parent-lifeline.cjs): it stops when this process dies,
    // even by SIGKILL, which its own process group would otherwise outlive. Other commands (a private Temporal dev
    // server) cannot preload it. It runs from its compiled copy when one is current (precompiled-services.ts: half
    // the start-up CPU), else from source with tsx's hooks.
    const compiled = spec.script ? precompiledScript(spec.script) : undefined;
    const cmd = compiled
      ? { command: process.execPath, args: [compiled, ...(spec.args ?? [])] }
      : spec.script
        ? tsxCommand(spec.script, spec.args)
        : { command: spec.command!, args: [...(spec.args ?? [])] };
    const entry = compiled ?? spec.script;
    if (entry) cmd.args.splice(cmd.args.indexOf(entry), 0, '--require', PARENT_LIFELINE);
    const child = spawn(cmd.command, cmd.args, {
      cwd: spec.cwd ?? this.opts.cwd,
      // Unset: the child inherits this process's environment (spawn's default).
      env: spec.env ?? this.opts.env,
      stdio: spec.script ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // Held, never written, never keeping this process alive; the kernel closes it when this process dies.
    (child.stdio[3] as net.Socket | null | undefined)?.unref();
    const logFile = path.join(this.opts.logDir, this.opts.logName?.(name) ?? `${name}.log`);
    const svc = new ServiceProcess(name, child, logFile, this.opts.keepOutputChars ?? Infinity, spec.onLine);
    this.services.set(name, svc);
    return svc;
  }

  get(name: N): ServiceProcess<N> | undefined {
    return this.services.get(name);
  }

  all(): Array<ServiceProcess<N>> {
    return [...this.services.values()];
  }

  /** Stop services one after the other in this order (names not started are skipped). */
  async stopInOrder(names: readonly N[], opts: StopOptions = {}): Promise<void> {
    for (const name of names) await this.services.get(name)?.stop(opts);
  }

  /** Signal every running service's group at once, without waiting (e.g. from a process 'exit' handler). */
  signalAll(sig: NodeJS.Signals): void {
    for (const s of this.services.values()) s.signal(sig);
  }
}
