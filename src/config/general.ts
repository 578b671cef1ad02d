import { z } from 'zod';

/** General process settings: the deployment kind and the log level of every logger of the process. */
export const generalVars = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
};

export type LogLevel = z.infer<(typeof generalVars)['LOG_LEVEL']>;
