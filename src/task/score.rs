//! Scoring: per-question candidate log-probs and predictions, and the accuracy table
//! (per subject and micro-averaged over questions, lm-eval's `weight_by_size`).

use super::logits::{argmax, log_softmax, CandidateLogits};
use super::question::TaskItem;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scored question: what `--json` writes per question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionScore {
    /// The question's subject.
    pub subject: String,
    /// Its 0-based row within its subject's split.
    pub row: usize,
    /// Predicted candidate (argmax, ties to the first).
    pub pred: usize,
    /// Gold candidate.
    pub gold: usize,
    /// Log-probs (nats) of the candidates, normalised over the candidates.
    pub logprobs: Vec<f64>,
    /// Log-likelihoods (nats) over the full vocabulary, as lm-eval reports them (present when
    /// the logits came with their logsumexp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loglikelihoods: Option<Vec<f64>>,
}

/// Accuracy of one subject (or of all questions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectAccuracy {
    /// Subject name (`"all"` for the micro-average).
    pub subject: String,
    /// Number of questions.
    pub n: usize,
    /// Number answered correctly.
    pub correct: usize,
    /// `correct / n` in [0, 1].
    pub accuracy: f64,
}

/// The evaluation of one set of questions under one mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Per-question scores in question order.
    pub questions: Vec<QuestionScore>,
    /// Per-subject accuracy, subjects sorted by name.
    pub subjects: Vec<SubjectAccuracy>,
    /// Micro-averaged accuracy over all questions.
    pub total: SubjectAccuracy,
}

/// Scores `items` from the candidate logits of mask `mask` (`logits` laid out as the items).
pub fn evaluate(items: &[TaskItem], logits: &CandidateLogits, mask: usize) -> Result<Evaluation> {
    check_layout(items, logits)?;
    if mask >= logits.n_masks() {
        return Err(Error::invalid(
            "mask",
            format!("mask {mask} out of range for {} masks", logits.n_masks()),
        ));
    }
    let questions: Vec<QuestionScore> = items
        .iter()
        .enumerate()
        .map(|(q, item)| {
            let l = logits.get(mask, q);
            QuestionScore {
                subject: item.subject.clone(),
                row: item.row,
                pred: argmax(l),
                gold: item.gold,
                logprobs: log_softmax(l),
                loglikelihoods: logits
                    .logsumexp(mask, q)
                    .map(|lse| l.iter().map(|&x| f64::from(x) - f64::from(lse)).collect()),
            }
        })
        .collect();
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &questions {
        let e = per.entry(s.subject.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(s.pred == s.gold);
    }
    let subjects = per
        .iter()
        .map(|(s, &(n, c))| accuracy(s, n, c))
        .collect::<Vec<_>>();
    let (n, c) = per
        .values()
        .fold((0, 0), |(n, c), &(n2, c2)| (n + n2, c + c2));
    let total = accuracy("all", n, c);
    Ok(Evaluation {
        questions,
        subjects,
        total,
    })
}

/// Checks that `logits` has one candidate row per item, with as many candidates as it has.
pub fn check_layout(items: &[TaskItem], logits: &CandidateLogits) -> Result<()> {
    if logits.n_questions() != items.len() {
        return Err(Error::invalid(
            "candidate logits",
            format!(
                "{} questions of logits for {} questions",
                logits.n_questions(),
                items.len()
            ),
        ));
    }
    for (q, item) in items.iter().enumerate() {
        let k = logits.n_choices(q);
        if k != item.continuations.len() {
            return Err(Error::invalid(
                "candidate logits",
                format!(
                    "question {q} has {k} candidate logits for {} continuations",
                    item.continuations.len()
                ),
            ));
        }
    }
    Ok(())
}

fn accuracy(subject: &str, n: usize, correct: usize) -> SubjectAccuracy {
    SubjectAccuracy {
        subject: subject.to_string(),
        n,
        correct,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
    }
}

impl Evaluation {
    /// The accuracy table as text: one line per subject, then the micro-average.
    pub fn render_table(&self) -> String {
        let width = self
            .subjects
            .iter()
            .map(|s| s.subject.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>7}  {:>8}",
            "subject", "n", "correct", "accuracy"
        );
        let line = |out: &mut String, s: &SubjectAccuracy| {
            let _ = writeln!(
                out,
                "{:<width$}  {:>6}  {:>7}  {:>8.4}",
                s.subject, s.n, s.correct, s.accuracy
            );
        };
        for s in &self.subjects {
            line(&mut out, s);
        }
        let _ = writeln!(out, "{}", "-".repeat(width + 27));
        line(&mut out, &self.total);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::question::SourceLoc;

    fn item(subject: &str, row: usize, gold: usize, k: usize) -> TaskItem {
        TaskItem {
            subject: subject.into(),
            row,
            prompt: String::new(),
            continuations: crate::task::prompt::letter_continuations(k),
            gold,
            source: SourceLoc {
                file: "f".into(),
                line: row + 1,
            },
        }
    }

    #[test]
    fn micro_average_and_per_subject() {
        // b: 2 questions, 1 right; a: 1 question, right. Micro 2/3, macro would be 0.75.
        let items = [item("b", 0, 0, 4), item("b", 1, 2, 4), item("a", 0, 1, 2)];
        let logits = CandidateLogits::from_nested(
            &[vec![
                vec![2.0, 1.0, 0.0, 0.0],
                vec![0.0, 5.0, 1.0, 5.0],
                vec![0.0, 0.5],
            ]],
            None,
        )
        .unwrap();
        let ev = evaluate(&items, &logits, 0).unwrap();
        let preds: Vec<usize> = ev.questions.iter().map(|q| q.pred).collect();
        assert_eq!(preds, [0, 1, 1]);
        assert_eq!(ev.subjects[0].subject, "a");
        assert_eq!((ev.subjects[0].n, ev.subjects[0].correct), (1, 1));
        assert_eq!((ev.subjects[1].n, ev.subjects[1].correct), (2, 1));
        assert_eq!((ev.total.n, ev.total.correct), (3, 2));
        assert!((ev.total.accuracy - 2.0 / 3.0).abs() < 1e-12);
        // Log-probs of question 3: softmax over [0, 0.5].
        let p1 = 1.0 / (1.0 + (-0.5f64).exp());
        assert!((ev.questions[2].logprobs[1] - p1.ln()).abs() < 1e-6);
        let table = ev.render_table();
        assert!(table.contains("all"));
        assert!(table.lines().count() == 5, "{table}");
        let json = serde_json::to_value(&ev.questions[0]).unwrap();
        assert_eq!(json["subject"], "b");
        assert_eq!(json["gold"], 0);
        assert_eq!(json["logprobs"].as_array().unwrap().len(), 4);
        assert!(json.get("loglikelihoods").is_none());
    }

    #[test]
    fn full_vocab_loglikelihoods_when_logsumexp_is_given() {
        let items = [item("a", 0, 1, 2)];
        let logits = CandidateLogits::new(&[2], vec![1.0, 2.0], Some(vec![3.0])).unwrap();
        let ev = evaluate(&items, &logits, 0).unwrap();
        assert_eq!(ev.questions[0].loglikelihoods, Some(vec![-2.0, -1.0]));
    }

    #[test]
    fn layout_mismatch_is_an_error() {
        let items = [item("a", 0, 0, 4)];
        let logits = CandidateLogits::new(&[2], vec![0.0, 1.0], None).unwrap();
        assert!(evaluate(&items, &logits, 0).is_err());
        let ok = CandidateLogits::new(&[4], vec![0.0; 4], None).unwrap();
        assert!(evaluate(&items, &ok, 1).is_err());
    }
}
