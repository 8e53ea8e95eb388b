//! The GPU kernels tested on the host: `kernels/head_mask.cu` and `kernels/head_mask.metal` are
//! compiled as C++ against stand-ins for their built-ins (`kernels/host/cuda_runtime_host.h`,
//! `kernels/host/metal_stdlib`), every thread of the launch their Rust side makes is run
//! (`kernels/host/head_mask_*_driver.cpp`), and the output must equal the CPU's plain ops
//! (`merge_heads`) bit for bit: both compute in f32 in the same order, and f16/bf16 round once at
//! the store. This checks the kernels' indexing, bounds and arithmetic where no GPU exists;
//! `tests/gpu.rs` runs them on a GPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::arch::decoder::{merge_heads, HeadOp};

/// The host driver of `kernels/host/head_mask_{backend}_driver.cpp`, compiled into `dir` with
/// `$CXX` (default `c++`); warnings are errors.
fn compile_driver(backend: &str, dir: &Path) -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/host");
    let exe = dir.join(format!("head_mask_{backend}_driver"));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&cxx)
        .args([
            "-std=c++17",
            "-O1",
            "-ffp-contract=off",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg("-Wno-attributes")
        .arg("-I")
        .arg(&host)
        .arg(host.join(format!("head_mask_{backend}_driver.cpp")))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("`{cxx}` (a C++17 compiler, e.g. Debian's g++) must run: {e}"));
    assert!(
        out.status.success(),
        "the {backend} head-mask kernel does not compile as C++:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// One problem: sizes, dtype, zero or mean ablation, and the launch's threads (the Metal
/// threadgroup width or the CUDA block size).
struct Case {
    dims: [usize; 4],
    dtype: DType,
    mean: bool,
    threads: u32,
}

/// The driver's output `[N, T, H*Dh]` (f32) for `ctx`, `scale` and `mean` given in f32.
fn run_driver(exe: &Path, case: &Case, ctx: &[f32], scale: &[f32], mean: &[f32]) -> Vec<f32> {
    let [n, h, t, dh] = case.dims.map(|x| x as u32);
    let code = match case.dtype {
        DType::F32 => 0u32,
        DType::F16 => 1,
        DType::BF16 => 2,
        other => panic!("no host kernel for {other:?}"),
    };
    let mut input: Vec<u8> = [code, case.mean as u32, n, h, t, dh, case.threads]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    input.extend(
        ctx.iter()
            .chain(scale)
            .chain(mean)
            .flat_map(|v| v.to_le_bytes()),
    );
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Seeded values uniform in `[lo, hi)`, rounded to `dtype` (what the kernel reads).
fn values(count: usize, lo: f32, hi: f32, dtype: DType, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..count).map(|_| rng.random_range(lo..hi)).collect();
    rounded(v, dtype)
}

/// `v` rounded to `dtype` and back to f32, as candle converts.
fn rounded(v: Vec<f32>, dtype: DType) -> Vec<f32> {
    let count = v.len();
    let t = Tensor::from_vec(v, count, &Device::Cpu).unwrap();
    let t = t.to_dtype(dtype).unwrap().to_dtype(DType::F32).unwrap();
    t.to_vec1().unwrap()
}

/// The CPU's plain ops on the same inputs, the result rounded to `dtype` once.
fn reference(case: &Case, ctx: &[f32], scale: &[f32], mean: &[f32]) -> Vec<f32> {
    let [n, h, t, dh] = case.dims;
    let cpu = |v: &[f32], shape: (usize, usize, usize, usize)| {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    };
    let op = HeadOp {
        scale: cpu(scale, (n, h, 1, 1)),
        mean: case.mean.then(|| cpu(mean, (1, h, 1, dh))),
    };
    let merged = merge_heads(&cpu(ctx, (n, h, t, dh)), Some(&op), None).unwrap();
    assert_eq!(merged.dims(), [n, t, h * dh]);
    let merged = merged.flatten_all().unwrap().to_vec1().unwrap();
    rounded(merged, case.dtype)
}

/// Every case through `backend`'s kernel, against the plain ops, for each launch width in
/// `threads` (full, partial and odd blocks).
fn kernel_equals_the_plain_ops(backend: &str, threads: [u32; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_driver(backend, dir.path());
    // A single element, odd sizes, H*Dh below, at and above a block.
    let shapes = [
        [1, 1, 1, 1],
        [3, 9, 7, 64],
        [2, 5, 13, 24],
        [4, 3, 1, 17],
        [1, 16, 5, 80],
    ];
    // Values the half types round specially: subnormal in f16, past f16's range, signed zeros.
    let special = [6e-8, -3e-5, 1e-6, 7e4, -65504.0, 1e30, 0.0, -0.0];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut checked = 0;
    for dims in shapes {
        let [n, h, t, dh] = dims;
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let mut ctx = values(n * h * t * dh, -4.0, 4.0, dtype, &mut rng);
            if h > 1 {
                // In head 1 of row 0, which the scales below keep (s = 1).
                for (dst, &v) in ctx[t * dh..2 * t * dh].iter_mut().zip(&special) {
                    *dst = v;
                }
                ctx = rounded(ctx, dtype);
            }
            // Scales 0, 1, 0.5 and random ones: removed, kept, halved, in between.
            let random = values(n * h, 0.0, 1.0, dtype, &mut rng);
            let scale: Vec<f32> = (0..n * h)
                .map(|i| [0.0, 1.0, 0.5, random[i]][i % 4])
                .collect();
            let mean = values(h * dh, -2.0, 2.0, dtype, &mut rng);
            for (with_mean, threads) in
                [(false, threads[0]), (true, threads[1]), (true, threads[2])]
            {
                let case = Case {
                    dims,
                    dtype,
                    mean: with_mean,
                    threads,
                };
                let host_mean = if with_mean { &mean[..] } else { &[] };
                let got = run_driver(&exe, &case, &ctx, &scale, host_mean);
                let want = reference(&case, &ctx, &scale, &mean);
                assert_eq!(got.len(), want.len(), "{dims:?} {dtype:?}: output size");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.to_bits() == w.to_bits(),
                        "{backend} {dims:?} {dtype:?} mean={with_mean} threads={threads}: out[{i}] = {g}, plain ops {w}"
                    );
                }
                checked += got.len();
            }
        }
    }
    assert!(checked > 10_000, "only {checked} values compared");
}

#[test]
fn metal_kernel_on_the_host_equals_the_plain_ops() {
    // Threadgroups of 256 (what the launch uses for wide rows), 32 and an odd 7.
    kernel_equals_the_plain_ops("metal", [256, 32, 7]);
}

#[test]
fn cuda_kernel_on_the_host_equals_the_plain_ops() {
    // Blocks of 1024 (the launch's largest: min(32, ceil(cols / 32)) warps), 32 and an odd 7.
    kernel_equals_the_plain_ops("cuda", [1024, 32, 7]);
}
