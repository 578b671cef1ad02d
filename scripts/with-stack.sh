#!/usr/bin/env bash
# Run a command with the local stack up:  scripts/with-stack.sh CMD [ARGS...]
# Starts whatever is not running, runs CMD with the stack's connection settings exported, and afterwards stops
# only what it started (and only when no other with-stack/test run still uses it). Exit code: CMD's.
# When CMD's arguments include --cluster (`npm run bench:trades -- --cluster`), the cluster profile comes up too
# (scripts/stack-up.sh --cluster); CMD still gets the dev stack's settings and finds the cluster profile's with
# scripts/cluster/print-env.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=with-stack

(($#)) || die "usage: $0 CMD [ARGS...]"
# --help only prints the command's usage: no stack for it (and none started for nothing).
for a in "${@:2}"; do
  if [[ $a == -h || $a == --help ]]; then
    cd "$ROOT" && PATH="$ROOT/node_modules/.bin:$TOOLS/bin:$PATH" exec "$@"
  fi
done
trap 'stack_release' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stack_acquire || die "stack did not come up"
for a in "$@"; do
  if [[ $a == --cluster ]]; then
    (
      export STACK_PROFILE=cluster
      stack_acquire
    ) || die "the cluster profile did not come up"
    break
  fi
done
stack_env
rc=0
(cd "$ROOT" && PATH="$ROOT/node_modules/.bin:$TOOLS/bin:$PATH" "$@") || rc=$?
exit "$rc"
