export { AlpacaBroker, type AlpacaBrokerOptions } from './broker';
export { OrderUpdateMerger } from './update-merge';
export { AlpacaRestClient, MAX_RETRY_AFTER_MS, MIN_RETRY_AFTER_MS } from './rest';
export { streamUrlFor, TradeUpdatesStream, type StreamState } from './stream';
export * from './wire';
