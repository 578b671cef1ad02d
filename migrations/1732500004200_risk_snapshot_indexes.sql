-- Up Migration
-- RiskOps snapshot (loadPortfolio), read under the account's lock on every evaluation: the asset class of each
-- held symbol is its latest approved decision's. Without this index that lookup sorted every approved decision
-- of the account (187 ms per evaluation at 200,000 decisions, ~a year at 800 a day, with evaluations of one
-- account serialised by the lock); with it each held symbol is one index probe. The cooldown's latest signal
-- time uses risk_decisions_cooldown the same way.
CREATE INDEX risk_decisions_asset_class ON risk_decisions (account_id, symbol, created_at DESC)
  WHERE decision = 'APPROVED' AND asset_class IS NOT NULL;

-- Down Migration
DROP INDEX IF EXISTS risk_decisions_asset_class;
