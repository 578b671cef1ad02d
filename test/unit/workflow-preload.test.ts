import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WORKFLOWS_SOURCE, tradeWorkflowBundleOptions } from '../../src/workers/workflow-bundle';

// The contract and the signal check are deep-frozen below, as the SDK freezes a preloaded module. The unit tier
// shares one module registry between the files a worker runs (isolate: false), so this file freezes instances of
// its own: evaluated afresh here, and dropped from the registry afterwards. Frozen shared instances made the next
// files' schemas throw on their first parse (zod memoises on them).
let contract: typeof import('../../src/contracts/signal');
let signalCheck: typeof import('../../src/workflows/signal-check');
beforeAll(async () => {
  vi.resetModules();
  contract = await import('../../src/contracts/signal');
  signalCheck = await import('../../src/workflows/signal-check');
});
afterAll(() => {
  vi.resetModules();
});

/** What the SDK's reusable V8 context does to a preloaded module's exports (reusable-vm.js, deepFreeze). */
function deepFreeze(object: unknown, visited = new WeakSet<object>()): unknown {
  if (object === null || (typeof object !== 'object' && typeof object !== 'function')) return object;
  if (visited.has(object) || Object.isFrozen(object)) return object;
  visited.add(object);
  if (typeof object === 'object') {
    for (const name of [...Object.getOwnPropertyNames(object), ...Object.getOwnPropertySymbols(object)]) {
      const value = (object as Record<string | symbol, unknown>)[name];
      if (value && (typeof value === 'object' || typeof value === 'function')) {
        try {
          deepFreeze(value, visited);
        } catch {
          // as the SDK: some objects cannot be frozen
        }
      }
    }
  }
  return Object.freeze(object);
}

const signal = {
  signal_id: 'sig-1',
  correlation_id: 'corr-1',
  symbol: 'NVDA',
  side: 'buy',
  price: 20,
  confidence: 0.9,
  strategy: 'momentum',
  created_at: '2026-11-30T01:00:00Z',
};

describe('the trade workflows bundle preloads the signal check (shared, deep-frozen by the SDK)', () => {
  it('preloads src/workflows/signal-check for the trade workflows, nothing for other workflow code', () => {
    expect(tradeWorkflowBundleOptions(WORKFLOWS_SOURCE)).toEqual({
      workflowsPath: WORKFLOWS_SOURCE,
      preloadModules: [path.join(path.dirname(WORKFLOWS_SOURCE), 'signal-check')],
    });
    const fixtures = path.resolve(__dirname, '../workflow/fixtures/workflows.ts');
    expect(tradeWorkflowBundleOptions(fixtures)).toEqual({ workflowsPath: fixtures });
  });

  it('exports functions only, and parses every kind of signal after the contract and it are deep-frozen', () => {
    for (const [name, value] of Object.entries(signalCheck)) expect(typeof value, name).toBe('function');
    // A frozen zod schema cannot memoise and throws on its first parse: this is what the workflow would meet if a
    // schema were reachable from the preloaded exports.
    const frozenSchema = deepFreeze(contract.signalSchemas().TradeSignalSchema) as typeof contract.TradeSignalSchema;
    expect(() => frozenSchema.safeParse(signal)).toThrow(TypeError);

    const samples = [signal, { ...signal, confidence: 2 }, { ...signal, extra: 1 }];
    const expected = samples.map((raw) => contract.parseTradeSignal(raw)); // before the contract is frozen
    deepFreeze(contract);
    deepFreeze(signalCheck);
    const parse = signalCheck.parseSignalInWorkflow;
    const ok = parse(signal);
    expect(ok.ok && ok.value).toMatchObject({ ...signal, schema_version: 1, asset_class: 'equity' });
    const limit = parse({ ...signal, order: { type: 'limit', limit_price: 19.5, time_in_force: 'gtc' } });
    expect(limit.ok && limit.value.order).toEqual({ type: 'limit', limit_price: 19.5, time_in_force: 'gtc' });
    const bracket = parse({
      ...signal,
      order: { take_profit: { limit_price: 25 }, stop_loss: { stop_price: 18 } },
    });
    expect(bracket.ok && bracket.value.order).toMatchObject({ type: 'market', time_in_force: 'day' });
    expect(parse({ ...signal, side: 'hold' })).toMatchObject({ ok: false, reason: expect.stringContaining('side') });
    expect(parse({ ...signal, order: { type: 'limit' } })).toMatchObject({
      ok: false,
      reason: 'order.limit_price: required for limit orders',
    });
    expect(parse('{')).toMatchObject({ ok: false, reason: expect.stringContaining('invalid JSON') });
    // The same answers as the contract's own parser.
    expect(samples.map((raw) => parse(raw))).toEqual(expected);
  });
});
