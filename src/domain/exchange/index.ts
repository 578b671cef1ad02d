export {
  SimulatedExchange,
  legClientOrderId,
  validateRequest,
  MAX_CLIENT_ORDER_ID_LENGTH,
  type OrderUpdateListener,
} from './simulated-exchange';
export * from './types';
export * as fillModel from './fill-model';
