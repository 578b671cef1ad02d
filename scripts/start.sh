#!/usr/bin/env bash
# `npm start`: install dependencies if needed, bring the local stack up, then run the pipeline in the
# foreground (src/cli/pipeline.ts; arguments are passed through). The stack stays up afterwards:
# stop it with `npm run stack:down`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=start

cd "$ROOT"
if [[ ! -x node_modules/.bin/tsx ]]; then
  log "node_modules missing: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/stack-up.sh
stack_env
if [[ ! -f src/cli/pipeline.ts ]]; then
  die "src/cli/pipeline.ts does not exist yet: the stack is up, but there is no pipeline entry point to run"
fi
# The worker loads this prebuilt bundle instead of running webpack at every start.
node_modules/.bin/tsx src/cli/build-workflow-bundle.ts
exec node_modules/.bin/tsx src/cli/pipeline.ts "$@"
