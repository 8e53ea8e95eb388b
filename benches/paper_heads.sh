#!/usr/bin/env bash
# The ProxySPEX paper's head experiment (arXiv 2505.17495, section 5.2, appendix C.2) on the default
# model, at a scale two CPU cores can run: layer groups of the model (each its own game over its
# heads), uniform masks (keep probability 0.5), the paper's rescale ablation, a smooth value on
# the attribution questions, then pruning judged on questions the attribution never saw.
#
# Per group (OUT/layers-A-B/): comparison.json (held-out R^2 of the default decoder, the reference
# ProxySPEX, least squares, LASSO over singles and pairs, ridge over pairs; energy splits) and
# prune.json / prune.svg (maximise, greedy, single, random, LASSO, ridge over pairs, Best-of-N at
# 50/66/83 % kept, accuracy intervals, maximise against the best baseline by a paired bootstrap).
# Every step resumes: rerun the same command after a kill.
#
# Usage: benches/paper_heads.sh OUT [GROUP ...]   (default groups: 27-29 14-16 0-2 20-29)
#   env: TASK (piqa), TRAIN (40 attribution questions), TEST (100 pruning questions after them),
#        BUDGET (500; 1500 for groups of more than 27 heads), HELD_OUT (100), VALUE (loglik-norm),
#        ABLATION (rescale), BEST_OF (100), KEEP (0.5,0.66,0.83), SEED (7), SPEX_BIN
set -euo pipefail

OUT="${1:?usage: benches/paper_heads.sh OUT [GROUP ...]}"
shift
GROUPS_=("$@")
[[ ${#GROUPS_[@]} -gt 0 ]] || GROUPS_=(27-29 14-16 0-2 20-29)
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEX_BIN="${SPEX_BIN:-$REPO/target/release/spex}"
TASK="${TASK:-piqa}"
TRAIN="${TRAIN:-40}"
TEST="${TEST:-100}"
HELD_OUT="${HELD_OUT:-100}"
VALUE="${VALUE:-loglik-norm}"
ABLATION="${ABLATION:-rescale}"
BEST_OF="${BEST_OF:-100}"
KEEP="${KEEP:-0.5,0.66,0.83}"
SEED="${SEED:-7}"
mkdir -p "$OUT"

for g in "${GROUPS_[@]}"; do
    first="${g%-*}" last="${g#*-}"
    heads=$(( (last - first + 1) * 9 ))
    budget="${BUDGET:-$([[ $heads -gt 27 ]] && echo 1500 || echo 500)}"
    dir="$OUT/layers-$g"
    echo "== layers $g: $heads heads, $budget masks + $HELD_OUT unseen, $TRAIN questions" >&2
    start=$(date +%s)
    "$SPEX_BIN" heads --task "$TASK" --limit "$TRAIN" --layers "$g" --budget "$budget" \
        --held-out "$HELD_OUT" --seed "$SEED" --value "$VALUE" --ablation "$ABLATION" --out "$dir" \
        > "$dir.heads.txt"
    echo "   attribution: $(( $(date +%s) - start )) s" >&2
    start=$(date +%s)
    "$SPEX_BIN" prune --from "$dir" --task "$TASK" --offset "$TRAIN" --limit "$TEST" --layers "$g" \
        --keep "$KEEP" --best-of "$BEST_OF" --seed "$SEED" --value "$VALUE" --ablation "$ABLATION" \
        > "$dir.prune.txt"
    echo "   pruning: $(( $(date +%s) - start )) s" >&2
done
