#!/usr/bin/env bash
# Ablated forward passes per second of the default model on the CPU: spex (criterion bench
# `forward`, plain and with layer reuse, f32 and bf16 products) and PyTorch eager
# (benches/python/torch_heads.py, the same prompt, random per-row head masks, last-position
# logits, f32 and bf16 autocast) one after the other, so the ratios are taken on one machine in
# one sitting. The CPU's model name and vector flags are printed first.
#
#   T=64,256 B=16,64 DTYPE=f32,bf16 PYTHON=/path/to/venv/bin/python \
#     bash benches/forward_vs_torch.sh [BENCH_BIN...]
#
# BENCH_BIN: already built `forward` bench binaries to time in turn (e.g. before and after a
# change); default: `cargo bench --bench forward`. Torch needs `pip install torch transformers`
# in PYTHON's environment. Raw logs go to $LOGS (default runs/forward_vs_torch). spex batches as
# the library does on the CPU (1,024 positions per batch); SPEX_BENCH_BATCH_TOKENS=16384 runs each
# B as one batch, as torch does. ONEDNN_MAX_CPU_ISA (e.g. AVX512_CORE_BF16) caps torch's oneDNN
# kernels as SPEX_CPU_KERNELS caps spex's; both are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${T:-64,256}
B=${B:-16,64}
DTYPE=${DTYPE:-f32,bf16}
PYTHON=${PYTHON:-python3}
LOGS=${LOGS:-runs/forward_vs_torch}
mkdir -p "$LOGS"
export SPEX_BENCH_T=$T SPEX_BENCH_B=$B SPEX_BENCH_DTYPE=$DTYPE
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%FT%TZ)"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|fma|amx)' | tr '\n' ' ')"
echo "SPEX_CPU_KERNELS=${SPEX_CPU_KERNELS:-auto} SPEX_BENCH_BATCH_TOKENS=${SPEX_BENCH_BATCH_TOKENS:-default} ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-all}"
if [ $# -eq 0 ]; then
  cargo bench --bench forward -- --noplot 2>&1 | tee "$LOGS/spex.log" | grep -E "^ablated|thrpt"
else
  i=0
  for bin in "$@"; do
    echo "== $bin"
    "$bin" --bench --noplot 2>&1 | tee "$LOGS/spex-$i.log" | grep -E "^ablated|thrpt"
    i=$((i + 1))
  done
fi
for dtype in ${DTYPE//,/ }; do
  echo "== torch $dtype"
  autocast=()
  [ "$dtype" = bf16 ] && autocast=(--autocast-bf16)
  OMP_NUM_THREADS=2 "$PYTHON" benches/python/torch_heads.py --prompt-len ${T//,/ } \
    --batch-sizes ${B//,/ } --passes 64 --threads 2 --seed 0 --last-logits "${autocast[@]}" \
    | tee "$LOGS/torch-$dtype.log"
done
