//! Prompt templates: lm-evaluation-harness's default MMLU template (byte-identical), the same
//! letter layout for ARC and SciQ, lm-eval's SST-2 template, and few-shot assembly.
//!
//! lm-eval builds a context as `description + (shot + "\n\n")* + question`, where a shot is the
//! question block, the target delimiter `" "` and its answer. The continuation scored after the
//! context is `" " + answer` (`" A"`, `" positive"`).
//!
//! ARC and SciQ use the MMLU letter layout (description "about science") so that one forward
//! pass scores every answer; lm-eval's own ARC/SciQ tasks score the answer texts instead
//! (`"Question: ...\nAnswer:"` + each choice), which needs one pass per choice.

use super::question::{letter, McQuestion, Sentiment, SentimentExample};

/// lm-eval's separator between few-shot examples (and before the question).
pub const FEWSHOT_DELIMITER: &str = "\n\n";
/// lm-eval's separator between a context and its continuation.
pub const TARGET_DELIMITER: &str = " ";

/// Python's `str.isspace()` for one character: Unicode white space plus the separators
/// `\x1c`..`\x1f` (what `strip`, `lstrip` and `rstrip` remove).
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// The MMLU subject description line: `"The following are multiple choice questions (with
/// answers) about high school biology.\n\n"` (underscores in the subject become spaces).
pub fn mmlu_description(subject: &str) -> String {
    format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject.split('_').collect::<Vec<_>>().join(" ")
    )
}

/// A question block: `"question.strip()\nA. c0\nB. c1\n...\nAnswer:"` (choices kept as stored).
pub fn mc_block(q: &McQuestion) -> String {
    let mut s = py_strip(&q.question).to_string();
    for (i, c) in q.choices.iter().enumerate() {
        s.push('\n');
        s.push(letter(i).unwrap_or('?'));
        s.push_str(". ");
        s.push_str(c);
    }
    s.push_str("\nAnswer:");
    s
}

/// The continuations scored for a question with `k` choices: `[" A", " B", ...]`.
pub fn letter_continuations(k: usize) -> Vec<String> {
    (0..k)
        .map(|i| format!("{TARGET_DELIMITER}{}", letter(i).unwrap_or('?')))
        .collect()
}

/// The choice texts of a letter prompt with `k` choices: `["A", "B", ...]`.
pub fn letters(k: usize) -> Vec<String> {
    (0..k)
        .map(|i| letter(i).unwrap_or('?').to_string())
        .collect()
}

/// The full multiple-choice context: `description`, then each shot with its answer letter and
/// `"\n\n"`, then the question block (no trailing space; the continuation adds `" A"`).
pub fn mc_prompt(description: &str, shots: &[&McQuestion], q: &McQuestion) -> String {
    let mut s = description.to_string();
    for shot in shots {
        s.push_str(&mc_block(shot));
        s.push_str(TARGET_DELIMITER);
        s.push(letter(shot.answer).unwrap_or('?'));
        s.push_str(FEWSHOT_DELIMITER);
    }
    s.push_str(&mc_block(q));
    s
}

/// lm-eval's SST-2 block: `"sentence\nQuestion: Is this sentence positive or negative?\nAnswer:"`.
pub fn sst2_block(x: &SentimentExample) -> String {
    format!(
        "{}\nQuestion: Is this sentence positive or negative?\nAnswer:",
        x.sentence
    )
}

/// The SST-2 continuations in label order: `[" negative", " positive"]`.
pub fn sst2_continuations() -> Vec<String> {
    [Sentiment::Negative, Sentiment::Positive]
        .iter()
        .map(|s| format!("{TARGET_DELIMITER}{}", s.word()))
        .collect()
}

/// The SST-2 context with few-shot examples (lm-eval's glue/sst2 task has no description).
pub fn sst2_prompt(shots: &[&SentimentExample], x: &SentimentExample) -> String {
    let mut s = String::new();
    for shot in shots {
        s.push_str(&sst2_block(shot));
        s.push_str(TARGET_DELIMITER);
        s.push_str(shot.label.word());
        s.push_str(FEWSHOT_DELIMITER);
    }
    s.push_str(&sst2_block(x));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::question::SourceLoc;

    fn q(question: &str, choices: &[&str], answer: usize) -> McQuestion {
        McQuestion {
            subject: "abstract_algebra".into(),
            question: question.into(),
            choices: choices.iter().map(|s| s.to_string()).collect(),
            answer,
            row: 0,
            source: SourceLoc {
                file: "x".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn zero_shot_matches_the_harness_layout() {
        let x = q("  What is 2+2?\n", &["3", " 4", "5", "6 "], 1);
        let p = mc_prompt(&mmlu_description(&x.subject), &[], &x);
        assert_eq!(
            p,
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n\
             What is 2+2?\nA. 3\nB.  4\nC. 5\nD. 6 \nAnswer:"
        );
        assert_eq!(letter_continuations(4), [" A", " B", " C", " D"]);
    }

    #[test]
    fn few_shot_examples_carry_their_answers() {
        let s1 = q("S1", &["a", "b", "c", "d"], 2);
        let s2 = q("S2", &["e", "f", "g", "h"], 0);
        let x = q("Q", &["i", "j", "k", "l"], 3);
        let p = mc_prompt("DESC\n\n", &[&s1, &s2], &x);
        assert_eq!(
            p,
            "DESC\n\nS1\nA. a\nB. b\nC. c\nD. d\nAnswer: C\n\n\
             S2\nA. e\nB. f\nC. g\nD. h\nAnswer: A\n\n\
             Q\nA. i\nB. j\nC. k\nD. l\nAnswer:"
        );
    }

    #[test]
    fn python_strip_semantics() {
        assert_eq!(py_strip("\x1c\u{a0} a b \t\n"), "a b");
    }

    #[test]
    fn sst2_template() {
        let ex = |s: &str, label| SentimentExample {
            sentence: s.into(),
            label,
            row: 0,
            source: SourceLoc {
                file: "x".into(),
                line: 1,
            },
        };
        let shot = ex("great fun . ", Sentiment::Positive);
        let x = ex("a dull mess . ", Sentiment::Negative);
        assert_eq!(
            sst2_prompt(&[&shot], &x),
            "great fun . \nQuestion: Is this sentence positive or negative?\nAnswer: positive\n\n\
             a dull mess . \nQuestion: Is this sentence positive or negative?\nAnswer:"
        );
        assert_eq!(sst2_continuations(), [" negative", " positive"]);
    }
}
