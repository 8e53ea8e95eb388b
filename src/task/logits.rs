//! [`CandidateLogits`]: one score per candidate of each question, for a batch of masks, in one
//! flat buffer: last-position logits of the candidates' tokens (letters), or the candidates'
//! log-likelihoods as continuations (cloze).

use crate::{Error, Result};

/// Candidate scores `[M][Q][K_q]` (f32) for `M` masks and `Q` questions with `K_q` candidates
/// each (4 letters for MMLU): logits, plus optionally the full-vocabulary logsumexp `[M][Q]` that
/// a target log-prob needs; or log-likelihoods (nats) with each candidate's length in characters.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateLogits {
    n_masks: usize,
    /// Start of question q's candidates within one mask's row; `offsets[Q]` = row width.
    offsets: Vec<usize>,
    data: Vec<f32>,
    logsumexp: Option<Vec<f32>>,
    /// With log-likelihoods: each candidate's answer length in characters, `[sum K_q]`.
    lengths: Option<Vec<f64>>,
}

impl CandidateLogits {
    /// Wraps `data` laid out mask-major `[M, sum K_q]`, with `n_choices[q] = K_q`, and an
    /// optional full-vocab `logsumexp` `[M, Q]`; checks the lengths and that `K_q >= 1`.
    pub fn new(n_choices: &[usize], data: Vec<f32>, logsumexp: Option<Vec<f32>>) -> Result<Self> {
        if let Some(q) = n_choices.iter().position(|&k| k == 0) {
            return Err(Error::invalid(
                "candidate logits",
                format!("question {q} has no candidates"),
            ));
        }
        let mut offsets = Vec::with_capacity(n_choices.len() + 1);
        let mut width = 0;
        offsets.push(0);
        for &k in n_choices {
            width += k;
            offsets.push(width);
        }
        if width == 0 || !data.len().is_multiple_of(width) {
            return Err(Error::invalid(
                "candidate logits",
                format!(
                    "{} values do not split into rows of {width} (the candidates of {} questions)",
                    data.len(),
                    n_choices.len()
                ),
            ));
        }
        let n_masks = data.len() / width;
        if let Some(l) = &logsumexp {
            if l.len() != n_masks * n_choices.len() {
                return Err(Error::invalid(
                    "logsumexp",
                    format!(
                        "{} values, expected {n_masks} masks x {} questions",
                        l.len(),
                        n_choices.len()
                    ),
                ));
            }
        }
        Ok(CandidateLogits {
            n_masks,
            offsets,
            data,
            logsumexp,
            lengths: None,
        })
    }

    /// Wraps log-likelihoods (nats) laid out as [`CandidateLogits::new`]'s `data`, with each
    /// candidate's answer length in characters `[sum K_q]` (the `acc_norm` normaliser).
    pub fn loglikelihoods(n_choices: &[usize], data: Vec<f32>, lengths: Vec<f64>) -> Result<Self> {
        let mut out = Self::new(n_choices, data, None)?;
        let width = out.offsets[out.n_questions()];
        if lengths.len() != width {
            return Err(Error::invalid(
                "candidate lengths",
                format!("{} lengths for {width} candidates", lengths.len()),
            ));
        }
        out.lengths = Some(lengths);
        Ok(out)
    }

    /// Whether the scores are log-likelihoods (cloze), not logits.
    pub fn is_loglikelihood(&self) -> bool {
        self.lengths.is_some()
    }

    /// The answer lengths in characters of question `q`'s candidates (log-likelihoods only).
    pub fn lengths(&self, q: usize) -> Option<&[f64]> {
        self.lengths
            .as_ref()
            .map(|l| &l[self.offsets[q]..self.offsets[q + 1]])
    }

    /// Builds from nested rows `[M][Q][K_q]` (every mask must have the same layout).
    pub fn from_nested(rows: &[Vec<Vec<f32>>], logsumexp: Option<Vec<f32>>) -> Result<Self> {
        let layout: Vec<usize> = rows
            .first()
            .map(|r| r.iter().map(Vec::len).collect())
            .unwrap_or_default();
        for (m, r) in rows.iter().enumerate() {
            let this: Vec<usize> = r.iter().map(Vec::len).collect();
            if this != layout {
                return Err(Error::invalid(
                    "candidate logits",
                    format!("mask {m} has candidate counts {this:?}, mask 0 has {layout:?}"),
                ));
            }
        }
        let data = rows.iter().flatten().flatten().copied().collect();
        Self::new(&layout, data, logsumexp)
    }

