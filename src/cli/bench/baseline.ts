/**
 * The baseline a run compares against (issue 12: "the same figures for the code at d77fd4c, or a --baseline commit,
 * measured in the same run"): a checkout of that commit with its own dependencies, whose services (exchange-sim,
 * trade-worker, signal-intake) the benchmark starts exactly like today's, against the same servers.
 *
 * The checkout is `git archive <commit>` unpacked under .tools/bench-baseline/<full hash>/ and `npm ci` there, once:
 * a marker file written last says it is complete, so the next run starts at once and a run killed half-way through
 * the install is redone, never half used. An archive rather than a `git worktree`: nothing is registered in the
 * repository that other people's worktrees would see, and nothing to prune. The baseline keeps its own
 * package-lock.json (the Temporal SDK and the rest as that commit had them), so what is measured is that commit.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, say } from './constants';

/** The commit issue 12 measures against: the trade path before the levers. */
export const DEFAULT_BASELINE = 'd77fd4c';

/** The file that says a baseline checkout is complete (its content: the commit). */
const READY_MARKER = '.bench-baseline-ready';

/** Where the checkouts of baseline commits are kept (git-ignored, like the other cached tools). */
export function baselineCacheDir(root = ROOT): string {
  return path.join(root, '.tools', 'bench-baseline');
}

/** The full hash of a commit-ish of this repository, or an error naming it. */
export function resolveCommit(ref: string, root = ROOT): string {
  const r = spawnSync('git', ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd: root, encoding: 'utf8' });
  const sha = r.stdout.trim();
  if (r.status !== 0 || !/^[0-9a-f]{40}$/.test(sha))
    throw new Error(`--baseline ${ref}: not a commit of this repository (${root})`);
  return sha;
}

/** True when the checkout at dir is complete for commit sha (its marker names it). */
export function isReadyCheckout(dir: string, sha: string): boolean {
  try {
    return fs.readFileSync(path.join(dir, READY_MARKER), 'utf8').trim() === sha;
  } catch {
    return false;
  }
}

/**
 * A ready checkout of the commit with its dependencies installed: the cached one, or a fresh `git archive` + `npm ci`
 * (a minute or two, reported on stderr). The checkout must have the services the benchmark starts.
 */
export function prepareBaseline(ref: string, root = ROOT): { sha: string; dir: string; fresh: boolean } {
  const sha = resolveCommit(ref, root);
  const dir = path.join(baselineCacheDir(root), sha);
  if (isReadyCheckout(dir, sha)) return { sha, dir, fresh: false };
  const tmp = `${dir}.partial-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    say(`baseline ${sha.slice(0, 7)}: unpacking the commit into ${path.relative(root, dir)} (once, then cached)`);
    const archive = execFileSync('git', ['archive', '--format=tar', sha], { cwd: root, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', tmp], { input: archive });
    for (const s of ['src/workers/trade-worker.ts', 'src/workers/signal-intake.ts', 'src/workers/exchange-sim.ts']) {
      if (!fs.existsSync(path.join(tmp, s)))
        throw new Error(`baseline ${sha.slice(0, 7)} has no ${s}: the benchmark cannot run its services`);
    }
    say(`baseline ${sha.slice(0, 7)}: npm ci (its own package-lock.json)`);
    const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: tmp,
      stdio: ['ignore', 2, 'inherit'], // its output to stderr: stdout is the report's
    });
    if (npm.status !== 0) throw new Error(`baseline ${sha.slice(0, 7)}: npm ci failed (exit ${npm.status})`);
    fs.writeFileSync(path.join(tmp, READY_MARKER), `${sha}\n`);
    fs.rmSync(dir, { recursive: true, force: true }); // an incomplete leftover of a killed run
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { sha, dir, fresh: true };
}
