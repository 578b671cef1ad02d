import { z } from 'zod';

/**
 * Schema builders for environment variables: every value arrives as a string (or unset), an empty string means
 * "use the default", and each failure message says what the variable expects in words an operator can act on.
 */

export const num = (def: number, check: (s: z.ZodNumber) => z.ZodNumber = (s) => s) =>
  z.preprocess(
    (v) => (v === undefined || v === '' ? def : Number(v)),
    check(z.number({ invalid_type_error: 'a number' }).finite()),
  );
export const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (v === undefined || v === '' ? def : Number(v)),
    z.number({ invalid_type_error: 'an integer' }).int('an integer').min(min).max(max),
  );
export const frac = (def: number) => num(def, (s) => s.min(0).max(1));
export const bool = (def: boolean) =>
  z.preprocess(
    (v) => {
      if (v === undefined || v === '') return def;
      const s = String(v).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      return v;
    },
    z.boolean({ invalid_type_error: 'true or false' }),
  );
export const str = (def: string) => z.preprocess((v) => (v === undefined || v === '' ? def : v), z.string().min(1));
export const optStr = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());
export const hostPort = (def: string) => str(def).pipe(z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port'));
export const url = (def: string, protocols: string[]) =>
  str(def).pipe(
    z.string().refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `a URL (${protocols.join(' or ')})`,
    ),
  );
export const isoDate = optStr.pipe(
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD')
    .optional(),
);

/** A section's variables validated: `{ NAME: value }` with each schema's output type. */
export type Parsed<T extends z.ZodRawShape> = z.infer<z.ZodObject<T>>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
