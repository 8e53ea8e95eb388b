//! Value functions over candidate logits: one number per mask for the decoders.
//!
//! Each value is a mean over the question set (or the prompts) of a per-question number computed
//! from the candidates' scores: last-position logits of their tokens (letters) or their
//! log-likelihoods as continuations (cloze). [`CandidateValue`] turns any
//! `masks -> CandidateLogits` function (a model's batched forward pass) into a
//! [`ValueFunction`].

use super::load::Format;
use super::logits::{argmax, log_softmax, CandidateLogits};
use crate::sparse::error::check_finite;
use crate::sparse::{MaskBatch, ValueFunction};
use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// What number one ablation yields (per question, then averaged over questions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueKind {
    /// Log-prob (nats) of the gold candidate, normalised over the candidates (`logprob`; the
    /// default on letter-format tasks).
    #[default]
    CorrectLogProb,
    /// Gold logit minus the best other candidate's logit (`margin`; needs >= 2 candidates).
    Margin,
    /// 1 if the argmax (ties to the first) is the gold candidate, else 0 (`accuracy`).
    Accuracy,
    /// Log-likelihood (nats) of the gold continuation over the full vocabulary: its logit minus
    /// the full-vocab logsumexp (letters), or its log-likelihood summed over its tokens (cloze)
    /// (`target-logprob`).
    TargetLogProb,
    /// Gold logit minus the other candidate's logit (`logit-diff`; exactly 2 candidates, e.g.
    /// `[" positive", " negative"]` or a contrastive target pair).
    LogitDiff,
    /// The gold log-likelihood divided by its answer's length in characters, as the harness's
    /// `acc_norm` normalises (`loglik-norm`; cloze only, and the default there).
    LoglikNorm,
    /// 1 if the argmax of the length-normalised log-likelihoods is the gold choice, else 0: the
    /// harness's `acc_norm` (`acc-norm`; cloze only).
    AccNorm,
}

impl ValueKind {
    /// All kinds, in CLI order.
    pub const ALL: [ValueKind; 7] = [
        ValueKind::CorrectLogProb,
        ValueKind::Margin,
        ValueKind::Accuracy,
        ValueKind::TargetLogProb,
        ValueKind::LogitDiff,
        ValueKind::LoglikNorm,
        ValueKind::AccNorm,
    ];

