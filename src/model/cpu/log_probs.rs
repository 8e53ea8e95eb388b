//! Log-probabilities of chosen tokens under rows of logits (the cloze readout, `[P, V]` with V the
//! vocabulary): for f32 CPU tensors one pass per row, rows split over rayon's threads (candle's
//! ops made five passes over the whole `[P, V]` block on one thread, allocating for each: a fifth
//! of a PIQA evaluation); candle's ops elsewhere. The same vectorised logsumexp serves the letter
//! readout's full-vocabulary normaliser.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::cpu::fast_exp;
use crate::model::cpu::features::CpuFeatures;
use crate::model::error::{ModelError, ModelResult};

/// Lanes of the running maxima and sums: one AVX-512 vector, two AVX2 ones; every width keeps
/// the same lanes, so every width gives the same bits.
const LANES: usize = 16;
/// Values summed in f32 lanes before the partial sums move to f64.
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

/// `log(sum(exp(row)))` (nats) in the widest vectors `features` allow: the maximum, then
/// `e^(x - max)` with [`fast_exp::exp`] summed in f32 lanes by blocks of [`BLOCK`] values and
/// the blocks in f64; every width gives the same bits.
pub(crate) fn logsumexp(row: &[f32], features: CpuFeatures) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if features.avx512f {
            // SAFETY: the features say the CPU runs AVX-512F and FMA (avx512f implies avx2_fma).
            return unsafe { logsumexp_avx512(row) };
        }
        if features.avx2_fma {
            // SAFETY: the features say the CPU runs AVX2 and FMA.
            return unsafe { logsumexp_avx2(row) };
        }
    }
    let _ = features;
    logsumexp_body(row)
}

/// [`logsumexp_body`] in 16-lane vectors.
///
/// # Safety
/// The CPU must support AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn logsumexp_avx512(row: &[f32]) -> f64 {
    logsumexp_body(row)
}

/// [`logsumexp_body`] in 8-lane vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn logsumexp_avx2(row: &[f32]) -> f64 {
    logsumexp_body(row)
}

/// The row's logsumexp over [`LANES`] lanes (see [`logsumexp`]); `-inf` for an empty row.
#[inline(always)]
fn logsumexp_body(row: &[f32]) -> f64 {
    let (blocks, tail) = row.split_at(row.len() - row.len() % LANES);
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    for chunk in blocks.chunks_exact(LANES) {
        for (m, &x) in lane_max.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lane_max
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if max == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let mut total = 0.0f64;
    for block in blocks.chunks(BLOCK) {
        let mut lanes = [0.0f32; LANES];
        for chunk in block.chunks_exact(LANES) {
            for (s, &x) in lanes.iter_mut().zip(chunk) {
                *s += fast_exp::exp(x - max);
            }
        }
        total += lanes.iter().map(|&s| f64::from(s)).sum::<f64>();
    }
    total += tail
        .iter()
        .map(|&x| f64::from(fast_exp::exp(x - max)))
        .sum::<f64>();
    f64::from(max) + total.ln()
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
