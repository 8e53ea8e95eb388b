//! lm-evaluation-harness 0.4.13's default zero-shot templates of its cloze tasks (arc_easy,
//! arc_challenge, openbookqa, sciq, piqa, hellaswag, winogrande, boolq, copa): each data row
//! becomes one (context, continuation) request per choice, the continuation being the target
//! delimiter `" "` and the answer text, scored by its summed log-likelihood.
//!
//! Rows are read as the Hugging Face data sets store them (the JSONL `models/fetch.sh` exports);
//! the reference prompts in `tests/data/lmeval_cloze_sample.json` pin every template byte for
//! byte.

use super::prompt::{is_py_space, py_strip, TARGET_DELIMITER};
use super::question::{MalformedRow, SourceLoc, TaskItem};
use super::read::read_jsonl;
use crate::Result;
use serde_json::Value;
use std::path::Path;

/// One harness template (a task's `doc_to_text`, `doc_to_choice`, `doc_to_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClozeTemplate {
    /// arc_easy, arc_challenge: `"Question: {question}\nAnswer:"`, choices `choices.text`, gold
    /// the index of `answerKey` in `choices.label`.
    Arc,
    /// openbookqa: the `question_stem` as is, choices `choices.text`, gold the index of
    /// `answerKey.lstrip()` in `choices.label`.
    OpenBookQa,
    /// sciq: `"{support.lstrip()}\nQuestion: {question}\nAnswer:"`, choices the three
    /// distractors then `correct_answer` (gold 3).
    Sciq,
    /// piqa: `"Question: {goal}\nAnswer:"`, choices `[sol1, sol2]`, gold `label`.
    Piqa,
    /// hellaswag: `activity_label + ": " + ctx_a + " " + ctx_b.capitalize()` and the endings,
    /// each through the harness's `preprocess`; gold `int(label)`.
    Hellaswag,
    /// winogrande (partial evaluation): one context per option, the sentence up to the blank
    /// with the option filled in; the shared continuation is the rest of the sentence, stripped;
    /// gold `answer` `"1"`/`"2"`.
    Winogrande,
    /// boolq: `"{passage}\nQuestion: {question}?\nAnswer:"`, choices `["no", "yes"]`, gold
    /// `label` (or the `answer` boolean of google/boolq's rows).
    Boolq,
    /// copa: `premise.strip()` without its last character, then `" because"` (cause) or
    /// `" therefore"` (effect); choices `" " + choice` with its first letter lowered.
    Copa,
}

impl ClozeTemplate {
    /// Whether the harness reports `acc_norm` for the task (winogrande, boolq and copa: `acc` only).
    pub fn reports_acc_norm(self) -> bool {
        !matches!(
            self,
            ClozeTemplate::Winogrande | ClozeTemplate::Boolq | ClozeTemplate::Copa
        )
    }

