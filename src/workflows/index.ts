// Everything the worker registers as workflow code. Deterministic sandbox: no I/O imports here.
export { tradeWorkflowV2, tradeWorkflow, statusQuery } from './trade';
export { reconciliationWorkflow } from './reconciliation';
