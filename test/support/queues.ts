import type { Message } from 'amqplib';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { withChannel, type RabbitConnection } from '../../src/adapters/rabbitmq';

/** Take `n` messages off a queue (acked), waiting up to `timeoutMs`; fewer when they do not come. */
export async function drain(
  rabbit: RabbitConnection,
  queue: string,
  n: number,
  timeoutMs = 60_000,
): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  await withChannel(rabbit.connection!, async (ch) => {
    while (out.length < n && Date.now() < deadline) {
      const m = await ch.get(queue, { noAck: true });
      if (m) out.push(m);
      else await new Promise((r) => setTimeout(r, 100));
    }
  });
  return out;
}

/** Messages ready in a queue. */
export async function queueDepth(rabbit: RabbitConnection, queue: string): Promise<number> {
  return withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(queue)).messageCount);
}

/** Whether the server knows a workflow of this id (any run, any status). */
export async function workflowExists(client: Client, id: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(id).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Poll `cond` every 100 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
