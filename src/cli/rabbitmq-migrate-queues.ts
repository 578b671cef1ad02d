// Re-create the project's RabbitMQ queues with this version's arguments, keeping every message:
// `npm run rabbitmq:migrate-queues`. Needed once when upgrading from classic queues to quorum queues, and after
// changing RABBITMQ_DELIVERY_LIMIT. Stop the consumers (intake, quant, bar store, venue) first.
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { migrateQueues } from '../adapters/rabbitmq';
import { loadConfig } from '../config';
import { createLogger, scrubSecrets } from '../logging';

const USAGE = `Usage: npm run rabbitmq:migrate-queues

Checks every consumer queue of the topology (quant.bars, store.bars, intake.signals and their .dlq) in
RABBITMQ_VHOST against the declaration this version makes (quorum queue, x-delivery-limit RABBITMQ_DELIVERY_LIMIT,
dead-letter exchange dead.letter). A queue declared differently (e.g. a classic queue from an older version) is
re-created as declared now, moving its messages through a holding queue <queue>.migrating (publisher confirms:
nothing is lost; a message published during the move may be delivered twice, which consumers recognise by id).
Queues that match are left alone. Refuses to migrate a queue that has consumers: stop the processes first.

Options:
  -h, --help   this help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const cfg = loadConfig();
  const log = createLogger('rabbitmq-migrate', { level: cfg.logLevel });
  const conn = await amqp.connect(cfg.rabbitmq.url, {
    clientProperties: { connection_name: 'rabbitmq-migrate-queues' },
  });
  conn.on('error', (err: Error) => log.warn({ err }, 'RabbitMQ connection error'));
  try {
    const results = await migrateQueues(conn, { deliveryLimit: cfg.rabbitmq.deliveryLimit, logger: log });
    for (const r of results) {
      process.stdout.write(
        r.action === 'migrated'
          ? `${r.queue}: re-created (${r.reason ?? 'arguments differed'}); ${r.moved} message(s) kept\n`
          : `${r.queue}: up to date\n`,
      );
    }
    return 0;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `rabbitmq:migrate-queues failed: ${scrubSecrets(err instanceof Error ? err.message : String(err))}\n`,
    );
    process.exit(1);
  },
);
