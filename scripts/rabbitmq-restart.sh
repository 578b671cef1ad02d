#!/usr/bin/env bash
# Restart the RabbitMQ *application* on the project-local node (sat@localhost, started by
# scripts/provision/rabbitmq.sh) without stopping the Erlang node: every AMQP connection is closed by the
# broker, the listeners go away, and durable queues with their persistent messages come back on start.
# This is what the fault-injection tests use (test/integration/faults-rabbitmq.test.ts); it is also the
# quickest way to rehearse a broker restart by hand.
#
#   scripts/rabbitmq-restart.sh [restart [DOWN_SECONDS] | stop | start]
#
#   restart  stop_app, stay down DOWN_SECONDS (default 2), start_app, wait until AMQP accepts connections
#   stop     stop_app only (AMQP refused until `start`)
#   start    start_app and wait until AMQP accepts connections
#
# It only ever touches our node (pid file under $DATA/rabbitmq), never a system or external RabbitMQ.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=rabbitmq-restart

ACTION="${1:-restart}"
DOWN_SECONDS="${2:-2}"
PORT="${RABBITMQ_PORT:-5672}"
BASE="$DATA/rabbitmq"
RMQ_BIN="${RMQ_BIN:-/usr/lib/rabbitmq/bin}"
PIDFILE="$BASE/node.pid"

# The same identity scripts/provision/rabbitmq.sh gives rabbitmqctl: our HOME (Erlang cookie) and node name.
export HOME="$BASE/home"
export RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-sat@localhost}"
export RABBITMQ_CONF_ENV_FILE="$BASE/rabbitmq-env.conf"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

ctl() { timeout 120 "$RMQ_BIN/rabbitmqctl" -q "$@"; }

ours() { [[ -x "$RMQ_BIN/rabbitmqctl" ]] && pid_alive "$PIDFILE" beam; }

wait_amqp() {
  ctl await_startup >/dev/null
  wait_for_port 127.0.0.1 "$PORT" 60 || die "RabbitMQ did not accept AMQP connections on $PORT after start_app"
}

case "$ACTION" in
  stop | start | restart)
    ours || die "the project-local RabbitMQ node is not running (scripts/stack-up.sh starts it)"
    t0=$(now_ms)
    if [[ $ACTION != start ]]; then
      ctl stop_app >/dev/null
      log "stop_app done in $(elapsed_s "$t0" "$(now_ms)")s"
    fi
    if [[ $ACTION == restart ]]; then sleep "$DOWN_SECONDS"; fi
    if [[ $ACTION != stop ]]; then
      t1=$(now_ms)
      ctl start_app >/dev/null
      wait_amqp
      log "start_app done in $(elapsed_s "$t1" "$(now_ms)")s (total $(elapsed_s "$t0" "$(now_ms)")s)"
    fi
    ;;
  *) die "usage: $0 [restart [DOWN_SECONDS] | stop | start]" ;;
esac
