import path from 'node:path';
import { cruise, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { describe, expect, it } from 'vitest';

/**
 * The layers of src/ (docs/architecture.md) as an import-graph check: .dependency-cruiser.cjs states the rules,
 * dependency-cruiser builds the graph (type-only imports included) and reports every import that breaks one.
 * `npm run lint:layers` prints the same report.
 */

const ROOT = path.resolve(__dirname, '../..');

async function violationsIn(baseDir: string): Promise<IViolation[]> {
  const options = await extractDepcruiseOptions(path.join(ROOT, '.dependency-cruiser.cjs'));
  const result = await cruise(['src'], { ...options, baseDir });
  if (typeof result.output === 'string') throw new Error('expected a cruise result, got a report');
  return result.output.summary.violations;
}

const describeViolation = (v: IViolation) =>
  `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`;

describe('import graph keeps the layers', () => {
  // Parsing all of src/ with the TypeScript compiler takes seconds on a loaded machine: a generous cap.
  it('src/ has no import that breaks a layer rule, and no import cycle', { timeout: 120_000 }, async () => {
    const violations = await violationsIn(ROOT);
    expect(violations.map(describeViolation)).toEqual([]);
  });

  it('each rule fires on a violating import (fixture: test/fixtures/layers)', { timeout: 120_000 }, async () => {
    const violations = await violationsIn(path.join(ROOT, 'test/fixtures/layers'));
    const found = violations.map((v) => `${v.rule.name}: ${v.from}`).sort();
    expect(found).toEqual(
      expect.arrayContaining([
        'only-the-exchange-sim-worker-starts-the-venue: src/adapters/broker.ts',
        'domain-imports-no-higher-layer: src/domain/money.ts',
        'domain-is-pure: src/domain/money.ts',
        'workflows-import-activity-types-only: src/workflows/trade.ts',
        'no-import-cycles: src/lib/a.ts',
      ]),
    );
    // What the layers allow is not reported: the top layer importing everything below it.
    expect(found.filter((f) => f.endsWith('src/cli/tool.ts'))).toEqual([]);
  });
});