    /// The requests of one data row, or the reason it cannot be rendered.
    pub fn render(self, v: &Value) -> std::result::Result<Rendered, String> {
        match self {
            ClozeTemplate::Arc => {
                let question = text(v, "question")?;
                let (choices, gold) = labelled_choices(v, |k| k)?;
                Ok(Rendered::shared(
                    format!("Question: {question}\nAnswer:"),
                    choices,
                    gold,
                ))
            }
            ClozeTemplate::OpenBookQa => {
                let question = text(v, "question_stem")?;
                let (choices, gold) = labelled_choices(v, py_lstrip)?;
                Ok(Rendered::shared(question.to_string(), choices, gold))
            }
            ClozeTemplate::Sciq => {
                let support = py_lstrip(text(v, "support")?);
                let question = text(v, "question")?;
                let choices = [
                    "distractor1",
                    "distractor2",
                    "distractor3",
                    "correct_answer",
                ]
                .iter()
                .map(|k| text(v, k).map(str::to_string))
                .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Rendered::shared(
                    format!("{support}\nQuestion: {question}\nAnswer:"),
                    choices,
                    3,
                ))
            }
            ClozeTemplate::Piqa => {
                let goal = text(v, "goal")?;
                let choices = vec![text(v, "sol1")?.to_string(), text(v, "sol2")?.to_string()];
                let gold = index(v, "label")?;
                Ok(Rendered::shared(
                    format!("Question: {goal}\nAnswer:"),
                    choices,
                    gold,
                ))
            }
            ClozeTemplate::Hellaswag => {
                let ctx = format!("{} {}", text(v, "ctx_a")?, py_capitalize(text(v, "ctx_b")?));
                let query = hellaswag_preprocess(&format!("{}: {ctx}", text(v, "activity_label")?));
                let endings = v
                    .get("endings")
                    .ok_or("missing field `endings`")?
                    .as_array()
                    .ok_or("field `endings` is not a list")?;
                let choices = endings
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(hellaswag_preprocess)
                            .ok_or_else(|| format!("field `endings` holds a non-string: {e}"))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let gold = index(v, "label")?;
                Ok(Rendered::shared(query, choices, gold))
            }
            ClozeTemplate::Winogrande => {
                let sentence = text(v, "sentence")?;
                let blank = sentence
                    .find('_')
                    .ok_or("field `sentence` has no blank `_`")?;
                let before = &sentence[..blank];
                let contexts = vec![
                    format!("{before}{}", text(v, "option1")?),
                    format!("{before}{}", text(v, "option2")?),
                ];
                let rest = py_strip(&sentence[blank + 1..]);
                let gold = match text(v, "answer")? {
                    "1" => 0,
                    "2" => 1,
                    other => return Err(format!("answer {other:?} is not \"1\" or \"2\"")),
                };
                Ok(Rendered {
                    choices: contexts.clone(),
                    contexts,
                    continuations: vec![format!("{TARGET_DELIMITER}{rest}")],
                    gold,
                })
            }
            ClozeTemplate::Boolq => {
                let passage = text(v, "passage")?;
                let question = text(v, "question")?;
                let gold = match (v.get("label"), v.get("answer")) {
                    (Some(_), _) => index(v, "label")?,
                    (None, Some(Value::Bool(b))) => usize::from(*b),
                    (None, Some(other)) => return Err(format!("answer {other} is not a boolean")),
                    (None, None) => return Err("missing field `label` (or `answer`)".into()),
                };
                Ok(Rendered::shared(
                    format!("{passage}\nQuestion: {question}?\nAnswer:"),
                    vec!["no".into(), "yes".into()],
                    gold,
                ))
            }
            ClozeTemplate::Copa => {
                let connector = match text(v, "question")? {
                    "cause" => "because",
                    "effect" => "therefore",
                    other => return Err(format!("question {other:?} is not cause or effect")),
                };
                let premise = py_strip(text(v, "premise")?);
                let mut cut = premise.chars();
                cut.next_back();
                let choices = ["choice1", "choice2"]
                    .iter()
                    .map(|k| text(v, k).map(|c| format!(" {}", lower_first(c))))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let gold = index(v, "label")?;
                Ok(Rendered::shared(
                    format!("{} {connector}", cut.as_str()),
                    choices,
                    gold,
                ))
            }
        }
    }
}

/// A row's requests before it becomes a [`TaskItem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One shared context, or one per choice.
    pub contexts: Vec<String>,
    /// One continuation per choice, or one shared.
    pub continuations: Vec<String>,
    /// The answer texts (`doc_to_choice`).
    pub choices: Vec<String>,
    /// The gold choice.
    pub gold: usize,
}

impl Rendered {
    /// A context shared by every choice, each choice's continuation `" " + choice`.
    fn shared(context: String, choices: Vec<String>, gold: usize) -> Rendered {
        Rendered {
            contexts: vec![context],
            continuations: choices
                .iter()
                .map(|c| format!("{TARGET_DELIMITER}{c}"))
                .collect(),
            choices,
            gold,
        }
    }
}

