/**
 * The venue: the simulated exchange as a service (SimulatedBroker over domain/exchange) and its Alpaca-compatible
 * HTTP + trade_updates stream server. It is the far side of the broker wire, not a piece of our pipeline.
 *
 * Where it sits in the layers: just below `workers`, beside the pipeline (workflows → activities → services)
 * rather than inside it, and above `adapters`:
 *   workers/exchange-sim.ts, tests  →  venue  →  adapters/brokers/broker.ts (the `Broker` port it implements and
 *   serves) + adapters/brokers/alpaca/wire.ts (the wire vocabulary it shares with the client)  →  domain/exchange
 *   →  contracts / config / logging.
 * Rules (for the import-graph check):
 *  - only src/workers/exchange-sim.ts and test code import src/venue; adapters, domain, services, activities,
 *    workflows and cli never do — the pipeline reaches the venue over the wire, through the AlpacaBroker
 *    adapter, exactly as it reaches Alpaca;
 *  - src/venue imports nothing from workers, cli, workflows, activities or services, and from adapters only
 *    those two modules.
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
