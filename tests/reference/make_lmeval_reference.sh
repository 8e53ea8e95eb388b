#!/usr/bin/env bash
# Runs lm-evaluation-harness (HF backend, f32, CPU) on the MMLU sample "the first 4 test rows of
# each of the first 50 MMLU subjects in sorted name order" (200 questions), 0-shot and 5-shot,
# with --log_samples, then writes tests/data/lmeval_mmlu_sample.json, checking each run's context
# for abstract_algebra's first test row against tests/data/lmeval_mmlu_prompt_{0,5}shot.txt
# (written by make_lmeval_prompts.sh).
# Needs models/fetch.sh's SPEX_HOME and the reference venv (REF_VENV, default /work/venv-ref).
# Usage: tests/reference/make_lmeval_reference.sh [WORK_DIR]   (run from anywhere)
# SHOTS="0" or SHOTS="5" runs one setting only (two processes may share one WORK_DIR); the JSON is
# written once both settings are done in WORK_DIR. PARTS=n splits the subjects over n parallel
# lm_eval processes (THREADS torch threads each). Finished settings are skipped on a re-run.
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
THREADS="${THREADS:-2}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/spex-lmeval.XXXXXX)}"
MODEL="$SPEX_HOME/models/smollm2-135m-instruct-hf"
N_SUBJECTS=50
LIMIT=4
SHOTS="${SHOTS:-0 5}"
PARTS="${PARTS:-1}"

[[ -f "$SPEX_HOME/data/.ready" && -f "$SPEX_HOME/models/.ready" ]] ||
  { echo "SPEX_HOME=$SPEX_HOME is not prepared: run models/fetch.sh" >&2; exit 1; }
[[ -x "$REF_VENV/bin/lm_eval" ]] || { echo "no lm_eval in REF_VENV=$REF_VENV" >&2; exit 1; }

TASK_LIST="$("$HERE/write_lmeval_tasks.sh" "$WORK/tasks" "$N_SUBJECTS")"

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="$THREADS" HF_DATASETS_CACHE="$WORK/hf-datasets-cache"
# Runs one lm_eval process on the comma-separated task list $1, writing into $2 (log $2.log).
run_part() {
  "$REF_VENV/bin/lm_eval" --model hf \
    --model_args "pretrained=$MODEL,dtype=float32,attn_implementation=eager" \
    --device cpu --batch_size 1 --include_path "$WORK/tasks" --tasks "$1" \
    --num_fewshot "$shots" --limit "$LIMIT" --seed 0 \
    --log_samples --output_path "$2" >"$2.log" 2>&1
}

IFS=, read -r -a ALL_TASKS <<<"$TASK_LIST"
for shots in $SHOTS; do
  if [[ -f "$WORK/done_$shots" ]]; then echo "[lmeval] $shots-shot already done in $WORK"; continue; fi
  echo "[lmeval] $shots-shot: $N_SUBJECTS tasks x $LIMIT questions in $PARTS process(es), logs $WORK/out_$shots/part*.log"
  rm -rf "$WORK/out_$shots"
  mkdir -p "$WORK/out_$shots"
  start=$(date +%s)
  pids=()
  for ((k = 0; k < PARTS; k++)); do
    part=()  # tasks k, k+PARTS, ... (round robin balances long and short subjects)
    for ((i = k; i < ${#ALL_TASKS[@]}; i += PARTS)); do part+=("${ALL_TASKS[i]}"); done
    run_part "$(IFS=,; echo "${part[*]}")" "$WORK/out_$shots/part$k" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || { echo "[lmeval] $shots-shot: an lm_eval process failed, see $WORK/out_$shots/part*.log" >&2; exit 1; }
  done
  echo "$(( $(date +%s) - start ))" >"$WORK/seconds_$shots"
  touch "$WORK/done_$shots"
  echo "[lmeval] $shots-shot done in $(cat "$WORK/seconds_$shots") s"
done

for shots in 0 5; do
  [[ -f "$WORK/done_$shots" ]] || { echo "[lmeval] $shots-shot not done yet in $WORK; JSON not written"; exit 0; }
done
"$REF_VENV/bin/python" "$HERE/collect_lmeval_samples.py" --work "$WORK" --out-dir "$REPO/tests/data" \
  --made-by "tests/reference/make_lmeval_reference.sh (lm_eval --model hf --model_args pretrained=\$SPEX_HOME/models/smollm2-135m-instruct-hf,dtype=float32,attn_implementation=eager --device cpu --batch_size 1 --include_path <generated per-subject YAMLs including tests/reference/lmeval_tasks/_spex_mmlu_template.yaml> --num_fewshot {0,5} --limit $LIMIT --seed 0 --log_samples)"
