//! [`SpexPlan`]: SPEX's sampling design (budget rule, BCH delays, seeded subsampling matrices)
//! and the masks it queries.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::bch::{BchCode, BchParams, MAX_PARITY};
use crate::memory::check_fits;
use crate::MaskBatch;
use crate::{Error, Result};

/// Number of subsampling groups `C` (shapiq's `num_subsample`).
pub const GROUPS: usize = 3;
/// Default degree bound `t` (shapiq's `degree_parameter`).
pub const DEFAULT_DEGREE: usize = 5;
/// Smallest number of hash bits `b` a plan accepts (shapiq requires b >= 3).
pub const MIN_BITS: usize = 3;
/// Largest number of hash bits `b` (2^30 bins per group); larger budgets are not spent.
pub const MAX_BITS: usize = 30;
/// Most subsampling groups a plan.json may hold.
pub const MAX_GROUPS: usize = 16;

/// How a bin's `P` observations are turned into the singleton's index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// Signs plus reliabilities: hard BCH decoding, then Chase flips of the `t` weakest bits.
    #[default]
    Soft,
    /// Signs only: hard BCH decoding (Berlekamp–Massey + Chien).
    Hard,
}

/// A SPEX sampling plan: everything needed to produce the masks and decode their values.
///
/// The subsampling matrices `M_c` (`[n, b]` bits each) are re-derived from `seed`; the BCH code
/// from `(n, t)`. Masks come in `groups * delays` blocks of `2^b` rows: block `(c, p)` is rows
/// `(c * delays + p) * 2^b ..`, and row `l` of a block is `x = M_c l xor d_p`, where bit `i` of
/// the integer `l` multiplies column `i` of `M_c` and `d_p` is delay row `p` (row 0 all zeros,
/// row `r + 1` = parity bit `r` of each player's BCH codeword).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpexPlan {
    /// Number of players.
    pub n: usize,
    /// The budget asked for (evaluations); the plan uses `n_queries() <= budget`.
    pub budget: usize,
    /// The degree bound asked for, before lowering to fit the budget.
    pub max_degree: usize,
    /// Hash bits: each group has `2^b` bins.
    pub b: usize,
    /// Degree bound used: the BCH code corrects `t` errors, so interactions up to order `t` are found.
    pub t: usize,
    /// Number of subsampling groups `C`.
    pub groups: usize,
    /// Seed of the subsampling matrices.
    pub seed: u64,
    /// Singleton index decoder.
    pub decoder: Decoder,
    /// Whether the found coefficients are refitted by least squares on all samples.
    pub refit: bool,
    /// The shortened BCH code's sizes.
    pub bch: BchParams,
}

impl SpexPlan {
    /// Plans SPEX for `n` players within `budget` evaluations, degree bound `max_degree`.
    ///
    /// shapiq's rule: `b = floor(log2(budget / (C * P)))`; while `b < 3` and `t > 2`, `t` is
    /// lowered by one (smaller code, fewer delays). Fails with [`Error::BudgetTooSmall`] naming
    /// the smallest budget that works when even the lowest `t` leaves `b < 3`.
    pub fn new(n: usize, budget: usize, max_degree: usize, seed: u64) -> Result<SpexPlan> {
        if n == 0 {
            return Err(Error::invalid("n", "SPEX needs at least one player"));
        }
        if max_degree == 0 || max_degree > MAX_PARITY {
            return Err(Error::invalid(
                "max_degree",
                format!("the degree bound t = {max_degree} must be between 1 and {MAX_PARITY}"),
            ));
        }
        let mut t = max_degree;
        loop {
            let bch = BchParams::search(n, t)?;
            let block = GROUPS * bch.delays;
            let b = bits_for(budget, block);
            if b >= MIN_BITS {
                return Ok(SpexPlan {
                    n,
                    budget,
                    max_degree,
                    b,
                    t,
                    groups: GROUPS,
                    seed,
                    decoder: Decoder::default(),
                    refit: true,
                    bch,
                });
            }
            if t <= 2 {
                return Err(Error::BudgetTooSmall {
                    method: "SPEX".into(),
                    n,
                    budget,
                    minimum: block << MIN_BITS,
                });
            }
            t -= 1;
        }
    }

