-- Up Migration
-- RiskOps additions (strictly additive to the ledger schema):
-- * risk_decisions.strategy: the duplicate-signal cooldown is per symbol + strategy;
-- * risk_decisions.asset_class / reservations.asset_class: margin and leverage limits depend on the class;
-- * risk_decisions.result: the full decision (checks, sizing, metrics), returned unchanged when a retried
--   evaluateRisk activity finds its own earlier decision.
ALTER TABLE risk_decisions
  ADD COLUMN strategy TEXT,
  ADD COLUMN asset_class TEXT,
  ADD COLUMN result JSONB;
ALTER TABLE reservations ADD COLUMN asset_class TEXT;
CREATE INDEX risk_decisions_cooldown ON risk_decisions (account_id, symbol, strategy, created_at DESC)
  WHERE decision = 'APPROVED';

-- Down Migration
DROP INDEX risk_decisions_cooldown;
ALTER TABLE reservations DROP COLUMN asset_class;
ALTER TABLE risk_decisions DROP COLUMN result, DROP COLUMN asset_class, DROP COLUMN strategy;
