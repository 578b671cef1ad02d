#!/usr/bin/env bash
# `npm start`: provision what is missing (scripts/provision.sh: npm ci, temporal CLI, apt packages, in parallel),
# bring the local stack up, then run the pipeline in the foreground (src/cli/pipeline.ts; arguments are passed
# through). The stack stays up afterwards: stop it with `npm run stack:down`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=start

cd "$ROOT"
T0=$(now_ms)
# npm ci and the temporal CLI in parallel, each step timed. Beside them: the stack's missing apt packages, then
# RabbitMQ's Erlang boot, the slowest server start (15-20 s), which needs neither node_modules nor the CLI.
# stack-up.sh below leaves the running node alone and starts the rest.
(bash scripts/provision.sh apt >/dev/null && bash scripts/stack-up.sh rabbitmq) &
early_rabbitmq=$!
provision_rc=0
bash scripts/provision.sh npm cli >/dev/null || provision_rc=$?
wait "$early_rabbitmq" || die "RabbitMQ did not start (log $LOGS/rabbitmq.log)"
((provision_rc == 0)) || die "provisioning failed (see above)"
# The worker loads a prebuilt workflow bundle instead of running webpack at every start; it is built while the
# stack starts (both only need node_modules).
node_modules/.bin/tsx src/cli/build-workflow-bundle.ts >"$LOGS/workflow-bundle.log" 2>&1 &
bundle_job=$!
bash scripts/stack-up.sh
stack_env
wait "$bundle_job" || {
  cat "$LOGS/workflow-bundle.log" >&2
  die "building the workflow bundle failed (log $LOGS/workflow-bundle.log)"
}
log "workflow bundle: $(tail -1 "$LOGS/workflow-bundle.log")"
log "ready $(elapsed_s "$T0" "$(now_ms)")s after npm start; starting the pipeline"
# Node with tsx's hooks rather than the tsx CLI: one process receives Ctrl-C and stops the services in order.
exec node --require tsx/preflight --import tsx src/cli/pipeline.ts "$@"
