#!/usr/bin/env bash
# Writes one lm-eval task YAML per cloze set into DIR: DIR/spex_<set>.yaml includes the reference
# venv's own lm-eval task file for that set (lm_eval/tasks/..., absolute path found at run time),
# then tests/reference/lmeval_tasks/spex_<set>.yaml (task name, data source, splits), and points
# dataset_kwargs.data_files.validation at $SPEX_HOME/data/<set>/validation.jsonl. No template is
# copied: the harness's !function helpers resolve next to its own YAML files.
# Prints the comma-separated task list (spex_<set>,...) on stdout.
# Usage: tests/reference/write_lmeval_cloze_tasks.sh DIR [SETS]
#   SETS: space- or comma-separated subset of the sets below (default: all nine)
#   env: SPEX_HOME (~/.cache/spex), REF_VENV (/work/venv-ref)
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:?usage: write_lmeval_cloze_tasks.sh DIR [SETS]}"
ALL_SETS="arc_easy arc_challenge sciq piqa hellaswag winogrande boolq copa openbookqa"
SETS="${2:-$ALL_SETS}"
SETS="${SETS//,/ }"
LMEVAL_VERSION=0.4.13

# The harness's own task file for each set, relative to lm_eval/tasks.
harness_yaml() {
  case "$1" in
    arc_easy) echo arc/arc_easy.yaml ;;
    arc_challenge) echo arc/arc_challenge.yaml ;;
    sciq) echo sciq/sciq.yaml ;;
    piqa) echo piqa/piqa.yaml ;;
    hellaswag) echo hellaswag/hellaswag.yaml ;;
    winogrande) echo winogrande/default.yaml ;;
    boolq) echo super_glue/boolq/default.yaml ;;
    copa) echo super_glue/copa/default.yaml ;;
    openbookqa) echo openbookqa/openbookqa.yaml ;;
    *) echo "unknown set '$1' (known: $ALL_SETS)" >&2; return 1 ;;
  esac
}

[[ -f "$SPEX_HOME/data/.ready" ]] || { echo "SPEX_HOME=$SPEX_HOME has no data: run models/fetch.sh" >&2; exit 1; }
[[ -x "$REF_VENV/bin/python" ]] || { echo "no python in REF_VENV=$REF_VENV" >&2; exit 1; }
# Where lm_eval is installed and its version, without importing it (the import takes seconds).
read -r LMEVAL_DIR FOUND_VERSION < <("$REF_VENV/bin/python" -c '
import importlib.metadata, importlib.util
print(importlib.util.find_spec("lm_eval").submodule_search_locations[0], importlib.metadata.version("lm_eval"))')
[[ "$FOUND_VERSION" == "$LMEVAL_VERSION" ]] ||
  echo "warning: REF_VENV has lm_eval $FOUND_VERSION; these tasks were checked against $LMEVAL_VERSION" >&2

mkdir -p "$DIR"
TASKS=()
for s in $SETS; do
  rel="$(harness_yaml "$s")"
  data="$SPEX_HOME/data/$s/validation.jsonl"
  [[ -f "$LMEVAL_DIR/tasks/$rel" ]] || { echo "no $LMEVAL_DIR/tasks/$rel" >&2; exit 1; }
  [[ -f "$data" ]] || { echo "no $data: run models/fetch.sh" >&2; exit 1; }
  cat >"$DIR/spex_$s.yaml" <<YAML
include:
  - $LMEVAL_DIR/tasks/$rel
  - $HERE/lmeval_tasks/spex_$s.yaml
dataset_kwargs:
  data_files:
    validation: $data
YAML
  TASKS+=("spex_$s")
done
(IFS=,; echo "${TASKS[*]}")
