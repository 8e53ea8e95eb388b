#!/usr/bin/env bash
# Questions per second of `spex eval --format cloze` and of lm-evaluation-harness (HF backend, f32,
# eager, CPU) on the same cloze questions, measured back to back in one run: the first N
# validation rows of each set, 0-shot, the harness with its own task configs (only the data source
# replaced: tests/reference/write_lmeval_cloze_tasks.sh) at batch size 1 and at batch size 16.
# Both sides load the model before the clock starts: spex's time is the scoring it reports
# ("scored Q questions in S s"), the harness's is lm_eval.simple_evaluate (task building, prompts,
# forward passes; the data sets are loaded once before, so that no timed run pays for building
# the datasets cache).
# Prints one JSON line per (side, set, batch size): {"side", "set", "batch_size", "questions",
# "seconds", "questions_per_s", "threads"}, then a table: set, N, harness q/s at bs 1 and 16, the
# better of the two, spex q/s and spex / best.
# Usage: benches/cloze_speed.sh [SET ...]   (default: all nine; spex_ prefix or dashes accepted)
#   env: N (100), THREADS (2), SPEX_BIN (target/release/spex), REF_VENV (/work/venv-ref),
#        SPEX_MODEL (the f32 HF folder under SPEX_HOME, which both sides load),
#        SKIP_SPEX=1 / SKIP_HARNESS=1 (run one side only), BATCH_SIZES ("1 16")
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
N="${N:-100}"
THREADS="${THREADS:-2}"
BATCH_SIZES="${BATCH_SIZES:-1 16}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEX_BIN="${SPEX_BIN:-$REPO/target/release/spex}"
MODEL="${SPEX_MODEL:-$SPEX_HOME/models/smollm2-135m-instruct-hf}"
WORK="$(mktemp -d /tmp/spex-cloze-speed.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

SETS=("$@")
[[ ${#SETS[@]} -gt 0 ]] || SETS=(arc_easy arc_challenge sciq piqa hellaswag winogrande boolq copa openbookqa)
for i in "${!SETS[@]}"; do s="${SETS[i]#spex_}"; SETS[i]="${s//-/_}"; done
RESULTS="$WORK/results.jsonl"
touch "$RESULTS"

# spex on set $1, appending one JSON line to $RESULTS.
run_spex() {
    local s="$1" log="$WORK/spex_$1.log" questions seconds
    RAYON_NUM_THREADS="$THREADS" "$SPEX_BIN" eval --model "$MODEL" --device cpu \
      --task "${s//_/-}" --split validation --limit "$N" --format cloze >/dev/null 2>"$log" ||
      { cat "$log" >&2; exit 1; }
    read -r questions seconds < <(sed -n 's/^scored \([0-9]*\) questions in \([0-9.]*\) s.*/\1 \2/p' "$log")
    [[ -n "${seconds:-}" ]] || { echo "no 'scored N questions in S s' line in $log" >&2; cat "$log" >&2; exit 1; }
    python3 -c "import json; q=$questions; s=$seconds; print(json.dumps({'side': 'spex', 'set': '$s',
      'batch_size': None, 'questions': q, 'seconds': s, 'questions_per_s': round(q / s, 3),
      'threads': $THREADS, 'loadavg': open('/proc/loadavg').read().split()[:3]}))" | tee -a "$RESULTS"
}

# The harness on the comma-separated task list $1, appending JSON lines to $RESULTS.
run_harness() {
  SPEX_TASKS="$1" "$REF_VENV/bin/python" - <<'PY' | tee -a "$RESULTS"
import gc, json, logging, os, time
import torch
import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager, get_task_dict

logging.getLogger("lm_eval").setLevel(logging.WARNING)
torch.set_num_threads(int(os.environ["SPEX_THREADS"]))
tasks = os.environ["SPEX_TASKS"].split(",")
limit = int(os.environ["SPEX_LIMIT"])
manager = TaskManager(include_path=os.environ["SPEX_TASK_DIR"])
get_task_dict(tasks, manager)  # builds the datasets cache outside the clock
for bs in map(int, os.environ["SPEX_BATCH_SIZES"].split()):
    lm = HFLM(pretrained=os.environ["SPEX_MODEL"], dtype="float32", attn_implementation="eager",
              device="cpu", batch_size=bs)
    for task in tasks:
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(model=lm, tasks=[task], num_fewshot=0, limit=limit,
                                      task_manager=manager, random_seed=0, numpy_random_seed=0,
                                      torch_random_seed=0, fewshot_random_seed=0)
        seconds = time.perf_counter() - start
        n = out["n-samples"][task]["effective"]
        print(json.dumps({"side": "lm-eval", "set": task.removeprefix("spex_"), "batch_size": bs,
                          "questions": n, "seconds": round(seconds, 2),
                          "questions_per_s": round(n / seconds, 3),
                          "threads": torch.get_num_threads(),
                          "loadavg": open("/proc/loadavg").read().split()[:3]}), flush=True)
    del lm
    gc.collect()
PY
}

[[ "${SKIP_SPEX:-0}" == 1 || -x "$SPEX_BIN" ]] ||
  { echo "no spex binary at $SPEX_BIN: cargo build --release" >&2; exit 1; }
if [[ "${SKIP_HARNESS:-0}" != 1 ]]; then
  [[ -x "$REF_VENV/bin/python" ]] || { echo "no python in REF_VENV=$REF_VENV" >&2; exit 1; }
  TASK_LIST="$("$REPO/tests/reference/write_lmeval_cloze_tasks.sh" "$WORK/tasks" "${SETS[*]}")"
  IFS=, read -r -a TASKS <<<"$TASK_LIST"
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" HF_DATASETS_CACHE="$WORK/hf-datasets-cache"
  export SPEX_MODEL="$MODEL" SPEX_TASK_DIR="$WORK/tasks"
  export SPEX_THREADS="$THREADS" SPEX_LIMIT="$N" SPEX_BATCH_SIZES="$BATCH_SIZES"
fi
# Set by set, spex then the harness, so that both sides of a ratio share the machine's load.
for i in "${!SETS[@]}"; do
  [[ "${SKIP_SPEX:-0}" == 1 ]] || run_spex "${SETS[i]}"
  [[ "${SKIP_HARNESS:-0}" == 1 ]] || run_harness "${TASKS[i]}"
done

python3 - "$RESULTS" "$N" "${SETS[@]}" <<'PY'
import json, sys
path, n, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [json.loads(line) for line in open(path) if line.strip()]
def qps(side, s, bs=None):
    for r in rows:
        if r["side"] == side and r["set"] == s and (side == "spex" or r["batch_size"] == bs):
            return r["questions_per_s"]
    return None
fmt = lambda v, w: f"{v:>{w}.2f}" if v is not None else f"{'-':>{w}}"
print(f"\n{'set':<14} {'N':>4} {'lm-eval bs1':>11} {'lm-eval bs16':>12} {'best':>7} {'spex':>7} {'spex/best':>9}")
for s in sets:
    q = [r["questions"] for r in rows if r["set"] == s]
    b1, b16, sp = qps("lm-eval", s, 1), qps("lm-eval", s, 16), qps("spex", s)
    best = max([v for v in (b1, b16) if v is not None], default=None)
    ratio = sp / best if sp is not None and best else None
    print(f"{s:<14} {max(q) if q else n:>4} {fmt(b1, 11)} {fmt(b16, 12)} {fmt(best, 7)} {fmt(sp, 7)} {fmt(ratio, 9)}")
PY
