//! The rows every task is made of: multiple-choice questions, sentiment examples, and the report
//! of rows that could not be read.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Where a row came from: the file and its 1-based line (the line a CSV record starts on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourceLoc {
    /// The file the row was read from.
    pub file: PathBuf,
    /// 1-based line number of the row's first line.
    pub line: usize,
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One multiple-choice question (MMLU form): `choices[answer]` is the correct choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McQuestion {
    /// Subject (MMLU subject name with underscores, or the data set's name).
    pub subject: String,
    /// The question text as stored (templates strip it where the harness does).
    pub question: String,
    /// The answer options in letter order A, B, C, ...
    pub choices: Vec<String>,
    /// Index of the correct choice in `choices` (0-based).
    pub answer: usize,
    /// 0-based index of the row among the well-formed rows of its file (lm-eval's doc id).
    pub row: usize,
    /// File and line the row was read from.
    pub source: SourceLoc,
}

/// A sentiment label (SST-2: 0 = negative, 1 = positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    /// Label 0.
    Negative,
    /// Label 1.
    Positive,
}

impl Sentiment {
    /// The label's index in the candidate order `[negative, positive]` (SST-2's own label).
    pub fn index(self) -> usize {
        match self {
            Sentiment::Negative => 0,
            Sentiment::Positive => 1,
        }
    }

    /// The label as a word (`"negative"` / `"positive"`).
    pub fn word(self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Positive => "positive",
        }
    }
}

/// One labelled sentence of a sentiment data set (SST-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentimentExample {
    /// The sentence as stored.
    pub sentence: String,
    /// Its gold label.
    pub label: Sentiment,
    /// 0-based index among the well-formed rows of its file.
    pub row: usize,
    /// File and line the row was read from.
    pub source: SourceLoc,
}

/// A row that could not be turned into a question, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MalformedRow {
    /// Where the row is.
    #[serde(flatten)]
    pub source: SourceLoc,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for MalformedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Checks the parts every multiple-choice row needs; `Err(reason)` names the first problem.
///
/// `n_choices` is the accepted range of option counts (MMLU: exactly 4).
pub fn check_question(
    question: &str,
    choices: &[String],
    answer: usize,
    n_choices: std::ops::RangeInclusive<usize>,
) -> Result<(), String> {
    if question.trim().is_empty() {
        return Err("empty question".into());
    }
    if !n_choices.contains(&choices.len()) {
        let want = if n_choices.start() == n_choices.end() {
            n_choices.start().to_string()
        } else {
            format!("{} to {}", n_choices.start(), n_choices.end())
        };
        return Err(format!("{} choices, expected {want}", choices.len()));
    }
    if answer >= choices.len() {
        return Err(format!(
            "answer index {answer} is out of range for {} choices",
            choices.len()
        ));
    }
    Ok(())
}

/// The letter of choice `i` (`0 -> 'A'`); `None` past `'Z'`.
pub fn letter(i: usize) -> Option<char> {
    u8::try_from(i)
        .ok()
        .filter(|&b| b < 26)
        .map(|b| char::from(b'A' + b))
}

/// The index of an answer letter `"A".."Z"` (trimmed, case-sensitive as the data sets store it).
pub fn letter_index(s: &str) -> Option<usize> {
    let t = s.trim();
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ 'A'..='Z'), None) => Some(c as usize - 'A' as usize),
        _ => None,
    }
}

/// One question to score: a (context, continuation) request per choice, as
/// lm-evaluation-harness builds them, and the gold choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskItem {
    /// Subject (MMLU subject, or the data set's name).
    pub subject: String,
    /// 0-based row within its subject's split file (lm-eval's doc id).
    pub row: usize,
    /// The context every choice shares (one entry, few-shot examples included), or one context
    /// per choice (winogrande's partial evaluation).
    pub contexts: Vec<String>,
    /// The continuation of each choice (`" A"`, `" " + answer text`), or one shared by every
    /// choice (winogrande).
    pub continuations: Vec<String>,
    /// The answer texts as the harness's `doc_to_choice` gives them (`"A"`, the answer text):
    /// their lengths normalise `acc_norm`. Their count is the number of choices.
    pub choices: Vec<String>,
    /// Index of the gold choice.
    pub gold: usize,
    /// Where the question's row is.
    pub source: SourceLoc,
}

