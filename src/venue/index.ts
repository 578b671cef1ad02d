/**
 * The venue: the simulated exchange as a service (SimulatedBroker over domain/exchange) and its Alpaca-compatible
 * HTTP + trade_updates stream server. It is the far side of the broker wire, not a piece of our pipeline.
 *
 * Where it sits in the layers — a peer of `services`, reached only from the top:
 *   cli/workers (workers/exchange-sim.ts) and tests  →  venue  →  adapters/brokers (the `Broker` port it implements
 *   and serves, and the Alpaca wire vocabulary shared with the client)  →  domain/exchange  →  contracts/config/logging.
 * Rules: adapters, domain, services, activities and workflows never import the venue (the trading pipeline
 * reaches the venue only over the wire, through the AlpacaBroker adapter, exactly as it reaches Alpaca); the
 * venue imports no workflow, activity or service code, and no other adapter than `adapters/brokers`.
 */
export { SimulatedBroker, toBrokerRejectedError, type SimulatedBrokerOptions } from './simulated';
export {
  startAlpacaCompatServer,
  type AlpacaCompatHooks,
  type AlpacaCompatServer,
  type AlpacaCompatServerOptions,
  type CompatRequestContext,
  type CompatResponseContext,
} from './alpaca-compat';
