/**
 * The moment each order reached the venue, seen from outside the code under test: the bench subscribes to the
 * venue's own trade_updates stream (the exchange-sim speaks the Alpaca v2 wire, stream included, at every commit
 * the bench measures) through our broker adapter, and records its own clock at the FIRST update of each client
 * order id (`new` for the bench's market orders, which fill only at the next bar; whatever comes first otherwise).
 *
 * Why not Temporal's ActivityTaskCompleted of submitOrder: it marks when the activity ended, and what the activity
 * does after the broker's acceptance (ledger writes, waiting for the fill) differs between the codes compared. Why
 * not the venue's own order timestamps: the simulated venue stamps orders with simulated time (the last bar's).
 * The stream's delivery delay (venue relay, WebSocket frame, this process's event loop) is in every figure, the
 * same for both passes; it is no part of the pipeline being measured.
 */
import { createBroker, type AlpacaBroker } from '../../adapters/brokers';
import { parseEnv } from '../../config';
import type { OrderEventType } from '../../contracts/order';
import { createLogger } from '../../logging';

/** How long the stream may take to be authorised and listening before the pass goes on without it. */
export const STREAM_READY_TIMEOUT_MS = 15_000;
/** How often the stream's state is sampled to notice a drop (a reconnect takes ≥ 0.5 s of backoff). */
const STATE_SAMPLE_MS = 50;

/** The first update the stream delivered for one client order id. */
export interface VenueSighting {
  at: number;
  event: OrderEventType;
}

/** What a pass learned about the stream itself (printed, and in the JSON). */
export interface VenueStreamHealth {
  /** Listening before the first phase published. */
  ready: boolean;
  /** Why it could not be used from the start (not listening in time). */
  error?: string;
  /** Times the stream was seen leaving the listening state during the pass (updates may be lost then). */
  drops: number;
  /** Client order ids seen. */
  ordersSeen: number;
  /** Updates delivered in all (every event of every order). */
  updates: number;
}

export class VenueOrderObserver {
  private readonly seen = new Map<string, VenueSighting>();
  private readonly unsubscribe: () => void;
  private readonly sampler: NodeJS.Timeout;
  private wasListening = false;
  private drops = 0;
  private updates = 0;
  private readyError: string | undefined;
  private closed = false;

  private constructor(
    private readonly broker: AlpacaBroker,
    private readonly now: () => number,
  ) {
    // The first subscription connects the stream.
    this.unsubscribe = broker.onOrderUpdate((u) => {
      this.updates++;
      const id = u.order.clientOrderId;
      if (!this.seen.has(id)) this.seen.set(id, { at: this.now(), event: u.event });
    });
    this.sampler = setInterval(() => this.sampleState(), STATE_SAMPLE_MS);
    this.sampler.unref();
  }

  /**
   * Connect to the venue the pass's services use (their environment) and wait until the stream is listening, at
   * most `timeoutMs`. Never throws for a stream that does not come up: the observer then reports `ready: false`
   * with the reason, and the pass falls back to Temporal's times (loudly).
   */
  static async open(
    venueEnv: NodeJS.ProcessEnv,
    timeoutMs = STREAM_READY_TIMEOUT_MS,
    now: () => number = Date.now,
  ): Promise<VenueOrderObserver> {
    const cfg = parseEnv(venueEnv).broker;
    const broker = createBroker(cfg, createLogger('bench-venue-observer', { level: 'warn' }));
    const observer = new VenueOrderObserver(broker, now);
    const ok = await broker.waitForStream(timeoutMs);
    if (!ok || !broker.streamHealthy()) {
      observer.readyError =
        `the venue's trade_updates stream (${broker.name} venue, ${cfg.kind === 'alpaca' ? cfg.alpaca.baseUrl : `${cfg.venue.host}:${cfg.venue.port}`}) ` +
        `was not listening after ${timeoutMs} ms (state ${broker.streamState})`;
    }
    observer.wasListening = broker.streamHealthy();
    return observer;
  }

  /** The first update seen for this client order id, if any. */
  sighting(clientOrderId: string): VenueSighting | undefined {
    return this.seen.get(clientOrderId);
  }

  health(): VenueStreamHealth {
    return {
      ready: this.readyError === undefined,
      ...(this.readyError ? { error: this.readyError } : {}),
      drops: this.drops,
      ordersSeen: this.seen.size,
      updates: this.updates,
    };
  }

  /** Stop sampling and disconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sampler);
    this.sampleState();
    this.unsubscribe();
    await this.broker.close();
  }

  private sampleState(): void {
    const listening = this.broker.streamHealthy();
    if (this.wasListening && !listening) this.drops++;
    this.wasListening = listening;
  }
}
