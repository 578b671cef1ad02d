#!/usr/bin/env bash
# Print the path of a `temporal` CLI binary (which also contains the dev server), providing one if needed.
# Search order: on PATH; cached $TOOLS/bin/temporal; `go install` of the pinned version into $TOOLS/bin;
# the official download (only when temporal.download answers). All progress goes to stderr, the path to stdout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=temporal-cli

if p="$(command -v temporal 2>/dev/null)"; then
  echo "$p"
  exit 0
fi
if [[ -x "$TOOLS/bin/temporal" ]]; then
  echo "$TOOLS/bin/temporal"
  exit 0
fi

mkdir -p "$TOOLS/bin"
t0=$(now_ms)
if command -v go >/dev/null 2>&1; then
  # v1.5.1 is the newest release `go install` accepts: later go.mod files carry replace directives.
  log "building temporal CLI v$TEMPORAL_CLI_VERSION with go install (one-off, a few minutes)"
  if GOBIN="$TOOLS/bin" GOFLAGS="${GOFLAGS:--trimpath}" go install \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" >"$LOGS/temporal-cli-build.log" 2>&1; then
    log "built in $(elapsed_s "$t0" "$(now_ms)")s"
    echo "$TOOLS/bin/temporal"
    exit 0
  fi
  warn "go install failed (see $LOGS/temporal-cli-build.log); trying the official download"
fi

case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU $(uname -m) for the temporal download" ;;
esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
url="https://temporal.download/cli/archive/v$TEMPORAL_CLI_VERSION?platform=$os&arch=$arch"
if ! curl -fsS --max-time 5 -o /dev/null -r 0-0 "$url" 2>/dev/null; then
  die "no temporal CLI: not on PATH, not in $TOOLS/bin, go install failed/unavailable and temporal.download is unreachable. Install it (https://docs.temporal.io/cli) or put it on PATH."
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "downloading temporal CLI v$TEMPORAL_CLI_VERSION"
curl -fsSL --max-time 300 -o "$tmp/cli.tgz" "$url" || die "download failed: $url"
tar -xzf "$tmp/cli.tgz" -C "$tmp"
install -m 0755 "$tmp/temporal" "$TOOLS/bin/temporal"
log "downloaded in $(elapsed_s "$t0" "$(now_ms)")s"
echo "$TOOLS/bin/temporal"
