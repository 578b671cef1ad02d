#!/usr/bin/env bash
# Stop the servers scripts/stack-up.sh started (only ours: pid files / our PostgreSQL cluster; servers
# we merely connected to are left alone). Safe to run twice. Data in .data/ is kept.
#   scripts/stack-down.sh [server...]   (default: all three)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=stack-down

servers=()
for a in "$@"; do
  case "$a" in
    postgres | rabbitmq | temporal-dev) servers+=("$a") ;;
    temporal) servers+=(temporal-dev) ;;
    *) die "unknown server '$a' (postgres, rabbitmq, temporal-dev)" ;;
  esac
done
((${#servers[@]})) || servers=("${STACK_SERVERS[@]}")

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
