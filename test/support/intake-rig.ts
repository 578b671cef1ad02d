import { ConfirmPublisher, RabbitConnection, topologySetup } from '../../src/adapters/rabbitmq';
import type { Logger } from '../../src/logging';
import { connectDevServer, type DevServer } from './temporal';
import { createPrivateVhost } from './vhost';

/**
 * What an intake test runs against: a private RabbitMQ vhost with the pipeline's topology, a confirming publisher
 * on it, and the shared Temporal dev server. `started` collects the workflow ids the test started; close()
 * terminates them (a started trade waits on its task queue: no worker runs in these tests) and drops the vhost.
 */
export interface IntakeRig {
  rabbit: RabbitConnection;
  publisher: ConfirmPublisher;
  temporal: DevServer;
  started: string[];
  close(): Promise<void>;
}

export async function openIntakeRig(name: string, logger: Logger): Promise<IntakeRig> {
  const vh = await createPrivateVhost(`sat-${name}`);
  const temporal = await connectDevServer();
  const rabbit = new RabbitConnection({
    url: vh.url,
    name: `test-${name}`,
    logger,
    setup: topologySetup(vh.config.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger });
  await rabbit.start();
  const started: string[] = [];
  return {
    rabbit,
    publisher,
    temporal,
    started,
    async close() {
      for (const id of started) {
        await temporal.client.workflow
          .getHandle(id)
          .terminate('test cleanup')
          .catch(() => undefined);
      }
      await publisher.close();
      await rabbit.close();
      await temporal.close();
      await vh.drop();
    },
  };
}
