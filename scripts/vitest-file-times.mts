import fs from 'node:fs';
import type { Reporter, TestModule, TestSpecification } from 'vitest/node';

/**
 * A vitest reporter for tuning `npm test`'s wall time: each test file's wall time in its worker, from the moment
 * vitest hands it to a worker to its end, so its imports, beforeAll (databases, processes started) and afterAll
 * count, unlike the JSON report's per-file times (tests only). Written to FILE_TIMES_OUT (JSON, one row per file:
 * seconds from the start of the run) and the slowest files printed at the end of the run.
 *   vitest run --reporter=default --reporter=./scripts/vitest-file-times.mts
 * Markers for scripts/test.sh, files it creates as the run's last files are handed to workers (the run's tail):
 * VITEST_TAIL_MARKER once only VITEST_TAIL_FILES_LEFT files (default 0) are still queued (test.sh starts the cluster
 * tier then), VITEST_LAST_FILE_MARKER once none is (the unit tier starts then).
 */
interface Row {
  file: string;
  startS: number;
  endS: number;
  wallS: number;
  tests: number;
  state: string;
}

export default class FileTimes implements Reporter {
  private readonly t0 = Date.now();
  private readonly started = new Map<string, number>();
  private readonly rows: Row[] = [];
  private files = 0;

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.files = new Set(specifications.map((s) => s.moduleId)).size;
  }

  onTestModuleQueued(m: TestModule): void {
    // Queued = handed to a worker (vitest queues a file when a worker slot takes it).
    this.started.set(m.moduleId, Date.now());
    if (this.files === 0) return;
    const left = Math.max(0, Number(process.env.VITEST_TAIL_FILES_LEFT ?? 0) || 0);
    const markers: Array<[string | undefined, number]> = [
      [process.env.VITEST_TAIL_MARKER, Math.max(1, this.files - left)],
      [process.env.VITEST_LAST_FILE_MARKER, this.files],
    ];
    for (const [marker, at] of markers)
      if (marker && this.started.size === at) fs.writeFileSync(marker, `${Date.now()}\n`);
  }

  onTestModuleEnd(m: TestModule): void {
    const start = this.started.get(m.moduleId) ?? this.t0;
    const end = Date.now();
    this.rows.push({
      file: m.relativeModuleId,
      startS: (start - this.t0) / 1000,
      endS: (end - this.t0) / 1000,
      wallS: (end - start) / 1000,
      tests: [...m.children.allTests()].length,
      state: m.state(),
    });
  }

  onTestRunEnd(): void {
    if (this.rows.length === 0) return;
    const out = process.env.FILE_TIMES_OUT;
    if (out) fs.writeFileSync(out, JSON.stringify(this.rows, null, 1));
    const slowest = [...this.rows].sort((a, b) => b.wallS - a.wallS).slice(0, 15);
    const sum = this.rows.reduce((s, r) => s + r.wallS, 0);
    console.log(
      `\nslowest test files (wall s in a worker, imports and hooks included; ${this.rows.length} files, ` +
        `sum ${sum.toFixed(0)} s${out ? `; all in ${out}` : ''}):\n` +
        slowest
          .map((r) => `  ${r.wallS.toFixed(1).padStart(6)}  +${r.startS.toFixed(0).padStart(3)}s  ${r.file}`)
          .join('\n'),
    );
  }
}
