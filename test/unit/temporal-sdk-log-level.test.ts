import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { BarStoreBehindError } from '../../src/domain/risk';
import { sdkLogLevel } from '../../src/workers/temporal-runtime';

describe("the Temporal SDK's log lines in our logs", () => {
  const behind = new BarStoreBehindError('NVDA', '2014-02-07T00:00:00.000Z', '2014-02-06T00:00:00.000Z');

  it('logs a failed attempt that is a designed wait (the bar store a bar behind) at debug, not as a warning', () => {
    expect(sdkLogLevel('WARN', 'Activity failed', { error: behind, activityType: 'evaluateRisk' })).toBe('debug');
    // As the risk activity throws its waits: application failures typed by the wait.
    for (const type of ['BarStoreBehindError', 'TradesInFlightError']) {
      const failure = ApplicationFailure.create({ type, message: 'waiting', nextRetryDelay: 50 });
      expect(sdkLogLevel('WARN', 'Activity failed', { error: failure })).toBe('debug');
    }
    expect(
      sdkLogLevel('WARN', 'Activity failed', { error: ApplicationFailure.create({ type: 'BrokerRejected' }) }),
    ).toBe('warn');
  });

  it('keeps every other failure a warning, whatever its message or error', () => {
    expect(sdkLogLevel('WARN', 'Activity failed', { error: new Error('connect ECONNREFUSED') })).toBe('warn');
    expect(sdkLogLevel('WARN', 'Activity failed', {})).toBe('warn');
    expect(sdkLogLevel('WARN', 'Workflow failed', { error: behind })).toBe('warn');
    expect(sdkLogLevel('ERROR', 'Activity failed', { error: { name: 'BrokerRejected' } })).toBe('error');
    expect(sdkLogLevel('INFO', 'Worker state changed', undefined)).toBe('info');
  });
});
