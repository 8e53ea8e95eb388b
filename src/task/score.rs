//! Scoring: per-question candidate scores and predictions (`acc`, and for cloze tasks the
//! harness's `acc_norm` and `acc_bytes`), and the accuracy table (per subject and micro-averaged
//! over questions, lm-eval's `weight_by_size`).

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
    /// Gold choice.
    pub gold: usize,
    /// Predicted choice: the argmax of the log-likelihoods (ties to the first), the harness's `acc`.
    pub pred: usize,
    /// Predicted choice by log-likelihood per answer character, the harness's `acc_norm` (cloze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pred_norm: Option<usize>,
    /// Predicted choice by log-likelihood per answer byte, the harness's `acc_bytes` (cloze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pred_bytes: Option<usize>,
    /// Log-probs (nats) of the choices, normalised over the choices.
    pub logprobs: Vec<f64>,
    /// Log-likelihoods (nats) over the full vocabulary, one per choice in the data's order, as
    /// lm-eval reports them: summed over a continuation's tokens (cloze), or the letter's
    /// (present when the letter logits came with their logsumexp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loglikelihoods: Option<Vec<f64>>,
    /// Each answer's length in characters, `acc_norm`'s normaliser (cloze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lengths: Option<Vec<usize>>,
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
    /// `correct / n` in [0, 1] (the harness's `acc`).
    pub accuracy: f64,
    /// The harness's `acc_norm` in [0, 1] (cloze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// The harness's `acc_bytes` in [0, 1] (cloze).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_bytes: Option<f64>,
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

/// Scores `items` from the candidate scores of mask `mask` (`logits` laid out as the items).
pub fn evaluate(items: &[TaskItem], logits: &CandidateLogits, mask: usize) -> Result<Evaluation> {
    check_layout(items, logits)?;
    if mask >= logits.n_masks() {
        return Err(Error::invalid(
            "mask",
            format!("mask {mask} out of range for {} masks", logits.n_masks()),
        ));
    }
    let cloze = logits.is_loglikelihood();
    let questions: Vec<QuestionScore> = items
        .iter()
        .enumerate()
        .map(|(q, item)| {
            let l = logits.get(mask, q);
            let ll: Option<Vec<f64>> = match logits.logsumexp(mask, q) {
                _ if cloze => Some(l.iter().map(|&x| f64::from(x)).collect()),
                Some(lse) => Some(l.iter().map(|&x| f64::from(x) - f64::from(lse)).collect()),
                None => None,
            };
            let by = |len: fn(&str) -> usize| {
                let per: Vec<f64> = l
                    .iter()
                    .zip(&item.choices)
                    .map(|(&x, c)| f64::from(x) / len(c) as f64)
                    .collect();
                argmax(&per)
            };
            QuestionScore {
                subject: item.subject.clone(),
                row: item.row,
                gold: item.gold,
                pred: argmax(l),
                pred_norm: cloze.then(|| by(|c| c.chars().count())),
                pred_bytes: cloze.then(|| by(str::len)),
                logprobs: log_softmax(l),
                loglikelihoods: ll,
                lengths: cloze.then(|| item.choices.iter().map(|c| c.chars().count()).collect()),
            }
        })
        .collect();
    let mut per: BTreeMap<&str, Vec<&QuestionScore>> = BTreeMap::new();
    for s in &questions {
        per.entry(s.subject.as_str()).or_default().push(s);
    }
    let subjects = per.iter().map(|(s, qs)| accuracy(s, qs)).collect();
    let total = accuracy("all", &questions.iter().collect::<Vec<_>>());
    Ok(Evaluation {
        questions,
        subjects,
        total,
    })
}

/// Checks that `logits` has one candidate row per item, with as many candidates as it has choices.
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
        if k != item.n_choices() {
            return Err(Error::invalid(
                "candidate logits",
                format!(
                    "question {q} has {k} candidate scores for {} choices",
                    item.n_choices()
                ),
            ));
        }
    }
    Ok(())
}

