#!/usr/bin/env bash
# Print the cluster profile's connection settings as NAME=VALUE lines (scripts/cluster/env.sh is their one source):
# TEMPORAL_ADDRESS, TEMPORAL_UI_PORT, RABBITMQ_NODES, RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_MANAGEMENT_PORT.
# Used by `npm run bench:trades -- --cluster` to run its second pass on the cluster profile; also handy as
#   env $(bash scripts/cluster/print-env.sh) npm run worker
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ROOT/scripts/cluster/env.sh"
cluster_env
for name in TEMPORAL_ADDRESS TEMPORAL_UI_PORT RABBITMQ_NODES RABBITMQ_HOST RABBITMQ_PORT RABBITMQ_MANAGEMENT_PORT; do
  printf '%s=%s\n' "$name" "${!name}"
done
