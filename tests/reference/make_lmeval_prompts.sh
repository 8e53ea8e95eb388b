#!/usr/bin/env bash
# Writes tests/data/lmeval_mmlu_prompt_{0,5}shot.txt: the exact context string lm-evaluation-harness
# builds for the first test row of abstract_algebra (continuation " A"), 0-shot and 5-shot, with
# the same task YAML as make_lmeval_reference.sh. Uses lm-eval's `dummy` model (random scores),
# so it needs no model weights and runs in seconds. REF_VENV default /work/venv-ref.
# Usage: tests/reference/make_lmeval_prompts.sh
set -euo pipefail

REF_VENV="${REF_VENV:-/work/venv-ref}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="$(mktemp -d /tmp/spex-lmeval-prompts.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

"$HERE/write_lmeval_tasks.sh" "$WORK/tasks" 1 >/dev/null  # abstract_algebra is first in sorted order
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_CACHE="$WORK/hf-datasets-cache"
for shots in 0 5; do
  "$REF_VENV/bin/lm_eval" --model dummy --include_path "$WORK/tasks" --tasks spex_mmlu_abstract_algebra \
    --num_fewshot "$shots" --limit 1 --seed 0 --log_samples --output_path "$WORK/out_$shots" \
    >"$WORK/lmeval_$shots.log" 2>&1 || { cat "$WORK/lmeval_$shots.log" >&2; exit 1; }
done
"$REF_VENV/bin/python" "$HERE/collect_lmeval_samples.py" --work "$WORK" --out-dir "$REPO/tests/data" \
  --shots 0 5 --prompts-only
