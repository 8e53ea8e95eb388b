//! Causal grouped-query attention for f32 CPU tensors in one pass per (row, KV head), the query
//! heads reading that KV head taken together in blocks: scores only for the keys a query may see
//! (half the products of a full score matrix), softmax and the weighted sum of values without
//! materialising `[N, H, T, S]` scores, (row, KV head) pairs split over rayon's threads. The
//! decoders' candle path (bias matrix + softmax) is the reference it is tested against and what
//! GPUs run.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::arch::attention::AttentionRules;
use crate::model::cpu::f32::with_values;
use crate::model::cpu::fast_exp;
use crate::model::cpu::features::CpuFeatures;
use crate::model::error::ModelResult;

/// Lanes of the independent partial sums in [`dot`] (lets the compiler use 8-wide vectors).
const LANES: usize = 8;

/// `q [N, H, T, Dh]` (already scaled by 1/sqrt(Dh)), row r's queries at positions
/// `first[r]..first[r]+T` (a `first` of length 1 serves every row), against `k, v [N, Hkv, S, Dh]`:
/// each query sees the keys up to its own position (and within the sliding window of `rules`),
/// its scores soft-capped where `rules` says. Query head `h` reads KV head `h / (H / Hkv)`.
/// Returns the per-head context `[N, H, T, Dh]`. All three must be f32 CPU tensors; the kernels
/// use what `features` allows.
pub(crate) fn fused_causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    first: &[usize],
    rules: AttentionRules,
    features: CpuFeatures,
) -> ModelResult<Tensor> {
    let (n, h, t, dh) = q.dims4()?;
    let (_, hkv, s, _) = k.dims4()?;
    let group = h / hkv;
    let shape_of = |row: usize| Shape {
        t,
        s,
        dh,
        pos0: first[if first.len() == 1 { 0 } else { row }],
        rules,
    };
    let out = with_values(q, |q| {
        with_values(k, |k| {
            with_values(v, |v| {
                let mut out = vec![0.0f32; n * h * t * dh];
                // One task per (row, KV head): the query heads reading that KV head are
                // consecutive, and share one transposed copy of its keys.
                let heads = group * t * dh;
                out.par_chunks_mut(heads.max(1))
                    .enumerate()
                    .for_each(|(row_kv, out)| {
                        let row = row_kv / hkv;
                        let kv = row_kv * s * dh;
                        let qs = &q[row_kv * heads..(row_kv + 1) * heads];
                        let shape = shape_of(row);
                        let (k, v) = (&k[kv..kv + s * dh], &v[kv..kv + s * dh]);
                        kv_group(qs, k, v, out, &shape, features);
                    });
                out
            })
        })
    })???;
    Ok(Tensor::from_vec(out, (n, h, t, dh), q.device())?)
}

/// Sizes of one head's problem, and the layer's attention rules.
struct Shape {
    t: usize,
    s: usize,
    dh: usize,
    pos0: usize,
    rules: AttentionRules,
}

/// Query rows per block of [`blocked_body`]: the block's positions times the query heads that
/// share a KV head, so that each key and value row loaded serves this many queries.
const BLOCK_ROWS: usize = 12;

/// Fewest queries per head for [`blocked_body`]; fewer (a readout's one query) take one query at
/// a time ([`one_head_body`]).
const MIN_BLOCKED_QUERIES: usize = 4;

/// Keys per score tile of [`blocked_body`] (two 16-lane vectors per query).
const KEY_BLOCK: usize = 32;

/// The query heads of one (row, KV head): `q [G, T, Dh]`, `k, v [S, Dh]` -> `out [G, T, Dh]`. From
/// [`MIN_BLOCKED_QUERIES`] queries on, blocks of queries share each key and value row
/// ([`blocked_body`]: AVX-512 and AVX2 give the same bits); fewer (a readout's one query) take
/// one query at a time ([`one_head_body`]).
fn kv_group(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: &Shape,
    features: CpuFeatures,
) {
    let blocked = shape.t >= MIN_BLOCKED_QUERIES;
    #[cfg(target_arch = "x86_64")]
    {
        if blocked && features.avx512f {
            // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked just above).
            unsafe { blocked_avx512(q, k, v, out, shape) };
            return;
        }
        if features.avx2_fma {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            match blocked {
                true => unsafe { blocked_avx2(q, k, v, out, shape) },
                false => unsafe { one_head_avx2(q, k, v, out, shape) },
            }
            return;
        }
    }
    match blocked {
        true => blocked_body(q, k, v, out, shape, &PlainTiles),
        false => one_head_body(q, k, v, out, shape, scores_plain),
    }
}

