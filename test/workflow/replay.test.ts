import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { History } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { FIXTURES, HISTORIES_DIR, historyFromFixtureJson, tradeWorkflowIdOf } from '../../scripts/record-histories';
import { TRADE_WORKFLOW_TYPE } from '../../src/workflows/shared';
import { quietTemporalRuntime, tradeWorkflowBundle, workflowBundle } from '../support/temporal';

/**
 * Determinism guard: every recorded trade history in test/fixtures/histories/ (scripts/record-histories.ts, or a
 * production history exported with `temporal workflow show --output json`) must replay against the CURRENT
 * workflow code. A change that reorders, adds or removes commands for an existing history, without a `patched()`
 * branch, fails here before it can break running trades (docs/workflow-versioning.md). No server is needed.
 */

interface Fixture {
  file: string;
  workflowId: string;
  history: History;
  lastEventType: unknown;
}

const CLOSED = /WORKFLOW_EXECUTION_(COMPLETED|CANCELED|FAILED|TERMINATED|TIMED_OUT|CONTINUED_AS_NEW)$/;
const eventTypeName = (t: unknown): string =>
  typeof t === 'number' ? String(temporal.api.enums.v1.EventType[t]) : String(t);
const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
/** The activity types a recorded history scheduled, in order. */
const activities = (file: string): string[] =>
  (
    readJson(file) as {
      events: Array<{ activityTaskScheduledEventAttributes?: { activityType: { name: string } } }>;
    }
  ).events
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType.name)
    .filter((n): n is string => !!n);

function loadFixtures(): Fixture[] {
  // Recursive: archived histories (e.g. archive/<patch-id>/, kept while a patched() branch still serves them)
  // are replayed too.
  return (fs.readdirSync(HISTORIES_DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const history = historyFromFixtureJson(readJson(file));
      return {
        file,
        // The trade derives its client order id from the workflow id, so replay with the recorded one.
        workflowId: tradeWorkflowIdOf(history) ?? path.basename(file, '.json'),
        history,
        lastEventType: history.events?.at(-1)?.eventType,
      };
    });
}

async function replayAll(
  bundle: WorkflowBundleOption,
  items: Array<{ workflowId: string; history: History }>,
): Promise<Array<{ workflowId: string; error?: Error }>> {
  const out: Array<{ workflowId: string; error?: Error }> = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'trade-histories' }, items)) {
    out.push({ workflowId: r.workflowId, ...(r.error ? { error: r.error } : {}) });
  }
  return out;
}

