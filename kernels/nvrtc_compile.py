"""Compiles kernels/head_mask.cu with NVRTC, as src/model/gpu/cuda.rs does at run time (no
options, no headers), on a machine without a GPU: the CUDA toolchain of kernels/cuda_env.sh has
the library. Prints the kernels found in the PTX; exit 1 with NVRTC's log on failure.

    . kernels/cuda_env.sh && python3 kernels/nvrtc_compile.py   (benches/gpu_check.sh pack runs it)
"""

import ctypes
import glob
import os
import re
import sys

KERNELS = [f"head_mask_merge_{mean}{dtype}" for mean in ("", "mean_") for dtype in ("f32", "f16", "bf16")]


def nvrtc():
    """libnvrtc.so.13 from CUDA_ROOT's lib folder (its builtins library sits beside it)."""
    lib_dir = os.path.join(os.environ.get("CUDA_ROOT", ""), "lib")
    found = glob.glob(os.path.join(lib_dir, "libnvrtc.so.13"))
    if not found:
        sys.exit(f"nvrtc_compile: no libnvrtc.so.13 in {lib_dir} (source kernels/cuda_env.sh first)")
    # NVRTC dlopens libnvrtc-builtins by name: load it first from the same folder.
    ctypes.CDLL(os.path.join(lib_dir, "libnvrtc-builtins.so.13.0"), mode=ctypes.RTLD_GLOBAL)
    return ctypes.CDLL(found[0])


def main():
    lib = nvrtc()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "head_mask.cu")
    prog = ctypes.c_void_p()
    with open(path, "rb") as f:
        source = f.read()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source, b"head_mask.cu", 0, None, None) != 0:
        sys.exit("nvrtc_compile: nvrtcCreateProgram failed")
    status = lib.nvrtcCompileProgram(prog, 0, None)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    if status != 0:
        sys.exit(f"nvrtc_compile: {path} does not compile (status {status}):\n{log.value.decode()}")
    lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetPTX(prog, ptx)
    entries = re.findall(r"\.entry\s+(\w+)", ptx.value.decode())
    missing = sorted(set(KERNELS) - set(entries))
    if missing:
        sys.exit(f"nvrtc_compile: kernels missing from the PTX: {missing}")
    print(f"nvrtc_compile: {path}: {len(entries)} kernels: {' '.join(entries)}")


if __name__ == "__main__":
    main()
