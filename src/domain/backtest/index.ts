export * from './engine';
export * from './metrics';
export * from './walk-forward';
