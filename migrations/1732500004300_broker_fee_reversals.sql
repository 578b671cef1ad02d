-- Up Migration
-- A broker fee cancelled after it was booked (Alpaca lists the same FEE activity again with status `canceled`)
-- is reversed by a movement of kind 'fee_reversal' carrying the same activity id: the booked fee stays as it was
-- charged, and cash = Σ movements still holds. One charge and at most one reversal per activity and account.
ALTER TABLE cash_movements DROP CONSTRAINT cash_movements_kind_check;
ALTER TABLE cash_movements ADD CONSTRAINT cash_movements_kind_check
  CHECK (kind IN ('deposit', 'fill', 'fee', 'fee_reversal', 'adjustment'));
DROP INDEX cash_movements_broker_activity;
CREATE UNIQUE INDEX cash_movements_broker_activity
  ON cash_movements (account_id, broker_activity_id, kind) WHERE broker_activity_id IS NOT NULL;

-- Down Migration
DELETE FROM cash_movements WHERE kind = 'fee_reversal';
DROP INDEX cash_movements_broker_activity;
CREATE UNIQUE INDEX cash_movements_broker_activity
  ON cash_movements (account_id, broker_activity_id) WHERE broker_activity_id IS NOT NULL;
ALTER TABLE cash_movements DROP CONSTRAINT cash_movements_kind_check;
ALTER TABLE cash_movements ADD CONSTRAINT cash_movements_kind_check
  CHECK (kind IN ('deposit', 'fill', 'fee', 'adjustment'));
