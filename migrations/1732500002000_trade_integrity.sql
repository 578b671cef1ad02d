-- Up Migration
-- Trade integrity (issue 8).
-- 1. A fill inferred from the order's cumulative quantity (its execution event was lost) has no fee
--    from the broker yet: NULL says "unknown", where 0 would silently claim "free".
ALTER TABLE fills ALTER COLUMN fee DROP NOT NULL;
ALTER TABLE fills ALTER COLUMN fee DROP DEFAULT;
-- 2. One trade lifecycle (src/domain/trade-lifecycle.ts): the ledger accepts exactly its statuses.
ALTER TABLE trades ADD CONSTRAINT trades_status_lifecycle CHECK (status IN (
  'APPROVED', 'SUBMITTED', 'WORKING', 'PARTIALLY_FILLED', 'BRACKET_ACTIVE',
  'FILLED', 'CANCELLED', 'EXPIRED', 'REJECTED', 'BROKER_REJECTED', 'FAILED', 'NEEDS_REVIEW'
));

-- Down Migration
ALTER TABLE trades DROP CONSTRAINT trades_status_lifecycle;
UPDATE fills SET fee = 0 WHERE fee IS NULL;
ALTER TABLE fills ALTER COLUMN fee SET DEFAULT 0;
ALTER TABLE fills ALTER COLUMN fee SET NOT NULL;
