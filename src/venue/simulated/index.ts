export { SimulatedBroker, toBrokerRejectedError, type SimulatedBrokerOptions } from './simulated-broker';
