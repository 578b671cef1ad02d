/**
 * The Temporal server's persistence work per trade, from its Prometheus endpoint: the dev server's SQLite calls
 * (count and time per `service:operation`), scraped before and after each phase.
 */
import fs from 'node:fs';

/**
 * The dev server's Prometheus endpoint: its --metrics-port when its command line has one; otherwise (start-dev
 * then serves it on a random port) probe the TCP ports the process listens on (from /proc) for one that answers
 * /metrics.
 */
export async function findMetricsUrl(pid: number | undefined): Promise<string | undefined> {
  if (!pid) return undefined;
  const answers = async (port: number, timeoutMs: number) => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      return res.ok && (await res.text()).includes('persistence_latency');
    } catch {
      return false;
    }
  };
  const cmdline = fs.existsSync(`/proc/${pid}/cmdline`) ? fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  const given = /--metrics-port(?:=|\0)(\d+)/.exec(cmdline)?.[1];
  // A loaded machine answers a full scrape slowly: give the known port time.
  if (given && (await answers(Number(given), 15_000))) return `http://127.0.0.1:${given}/metrics`;
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    }
  } catch {
    return undefined;
  }
  const ports: number[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(1) : [];
    for (const line of lines) {
      const c = line.trim().split(/\s+/);
      if (c[3] === '0A' && c[9] && inodes.has(c[9])) ports.push(parseInt(c[1]!.split(':')[1]!, 16));
    }
  }
  for (const port of ports) if (await answers(port, 2000)) return `http://127.0.0.1:${port}/metrics`;
  return undefined;
}

/** `service:operation` → [count, seconds] of persistence calls (the SQLite work of the dev server). */
export type PersistenceCounters = Map<string, [number, number]>;

export async function scrapePersistence(url: string | undefined): Promise<PersistenceCounters | undefined> {
  if (!url) return undefined;
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    const out: PersistenceCounters = new Map();
    const re = /^persistence_latency_(sum|count)\{([^}]*)\} (\S+)$/gm;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const labels = m[2]!;
      const op = /operation="([^"]*)"/.exec(labels)?.[1] ?? '?';
      const svc = /service_name="([^"]*)"/.exec(labels)?.[1] ?? '?';
      const key = `${svc}:${op}`;
      const cur = out.get(key) ?? [0, 0];
      if (m[1] === 'count') cur[0] += Number(m[3]);
      else cur[1] += Number(m[3]);
      out.set(key, cur);
    }
    return out;
  } catch {
    return undefined;
  }
}

/**
 * The sum of a counter (every label set) over these Prometheus endpoints, e.g. the trade workers'
 * sat_pg_round_trips_total. Undefined when there is none, an endpoint does not answer or lacks the counter (code
 * that predates it, such as a baseline commit).
 */
export async function scrapeCounterSum(urls: readonly string[], name: string): Promise<number | undefined> {
  if (urls.length === 0) return undefined;
  let sum = 0;
  for (const url of urls) {
    try {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
      const re = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm');
      let found = false;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        sum += Number(m[1]);
        found = true;
      }
      if (!found) return undefined;
    } catch {
      return undefined;
    }
  }
  return sum;
}

/** Persistence work of the Temporal server during a phase. */
export interface PersistenceReport {
  /** Σ call durations / wall time: SQLite work (and waits for its single connection) per second. */
  busyPerSecond: number;
  callsPerTrade: number;
  msPerTrade: number;
  top: Array<{ op: string; callsPerTrade: number; msPerTrade: number }>;
}

export function persistenceBetween(
  a: PersistenceCounters | undefined,
  b: PersistenceCounters | undefined,
  wallS: number,
  trades: number,
): PersistenceReport | undefined {
  if (!a || !b || wallS <= 0) return undefined;
  const rows: Array<{ op: string; calls: number; s: number }> = [];
  for (const [k, [c, sec]] of b) {
    const [c0, s0] = a.get(k) ?? [0, 0];
    if (c - c0 > 0) rows.push({ op: k, calls: c - c0, s: sec - s0 });
  }
  rows.sort((x, y) => y.s - x.s);
  const calls = rows.reduce((t, r) => t + r.calls, 0);
  const sec = rows.reduce((t, r) => t + r.s, 0);
  const n = Math.max(1, trades);
  return {
    busyPerSecond: sec / wallS,
    callsPerTrade: calls / n,
    msPerTrade: (sec * 1000) / n,
    top: rows.slice(0, 8).map((r) => ({ op: r.op, callsPerTrade: r.calls / n, msPerTrade: (r.s * 1000) / n })),
  };
}