/// [`blocked_body`] compiled for AVX-512 (16-lane FMAs).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn blocked_avx512(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], shape: &Shape) {
    blocked_body(q, k, v, out, shape, &Avx512Tiles);
}

/// [`blocked_body`] compiled for AVX2 (8-lane FMAs).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocked_avx2(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], shape: &Shape) {
    blocked_body(q, k, v, out, shape, &Avx2Tiles);
}

/// [`one_head_body`]'s result for blocks of queries: the same positions of every query head in
/// `q [G, T, Dh]` (all on the keys `k`, transposed once), [`BLOCK_ROWS`] queries in all, so that
/// each key and value row loaded serves every one of them. The scores of a block come as tiles of
/// [`KEY_BLOCK`] keys against the keys transposed (`Kᵀ [Dh, S]`, one row of keys per dimension,
/// so a tile is a sum of vector products, no horizontal sums), the weighted values as tiles of
/// columns held in registers over every key; `tiles` computes both, `T::ROWS` queries at a time.
/// Each query sums its own keys in key order, so its result does not depend on the block it is
/// in.
#[inline(always)]
fn blocked_body<T: Tiles>(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: &Shape,
    tiles: &T,
) {
    let Shape {
        t,
        s,
        dh,
        pos0,
        rules,
    } = *shape;
    let head = (t * dh).max(1);
    let heads = q.len() / head;
    let hi_all = (pos0 + t).min(s);
    // Kᵀ, its rows zero-padded by a tile: a block's last tile reads past its keys.
    let stride = hi_all + KEY_BLOCK;
    let mut kt = vec![0.0f32; dh * stride];
    for (j, row) in k[..hi_all * dh].chunks_exact(dh.max(1)).enumerate() {
        for (d, &x) in row.iter().enumerate() {
            kt[d * stride + j] = x;
        }
    }
    // Positions per block, and its query rows (head-major) rounded up to whole tiles; rows past
    // the block's positions stay zero and their results are dropped.
    let positions = (BLOCK_ROWS / heads.max(1)).clamp(1, t.max(1));
    let block_rows = (heads * positions).next_multiple_of(T::ROWS);
    let mut qb = vec![0.0f32; block_rows * dh];
    let mut ob = vec![0.0f32; block_rows * dh];
    let mut weights = vec![0.0f32; block_rows * hi_all];
    for i0 in (0..t).step_by(positions) {
        let rows = (t - i0).min(positions);
        for g in 0..heads {
            let at = g * positions * dh;
            let from = g * head + i0 * dh;
            qb[at..at + rows * dh].copy_from_slice(&q[from..from + rows * dh]);
            qb[at + rows * dh..at + positions * dh].fill(0.0);
        }
        // Keys any query of the block sees: [lo, hi).
        let hi = (pos0 + i0 + rows).min(s);
        let lo = rules.first_key(pos0 + i0).min(hi);
        let width = hi - lo;
        let w = &mut weights[..block_rows * width];
        for (qt, wt) in qb
            .chunks_exact((T::ROWS * dh).max(1))
            .zip(w.chunks_exact_mut((T::ROWS * width).max(1)))
        {
            tiles.scores(qt, &kt, (lo, hi, stride), dh, wt);
        }
        for g in 0..heads {
            for r in 0..rows {
                let position = pos0 + i0 + r;
                let seen = (position + 1).min(s);
                let first = rules.first_key(position).min(seen);
                let at = (g * positions + r) * width;
                softmax_in_place(&mut w[at..at + width], first - lo..seen - lo, rules.softcap);
            }
        }
        for (wt, ot) in w
            .chunks_exact((T::ROWS * width).max(1))
            .zip(ob.chunks_exact_mut((T::ROWS * dh).max(1)))
        {
            tiles.weighted_values(wt, &v[lo * dh..hi * dh], ot, (width, dh));
        }
        for g in 0..heads {
            let at = g * positions * dh;
            let to = g * head + i0 * dh;
            out[to..to + rows * dh].copy_from_slice(&ob[at..at + rows * dh]);
        }
    }
}

