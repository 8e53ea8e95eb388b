#!/usr/bin/env bash
# The CUDA checks of the GPU machine (no cargo there), in two steps; kernels/README.md says when.
#
#   bash benches/gpu_check.sh pack   # here: compile the CUDA kernel with NVRTC, build the CUDA
#                                    # test binary and the GPU bench in release (toolchain:
#                                    # kernels/cuda_env.sh), strip, xz, put them in .gpu/
#                                    # (git-ignored; the device call carries it)
#   bash benches/gpu_check.sh run    # there: unpack .gpu/, find the CUDA 13 libraries, then
#                                    # nvidia-smi, the CUDA tests, a memcheck of the fused kernel,
#                                    # the bench and the out-of-memory check; logs in $OUT (about
#                                    # 7 minutes at most)
set -uo pipefail
cd "$(dirname "$0")/.."

pack() {
    set -e
    # shellcheck source=../kernels/cuda_env.sh
    . kernels/cuda_env.sh
    local test_bin
    python3 kernels/nvrtc_compile.py
    nice -n 19 cargo build --release --features cuda --example gpu_bench
    # The test target's executable (the build also links the spex binary the CLI tests use).
    test_bin=$(nice -n 19 cargo test --release --features cuda --test gpu --no-run \
        --message-format=json | grep '"kind":\["test"\]' | grep '"name":"gpu"' |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
    [ -x "$test_bin" ] || { echo "no test binary found" >&2; exit 1; }
    rm -rf .gpu && mkdir .gpu
    strip -o .gpu/cuda-tests "$test_bin"
    strip -o .gpu/gpu-bench target/release/examples/gpu_bench
    xz -T0 -9 .gpu/cuda-tests .gpu/gpu-bench
    git rev-parse HEAD >.gpu/commit
    ls -l .gpu
}

# Folders holding the CUDA 13 libraries the binaries link (driver, NVRTC, cuBLAS, cuRAND, runtime).
lib_dirs() {
    local lib
    for lib in libcuda.so.1 libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublas.so.13 \
        libcublasLt.so.13 libcurand.so.10 libcudart.so.13; do
        find /usr/local/nvidia /usr/local/cuda* /usr/lib/x86_64-linux-gnu /opt /usr/local/lib \
            -name "$lib" 2>/dev/null | head -n1 | xargs -r dirname
    done | awk '!seen[$0]++' | paste -sd: -
}

# Decompresses $1 into $2 (Python's lzma where xz is not installed).
unxz_to() {
    if command -v xz >/dev/null; then
        xz -dc "$1" >"$2"
    else
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
    fi
}

run() {
    local out="${OUT:-/tmp/gpu-check}" status=0 bin=/tmp/spex-gpu
    mkdir -p "$out" "$bin"
    [ -f .gpu/cuda-tests.xz ] && [ -f .gpu/gpu-bench.xz ] || {
        echo "no .gpu/*.xz: run 'bash benches/gpu_check.sh pack' here and carry .gpu" >&2
        exit 2
    }
    unxz_to .gpu/cuda-tests.xz "$bin/cuda-tests" && unxz_to .gpu/gpu-bench.xz "$bin/gpu-bench"
    chmod +x "$bin"/*
    export LD_LIBRARY_PATH="$(lib_dirs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    {
        echo "commit $(cat .gpu/commit 2>/dev/null)"
        echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
        nvcc --version 2>&1 | tail -n2
        ldd "$bin/cuda-tests" "$bin/gpu-bench"
    } >"$out/env.txt" 2>&1
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1
    cat "$out/env.txt" "$out/nvidia-smi.txt"
    if grep -q '=> not found' "$out/env.txt"; then
        echo "missing libraries (see env.txt): the binaries cannot start" >&2
        exit 3
    fi

    echo "== CUDA tests"
    timeout 150 "$bin/cuda-tests" 2>&1 | tee "$out/tests.log" || status=1

    echo "== compute-sanitizer memcheck of the fused kernel tests (Firecracker only; 9 = errors found)"
    local sanitizer
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n1)
    timeout 60 "${sanitizer:-compute-sanitizer}" --tool memcheck --error-exitcode 9 \
        "$bin/cuda-tests" fused_merge 2>&1 | tail -n 40 | tee "$out/memcheck.log"
    local memcheck=${PIPESTATUS[0]}
    echo "memcheck exit: $memcheck" | tee -a "$out/memcheck.log"
    [ "$memcheck" -ne 9 ] || status=1

    echo "== bench"
    timeout 230 "$bin/gpu-bench" --budget-s 140 2>&1 | tee "$out/bench.md" || status=1

    echo "== out-of-memory check: one batch too large for the card, split by the engine"
    timeout 90 "$bin/gpu-bench" --oom-check 2>&1 | tee "$out/oom.log" || status=1
    exit "$status"
}

case "${1:-}" in
pack) pack ;;
run) run ;;
*)
    echo "usage: bash benches/gpu_check.sh pack|run" >&2
    exit 2
    ;;
esac
