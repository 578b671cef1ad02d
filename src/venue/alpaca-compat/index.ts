export {
  startAlpacaCompatServer,
  type AlpacaCompatHooks,
  type AlpacaCompatServer,
  type AlpacaCompatServerOptions,
  type CompatRequestContext,
  type CompatResponseContext,
} from './server';
