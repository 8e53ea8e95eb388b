//! `kernels/head_mask.metal` tested on the host: compiled as C++ with the stand-in
//! `kernels/host/metal_stdlib`, run over every thread of the grid the Metal launch dispatches
//! (`kernels/host/head_mask_driver.cpp`), and compared with the CPU's plain ops (`merge_heads`),
//! bit for bit: both compute in f32 in the same order, and f16/bf16 round once at the store.
//! This checks the kernel's indexing, bounds and arithmetic where no Metal GPU exists;
//! `tests/gpu.rs` runs it on a Metal GPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::decoder::{merge_heads, HeadOp};

/// The driver, compiled into `dir` with `$CXX` (default `c++`); warnings are errors.
fn compile_driver(dir: &Path) -> PathBuf {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let exe = dir.join("head_mask_driver");
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
        .arg(kernels.join("host"))
        .arg(kernels.join("host/head_mask_driver.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("`{cxx}` (a C++17 compiler, e.g. Debian's g++) must run: {e}"));
    assert!(
        out.status.success(),
        "kernels/head_mask.metal does not compile as C++:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// One problem: sizes, dtype, zero or mean ablation, and the launch's threadgroup width.
struct Case {
    dims: [usize; 4],
    dtype: DType,
    mean: bool,
    width: u32,
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
    let mut input: Vec<u8> = [code, case.mean as u32, n, h, t, dh, case.width]
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
fn values(count: usize, lo: f32, hi: f32, dtype: DType, rng: &mut ChaCha8Rng) -> Tensor {
    let v: Vec<f32> = (0..count).map(|_| rng.random_range(lo..hi)).collect();
    let t = Tensor::from_vec(v, count, &Device::Cpu).unwrap();
    t.to_dtype(dtype).unwrap().to_dtype(DType::F32).unwrap()
}

/// The CPU's plain ops on the same inputs, the result rounded to `dtype` once.
fn reference(case: &Case, ctx: &Tensor, scale: &Tensor, mean: &Tensor) -> Vec<f32> {
    let [n, h, t, dh] = case.dims;
    let op = HeadOp {
        scale: scale.reshape((n, h, 1, 1)).unwrap(),
        mean: case.mean.then(|| mean.reshape((1, h, 1, dh)).unwrap()),
    };
    let merged = merge_heads(&ctx.reshape((n, h, t, dh)).unwrap(), Some(&op), None).unwrap();
    assert_eq!(merged.dims(), [n, t, h * dh]);
    let rounded = merged.to_dtype(case.dtype).unwrap().to_dtype(DType::F32);
    rounded.unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn metal_kernel_on_the_host_equals_the_plain_ops() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_driver(dir.path());
    // A single element, odd sizes, H*Dh below, at and above a threadgroup, ragged last groups.
    let shapes = [
        [1, 1, 1, 1],
        [3, 9, 7, 64],
        [2, 5, 13, 24],
        [4, 3, 1, 17],
        [1, 16, 5, 80],
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut checked = 0;
    for dims in shapes {
        let [n, h, t, dh] = dims;
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let ctx = values(n * h * t * dh, -4.0, 4.0, dtype, &mut rng);
            // Scales 0, 1, 0.5 and random ones: removed, kept, halved, in between.
            let random = values(n * h, 0.0, 1.0, dtype, &mut rng)
                .to_vec1::<f32>()
                .unwrap();
            let scale: Vec<f32> = (0..n * h)
                .map(|i| [0.0, 1.0, 0.5, random[i]][i % 4])
                .collect();
            let scale = Tensor::from_vec(scale, n * h, &Device::Cpu).unwrap();
            let mean = values(h * dh, -2.0, 2.0, dtype, &mut rng);
            for (mean_on, width) in [(false, 256), (true, 256), (true, 32), (false, 7)] {
                let case = Case {
                    dims,
                    dtype,
                    mean: mean_on,
                    width,
                };
                let host_mean = if mean_on {
                    mean.to_vec1::<f32>().unwrap()
                } else {
                    Vec::new()
                };
                let got = run_driver(
                    &exe,
                    &case,
                    &ctx.to_vec1::<f32>().unwrap(),
                    &scale.to_vec1::<f32>().unwrap(),
                    &host_mean,
                );
                let want = reference(&case, &ctx, &scale, &mean);
                assert_eq!(got.len(), want.len(), "{dims:?} {dtype:?}: output size");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.to_bits() == w.to_bits(),
                        "{dims:?} {dtype:?} mean={mean_on} width={width}: out[{i}] = {g}, plain ops {w}"
                    );
                }
                checked += got.len();
            }
        }
    }
    assert!(checked > 10_000, "only {checked} values compared");
}