/// Reads a cloze data set's JSONL rows through `template`: one item per well-formed row (row
/// index among the well-formed rows, subject `subject`), one [`MalformedRow`] per other row.
pub fn read_cloze_jsonl(
    path: &Path,
    template: ClozeTemplate,
    subject: &str,
    report: &mut Vec<MalformedRow>,
) -> Result<Vec<TaskItem>> {
    let lines = read_jsonl(path)?;
    Ok(cloze_from_lines(path, lines, template, subject, report))
}

/// [`read_cloze_jsonl`] on the lines of a JSONL file (from `read_jsonl`); `path` names it.
pub(crate) fn cloze_from_lines(
    path: &Path,
    lines: Vec<(usize, std::result::Result<Value, String>)>,
    template: ClozeTemplate,
    subject: &str,
    report: &mut Vec<MalformedRow>,
) -> Vec<TaskItem> {
    let mut out = Vec::new();
    for (line, value) in lines {
        let source = SourceLoc {
            file: path.to_path_buf(),
            line,
        };
        let item = value.and_then(|v| template.render(&v)).and_then(|r| {
            let item = TaskItem {
                subject: subject.to_string(),
                row: out.len(),
                contexts: r.contexts,
                continuations: r.continuations,
                choices: r.choices,
                gold: r.gold,
                source: source.clone(),
            };
            match item.n_choices() {
                0 | 1 => Err(format!(
                    "{} choice(s), expected 2 or more",
                    item.n_choices()
                )),
                _ => item.check().map(|()| item),
            }
        });
        match item {
            Ok(item) => out.push(item),
            Err(reason) => report.push(MalformedRow { source, reason }),
        }
    }
    out
}

/// The string field `key` of `v`, or a reason naming it.
fn text<'a>(v: &'a Value, key: &str) -> std::result::Result<&'a str, String> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("field `{key}` is not a string: {other}")),
        None => Err(format!("missing field `{key}`")),
    }
}

/// An index field: a non-negative integer or a string holding one (hellaswag's `"3"`).
fn index(v: &Value, key: &str) -> std::result::Result<usize, String> {
    let bad = || format!("field `{key}` is not an index: {}", v[key]);
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
        None => Err(format!("missing field `{key}`")),
    }
}

/// ARC-style `choices: {text, label}` and the index of `answerKey` (passed through `key`) among
/// the labels.
fn labelled_choices(
    v: &Value,
    key: impl Fn(&str) -> &str,
) -> std::result::Result<(Vec<String>, usize), String> {
    let list = |field: &str| -> std::result::Result<Vec<String>, String> {
        v.get("choices")
            .and_then(|c| c.get(field))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("field `choices.{field}` is missing or not a list"))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("field `choices.{field}` holds a non-string: {x}"))
            })
            .collect()
    };
    let texts = list("text")?;
    let labels = list("label")?;
    if labels.len() != texts.len() {
        return Err(format!(
            "{} choice labels for {} choice texts",
            labels.len(),
            texts.len()
        ));
    }
    let answer = key(text(v, "answerKey")?);
    let gold = labels
        .iter()
        .position(|l| l == answer)
        .ok_or_else(|| format!("answerKey {answer:?} matches no choice label"))?;
    Ok((texts, gold))
}

/// Python's `str.lstrip()`.
fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(is_py_space)
}

/// Python's `str.capitalize()`: the first character upper-cased, the rest lower-cased.
fn py_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
    }
}

/// copa's `convert_choice`: the first character lower-cased, the rest as is.
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => first.to_lowercase().chain(chars).collect(),
    }
}

