import type { TimeInForce } from '../contracts/order';

/**
 * How long the workflow follows an order before its time-in-force deadline cancels the remainder.
 * Pure and clock-free: the workflow passes its own deterministic `now`.
 */
export const IOC_FOK_GRACE_MS = 60_000;
export const GTC_HORIZON_MS = 90 * 24 * 3600_000;

export function orderDeadlineMs(tif: TimeInForce, nowMs: number): number {
  switch (tif) {
    case 'ioc':
    case 'fok':
      // The broker resolves these immediately; the timer only guards against a lost final update.
      return IOC_FOK_GRACE_MS;
    case 'gtc':
      return GTC_HORIZON_MS;
    case 'day':
      return Math.max(60_000, nextUsMarketCloseMs(nowMs) - nowMs);
  }
}

/** 16:00 America/New_York on the next weekday whose close is still ahead (US DST rules since 2007). */
export function nextUsMarketCloseMs(nowMs: number): number {
  const day = 24 * 3600_000;
  for (let d = 0; d < 8; d++) {
    const t = new Date(nowMs + d * day);
    const y = t.getUTCFullYear();
    const m = t.getUTCMonth();
    const date = t.getUTCDate();
    const weekday = new Date(Date.UTC(y, m, date)).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    const closeUtcHour = isUsDst(y, m, date) ? 20 : 21;
    const close = Date.UTC(y, m, date, closeUtcHour);
    if (close > nowMs) return close;
  }
  return nowMs + day;
}

function nthSunday(year: number, month: number, n: number): number {
  const first = new Date(Date.UTC(year, month, 1)).getUTCDay();
  return 1 + ((7 - first) % 7) + (n - 1) * 7;
}

function isUsDst(year: number, month: number, date: number): boolean {
  if (month < 2 || month > 10) return false;
  if (month > 2 && month < 10) return true;
  if (month === 2) return date >= nthSunday(year, 2, 2);
  return date < nthSunday(year, 10, 1);
}
