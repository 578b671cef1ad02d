#!/bin/sh
# Temporal's schema set-up step (run once by the temporal-schema service of docker-compose.yml, from the official
# temporalio/admin-tools image): create the `temporal` and `temporal_visibility` databases on the PostgreSQL
# service and bring both schemas to the version this server release needs. Safe to run again: an existing
# database or schema is left as it is and only pending schema versions are applied.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p 5432 "$@"; }
for db in temporal temporal_visibility; do
  tool --db "$db" create 2>/dev/null || echo "database $db exists"
done
tool --db temporal setup-schema -v 0.0 2>/dev/null || echo "temporal schema exists"
tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
tool --db temporal_visibility setup-schema -v 0.0 2>/dev/null || echo "visibility schema exists"
tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo "temporal schemas ready"
