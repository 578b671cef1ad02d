/**
 * The prebuilt workflow bundle (dist/workflow-bundle.js, `npm run build:workflows`; `npm start` and `npm test`
 * build it): workers load it instead of running webpack at every start. It is used only while it is at least as
 * new as every source file under src/, so a worker never runs workflow code older than the checkout.
 *
 * No require.resolve here: test files (vitest's module runner) import this module too.
 */
import fs from 'node:fs';
import path from 'node:path';

export const PREBUILT_BUNDLE = path.resolve(__dirname, '../../dist/workflow-bundle.js');
/** The workflow code the bundle is built from. */
export const WORKFLOWS_SOURCE = path.resolve(__dirname, '../workflows/index.ts');
const SRC_DIR = path.resolve(__dirname, '..');

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
