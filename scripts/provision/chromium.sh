#!/usr/bin/env bash
# Headless Chromium for browser tests (the backtest report test; playwright-core drives it):
# `chromium.sh` installs Debian's `chromium` with apt-get if it is missing, then prints the browser's path.
# playwright-core downloads no browser of its own here (there is no network but the package registries):
# it launches this one through `executablePath`.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=chromium

find_chromium() {
  local c
  for c in "${CHROMIUM_PATH:-}" chromium chromium-browser /usr/bin/chromium /usr/lib/chromium/chromium; do
    [[ -n $c ]] || continue
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if ! path="$(find_chromium)"; then
  apt_install chromium fonts-dejavu-core >&2
  path="$(find_chromium)" || die "chromium was installed but is not on PATH"
fi
echo "$path"
