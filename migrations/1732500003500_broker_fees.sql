-- Up Migration
-- Fees the broker charges outside any fill (Alpaca's end-of-day REG/TAF FEE activities) are booked as cash
-- movements of kind 'fee' carrying the broker's activity id instead of an execution id. One row per activity
-- and account, so booking them again (every reconciliation run re-reads the last days) changes nothing.
ALTER TABLE cash_movements ADD COLUMN broker_activity_id TEXT;
ALTER TABLE cash_movements ADD COLUMN charged_on DATE;
CREATE UNIQUE INDEX cash_movements_broker_activity
  ON cash_movements (account_id, broker_activity_id) WHERE broker_activity_id IS NOT NULL;
ALTER TABLE cash_movements ADD CONSTRAINT cash_movements_broker_fee_day
  CHECK ((broker_activity_id IS NULL) = (charged_on IS NULL));

-- Down Migration
ALTER TABLE cash_movements DROP CONSTRAINT cash_movements_broker_fee_day;
DROP INDEX cash_movements_broker_activity;
ALTER TABLE cash_movements DROP COLUMN charged_on;
ALTER TABLE cash_movements DROP COLUMN broker_activity_id;
