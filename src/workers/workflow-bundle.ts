/**
 * The prebuilt workflow bundle (dist/workflow-bundle.js, `npm run build:workflows`; `npm start` and `npm test`
 * build it): workers load it instead of running webpack at every start. It is used only while it is at least as
 * new as every source file under src/, so a worker never runs workflow code older than the checkout.
 *
 * No require.resolve here: test files (vitest's module runner) import this module too.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BundleOptions } from '@temporalio/worker';

export const PREBUILT_BUNDLE = path.resolve(__dirname, '../../dist/workflow-bundle.js');
/** The workflow code the bundle is built from. */
export const WORKFLOWS_SOURCE = path.resolve(__dirname, '../workflows/index.ts');
const SRC_DIR = path.resolve(__dirname, '..');

/** The workflow module the trade workflows' bundle preloads (src/workflows/signal-check.ts says why). */
const PRELOADED_WORKFLOW_MODULE = 'signal-check';

/**
 * How the trade workflows' code is bundled, wherever it is (the worker without a prebuilt bundle, the prebuilt
 * bundle, the tests, the history recorder), so every copy runs the same way: `preloadModules` evaluates the
 * signal check, and the contract and zod under it, once per workflow thread into the reusable V8 context's
 * shared module cache instead of once per workflow. A workflows path without that module (another checkout's,
 * e.g. REPLAY_WORKFLOWS_PATH of an older commit) is bundled without preloading.
 */
export function tradeWorkflowBundleOptions(
  workflowsPath: string = WORKFLOWS_SOURCE,
): Pick<BundleOptions, 'workflowsPath' | 'preloadModules'> {
  const dir = fs.statSync(workflowsPath).isDirectory() ? workflowsPath : path.dirname(workflowsPath);
  const preloaded = path.join(dir, PRELOADED_WORKFLOW_MODULE);
  const present = ['.ts', '.js'].some((ext) => fs.existsSync(preloaded + ext));
  return { workflowsPath, ...(present ? { preloadModules: [preloaded] } : {}) };
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The prebuilt bundle exists and is at least as new as every source file. */
export function prebuiltBundleFresh(): boolean {
  return fs.existsSync(PREBUILT_BUNDLE) && fs.statSync(PREBUILT_BUNDLE).mtimeMs >= newestSource(SRC_DIR);
}
