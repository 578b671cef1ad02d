import type { OrderRequest } from '../contracts/order';
import type { TradeSignal } from '../contracts/signal';
import { conservativeTick } from '../domain/money';

/**
 * The order the signal asks for, sized by risk. Limit and stop prices go to the broker on the tick
 * ($0.01 at or above $1: brokers reject sub-penny prices), rounded so the order is never more aggressive
 * than the signal asked; bracket legs are orders on the opposite side.
 */
export function buildOrderRequest(signal: TradeSignal, qty: number, clientOrderId: string): OrderRequest {
  const spec = signal.order;
  const side = signal.side;
  const exitSide = side === 'buy' ? 'sell' : 'buy';
  const req: OrderRequest = {
    clientOrderId,
    symbol: signal.symbol,
    side,
    qty,
    type: spec?.type ?? 'market',
    timeInForce: spec?.time_in_force ?? 'day',
  };
  if (spec?.limit_price !== undefined) req.limitPrice = conservativeTick(spec.limit_price, side, 'limit');
  if (spec?.stop_price !== undefined) req.stopPrice = conservativeTick(spec.stop_price, side, 'stop');
  if (spec?.trail_price !== undefined) req.trailPrice = spec.trail_price;
  if (spec?.trail_percent !== undefined) req.trailPercent = spec.trail_percent;
  if (spec?.take_profit && spec.stop_loss) {
    req.orderClass = 'bracket';
    req.takeProfit = { limitPrice: conservativeTick(spec.take_profit.limit_price, exitSide, 'limit') };
    req.stopLoss = {
      stopPrice: conservativeTick(spec.stop_loss.stop_price, exitSide, 'stop'),
      ...(spec.stop_loss.limit_price !== undefined
        ? { limitPrice: conservativeTick(spec.stop_loss.limit_price, exitSide, 'limit') }
        : {}),
    };
  }
  return req;
}
