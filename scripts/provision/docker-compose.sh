#!/usr/bin/env bash
# Debian's docker-compose (1.29, the Python implementation), used only to validate docker-compose.yml
# (`docker-compose config`): there is no Docker engine on the development machines. Installs it with apt-get if
# missing (no recommends: the engine is not pulled in), then prints the path of the binary.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=docker-compose

if ! command -v docker-compose >/dev/null 2>&1; then
  apt_install docker-compose
fi
command -v docker-compose
