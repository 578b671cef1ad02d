/**
 * Prebuild the workflow bundle once (npm run build:workflows), so workers start without running webpack.
 * Writes dist/workflow-bundle.js; the worker uses it while it is newer than the workflow sources. Then the
 * services' compiled copies (dist/services/, precompiled-services.ts), which the ServiceRunner starts from
 * while they are current.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../workers/trade-worker';
import { PREBUILT_BUNDLE, tradeWorkflowBundleOptions } from '../workers/workflow-bundle';
import { PRECOMPILED_DIR, precompileServices } from './precompiled-services';

async function main(): Promise<void> {
  const t0 = Date.now();
  const { code } = await bundleWorkflowCode(tradeWorkflowBundleOptions(WORKFLOWS_PATH));
  fs.mkdirSync(path.dirname(PREBUILT_BUNDLE), { recursive: true });
  // Written aside and renamed into place: a worker starting meanwhile (npm start, parallel test files) reads the
  // old bundle or the new one, never half a file.
  const tmp = `${PREBUILT_BUNDLE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, PREBUILT_BUNDLE);
  const t1 = Date.now();
  const files = await precompileServices();
  process.stdout.write(
    `workflow bundle: ${PREBUILT_BUNDLE} (${(code.length / 1024).toFixed(0)} KiB, ${t1 - t0} ms); ` +
      `services compiled: ${PRECOMPILED_DIR} (${files} files, ${Date.now() - t1} ms)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`build-workflow-bundle: ${String(err)}\n`);
  process.exit(1);
});
