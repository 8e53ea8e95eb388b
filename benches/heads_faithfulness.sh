#!/usr/bin/env bash
# Held-out faithfulness of a real head attribution on the default model (30 x 9 heads):
# `spex heads` at budget BUDGET, then HELD_OUT fresh masks from the same distribution (keep
# probability KEEP, another seed) evaluated with `spex run`, and the R^2 of the decoded
# spectrum's predictions on them (benches/python/spectrum_r2.py, numpy only).
# Usage: BUDGET=1000 HELD_OUT=200 LIMIT=4 KEEP=0.5 bash benches/heads_faithfulness.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET="${BUDGET:-1000}"
HELD_OUT="${HELD_OUT:-200}"
LIMIT="${LIMIT:-4}"
SUBJECTS="${SUBJECTS:-high_school_geography}"
KEEP="${KEEP:-0.5}"
OUT="${1:-runs/faithfulness-keep$KEEP-$BUDGET}"
PY="${PYTHON:-${SPEX_HOME:-$HOME/.cache/spex}/venv/bin/python}"
TASK=(--task mmlu --subjects "$SUBJECTS" --limit "$LIMIT")

cargo build --release --quiet
SPEX=target/release/spex
players=270   # SmolLM2-135M-Instruct: 30 layers x 9 heads
start=$(date +%s)
"$SPEX" heads "${TASK[@]}" --keep-prob "$KEEP" --budget "$BUDGET" --seed 0 --out "$OUT" >/dev/null
mid=$(date +%s)
"$SPEX" plan --method proxyspex --players "$players" --keep-prob "$KEEP" --budget "$HELD_OUT" --seed 12345 --out "$OUT/held_out"
"$SPEX" run --plan "$OUT/held_out" "${TASK[@]}"
end=$(date +%s)
echo "heads: $((mid - start)) s for $BUDGET masks x $LIMIT questions (keep probability $KEEP); held-out run: $((end - mid)) s"
"$PY" benches/python/spectrum_r2.py "$OUT/spectrum.json" "$OUT/held_out/masks.npy" "$OUT/held_out/values.npy"
