// Everything the worker registers as workflow code. Deterministic sandbox: no I/O imports here.
export { tradeWorkflow, statusQuery } from './trade';