    /// Number of masks `M`.
    pub fn n_masks(&self) -> usize {
        self.n_masks
    }

    /// Number of questions `Q`.
    pub fn n_questions(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of candidates `K_q` of question `q`.
    pub fn n_choices(&self, q: usize) -> usize {
        self.offsets[q + 1] - self.offsets[q]
    }

    /// Whether the full-vocabulary logsumexp was given.
    pub fn has_logsumexp(&self) -> bool {
        self.logsumexp.is_some()
    }

    /// The `K_q` candidate logits of question `q` under mask `m`.
    pub fn get(&self, m: usize, q: usize) -> &[f32] {
        let width = self.offsets[self.n_questions()];
        let base = m * width;
        &self.data[base + self.offsets[q]..base + self.offsets[q + 1]]
    }

    /// The full-vocabulary logsumexp of question `q` under mask `m`, if given.
    pub fn logsumexp(&self, m: usize, q: usize) -> Option<f32> {
        self.logsumexp
            .as_ref()
            .map(|l| l[m * self.n_questions() + q])
    }
}

/// Log-softmax of `logits` (in f64): log-probs normalised over these candidates only.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&x| f64::from(x) - lse).collect()
}

/// Index of the largest value; ties go to the first (lm-eval's `np.argmax`).
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in values.iter().enumerate() {
        if *x > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_access() {
        let l = CandidateLogits::from_nested(
            &[
                vec![vec![1.0, 2.0], vec![3.0, 4.0, 5.0]],
                vec![vec![6.0, 7.0], vec![8.0, 9.0, 10.0]],
            ],
            Some(vec![0.5, 0.6, 0.7, 0.8]),
        )
        .unwrap();
        assert_eq!((l.n_masks(), l.n_questions()), (2, 2));
        assert_eq!(l.get(1, 1), [8.0, 9.0, 10.0]);
        assert_eq!(l.get(0, 0), [1.0, 2.0]);
        assert_eq!(l.logsumexp(1, 0), Some(0.7));
        assert_eq!((l.n_choices(0), l.n_choices(1)), (2, 3));
        assert!(l.has_logsumexp());
        let empty = CandidateLogits::new(&[4, 4], vec![], None).unwrap();
        assert_eq!((empty.n_masks(), empty.n_questions()), (0, 2));
        assert!(!l.is_loglikelihood() && l.lengths(0).is_none());
        let ll =
            CandidateLogits::loglikelihoods(&[2, 1], vec![-1.0, -2.0, -3.0], vec![4.0, 5.0, 6.0])
                .unwrap();
        assert!(ll.is_loglikelihood());
        assert_eq!(ll.lengths(1), Some(&[6.0][..]));
        assert!(CandidateLogits::loglikelihoods(&[2], vec![0.0; 2], vec![1.0]).is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(CandidateLogits::new(&[4], vec![0.0; 7], None).is_err());
        assert!(CandidateLogits::new(&[4, 0], vec![0.0; 8], None).is_err());
        assert!(CandidateLogits::new(&[2], vec![0.0; 4], Some(vec![0.0; 3])).is_err());
        assert!(
            CandidateLogits::from_nested(&[vec![vec![0.0]], vec![vec![0.0, 1.0]]], None).is_err()
        );
    }

    #[test]
    fn log_softmax_by_hand() {
        // logits [0, ln 3] -> probs [1/4, 3/4].
        let lp = log_softmax(&[0.0, 3f32.ln()]);
        assert!((lp[0] - 0.25f64.ln()).abs() < 1e-6);
        assert!((lp[1] - 0.75f64.ln()).abs() < 1e-6);
        // Shift invariance at large magnitudes (no overflow).
        let big = log_softmax(&[1000.0, 1000.0]);
        assert!((big[0] - 0.5f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn argmax_ties_go_first() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[5.0]), 0);
    }
}
