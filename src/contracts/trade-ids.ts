/**
 * Trade identifiers that workflow code may compute (no Node built-ins here: this module is bundled
 * into Temporal's deterministic sandbox).
 *
 * signal_id is limited to 39 characters by the signal contract, so `trade-<signal_id>` is at most
 * 45 characters and the bracket-leg ids (`-tp`, `-sl`) stay within Alpaca's 48-character cap.
 */
export const TRADE_WORKFLOW_PREFIX = 'trade-';
export const MAX_SIGNAL_ID = 39;
export const MAX_CLIENT_ORDER_ID = 48;

/** Workflow id of the one trade a signal may start. */
export function tradeWorkflowId(signalId: string): string {
  return `${TRADE_WORKFLOW_PREFIX}${signalId}`;
}

/**
 * Broker idempotency key for a trade's order: the workflow id itself, identical on every activity
 * retry and after every worker restart, so the broker refuses a second order for the same trade.
 */
export function clientOrderIdFor(workflowId: string, leg: '' | 'tp' | 'sl' = ''): string {
  const id = leg ? `${workflowId}-${leg}` : workflowId;
  if (id.length > MAX_CLIENT_ORDER_ID) {
    throw new Error(`client_order_id "${id}" exceeds ${MAX_CLIENT_ORDER_ID} characters`);
  }
  return id;
}