/// One query's scores `row` made its attention weights: the keys `mine` soft-capped (`softcap`),
/// exponentiated after their maximum and divided by their sum; every other key's weight zero.
#[inline(always)]
fn softmax_in_place(row: &mut [f32], mine: std::ops::Range<usize>, softcap: Option<f32>) {
    if let Some(cap) = softcap {
        for score in &mut row[mine.clone()] {
            *score = (*score / cap).tanh() * cap;
        }
    }
    let max = lane_max(&row[mine.clone()]);
    row[..mine.start].fill(0.0);
    row[mine.end..].fill(0.0);
    let seen_scores = &mut row[mine];
    for score in seen_scores.iter_mut() {
        *score = fast_exp::exp(*score - max);
    }
    let inv = 1.0 / lane_sum(seen_scores);
    for score in seen_scores.iter_mut() {
        *score *= inv;
    }
}

/// Lanes of the softmax's maximum and sum: fixed, so that every instruction set adds the same
/// values in the same order (the compiler vectorises the lanes).
const SOFTMAX_LANES: usize = 16;

/// The largest of `xs` (negative infinity when empty), in [`SOFTMAX_LANES`] running maxima.
#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; SOFTMAX_LANES];
    let chunks = xs.chunks_exact(SOFTMAX_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    lanes
        .into_iter()
        .chain(rest.iter().copied())
        .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

/// The sum of `xs` as [`SOFTMAX_LANES`] running sums, added in lane order, then the tail.
#[inline(always)]
fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; SOFTMAX_LANES];
    let chunks = xs.chunks_exact(SOFTMAX_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (sum, &x) in lanes.iter_mut().zip(chunk) {
            *sum += x;
        }
    }
    lanes.into_iter().chain(rest.iter().copied()).sum()
}

/// The two tile products of [`blocked_body`], [`Tiles::ROWS`] queries at a time.
trait Tiles {
    /// Queries per tile (as many as the registers hold two accumulator vectors for).
    const ROWS: usize;

    /// `scores[r][j - lo] = q_r · k_j` for the queries `qb [ROWS, Dh]` and the keys `lo..hi` of
    /// `kt [Dh, stride]` (keys transposed, `stride >= hi + KEY_BLOCK`, zero past the keys), in
    /// tiles of [`KEY_BLOCK`] keys; `scores` is `[ROWS, hi - lo]`.
    fn scores(
        &self,
        qb: &[f32],
        kt: &[f32],
        keys: (usize, usize, usize),
        dh: usize,
        scores: &mut [f32],
    );

    /// `out[r] = Σ_j weights[r][j] v_j` for the `ROWS` queries' weights `[ROWS, width]` over
    /// `width` value rows `v [width, Dh]`, in tiles of columns; `out` is `[ROWS, Dh]`.
    fn weighted_values(&self, weights: &[f32], v: &[f32], out: &mut [f32], shape: (usize, usize));
}

/// [`Tiles`] in plain loops (the reference, and what CPUs without AVX-512 would run).
struct PlainTiles;

impl Tiles for PlainTiles {
    const ROWS: usize = 4;

    fn scores(
        &self,
        qb: &[f32],
        kt: &[f32],
        (lo, hi, stride): (usize, usize, usize),
        dh: usize,
        scores: &mut [f32],
    ) {
        let width = hi - lo;
        for r in 0..Self::ROWS {
            for j in lo..hi {
                let mut a = 0.0f32;
                for d in 0..dh {
                    a += qb[r * dh + d] * kt[d * stride + j];
                }
                scores[r * width + j - lo] = a;
            }
        }
    }

    fn weighted_values(
        &self,
        weights: &[f32],
        v: &[f32],
        out: &mut [f32],
        (width, dh): (usize, usize),
    ) {
        for r in 0..Self::ROWS {
            for c in 0..dh {
                let mut a = 0.0f32;
                for j in 0..width {
                    a += weights[r * width + j] * v[j * dh + c];
                }
                out[r * dh + c] = a;
            }
        }
    }
}

/// Keys per AVX2 score tile and columns per AVX2 value tile (two 8-lane vectors).
#[cfg(target_arch = "x86_64")]
const AVX2_TILE: usize = 16;

