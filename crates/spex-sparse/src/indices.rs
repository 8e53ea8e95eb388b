//! Interaction indices (SII, k-SII, STII, FSII, FBII, BII, SV, BV) computed exactly from a
//! sparse spectrum, with shapiq 1.8.0's definitions (`game_theory/moebius_converter.py`).
//!
//! Every index is linear in the Moebius coefficients `a(T)` and spreads each of them over the
//! subsets `S ⊆ T` with a weight that depends only on `|T|`, `|S|` and the order `k`, so one
//! pass over the (converted) spectrum computes it: cost `sum_T sum_{s<=k} C(|T|, s)`.
//!
//! # The empty set and `baseline_value`
//!
//! `baseline_value` is always `f(∅)`, the value with every player removed (`a(∅)`). Whether the
//! empty set is an entry of `values` follows shapiq's Moebius converter:
//! - SII, BII, SV: no empty entry (orders `1..=k`); then `f(N) = baseline + sum(SV)`.
//! - k-SII, STII, FSII: the empty entry is `a(∅) = f(∅)`; the entries sum to `f(N)`.
//! - FBII and BV: the empty entry is the intercept of the degree-`k` least-squares fit (the fit's
//!   value on the empty coalition), which differs from `f(∅)`. shapiq also reports that
//!   intercept as `baseline_value` for FBII; here `baseline_value` stays `f(∅)`.
//! - Fourier and Moebius: the spectrum's own coefficient on the empty set, when non-zero.
//!
//! Sums that cancel to rounding noise are dropped as in [`Spectrum::in_basis`]; the empty entry
//! of k-SII, STII, FSII, FBII and BV is always present (0 when it cancels).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::distribute::{distribute, Weights};
use super::{Basis, Spectrum, Subset};
use crate::{Error, Result};

/// Which interaction index to report; spelled as in shapiq (`"k-SII"`, `"FBII"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Index {
    /// The Fourier (Walsh-Hadamard) coefficients themselves.
    Fourier,
    /// The Moebius coefficients (Harsanyi dividends) themselves.
    Moebius,
    /// Shapley interaction index (Grabisch and Roubens), orders `1..=k`.
    Sii,
    /// k-Shapley interaction index: SII aggregated with Bernoulli numbers; efficient.
    KSii,
    /// Shapley-Taylor interaction index of order k; efficient.
    Stii,
    /// Faithful Shapley interaction index of order k (Shapley-kernel least squares); efficient.
    Fsii,
    /// Faithful Banzhaf interaction index of order k (uniform least squares).
    Fbii,
    /// Banzhaf interaction index, orders `1..=k`.
    Bii,
    /// Shapley values (SII at order 1).
    Sv,
    /// Banzhaf values (FBII at order 1; equal to BII at order 1 on the players).
    Bv,
}

impl Index {
    /// Every index, in declaration order.
    pub const ALL: [Index; 10] = [
        Index::Fourier,
        Index::Moebius,
        Index::Sii,
        Index::KSii,
        Index::Stii,
        Index::Fsii,
        Index::Fbii,
        Index::Bii,
        Index::Sv,
        Index::Bv,
    ];

    /// shapiq's spelling of the index (`"k-SII"`, `"Moebius"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Index::Fourier => "Fourier",
            Index::Moebius => "Moebius",
            Index::Sii => "SII",
            Index::KSii => "k-SII",
            Index::Stii => "STII",
            Index::Fsii => "FSII",
            Index::Fbii => "FBII",
            Index::Bii => "BII",
            Index::Sv => "SV",
            Index::Bv => "BV",
        }
    }

    /// Whether the empty set is always an entry of the index's values.
    fn has_empty_entry(self) -> bool {
        matches!(
            self,
            Index::KSii | Index::Stii | Index::Fsii | Index::Fbii | Index::Bv
        )
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Index {
    type Err = Error;

    /// Parses a name case-insensitively; also accepts `mobius` and `ksii`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "mobius" => Some(Index::Moebius),
            "ksii" => Some(Index::KSii),
            _ => None,
        };
        alias
            .or_else(|| {
                Index::ALL
                    .into_iter()
                    .find(|i| i.name().to_ascii_lowercase() == lower)
            })
            .ok_or_else(|| {
                let names: Vec<&str> = Index::ALL.iter().map(|i| i.name()).collect();
                Error::invalid(
                    "index",
                    format!("unknown index `{s}`; valid: {}", names.join(", ")),
                )
            })
    }
}

