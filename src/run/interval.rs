//! Percentile bootstrap intervals over questions: a pruned model's accuracy, and the paired
//! difference of two pruned models judged on the same questions (a win is called only when the
//! interval of the difference lies above zero).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Resamples of every interval spex reports.
pub const RESAMPLES: usize = 2000;

/// A mean and its 95 % percentile bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// The mean over the questions.
    pub mean: f64,
    /// 2.5th percentile of the resampled means.
    pub low: f64,
    /// 97.5th percentile of the resampled means.
    pub high: f64,
}

impl Interval {
    /// Whether the whole interval lies above zero.
    pub fn above_zero(&self) -> bool {
        self.low > 0.0
    }
}

/// The mean of `x` (one number per question) and its interval: questions drawn with replacement
/// `resamples` times (`seed` fixes the draws). Empty `x` gives NaN everywhere.
pub fn bootstrap(x: &[f64], resamples: usize, seed: u64) -> Interval {
    paired_bootstrap(x, &vec![0.0; x.len()], resamples, seed)
}

/// The mean of `a[q] - b[q]` over questions `q` and its interval, `a` and `b` resampled together
/// (the same questions in every draw): `[Q]` each, equal lengths (the shorter one bounds).
pub fn paired_bootstrap(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Interval {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let q = d.len();
    if q == 0 {
        return Interval {
            mean: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mean = d.iter().sum::<f64>() / q as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..q).map(|_| d[rng.random_range(0..q)]).sum::<f64>() / q as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |p: f64| means[((p * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Interval {
        mean,
        low: at(0.025),
        high: at(0.975),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_models_differ_by_exactly_zero() {
        let a: Vec<f64> = (0..50).map(|i| f64::from(i % 3 == 0)).collect();
        let i = paired_bootstrap(&a, &a, 500, 1);
        assert_eq!((i.mean, i.low, i.high), (0.0, 0.0, 0.0));
        assert!(!i.above_zero());
    }

    #[test]
    fn a_model_right_everywhere_the_other_is_wrong_wins_for_sure() {
        let (a, b) = (vec![1.0; 40], vec![0.0; 40]);
        let i = paired_bootstrap(&a, &b, 500, 2);
        assert_eq!((i.mean, i.low, i.high), (1.0, 1.0, 1.0));
        assert!(i.above_zero());
    }

    #[test]
    fn one_question_of_a_hundred_is_not_a_win_and_pairing_narrows_the_interval() {
        // b is right on 60 questions; a on the same 60 and one more.
        let b: Vec<f64> = (0..100).map(|i| f64::from(i < 60)).collect();
        let mut a = b.clone();
        a[60] = 1.0;
        let paired = paired_bootstrap(&a, &b, 2000, 3);
        assert!((paired.mean - 0.01).abs() < 1e-12);
        assert!(!paired.above_zero(), "{paired:?}");
        assert!(paired.low >= 0.0 && paired.high <= 0.05, "{paired:?}");
        // Unpaired, each accuracy alone spans about +-0.1.
        let alone = bootstrap(&a, 2000, 3);
        assert!(alone.high - alone.low > 0.15, "{alone:?}");
        assert!(alone.low < 0.61 && alone.high > 0.61);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let a: Vec<f64> = (0..30).map(|i| (f64::from(i) * 0.37).fract()).collect();
        assert_eq!(bootstrap(&a, 300, 9), bootstrap(&a, 300, 9));
        assert_ne!(bootstrap(&a, 300, 9), bootstrap(&a, 300, 10));
    }
}
