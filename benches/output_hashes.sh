#!/usr/bin/env bash
# Runs a fixed set of spex commands on the default model and prints the sha256 of every file they
# write (stdout included, stderr excluded), so two builds can be compared byte for byte, e.g.
# before and after a refactor:
#   bash benches/output_hashes.sh OLD/spex /tmp/old > old.sha
#   bash benches/output_hashes.sh target/release/spex /tmp/new > new.sha
#   diff <(awk '{print $1, $2}' old.sha) <(awk '{print $1, $2}' new.sha)
# About 5 minutes on 2 cores; needs `bash models/fetch.sh`.
set -euo pipefail
bin=$(realpath "$1"); out=$2; rm -rf "$out"; mkdir -p "$out"; cd "$out"
t="--task mmlu --subjects high_school_geography"
$bin heads $t --limit 4 --budget 200 --keep-prob 0.9 --out geography > heads.stdout 2> heads.stderr
$bin tokens --prompt "When Mary and John went to the store, John gave a drink to" --target " Mary" --budget 300 --out tokens > tokens.stdout 2> tokens.stderr
$bin prune --from geography $t --split validation --limit 4 --levels 0.1,0.3 > prune.stdout 2> prune.stderr
$bin solve --plan geography --values geography/values.npy --out solve.json --spectrum solve-spectrum.json 2> solve.stderr
$bin plan --players 27 --budget 100 --seed 3 --out plan 2> plan.stderr
for s in 0/2 1/2; do $bin run --plan plan --shard $s --layers 27-29 $t --limit 2 2>> run.stderr; done
$bin solve --plan plan --values plan/values-0-of-2.npy plan/values-1-of-2.npy --out plan-solve.json --spectrum plan-spectrum.json --refit centred 2>> solve.stderr
$bin eval $t --split validation --limit 10 --json eval.json > eval.stdout 2> eval.stderr
$bin logits --prompt "The capital of France is" --json > logits.json 2> logits.stderr
find . -type f ! -name '*.stderr' | sort | xargs sha256sum
