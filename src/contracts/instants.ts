/**
 * ISO-8601 UTC instants ⇄ epoch milliseconds, exactly as Date.parse and Date.prototype.toISOString, faster on the
 * forms our bars and signals use. Hot paths convert on every bar and signal (the quant's engine, the risk engine's
 * cooldown and volatility window): Date.parse costs ~0.17 µs and toISOString ~0.5 µs, calendar arithmetic a
 * fraction of that. Anything outside the fast forms goes to the built-ins, so the results are always theirs; a unit
 * test (test/unit/instants.test.ts) compares both ways on edge cases and a seeded sample.
 */

const DAY_MS = 86_400_000;
const YEAR_10000_MS = 253_402_300_800_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

// One-entry memo of the last date's first instant: intraday bars of one day share their date (a minute series asks
// ~390 times in a row), and the calendar arithmetic (four floored divisions) was a third of a parse. A pure function
// of its arguments, so the memo cannot change a result.
let lastYear = -1;
let lastMonth = -1;
let lastDay = -1;

/**
 * [0] the fast parse's instant (parseFast), [1] the last date's (dayMs). Doubles in a typed array are stored in
 * place; a double in a module variable, or returned from a call the compiler does not inline (the fast parse is
 * too large to be), is a new heap number each time: one or two per bar.
 */
const parsed = new Float64Array(2);

/** The instant of 00:00 UTC on a proleptic Gregorian date: daysFromCivil × DAY_MS, remembered for the last date. */
function dayMs(year: number, month: number, day: number): number {
  if (day !== lastDay || month !== lastMonth || year !== lastYear) {
    parsed[1] = daysFromCivil(year, month, day) * DAY_MS;
    lastYear = year;
    lastMonth = month;
    lastDay = day;
  }
  return parsed[1]!;
}

/**
 * Days in a month of the proleptic Gregorian calendar. The fast forms take only dates that exist: Date.parse rolls
 * a 30 February over into March, and such a string is not canonical (toISOString writes the March date back).
 */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Two ASCII digits at i as a number, or -1. */
function digits2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * Date.parse(s). Fast for `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DDTHH:MM:SS.sssZ` from 1970 on with a day of month that
 * exists in that month (no roll-over rule is involved; the 29th-31st were once left to the built-in, a tenth of all
 * daily bars); the built-in for everything else.
 */
export function instantMs(s: string): number {
  const ms = fastInstantMs(s);
  return ms === ms ? ms : Date.parse(s);
}

/** instantMs's fast path: the instant of the fast forms, NaN for anything else (which may still be a date). */
function fastInstantMs(s: string): number {
  return parseFast(s) ? parsed[0]! : Number.NaN;
}

/** Is `s` of the fast forms (fastInstantMs)? Its instant is then in parsed[0]. */
function parseFast(s: string): boolean {
  const n = s.length;
  if (
    (n === 20 || n === 24) &&
    s.charCodeAt(n - 1) === 90 && // Z
    s.charCodeAt(4) === 45 && // -
    s.charCodeAt(7) === 45 &&
    s.charCodeAt(10) === 84 && // T
    s.charCodeAt(13) === 58 && // :
    s.charCodeAt(16) === 58 &&
    (n === 20 || s.charCodeAt(19) === 46) // .
  ) {
    const c = digits2(s, 0);
    const yy = digits2(s, 2);
    const month = digits2(s, 5);
    const day = digits2(s, 8);
    const h = digits2(s, 11);
    const m = digits2(s, 14);
    const sec = digits2(s, 17);
    const ms1 = n === 24 ? digits2(s, 20) : 0;
    const ms2 = n === 24 ? s.charCodeAt(22) - 48 : 0;
    const year = c * 100 + yy;
    if (
      c >= 0 &&
      yy >= 0 &&
      year >= 1970 &&
      month >= 1 &&
      month <= 12 &&
      day >= 1 &&
      (day <= 28 || day <= daysInMonth(year, month)) &&
      h >= 0 &&
      h <= 23 &&
      m >= 0 &&
      m <= 59 &&
      sec >= 0 &&
      sec <= 59 &&
      ms1 >= 0 &&
      ms2 >= 0 &&
      ms2 <= 9
    ) {
      parsed[0] = dayMs(year, month, day) + h * 3_600_000 + m * 60_000 + sec * 1000 + ms1 * 10 + ms2;
      return true;
    }
  }
  return false;
}

/**
 * Is `s` of a fast form (`YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.sssZ`) with every field in range, from 1970
 * on and a day that exists in its month? Such a string always names a real calendar instant, and
 * isoInstant(instantMs(s)) writes back the same date and time (fixed-width, zero-padded fields; no roll-over).
 * False says nothing: the caller checks the other forms itself.
 */
export function isInRangeFastInstant(s: string): boolean {
  return parseFast(s);
}

/**
 * Is `s` exactly what isoInstant(instantMs(s)) gives back? True for the fast form with milliseconds
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, fields in range as instantMs's fast path checks them): both are fixed-width and
 * zero-padded, so formatting the parsed instant writes the same characters. False otherwise (the caller formats).
 */
export function isCanonicalInstant(s: string): boolean {
  const ms = canonicalInstantMs(s);
  return ms === ms; // not NaN
}

/**
 * instantMs(s) when `s` is canonical (isCanonicalInstant), NaN otherwise: one parse answers both questions, for
 * callers that ask both of every bar.
 */
export function canonicalInstantMs(s: string): number {
  return s.length === 24 && s.charCodeAt(19) === 46 ? fastInstantMs(s) : Number.NaN;
}

const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** new Date(ms).toISOString(). Fast for integer instants from 1970 to 9999; the built-in otherwise. */
export function isoInstant(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rem = ms - days * DAY_MS;
  // H. Hinnant's civil_from_days.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(rem / 3_600_000);
  rem -= h * 3_600_000;
  const m = Math.floor(rem / 60_000);
  rem -= m * 60_000;
  const sec = Math.floor(rem / 1000);
  const milli = rem - sec * 1000;
  const fff = milli < 10 ? `00${milli}` : milli < 100 ? `0${milli}` : `${milli}`;
  return `${year}-${two(month)}-${two(day)}T${two(h)}:${two(m)}:${two(sec)}.${fff}Z`;
}
