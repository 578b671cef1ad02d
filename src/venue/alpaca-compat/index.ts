export { startAlpacaCompatServer, type AlpacaCompatServer, type AlpacaCompatServerOptions } from './server';
export type { AlpacaCompatHooks, CompatRequestContext, CompatResponseContext } from './hooks';
export { activityIdFor } from './wire';
