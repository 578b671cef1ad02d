#!/usr/bin/env bash
# `npm start`: provision what is missing (scripts/provision.sh: npm ci, temporal CLI, apt packages, in parallel),
# bring the local stack up, then run the pipeline in the foreground (src/cli/pipeline.ts; arguments are passed
# through). The stack stays up afterwards: stop it with `npm run stack:down`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=start

cd "$ROOT"
T0=$(now_ms)
# npm ci, the temporal CLI and the stack's missing apt packages, in parallel, each step timed.
bash scripts/provision.sh npm cli apt >/dev/null
bash scripts/stack-up.sh
stack_env
if [[ ! -f src/cli/pipeline.ts ]]; then
  die "src/cli/pipeline.ts does not exist yet: the stack is up, but there is no pipeline entry point to run"
fi
# The worker loads this prebuilt bundle instead of running webpack at every start.
t=$(now_ms)
node_modules/.bin/tsx src/cli/build-workflow-bundle.ts
log "workflow bundle built in $(elapsed_s "$t" "$(now_ms)")s; $(elapsed_s "$T0" "$(now_ms)")s since npm start, now the pipeline"
# Node with tsx's hooks rather than the tsx CLI: one process receives Ctrl-C and stops the services in order.
exec node --require tsx/preflight --import tsx src/cli/pipeline.ts "$@"
