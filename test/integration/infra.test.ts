import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import amqp from 'amqplib';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { createTestDatabase, type TestDatabase } from '../support/pg';
import {
  connectDevServer,
  quietTemporalRuntime,
  uniqueTaskQueue,
  workflowBundle,
  type DevServer,
} from '../support/temporal';
import * as activities from '../workflow/fixtures/activities';
import { echoWorkflow } from '../workflow/fixtures/workflows';

// Proves each server the test command provisions (scripts/test.sh → scripts/stack-up.sh) is really there and
// usable the way the application uses it. These fail, never skip, when a server is missing.

const ROOT = path.resolve(__dirname, '../..');

function rabbitUrl(): string {
  const e = process.env;
  if (!e.RABBITMQ_HOST)
    throw new Error('RABBITMQ_HOST is not set: run integration tests through `npm test` (scripts/test.sh)');
  const user = encodeURIComponent(e.RABBITMQ_USER ?? 'stockautotrader');
  const pass = encodeURIComponent(e.RABBITMQ_PASS ?? 'stockautotrader-local');
  const vhost = encodeURIComponent(e.RABBITMQ_VHOST ?? 'stockautotrader');
  return `amqp://${user}:${pass}@${e.RABBITMQ_HOST}:${e.RABBITMQ_PORT ?? '5672'}/${vhost}`;
}

describe('Temporal dev server', () => {
  let dev: DevServer;

  beforeAll(async () => {
    quietTemporalRuntime();
    dev = await connectDevServer();
  });
  afterAll(async () => {
    await dev?.close();
  });

  it('runs a workflow and an activity end to end', async () => {
    const taskQueue = uniqueTaskQueue('infra');
    const worker = await Worker.create({
      connection: dev.nativeConnection,
      namespace: dev.namespace,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
    });
    const result = await worker.runUntil(
      dev.client.workflow.execute(echoWorkflow, { taskQueue, workflowId: `infra-echo-${taskQueue}`, args: ['ping'] }),
    );
    expect(result).toBe('echo: ping');
    const desc = await dev.client.workflow.getHandle(`infra-echo-${taskQueue}`).describe();
    expect(desc.status.name).toBe('COMPLETED');
  });

  it('has the search attributes the trade workflows set (Keyword)', async () => {
    const res = await dev.connection.operatorService.listSearchAttributes({ namespace: dev.namespace });
    const custom = res.customAttributes ?? {};
    for (const name of ['Symbol', 'Side', 'Strategy', 'TradeStatus']) {
      expect(custom[name], `search attribute ${name}`).toBe(
        temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      );
    }
  });
});

describe('RabbitMQ', () => {
  it('publishes with publisher confirms and consumes on a temporary queue in the project vhost', async () => {
    const conn = await amqp.connect(rabbitUrl());
    try {
      const ch = await conn.createConfirmChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
      const body = JSON.stringify({ hello: 'infra', at: Date.now() });
      const confirmed = new Promise<void>((resolve, reject) => {
        ch.sendToQueue(queue, Buffer.from(body), { persistent: true, contentType: 'application/json' }, (err) =>
          err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
        );
      });
      await ch.waitForConfirms();
      await confirmed;

      const received = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10_000);
        void ch.consume(queue, (msg) => {
          if (!msg) return;
          clearTimeout(timer);
          ch.ack(msg);
          resolve(msg.content.toString());
        });
      });
      expect(received).toBe(body);
      await ch.close();
    } finally {
      await conn.close();
    }
  });
});

describe('PostgreSQL', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('sat_infra');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('has the ledger migration applied and accepts a write and a read', async () => {
    const { rows: migrations } = await db.pool.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY run_on');
    expect(migrations.map((m) => m.name)).toContain('1732500000000_ledger');

    await db.pool.query(
      `INSERT INTO accounts (account_id, starting_cash, cash, day_start_equity) VALUES ($1, $2, $2, $2)`,
      ['infra-test', '100000.50'],
    );
    const { rows } = await db.pool.query<{ cash: string }>('SELECT cash FROM accounts WHERE account_id = $1', [
      'infra-test',
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cash).toBe('100000.500000'); // NUMERIC arrives as an exact string
  });
});

describe('configuration errors', () => {
  it('the migrate CLI exits non-zero with one line naming a bad variable', () => {
    const r = spawnSync(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/migrate.ts'], {
      cwd: ROOT,
      env: { ...process.env, CONFIDENCE_THRESH: '2' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/CONFIDENCE_THRESH/);
  });
});
