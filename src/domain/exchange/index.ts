export { SimulatedExchange, type OrderUpdateListener } from './simulated-exchange';
export { validateRequest, MAX_CLIENT_ORDER_ID_LENGTH } from './validation';
export { legClientOrderId } from './working-order';
export * from './types';
export * as fillModel from './fill-model';
