import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { OhlcvBar } from '../contracts/bar';
import type { TradeSignal } from '../contracts/signal';
import { ensureAccount, evaluateAndReserve } from '../adapters/postgres/risk-store';
import {
  BAR_WAIT_ATTEMPTS,
  BarStoreBehindError,
  IN_FLIGHT_WAIT_ATTEMPTS,
  TradesInFlightError,
  barsNeeded,
  waitDelayMs,
  type RiskDecision,
  type RiskLimits,
} from '../domain/risk';
import { withCorrelation, type Logger } from '../logging';
import { tradesFinished } from '../metrics';

/**
 * Risk activities: thin glue between the trade workflow, the pure engine and the ledger.
 *
 * Temporal semantics:
 * - A rejection is a normal return value (the workflow reads decision.reasonCode), never a failure.
 * - Database errors propagate as ordinary errors, so Temporal retries them. A retry is safe: the store
 *   returns the decision already recorded for the workflow id and never reserves twice.
 */

export interface RiskActivityDeps {
  pool: Pool;
  limits: RiskLimits;
  accountId: string;
  startingCash: number;
  logger: Logger;
}

export interface EvaluateRiskInput {
  workflowId: string;
  signal: TradeSignal;
  market?: { vix?: number; recentBars?: OhlcvBar[] };
}

export function createRiskActivities(deps: RiskActivityDeps) {
  const { pool, limits, accountId, startingCash, logger } = deps;
  let accountReady: Promise<void> | undefined;
  // Created once per worker process; a failed attempt is forgotten so the next activity retries it.
  const ensureReady = () =>
    (accountReady ??= ensureAccount(pool, accountId, startingCash).catch((err: unknown) => {
      accountReady = undefined;
      throw err;
    }));

  return {
    /** Decide the trade and reserve its exposure. Idempotent per workflow id. */
    async evaluateRisk(input: EvaluateRiskInput): Promise<RiskDecision> {
      const { workflowId, signal } = input;
      const log = withCorrelation(
        logger,
        typeof signal?.correlation_id === 'string' ? signal.correlation_id : undefined,
        {
          workflow_id: workflowId,
          symbol: signal?.symbol,
          side: signal?.side,
        },
      );
      await ensureReady();

      // Bars up to the signal's time only: a replayed signal must not size on bars from its future. Read in the
      // evaluation's first round trip (evaluateAndReserve) unless the caller brought them. The signal's time is
      // its bar's: the first attempts wait (by failing, for the retry policy) while the store is a bar or so
      // behind it (domain/risk/bar-lag.ts); the last decides on what is stored, and records which bar that was.
      const attempt = attemptOfThisCall();
      const loadBars =
        input.market?.recentBars === undefined && typeof signal?.symbol === 'string' && signal.symbol !== ''
          ? {
              symbol: signal.symbol,
              count: barsNeeded(limits),
              ...(typeof signal.created_at === 'string' && !Number.isNaN(Date.parse(signal.created_at))
                ? { asOf: signal.created_at, awaitSignalBar: attempt <= BAR_WAIT_ATTEMPTS }
                : {}),
            }
          : undefined;

      let evaluated;
      try {
        evaluated = await evaluateAndReserve(pool, {
          workflowId,
          signal,
          market: {
            ...(input.market?.vix !== undefined ? { vix: input.market.vix } : {}),
            recentBars: input.market?.recentBars ?? [],
          },
          limits,
          accountId,
          now: new Date(),
          ...(loadBars ? { recentBars: loadBars } : {}),
          // A rejection that reads the symbol's trades in flight waits for them to settle (domain/risk/in-flight.ts).
          awaitTradesInFlight: attempt <= IN_FLIGHT_WAIT_ATTEMPTS,
        });
      } catch (err) {
        if (err instanceof BarStoreBehindError) {
          log.info(
            { stored_through: err.storedThrough, signal_bar: err.signalBar, attempt, waits: BAR_WAIT_ATTEMPTS },
            "risk waits for the signal's bar: the bar store is behind",
          );
          throw designedWait(err, attempt);
        }
        if (err instanceof TradesInFlightError) {
          log.info(
            { would_reject: err.reasonCode, in_flight: err.inFlight, attempt, waits: IN_FLIGHT_WAIT_ATTEMPTS },
            "risk waits for the symbol's trades in flight to settle",
          );
          throw designedWait(err, attempt);
        }
        throw err;
      }
      const { decision, replayed } = evaluated;

      const failed = decision.checks.find((c) => !c.passed);
      log.info(
        {
          decision: decision.decision,
          reason_code: decision.reasonCode,
          qty: decision.qty,
          notional: decision.notional,
          replayed,
          ...(failed ? { failed_check: failed.name, value: failed.value, limit: failed.limit } : {}),
          binding_limit: decision.sizing?.bindingLimit ?? null,
        },
        decision.decision === 'APPROVED' ? 'risk approved' : 'risk rejected',
      );
      // A risk rejection ends the trade here (no finalizeTrade follows); a replayed decision was counted already.
      if (decision.decision === 'REJECTED' && !replayed) {
        tradesFinished.inc({ status: 'REJECTED', reason_code: decision.reasonCode ?? 'none' });
      }
      return decision;
    },
  };
}

export type RiskActivities = ReturnType<typeof createRiskActivities>;

/**
 * A designed wait as the failure that retries it: its own type (the error's name) and the wait's delay
 * (waitDelayMs) as the retry's delay, instead of the retry policy's backoff for real failures (0.5 s, doubling).
 * Temporal's Core honours an application failure's next retry delay for a local activity too.
 */
function designedWait(err: BarStoreBehindError | TradesInFlightError, attempt: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: err.name,
    message: err.message,
    nextRetryDelay: waitDelayMs(attempt),
    cause: err,
  });
}

/**
 * This call's attempt number under Temporal's retry policy. Outside an activity (a script or a test calling the
 * function directly) nothing would retry a failure, so the call counts as the last attempt: it never waits.
 */
function attemptOfThisCall(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