/// Defines the [`Tiles`] of one vector width: the unit struct `$tiles`, whose [`Tiles`] impl
/// calls the two kernels it defines, `$scores` ([`Tiles::scores`]) and `$values`
/// ([`Tiles::weighted_values`]), each tile two vectors of `$lanes` lanes per query, compiled for
/// `$feature` with that width's intrinsics (`$load`, `$store`, `$fma`, `$set1`, `$zero`). Lanes
/// run across keys and columns, never along a sum, so every width computes each score and value
/// as the same chain of FMAs and gives the same bits. `$tiles` must only be used where the CPU
/// has `$feature` (by the `#[target_feature]` function `$user`).
#[cfg(target_arch = "x86_64")]
macro_rules! tile_kernels {
    (
        $(#[$doc:meta])* $tiles:ident, $user:ident, $feature:literal, $lanes:expr, $rows:expr,
        $scores:ident, $values:ident,
        $load:ident, $store:ident, $fma:ident, $set1:ident, $zero:ident
    ) => {
        $(#[$doc])*
        struct $tiles;

        impl Tiles for $tiles {
            const ROWS: usize = $rows;

            fn scores(
                &self,
                qb: &[f32],
                kt: &[f32],
                keys: (usize, usize, usize),
                dh: usize,
                scores: &mut [f32],
            ) {
                // SAFETY: the tiles are only used by `$user`, which runs where `$feature` is.
                unsafe { $scores(qb, kt, keys, dh, scores) }
            }

            fn weighted_values(
                &self,
                weights: &[f32],
                v: &[f32],
                out: &mut [f32],
                shape: (usize, usize),
            ) {
                // SAFETY: as above.
                unsafe { $values(weights, v, out, shape) }
            }
        }

        /// [`Tiles::scores`] in tiles of two vectors per query.
        ///
        /// # Safety
        /// The CPU must support the target feature; `qb` holds `ROWS` rows of `dh` and `kt`
        /// `dh` rows of `stride >= hi + KEY_BLOCK`.
        #[target_feature(enable = $feature)]
        unsafe fn $scores(
            qb: &[f32],
            kt: &[f32],
            (lo, hi, stride): (usize, usize, usize),
            dh: usize,
            scores: &mut [f32],
        ) {
            use std::arch::x86_64::{$fma, $load, $set1, $store, $zero};
            const TILE: usize = 2 * $lanes;
            assert!(
                qb.len() >= $rows * dh
                    && kt.len() >= dh * stride
                    && hi + KEY_BLOCK <= stride
                    && scores.len() >= $rows * (hi - lo)
            );
            let width = hi - lo;
            let mut tile = [0.0f32; TILE];
            for j0 in (lo..hi).step_by(TILE) {
                let mut acc = [$zero(); 2 * $rows];
                for d in 0..dh {
                    let kp = kt.as_ptr().add(d * stride + j0);
                    let (k0, k1) = ($load(kp), $load(kp.add($lanes)));
                    for r in 0..$rows {
                        let x = $set1(*qb.get_unchecked(r * dh + d));
                        acc[2 * r] = $fma(x, k0, acc[2 * r]);
                        acc[2 * r + 1] = $fma(x, k1, acc[2 * r + 1]);
                    }
                }
                let n = (hi - j0).min(TILE);
                for r in 0..$rows {
                    $store(tile.as_mut_ptr(), acc[2 * r]);
                    $store(tile.as_mut_ptr().add($lanes), acc[2 * r + 1]);
                    let at = r * width + j0 - lo;
                    scores[at..at + n].copy_from_slice(&tile[..n]);
                }
            }
        }

        /// [`Tiles::weighted_values`] in tiles of two vectors per query (fused scalar FMAs for
        /// the columns past the last whole tile).
        ///
        /// # Safety
        /// The CPU must support the target feature; `weights` holds `ROWS` rows of `width`,
        /// `v` `width` rows of `dh`, `out` `ROWS` rows of `dh`.
        #[target_feature(enable = $feature)]
        unsafe fn $values(
            weights: &[f32],
            v: &[f32],
            out: &mut [f32],
            (width, dh): (usize, usize),
        ) {
            use std::arch::x86_64::{$fma, $load, $set1, $store, $zero};
            const TILE: usize = 2 * $lanes;
            const ROWS: usize = $rows;
            assert!(
                weights.len() >= ROWS * width && v.len() >= width * dh && out.len() >= ROWS * dh
            );
            let mut c0 = 0;
            while c0 + TILE <= dh {
                let mut acc = [$zero(); 2 * ROWS];
                for j in 0..width {
                    let vp = v.as_ptr().add(j * dh + c0);
                    let (v0, v1) = ($load(vp), $load(vp.add($lanes)));
                    for r in 0..ROWS {
                        let w = $set1(*weights.get_unchecked(r * width + j));
                        acc[2 * r] = $fma(w, v0, acc[2 * r]);
                        acc[2 * r + 1] = $fma(w, v1, acc[2 * r + 1]);
                    }
                }
                for r in 0..ROWS {
                    let op = out.as_mut_ptr().add(r * dh + c0);
                    $store(op, acc[2 * r]);
                    $store(op.add($lanes), acc[2 * r + 1]);
                }
                c0 += TILE;
            }
            for r in 0..ROWS {
                for c in c0..dh {
                    let mut a = 0.0f32;
                    for j in 0..width {
                        a = weights[r * width + j].mul_add(v[j * dh + c], a);
                    }
                    out[r * dh + c] = a;
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
tile_kernels!(
    /// [`Tiles`] in AVX2 registers: a score tile is 6 queries x 16 keys (12 vectors), a value
    /// tile 6 queries x 16 columns; the same bits as [`Avx512Tiles`].
    Avx2Tiles,
    blocked_avx2,
    "avx2,fma",
    AVX2_TILE / 2,
    6,
    scores_avx2_tiles,
    weighted_values_avx2,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps,
    _mm256_setzero_ps
);

#[cfg(target_arch = "x86_64")]
tile_kernels!(
    /// [`Tiles`] in AVX-512 registers: a score tile is 12 queries x 32 keys (24 vectors), a
    /// value tile 12 queries x 32 columns.
    Avx512Tiles,
    blocked_avx512,
    "avx512f",
    KEY_BLOCK / 2,
    BLOCK_ROWS,
    scores_avx512,
    weighted_values_avx512,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps,
    _mm512_setzero_ps
);

/// [`one_head_body`] compiled for AVX2, with [`scores_avx2`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn one_head_avx2(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], shape: &Shape) {
    // SAFETY: this function only runs where AVX2 and FMA are available.
    one_head_body(q, k, v, out, shape, |qi, k, scores| unsafe {
        scores_avx2(qi, k, scores)
    });
}

/// Softmax-weighted values for each query of the heads `q [G, T, Dh]` on the keys `k` (into `out
/// [G, T, Dh]`); `scores_of(q_i, k, scores)` writes
/// `scores[j] = q_i · k_j` for the keys `j < scores.len()`.
#[inline(always)]
fn one_head_body(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    shape: &Shape,
    scores_of: impl Fn(&[f32], &[f32], &mut [f32]),
) {
    let Shape {
        t,
        s,
        dh,
        pos0,
        rules,
    } = *shape;
    let mut scores = vec![0.0f32; s];
    let head = (t * dh).max(1);
    for (q, out) in q.chunks_exact(head).zip(out.chunks_exact_mut(head)) {
        for i in 0..t {
            let seen = (pos0 + i + 1).min(s);
            let lo = rules.first_key(pos0 + i).min(seen);
            let scores = &mut scores[..seen - lo];
            let qi = &q[i * dh..(i + 1) * dh];
            scores_of(qi, &k[lo * dh..seen * dh], scores);
            if let Some(cap) = rules.softcap {
                for score in scores.iter_mut() {
                    *score = (*score / cap).tanh() * cap;
                }
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            for score in scores.iter_mut() {
                *score = fast_exp::exp(*score - max);
            }
            let total: f32 = scores.iter().sum();
            let oi = &mut out[i * dh..(i + 1) * dh];
            for (j, &w) in scores.iter().enumerate() {
                let j = lo + j;
                for (o, &x) in oi.iter_mut().zip(&v[j * dh..(j + 1) * dh]) {
                    *o += w * x;
                }
            }
            let inv = 1.0 / total;
            for o in oi.iter_mut() {
                *o *= inv;
            }
        }
    }
}

/// `scores[j] = q · k_j` with `k` holding `scores.len()` rows of `q.len()` values.
fn scores_plain(q: &[f32], k: &[f32], scores: &mut [f32]) {
    let dh = q.len();
    for (j, score) in scores.iter_mut().enumerate() {
        *score = dot(q, &k[j * dh..(j + 1) * dh]);
    }
}

/// [`scores_plain`] four keys at a time: four 8-lane accumulators reduced together, so the
/// horizontal sums cost a quarter of one per key.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scores_avx2(q: &[f32], k: &[f32], scores: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps, _mm_add_ps, _mm_storeu_ps,
    };
    let dh = q.len();
    if !dh.is_multiple_of(LANES) {
        scores_plain(q, k, scores);
        return;
    }
    let n = scores.len();
    let (qp, kp) = (q.as_ptr(), k.as_ptr());
    let mut j = 0;
    while j + 4 <= n {
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in (0..dh).step_by(LANES) {
            let qv = _mm256_loadu_ps(qp.add(c));
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kp.add((j + r) * dh + c)), *a);
            }
        }
        let pairs = _mm256_hadd_ps(
            _mm256_hadd_ps(acc[0], acc[1]),
            _mm256_hadd_ps(acc[2], acc[3]),
        );
        let sums = _mm_add_ps(
            _mm256_castps256_ps128(pairs),
            _mm256_extractf128_ps(pairs, 1),
        );
        _mm_storeu_ps(scores.as_mut_ptr().add(j), sums);
        j += 4;
    }
    for (r, score) in scores[j..].iter_mut().enumerate() {
        *score = dot(q, &k[(j + r) * dh..(j + r + 1) * dh]);
    }
}

/// `a · b` with eight independent partial sums.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += xa[l] * xb[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arch::attention::{attention, causal_bias};
    use crate::model::testing::seeded::SeededNormal;
    use candle_core::{DType, Device};

    #[test]
    fn matches_the_bias_and_softmax_reference() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = SeededNormal::new(0);
        // (rows, query heads, KV heads, new positions, past positions, head dim)
        for (n, h, hkv, t, p, dh) in [
            (2, 6, 3, 5, 0, 16),
            (3, 4, 4, 7, 9, 12),
            (1, 9, 3, 33, 4, 64),
            (2, 2, 1, 6, 3, 10),
            (1, 3, 1, 70, 30, 64),
            (2, 2, 2, 2, 5, 32),
        ] {
            let q = rng.tensor((n, h, t, dh), 0.0, 1.0);
            let k = rng.tensor((n, hkv, p + t, dh), 0.0, 1.0);
            let v = rng.tensor((n, hkv, p + t, dh), 0.0, 1.0);
            for rules in [
                AttentionRules::default(),
                AttentionRules {
                    window: Some(3),
                    softcap: None,
                },
                AttentionRules {
                    window: Some(1),
                    softcap: Some(0.7),
                },
                AttentionRules {
                    window: None,
                    softcap: Some(2.0),
                },
            ] {
                let bias = causal_bias(t, &[p], p + t, n, rules, DType::F32, &dev)?;
                let want = attention(&q, &k, &v, &bias, rules.softcap)?;
                let what = format!("n={n} h={h} hkv={hkv} t={t} p={p} {rules:?}");
                let got = fused_causal_attention(&q, &k, &v, &[p], rules, CpuFeatures::detect())?;
                // AVX-512 off: AVX2's per-query kernel; nothing: the portable one.
                let mut without = CpuFeatures::detect();
                without.avx512f = false;
                let avx2 = fused_causal_attention(&q, &k, &v, &[p], rules, without)?;
                let none = CpuFeatures::default();
                let portable = fused_causal_attention(&q, &k, &v, &[p], rules, none)?;
                let same =
                    got.flatten_all()?.to_vec1::<f32>()? == avx2.flatten_all()?.to_vec1::<f32>()?;
                assert!(same, "AVX-512 and AVX2 differ: {what}");
                for (path, x) in [("avx512 off", avx2), ("portable", portable)] {
                    let gap = (&x - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                    assert!(gap < 1e-5, "{path} {what}: {gap}");
                }
                assert_eq!(got.dims(), want.dims());
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "{what}: {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn a_query_gives_the_same_bits_whichever_heads_share_its_block() -> anyhow::Result<()> {
        // 9 query heads on 3 KV heads (blocks of 4 positions x 3 heads), against the same heads
        // each on its own copy of its KV head (blocks of 12 positions x 1 head), on every path.
        let mut rng = SeededNormal::new(3);
        let (n, h, hkv, t, p, dh) = (2, 9, 3, 29, 6, 64);
        let q = rng.tensor((n, h, t, dh), 0.0, 1.0);
        let k = rng.tensor((n, hkv, p + t, dh), 0.0, 1.0);
        let v = rng.tensor((n, hkv, p + t, dh), 0.0, 1.0);
        let per_head = |x: &Tensor| -> anyhow::Result<Tensor> {
            let (n, hkv, s, dh) = x.dims4()?;
            Ok(x.unsqueeze(2)?
                .expand((n, hkv, h / hkv, s, dh))?
                .reshape((n, h, s, dh))?)
        };
        let (k9, v9) = (per_head(&k)?, per_head(&v)?);
        let mut avx2 = CpuFeatures::detect();
        avx2.avx512f = false;
        for features in [CpuFeatures::detect(), avx2, CpuFeatures::default()] {
            let rules = AttentionRules::default();
            let grouped = fused_causal_attention(&q, &k, &v, &[p], rules, features)?;
            let alone = fused_causal_attention(&q, &k9, &v9, &[p], rules, features)?;
            assert_eq!(
                grouped.flatten_all()?.to_vec1::<f32>()?,
                alone.flatten_all()?.to_vec1::<f32>()?,
                "{features:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_sliding_window_hides_the_keys_before_it() -> anyhow::Result<()> {
        // A window of w over a prompt of S keys: the last query's context is the attention over
        // the last w keys alone, and a window as long as the prompt changes nothing.
        let mut rng = SeededNormal::new(2);
        let (n, h, s, dh, w) = (2, 2, 9, 8, 4);
        let q = rng.tensor((n, h, s, dh), 0.0, 1.0);
        let k = rng.tensor((n, h, s, dh), 0.0, 1.0);
        let v = rng.tensor((n, h, s, dh), 0.0, 1.0);
        let rules = AttentionRules {
            window: Some(w),
            softcap: None,
        };
        let windowed = fused_causal_attention(&q, &k, &v, &[0], rules, CpuFeatures::detect())?;
        let tail = |x: &Tensor| x.narrow(2, s - w, w).map(|x| x.contiguous());
        let last_q = q.narrow(2, s - 1, 1)?.contiguous()?;
        let alone = fused_causal_attention(
            &last_q,
            &tail(&k)??,
            &tail(&v)??,
            &[w - 1],
            AttentionRules::default(),
            CpuFeatures::detect(),
        )?;
        let gap = (windowed.narrow(2, s - 1, 1)? - alone)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(gap < 1e-6, "window {w}: {gap}");
        let whole = AttentionRules {
            window: Some(s),
            softcap: None,
        };
        let plain = fused_causal_attention(
            &q,
            &k,
            &v,
            &[0],
            AttentionRules::default(),
            CpuFeatures::detect(),
        )?;
        let same = fused_causal_attention(&q, &k, &v, &[0], whole, CpuFeatures::detect())?;
        assert_eq!(
            plain.flatten_all()?.to_vec1::<f32>()?,
            same.flatten_all()?.to_vec1::<f32>()?
        );
        let gap = (windowed - plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(gap > 1e-3, "the window changed nothing: {gap}");
        Ok(())
    }

    #[test]
    fn per_row_query_positions_see_only_their_own_keys() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = SeededNormal::new(1);
        let (n, h, hkv, t, s, dh) = (3, 4, 2, 1, 11, 16);
        let first = [10, 3, 0];
        let q = rng.tensor((n, h, t, dh), 0.0, 1.0);
        let k = rng.tensor((n, hkv, s, dh), 0.0, 1.0);
        let v = rng.tensor((n, hkv, s, dh), 0.0, 1.0);
        let rules = AttentionRules::default();
        let bias = causal_bias(t, &first, s, n, rules, DType::F32, &dev)?;
        let got = fused_causal_attention(&q, &k, &v, &first, rules, CpuFeatures::detect())?;
        let want = attention(&q, &k, &v, &bias, None)?;
        let diff = (&got - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "per-row positions: {diff}");
        for (r, &p) in first.iter().enumerate() {
            let row = |x: &Tensor| -> anyhow::Result<Tensor> {
                Ok(x.narrow(0, r, 1)?.narrow(2, 0, p + 1)?.contiguous()?)
            };
            let alone = fused_causal_attention(
                &q.narrow(0, r, 1)?,
                &row(&k)?,
                &row(&v)?,
                &[p],
                rules,
                CpuFeatures::detect(),
            )?;
            let gap = (got.narrow(0, r, 1)? - alone)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(
                gap < 1e-6,
                "row {r} depends on keys after position {p}: {gap}"
            );
        }
        Ok(())
    }
}
