#!/usr/bin/env bash
# Runs lm-evaluation-harness (HF backend, f32, eager attention, CPU, batch size 1, 0-shot) on the
# first LIMIT validation rows of each cloze set with the harness's own task configs (only the data
# source replaced by SPEX_HOME's JSONL: tests/reference/lmeval_tasks/, write_lmeval_cloze_tasks.sh),
# one lm_eval process per set with --log_samples, timing each, then writes
# tests/data/lmeval_cloze_sample.json with collect_lmeval_cloze_samples.py.
# Needs models/fetch.sh's SPEX_HOME and the reference venv (REF_VENV, default /work/venv-ref).
# Usage: tests/reference/make_lmeval_cloze_reference.sh [WORK_DIR]   (run from anywhere)
#   env: TASKS  sets to run, space- or comma-separated (default: all nine; spex_ prefix optional)
#        LIMIT  rows per set (default 200; copa has 100 validation rows: the whole split)
#        THREADS torch threads (default 2)
# Finished sets are skipped on a re-run in the same WORK_DIR; the JSON is written once all nine
# sets are done there (a TASKS subset run only fills WORK_DIR).
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
THREADS="${THREADS:-2}"
LIMIT="${LIMIT:-200}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/spex-lmeval-cloze.XXXXXX)}"
MODEL="$SPEX_HOME/models/smollm2-135m-instruct-hf"
ALL_SETS="arc_easy arc_challenge sciq piqa hellaswag winogrande boolq copa openbookqa"
TASKS="${TASKS:-$ALL_SETS}"
TASKS="${TASKS//,/ }"
TASKS="${TASKS//spex_/}"

[[ -f "$SPEX_HOME/data/.ready" && -f "$SPEX_HOME/models/.ready" ]] ||
  { echo "SPEX_HOME=$SPEX_HOME is not prepared: run models/fetch.sh" >&2; exit 1; }
[[ -x "$REF_VENV/bin/lm_eval" ]] || { echo "no lm_eval in REF_VENV=$REF_VENV" >&2; exit 1; }
mkdir -p "$WORK"
if [[ -f "$WORK/limit" && "$(cat "$WORK/limit")" != "$LIMIT" ]]; then
  echo "$WORK holds runs with LIMIT=$(cat "$WORK/limit"), not $LIMIT: use another WORK_DIR" >&2; exit 1
fi
echo "$LIMIT" >"$WORK/limit"
"$HERE/write_lmeval_cloze_tasks.sh" "$WORK/tasks" "$ALL_SETS" >/dev/null

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" HF_DATASETS_CACHE="$WORK/hf-datasets-cache"

for s in $TASKS; do
  [[ " $ALL_SETS " == *" $s "* ]] || { echo "unknown set '$s' (known: $ALL_SETS)" >&2; exit 1; }
  if [[ -f "$WORK/done_$s" ]]; then echo "[lmeval-cloze] $s already done in $WORK"; continue; fi
  echo "[lmeval-cloze] $s: $LIMIT rows, log $WORK/out_$s.log"
  rm -rf "$WORK/out_$s"
  start=$(date +%s.%N)
  "$REF_VENV/bin/lm_eval" --model hf \
    --model_args "pretrained=$MODEL,dtype=float32,attn_implementation=eager" \
    --device cpu --batch_size 1 --include_path "$WORK/tasks" --tasks "spex_$s" \
    --num_fewshot 0 --limit "$LIMIT" --seed 0 \
    --log_samples --output_path "$WORK/out_$s" >"$WORK/out_$s.log" 2>&1 ||
    { tail -n 30 "$WORK/out_$s.log" >&2; echo "[lmeval-cloze] $s failed, see $WORK/out_$s.log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 2))" >"$WORK/seconds_$s"
  cut -d' ' -f1-3 /proc/loadavg >"$WORK/loadavg_$s"  # load while it ran (other processes slow it)
  touch "$WORK/done_$s"
  echo "[lmeval-cloze] $s done in $(cat "$WORK/seconds_$s") s"
done

for s in $ALL_SETS; do
  [[ -f "$WORK/done_$s" ]] || { echo "[lmeval-cloze] $s not done yet in $WORK; JSON not written"; exit 0; }
done
"$REF_VENV/bin/python" "$HERE/collect_lmeval_cloze_samples.py" --work "$WORK" \
  --out "$REPO/tests/data/lmeval_cloze_sample.json" --limit "$LIMIT" --threads "$THREADS" \
  --made-by "tests/reference/make_lmeval_cloze_reference.sh (per set: lm_eval --model hf --model_args pretrained=\$SPEX_HOME/models/smollm2-135m-instruct-hf,dtype=float32,attn_implementation=eager --device cpu --batch_size 1 --include_path <YAMLs written by tests/reference/write_lmeval_cloze_tasks.sh: the harness's own task file + tests/reference/lmeval_tasks/spex_<set>.yaml, data \$SPEX_HOME/data/<set>/validation.jsonl> --tasks spex_<set> --num_fewshot 0 --limit $LIMIT --seed 0 --log_samples; OMP_NUM_THREADS=$THREADS)"
