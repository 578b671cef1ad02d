import { defineSearchAttributeKey } from '@temporalio/common';
import type { TradePhase } from '../domain/trade-lifecycle';

/**
 * The workflow type signal intake starts a trade as (src/workflows/trade.ts). Trades started before it run as
 * `tradeWorkflow` until they end; a search for all trades says `WorkflowType IN ("tradeWorkflowV2", "tradeWorkflow")`.
 */
export const TRADE_WORKFLOW_TYPE = 'tradeWorkflowV2';

/**
 * Search attributes the trade workflow keeps current, so Web UI users can filter trades, e.g.
 * `TradeStatus="FILLED" AND Symbol="NVDA"`. scripts/stack-up.sh registers them on the dev server.
 */
export const SA_SYMBOL = defineSearchAttributeKey('Symbol', 'KEYWORD');
export const SA_SIDE = defineSearchAttributeKey('Side', 'KEYWORD');
export const SA_STRATEGY = defineSearchAttributeKey('Strategy', 'KEYWORD');
export const SA_TRADE_STATUS = defineSearchAttributeKey('TradeStatus', 'KEYWORD');
export const SEARCH_ATTRIBUTES = {
  Symbol: 'KEYWORD',
  Side: 'KEYWORD',
  Strategy: 'KEYWORD',
  TradeStatus: 'KEYWORD',
} as const;

/** Where a trade is in its life; also the TradeStatus search attribute (one lifecycle: domain/trade-lifecycle.ts). */
export type { TradePhase };

export interface LegStatus {
  clientOrderId: string;
  type: string;
  status: string;
  filledQty: number;
  avgFillPrice: number | null;
}

/** What the `status` query returns, and what the workflow returns when it ends. */
export interface TradeStatus {
  phase: TradePhase;
  workflowId: string;
  signalId: string;
  correlationId: string;
  symbol: string;
  side: 'buy' | 'sell';
  strategy: string;
  requestedQty: number;
  clientOrderId: string;
  brokerOrderId: string | null;
  brokerStatus: string | null;
  filledQty: number;
  avgFillPrice: number | null;
  reasonCode: string | null;
  reason: string | null;
  legs: LegStatus[];
}
