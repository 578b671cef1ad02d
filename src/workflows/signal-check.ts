import { tradeSignalParser } from '../contracts/signal';

/**
 * The signal check of the trade workflow (a hand-started trade with a bad signal ends REJECTED/invalid_signal).
 *
 * Preloaded: the trade workflows' bundle lists this module in `preloadModules` (src/workers/workflow-bundle.ts),
 * so the worker evaluates it, zod and the contract once per workflow thread, into the reusable V8 context's
 * shared module cache. Any other module of the bundle is evaluated again for every workflow the worker loads (the
 * SDK gives each workflow its own module cache), and building the contract's zod schemas was most of that: about
 * 3 ms of the workflow thread per trade at saturation (docs/benchmarks.md, issue 12, lever 5).
 *
 * The SDK deep-freezes what a preloaded module exports. zod writes memos onto its schema objects on first use,
 * so the schemas here are the parser's own (tradeSignalParser), reachable from no export: this module must
 * export functions only. Shared across workflows, they hold no workflow's state: a parse depends on its input
 * alone (the memos are an object's key list and an enum's value set), so replay stays deterministic.
 */
export const parseSignalInWorkflow = tradeSignalParser();