    /// The CLI name (`logprob`, `margin`, `accuracy`, `target-logprob`, `logit-diff`,
    /// `loglik-norm`, `acc-norm`).
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::CorrectLogProb => "logprob",
            ValueKind::Margin => "margin",
            ValueKind::Accuracy => "accuracy",
            ValueKind::TargetLogProb => "target-logprob",
            ValueKind::LogitDiff => "logit-diff",
            ValueKind::LoglikNorm => "loglik-norm",
            ValueKind::AccNorm => "acc-norm",
        }
    }

    /// The value a head attribution uses when none is asked for: on cloze tasks the gold answer's
    /// log-likelihood per character (`loglik-norm`: smooth, and it runs the gold answer alone),
    /// else the gold choice's log-prob among the choices (`logprob`). Measured against accuracy
    /// (the ProxySPEX paper's value) in benches/RESULTS.md, "The paper's head experiment".
    pub fn default_for(format: Format) -> ValueKind {
        match format {
            Format::Cloze => ValueKind::LoglikNorm,
            Format::Letters => ValueKind::CorrectLogProb,
        }
    }

    /// Whether the value needs the full-vocabulary logsumexp alongside candidate logits.
    pub fn needs_logsumexp(self) -> bool {
        self == ValueKind::TargetLogProb
    }

    /// Whether the value needs log-likelihoods with answer lengths (the cloze format).
    pub fn needs_loglikelihoods(self) -> bool {
        matches!(self, ValueKind::LoglikNorm | ValueKind::AccNorm)
    }

    /// The per-question number for candidate scores `l` with gold candidate `gold`, the
    /// full-vocabulary `logsumexp` of logits and the `lengths` of log-likelihoods' answers.
    fn per_question(
        self,
        l: &[f32],
        gold: usize,
        logsumexp: Option<f32>,
        lengths: Option<&[f64]>,
    ) -> f64 {
        let normalised = || -> Vec<f64> {
            let lengths = lengths.unwrap_or_default();
            l.iter()
                .zip(lengths)
                .map(|(&x, &n)| f64::from(x) / n)
                .collect()
        };
        match self {
            ValueKind::CorrectLogProb => log_softmax(l)[gold],
            ValueKind::Margin | ValueKind::LogitDiff => {
                let best_other = l
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != gold)
                    .map(|(_, &x)| f64::from(x))
                    .fold(f64::NEG_INFINITY, f64::max);
                f64::from(l[gold]) - best_other
            }
            ValueKind::Accuracy => f64::from(u8::from(argmax(l) == gold)),
            ValueKind::TargetLogProb if lengths.is_some() => f64::from(l[gold]),
            ValueKind::TargetLogProb => {
                f64::from(l[gold]) - f64::from(logsumexp.unwrap_or(f32::NAN))
            }
            ValueKind::LoglikNorm => normalised()[gold],
            ValueKind::AccNorm => f64::from(u8::from(argmax(&normalised()) == gold)),
        }
    }

    /// Whether the value reads the gold answer's log-likelihood alone (`target-logprob` and
    /// `loglik-norm` on answer log-likelihoods): the other choices need not run.
    pub fn reads_gold_only(self) -> bool {
        matches!(self, ValueKind::TargetLogProb | ValueKind::LoglikNorm)
    }

    /// One value per mask: the mean over questions of the per-question number.
    ///
    /// `logits` is `[M][Q][K_q]`, `golds` is `[Q]` (gold candidate per question); returns `[M]`.
    pub fn values(self, logits: &CandidateLogits, golds: &[usize]) -> Result<Vec<f64>> {
        let per_question = self.per_question_values(logits, golds)?;
        let nq = golds.len() as f64;
        let values: Vec<f64> = per_question
            .iter()
            .map(|row| row.iter().sum::<f64>() / nq)
            .collect();
        check_finite(&values)?;
        Ok(values)
    }

    /// The per-question numbers `[M][Q]` behind [`ValueKind::values`] (e.g. each question's
    /// correctness under each mask, for paired comparisons of two pruned models).
    pub fn per_question_values(
        self,
        logits: &CandidateLogits,
        golds: &[usize],
    ) -> Result<Vec<Vec<f64>>> {
        let nq = logits.n_questions();
        if golds.len() != nq {
            return Err(Error::invalid(
                "golds",
                format!("{} gold answers for {nq} questions", golds.len()),
            ));
        }
        if nq == 0 {
            return Err(Error::invalid(
                "questions",
                "the value needs at least one question",
            ));
        }
        if self.needs_logsumexp() && !logits.has_logsumexp() && !logits.is_loglikelihood() {
            return Err(Error::invalid(
                "value",
                "`target-logprob` needs the full-vocabulary logsumexp of each question",
            ));
        }
        if self.needs_loglikelihoods() && !logits.is_loglikelihood() {
            return Err(Error::invalid(
                "value",
                format!(
                    "`{self}` needs the answers' log-likelihoods: use the cloze format \
                     (a task with answer texts)"
                ),
            ));
        }
        for (q, &g) in golds.iter().enumerate() {
            let k = logits.n_choices(q);
            let ok = match self {
                ValueKind::Margin => k >= 2,
                ValueKind::LogitDiff => k == 2,
                _ => true,
            };
            if g >= k || !ok {
                return Err(Error::invalid(
                    "value",
                    format!("`{self}` cannot score question {q}: gold {g} with {k} candidates"),
                ));
            }
        }
        Ok((0..logits.n_masks())
            .map(|m| {
                golds
                    .iter()
                    .enumerate()
                    .map(|(q, &g)| {
                        let l = logits.get(m, q);
                        self.per_question(l, g, logits.logsumexp(m, q), logits.lengths(q))
                    })
                    .collect()
            })
            .collect())
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ValueKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ValueKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ValueKind::ALL.iter().map(|k| k.name()).collect();
                Error::invalid(
                    "value",
                    format!("unknown value `{s}`; expected one of {}", names.join(", ")),
                )
            })
    }
}

