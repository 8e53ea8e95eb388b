#!/usr/bin/env bash
# The whole cloze parity comparison: spex's log-likelihoods and predictions against every row of
# tests/data/lmeval_cloze_sample.json (lm-evaluation-harness 0.4.13, HF backend, f32; made by
# make_lmeval_cloze_reference.sh), not only the first 25 rows per set that `cargo test` checks.
# Prints one line per set (agreement, worst log-likelihood difference) and fails as the test does.
# Usage: tests/reference/compare_cloze_parity.sh   (needs models/fetch.sh's SPEX_HOME)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SPEX_CLOZE_PARITY_ROWS=all cargo test --release --test eval_lmeval_cloze_parity \
  loglikelihoods_and_predictions_agree_with_the_harness -- --nocapture 2>&1 |
  grep -E '^[a-z_]+: [0-9]+ rows|^test result|panicked|failures'
