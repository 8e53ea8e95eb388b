#!/usr/bin/env bash
# Questions per second of `spex eval` and of lm-evaluation-harness (HF backend, f32, eager, CPU,
# batch size 1) on the same MMLU questions, measured back to back in one run: the first LIMIT test
# rows of each of the first N_SUBJECTS MMLU subjects in sorted name order, for each shot count.
# Both sides load the model before the clock starts: spex's time is the scoring it reports
# ("scored Q questions in S s"), the harness's is lm_eval.simple_evaluate (task building, prompts,
# forward passes).
# Prints one JSON line per (side, shots): {"side", "shots", "questions", "seconds",
# "questions_per_s", "threads"}.
# Usage: benches/eval_speed.sh        env: N_SUBJECTS (10), LIMIT (4), SHOTS ("0 5"), THREADS (2),
#        SPEX_BIN (target/release/spex), REF_VENV (/work/venv-ref)
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
N_SUBJECTS="${N_SUBJECTS:-10}"
LIMIT="${LIMIT:-4}"
SHOTS="${SHOTS:-0 5}"
THREADS="${THREADS:-2}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEX_BIN="${SPEX_BIN:-$REPO/target/release/spex}"
WORK="$(mktemp -d /tmp/spex-eval-speed.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

[[ -x "$SPEX_BIN" ]] || { echo "no spex binary at $SPEX_BIN: cargo build --release" >&2; exit 1; }
TASK_LIST="$("$REPO/tests/reference/write_lmeval_tasks.sh" "$WORK/tasks" "$N_SUBJECTS")"
SUBJECTS="${TASK_LIST//spex_mmlu_/}"
questions=$((N_SUBJECTS * LIMIT))

for shots in $SHOTS; do
  log="$WORK/spex_$shots.log"
  RAYON_NUM_THREADS="$THREADS" "$SPEX_BIN" eval --task mmlu --subjects "$SUBJECTS" \
    --limit "$LIMIT" --shots "$shots" >/dev/null 2>"$log" ||
    { cat "$log" >&2; exit 1; }
  seconds="$(sed -n 's/^scored [0-9]* questions in \([0-9.]*\) s.*/\1/p' "$log")"
  python3 -c "import json; s=$seconds; print(json.dumps({'side': 'spex', 'shots': $shots,
    'questions': $questions, 'seconds': s, 'questions_per_s': round($questions / s, 3),
    'threads': $THREADS}))"
done

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="$THREADS" HF_DATASETS_CACHE="$WORK/hf-datasets-cache"
export SPEX_MODEL="$SPEX_HOME/models/smollm2-135m-instruct-hf" SPEX_TASKS="$TASK_LIST"
export SPEX_TASK_DIR="$WORK/tasks" SPEX_THREADS="$THREADS" SPEX_LIMIT="$LIMIT" SPEX_SHOTS="$SHOTS"

"$REF_VENV/bin/python" - <<'PY'
import json, os, time
import torch
import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

torch.set_num_threads(int(os.environ["SPEX_THREADS"]))
lm = HFLM(pretrained=os.environ["SPEX_MODEL"], dtype="float32", attn_implementation="eager",
          device="cpu", batch_size=1)
tasks = os.environ["SPEX_TASKS"].split(",")
limit = int(os.environ["SPEX_LIMIT"])
manager = TaskManager(include_path=os.environ["SPEX_TASK_DIR"])
for shots in map(int, os.environ["SPEX_SHOTS"].split()):
    start = time.perf_counter()
    lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=shots, limit=limit,
                            task_manager=manager, random_seed=0, numpy_random_seed=0,
                            torch_random_seed=0, fewshot_random_seed=0)
    seconds = time.perf_counter() - start
    n = limit * len(tasks)
    print(json.dumps({"side": "lm-eval", "shots": shots, "questions": n,
                      "seconds": round(seconds, 2), "questions_per_s": round(n / seconds, 3),
                      "threads": torch.get_num_threads()}), flush=True)
PY