/// The accuracy of `questions` (`acc_norm` and `acc_bytes` when they were scored as cloze).
fn accuracy(subject: &str, questions: &[&QuestionScore]) -> SubjectAccuracy {
    let n = questions.len();
    let share = |hits: usize| if n == 0 { 0.0 } else { hits as f64 / n as f64 };
    let rate = |pred: fn(&QuestionScore) -> Option<usize>| {
        let hits: Option<usize> = questions
            .iter()
            .map(|q| pred(q).map(|p| usize::from(p == q.gold)))
            .sum();
        hits.map(share)
    };
    let correct = questions.iter().filter(|q| q.pred == q.gold).count();
    SubjectAccuracy {
        subject: subject.to_string(),
        n,
        correct,
        accuracy: share(correct),
        acc_norm: rate(|q| q.pred_norm).filter(|_| n > 0),
        acc_bytes: rate(|q| q.pred_bytes).filter(|_| n > 0),
    }
}

impl Evaluation {
    /// The accuracy table as text: one line per subject, then the micro-average; with an
    /// `acc_norm` column when `with_acc_norm` and the questions were scored as cloze.
    pub fn render_table(&self, with_acc_norm: bool) -> String {
        let norm = with_acc_norm && self.total.acc_norm.is_some();
        let width = self
            .subjects
            .iter()
            .map(|s| s.subject.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        let mut out = String::new();
        let _ = write!(
            out,
            "{:<width$}  {:>6}  {:>7}  {:>8}",
            "subject", "n", "correct", "accuracy"
        );
        let _ = writeln!(out, "{}", if norm { "  acc_norm" } else { "" });
        let line = |out: &mut String, s: &SubjectAccuracy| {
            let _ = write!(
                out,
                "{:<width$}  {:>6}  {:>7}  {:>8.4}",
                s.subject, s.n, s.correct, s.accuracy
            );
            match s.acc_norm.filter(|_| norm) {
                Some(a) => writeln!(out, "  {a:>8.4}"),
                None => writeln!(out),
            }
            .ok();
        };
        for s in &self.subjects {
            line(&mut out, s);
        }
        let _ = writeln!(out, "{}", "-".repeat(width + if norm { 37 } else { 27 }));
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
            contexts: vec![String::new()],
            continuations: crate::task::prompt::letter_continuations(k),
            choices: crate::task::prompt::letters(k),
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
        let table = ev.render_table(true);
        assert!(table.contains("all"));
        assert!(table.lines().count() == 5, "{table}");
        let json = serde_json::to_value(&ev.questions[0]).unwrap();
        assert_eq!(json["subject"], "b");
        assert_eq!(json["gold"], 0);
        assert_eq!(json["logprobs"].as_array().unwrap().len(), 4);
        assert!(json.get("loglikelihoods").is_none());
        assert!(json.get("pred_norm").is_none() && ev.total.acc_norm.is_none());
    }

    #[test]
    fn cloze_scores_report_acc_norm_and_bytes() {
        // Question 0: "a" (-2) and "a long answer" (-6): acc picks 0, acc_norm 1 (-6/13 > -2).
        // Question 1: "é" (1 char, 2 bytes, -1.5) and "ab" (-2.5): acc picks 0, by characters
        // 1 (-1.25 > -1.5), by bytes 0 (-0.75 > -1.25).
        let mut q = item("x", 0, 1, 2);
        q.choices = vec!["a".into(), "a long answer".into()];
        let mut r = item("x", 1, 0, 2);
        r.choices = vec!["é".into(), "ab".into()];
        let l = CandidateLogits::loglikelihoods(
            &[2, 2],
            vec![-2.0, -6.0, -1.5, -2.5],
            vec![1.0, 13.0, 1.0, 2.0],
        )
        .unwrap();
        let ev = evaluate(&[q, r], &l, 0).unwrap();
        let (a, b) = (&ev.questions[0], &ev.questions[1]);
        assert_eq!((a.pred, a.pred_norm, a.pred_bytes), (0, Some(1), Some(1)));
        assert_eq!((b.pred, b.pred_norm, b.pred_bytes), (0, Some(1), Some(0)));
        assert_eq!(a.loglikelihoods, Some(vec![-2.0, -6.0]));
        assert_eq!(a.lengths, Some(vec![1, 13]));
        assert_eq!(ev.total.accuracy, 0.5);
        assert_eq!(
            (ev.total.acc_norm, ev.total.acc_bytes),
            (Some(0.5), Some(1.0))
        );
        assert!(ev.render_table(true).contains("acc_norm"));
        assert!(!ev.render_table(false).contains("acc_norm"));
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