describe('tradeWorkflow replays every recorded history (determinism guard)', () => {
  let bundle: WorkflowBundleOption;
  const fixtures = loadFixtures();

  beforeAll(async () => {
    quietTemporalRuntime();
    // REPLAY_WORKFLOWS_PATH: replay against another copy of the workflow code (e.g. a candidate change in a
    // scratch checkout) without touching src/.
    // Otherwise the current code: the prebuilt bundle scripts/test.sh builds before the tests while it is current
    // (no webpack run in this worker), else bundled from src/workflows.
    const other = process.env.REPLAY_WORKFLOWS_PATH;
    bundle = other ? await workflowBundle(path.resolve(other)) : await tradeWorkflowBundle();
  });

  it('has a complete, closed history for every representative trade', () => {
    expect(fixtures.map((f) => f.file)).toEqual(expect.arrayContaining(FIXTURES.map((f) => `${f.name}.json`)));
    for (const f of fixtures) {
      expect(f.history.events?.length, f.file).toBeGreaterThan(3);
      // A truncated history would replay trivially; every fixture must run to the workflow's end.
      expect(eventTypeName(f.lastEventType), f.file).toMatch(CLOSED);
    }
  });

  it('replays all fixtures with Worker.runReplayHistories: no DeterminismViolationError, no replay failure', async () => {
    const results = await replayAll(bundle, fixtures);
    expect(results.map((r) => r.workflowId)).toEqual(fixtures.map((f) => f.workflowId));
    const failures = results
      .map((r, i) => (r.error ? `${fixtures[i]!.file}: ${r.error.name}: ${r.error.message}` : null))
      .filter(Boolean);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('includes a scheduled reconciliation run, replayed with the trades', () => {
    const run = fixtures.find((f) => f.file === path.join('reconciliation', 'completed.json'));
    expect(run?.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe(
      'reconciliationWorkflow',
    );
  });

  it('covers the old command sequence: the pre-trade-path-lean histories are kept under archive/', () => {
    const archived = loadFixtures().filter((f) => f.file.startsWith('archive/pre-trade-path-lean/'));
    expect(archived.map((f) => path.basename(f.file)).sort()).toEqual(expect.arrayContaining(['filled-market.json']));
  });

  it('finalize-joins-follow: a filled trade ends without a finalizeTrade activity; the old sequence is archived', () => {
    expect(activities('filled-market.json')).toEqual(['submitOrder', 'followOrder']);
    expect(activities('archive/pre-finalize-joins-follow/filled-market.json')).toEqual([
      'submitOrder',
      'followOrder',
      'finalizeTrade',
    ]);
    // Ends the follow did not see complete (deadline, cancel) still finalise through the activity.
    expect(activities('partial-fill-tif-expiry.json')).toContain('finalizeTrade');
    expect(activities('cancelled.json')).toContain('finalizeTrade');
  });

  it('submit-awaits-completion: an order filled in the submit window ends with one activity; the bare-order histories replay', () => {
    expect(activities('filled-at-submit.json')).toEqual(['submitOrder']);
    // Recorded when submitOrder answered with the bare order: the same fill still took a finalizeTrade activity,
    // and that history (a trade running at deploy) replays it, because the answer's shape decides the path.
    expect(activities('archive/pre-submit-awaits-completion/filled-at-submit.json')).toEqual([
      'submitOrder',
      'finalizeTrade',
    ]);
  });

  it('trade-path-lean: the order is scheduled by the first workflow task, with risk as a local activity', () => {
    const { events } = readJson('filled-market.json') as {
      events: Array<{
        eventType: string;
        activityTaskScheduledEventAttributes?: { activityType: { name: string } };
        markerRecordedEventAttributes?: { markerName: string };
        upsertWorkflowSearchAttributesEventAttributes?: {
          searchAttributes: { indexedFields: Record<string, unknown> };
        };
      }>;
    };
    const submitAt = events.findIndex(
      (e) => e.activityTaskScheduledEventAttributes?.activityType.name === 'submitOrder',
    );
    const before = events.slice(0, submitAt);
    expect(before.filter((e) => e.eventType.endsWith('WORKFLOW_TASK_COMPLETED'))).toHaveLength(1);
    expect(before.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    expect(before.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toBe(true);
    // Symbol/Side/Strategy come from the start request; TradeStatus is upserted only when it changes.
    const upserted = events.flatMap((e) =>
      Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes.indexedFields ?? {}),
    );
    expect(upserted).not.toContain('Symbol');
    expect(upserted.filter((k) => k === 'TradeStatus')).toHaveLength(3); // SUBMITTING, WORKING, FILLED
  });

  it('tradeWorkflowV2: new trades carry no patch marker, no TemporalChangeVersion upsert, no deadline timer', () => {
    type Events = Array<{
      eventType: string;
      workflowExecutionStartedEventAttributes?: { workflowType: { name: string } };
      markerRecordedEventAttributes?: { markerName: string };
      upsertWorkflowSearchAttributesEventAttributes?: { searchAttributes: { indexedFields: Record<string, unknown> } };
    }>;
    const typeOf = (events: Events) => events[0]!.workflowExecutionStartedEventAttributes!.workflowType.name;
    const markers = (events: Events) =>
      events.map((e) => e.markerRecordedEventAttributes?.markerName).filter((n): n is string => !!n);
    const upserted = (events: Events) =>
      events.flatMap((e) =>
        Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes.indexedFields ?? {}),
      );
    const current = FIXTURES.map((f) => ({
      name: f.name,
      events: (readJson(`${f.name}.json`) as { events: Events }).events,
    }));
    for (const { name, events } of current) {
      expect(typeOf(events), name).toBe(TRADE_WORKFLOW_TYPE);
      expect(markers(events), name).not.toContain('core_patch');
      expect(upserted(events), name).not.toContain('TemporalChangeVersion');
    }
    // The deadline is read on the workflow's clock between follows: neither a filled trade nor one that
    // expired at its deadline starts a timer.
    for (const name of ['filled-market', 'partial-fill-tif-expiry']) {
      const { events } = current.find((c) => c.name === name)!;
      expect(
        events.filter((e) => e.eventType.endsWith('TIMER_STARTED')),
        name,
      ).toEqual([]);
    }
    // The patched type's last histories (both patches, a timer per trade) are archived and replayed above.
    const patchedType = (readJson('archive/pre-trade-workflow-v2/filled-market.json') as { events: Events }).events;
    expect(typeOf(patchedType)).toBe('tradeWorkflow');
    expect(markers(patchedType).filter((m) => m === 'core_patch')).toHaveLength(2);
    expect(upserted(patchedType).filter((k) => k === 'TemporalChangeVersion')).toHaveLength(2);
  });

  it('detects a mismatch: a history whose first activity is not submitOrder fails with DeterminismViolationError', async () => {
    // The guard itself must be able to fail: simulate code that no longer matches the history by editing the
    // history instead (the first scheduled activity becomes followOrder, as if the submit were skipped). Since
    // trade-path-lean, risk is a local activity (a marker), so submitOrder is the first scheduled activity.
    const json = readJson('filled-market.json') as {
      events: Array<{ activityTaskScheduledEventAttributes?: { activityType: { name: string } } }>;
    };
    const scheduled = json.events.find((e) => e.activityTaskScheduledEventAttributes)!;
    expect(scheduled.activityTaskScheduledEventAttributes!.activityType.name).toBe('submitOrder');
    scheduled.activityTaskScheduledEventAttributes!.activityType.name = 'followOrder';
    const history = historyFromFixtureJson(json);
    const [result] = await replayAll(bundle, [{ workflowId: tradeWorkflowIdOf(history)!, history }]);
    expect(result!.error).toBeInstanceOf(DeterminismViolationError);
    expect(result!.error!.message).toMatch(/nondeterminism/i);
  });
});
