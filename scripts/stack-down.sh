#!/usr/bin/env bash
# Stop the servers scripts/stack-up.sh started (only ours: pid files / our PostgreSQL cluster; servers
# we merely connected to are left alone). Safe to run twice. Data in .data/ is kept.
#   scripts/stack-down.sh [--cluster] [server...]
#     default: every server of both profiles (postgres rabbitmq temporal-dev rabbitmq-cluster temporal-server);
#     --cluster (or STACK_PROFILE=cluster): the cluster profile's own servers (rabbitmq-cluster temporal-server;
#     PostgreSQL is shared with the dev stack and stays up).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=stack-down

servers=()
for a in "$@"; do
  case "$a" in
    --cluster) export STACK_PROFILE=cluster ;;
    postgres | rabbitmq | temporal-dev | rabbitmq-cluster | temporal-server) servers+=("$a") ;;
    temporal) servers+=(temporal-dev) ;;
    *) die "unknown server '$a' (postgres, rabbitmq, temporal-dev, rabbitmq-cluster, temporal-server; or --cluster)" ;;
  esac
done
if ((${#servers[@]} == 0)); then
  if [[ "${STACK_PROFILE:-}" == cluster ]]; then servers=(rabbitmq-cluster temporal-server); else servers=("${ALL_STACK_SERVERS[@]}"); fi
fi

t0=$(now_ms)
stack_env
declare -A pids
for s in "${servers[@]}"; do
  bash "$ROOT/scripts/provision/$s.sh" down &
  pids[$s]=$!
done
rc=0
for s in "${servers[@]}"; do
  wait "${pids[$s]}" || rc=1
  rm -f "$RUN/auto-$s"
done
log "stack down in $(elapsed_s "$t0" "$(now_ms)")s"
exit "$rc"
