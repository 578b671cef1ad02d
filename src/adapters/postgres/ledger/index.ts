/**
 * The ledger: the one module that writes the money tables.
 *
 * | table            | written by                                                                     |
 * |------------------|--------------------------------------------------------------------------------|
 * | accounts         | accounts.ts (opening, day roll); booking.ts (cash moved by a fill)              |
 * | cash_movements   | accounts.ts (opening deposit); booking.ts (fill, fee); fees.ts (broker fees,    |
 * |                  | and their reversals when the broker cancels one)                               |
 * | positions, fills | booking.ts                                                                     |
 * | orders           | orders.ts                                                                      |
 * | trades           | trades.ts                                                                      |
 * | reservations     | reservations.ts                                                                |
 *
 * Other tables have their own single owner: risk_decisions and trading_state(_history) the risk store
 * (`../risk-store.ts`), reconciliation_issues the reconciliation store (`../reconciliation.ts`), market_bars
 * `../bars.ts`. They compose ledger writes into their own transactions by passing their client (risk's
 * lock → evaluate → reserve runs inside `withAccountLockInTwoRoundTrips`, with the ledger's statements).
 *
 * Every write is keyed by a deterministic id (client order id, execution id, workflow id), so an activity
 * that is retried after a crash leaves exactly one trace. All money arithmetic is PostgreSQL NUMERIC.
 */
export {
  accountExists,
  ledgerInvariants,
  openAccount,
  rollDayStart,
  rollDayStartStatement,
  withAccountLock,
  withAccountLockInTwoRoundTrips,
} from './accounts';
export { bookOrderProgress, recordFills } from './booking';
export { bookBrokerFees, feesReadAfter, FEE_READ_OVERLAP_DAYS, type ChargedFee } from './fees';
export {
  adoptBrokerOrderState,
  markOrderRejected,
  recordOrderIntent,
  syncOrder,
  type OrderContext,
  type OrderRecord,
} from './orders';
export { holdReservation, holdReservationStatement, releaseReservation, type ReservationHold } from './reservations';
export {
  finalizeTrade,
  openTrade,
  openTradeStatement,
  updateTradeStatus,
  type TradeOpening,
  type TradeOutcome,
} from './trades';