impl Serialize for Index {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Index {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Interaction values of one index, shaped like shapiq's `InteractionValues`.
///
/// Serialised as JSON `{index, n_players, max_order, baseline_value, values: [{players, value}]}`
/// with the entries in subset order (size, then indices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
pub struct InteractionValues {
    /// The index the values belong to.
    pub index: Index,
    /// Number of players `n`.
    pub n_players: usize,
    /// The largest interaction order reported (`|S| <= max_order` for every entry).
    pub max_order: usize,
    /// `f(∅)`: the value with every player removed.
    pub baseline_value: f64,
    /// The non-zero values by interaction (see the module docs for the empty set).
    pub values: BTreeMap<Subset, f64>,
}

impl InteractionValues {
    /// The value of `s` (0 when absent).
    pub fn get(&self, s: &Subset) -> f64 {
        self.values.get(s).copied().unwrap_or(0.0)
    }

    /// The entries by `|value|` descending, ties in subset order.
    pub fn sorted_by_magnitude(&self) -> Vec<(&Subset, f64)> {
        let mut v: Vec<(&Subset, f64)> = self.values.iter().map(|(s, &x)| (s, x)).collect();
        v.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(b.0)));
        v
    }
}

/// The JSON layout of [`InteractionValues`].
#[derive(Serialize, Deserialize)]
struct Wire {
    index: Index,
    n_players: usize,
    max_order: usize,
    baseline_value: f64,
    values: Vec<WireEntry>,
}

/// One `{players, value}` entry of the JSON layout.
#[derive(Serialize, Deserialize)]
struct WireEntry {
    players: Vec<u32>,
    value: f64,
}

impl From<InteractionValues> for Wire {
    fn from(iv: InteractionValues) -> Self {
        Wire {
            index: iv.index,
            n_players: iv.n_players,
            max_order: iv.max_order,
            baseline_value: iv.baseline_value,
            values: iv
                .values
                .into_iter()
                .map(|(s, value)| WireEntry {
                    players: s.indices().to_vec(),
                    value,
                })
                .collect(),
        }
    }
}

impl TryFrom<Wire> for InteractionValues {
    type Error = Error;

    fn try_from(w: Wire) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (row, entry) in w.values.into_iter().enumerate() {
            let field = format!("values[{row}].players");
            let s = Subset::from_indices(entry.players.iter().copied());
            if s.len() != entry.players.len() {
                return Err(Error::invalid(field, "a player is listed twice"));
            }
            if s.min_players() > w.n_players {
                return Err(Error::invalid(
                    field,
                    format!("player out of range for n_players = {}", w.n_players),
                ));
            }
            if s.len() > w.max_order {
                return Err(Error::invalid(
                    field,
                    format!("{} players exceed max_order = {}", s.len(), w.max_order),
                ));
            }
            if values.insert(s, entry.value).is_some() {
                return Err(Error::invalid(field, "the interaction appears twice"));
            }
        }
        Ok(InteractionValues {
            index: w.index,
            n_players: w.n_players,
            max_order: w.max_order,
            baseline_value: w.baseline_value,
            values,
        })
    }
}

