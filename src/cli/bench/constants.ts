/** What every part of the trade benchmark agrees on. */
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
/** The one symbol every benchmark signal trades (the venue fills it at each bar's open). */
export const SYMBOL = 'NVDA';
export const STRATEGY = 'bench';
/** The benchmark's own PostgreSQL application_name, so the activity sampler can leave its own queries out. */
export const BENCH_APP_NAME = 'bench-trades';

/** Report that goes to stderr with the benchmark's prefix (the report itself goes to stdout). */
export const say = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};
