//! SPEX decoding: per-block Walsh–Hadamard transforms, singleton detection with BCH-decoded
//! indices, peeling across groups, and the optional least-squares refit.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::design::{Decoder, Design, SpexPlan};
use super::fwht::fwht;
use crate::error::check_finite;
use crate::{Basis, Spectrum, Subset};
use crate::{Error, Result};

/// Most peeling rounds (shapiq's bound).
const MAX_ROUNDS: usize = 100;
/// Rounds without a new index after which peeling stops (shapiq's trap exit).
const STALL_ROUNDS: usize = 15;
/// A bin is a singleton when its residual keeps less than this fraction of its energy.
const RESIDUAL_CUTOFF: f64 = 0.9;
/// A bin is empty when its mean squared observation is below this fraction of `mean(f^2)`.
const ZERO_CUTOFF: f64 = 1e-9;

/// Observations `u[c][j][p]`: bin `j` of group `c` seen through delay `p`, `[groups, 2^b, P]`.
struct Bins {
    delays: usize,
    rows: usize,
    data: Vec<f64>,
}

impl Bins {
    fn get(&self, c: usize, j: usize) -> &[f64] {
        let at = (c * self.rows + j) * self.delays;
        &self.data[at..at + self.delays]
    }

    fn get_mut(&mut self, c: usize, j: usize) -> &mut [f64] {
        let at = (c * self.rows + j) * self.delays;
        &mut self.data[at..at + self.delays]
    }
}

/// Decodes `values` (one per mask of `plan.masks()`, same order) into a Fourier spectrum.
pub fn decode(plan: &SpexPlan, values: &[f64]) -> Result<Spectrum> {
    let design = Design::new(plan)?;
    if values.len() != plan.n_queries() {
        return Err(Error::ValuesMismatch(format!(
            "the SPEX plan has {} masks but {} values were given",
            plan.n_queries(),
            values.len()
        )));
    }
    check_finite(values)?;
    let bins = transform(plan, values);
    let energy = values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64;
    let mut peeler = Peeler {
        plan,
        design: &design,
        bins: Bins {
            delays: bins.delays,
            rows: bins.rows,
            data: bins.data.clone(),
        },
        cutoff: ZERO_CUTOFF * energy,
    };
    let found = peeler.run();
    let terms: Vec<(Subset, f64)> = if plan.refit && !found.is_empty() {
        refit(plan, &design, &bins, &found)
    } else {
        found.into_iter().collect()
    };
    Ok(Spectrum::from_terms(
        plan.n,
        Basis::Fourier,
        terms.into_iter().filter(|(_, v)| *v != 0.0),
    ))
}

/// One FWHT per (group, delay) block, normalised by `2^-b`, stored bin-major.
fn transform(plan: &SpexPlan, values: &[f64]) -> Bins {
    let rows = 1usize << plan.b;
    let delays = plan.bch.delays;
    let scale = 1.0 / rows as f64;
    let blocks: Vec<Vec<f64>> = values
        .par_chunks_exact(rows)
        .map(|block| {
            let mut a = block.to_vec();
            fwht(&mut a);
            a.iter_mut().for_each(|v| *v *= scale);
            a
        })
        .collect();
    let mut data = vec![0.0; values.len()];
    for (bi, block) in blocks.iter().enumerate() {
        let (c, p) = (bi / delays, bi % delays);
        for (j, v) in block.iter().enumerate() {
            data[(c * rows + j) * delays + p] = *v;
        }
    }
    Bins { delays, rows, data }
}

/// `+1/-1` signature of player set with parity word `parity` through the `P` delays.
fn signature(parity: u128, delays: usize) -> impl Iterator<Item = f64> {
    (0..delays).map(move |p| {
        if p > 0 && parity >> (p - 1) & 1 == 1 {
            -1.0
        } else {
            1.0
        }
    })
}

/// The peeling decoder's state: residual bins and the energy cutoff for empty bins.
struct Peeler<'a> {
    plan: &'a SpexPlan,
    design: &'a Design,
    bins: Bins,
    cutoff: f64,
}

