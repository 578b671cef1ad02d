# shellcheck shell=bash
# The cluster profile's addresses (docs/scaling.md). Sourced after scripts/lib.sh by the cluster scripts, the
# stack scripts and scripts/test.sh. Every port sits beside the shared dev stack's (PostgreSQL 5432, RabbitMQ
# 5672/15672/25672, Temporal dev server 7233/8233/metrics 8000), so both profiles run on one machine at once.
# PostgreSQL is the dev profile's server (the same DATABASE_URL): Temporal gets its own two databases on it.

# Three RabbitMQ nodes, one cluster: node i (1..3) is sat-c<i>@localhost, AMQP 5700+i, management 15700+i,
# Erlang distribution 25700+i.
CLUSTER_RMQ_NODE_COUNT=3
cluster_rmq_node() { echo "${CLUSTER_RMQ_NODE_PREFIX:-sat-c}$1@localhost"; }
cluster_rmq_port() { echo $((${CLUSTER_RMQ_BASE_PORT:-5700} + $1)); }
cluster_rmq_mgmt_port() { echo $((${CLUSTER_RMQ_BASE_PORT:-5700} + 10000 + $1)); }
cluster_rmq_dist_port() { echo $((${CLUSTER_RMQ_BASE_PORT:-5700} + 20000 + $1)); }

# The Temporal server (frontend, history, matching and worker services in one process, PostgreSQL persistence):
# frontend gRPC 7333, its HTTP API 7343, history 7334, matching 7335, worker 7339, membership 7033-7039,
# Prometheus metrics 8001; the standalone Web UI on 8333.
CLUSTER_TEMPORAL_PORT="${CLUSTER_TEMPORAL_PORT:-7333}"
CLUSTER_TEMPORAL_UI_PORT="${CLUSTER_TEMPORAL_UI_PORT:-8333}"
CLUSTER_TEMPORAL_METRICS_PORT="${CLUSTER_TEMPORAL_METRICS_PORT:-8001}"
# Temporal's two databases on the project's PostgreSQL.
CLUSTER_TEMPORAL_DB="${CLUSTER_TEMPORAL_DB:-temporal}"
CLUSTER_TEMPORAL_VISIBILITY_DB="${CLUSTER_TEMPORAL_VISIBILITY_DB:-temporal_visibility}"
# History shards: fixed for the life of a cluster (docs/scaling.md); 4 is plenty for one machine.
CLUSTER_TEMPORAL_SHARDS="${CLUSTER_TEMPORAL_SHARDS:-4}"
# The pinned server version: the one the temporal CLI 1.5.1 embeds (and 1.9.1's dev server is API-compatible).
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-1.29.1}"
# The Web UI server the CLI 1.5.1 embeds (github.com/temporalio/ui-server/v2).
TEMPORAL_UI_SERVER_VERSION="${TEMPORAL_UI_SERVER_VERSION:-2.42.1}"


# The connection settings of the cluster profile, as the app reads them (src/config): TEMPORAL_ADDRESS,
# RABBITMQ_NODES (every node; clients fail over between them), RABBITMQ_HOST/PORT/MANAGEMENT_PORT (node 1).
cluster_env() {
  local i nodes=()
  for ((i = 1; i <= CLUSTER_RMQ_NODE_COUNT; i++)); do nodes+=("127.0.0.1:$(cluster_rmq_port "$i")"); done
  export TEMPORAL_ADDRESS="127.0.0.1:$CLUSTER_TEMPORAL_PORT"
  export TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
  export TEMPORAL_UI_PORT="$CLUSTER_TEMPORAL_UI_PORT"
  export RABBITMQ_HOST=127.0.0.1
  export RABBITMQ_PORT
  RABBITMQ_PORT="$(cluster_rmq_port 1)"
  export RABBITMQ_MANAGEMENT_PORT
  RABBITMQ_MANAGEMENT_PORT="$(cluster_rmq_mgmt_port 1)"
  export RABBITMQ_NODES
  RABBITMQ_NODES="$(
    IFS=,
    echo "${nodes[*]}"
  )"
  export RABBITMQ_USER="${RABBITMQ_USER:-stockautotrader}"
  export RABBITMQ_PASS="${RABBITMQ_PASS:-$RABBITMQ_PASS_DEFAULT}"
  export RABBITMQ_VHOST="${RABBITMQ_VHOST:-stockautotrader}"
  export DATABASE_URL="${DATABASE_URL:-postgres://stockautotrader:$PG_PASS_DEFAULT@127.0.0.1:5432/stockautotrader}"
}
