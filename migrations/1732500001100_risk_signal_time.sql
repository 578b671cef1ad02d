-- Up Migration
-- RiskOps (additive): the signal's own time (its bar's timestamp), the clock of the duplicate-signal cooldown.
-- Market time, not the decision's wall-clock time, so a replay at 50 ms per daily bar is not mistaken for
-- a burst of duplicates, and a signal delayed in a queue is judged by the bar it came from.
ALTER TABLE risk_decisions ADD COLUMN signal_at TIMESTAMPTZ;
DROP INDEX IF EXISTS risk_decisions_cooldown;
CREATE INDEX risk_decisions_cooldown ON risk_decisions (account_id, symbol, strategy, signal_at DESC)
  WHERE decision = 'APPROVED';

-- Down Migration
DROP INDEX IF EXISTS risk_decisions_cooldown;
CREATE INDEX risk_decisions_cooldown ON risk_decisions (account_id, symbol, strategy, created_at DESC)
  WHERE decision = 'APPROVED';
ALTER TABLE risk_decisions DROP COLUMN signal_at;