/// Computes `index` up to order `max_order` exactly from `spectrum` (either basis).
///
/// `max_order` is the interaction order k. It must be >= 1, except for Fourier and Moebius,
/// where it only cuts terms with `|S| > max_order` (0 keeps the constant; pass
/// `spectrum.max_degree()` or more to keep everything). SV and BV are order 1 by definition: any
/// `max_order >= 1` is coerced to 1. Orders above `n_players` are clamped to `n_players` (nothing
/// changes). Errors name `spectrum` for a non-finite coefficient and `max_order` when it is 0.
pub fn interaction_values(
    spectrum: &Spectrum,
    index: Index,
    max_order: usize,
) -> Result<InteractionValues> {
    if let Some((s, v)) = spectrum.iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            "spectrum",
            format!("the coefficient of {s} is {v}, not a finite number"),
        ));
    }
    let n = spectrum.n_players();
    let order = match index {
        Index::Fourier | Index::Moebius => max_order.min(n),
        _ if max_order == 0 => {
            return Err(Error::invalid(
                "max_order",
                format!("{index} needs an interaction order of at least 1, got 0"),
            ))
        }
        Index::Sv | Index::Bv => 1,
        _ => max_order.min(n.max(1)),
    };
    let baseline_value = value_of_empty_coalition(spectrum);
    let values = match index_weight(index, order) {
        Some(weight) => distribute_moebius(&spectrum.to_moebius(), index, order, weight),
        None => spectrum
            .to_fourier()
            .iter()
            .filter(|(s, _)| s.len() <= order)
            .map(|(s, v)| (s.clone(), v))
            .collect(),
    };
    Ok(InteractionValues {
        index,
        n_players: n,
        max_order: order,
        baseline_value,
        values,
    })
}

/// `f(∅)`: the Moebius constant, or the sum of all Fourier coefficients.
fn value_of_empty_coalition(spectrum: &Spectrum) -> f64 {
    match spectrum.basis() {
        Basis::Moebius => spectrum.get(&Subset::empty()),
        Basis::Fourier => spectrum.iter().map(|(_, v)| v).sum(),
    }
}

/// Spreads the Moebius coefficients of `moebius` with `weight` onto interactions of order `<= k`.
fn distribute_moebius(
    moebius: &Spectrum,
    index: Index,
    k: usize,
    weight: impl Fn(usize, usize) -> f64,
) -> BTreeMap<Subset, f64> {
    let weights = Weights::new(moebius.max_degree(), k, weight);
    let terms: Vec<(&Subset, f64)> = moebius.iter().collect();
    let mut values: BTreeMap<Subset, f64> = distribute(&terms, &weights).into_iter().collect();
    if index.has_empty_entry() {
        values.entry(Subset::empty()).or_insert(0.0);
    }
    values
}

/// The share `w(t, s)` of a Moebius coefficient on a set of size t that goes to each of its
/// subsets of size `s <= k` (shapiq's `_get_moebius_distribution_weight`, k-SII fused with its
/// Bernoulli aggregation); `None` for Fourier, which is not a Moebius distribution.
fn index_weight(index: Index, k: usize) -> Option<Box<dyn Fn(usize, usize) -> f64>> {
    // Coefficients of sets no larger than k stay where they are (STII below k, FSII, FBII).
    let keep = |t: usize, s: usize| if s == t { 1.0 } else { 0.0 };
    let weight: Box<dyn Fn(usize, usize) -> f64> = match index {
        Index::Fourier => return None,
        Index::Moebius => Box::new(keep),
        Index::Sii | Index::Sv => Box::new(|t, s| if s == 0 { 0.0 } else { sii_weight(t, s) }),
        Index::Bii => Box::new(|t, s| if s == 0 { 0.0 } else { half_pow(t - s) }),
        Index::KSii => {
            let b = bernoulli(k);
            // kSII(S) = sum_{S ⊆ R, |R| <= k} B_{|R|-|S|} SII(R); counting the R between S and T
            // gives w(t, s) = sum_{r=s}^{min(k,t)} C(t-s, r-s) B_{r-s} / (t-r+1).
            Box::new(move |t, s| match s {
                0 => keep(t, 0),
                _ => (s..=k.min(t))
                    .map(|r| binom(t - s, r - s) * b[r - s] * sii_weight(t, r))
                    .sum(),
            })
        }
        Index::Stii => Box::new(move |t, s| match t < k {
            true => keep(t, s),
            false if s == k => 1.0 / binom(t, k),
            false => 0.0,
        }),
        Index::Fsii => Box::new(move |t, s| match t <= k {
            true => keep(t, s),
            false if s == 0 => 0.0,
            false => {
                sign(k - s) * s as f64 / (k + s) as f64 * binom(k, s) * binom(t - 1, k)
                    / binom(t + k - 1, k + s)
            }
        }),
        Index::Fbii | Index::Bv => Box::new(move |t, s| match t <= k {
            true => keep(t, s),
            false => sign(k - s) * half_pow(t - s) * binom(t - s - 1, k - s),
        }),
    };
    Some(weight)
}

