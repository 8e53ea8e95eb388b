#!/usr/bin/env bash
# Questions per second of lm-evaluation-harness (HF backend, f32, eager, CPU, batch size 1) on the
# MMLU sample "the first 4 test rows of each of the first 50 MMLU subjects in sorted name order"
# (200 questions), 0-shot and 5-shot. The model is loaded once before the clock starts, so the
# time covers only lm_eval.simple_evaluate (task building, prompt construction, forward passes).
# Prints one JSON line per shot count: {"shots", "questions", "seconds", "questions_per_s", "threads"}.
# Usage: benches/python/lmeval_speed.sh [THREADS=2]   (REF_VENV default /work/venv-ref)
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
THREADS="${1:-2}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d /tmp/spex-lmeval-speed.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

TASK_LIST="$("$REPO/tests/reference/write_lmeval_tasks.sh" "$WORK/tasks" 50)"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="$THREADS" HF_DATASETS_CACHE="$WORK/hf-datasets-cache"
export SPEX_MODEL="$SPEX_HOME/models/smollm2-135m-instruct-hf" SPEX_TASKS="$TASK_LIST"
export SPEX_TASK_DIR="$WORK/tasks" SPEX_THREADS="$THREADS"

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
manager = TaskManager(include_path=os.environ["SPEX_TASK_DIR"])
for shots in (0, 5):
    start = time.perf_counter()
    lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=shots, limit=4,
                            task_manager=manager, random_seed=0, numpy_random_seed=0,
                            torch_random_seed=0, fewshot_random_seed=0)
    seconds = time.perf_counter() - start
    n = 4 * len(tasks)
    print(json.dumps({"shots": shots, "questions": n, "seconds": round(seconds, 2),
                      "questions_per_s": round(n / seconds, 3),
                      "threads": torch.get_num_threads()}), flush=True)
PY