/// hellaswag's `preprocess`: strip, `" [title]"` -> `". "`, drop every `[...]` (no newline
/// inside, shortest match), then each `"  "` -> `" "` (one pass, left to right).
fn hellaswag_preprocess(s: &str) -> String {
    let s = py_strip(s).replace(" [title]", ". ");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find([']', '\n']) {
            Some(close) if after.as_bytes()[close] == b']' => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hellaswag_preprocess_as_the_harness() {
        assert_eq!(
            hellaswag_preprocess("  A man [title] walks. [header] Then  he [x]runs.  "),
            "A man. walks. Then he runs."
        );
        // `.` does not cross a newline: the bracket stays; three spaces become two.
        assert_eq!(hellaswag_preprocess("a [b\nc] d   e"), "a [b\nc] d  e");
        assert_eq!(hellaswag_preprocess("[a [b] c"), " c");
        assert_eq!(py_capitalize("the LADY"), "The lady");
        assert_eq!(lower_first("The Sun"), "the Sun");
    }

    #[test]
    fn winogrande_fills_the_blank_and_shares_the_rest() {
        let row = json!({"sentence": "Sarah was better than Maria so _ got the easy cases. ",
                         "option1": "Sarah", "option2": "Maria", "answer": "2"});
        let r = ClozeTemplate::Winogrande.render(&row).unwrap();
        assert_eq!(
            r.contexts,
            [
                "Sarah was better than Maria so Sarah",
                "Sarah was better than Maria so Maria"
            ]
        );
        assert_eq!(r.continuations, [" got the easy cases."]);
        assert_eq!(r.choices, r.contexts);
        assert_eq!(r.gold, 1);
        let no_blank = json!({"sentence": "x", "option1": "a", "option2": "b", "answer": "1"});
        assert!(ClozeTemplate::Winogrande
            .render(&no_blank)
            .unwrap_err()
            .contains("blank"));
    }

    #[test]
    fn copa_connects_premise_and_lowered_choice() {
        let row = json!({"premise": "The man turned on the faucet.", "choice1": "The toilet filled.",
                         "choice2": "Water flowed.", "question": "effect", "label": 1});
        let r = ClozeTemplate::Copa.render(&row).unwrap();
        assert_eq!(r.contexts, ["The man turned on the faucet therefore"]);
        assert_eq!(r.choices, [" the toilet filled.", " water flowed."]);
        assert_eq!(r.continuations, ["  the toilet filled.", "  water flowed."]);
        assert_eq!(r.gold, 1);
    }

    #[test]
    fn unreadable_rows_are_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validation.jsonl");
        let rows = [
            r#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 1}"#,
            r#"{"goal": "g", "sol1": "a", "label": 0}"#,
            "",
            r#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}"#,
            "not json",
        ];
        std::fs::write(&path, rows.join("\n")).unwrap();
        let mut report = Vec::new();
        let items = read_cloze_jsonl(&path, ClozeTemplate::Piqa, "piqa", &mut report).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!((items[0].row, items[0].source.line), (0, 1));
        let lines: Vec<(usize, &str)> = report
            .iter()
            .map(|m| (m.source.line, m.reason.as_str()))
            .collect();
        assert_eq!(lines[0], (2, "missing field `sol2`"));
        assert_eq!(lines[1], (4, "gold 2 is out of range for 2 choices"));
        assert_eq!(lines[2].0, 5);
        assert!(lines[2].1.contains("invalid JSON"), "{}", lines[2].1);
    }

    #[test]
    fn bad_rows_name_the_field() {
        let arc = json!({"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]},
                         "answerKey": "C"});
        assert!(ClozeTemplate::Arc
            .render(&arc)
            .unwrap_err()
            .contains("answerKey"));
        let piqa = json!({"goal": "g", "sol1": "a", "label": 0});
        assert!(ClozeTemplate::Piqa
            .render(&piqa)
            .unwrap_err()
            .contains("`sol2`"));
        let boolq = json!({"passage": "p", "question": "q", "answer": "yes"});
        assert!(ClozeTemplate::Boolq
            .render(&boolq)
            .unwrap_err()
            .contains("boolean"));
    }
}
