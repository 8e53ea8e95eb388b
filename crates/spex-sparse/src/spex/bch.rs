//! Shortened primitive narrow-sense binary BCH codes: parameter search, systematic parity,
//! hard (Berlekamp–Massey + Chien) and soft (Chase) syndrome decoding.
//!
//! Layout of a codeword of the shortened code (length `p + n`): position `r < p` is parity bit
//! `r` (coefficient of `x^r`), position `p + j` is message bit `j` (player `j`). The codeword
//! polynomial is divisible by the generator `g(x)`, whose roots are `alpha^1 .. alpha^{2t}`.

use serde::{Deserialize, Serialize};

use super::gf2m::{Gf2m, MAX_M, MIN_M};
use crate::{Error, Result};

/// Largest parity length supported (parity words are `u128`).
pub const MAX_PARITY: usize = 128;

/// Sizes of a shortened BCH code correcting `t` errors with `n` message bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BchParams {
    /// Extension degree: the code lives in GF(2^m).
    pub m: u32,
    /// Length of the unshortened code, 2^m - 1.
    pub nc: usize,
    /// Dimension of the unshortened code (message bits).
    pub kc: usize,
    /// Number of message bits removed by shortening, `kc - n`.
    pub shortening: usize,
    /// Parity bits, `nc - kc` (the generator's degree).
    pub p: usize,
    /// Delay rows per group, `p + 1` (the all-zero delay plus one per parity bit).
    pub delays: usize,
}

impl BchParams {
    /// The smallest-m primitive narrow-sense BCH code with design distance `2t + 1` and
    /// dimension >= `n` (shapiq's `BCH.parameter_search`), shortened to `n` message bits.
    pub fn search(n: usize, t: usize) -> Result<BchParams> {
        if n == 0 || t == 0 {
            return Err(Error::invalid("n, t", "BCH code needs n >= 1 and t >= 1"));
        }
        if t > MAX_PARITY {
            return Err(Error::invalid(
                "max_degree",
                format!("t = {t} needs more than {MAX_PARITY} parity bits, the most supported"),
            ));
        }
        let d = 2 * t + 1;
        let m_start = (usize::BITS - d.leading_zeros()).max(MIN_M); // ceil(log2(d + 1))
        for m in m_start..=MAX_M {
            let nc = (1usize << m) - 1;
            if 2 * t >= nc {
                continue;
            }
            let p = generator_roots(&Gf2m::new(m), t).len();
            let kc = nc - p;
            if kc >= n {
                if p > MAX_PARITY {
                    return Err(Error::invalid(
                        "max_degree",
                        format!("t = {t} with n = {n} needs {p} parity bits; at most {MAX_PARITY} are supported"),
                    ));
                }
                return Ok(BchParams {
                    m,
                    nc,
                    kc,
                    shortening: kc - n,
                    p,
                    delays: p + 1,
                });
            }
        }
        Err(Error::invalid(
            "n",
            format!("no BCH code over GF(2^{MAX_M}) holds n = {n} players at t = {t}"),
        ))
    }
}

/// Exponents `e` with `alpha^e` a root of the generator: the union of the cyclotomic cosets
/// of `1..=2t`, sorted.
fn generator_roots(f: &Gf2m, t: usize) -> Vec<u32> {
    let mut roots: Vec<u32> = (1..=2 * t as u32)
        .flat_map(|s| f.cyclotomic_coset(s))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    roots
}

/// A shortened BCH code ready to encode and decode player sets.
#[derive(Clone, Debug)]
pub struct BchCode {
    params: BchParams,
    n: usize,
    t: usize,
    field: Gf2m,
    /// `parity[j]` = parity bits of the message with only bit `j` set (`x^{p+j} mod g`).
    parity: Vec<u128>,
}

/// A successful decoding: the message's set bits (sorted players) and the errors corrected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Sorted player indices of the decoded message.
    pub players: Vec<u32>,
    /// Number of corrected positions (message and parity), <= t.
    pub errors: usize,
}

