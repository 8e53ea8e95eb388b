# Sourced (`. kernels/cuda_env.sh`): a CUDA 13.0 toolchain from PyPI wheels, outside git, so that
# `cargo build --features cuda` compiles on a machine with no GPU and no CUDA install.
#
# Why 13.0 and not 12.x: the GPU machine (H200, driver 580 = CUDA 13.0) has CUDA 13.0 libraries
# (libcublas.so.13, libnvrtc.so.13, ...) and no 12.x ones. A binary linked here against 12.x sonames
# would not start there, and PTX from an nvcc newer than 13.0 (PTX ISA > 9.0) would not load on
# driver 580. So the pins below match that machine's toolkit.
#
# What it does (idempotent; the first run downloads about 1.2 GB into $SPEX_CUDA_VENV):
# - a venv holding nvcc, nvrtc, the runtime, cccl headers, cublas and curand at pinned versions;
# - unversioned `lib*.so` links next to the wheels' `lib*.so.N`, as the linker's `-lcublas` wants;
# - `lib/stubs/libcuda.so`: a stub driver library (soname libcuda.so.1) with every `cu*` entry point
#   cudarc declares, for linking only; the real driver library is used at run time;
# - exports CUDA_ROOT / CUDA_HOME / CUDA_PATH (read by cudarc's and cudaforge's build scripts),
#   NVCC, PATH and CUDA_COMPUTE_CAP=90 (H100/H200; cudaforge cannot ask nvidia-smi here).

SPEX_CUDA_VENV="${SPEX_CUDA_VENV:-/root/cuda-venv}"
SPEX_CUDA_WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cublas==13.1.0.3
    nvidia-curand==10.4.0.35
)

spex_cuda_setup() {
    local py root
    if [ ! -x "$SPEX_CUDA_VENV/bin/python" ]; then
        python3 -m venv "$SPEX_CUDA_VENV" || return 1
    fi
    "$SPEX_CUDA_VENV/bin/pip" install -q "${SPEX_CUDA_WHEELS[@]}" || return 1
    py=$("$SPEX_CUDA_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
    root="$py/nvidia/cu13"
    [ -x "$root/bin/nvcc" ] || { echo "cuda_env.sh: no nvcc under $root" >&2; return 1; }
    local lib so base
    for so in "$root"/lib/lib*.so.[0-9]*; do
        base="${so##*/}"
        lib="$root/lib/${base%%.so.*}.so"
        [ -e "$lib" ] || ln -s "$base" "$lib"
    done
    if [ ! -e "$root/lib/stubs/libcuda.so" ]; then
        mkdir -p "$root/lib/stubs"
        local sys
        sys=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10/src/driver/sys/mod.rs 2>/dev/null | head -n1)
        [ -n "$sys" ] || { echo "cuda_env.sh: cudarc 0.19.10 sources not found; run 'cargo fetch' first" >&2; return 1; }
        grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$sys" | sed 's/pub unsafe fn //' | sort -u \
            | sed 's/.*/int &(void) { return 999; }/' >"$root/lib/stubs/libcuda_stub.c"
        gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" \
            "$root/lib/stubs/libcuda_stub.c" || return 1
    fi
    export CUDA_ROOT="$root" CUDA_HOME="$root" CUDA_PATH="$root"
    export NVCC="$root/bin/nvcc"
    export PATH="$root/bin:$PATH"
    export CUDA_COMPUTE_CAP=90
}

spex_cuda_setup
