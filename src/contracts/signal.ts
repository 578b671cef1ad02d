import { z } from 'zod';
import { ORDER_TYPES, SIDES, TIMES_IN_FORCE } from './order';

/**
 * The `trade_signals` message, version 1. Producers (Quant, manual tools) and consumers (signal intake,
 * the trade workflow) import this one module; a message that fails it is dead-lettered with the reason.
 */
export const SIGNAL_SCHEMA_VERSION = 1;

/**
 * The `trade_signals` batch form: several signals in one message, each exactly a version-1 signal. A producer that
 * emits many signals a second (the quant, with every strategy on) sends them this way: RabbitMQ's cost is per
 * message (route, persist in the quorum queue, confirm, deliver, ack), not per byte, so one message for the
 * signals of a turn costs the broker about what one signal did. Nothing about a signal changes: each keeps its
 * own deterministic `signal_id`, the consumer's de-duplication key (intake: one workflow per id), so a batch
 * re-published after a failure, or grouped differently by a restarted producer, starts no second trade.
 * Routed `signal.batch.<symbol>` when every signal is of one symbol, else `signal.batch` (topology.ts, signalBatchRoutingKey).
 */
export const SIGNAL_BATCH_KIND = 'signal_batch';

/** Most signals one batch carries (a message of ~350 bytes a signal stays well under 1 MB). */
export const MAX_SIGNALS_PER_MESSAGE = 1000;

/**
 * The contract's schemas, built by each call. The module builds them once for everyone who imports it (the
 * exports below). The trade workflow's check builds its own copy once per worker thread
 * (src/workflows/signal-check.ts, preloaded into the worker's reusable V8 context): preloaded modules are
 * deep-frozen by the SDK, and zod memoises on its schema objects on first use (an object's keys, an enum's
 * set), which a frozen schema cannot do. Enums are built here from the value lists for the same reason.
 */
export function signalSchemas() {
  const isoUtc = z
    .string()
    .refine((s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s) && !Number.isNaN(Date.parse(s)), {
      message: 'must be an ISO-8601 UTC timestamp ending in Z',
    });

  const positivePrice = z.number().finite().positive();

  const OrderSpecSchema = z
    .object({
      type: z.enum(ORDER_TYPES).default('market'),
      time_in_force: z.enum(TIMES_IN_FORCE).default('day'),
      limit_price: positivePrice.optional(),
      stop_price: positivePrice.optional(),
      trail_price: positivePrice.optional(),
      trail_percent: z.number().finite().positive().max(100).optional(),
      /** Upper bound on shares; the risk engine may cut it, never raise it. */
      quantity_hint: z.number().int().positive().optional(),
      take_profit: z.object({ limit_price: positivePrice }).strict().optional(),
      stop_loss: z.object({ stop_price: positivePrice, limit_price: positivePrice.optional() }).strict().optional(),
    })
    .strict()
    .superRefine((o, ctx) => {
      const need = (field: keyof typeof o, when: string) => {
        if (o[field] === undefined)
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [field], message: `required for ${when}` });
      };
      if (o.type === 'limit' || o.type === 'stop_limit') need('limit_price', `${o.type} orders`);
      if (o.type === 'stop' || o.type === 'stop_limit') need('stop_price', `${o.type} orders`);
      if (o.type === 'trailing_stop' && (o.trail_price === undefined) === (o.trail_percent === undefined)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['trail_price'],
          message: 'trailing_stop needs exactly one of trail_price, trail_percent',
        });
      }
      if ((o.take_profit === undefined) !== (o.stop_loss === undefined)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['take_profit'],
          message: 'a bracket needs both take_profit and stop_loss',
        });
      }
    });

  const TradeSignalSchema = z
    .object({
      schema_version: z.literal(SIGNAL_SCHEMA_VERSION).default(SIGNAL_SCHEMA_VERSION),
      // ≤ 39 so the workflow id and broker client order ids fit Alpaca's 48 characters (trade-ids.ts).
      signal_id: z.string().regex(/^[A-Za-z0-9._-]{1,39}$/, 'must be 1-39 characters of [A-Za-z0-9._-]'),
      correlation_id: z.string().min(1).max(128),
      symbol: z
        .string()
        .min(1)
        .max(12)
        .regex(/^[A-Z][A-Z0-9.]*$/, 'must be an upper-case ticker'),
      side: z.enum(SIDES),
      /** Reference price at signal time (the bar close). */
      price: positivePrice,
      confidence: z.number().finite().min(0).max(1),
      strategy: z.string().min(1).max(64),
      created_at: isoUtc,
      asset_class: z.enum(['equity', 'options', 'futures', 'crypto']).default('equity'),
      order: OrderSpecSchema.optional(),
    })
    .strict();

  const SignalBatchSchema = z
    .object({
      schema_version: z.literal(SIGNAL_SCHEMA_VERSION).default(SIGNAL_SCHEMA_VERSION),
      kind: z.literal(SIGNAL_BATCH_KIND),
      signals: z.array(TradeSignalSchema).min(1).max(MAX_SIGNALS_PER_MESSAGE),
    })
    .strict();

  return { OrderSpecSchema, TradeSignalSchema, SignalBatchSchema };
}

