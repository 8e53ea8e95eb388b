//! Log-probabilities of chosen tokens under rows of logits (the cloze readout, `[P, V]` with V the
//! vocabulary), and the logsumexp that normalises them, defined block by block: each block of
//! 256 values gives its maximum and its sum of exponentials, and the blocks merge in f64. From
//! logits written out, one parallel pass per row (candle's ops made five passes over the whole
//! `[P, V]` block on one thread: a fifth of a PIQA evaluation); straight from the unembedding's
//! product, each block of columns reduced while it is in cache, the same bits without the
//! logits ever written out ([`picked_logits_and_logsumexp`]); candle's ops off the CPU.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::cpu::fast_exp;
use crate::model::cpu::features::CpuFeatures;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::sgemm::PackedMatrix;
use crate::model::error::{ModelError, ModelResult};

/// Lanes of the running maxima and sums: one AVX-512 vector, two AVX2 ones; every width keeps
/// the same lanes, so every width gives the same bits.
const LANES: usize = 16;
/// Values per block of a logsumexp (and columns per block of the fused readout's product): each
/// block's exponentials are summed in f32 lanes, the blocks merged in f64.
const BLOCK: usize = 16 * LANES;

/// `log softmax(logits[p])[targets[p]]` (nats) for each row p of `logits` `[P, V]` (f32), on the
/// logits' device; `features`: the instruction sets the f32 CPU path may use. Returns `[P]`.
pub(crate) fn target_log_probs(
    logits: &Tensor,
    targets: &[u32],
    features: CpuFeatures,
) -> ModelResult<Vec<f32>> {
    let (p, v) = logits.dims2()?;
    if targets.len() != p {
        return Err(ModelError::input(
            "targets",
            format!("{} targets for {p} rows of logits", targets.len()),
        ));
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= v) {
        return Err(ModelError::input(
            "targets",
            format!("token {t} is past the vocabulary of {v}"),
        ));
    }
    if !is_cpu_f32(logits) || v == 0 {
        return by_candle_ops(logits, targets);
    }
    with_values(logits, |values| {
        values
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &t)| (f64::from(row[t as usize]) - logsumexp(row, features)) as f32)
            .collect()
    })
}

/// [`target_log_probs`] as candle ops on the logits' device (f32 values out).
fn by_candle_ops(logits: &Tensor, targets: &[u32]) -> ModelResult<Vec<f32>> {
    let idx = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let max = logits.max_keepdim(1)?;
    let sum = logits.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?;
    let lse = (sum.log()? + max)?;
    let picked = logits.gather(&idx, 1)?;
    let lp = (picked - lse)?.flatten_all()?;
    Ok(lp.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
}

/// `log(sum(exp(row)))` (nats) in the widest vectors `features` allow: each block of [`BLOCK`]
/// values reduced to a [`BlockSum`] (its maximum, and `e^(x - max)` by [`fast_exp::exp`] summed
/// in f32 lanes), the blocks merged in f64 by [`merge`]. Every width gives the same bits, and so
/// does [`picked_logits_and_logsumexp`], which reduces the same blocks without the row.
pub(crate) fn logsumexp(row: &[f32], features: CpuFeatures) -> f64 {
    let blocks: Vec<BlockSum> = row
        .chunks(BLOCK)
        .map(|block| block_sum(block, features))
        .collect();
    merge(&blocks)
}

/// One block's share of a logsumexp: its largest value and the sum of `e^(x - max)` over it.
#[derive(Clone, Copy, Debug)]
struct BlockSum {
    max: f32,
    sum: f64,
}

/// `M + ln(sum_b sum_b * e^(max_b - M))` over the consecutive blocks of a row, M their largest
/// maximum, in f64 (nats); `-inf` when every value is `-inf` (or there are none).
fn merge(blocks: &[BlockSum]) -> f64 {
    let max = blocks
        .iter()
        .fold(f32::NEG_INFINITY, |m, b| if b.max > m { b.max } else { m });
    if max == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let total: f64 = blocks
        .iter()
        .map(|b| b.sum * (f64::from(b.max) - f64::from(max)).exp())
        .sum();
    f64::from(max) + total.ln()
}

/// The [`BlockSum`] of at most [`BLOCK`] values, in the widest vectors `features` allow.
fn block_sum(block: &[f32], features: CpuFeatures) -> BlockSum {
    #[cfg(target_arch = "x86_64")]
    {
        if features.avx512f {
            // SAFETY: the features say the CPU runs AVX-512F and FMA (avx512f implies avx2_fma).
            return unsafe { block_sum_avx512(block) };
        }
        if features.avx2_fma {
            // SAFETY: the features say the CPU runs AVX2 and FMA.
            return unsafe { block_sum_avx2(block) };
        }
    }
    let _ = features;
    block_sum_body(block)
}

/// [`block_sum_body`] in 16-lane vectors.
///
/// # Safety
/// The CPU must support AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn block_sum_avx512(block: &[f32]) -> BlockSum {
    block_sum_body(block)
}

