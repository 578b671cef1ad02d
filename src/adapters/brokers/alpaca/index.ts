export { AlpacaBroker, type AlpacaBrokerOptions } from './broker';
export { OrderUpdateReconciler } from './reconciler';
export { AlpacaRestClient, MAX_RETRY_AFTER_MS, MIN_RETRY_AFTER_MS } from './rest';
export { backoffDelay, streamUrlFor, TradeUpdatesStream, type StreamState } from './stream';
export * from './wire';
