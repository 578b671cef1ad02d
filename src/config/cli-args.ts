/**
 * Command-line flags of the process entry points (src/workers, src/cli): parsed and checked in one place,
 * so a bad flag fails fast naming itself, like a bad environment variable does.
 */

/** An integer flag (`--name N`) with a default and a lower bound. */
export function intArg(name: string, v: string | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}
