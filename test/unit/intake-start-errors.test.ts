import { ServiceError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { classifyStartError } from '../../src/workers/signal-intake';

/**
 * How intake sorts `workflow.start` failures. The errors are built the way @temporalio/client 1.24 throws them:
 * a ServiceError("Failed to start Workflow") whose cause is the gRPC error (code, details, metadata); the
 * integration test (intake-start-errors.test.ts) gets the same shapes from the real dev server.
 */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}
const startFailed = (code: number, details: string) =>
  new ServiceError('Failed to start Workflow', { cause: grpcError(code, details) });

describe('classifyStartError', () => {
  it('"already started" is a duplicate delivery (ack, no dead-letter)', () => {
    expect(classifyStartError(new WorkflowExecutionAlreadyStartedError('exists', 'trade-1', 'tradeWorkflow'))).toEqual({
      kind: 'duplicate',
    });
  });

  it('an unknown namespace is permanent, with the namespace in the reason', () => {
    expect(classifyStartError(new NamespaceNotFoundError('prod'))).toEqual({
      kind: 'permanent',
      status: 'NOT_FOUND',
      reason: 'namespace not found: prod',
    });
  });

  it.each([
    [3, 'INVALID_ARGUMENT', 'Namespace default has no mapping defined for search attribute Foo'],
    [3, 'INVALID_ARGUMENT', 'Blob data size exceeds limit.'],
    [5, 'NOT_FOUND', 'Namespace xyz is not found.'],
    [6, 'ALREADY_EXISTS', 'something exists'],
    [7, 'PERMISSION_DENIED', 'Request unauthorized.'],
    [12, 'UNIMPLEMENTED', 'unknown method StartWorkflowExecution'],
  ])('gRPC %i (%s) is permanent', (code, status, details) => {
    expect(classifyStartError(startFailed(code, details))).toEqual({
      kind: 'permanent',
      status,
      reason: `${status}: ${details}`,
    });
  });

  it("gRPC's own message size limit (RESOURCE_EXHAUSTED 'larger than max') is permanent: the message will never fit", () => {
    const details = 'grpc: received message larger than max (5000156 vs. 4194304)';
    expect(classifyStartError(startFailed(8, details))).toMatchObject({
      kind: 'permanent',
      status: 'RESOURCE_EXHAUSTED',
    });
  });

  it.each([
    [1, 'CANCELLED'],
    [2, 'UNKNOWN'],
    [4, 'DEADLINE_EXCEEDED'],
    [8, 'RESOURCE_EXHAUSTED'],
    [9, 'FAILED_PRECONDITION'],
    [10, 'ABORTED'],
    [11, 'OUT_OF_RANGE'],
    [13, 'INTERNAL'],
    [14, 'UNAVAILABLE'],
    [15, 'DATA_LOSS'],
    [16, 'UNAUTHENTICATED'],
  ])('gRPC %i (%s) is transient (retried with backoff, message held)', (code, status) => {
    expect(classifyStartError(startFailed(code, 'x'))).toEqual({ kind: 'transient', status, reason: `${status}: x` });
  });

  it('a bare gRPC error (not wrapped) is read the same way', () => {
    expect(classifyStartError(grpcError(14, 'Connection refused'))).toMatchObject({
      kind: 'transient',
      status: 'UNAVAILABLE',
    });
  });

  it('an error without a gRPC status is transient (a connection being re-established; nothing is lost by waiting)', () => {
    expect(classifyStartError(new Error('socket hang up'))).toEqual({
      kind: 'transient',
      status: 'NO_STATUS',
      reason: 'socket hang up',
    });
  });
});
