#!/usr/bin/env bash
# The property tests of every parser of untrusted input (src/fuzz.rs: plan.json, values and
# masks files, head-mask specs, JSONL rows, GGUF headers) at a larger count than `cargo test`
# runs (100,000 inputs per parser), in the release profile:
#   bash benches/fuzz_parsers.sh            # 1,000,000 inputs per parser
#   bash benches/fuzz_parsers.sh 10000000   # or any other count
# Prints each parser's time; a failure prints the smallest input proptest found.
set -euo pipefail
cases=${1:-1000000}
cd "$(dirname "$0")/.."
cargo build --release --lib --tests -q
for t in plan_json values_and_masks_files head_mask_specs jsonl_rows gguf_headers; do
  start=$(date +%s.%N)
  PROPTEST_CASES=$cases cargo test --release -q --lib "fuzz::${t}_never_panic" -- --exact >/dev/null
  end=$(date +%s.%N)
  awk -v t="$t" -v n="$cases" -v s="$start" -v e="$end" 'BEGIN { printf "%-28s %10d inputs %8.1f s\n", t, n, e - s }'
done