const schemas = signalSchemas();

export const OrderSpecSchema = schemas.OrderSpecSchema;
export type OrderSpec = z.infer<typeof OrderSpecSchema>;

export const TradeSignalSchema = schemas.TradeSignalSchema;

/** A validated signal (defaults applied). */
export type TradeSignal = z.infer<typeof TradeSignalSchema>;
/** What a producer may send (defaults optional). */
export type TradeSignalInput = z.input<typeof TradeSignalSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Raw bytes or text decoded as JSON; anything else as it is. Buffer does not exist in Temporal's workflow
 * sandbox, which also uses these parsers. */
function decoded(raw: Buffer | string | unknown): ParseResult<unknown> {
  if ((typeof Buffer !== 'undefined' && Buffer.isBuffer(raw)) || typeof raw === 'string') {
    try {
      return { ok: true, value: JSON.parse(raw.toString()) as unknown };
    } catch (err) {
      return { ok: false, reason: `invalid JSON: ${(err as Error).message}` };
    }
  }
  return { ok: true, value: raw };
}

function parseWith(schema: typeof TradeSignalSchema, raw: Buffer | string | unknown): ParseResult<TradeSignal> {
  const json = decoded(raw);
  if (!json.ok) return json;
  const r = schema.safeParse(json.value);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, reason: formatZodError(r.error) };
}

/** Parse raw bytes or an object. Never throws: a bad message yields a reason for the dead-letter header. */
export function parseTradeSignal(raw: Buffer | string | unknown): ParseResult<TradeSignal> {
  return parseWith(TradeSignalSchema, raw);
}

/**
 * parseTradeSignal over schemas of its own (signalSchemas), held by the returned function only: for a module the
 * workflow sandbox preloads and deep-freezes (src/workflows/signal-check.ts), whose exports may hold functions
 * but no schema object.
 */
export function tradeSignalParser(): (raw: Buffer | string | unknown) => ParseResult<TradeSignal> {
  const { TradeSignalSchema: schema } = signalSchemas();
  return (raw) => parseWith(schema, raw);
}

export const SignalBatchSchema = schemas.SignalBatchSchema;
export type SignalBatch = z.infer<typeof SignalBatchSchema>;

/** The body of a batch message (the producer's side; what SignalBatchSchema accepts). */
export function signalBatchBody(signals: readonly TradeSignalInput[]): {
  schema_version: typeof SIGNAL_SCHEMA_VERSION;
  kind: typeof SIGNAL_BATCH_KIND;
  signals: readonly TradeSignalInput[];
} {
  return { schema_version: SIGNAL_SCHEMA_VERSION, kind: SIGNAL_BATCH_KIND, signals };
}

/**
 * A `trade_signals` message, single or batched, as its signals (in message order). All or nothing: a batch with
 * one signal that breaks the contract is refused whole, with the failing signal's position in the reason
 * (`signals.3.confidence: ...`), so a consumer dead-letters the message as it came and loses none of it.
 * Never throws.
 */
export function parseSignalMessage(raw: Buffer | string | unknown): ParseResult<TradeSignal[]> {
  const json = decoded(raw);
  if (!json.ok) return json;
  const data = json.value;
  if (typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === SIGNAL_BATCH_KIND) {
    const r = SignalBatchSchema.safeParse(data);
    return r.success ? { ok: true, value: r.data.signals } : { ok: false, reason: formatZodError(r.error) };
  }
  const r = TradeSignalSchema.safeParse(data);
  return r.success ? { ok: true, value: [r.data] } : { ok: false, reason: formatZodError(r.error) };
}

export function formatZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
