import type { RabbitmqConfig } from '../../config';
import { sleep } from '../../lib/sleep';

/**
 * The one client for the RabbitMQ management HTTP API (port 15672 by default): queue inspection for health
 * checks, the benchmark and tests; force-closing connections (what an operator or a broker restart does to us),
 * used by the reconnect tests; and private vhosts, so a benchmark or a test has queues no one else consumes.
 * Uses the project user (needs the `administrator` or `management` tag; with `management` only its own
 * connections are visible and closable, and creating vhosts needs `administrator`).
 */

export interface ManagementOptions {
  host: string;
  port: number;
  user: string;
  pass: string;
  vhost: string;
  timeoutMs?: number;
}

export interface ConnectionInfo {
  name: string;
  user: string;
  vhost: string;
  client_properties?: { connection_name?: string };
}

export interface QueueInfo {
  name: string;
  durable: boolean;
  arguments: Record<string, unknown>;
  messages?: number;
  consumers?: number;
}

export class RabbitManagement {
  private readonly base: string;
  private readonly auth: string;

  constructor(private readonly opts: ManagementOptions) {
    this.base = `http://${opts.host}:${opts.port}/api`;
    this.auth = `Basic ${Buffer.from(`${opts.user}:${opts.pass}`).toString('base64')}`;
  }

  /** The project user on the broker of the `rabbitmq` section; `vhost` overrides its vhost for queue lookups. */
  static fromConfig(rabbitmq: RabbitmqConfig, vhost = rabbitmq.vhost): RabbitManagement {
    return new RabbitManagement({
      host: rabbitmq.host,
      port: rabbitmq.managementPort,
      user: rabbitmq.user,
      pass: rabbitmq.pass,
      vhost,
    });
  }

  /** The same user and broker, looking at another vhost. */
  forVhost(vhost: string): RabbitManagement {
    return new RabbitManagement({ ...this.opts, vhost });
  }

  get vhost(): string {
    return this.opts.vhost;
  }

  private async request(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: unknown,
  ): Promise<Response> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: this.auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
    });
    if (!res.ok && res.status !== 404)
      throw new Error(`management API ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return res;
  }

  async connections(): Promise<ConnectionInfo[]> {
    const res = await this.request('GET', '/connections');
    return (await res.json()) as ConnectionInfo[];
  }

  /** Connections whose client-provided `connection_name` starts with `prefix`. */
  async connectionsNamed(prefix: string): Promise<ConnectionInfo[]> {
    return (await this.connections()).filter((c) => c.client_properties?.connection_name?.startsWith(prefix));
  }

  /** Force-close a connection by its broker name (the "ip:port -> ip:port" string). */
  async closeConnection(name: string, reason = 'closed via management API'): Promise<void> {
    await this.request('DELETE', `/connections/${encodeURIComponent(name)}`, { 'x-reason': reason });
  }

  /**
   * Force-close every connection whose connection_name starts with `prefix`, waiting (bounded) for the broker's
   * listing to show at least `atLeast` of them first (new connections appear in the API after a short delay).
   * Returns how many were closed.
   */
  async closeConnectionsNamed(prefix: string, atLeast = 1, waitMs = 20_000): Promise<number> {
    const deadline = Date.now() + waitMs;
    let found = await this.connectionsNamed(prefix);
    while (found.length < atLeast && Date.now() < deadline) {
      await sleep(250);
      found = await this.connectionsNamed(prefix);
    }
    for (const c of found) await this.closeConnection(c.name, `force-closed (${prefix})`);
    return found.length;
  }

  async queue(name: string): Promise<QueueInfo | undefined> {
    const res = await this.request('GET', `/queues/${encodeURIComponent(this.opts.vhost)}/${encodeURIComponent(name)}`);
    if (res.status === 404) return undefined;
    return (await res.json()) as QueueInfo;
  }

  /**
   * Create a vhost (idempotent) and give the project user full permissions on it. Its queues cannot collide
   * with queues anybody else (or older code) declared in the shared vhost.
   */
  async createVhost(name: string, description = ''): Promise<void> {
    const v = encodeURIComponent(name);
    await this.mustSucceed('PUT', `/vhosts/${v}`, { description });
    await this.mustSucceed('PUT', `/permissions/${v}/${encodeURIComponent(this.opts.user)}`, {
      configure: '.*',
      write: '.*',
      read: '.*',
    });
  }

  /** Delete a vhost with everything in it; a vhost that is already gone is fine. */
  async deleteVhost(name: string): Promise<void> {
    await this.request('DELETE', `/vhosts/${encodeURIComponent(name)}`);
  }

  private async mustSucceed(method: string, path: string, body: unknown): Promise<void> {
    const res = await this.request(method, path, {}, body);
    if (!res.ok) throw new Error(`management API ${method} ${path}: HTTP ${res.status}`);
  }
}