/// [`block_sum_body`] in 8-lane vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_sum_avx2(block: &[f32]) -> BlockSum {
    block_sum_body(block)
}

/// A block's maximum, then `e^(x - max)` summed over [`LANES`] f32 lanes (the lanes and the
/// ragged tail added in f64, in order).
#[inline(always)]
fn block_sum_body(block: &[f32]) -> BlockSum {
    let (body, tail) = block.split_at(block.len() - block.len() % LANES);
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    for chunk in body.chunks_exact(LANES) {
        for (m, &x) in lane_max.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lane_max
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if max == f32::NEG_INFINITY {
        return BlockSum { max, sum: 0.0 };
    }
    let mut lanes = [0.0f32; LANES];
    for chunk in body.chunks_exact(LANES) {
        for (s, &x) in lanes.iter_mut().zip(chunk) {
            *s += fast_exp::exp(x - max);
        }
    }
    let sum = lanes.iter().map(|&s| f64::from(s)).sum::<f64>()
        + tail
            .iter()
            .map(|&x| f64::from(fast_exp::exp(x - max)))
            .sum::<f64>();
    BlockSum { max, sum }
}

/// For each row p of `hidden [P, D]` (f32 values, row-major) times the packed unembedding
/// `[V, D]` transposed: the logits at the vocabulary ids `columns[p]` and the row's
/// [`logsumexp`] (nats), the same bits as from the `[P, V]` logits, which are never written out:
/// each block of [`BLOCK`] columns is reduced while it is in cache.
#[cfg(target_arch = "x86_64")]
pub(crate) fn picked_logits_and_logsumexp(
    unembed: &PackedMatrix,
    hidden: &[f32],
    columns: &[Vec<u32>],
    features: CpuFeatures,
) -> ModelResult<Vec<(Vec<f32>, f64)>> {
    let v = unembed.n();
    if let Some(&c) = columns.iter().flatten().find(|&&c| c as usize >= v) {
        return Err(ModelError::input(
            "targets",
            format!("token {c} is past the vocabulary of {v}"),
        ));
    }
    let p = columns.len();
    let blocks = unembed.column_blocks(hidden, p, BLOCK, |cols, block| {
        let width = cols.len();
        let sums: Vec<BlockSum> = block
            .chunks_exact(width)
            .map(|row| block_sum(row, features))
            .collect();
        let mut picked = Vec::new();
        for (r, mine) in columns.iter().enumerate() {
            for (i, &c) in mine.iter().enumerate() {
                if cols.contains(&(c as usize)) {
                    picked.push((r, i, block[r * width + c as usize - cols.start]));
                }
            }
        }
        (sums, picked)
    });
    let mut out: Vec<(Vec<f32>, f64)> = columns
        .iter()
        .map(|mine| (vec![0.0; mine.len()], 0.0))
        .collect();
    let mut row_blocks = Vec::with_capacity(blocks.len());
    for (r, (_, lse)) in out.iter_mut().enumerate() {
        row_blocks.clear();
        row_blocks.extend(blocks.iter().map(|(sums, _)| sums[r]));
        *lse = merge(&row_blocks);
    }
    for (r, i, value) in blocks.into_iter().flat_map(|(_, picked)| picked) {
        out[r].0[i] = value;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;
    use candle_core::Device;

    /// The definition in f64: `x[t] - log(sum(exp(x)))`.
    fn reference(row: &[f32], t: usize) -> f64 {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
        let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
        f64::from(row[t]) - max - sum.ln()
    }

    #[test]
    fn log_probs_match_the_definition_on_every_width() -> anyhow::Result<()> {
        // A vocabulary past one block with a ragged tail, logits spread like a model's.
        let (p, v) = (7, 49_157);
        let logits = SeededNormal::new(3).tensor((p, v), 0.0, 4.0);
        let targets: Vec<u32> = (0..p as u32).map(|r| (r * 7_919) % v as u32).collect();
        let values = logits.to_vec2::<f32>()?;
        let portable = target_log_probs(&logits, &targets, CpuFeatures::default())?;
        for (r, &got) in portable.iter().enumerate() {
            let want = reference(&values[r], targets[r] as usize);
            assert!(
                (f64::from(got) - want).abs() < 1e-5,
                "row {r}: {got} vs {want}"
            );
        }
        let ops = by_candle_ops(&logits, &targets)?;
        for (r, (&f, &o)) in portable.iter().zip(&ops).enumerate() {
            assert!((f - o).abs() < 1e-4, "row {r}: fused {f}, candle ops {o}");
        }
        let detected = CpuFeatures::detect();
        for limit in ["avx2", "avx512"] {
            let features = detected.limited_to(limit)?;
            let got = target_log_probs(&logits, &targets, features)?;
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&portable), "{limit} ({features:?})");
        }
        Ok(())
    }

    /// The readout reduced block by block from the product gives the bits of the logits written
    /// out and reduced row by row: the picked logits and the logsumexp, on every f32 kernel.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn blocks_reduced_from_the_product_give_the_bits_of_the_logits() -> anyhow::Result<()> {
        use crate::model::cpu::sgemm::Kernel;
        // A vocabulary of 3 blocks and a ragged one, 29 rows (a partial register tile).
        let (p, v, d) = (29, 3 * BLOCK + 37, 96);
        let mut rng = SeededNormal::new(5);
        let hidden = rng
            .tensor((p, d), 0.0, 1.0)
            .flatten_all()?
            .to_vec1::<f32>()?;
        let weight = rng
            .tensor((v, d), 0.0, 0.5)
            .flatten_all()?
            .to_vec1::<f32>()?;
        // Row r picks two ids (the second repeats the first on every third row) and row 4 none.
        let columns: Vec<Vec<u32>> = (0..p as u32)
            .map(|r| match r {
                4 => vec![],
                _ if r % 3 == 0 => vec![r * 31 % v as u32; 2],
                _ => vec![r * 31 % v as u32, (v as u32 - 1) - r],
            })
            .collect();
        let detected = CpuFeatures::detect();
        for kernel in [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.runs_here())
        {
            let packed = PackedMatrix::pack(&weight, v, d, kernel, false);
            let logits = packed.matmul(&hidden, p);
            for limit in ["portable", "avx2", "auto"] {
                let features = detected.limited_to(limit)?;
                let fused = picked_logits_and_logsumexp(&packed, &hidden, &columns, features)?;
                for (r, (picked, lse)) in fused.iter().enumerate() {
                    let row = &logits[r * v..(r + 1) * v];
                    let want: Vec<f32> = columns[r].iter().map(|&c| row[c as usize]).collect();
                    assert_eq!(picked, &want, "{kernel:?} {limit} row {r}: picked logits");
                    let whole = logsumexp(row, features);
                    assert_eq!(lse.to_bits(), whole.to_bits(), "{kernel:?} {limit} row {r}");
                }
            }
        }
        let past = vec![vec![v as u32]];
        let packed = PackedMatrix::pack(&weight, v, d, Kernel::Avx2, false);
        if Kernel::Avx2.runs_here() {
            let err = picked_logits_and_logsumexp(&packed, &hidden[..d], &past, detected);
            let err = err.unwrap_err().to_string();
            assert!(
                err.contains(&format!("token {v} is past the vocabulary")),
                "{err}"
            );
        }
        Ok(())
    }

    #[test]
    fn log_probs_by_hand_fused_and_through_candle_ops() -> anyhow::Result<()> {
        // Row 0: logits [0, ln 3] -> p(1) = 3/4; row 1: [ln 2, 0] -> p(0) = 2/3.
        let logits = Tensor::new(&[[0f32, 3f32.ln()], [2f32.ln(), 0.0]], &Device::Cpu)?;
        let want = [0.75f64.ln(), (2.0f64 / 3.0).ln()];
        let fused = target_log_probs(&logits, &[1, 0], CpuFeatures::detect())?;
        let ops = by_candle_ops(&logits, &[1, 0])?;
        for (name, got) in [("fused", fused), ("candle ops", ops)] {
            for (g, w) in got.iter().zip(want) {
                assert!((f64::from(*g) - w).abs() < 1e-6, "{name}: {g} vs {w}");
            }
        }
        // Large logits: the maximum is taken out before the exponentials.
        let big = Tensor::new(&[[1000f32, 1000.0]], &Device::Cpu)?;
        let lp = target_log_probs(&big, &[0], CpuFeatures::detect())?;
        assert!((f64::from(lp[0]) - 0.5f64.ln()).abs() < 1e-6, "{lp:?}");
        Ok(())
    }

    #[test]
    fn targets_that_do_not_fit_the_logits_are_errors() {
        let logits = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let features = CpuFeatures::detect();
        let few = target_log_probs(&logits, &[0], features).unwrap_err();
        assert!(format!("{few}").contains("1 targets for 2 rows"), "{few}");
        let past = target_log_probs(&logits, &[0, 3], features).unwrap_err();
        assert!(
            format!("{past}").contains("token 3 is past the vocabulary of 3"),
            "{past}"
        );
    }
}