impl TaskItem {
    /// Number of choices `K`.
    pub fn n_choices(&self) -> usize {
        self.choices.len()
    }

    /// The context of choice `k` (the shared one unless each choice has its own).
    pub fn context(&self, k: usize) -> &str {
        &self.contexts[if self.contexts.len() == 1 { 0 } else { k }]
    }

    /// The continuation of choice `k` (the shared one unless each choice has its own).
    pub fn continuation(&self, k: usize) -> &str {
        &self.continuations[if self.continuations.len() == 1 { 0 } else { k }]
    }

    /// The same question with its gold choice alone (then gold 0): all that a value of the gold
    /// answer's log-likelihood needs, at one pass instead of one per choice.
    pub fn gold_only(&self) -> TaskItem {
        let pick = |v: &[String]| vec![v[if v.len() == 1 { 0 } else { self.gold }].clone()];
        TaskItem {
            subject: self.subject.clone(),
            row: self.row,
            contexts: pick(&self.contexts),
            continuations: pick(&self.continuations),
            choices: vec![self.choices[self.gold].clone()],
            gold: 0,
            source: self.source.clone(),
        }
    }

    /// The first choice's context: the prompt of a question whose choices share one.
    pub fn prompt(&self) -> &str {
        &self.contexts[0]
    }

    /// Checks the shape: contexts and continuations one or one per choice, the gold in range.
    pub fn check(&self) -> std::result::Result<(), String> {
        let k = self.choices.len();
        for (what, n) in [
            ("contexts", self.contexts.len()),
            ("continuations", self.continuations.len()),
        ] {
            if n != 1 && n != k {
                return Err(format!("{n} {what} for {k} choices"));
            }
        }
        if self.gold >= k {
            return Err(format!(
                "gold {} is out of range for {k} choices",
                self.gold
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gold_only_keeps_the_gold_choice_of_shared_and_per_choice_texts() {
        let item = |contexts: &[&str], continuations: &[&str]| TaskItem {
            subject: "s".into(),
            row: 3,
            contexts: strings(contexts),
            continuations: strings(continuations),
            choices: strings(&["a", "bb", "ccc"]),
            gold: 2,
            source: SourceLoc {
                file: "f".into(),
                line: 4,
            },
        };
        // Shared context, one continuation per choice (arc, piqa).
        let g = item(&["Q:"], &[" a", " bb", " ccc"]).gold_only();
        assert_eq!((g.context(0), g.continuation(0), g.gold), ("Q:", " ccc", 0));
        assert_eq!(g.choices, ["ccc"]);
        // One context per choice, shared continuation (winogrande).
        let g = item(&["x a", "x bb", "x ccc"], &[" rest"]).gold_only();
        assert_eq!((g.context(0), g.continuation(0)), ("x ccc", " rest"));
        assert!(g.check().is_ok());
    }

    #[test]
    fn letters_round_trip() {
        for i in 0..26 {
            let c = letter(i).unwrap();
            assert_eq!(letter_index(&c.to_string()), Some(i));
        }
        assert_eq!(letter(26), None);
        assert_eq!(letter_index(" C "), Some(2));
        assert_eq!(letter_index("c"), None);
        assert_eq!(letter_index("AB"), None);
        assert_eq!(letter_index(""), None);
    }

    #[test]
    fn check_question_names_the_problem() {
        let four = strings(&["a", "b", "c", "d"]);
        assert!(check_question("q", &four, 3, 4..=4).is_ok());
        assert_eq!(
            check_question("  ", &four, 0, 4..=4).unwrap_err(),
            "empty question"
        );
        assert_eq!(
            check_question("q", &four[..3], 0, 4..=4).unwrap_err(),
            "3 choices, expected 4"
        );
        assert_eq!(
            check_question("q", &four, 4, 4..=4).unwrap_err(),
            "answer index 4 is out of range for 4 choices"
        );
        assert_eq!(
            check_question("q", &four[..1], 0, 2..=5).unwrap_err(),
            "1 choices, expected 2 to 5"
        );
    }
}
