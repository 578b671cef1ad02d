/** CPU time per process tree from /proc during each phase: which process burns the machine's cores. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface CpuGroup {
  name: string;
  /** Also sample each thread (Node processes: is one thread — the JS main thread, the workflow thread — the limit?). */
  threads?: boolean;
  /** Root pids: the group is each root and all its descendants. */
  roots: () => number[];
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function findPidByCmdline(re: RegExp): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (re.test(cmd)) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * The process listening on a local TCP port (IPv4 or IPv6), from /proc/net/tcp* and each process's open sockets:
 * the broker a benchmark talks to, whichever checkout or script started it.
 */
export function findListenerPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is hex "addr:port"; state 0A is LISTEN; field 9 is the socket's inode.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${d}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${d}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(d);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/**
 * Socket inodes listening on a TCP port, from the text of /proc/net/tcp or /proc/net/tcp6 (pure): rows whose
 * local address ends in the port (hex) and whose state is 0A (LISTEN).
 */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (f.length < 10 || f[3] !== '0A' || f[1]?.split(':')[1] !== hexPort) continue;
    if (f[9] && f[9] !== '0') out.push(f[9]);
  }
  return out;
}

/** The process listening on a local TCP port (the one that holds the listening socket), if any. */
export function findPidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const i of listeningInodes(fs.readFileSync(file, 'utf8'), port)) inodes.add(`socket:[${i}]`);
    } catch {
      // no IPv6
    }
  }
  if (inodes.size === 0) return undefined;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${d}/fd`)) {
        if (inodes.has(fs.readlinkSync(`/proc/${d}/fd/${fd}`))) return Number(d);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

export interface ProcSnapshot {
  at: number;
  /** busy / total jiffies of the whole machine. */
  machineBusy: number;
  machineTotal: number;
  /** group name → jiffies (utime + stime of live members). */
  groups: Record<string, number>;
  /** `group|pid/tid|thread name` → jiffies, for groups with `threads`. */
  threads: Record<string, number>;
  /**
   * group name → ns its threads spent runnable but waiting for a CPU (schedstat's run-queue time, summed over
   * every thread of every member). Between two snapshots, per second of wall time, it is the average number of
   * the group's threads ready to run that the scheduler left waiting: a group that is waiting for nothing but
   * the CPU shows it here; one that waits for another process (a reply, a lock, a poll) does not.
   */
  runQueueNs: Record<string, number>;
}

/** Run-queue wait (ns) of every thread of a process, from /proc/<pid>/task/<tid>/schedstat (field 2). */
function runQueueNsOf(pid: number): number {
  let sum = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        sum += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) || 0;
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return sum;
}

export interface HotThread {
  thread: string;
  cores: number;
}

/** Per-process-group CPU time from /proc: which process burns the two cores during each phase. */
export class CpuSampler {
  constructor(private readonly groups: CpuGroup[]) {}

  snapshot(): ProcSnapshot {
    const ppid = new Map<number, number>();
    const ticks = new Map<number, number>();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // rest[0] = state (field 3); ppid field 4 → rest[1]; utime 14 → rest[11]; stime 15 → rest[12]
        ppid.set(Number(d), Number(rest[1]));
        ticks.set(Number(d), Number(rest[11]) + Number(rest[12]));
      } catch {
        // exited meanwhile
      }
    }
    const children = new Map<number, number[]>();
    for (const [pid, parent] of ppid) {
      const l = children.get(parent) ?? [];
      l.push(pid);
      children.set(parent, l);
    }
    const groups: Record<string, number> = {};
    const threads: Record<string, number> = {};
    const runQueueNs: Record<string, number> = {};
    const claimed = new Set<number>();
    for (const g of this.groups) {
      let sum = 0;
      let waited = 0;
      const stack = g.roots().filter((p) => ppid.has(p));
      while (stack.length) {
        const p = stack.pop()!;
        if (claimed.has(p)) continue;
        claimed.add(p);
        sum += ticks.get(p) ?? 0;
        waited += runQueueNsOf(p);
        stack.push(...(children.get(p) ?? []));
        if (g.threads) {
          try {
            for (const tid of fs.readdirSync(`/proc/${p}/task`)) {
              const st = fs.readFileSync(`/proc/${p}/task/${tid}/stat`, 'utf8');
              const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
              const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
              threads[`${g.name}|${p}/${tid}|${comm}`] = Number(rest[11]) + Number(rest[12]);
            }
          } catch {
            // exited meanwhile
          }
        }
      }
      groups[g.name] = sum;
      runQueueNs[g.name] = waited;
    }
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { at: Date.now(), machineBusy: total - idle, machineTotal: total, groups, threads, runQueueNs };
  }

  /** The busiest thread of each sampled group between two snapshots (cores; 1.0 = one thread always running). */
  static hottestThreads(a: ProcSnapshot, b: ProcSnapshot): Record<string, HotThread> {
    const wall = (b.at - a.at) / 1000;
    const out: Record<string, HotThread> = {};
    if (wall <= 0) return out;
    for (const [k, v] of Object.entries(b.threads)) {
      const [group, , name] = k.split('|') as [string, string, string];
      const cores = Math.max(0, v - (a.threads[k] ?? 0)) / CLK_TCK / wall;
      if (!out[group] || cores > out[group].cores) out[group] = { thread: name, cores };
    }
    return out;
  }

  /**
   * Threads of each group ready to run but waiting for a CPU, on average between two snapshots (run-queue time
   * per second of wall time). Beside the cores a group used, it tells a CPU-starved process (many waiting per
   * core used) from one that is idle for want of work or of a reply.
   */
  static runQueue(a: ProcSnapshot, b: ProcSnapshot): Record<string, number> {
    const wallNs = (b.at - a.at) * 1e6;
    const out: Record<string, number> = {};
    if (wallNs <= 0) return out;
    for (const k of Object.keys(b.runQueueNs)) {
      // A member that exited takes its threads' counts with it: never below zero.
      out[k] = Math.max(0, (b.runQueueNs[k] ?? 0) - (a.runQueueNs[k] ?? 0)) / wallNs;
    }
    return out;
  }

  /** Cores used per group between two snapshots, plus `others` (everything not in a group) and the machine. */
  static between(a: ProcSnapshot, b: ProcSnapshot): Record<string, number> {
    const wall = (b.at - a.at) / 1000;
    const out: Record<string, number> = {};
    if (wall <= 0) return out;
    let ours = 0;
    for (const k of Object.keys(b.groups)) {
      const d = Math.max(0, (b.groups[k] ?? 0) - (a.groups[k] ?? 0));
      out[k] = d / CLK_TCK / wall;
      ours += d;
    }
    const cores = os.cpus().length;
    const machine = ((b.machineBusy - a.machineBusy) / Math.max(1, b.machineTotal - a.machineTotal)) * cores;
    out.machine = machine;
    out.others = Math.max(0, machine - ours / CLK_TCK / wall);
    return out;
  }
}