/// SII's share `1 / (t - s + 1)`.
fn sii_weight(t: usize, s: usize) -> f64 {
    1.0 / (t - s + 1) as f64
}

/// `2^-e`.
fn half_pow(e: usize) -> f64 {
    0.5f64.powi(e as i32)
}

/// `(-1)^e`.
fn sign(e: usize) -> f64 {
    if e.is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

/// The binomial coefficient `C(n, k)` as f64 (0 when `k > n`).
fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
}

/// Bernoulli numbers `B_0..=B_m` with `B_1 = -1/2` (as `scipy.special.bernoulli`).
fn bernoulli(m: usize) -> Vec<f64> {
    let mut b = vec![1.0];
    for j in 1..=m {
        let sum: f64 = (0..j).map(|i| binom(j + 1, i) * b[i]).sum();
        b.push(-sum / (j + 1) as f64);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brute::{self, subset, table};

    /// A random function over `n` players given in `basis`, with terms up to degree `n`.
    fn game(n: usize, basis: Basis, seed: u64) -> Spectrum {
        brute::random_spectrum(n, basis, 3 * n, n, seed)
    }

    /// `f(N)`: the value with every player kept.
    fn grand(t: &[f64]) -> f64 {
        t[t.len() - 1]
    }

    /// Asserts `got` equals `want(S)` on every coalition of size `lo..=k`, and nothing else.
    fn assert_matches(
        got: &InteractionValues,
        n: usize,
        lo: usize,
        k: usize,
        tol: f64,
        want: impl Fn(u32) -> f64,
    ) {
        for m in brute::coalitions_up_to(n, k, true) {
            let s = subset(m);
            if s.len() < lo {
                assert!(!got.values.contains_key(&s), "{} has {s}", got.index);
                continue;
            }
            let (g, w) = (got.get(&s), want(m));
            assert!((g - w).abs() <= tol, "{} {s}: {g} vs {w}", got.index);
        }
        assert!(got.values.keys().all(|s| s.len() <= k && s.len() >= lo));
    }

    #[test]
    fn sii_bii_sv_bv_match_brute_force() {
        for (n, seed) in [(4, 1), (6, 2), (7, 3)] {
            for basis in [Basis::Fourier, Basis::Moebius] {
                let f = game(n, basis, seed);
                let t = table(&f);
                for k in 1..=n {
                    let sii = interaction_values(&f, Index::Sii, k).unwrap();
                    assert_matches(&sii, n, 1, k, 1e-10, |s| brute::sii(&t, n, s));
                    let bii = interaction_values(&f, Index::Bii, k).unwrap();
                    assert_matches(&bii, n, 1, k, 1e-10, |s| brute::bii(&t, n, s));
                }
                let sv = interaction_values(&f, Index::Sv, 1).unwrap();
                assert_matches(&sv, n, 1, 1, 1e-10, |s| brute::sii(&t, n, s));
                // BV has the order-1 fit's intercept on the empty set (checked with FBII).
                let bv = interaction_values(&f, Index::Bv, 1).unwrap();
                assert_matches(&bv, n, 0, 1, 1e-10, |s| match s {
                    0 => bv.get(&Subset::empty()),
                    _ => brute::bii(&t, n, s),
                });
                assert_eq!(sv.baseline_value, t[0]);
                assert!((bv.baseline_value - t[0]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn stii_matches_brute_force_and_is_efficient() {
        for (n, seed) in [(5, 4), (7, 5)] {
            let f = game(n, Basis::Moebius, seed);
            let t = table(&f);
            for k in 1..=n {
                let stii = interaction_values(&f, Index::Stii, k).unwrap();
                assert_matches(&stii, n, 0, k, 1e-10, |s| brute::stii(&t, n, k, s));
                let total: f64 = stii.values.values().sum();
                assert!((total - grand(&t)).abs() < 1e-10, "k = {k}");
            }
        }
    }

    #[test]
    fn fbii_is_the_uniform_least_squares_fit() {
        for (n, seed) in [(5, 6), (6, 7)] {
            let f = game(n, Basis::Fourier, seed);
            let t = table(&f);
            for k in 1..=n {
                let fit = brute::least_squares_fit(&t, n, k, |_| 1.0, &[]);
                let fbii = interaction_values(&f, Index::Fbii, k).unwrap();
                assert_matches(&fbii, n, 0, k, 1e-9, |s| fit[&subset(s)]);
            }
            // BV is FBII at order 1, empty entry (the intercept) included.
            let bv = interaction_values(&f, Index::Bv, 3).unwrap();
            let fbii1 = interaction_values(&f, Index::Fbii, 1).unwrap();
            assert_eq!(bv.values, fbii1.values);
            assert_eq!(bv.max_order, 1);
        }
    }

    #[test]
    fn fsii_is_the_shapley_kernel_least_squares_fit_and_efficient() {
        for (n, seed) in [(5, 8), (6, 9)] {
            let f = game(n, Basis::Moebius, seed);
            let t = table(&f);
            let full = (1u32 << n) - 1;
            let kernel = |m: u32| {
                let s = m.count_ones() as usize;
                (n - 1) as f64 / (brute::binom(n, s) * (s * (n - s)) as f64)
            };
            for k in 1..=n {
                let fit = brute::least_squares_fit(&t, n, k, kernel, &[0, full]);
                let fsii = interaction_values(&f, Index::Fsii, k).unwrap();
                assert_matches(&fsii, n, 0, k, 1e-9, |s| fit[&subset(s)]);
                let total: f64 = fsii.values.values().sum();
                assert!((total - grand(&t)).abs() < 1e-10, "k = {k}");
                assert!((fsii.get(&Subset::empty()) - t[0]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn ksii_is_bernoulli_aggregated_sii_and_efficient() {
        // Bernoulli numbers B_0.. as in scipy.special.bernoulli.
        let b = [1.0, -0.5, 1.0 / 6.0, 0.0, -1.0 / 30.0, 0.0, 1.0 / 42.0, 0.0];
        for (got, want) in bernoulli(7).iter().zip(b) {
            assert!((got - want).abs() < 1e-15);
        }
        for (n, seed) in [(5, 10), (7, 11)] {
            let f = game(n, Basis::Fourier, seed);
            let t = table(&f);
            for k in 1..=n {
                let ksii = interaction_values(&f, Index::KSii, k).unwrap();
                // kSII(S) = sum_{S ⊆ R, |R| <= k} B_{|R|-|S|} SII(R), SII by brute force.
                let want = |s: u32| -> f64 {
                    if s == 0 {
                        return t[0];
                    }
                    brute::coalitions_up_to(n, k, false)
                        .into_iter()
                        .filter(|r| r & s == s)
                        .map(|r| {
                            b[(r.count_ones() - s.count_ones()) as usize] * brute::sii(&t, n, r)
                        })
                        .sum()
                };
                assert_matches(&ksii, n, 0, k, 1e-10, want);
                let total: f64 = ksii.values.values().sum();
                assert!((total - grand(&t)).abs() < 1e-10, "k = {k}");
            }
            // At full order k-SII is the Moebius transform.
            let ksii = interaction_values(&f, Index::KSii, n).unwrap();
            assert_matches(&ksii, n, 0, n, 1e-10, |s| brute::moebius(&t, s));
        }
    }

    #[test]
    fn shapley_values_are_efficient() {
        let f = game(8, Basis::Fourier, 12);
        let t = table(&f);
        let sv = interaction_values(&f, Index::Sv, 1).unwrap();
        let total: f64 = sv.values.values().sum();
        assert!((sv.baseline_value + total - grand(&t)).abs() < 1e-10);
        assert!(!sv.values.contains_key(&Subset::empty()));
    }

    #[test]
    fn direct_fourier_shortcuts_hold() {
        for (n, seed) in [(6, 13), (8, 14)] {
            let moebius = game(n, Basis::Moebius, seed);
            let fourier = moebius.to_fourier();
            let bv = interaction_values(&moebius, Index::Bv, 1).unwrap();
            let sv = interaction_values(&moebius, Index::Sv, 1).unwrap();
            for i in 0..n as u32 {
                let player = Subset::singleton(i);
                // BV_i = -2 F({i}).
                assert!((bv.get(&player) + 2.0 * fourier.get(&player)).abs() < 1e-12);
                // SV_i = sum over odd |S| ∋ i of -2 F(S) / |S|.
                let want: f64 = fourier
                    .iter()
                    .filter(|(s, _)| s.contains(i) && s.len() % 2 == 1)
                    .map(|(s, v)| -2.0 * v / s.len() as f64)
                    .sum();
                assert!((sv.get(&player) - want).abs() < 1e-12, "SV_{i}");
            }
            // BII(S) = (-2)^{|S|} F(S).
            let bii = interaction_values(&moebius, Index::Bii, n).unwrap();
            for m in brute::coalitions_up_to(n, n, false) {
                let s = subset(m);
                let want = (-2f64).powi(s.len() as i32) * fourier.get(&s);
                assert!((bii.get(&s) - want).abs() < 1e-12, "BII {s}");
            }
            // FBII(k) is the Moebius transform of the Fourier spectrum cut to degree <= k.
            for k in 1..=n {
                let fbii = interaction_values(&moebius, Index::Fbii, k).unwrap();
                let cut = Spectrum::from_terms(
                    n,
                    Basis::Fourier,
                    fourier
                        .iter()
                        .filter(|(s, _)| s.len() <= k)
                        .map(|(s, v)| (s.clone(), v)),
                )
                .to_moebius();
                for m in brute::coalitions_up_to(n, k, true) {
                    let s = subset(m);
                    assert!((fbii.get(&s) - cut.get(&s)).abs() < 1e-12, "FBII({k}) {s}");
                }
            }
        }
    }

    #[test]
    fn bases_are_reported_with_an_order_cut() {
        let f = game(6, Basis::Moebius, 15);
        let t = table(&f);
        let fourier = interaction_values(&f, Index::Fourier, 2).unwrap();
        assert!(fourier.values.keys().all(|s| s.len() <= 2));
        let full = f.to_fourier();
        for (s, v) in fourier.values.iter() {
            assert_eq!(*v, full.get(s));
        }
        let moebius = interaction_values(&f, Index::Moebius, 6).unwrap();
        assert_matches(&moebius, 6, 0, 6, 1e-12, |s| brute::moebius(&t, s));
        assert_eq!(moebius.baseline_value, t[0]);
        assert!((fourier.baseline_value - t[0]).abs() < 1e-12);
        let constant = interaction_values(&f, Index::Fourier, 0).unwrap();
        assert!(constant.values.keys().all(Subset::is_empty));
    }

    #[test]
    fn bad_orders_and_coefficients_are_rejected_or_coerced() {
        let f = game(4, Basis::Moebius, 16);
        for index in [
            Index::Sii,
            Index::KSii,
            Index::Stii,
            Index::Fsii,
            Index::Fbii,
            Index::Bii,
            Index::Sv,
            Index::Bv,
        ] {
            let err = interaction_values(&f, index, 0).unwrap_err().to_string();
            assert!(err.contains("max_order"), "{err}");
        }
        assert_eq!(interaction_values(&f, Index::Sv, 3).unwrap().max_order, 1);
        assert_eq!(interaction_values(&f, Index::Sii, 99).unwrap().max_order, 4);
        let nan = Spectrum::from_terms(3, Basis::Fourier, [(Subset::singleton(1), f64::NAN)]);
        let err = interaction_values(&nan, Index::Sii, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("spectrum") && err.contains("{1}"), "{err}");
    }

    #[test]
    fn every_name_parses_and_unknown_names_are_listed() {
        let cases = [
            ("fourier", Index::Fourier),
            ("Moebius", Index::Moebius),
            ("mobius", Index::Moebius),
            ("sii", Index::Sii),
            ("k-SII", Index::KSii),
            ("KSII", Index::KSii),
            ("stii", Index::Stii),
            ("FSII", Index::Fsii),
            ("fbii", Index::Fbii),
            ("BII", Index::Bii),
            ("sv", Index::Sv),
            ("Bv", Index::Bv),
        ];
        for (name, want) in cases {
            assert_eq!(name.parse::<Index>().unwrap(), want, "{name}");
        }
        for index in Index::ALL {
            assert_eq!(index.to_string().parse::<Index>().unwrap(), index);
        }
        assert_eq!(Index::KSii.to_string(), "k-SII");
        let err = "shap".parse::<Index>().unwrap_err().to_string();
        assert!(
            err.contains("`index`") && err.contains("shap") && err.contains("k-SII, STII"),
            "{err}"
        );
    }

    #[test]
    fn json_round_trip_and_validation() {
        let f = game(5, Basis::Fourier, 17);
        let iv = interaction_values(&f, Index::KSii, 2).unwrap();
        let json = serde_json::to_string(&iv).unwrap();
        assert!(
            json.contains("\"index\":\"k-SII\"") && json.contains("\"players\":[]"),
            "{json}"
        );
        let back: InteractionValues = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.index, back.n_players, back.max_order),
            (iv.index, 5, 2)
        );
        assert_eq!(back.baseline_value, iv.baseline_value);
        assert!(back.values.keys().eq(iv.values.keys()));
        for (s, v) in &iv.values {
            // serde_json's default float parsing may differ from the written value in the last bit.
            assert!((back.get(s) - v).abs() <= 1e-15 * v.abs(), "{s}");
        }
        let bad = r#"{"index":"SV","n_players":2,"max_order":1,"baseline_value":0.0,
                      "values":[{"players":[3],"value":1.0}]}"#;
        let err = serde_json::from_str::<InteractionValues>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("values[0].players"), "{err}");
    }

    #[test]
    fn sorted_by_magnitude_breaks_ties_by_subset() {
        let iv = InteractionValues {
            index: Index::Sii,
            n_players: 3,
            max_order: 2,
            baseline_value: 0.0,
            values: [
                (Subset::singleton(2), -1.0),
                (Subset::from_indices([0, 1]), 0.5),
                (Subset::singleton(0), 1.0),
            ]
            .into_iter()
            .collect(),
        };
        let order: Vec<Subset> = iv
            .sorted_by_magnitude()
            .into_iter()
            .map(|(s, _)| s.clone())
            .collect();
        assert_eq!(
            order,
            vec![
                Subset::singleton(0),
                Subset::singleton(2),
                Subset::from_indices([0, 1])
            ]
        );
    }
}
