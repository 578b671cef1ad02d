#!/usr/bin/env bash
# Start the local stack: PostgreSQL, RabbitMQ and the Temporal dev server (scripts/provision/*.sh).
#   scripts/stack-up.sh [--cluster] [server...]
#     servers: postgres rabbitmq temporal-dev (default: all three)
#     --cluster (or STACK_PROFILE=cluster): the cluster profile instead (docs/scaling.md): PostgreSQL, a three-node
#       RabbitMQ cluster (rabbitmq-cluster) and the Temporal server on PostgreSQL (temporal-server), on ports
#       beside the dev stack's (scripts/cluster/env.sh), so both profiles can run at once.
# Safe to run twice: running servers are left alone. Servers given by TEMPORAL_ADDRESS / RABBITMQ_HOST+PORT /
# DATABASE_URL that already answer are used as they are (only migrations / search attributes are applied).
# The servers keep running until scripts/stack-down.sh (or the end of the session).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$ROOT/scripts/cluster/env.sh"
LOG_TAG=stack-up

keep_auto=no
servers=()
for a in "$@"; do
  case "$a" in
    --keep-auto) keep_auto=yes ;; # internal: used by stack_acquire (test.sh, with-stack.sh)
    --cluster) export STACK_PROFILE=cluster ;;
    postgres | rabbitmq | temporal-dev | rabbitmq-cluster | temporal-server) servers+=("$a") ;;
    temporal) servers+=(temporal-dev) ;;
    *) die "unknown server '$a' (postgres, rabbitmq, temporal-dev, rabbitmq-cluster, temporal-server; or --cluster)" ;;
  esac
done
# shellcheck disable=SC2207
((${#servers[@]})) || servers=($(profile_servers))

t0=$(now_ms)
stack_env

# Migrations run through tsx (PostgreSQL only: `stack-up.sh rabbitmq` must not race an `npm ci` running beside it).
# Not when scripts/test.sh is running npm ci beside this start: the migrations wait for it (npm_ready_wait).
if [[ " ${servers[*]} " == *" postgres "* && ! -x "$ROOT/node_modules/.bin/tsx" ]] && ! npm_ci_running; then
  log "node_modules missing: npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

# A hand-started stack stays up: forget that a test run started any of these servers.
if [[ $keep_auto == no ]]; then
  for s in "${servers[@]}"; do rm -f "$RUN/auto-$s"; done
fi

# Missing Debian packages of these servers in one apt-get transaction, before the servers start in parallel (each
# server script would otherwise install its own, one after the other behind the dpkg lock).
if [[ " ${servers[*]} " =~ " "(postgres|rabbitmq|rabbitmq-cluster)" " ]]; then
  bash "$ROOT/scripts/provision.sh" apt >/dev/null || die "could not install the stack's packages"
fi

# Start the servers in parallel (RabbitMQ's Erlang boot is the slow one); each logs with its own tag.
declare -A pids
for s in "${servers[@]}"; do
  bash "$ROOT/scripts/provision/$s.sh" up &
  pids[$s]=$!
done
failed=()
for s in "${servers[@]}"; do
  wait "${pids[$s]}" || failed+=("$s")
done
if ((${#failed[@]})); then
  die "failed to start: ${failed[*]} (logs in $LOGS)"
fi

# The connection summary is for a whole profile; a partial start (npm start's early RabbitMQ) only says it is up.
if [[ "${servers[*]}" != "$(profile_servers)" ]]; then
  LOG_TAG=stack-up log "${servers[*]} ready in $(elapsed_s "$t0" "$(now_ms)")s"
  exit 0
fi
LOG_TAG=stack-up log "stack ready in $(elapsed_s "$t0" "$(now_ms)")s"
if [[ "${STACK_PROFILE:-dev}" == cluster ]]; then
  (
    cluster_env
    cat >&2 <<MSG
  Cluster profile (docs/scaling.md); run the pipeline's processes with these settings:
    TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS  (Temporal server v$TEMPORAL_SERVER_VERSION on PostgreSQL, $CLUSTER_TEMPORAL_SHARDS shards)
    RABBITMQ_NODES=$RABBITMQ_NODES  (3-node cluster; management http://localhost:$(cluster_rmq_mgmt_port 1) .. :$(cluster_rmq_mgmt_port 3))
    RABBITMQ_PORT=$RABBITMQ_PORT RABBITMQ_MANAGEMENT_PORT=$RABBITMQ_MANAGEMENT_PORT
  PostgreSQL  $(sed -E 's#(://[^:/@]+:)[^@]*@#\1***@#' <<<"$DATABASE_URL")
  Temporal Web UI: $(if [[ "$(server_status temporal-server)" == *UI* ]]; then echo "http://localhost:$CLUSTER_TEMPORAL_UI_PORT"; else echo "not running (see the log above)"; fi)
MSG
  )
else
  cat >&2 <<MSG
  Temporal    $TEMPORAL_ADDRESS  (namespace $TEMPORAL_NAMESPACE)   CLI: temporal workflow list --address $TEMPORAL_ADDRESS
  RabbitMQ    amqp://$RABBITMQ_USER:***@$RABBITMQ_HOST:$RABBITMQ_PORT/$RABBITMQ_VHOST   management http://localhost:$RABBITMQ_MANAGEMENT_PORT
  PostgreSQL  $(sed -E 's#(://[^:/@]+:)[^@]*@#\1***@#' <<<"$DATABASE_URL")
  Temporal Web UI: http://localhost:$TEMPORAL_UI_PORT
MSG
fi
