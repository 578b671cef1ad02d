import fs from 'node:fs';
import type { Reporter, TestModule, TestSpecification } from 'vitest/node';

/**
 * A vitest reporter for tuning `npm test`'s wall time: each test file's wall time in its worker, from the moment
 * vitest hands it to a worker to its end, so its imports, beforeAll (databases, processes started) and afterAll
 * count, unlike the JSON report's per-file times (tests only). Written to FILE_TIMES_OUT (JSON, one row per file:
 * seconds from the start of the run) and the slowest files printed at the end of the run.
 *   vitest run --reporter=default --reporter=./scripts/vitest-file-times.mts
 * With VITEST_TAIL_MARKER set, it also creates that file once the last file of the run has been handed to a worker
 * (the run's tail: nothing is left queued): scripts/test.sh starts the cluster tier then.
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
    const marker = process.env.VITEST_TAIL_MARKER;
    if (marker && this.files > 0 && this.started.size === this.files) fs.writeFileSync(marker, `${Date.now()}\n`);
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