    /// The same plan with another singleton decoder.
    pub fn with_decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        self
    }

    /// The same plan with the least-squares refit switched on or off.
    pub fn with_refit(mut self, refit: bool) -> Self {
        self.refit = refit;
        self
    }

    /// Number of masks to evaluate: `groups * delays * 2^b` (saturated at `usize::MAX` for a
    /// plan read from a file with absurd sizes; [`SpexPlan::validate`] refuses those).
    pub fn n_queries(&self) -> usize {
        let bins = u32::try_from(self.b)
            .ok()
            .and_then(|b| 1u128.checked_shl(b))
            .unwrap_or(u128::MAX);
        let q = (self.groups as u128)
            .saturating_mul(self.bch.delays as u128)
            .saturating_mul(bins);
        usize::try_from(q).unwrap_or(usize::MAX)
    }

    /// Bytes that building the masks and decoding their values hold at once, about: the packed
    /// masks, their byte copy written to masks.npy, and three copies of the values.
    pub fn bytes_needed(&self) -> u128 {
        let words = self.n.div_ceil(64).max(1) as u128;
        self.n_queries() as u128 * (8 * words + self.n as u128 + 24)
    }

    /// Checks every field a hand-edited plan.json could break (sizes, the BCH code of `(n, t)`);
    /// errors name the field, its value and what is accepted.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::invalid("n", "0 players: SPEX needs at least one"));
        }
        if self.t == 0 || self.t > self.max_degree.max(1) {
            return Err(Error::invalid(
                "t",
                format!(
                    "{} is not a degree bound between 1 and max_degree = {}",
                    self.t, self.max_degree
                ),
            ));
        }
        if !(1..=MAX_GROUPS).contains(&self.groups) {
            return Err(Error::invalid(
                "groups",
                format!(
                    "{} subsampling groups: between 1 and {MAX_GROUPS} are accepted (SPEX uses {GROUPS})",
                    self.groups
                ),
            ));
        }
        if !(1..=MAX_BITS).contains(&self.b) {
            return Err(Error::invalid(
                "b",
                format!("{} hash bits: outside 1..={MAX_BITS}", self.b),
            ));
        }
        let bch = BchParams::search(self.n, self.t)?;
        if bch != self.bch {
            return Err(Error::invalid(
                "bch",
                format!(
                    "{:?} does not match the code for n = {}, t = {}: {bch:?}",
                    self.bch, self.n, self.t
                ),
            ));
        }
        if self.n_queries() > self.budget {
            return Err(Error::invalid(
                "budget",
                format!(
                    "{} is below the design's {} masks",
                    self.budget,
                    self.n_queries()
                ),
            ));
        }
        Ok(())
    }

    /// The masks to evaluate, `[n_queries, n]`, in the block order documented on [`SpexPlan`].
    ///
    /// Errors: an inconsistent plan ([`SpexPlan::validate`]); more memory than the machine has
    /// ([`Error::InsufficientMemory`], checked before anything is allocated).
    pub fn masks(&self) -> Result<MaskBatch> {
        let design = Design::new(self)?;
        check_fits(
            self.bytes_needed(),
            || format!("SPEX's {} masks over {} players", self.n_queries(), self.n),
            "budget",
        )?;
        let n = self.n;
        let words = n.div_ceil(64).max(1);
        let rows = 1usize << self.b;
        let mut batch = MaskBatch::with_capacity(n, self.n_queries());
        let mut block = vec![0u64; rows * words];
        for c in 0..self.groups {
            // columns[i] = column i of M_c as packed player bits
            let mut columns = vec![0u64; self.b * words];
            for (j, &h) in design.hashes[c].iter().enumerate() {
                for i in 0..self.b {
                    if h >> i & 1 == 1 {
                        columns[i * words + j / 64] |= 1 << (j % 64);
                    }
                }
            }
            for p in 0..self.bch.delays {
                let delay = design.delay_row(p, words);
                block[..words].copy_from_slice(&delay);
                for l in 1..rows {
                    // x_l = x_{l without its lowest bit} xor column(lowest bit)
                    let prev = l & (l - 1);
                    let col = l.trailing_zeros() as usize;
                    for w in 0..words {
                        block[l * words + w] = block[prev * words + w] ^ columns[col * words + w];
                    }
                }
                for l in 0..rows {
                    batch.push_words(&block[l * words..(l + 1) * words]);
                }
            }
        }
        Ok(batch)
    }
}

/// Largest `b <= MAX_BITS` with `block * 2^b <= budget` (0 when even `b = 0` does not fit).
fn bits_for(budget: usize, block: usize) -> usize {
    let mut b = 0;
    while b < MAX_BITS && block << (b + 1) <= budget {
        b += 1;
    }
    b
}

/// What decoding re-derives from a plan: the BCH code and each group's player hashes.
pub(crate) struct Design {
    /// The BCH code of the delays.
    pub code: BchCode,
    /// `hashes[c][j]` = row `j` of `M_c` as `b` bits; a set's bin is the xor over its players.
    pub hashes: Vec<Vec<u32>>,
}

