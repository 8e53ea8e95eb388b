#!/usr/bin/env bash
# ProxySPEX against shapiq's ProxySPEX (LightGBM), point by point so that both sides of a row are
# timed minutes apart on the same machine: for each n:budget, the reference script draws the
# samples and times shapiq on them, then spex decodes the same samples RUNS times (the table row
# with the median spex time is kept). Prints the markdown table of benches/proxyspex_compare.rs.
# Usage: benches/proxyspex_speed.sh [n:budget ...]   (default: the nine reference points)
#        env: SHAPIQ_VENV (/work/venv-shapiq), RUNS (3), DATA (a fresh temporary folder)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHAPIQ_VENV="${SHAPIQ_VENV:-/work/venv-shapiq}"
RUNS="${RUNS:-3}"
DATA="${DATA:-$(mktemp -d /tmp/spex-proxy-speed.XXXXXX)}"
POINTS=("$@")
if [[ ${#POINTS[@]} -eq 0 ]]; then
  POINTS=(128:1000 512:1000 1000:1000 128:2000 512:2000 1000:2000 128:5000 512:5000 1000:5000)
fi

(cd "$REPO" && cargo bench --bench proxyspex_compare --no-run >/dev/null 2>&1)
BIN="$(ls -t "$REPO"/target/release/deps/proxyspex_compare-* | grep -v '\.d$' | head -1)"

echo "| n | budget | R² spex | R² shapiq | spex s | shapiq s | speed-up | spex terms | shapiq terms |"
echo "|---|---|---|---|---|---|---|---|---|"
for point in "${POINTS[@]}"; do
  dir="$DATA/${point/:/_}"
  mkdir -p "$dir"
  "$SHAPIQ_VENV/bin/python" "$REPO/benches/shapiq/proxyspex_compare.py" "$dir" "$point" >/dev/null
  for _ in $(seq "$RUNS"); do
    "$BIN" "$dir" | tail -1
  done | sort -t'|' -k6,6g | sed -n "$(((RUNS + 1) / 2))p"
done