/// A [`ValueFunction`] from a batched `masks -> candidate logits` function (e.g. a model's
/// ablated forward pass over a fixed question set) and a [`ValueKind`].
pub struct CandidateValue<F> {
    n_players: usize,
    kind: ValueKind,
    golds: Vec<usize>,
    logits: F,
}

impl<F: FnMut(&MaskBatch) -> Result<CandidateLogits>> CandidateValue<F> {
    /// `logits(masks)` must return `[M][Q][K_q]` logits for the `M` masks of the batch and the
    /// `Q = golds.len()` questions; `n_players` is the mask width.
    pub fn new(n_players: usize, kind: ValueKind, golds: Vec<usize>, logits: F) -> Self {
        CandidateValue {
            n_players,
            kind,
            golds,
            logits,
        }
    }
}

impl<F: FnMut(&MaskBatch) -> Result<CandidateLogits>> ValueFunction for CandidateValue<F> {
    fn n_players(&self) -> usize {
        self.n_players
    }

    fn values(&mut self, masks: &MaskBatch) -> crate::sparse::Result<Vec<f64>> {
        let logits = (self.logits)(masks)?;
        if logits.n_masks() != masks.len() {
            return Err(crate::sparse::Error::ValuesMismatch(format!(
                "the logits function returned {} masks of logits for {} masks",
                logits.n_masks(),
                masks.len()
            )));
        }
        Ok(self.kind.values(&logits, &self.golds)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Two masks x two questions of 4 letters, golds [0, 2]; every value worked out by hand.
    fn fixture() -> CandidateLogits {
        CandidateLogits::from_nested(
            &[
                // mask 0: q0 logits [ln 4, 0, 0, ln 2] -> probs [4/8, 1/8, 1/8, 2/8]
                //         q1 logits [0, 1, 3, 2]
                vec![
                    vec![4f32.ln(), 0.0, 0.0, 2f32.ln()],
                    vec![0.0, 1.0, 3.0, 2.0],
                ],
                // mask 1: q0 logits [0, 0, 0, 0] (uniform, tie -> pred 0)
                //         q1 logits [0, 5, 3, 0]
                vec![vec![0.0; 4], vec![0.0, 5.0, 3.0, 0.0]],
            ],
            Some(vec![2.0, 4.0, 1.0, 6.0]),
        )
        .unwrap()
    }

    #[test]
    fn correct_logprob_by_hand() {
        let v = ValueKind::CorrectLogProb
            .values(&fixture(), &[0, 2])
            .unwrap();
        // mask 0: ln(1/2) and log_softmax([0,1,3,2])[2] = 3 - ln(1 + e + e^3 + e^2).
        let q1 = 3.0 - (1.0 + 1f64.exp() + 3f64.exp() + 2f64.exp()).ln();
        assert!(close(v[0], (0.5f64.ln() + q1) / 2.0));
        // mask 1: ln(1/4) and 3 - ln(2 + e^5 + e^3).
        let q1 = 3.0 - (2.0 + 5f64.exp() + 3f64.exp()).ln();
        assert!(close(v[1], (0.25f64.ln() + q1) / 2.0));
    }

    #[test]
    fn margin_and_accuracy_by_hand() {
        let m = ValueKind::Margin.values(&fixture(), &[0, 2]).unwrap();
        // mask 0: ln4 - ln2 = ln2 ; 3 - 2 = 1.  mask 1: 0 - 0 = 0 ; 3 - 5 = -2.
        assert!(close(m[0], (2f64.ln() + 1.0) / 2.0));
        assert!(close(m[1], -1.0));
        let a = ValueKind::Accuracy.values(&fixture(), &[0, 2]).unwrap();
        // mask 0: both right; mask 1: q0 tie -> first (right), q1 wrong.
        assert_eq!(a, [1.0, 0.5]);
    }

    #[test]
    fn target_logprob_uses_the_full_vocab_logsumexp() {
        let t = ValueKind::TargetLogProb
            .values(&fixture(), &[0, 2])
            .unwrap();
        // mask 0: (ln4 - 2) and (3 - 4); mask 1: (0 - 1) and (3 - 6).
        assert!(close(t[0], (4f64.ln() - 2.0 - 1.0) / 2.0));
        assert!(close(t[1], -2.0));
        let no_lse = CandidateLogits::new(&[4], vec![0.0; 4], None).unwrap();
        assert!(ValueKind::TargetLogProb.values(&no_lse, &[0]).is_err());
    }

    #[test]
    fn logit_diff_on_pairs() {
        // Sentiment: candidates [" negative", " positive"], golds = labels.
        let l =
            CandidateLogits::from_nested(&[vec![vec![1.0, 3.5], vec![2.0, -1.0]]], None).unwrap();
        let v = ValueKind::LogitDiff.values(&l, &[1, 0]).unwrap();
        assert!(close(v[0], (2.5 + 3.0) / 2.0));
        // Four candidates are not a pair.
        assert!(ValueKind::LogitDiff.values(&fixture(), &[0, 2]).is_err());
    }

    #[test]
    fn cloze_values_normalise_by_length_where_acc_and_acc_norm_disagree() {
        // Two choices: "a" with log-likelihood -2 (1 char) and "a long answer" with -6 (13 chars).
        // acc picks choice 0 (-2 > -6); acc_norm picks choice 1 (-6/13 > -2/1).
        let l = CandidateLogits::loglikelihoods(&[2], vec![-2.0, -6.0], vec![1.0, 13.0]).unwrap();
        assert_eq!(ValueKind::Accuracy.values(&l, &[1]).unwrap(), [0.0]);
        assert_eq!(ValueKind::AccNorm.values(&l, &[1]).unwrap(), [1.0]);
        assert!(close(
            ValueKind::LoglikNorm.values(&l, &[1]).unwrap()[0],
            -6.0 / 13.0
        ));
        assert!(close(
            ValueKind::TargetLogProb.values(&l, &[1]).unwrap()[0],
            -6.0
        ));
        assert!(close(ValueKind::Margin.values(&l, &[1]).unwrap()[0], -4.0));
        // Letter logits carry no lengths: the normalised kinds say which format they need.
        let err = ValueKind::AccNorm
            .values(&fixture(), &[0, 2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloze"), "{err}");
    }

    #[test]
    fn bad_golds_are_errors() {
        assert!(ValueKind::Margin.values(&fixture(), &[0]).is_err());
        assert!(ValueKind::Margin.values(&fixture(), &[0, 4]).is_err());
        let single = CandidateLogits::new(&[1], vec![0.0], None).unwrap();
        assert!(ValueKind::Margin.values(&single, &[0]).is_err());
    }

    #[test]
    fn no_masks_give_no_values() {
        let l = CandidateLogits::new(&[4], vec![], None).unwrap();
        assert!(ValueKind::Margin.values(&l, &[1]).unwrap().is_empty());
    }

    #[test]
    fn names_round_trip() {
        for k in ValueKind::ALL {
            assert_eq!(k.to_string().parse::<ValueKind>().unwrap(), k);
        }
        assert_eq!(ValueKind::default(), ValueKind::CorrectLogProb);
        let err = "nope".parse::<ValueKind>().unwrap_err().to_string();
        assert!(
            err.contains("`value`") && err.contains("logit-diff"),
            "{err}"
        );
    }

    #[test]
    fn candidate_value_is_a_value_function() {
        // Each mask's kept-count sets the gold logit: value = margin = kept - 1.
        let mut f = CandidateValue::new(3, ValueKind::Margin, vec![0], |masks: &MaskBatch| {
            let data = (0..masks.len())
                .flat_map(|r| [masks.count_kept(r) as f32, 1.0])
                .collect();
            CandidateLogits::new(&[2], data, None)
        });
        let mut masks = MaskBatch::new(3);
        masks.push_bools(&[true, true, true]);
        masks.push_bools(&[false, false, false]);
        assert_eq!(f.n_players(), 3);
        assert_eq!(f.values(&masks).unwrap(), [2.0, -1.0]);
    }
}