impl Design {
    /// Re-derives the design of `plan`, checking that a plan read from a file is consistent
    /// ([`SpexPlan::validate`]).
    pub fn new(plan: &SpexPlan) -> Result<Design> {
        plan.validate()?;
        let code = BchCode::new(plan.n, plan.t)?;
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let mask = (1u64 << plan.b) - 1;
        let hashes = (0..plan.groups)
            .map(|_| {
                (0..plan.n)
                    .map(|_| (rng.random::<u64>() & mask) as u32)
                    .collect()
            })
            .collect();
        Ok(Design { code, hashes })
    }

    /// The bin of player set `players` in group `c` (`M_c^T k` as an integer).
    pub fn bin(&self, c: usize, players: &[u32]) -> usize {
        players
            .iter()
            .fold(0u32, |acc, &j| acc ^ self.hashes[c][j as usize]) as usize
    }

    /// Delay row `p` as packed player bits (`words` words): row 0 is zero, row `r + 1` holds
    /// parity bit `r` of each player.
    fn delay_row(&self, p: usize, words: usize) -> Vec<u64> {
        let mut row = vec![0u64; words];
        if p > 0 {
            for (j, &par) in self.code.player_parity().iter().enumerate() {
                if par >> (p - 1) & 1 == 1 {
                    row[j / 64] |= 1 << (j % 64);
                }
            }
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shapiq `test_approximator_spex.py::test_sparsity_parameter` (algorithms.md §9.1).
    #[test]
    fn budget_rule_matches_shapiq() {
        for (n, budget, b, t) in [
            (10, 1000, 3, 5),
            (10, 450, 3, 3),
            (7, 800, 3, 5),
            (7, 300, 3, 2),
        ] {
            let plan = SpexPlan::new(n, budget, 5, 0).unwrap();
            assert_eq!((plan.b, plan.t), (b, t), "n = {n}, budget = {budget}");
            assert!(plan.n_queries() <= budget);
        }
    }

    #[test]
    fn too_small_budgets_name_the_minimum() {
        for (n, budget) in [(10, 100), (7, 20)] {
            match SpexPlan::new(n, budget, 5, 0) {
                Err(Error::BudgetTooSmall { minimum, .. }) => {
                    // the minimum is exactly the smallest budget that plans
                    assert!(SpexPlan::new(n, minimum, 5, 0).is_ok());
                    assert!(SpexPlan::new(n, minimum - 1, 5, 0).is_err());
                    let p2 = BchParams::search(n, 2).unwrap().delays;
                    assert_eq!(minimum, 3 * p2 * 8);
                }
                other => {
                    panic!("n = {n}, budget = {budget}: expected BudgetTooSmall, got {other:?}")
                }
            }
        }
    }

    #[test]
    fn huge_budgets_stop_at_max_bits() {
        let plan = SpexPlan::new(50, usize::MAX, 5, 0).unwrap();
        assert_eq!((plan.b, plan.t), (MAX_BITS, 5));
    }

    #[test]
    fn bad_arguments_are_rejected() {
        assert!(matches!(
            SpexPlan::new(0, 1000, 5, 0),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            SpexPlan::new(10, 1000, 0, 0),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn same_seed_same_masks_other_seed_other_masks() {
        let a = SpexPlan::new(70, 5000, 3, 42).unwrap();
        let m1 = a.masks().unwrap();
        let m2 = a.masks().unwrap();
        assert_eq!(m1, m2);
        assert_eq!(m1.len(), a.n_queries());
        let m3 = SpexPlan::new(70, 5000, 3, 43).unwrap().masks().unwrap();
        assert_ne!(m1, m3);
    }

    #[test]
    fn masks_follow_the_documented_layout() {
        let plan = SpexPlan::new(70, 3000, 2, 9).unwrap();
        let design = Design::new(&plan).unwrap();
        let masks = plan.masks().unwrap();
        let rows = 1 << plan.b;
        for c in 0..plan.groups {
            for p in [0, 1, plan.bch.delays - 1] {
                for l in [0usize, 1, 5, rows - 1] {
                    let r = (c * plan.bch.delays + p) * rows + l;
                    for j in 0..plan.n {
                        let m_bit = (design.hashes[c][j] as usize & l).count_ones() % 2 == 1;
                        let d_bit = p > 0 && design.code.player_parity()[j] >> (p - 1) & 1 == 1;
                        assert_eq!(masks.get(r, j), m_bit ^ d_bit, "c {c} p {p} l {l} j {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn plan_round_trips_through_json_and_rejects_tampering() {
        let plan = SpexPlan::new(100, 4000, 5, 1).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        let back: SpexPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        let mut bad = plan.clone();
        bad.bch.p += 1;
        assert!(Design::new(&bad).is_err());
    }
}
