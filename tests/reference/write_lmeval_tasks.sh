#!/usr/bin/env bash
# Writes one lm-eval task YAML per MMLU subject for the sample "the first 50 MMLU subjects in
# sorted name order" into DIR; each includes lmeval_tasks/_spex_mmlu_template.yaml and points
# dataset_kwargs.data_files at SPEX_HOME's exported JSONL (test and dev splits).
# Prints the comma-separated task list (spex_mmlu_<subject>,...) on stdout.
# Usage: tests/reference/write_lmeval_tasks.sh DIR [N_SUBJECTS=50]
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:?usage: write_lmeval_tasks.sh DIR [N_SUBJECTS]}"
N_SUBJECTS="${2:-50}"

[[ -f "$SPEX_HOME/data/.ready" ]] || { echo "SPEX_HOME=$SPEX_HOME has no data: run models/fetch.sh" >&2; exit 1; }
mkdir -p "$DIR"
mapfile -t SUBJECTS < <(find "$SPEX_HOME/data/mmlu" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
  LC_ALL=C sort | head -n "$N_SUBJECTS")
[[ ${#SUBJECTS[@]} -eq $N_SUBJECTS ]] ||
  { echo "found ${#SUBJECTS[@]} MMLU subjects under $SPEX_HOME/data/mmlu, need $N_SUBJECTS" >&2; exit 1; }
TASKS=()
for s in "${SUBJECTS[@]}"; do
  cat >"$DIR/spex_mmlu_$s.yaml" <<YAML
include: $HERE/lmeval_tasks/_spex_mmlu_template.yaml
task: spex_mmlu_$s
task_alias: $s
description: "The following are multiple choice questions (with answers) about ${s//_/ }.\n\n"
dataset_kwargs:
  data_files:
    test: $SPEX_HOME/data/mmlu/$s/test.jsonl
    dev: $SPEX_HOME/data/mmlu/$s/dev.jsonl
YAML
  TASKS+=("spex_mmlu_$s")
done
(IFS=,; echo "${TASKS[*]}")