impl Peeler<'_> {
    /// Peels until no bin changes; returns the summed amplitude of each found index.
    fn run(&mut self) -> BTreeMap<Subset, f64> {
        let groups = self.plan.groups;
        let rows = self.bins.rows;
        let delays = self.bins.delays;
        let mut flagged = vec![true; groups * rows];
        let mut found: BTreeMap<Subset, f64> = BTreeMap::new();
        let mut stall = 0;
        for _ in 0..MAX_ROUNDS {
            let to_check: Vec<(usize, usize)> = flagged
                .iter()
                .enumerate()
                .filter(|(_, &f)| f)
                .map(|(i, _)| (i / rows, i % rows))
                .collect();
            if to_check.is_empty() {
                break;
            }
            flagged.iter_mut().for_each(|f| *f = false);
            let detections: Vec<(Vec<u32>, f64)> = to_check
                .par_iter()
                .filter_map(|&(c, j)| self.singleton(c, j))
                .collect();
            // average repeated detections of one index within the round
            let mut round: BTreeMap<Vec<u32>, (f64, usize)> = BTreeMap::new();
            for (k, rho) in detections {
                let e = round.entry(k).or_insert((0.0, 0));
                e.0 += rho;
                e.1 += 1;
            }
            let before = found.len();
            for (k, (sum, count)) in round {
                let rho = sum / count as f64;
                let parity = self.design.code.encode(&k);
                for c in 0..groups {
                    let j = self.design.bin(c, &k);
                    let u = self.bins.get_mut(c, j);
                    for (x, s) in u.iter_mut().zip(signature(parity, delays)) {
                        *x -= rho * s;
                    }
                    flagged[c * rows + j] = true;
                }
                *found.entry(Subset::from_sorted(k)).or_insert(0.0) += rho;
            }
            stall = if found.len() == before { stall + 1 } else { 0 };
            if stall >= STALL_ROUNDS {
                break;
            }
        }
        found
    }

    /// The `(index, amplitude)` of bin `j` of group `c` if it holds exactly one coefficient.
    fn singleton(&self, c: usize, j: usize) -> Option<(Vec<u32>, f64)> {
        let u = self.bins.get(c, j);
        let delays = u.len();
        let energy: f64 = u.iter().map(|x| x * x).sum();
        if energy <= self.cutoff * delays as f64 || u[0] == 0.0 {
            return None;
        }
        let ratios: Vec<f64> = u[1..].iter().map(|x| x / u[0]).collect();
        let bits = ratios
            .iter()
            .enumerate()
            .fold(0u128, |acc, (r, &x)| acc | ((x < 0.0) as u128) << r);
        let code = &self.design.code;
        let decoded = match self.plan.decoder {
            Decoder::Hard => code.decode_hard(bits),
            Decoder::Soft => {
                let reliability: Vec<f64> = ratios.iter().map(|x| x.abs()).collect();
                code.decode_soft(bits, &reliability, self.plan.t)
            }
        }?;
        let k = decoded.players;
        if self.design.bin(c, &k) != j {
            return None;
        }
        let parity = code.encode(&k);
        let rho = u
            .iter()
            .zip(signature(parity, delays))
            .map(|(x, s)| x * s)
            .sum::<f64>()
            / delays as f64;
        let residual = energy - delays as f64 * rho * rho;
        (residual < RESIDUAL_CUTOFF * energy).then_some((k, rho))
    }
}

/// Least-squares amplitudes of the found indices on all samples.
///
/// With `A` the `[samples, K]` matrix of characters, `A^T A / 2^b` is non-zero only for pairs of
/// indices sharing a bin in some group, where it adds `P - 2 |parity_a xor parity_b|`, and
/// `A^T y / 2^b` is each index's signature against its (un-peeled) bins; the sparse normal
/// equations are solved by conjugate gradients.
fn refit(
    plan: &SpexPlan,
    design: &Design,
    bins: &Bins,
    found: &BTreeMap<Subset, f64>,
) -> Vec<(Subset, f64)> {
    let keys: Vec<&Subset> = found.keys().collect();
    let parity: Vec<u128> = keys
        .iter()
        .map(|k| design.code.encode(k.indices()))
        .collect();
    let delays = plan.bch.delays;
    let mut gram: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); keys.len()];
    let mut rhs = vec![0.0; keys.len()];
    for c in 0..plan.groups {
        let mut buckets: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (a, k) in keys.iter().enumerate() {
            let j = design.bin(c, k.indices());
            buckets.entry(j).or_default().push(a);
            rhs[a] += bins
                .get(c, j)
                .iter()
                .zip(signature(parity[a], delays))
                .map(|(x, s)| x * s)
                .sum::<f64>();
        }
        for members in buckets.values() {
            for &a in members {
                for &b in members {
                    let agree = delays as f64 - 2.0 * (parity[a] ^ parity[b]).count_ones() as f64;
                    *gram[a].entry(b).or_insert(0.0) += agree;
                }
            }
        }
    }
    let start: Vec<f64> = found.values().copied().collect();
    let x = conjugate_gradient(&gram, &rhs, start);
    keys.into_iter().cloned().zip(x).collect()
}

/// Solves the symmetric positive definite sparse system `G x = rhs` from `x0`.
fn conjugate_gradient(gram: &[BTreeMap<usize, f64>], rhs: &[f64], x0: Vec<f64>) -> Vec<f64> {
    let apply = |v: &[f64]| -> Vec<f64> {
        gram.iter()
            .map(|row| row.iter().map(|(&b, g)| g * v[b]).sum())
            .collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = x0;
    let gx = apply(&x);
    let mut r: Vec<f64> = rhs.iter().zip(&gx).map(|(b, g)| b - g).collect();
    let mut d = r.clone();
    let mut rr = dot(&r, &r);
    let tol = 1e-28 * dot(rhs, rhs).max(f64::MIN_POSITIVE);
    for _ in 0..rhs.len().max(1) * 4 {
        if rr <= tol {
            break;
        }
        let gd = apply(&d);
        let alpha = rr / dot(&d, &gd);
        x.iter_mut().zip(&d).for_each(|(xi, di)| *xi += alpha * di);
        r.iter_mut().zip(&gd).for_each(|(ri, gi)| *ri -= alpha * gi);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        rr = rr_new;
        d.iter_mut()
            .zip(&r)
            .for_each(|(di, ri)| *di = ri + beta * *di);
    }
    x
}