impl BchCode {
    /// Builds the code found by [`BchParams::search`] for `n` players and `t` errors.
    pub fn new(n: usize, t: usize) -> Result<BchCode> {
        let params = BchParams::search(n, t)?;
        let field = Gf2m::new(params.m);
        // g(x) = prod over roots of (x - alpha^e), coefficients in GF(2^m) that end up 0/1.
        let mut g: Vec<u32> = vec![1];
        for e in generator_roots(&field, t) {
            let a = field.alpha_pow(e as u64);
            let mut next = vec![0u32; g.len() + 1];
            for (i, &c) in g.iter().enumerate() {
                next[i + 1] ^= c;
                next[i] ^= field.mul(c, a);
            }
            g = next;
        }
        debug_assert!(g.iter().all(|&c| c <= 1) && g.len() == params.p + 1);
        let p = params.p;
        let g_low: u128 = g[..p]
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &c)| acc | (c as u128) << i);
        let mask = if p == 128 {
            u128::MAX
        } else {
            (1u128 << p) - 1
        };
        let mut parity = Vec::with_capacity(n);
        let mut r = g_low; // x^p mod g
        for _ in 0..n {
            parity.push(r);
            let top = r >> (p - 1) & 1 == 1;
            r = (r << 1) & mask;
            if top {
                r ^= g_low;
            }
        }
        Ok(BchCode {
            params,
            n,
            t,
            field,
            parity,
        })
    }

    /// Parity bits of each single-player message, `[n]` words of `p` bits.
    pub fn player_parity(&self) -> &[u128] {
        &self.parity
    }

    /// Parity bits (bit r = parity position r) of the message whose set bits are `players`.
    pub fn encode(&self, players: &[u32]) -> u128 {
        players
            .iter()
            .fold(0, |acc, &j| acc ^ self.parity[j as usize])
    }

    /// Hard decoding of the word `[parity bits | 0^n]`: the message `k` with `|k| <= t` whose
    /// codeword is within `t` flips, found by syndromes, Berlekamp–Massey and a Chien search.
    pub fn decode_hard(&self, bits: u128) -> Option<Decoded> {
        let f = &self.field;
        let order = f.order() as u64;
        let two_t = 2 * self.t;
        let mut syn = vec![0u32; two_t];
        for r in 0..self.params.p {
            if bits >> r & 1 == 1 {
                for (i, s) in syn.iter_mut().enumerate() {
                    *s ^= f.alpha_pow((i as u64 + 1) * r as u64);
                }
            }
        }
        if syn.iter().all(|&s| s == 0) {
            return Some(Decoded {
                players: Vec::new(),
                errors: 0,
            });
        }
        let lambda = berlekamp_massey(f, &syn);
        let deg = lambda.len() - 1;
        if deg > self.t {
            return None;
        }
        // Chien search over the shortened code's positions 0..p+n: e is an error position
        // when lambda(alpha^{-e}) = 0.
        let terms: Vec<(usize, u64)> = lambda
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != 0)
            .map(|(i, &c)| (i, f.log(c) as u64))
            .collect();
        let mut positions = Vec::with_capacity(deg);
        for e in 0..(self.params.p + self.n) as u64 {
            let inv = (order - e % order) % order;
            let v = terms
                .iter()
                .fold(0u32, |acc, &(i, lc)| acc ^ f.alpha_pow(lc + inv * i as u64));
            if v == 0 {
                positions.push(e as usize);
                if positions.len() > deg {
                    return None;
                }
            }
        }
        if positions.len() != deg {
            return None;
        }
        let p = self.params.p;
        Some(Decoded {
            players: positions
                .iter()
                .filter(|&&e| e >= p)
                .map(|&e| (e - p) as u32)
                .collect(),
            errors: deg,
        })
    }

    /// Chase decoding: hard decoding first; if it fails, flip every pattern of the `depth` least
    /// reliable parity bits (`reliability[r] >= 0` per parity position, `[p]`) and keep the
    /// decoded message whose parity disagrees least (summed reliability) with `bits`.
    pub fn decode_soft(&self, bits: u128, reliability: &[f64], depth: usize) -> Option<Decoded> {
        if let Some(d) = self.decode_hard(bits) {
            return Some(d);
        }
        let p = self.params.p;
        debug_assert_eq!(reliability.len(), p);
        let mut order: Vec<usize> = (0..p).collect();
        order.sort_by(|&a, &b| reliability[a].total_cmp(&reliability[b]).then(a.cmp(&b)));
        let weak = &order[..depth.min(p)];
        let mut best: Option<(f64, Decoded)> = None;
        for pattern in 1u32..(1 << weak.len()) {
            let flips = weak
                .iter()
                .enumerate()
                .filter(|(i, _)| pattern >> i & 1 == 1)
                .fold(0u128, |acc, (_, &r)| acc | 1 << r);
            let Some(d) = self.decode_hard(bits ^ flips) else {
                continue;
            };
            let diff = self.encode(&d.players) ^ bits;
            let cost: f64 = (0..p)
                .filter(|&r| diff >> r & 1 == 1)
                .map(|r| reliability[r])
                .sum();
            let better = match &best {
                None => true,
                Some((c, b)) => cost < *c || (cost == *c && d.players.len() < b.players.len()),
            };
            if better {
                best = Some((cost, d));
            }
        }
        best.map(|(_, d)| d)
    }
}

