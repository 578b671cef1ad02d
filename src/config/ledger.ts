import { num, str, url } from './fields';

/**
 * The ledger's settings (PostgreSQL and the account traded). They stay top-level fields of Config
 * (`databaseUrl`, `accountId`, `startingCash`): every process that touches the ledger reads them.
 */
export const ledgerVars = {
  DATABASE_URL: url('postgres://stockautotrader:stockautotrader-local@127.0.0.1:5432/stockautotrader', [
    'postgres:',
    'postgresql:',
  ]),
  ACCOUNT_ID: str('default'),
  STARTING_CASH: num(100_000, (s) => s.positive()),
};
