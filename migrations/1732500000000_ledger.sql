-- Up Migration
-- The ledger: the single source of portfolio truth. Every write is idempotent (keyed by a
-- deterministic id), so a retried activity leaves no second trace. Money is NUMERIC, never float.

CREATE TABLE accounts (
  account_id        TEXT PRIMARY KEY,
  starting_cash     NUMERIC(20, 6) NOT NULL,
  cash              NUMERIC(20, 6) NOT NULL,
  -- Equity at the start of the trading day: the circuit breaker measures drawdown against it.
  day_start_equity  NUMERIC(20, 6) NOT NULL,
  day_start_date    DATE NOT NULL DEFAULT CURRENT_DATE,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Kill switch. One row per account; history keeps who changed it and when.
CREATE TABLE trading_state (
  account_id  TEXT PRIMARY KEY REFERENCES accounts(account_id),
  state       TEXT NOT NULL CHECK (state IN ('ACTIVE', 'HALTED', 'REDUCING')),
  changed_by  TEXT NOT NULL,
  reason      TEXT,
  changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE trading_state_history (
  id          BIGSERIAL PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts(account_id),
  state       TEXT NOT NULL,
  changed_by  TEXT NOT NULL,
  reason      TEXT,
  changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One trade per signal (workflow id trade-<signal_id>): its lifecycle as the ledger sees it.
CREATE TABLE trades (
  workflow_id     TEXT PRIMARY KEY,
  signal_id       TEXT NOT NULL UNIQUE,
  correlation_id  TEXT NOT NULL,
  account_id      TEXT NOT NULL REFERENCES accounts(account_id),
  symbol          TEXT NOT NULL,
  side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  strategy        TEXT NOT NULL,
  status          TEXT NOT NULL,
  reason_code     TEXT,
  filled_qty      NUMERIC(20, 6) NOT NULL DEFAULT 0,
  avg_fill_price  NUMERIC(20, 6),
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every risk evaluation, for audit. Unique per workflow: a retried evaluateRisk returns the stored decision.
CREATE TABLE risk_decisions (
  id              BIGSERIAL PRIMARY KEY,
  workflow_id     TEXT NOT NULL UNIQUE,
  signal_id       TEXT NOT NULL,
  correlation_id  TEXT NOT NULL,
  account_id      TEXT NOT NULL REFERENCES accounts(account_id),
  symbol          TEXT NOT NULL,
  side            TEXT NOT NULL,
  decision        TEXT NOT NULL CHECK (decision IN ('APPROVED', 'REJECTED')),
  reason_code     TEXT NOT NULL,
  qty             NUMERIC(20, 6) NOT NULL,
  notional        NUMERIC(20, 6) NOT NULL,
  checks          JSONB NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Exposure held by in-flight trades, so two concurrent approvals cannot spend the same limit.
CREATE TABLE reservations (
  workflow_id  TEXT PRIMARY KEY,
  account_id   TEXT NOT NULL REFERENCES accounts(account_id),
  symbol       TEXT NOT NULL,
  side         TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  qty          NUMERIC(20, 6) NOT NULL,
  notional     NUMERIC(20, 6) NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('HELD', 'RELEASED')),
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  released_at  TIMESTAMPTZ
);
CREATE INDEX reservations_held ON reservations (account_id) WHERE status = 'HELD';

CREATE TABLE orders (
  client_order_id         TEXT PRIMARY KEY,
  workflow_id             TEXT NOT NULL,
  parent_client_order_id  TEXT REFERENCES orders(client_order_id),
  account_id              TEXT NOT NULL REFERENCES accounts(account_id),
  broker                  TEXT NOT NULL,
  broker_order_id         TEXT,
  symbol                  TEXT NOT NULL,
  side                    TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  qty                     NUMERIC(20, 6) NOT NULL,
  order_type              TEXT NOT NULL,
  time_in_force           TEXT NOT NULL,
  spec                    JSONB NOT NULL,
  status                  TEXT NOT NULL,
  filled_qty              NUMERIC(20, 6) NOT NULL DEFAULT 0,
  avg_fill_price          NUMERIC(20, 6),
  correlation_id          TEXT NOT NULL,
  created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_workflow ON orders (workflow_id);

-- The broker's execution id is the fill's identity: a duplicate stream event or a retried
-- recordFill can never count a fill twice.
CREATE TABLE fills (
  execution_id     TEXT PRIMARY KEY,
  client_order_id  TEXT NOT NULL REFERENCES orders(client_order_id),
  broker_order_id  TEXT NOT NULL,
  account_id       TEXT NOT NULL REFERENCES accounts(account_id),
  symbol           TEXT NOT NULL,
  side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  qty              NUMERIC(20, 6) NOT NULL CHECK (qty > 0),
  price            NUMERIC(20, 6) NOT NULL CHECK (price > 0),
  -- The order's cumulative filled quantity after this fill. A fill seen on the stream (with the broker's
  -- execution id) and the same fill inferred from polling share it, so neither source can double-count.
  cum_qty          NUMERIC(20, 6) NOT NULL,
  fee              NUMERIC(20, 6) NOT NULL DEFAULT 0,
  executed_at      TIMESTAMPTZ NOT NULL,
  correlation_id   TEXT NOT NULL,
  recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX fills_order_progress ON fills (client_order_id, cum_qty);

-- Derived from fills in the same transaction as the fill insert.
CREATE TABLE positions (
  account_id    TEXT NOT NULL REFERENCES accounts(account_id),
  symbol        TEXT NOT NULL,
  qty           NUMERIC(20, 6) NOT NULL DEFAULT 0,
  avg_cost      NUMERIC(20, 6) NOT NULL DEFAULT 0,
  realized_pnl  NUMERIC(20, 6) NOT NULL DEFAULT 0,
  last_price    NUMERIC(20, 6),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, symbol)
);

CREATE TABLE cash_movements (
  id            BIGSERIAL PRIMARY KEY,
  account_id    TEXT NOT NULL REFERENCES accounts(account_id),
  kind          TEXT NOT NULL CHECK (kind IN ('deposit', 'fill', 'fee', 'adjustment')),
  amount        NUMERIC(20, 6) NOT NULL,
  execution_id  TEXT REFERENCES fills(execution_id),
  note          TEXT,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (execution_id, kind)
);

CREATE TABLE market_bars (
  symbol     TEXT NOT NULL,
  interval   TEXT NOT NULL,
  ts         TIMESTAMPTZ NOT NULL,
  open       NUMERIC(20, 6) NOT NULL,
  high       NUMERIC(20, 6) NOT NULL,
  low        NUMERIC(20, 6) NOT NULL,
  close      NUMERIC(20, 6) NOT NULL,
  volume     NUMERIC(24, 6) NOT NULL,
  source     TEXT NOT NULL,
  PRIMARY KEY (symbol, interval, ts)
);

-- Reconciliation findings that need a human.
CREATE TABLE reconciliation_issues (
  id           BIGSERIAL PRIMARY KEY,
  run_id       TEXT NOT NULL,
  kind         TEXT NOT NULL,
  symbol       TEXT,
  client_order_id TEXT,
  detail       JSONB NOT NULL,
  action       TEXT NOT NULL CHECK (action IN ('ADOPTED', 'FLAGGED')),
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE reconciliation_issues, market_bars, cash_movements, positions, fills, orders, reservations,
  risk_decisions, trades, trading_state_history, trading_state, accounts;