/// Berlekamp–Massey over GF(2^m): the shortest error-locator `lambda` (lambda[0] = 1) that
/// generates the syndromes `syn` = S_1..S_{2t}.
fn berlekamp_massey(f: &Gf2m, syn: &[u32]) -> Vec<u32> {
    let mut c = vec![1u32];
    let mut b = vec![1u32];
    let mut l = 0usize;
    let mut shift = 1usize;
    let mut b_disc = 1u32;
    for k in 0..syn.len() {
        let mut d = syn[k];
        for i in 1..=l.min(c.len() - 1) {
            d ^= f.mul(c[i], syn[k - i]);
        }
        if d == 0 {
            shift += 1;
            continue;
        }
        let coef = f.div(d, b_disc);
        let mut next = c.clone();
        if next.len() < b.len() + shift {
            next.resize(b.len() + shift, 0);
        }
        for (i, &bi) in b.iter().enumerate() {
            next[i + shift] ^= f.mul(coef, bi);
        }
        if 2 * l <= k {
            l = k + 1 - l;
            b = c;
            b_disc = d;
            shift = 1;
        } else {
            shift += 1;
        }
        c = next;
    }
    c.truncate(l + 1);
    while c.len() > 1 && *c.last().unwrap_or(&1) == 0 {
        c.pop();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The P = p + 1 table of algorithms.md §2 (computed with galois 0.4.11).
    #[test]
    fn delay_counts_match_reference_table() {
        let table: [(usize, [usize; 5]); 8] = [
            (10, [5, 11, 16, 21, 21]),
            (32, [7, 13, 19, 25, 28]),
            (64, [8, 15, 22, 29, 36]),
            (100, [8, 15, 22, 33, 41]),
            (128, [9, 17, 25, 33, 41]),
            (256, [10, 19, 28, 37, 46]),
            (512, [11, 21, 31, 41, 51]),
            (1000, [11, 21, 34, 45, 56]),
        ];
        for (n, ps) in table {
            for (t, want) in (1..=5).zip(ps) {
                let got = BchParams::search(n, t).unwrap();
                assert_eq!(got.delays, want, "n = {n}, t = {t}");
                assert_eq!(got.nc, got.kc + got.p);
                assert_eq!(got.shortening, got.kc - n);
            }
        }
    }

    /// For t = 5, P steps up right after these n (algorithms.md §2).
    #[test]
    fn t5_steps_match_reference_table() {
        let steps = [
            (11, 21),
            (36, 28),
            (92, 36),
            (215, 41),
            (466, 46),
            (973, 51),
            (1992, 56),
        ];
        for (n, p) in steps {
            assert_eq!(BchParams::search(n, 5).unwrap().delays, p, "n = {n}");
            assert!(
                BchParams::search(n + 1, 5).unwrap().delays > p,
                "n = {}",
                n + 1
            );
        }
    }

    #[test]
    fn codewords_vanish_at_generator_roots() {
        let code = BchCode::new(40, 3).unwrap();
        let f = &code.field;
        let p = code.params.p;
        let players = [0u32, 7, 39];
        let par = code.encode(&players);
        for i in 1..=6u64 {
            let mut v = 0;
            for r in 0..p {
                if par >> r & 1 == 1 {
                    v ^= f.alpha_pow(i * r as u64);
                }
            }
            for &j in &players {
                v ^= f.alpha_pow(i * (p as u64 + j as u64));
            }
            assert_eq!(v, 0, "c(alpha^{i}) != 0");
        }
    }

    #[test]
    fn hard_decoding_recovers_messages_with_parity_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (n, t) in [(10, 1), (20, 2), (100, 3), (500, 5), (1000, 4)] {
            let code = BchCode::new(n, t).unwrap();
            let p = code.params.p;
            for _ in 0..200 {
                let w = rng.random_range(0..=t);
                let mut players: Vec<u32> = Vec::new();
                while players.len() < w {
                    let j = rng.random_range(0..n as u32);
                    if !players.contains(&j) {
                        players.push(j);
                    }
                }
                players.sort_unstable();
                // up to t - w further errors in the parity part
                let mut bits = code.encode(&players);
                let flips = rng.random_range(0..=t - w);
                let mut flipped = Vec::new();
                while flipped.len() < flips {
                    let r = rng.random_range(0..p);
                    if !flipped.contains(&r) {
                        flipped.push(r);
                        bits ^= 1 << r;
                    }
                }
                let d = code.decode_hard(bits).expect("within t errors");
                assert_eq!(d.players, players, "n = {n}, t = {t}");
                assert_eq!(d.errors, w + flips);
            }
        }
    }

    #[test]
    fn hard_decoding_never_returns_more_than_t_players() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let code = BchCode::new(64, 2).unwrap();
        for _ in 0..500 {
            let bits: u128 = rng.random::<u128>() & ((1 << code.params.p) - 1);
            if let Some(d) = code.decode_hard(bits) {
                assert!(d.players.len() <= 2);
                // a successful decode is a codeword within t of the received word
                let dist = (code.encode(&d.players) ^ bits).count_ones() as usize + d.players.len();
                assert_eq!(dist, d.errors);
            }
        }
    }

    #[test]
    fn chase_fixes_errors_on_unreliable_bits_beyond_t() {
        let code = BchCode::new(100, 2).unwrap();
        let p = code.params.p;
        let players = [3u32, 50];
        let truth = code.encode(&players);
        // 1 more error than hard decoding can fix (2 message + 1 parity), on the weakest bit;
        // pick a parity bit whose flip makes hard decoding fail (Chase runs only then).
        let weak = (0..p)
            .find(|&r| code.decode_hard(truth ^ 1 << r).is_none())
            .expect("some triple error is not hard-decodable");
        let bits = truth ^ 1 << weak;
        let mut rel = vec![1.0; p];
        rel[weak] = 0.01;
        rel[(weak + 1) % p] = 0.02;
        let d = code.decode_soft(bits, &rel, 2).unwrap();
        assert_eq!(d.players, players);
    }
}
