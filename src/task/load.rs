//! Task selection and loading: which data set, where its files are, which subjects, split,
//! limit and shots; the result is a [`LoadedTask`] of prompts ready to score.

use super::cloze::{read_cloze_jsonl, ClozeTemplate};
use super::prompt::{
    letter_continuations, letters, mc_prompt, mmlu_description, sst2_continuations, sst2_prompt,
};
use super::question::{MalformedRow, McQuestion, Sentiment, SentimentExample, TaskItem};
use super::read::{read_mc_jsonl, read_mmlu_csv, read_sst2_jsonl, Schema};
pub use crate::home::default_data_dir;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The data sets spex evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskName {
    /// MMLU (57 subjects), from `<data>/mmlu/<subject>/<split>.jsonl` or the original CSV layout.
    Mmlu,
    /// ARC-Easy, from `<data>/arc_easy/<split>.jsonl`.
    ArcEasy,
    /// ARC-Challenge, from `<data>/arc_challenge/<split>.jsonl`.
    ArcChallenge,
    /// SciQ, from `<data>/sciq/<split>.jsonl`.
    Sciq,
    /// OpenBookQA, from `<data>/openbookqa/<split>.jsonl`.
    OpenBookQa,
    /// PIQA, from `<data>/piqa/<split>.jsonl`.
    Piqa,
    /// HellaSwag, from `<data>/hellaswag/<split>.jsonl`.
    Hellaswag,
    /// WinoGrande (xl), from `<data>/winogrande/<split>.jsonl`.
    Winogrande,
    /// BoolQ, from `<data>/boolq/<split>.jsonl`.
    Boolq,
    /// COPA, from `<data>/copa/<split>.jsonl`.
    Copa,
    /// SST-2 sentiment, from `<data>/sst2/<split>.jsonl`.
    Sst2,
    /// Any JSONL file of MMLU-form rows (see [`Schema::Generic`]): `jsonl:PATH`.
    Jsonl(PathBuf),
}

impl FromStr for TaskName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(path) = s.strip_prefix("jsonl:") {
            return Ok(TaskName::Jsonl(PathBuf::from(path)));
        }
        let normal = s.replace('_', "-");
        TaskName::NAMED
            .into_iter()
            .find(|t| t.to_string() == normal || (normal == "sst-2" && *t == TaskName::Sst2))
            .ok_or_else(|| {
                let names: Vec<String> = TaskName::NAMED.iter().map(|t| t.to_string()).collect();
                Error::invalid(
                    "task",
                    format!(
                        "unknown task `{s}`; expected {} or jsonl:PATH",
                        names.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskName::Mmlu => f.write_str("mmlu"),
            TaskName::ArcEasy => f.write_str("arc-easy"),
            TaskName::ArcChallenge => f.write_str("arc-challenge"),
            TaskName::Jsonl(p) => write!(f, "jsonl:{}", p.display()),
            named => f.write_str(&named.folder().unwrap_or_default().replace('_', "-")),
        }
    }
}

impl TaskName {
    /// Every task with a name (all but `jsonl:`), in help order.
    pub const NAMED: [TaskName; 11] = [
        TaskName::Mmlu,
        TaskName::ArcEasy,
        TaskName::ArcChallenge,
        TaskName::Sciq,
        TaskName::OpenBookQa,
        TaskName::Piqa,
        TaskName::Hellaswag,
        TaskName::Winogrande,
        TaskName::Boolq,
        TaskName::Copa,
        TaskName::Sst2,
    ];

    /// The split evaluated when none is asked for: MMLU's test split (as lm-eval), the
    /// validation split of the sets whose data ships only that one, test for `jsonl:`.
    pub fn default_split(&self) -> Split {
        match self {
            TaskName::Mmlu | TaskName::Jsonl(_) => Split::Test,
            _ => Split::Validation,
        }
    }

    /// The formats the task can be prompted in, the default first: letters for MMLU and
    /// `jsonl:`, the harness's cloze format (letters too where the rows are questions with
    /// choices) for the others.
    pub fn formats(&self) -> &'static [Format] {
        match self {
            TaskName::Mmlu | TaskName::Jsonl(_) => &[Format::Letters],
            TaskName::ArcEasy | TaskName::ArcChallenge | TaskName::Sciq | TaskName::OpenBookQa => {
                &[Format::Cloze, Format::Letters]
            }
            _ => &[Format::Cloze],
        }
    }

    /// The harness template of the task's cloze format; `None` for MMLU, SST-2 and `jsonl:`.
    pub fn cloze_template(&self) -> Option<ClozeTemplate> {
        match self {
            TaskName::ArcEasy | TaskName::ArcChallenge => Some(ClozeTemplate::Arc),
            TaskName::Sciq => Some(ClozeTemplate::Sciq),
            TaskName::OpenBookQa => Some(ClozeTemplate::OpenBookQa),
            TaskName::Piqa => Some(ClozeTemplate::Piqa),
            TaskName::Hellaswag => Some(ClozeTemplate::Hellaswag),
            TaskName::Winogrande => Some(ClozeTemplate::Winogrande),
            TaskName::Boolq => Some(ClozeTemplate::Boolq),
            TaskName::Copa => Some(ClozeTemplate::Copa),
            TaskName::Mmlu | TaskName::Sst2 | TaskName::Jsonl(_) => None,
        }
    }

    /// The folder under the data directory (`arc_easy`, ...); `None` for `jsonl:`.
    fn folder(&self) -> Option<&'static str> {
        match self {
            TaskName::Mmlu => Some("mmlu"),
            TaskName::ArcEasy => Some("arc_easy"),
            TaskName::ArcChallenge => Some("arc_challenge"),
            TaskName::Sciq => Some("sciq"),
            TaskName::OpenBookQa => Some("openbookqa"),
            TaskName::Piqa => Some("piqa"),
            TaskName::Hellaswag => Some("hellaswag"),
            TaskName::Winogrande => Some("winogrande"),
            TaskName::Boolq => Some("boolq"),
            TaskName::Copa => Some("copa"),
            TaskName::Sst2 => Some("sst2"),
            TaskName::Jsonl(_) => None,
        }
    }
}

/// How a task's questions are put to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The MMLU layout: the question, lettered choices, `"Answer:"`; each choice scored by its
    /// letter's token (`" A"`), one pass per question.
    Letters,
    /// lm-evaluation-harness's cloze template: each choice's text scored as a continuation of the
    /// context by its summed log-likelihood (`acc`, `acc_norm`).
    Cloze,
}

impl Format {
    /// The CLI name (`letters`, `cloze`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Letters => "letters",
            Format::Cloze => "cloze",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [Format::Letters, Format::Cloze]
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "format",
                    format!("unknown format `{s}`; expected letters or cloze"),
                )
            })
    }
}

/// How a loaded task's candidates are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// By each continuation's first token at the context's last position: one pass per
    /// question (letters, SST-2's one-word answers).
    FirstToken,
    /// By each continuation's log-likelihood, summed over its tokens: one request per choice.
    Continuation,
}

/// A data split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    /// Few-shot examples (MMLU: 5 per subject).
    Dev,
    /// Validation (`val` in the MMLU CSV layout).
    Validation,
    /// Test.
    Test,
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dev" => Ok(Split::Dev),
            "validation" | "val" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            _ => Err(Error::invalid(
                "split",
                format!("unknown split `{s}`; expected dev, validation (val) or test"),
            )),
        }
    }
}

impl Split {
    /// The JSONL file stem (`dev`, `validation`, `test`).
    pub fn jsonl_name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The MMLU CSV folder and file suffix (`dev`, `val`, `test`).
    pub fn csv_name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Validation => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jsonl_name())
    }
}

/// Which subjects to load: all (sorted by name) or a named list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subjects {
    /// Every subject found.
    All,
    /// These subjects (deduplicated, sorted by name).
    List(BTreeSet<String>),
}

impl FromStr for Subjects {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.trim() == "all" {
            return Ok(Subjects::All);
        }
        let set: BTreeSet<String> = s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect();
        if set.is_empty() {
            return Err(Error::invalid(
                "subjects",
                "no subject named; use `all` or a,b,c",
            ));
        }
        Ok(Subjects::List(set))
    }
}

/// Everything that selects a task's questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The data set.
    pub task: TaskName,
    /// The data directory (see [`default_data_dir`]).
    pub data_dir: PathBuf,
    /// MMLU subjects (other tasks have one subject, their own name).
    pub subjects: Subjects,
    /// The split evaluated.
    pub split: Split,
    /// Questions skipped at the start of each subject, before `limit` counts: with it, disjoint
    /// question sets of one split (attribute on the first 40, judge pruning on the next ones).
    pub offset: usize,
    /// At most this many questions per subject (the first ones after `offset`), as lm-eval's
    /// `--limit`.
    pub limit: Option<usize>,
    /// Few-shot examples per prompt: the first `shots` rows of `dev` where the data set has a dev
    /// split (MMLU), else the first rows of the evaluated split other than the question itself.
    pub shots: usize,
    /// Make any malformed row an error instead of a reported, skipped row.
    pub strict: bool,
    /// The prompt format; `None` takes the task's default ([`TaskName::formats`]).
    pub format: Option<Format>,
}

impl TaskSpec {
    /// The format used: the one asked for, if the task has it, else the task's default.
    pub fn format(&self) -> Result<Format> {
        let formats = self.task.formats();
        match self.format {
            None => Ok(formats[0]),
            Some(f) if formats.contains(&f) => Ok(f),
            Some(f) => Err(Error::invalid(
                "format",
                format!(
                    "task `{}` has no `{f}` format; it has {}",
                    self.task,
                    formats
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

/// A task ready to score: prompts, continuations and gold answers, plus the rows skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedTask {
    /// The task's name (`mmlu`, `sst2`, ...).
    pub name: String,
    /// The questions in order (subjects sorted by name, rows in file order).
    pub items: Vec<TaskItem>,
    /// The format the prompts are in.
    pub format: Format,
    /// How the candidates are scored.
    pub scoring: Scoring,
    /// Whether the harness reports `acc_norm` for this task and format.
    pub reports_acc_norm: bool,
    /// Rows that could not be read (empty under `strict`), sorted by file and line.
    pub malformed: Vec<MalformedRow>,
}

impl LoadedTask {
    /// The gold candidate of every item, `[Q]`.
    pub fn golds(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.gold).collect()
    }
}

/// Loads the questions `spec` selects and builds their prompts.
pub fn load_task(spec: &TaskSpec) -> Result<LoadedTask> {
    let mut malformed = Vec::new();
    let format = spec.format()?;
    let template = spec
        .task
        .cloze_template()
        .filter(|_| format == Format::Cloze);
    let items = match (template, &spec.task) {
        (Some(template), _) => load_cloze(spec, template, &mut malformed)?,
        (None, TaskName::Mmlu) => load_mmlu(spec, &mut malformed)?,
        (None, TaskName::Sst2) => load_sst2(spec, &mut malformed)?,
        (None, TaskName::Jsonl(path)) => {
            let rows = read_mc_jsonl(
                path,
                Schema::Generic,
                &file_stem(path),
                2..=26,
                &mut malformed,
            )?;
            let rows = filter_subjects(rows, &spec.subjects)?;
            mc_items(spec, rows, None, &|s| mmlu_description(s))?
        }
        (None, task) => {
            let folder = task.folder().unwrap_or_default();
            let (schema, range): (Schema, RangeInclusive<usize>) = match task {
                TaskName::Sciq => (Schema::Sciq, 4..=4),
                _ => (Schema::Generic, 2..=5),
            };
            let dir = spec.data_dir.join(folder);
            let read = |split: Split, malformed: &mut Vec<MalformedRow>| {
                let path = split_file(&dir, split)?;
                read_mc_jsonl(&path, schema, folder, range.clone(), malformed)
            };
            check_only_subject(&spec.subjects, folder)?;
            let rows = read(spec.split, &mut malformed)?;
            let dev = fewshot_rows(&dir, spec, |s| read(s, &mut malformed))?;
            mc_items(spec, rows, dev, &|_| mmlu_description("science"))?
        }
    };
    malformed.sort();
    if spec.strict {
        if let Some(first) = malformed.first() {
            return Err(Error::file(
                &first.source.file,
                format!(
                    "line {}: {} ({} malformed row(s) in all; --strict makes them an error)",
                    first.source.line,
                    first.reason,
                    malformed.len()
                ),
            ));
        }
    }
    let scoring = match template {
        Some(_) => Scoring::Continuation,
        None => Scoring::FirstToken,
    };
    Ok(LoadedTask {
        name: spec.task.to_string(),
        items,
        format,
        scoring,
        reports_acc_norm: template.is_some_and(ClozeTemplate::reports_acc_norm),
        malformed,
    })
}

/// Reads a cloze task's split through its harness template (zero-shot, as the harness's
/// defaults) and keeps `limit` rows from row `offset`.
fn load_cloze(
    spec: &TaskSpec,
    template: ClozeTemplate,
    malformed: &mut Vec<MalformedRow>,
) -> Result<Vec<TaskItem>> {
    let folder = spec.task.folder().unwrap_or_default();
    check_only_subject(&spec.subjects, folder)?;
    if spec.shots > 0 {
        return Err(Error::invalid(
            "shots",
            format!(
                "the cloze format is zero-shot (as the harness's default `{folder}` task); use \
                 0 shots, or the letter format where the task has one"
            ),
        ));
    }
    let path = split_file(&spec.data_dir.join(folder), spec.split)?;
    let mut items = read_cloze_jsonl(&path, template, folder, malformed)?;
    items.drain(..spec.offset.min(items.len()));
    items.truncate(spec.limit.unwrap_or(usize::MAX));
    Ok(items)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `<dir>/<split>.jsonl`, or an error naming it and the splits `dir` has.
fn split_file(dir: &Path, split: Split) -> Result<PathBuf> {
    let path = dir.join(format!("{}.jsonl", split.jsonl_name()));
    if path.is_file() {
        return Ok(path);
    }
    let have: Vec<&str> = [Split::Dev, Split::Validation, Split::Test]
        .into_iter()
        .filter(|s| dir.join(format!("{}.jsonl", s.jsonl_name())).is_file())
        .map(Split::jsonl_name)
        .collect();
    let reason = if have.is_empty() {
        "no such file (is the data fetched? see --data-dir)".to_string()
    } else {
        format!(
            "no such file: the splits here are {} (split)",
            have.join(", ")
        )
    };
    Err(Error::file(path, reason))
}

/// The dev rows used for few-shot examples, when shots are asked, a dev file exists and the
/// evaluated split is not dev itself; `None` means "use the evaluated split".
fn fewshot_rows<T>(
    dir: &Path,
    spec: &TaskSpec,
    read: impl FnOnce(Split) -> Result<Vec<T>>,
) -> Result<Option<Vec<T>>> {
    let dev = dir.join(format!("{}.jsonl", Split::Dev.jsonl_name()));
    if spec.shots == 0 || spec.split == Split::Dev || !dev.is_file() {
        return Ok(None);
    }
    read(Split::Dev).map(Some)
}

fn check_only_subject(subjects: &Subjects, name: &str) -> Result<()> {
    match subjects {
        Subjects::All => Ok(()),
        Subjects::List(l) if l.len() == 1 && l.contains(name) => Ok(()),
        Subjects::List(l) => Err(Error::invalid(
            "subjects",
            format!("this task has the one subject `{name}`, not {l:?}"),
        )),
    }
}

fn filter_subjects(rows: Vec<McQuestion>, subjects: &Subjects) -> Result<Vec<McQuestion>> {
    let Subjects::List(list) = subjects else {
        return Ok(rows);
    };
    let found: BTreeSet<&str> = rows.iter().map(|q| q.subject.as_str()).collect();
    if let Some(missing) = list.iter().find(|s| !found.contains(s.as_str())) {
        return Err(Error::invalid(
            "subjects",
            format!("no rows of subject `{missing}`"),
        ));
    }
    Ok(rows
        .into_iter()
        .filter(|q| list.contains(&q.subject))
        .collect())
}

/// The first `n` rows of `pool` that are not `this` (by file and line): lm-eval's `first_n`
/// sampler, which skips the question itself when shots come from the evaluated split.
fn first_n_except<T>(pool: &[T], n: usize, is_self: impl Fn(&T) -> bool) -> Vec<&T> {
    pool.iter().filter(|x| !is_self(x)).take(n).collect()
}

/// Builds the items of one subject's (or data set's) rows: limit, few-shot, prompts.
fn mc_items(
    spec: &TaskSpec,
    rows: Vec<McQuestion>,
    dev: Option<Vec<McQuestion>>,
    description: &dyn Fn(&str) -> String,
) -> Result<Vec<TaskItem>> {
    let pool = dev.as_deref().unwrap_or(&rows);
    let subjects: BTreeSet<&str> = rows.iter().map(|q| q.subject.as_str()).collect();
    let mut items = Vec::new();
    for subject in subjects {
        let subject_pool: Vec<&McQuestion> = pool.iter().filter(|q| q.subject == subject).collect();
        let selected = rows
            .iter()
            .filter(|q| q.subject == subject)
            .skip(spec.offset)
            .take(spec.limit.unwrap_or(usize::MAX));
        for q in selected {
            let shots: Vec<&McQuestion> =
                first_n_except(&subject_pool, spec.shots, |s| s.source == q.source)
                    .into_iter()
                    .copied()
                    .collect();
            if shots.len() < spec.shots {
                return Err(Error::invalid(
                    "shots",
                    format!(
                        "{} few-shot example(s) asked, subject `{subject}` has {}",
                        spec.shots,
                        shots.len()
                    ),
                ));
            }
            items.push(TaskItem {
                subject: q.subject.clone(),
                row: q.row,
                contexts: vec![mc_prompt(&description(subject), &shots, q)],
                continuations: letter_continuations(q.choices.len()),
                choices: letters(q.choices.len()),
                gold: q.answer,
                source: q.source.clone(),
            });
        }
    }
    Ok(items)
}

/// Where the MMLU files are and how they are laid out.
enum MmluLayout {
    /// `<root>/<subject>/<split>.jsonl`.
    Jsonl(PathBuf),
    /// `<root>/<split>/<subject>_<split>.csv` (the original tarball, `val` for validation).
    Csv(PathBuf),
}

impl MmluLayout {
    /// Finds the layout under `dir`: `dir/mmlu/`, the CSV folders `dir/{test,val,dev}/` or
    /// `dir/data/{...}/`, or `dir` itself as the JSONL root.
    fn find(dir: &Path) -> Result<Self> {
        let is_csv_root = |d: &Path| {
            [Split::Test, Split::Validation, Split::Dev]
                .iter()
                .any(|s| d.join(s.csv_name()).is_dir())
        };
        if dir.join("mmlu").is_dir() {
            Ok(MmluLayout::Jsonl(dir.join("mmlu")))
        } else if is_csv_root(dir) {
            Ok(MmluLayout::Csv(dir.to_path_buf()))
        } else if is_csv_root(&dir.join("data")) {
            Ok(MmluLayout::Csv(dir.join("data")))
        } else if dir.is_dir() {
            Ok(MmluLayout::Jsonl(dir.to_path_buf()))
        } else {
            Err(Error::file(dir, "no MMLU data here (expected mmlu/<subject>/<split>.jsonl or {dev,val,test}/<subject>_<split>.csv)"))
        }
    }

    /// The subjects present for `split`, sorted.
    fn subjects(&self, split: Split) -> Result<BTreeSet<String>> {
        let (dir, suffix) = match self {
            MmluLayout::Jsonl(root) => (root.clone(), None),
            MmluLayout::Csv(root) => (
                root.join(split.csv_name()),
                Some(format!("_{}.csv", split.csv_name())),
            ),
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, e))?;
        let mut out = BTreeSet::new();
        for e in entries {
            let e = e.map_err(|e| Error::file(&dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match &suffix {
                None if e
                    .path()
                    .join(format!("{}.jsonl", split.jsonl_name()))
                    .is_file() =>
                {
                    out.insert(name);
                }
                Some(sfx) => {
                    if let Some(subject) = name.strip_suffix(sfx.as_str()) {
                        out.insert(subject.to_string());
                    }
                }
                None => {}
            }
        }
        if out.is_empty() {
            return Err(Error::file(
                dir,
                format!("no MMLU subject has a `{split}` split here"),
            ));
        }
        Ok(out)
    }

    /// Reads one subject's split.
    fn read(
        &self,
        subject: &str,
        split: Split,
        malformed: &mut Vec<MalformedRow>,
    ) -> Result<Vec<McQuestion>> {
        match self {
            MmluLayout::Jsonl(root) => {
                let path = split_file(&root.join(subject), split)?;
                read_mc_jsonl(&path, Schema::Generic, subject, 4..=4, malformed)
            }
            MmluLayout::Csv(root) => {
                let path = root
                    .join(split.csv_name())
                    .join(format!("{subject}_{}.csv", split.csv_name()));
                if !path.is_file() {
                    return Err(Error::file(path, "no such file"));
                }
                read_mmlu_csv(&path, subject, malformed)
            }
        }
    }

    /// Whether `subject` has a dev split (few-shot source).
    fn has_dev(&self, subject: &str) -> bool {
        match self {
            MmluLayout::Jsonl(root) => root.join(subject).join("dev.jsonl").is_file(),
            MmluLayout::Csv(root) => root
                .join("dev")
                .join(format!("{subject}_dev.csv"))
                .is_file(),
        }
    }
}

fn load_mmlu(spec: &TaskSpec, malformed: &mut Vec<MalformedRow>) -> Result<Vec<TaskItem>> {
    let layout = MmluLayout::find(&spec.data_dir)?;
    let available = layout.subjects(spec.split)?;
    let subjects =
        match &spec.subjects {
            Subjects::All => available,
            Subjects::List(list) => {
                if let Some(missing) = list.iter().find(|s| !available.contains(*s)) {
                    return Err(Error::invalid(
                        "subjects",
                        format!(
                        "unknown MMLU subject `{missing}` ({} subjects have a `{}` split, e.g. {})",
                        available.len(),
                        spec.split,
                        available.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                    ),
                    ));
                }
                list.clone()
            }
        };
    let mut items = Vec::new();
    for subject in &subjects {
        let mut rows = layout.read(subject, spec.split, malformed)?;
        // Rows carry their file's subject (the JSONL `subject` field agrees with the folder).
        for q in &mut rows {
            q.subject.clone_from(subject);
        }
        let dev = if spec.shots > 0 && spec.split != Split::Dev && layout.has_dev(subject) {
            Some(layout.read(subject, Split::Dev, malformed)?)
        } else {
            None
        };
        items.extend(mc_items(spec, rows, dev, &mmlu_description)?);
    }
    Ok(items)
}

fn load_sst2(spec: &TaskSpec, malformed: &mut Vec<MalformedRow>) -> Result<Vec<TaskItem>> {
    check_only_subject(&spec.subjects, "sst2")?;
    let dir = spec.data_dir.join("sst2");
    let rows = read_sst2_jsonl(&split_file(&dir, spec.split)?, malformed)?;
    let dev = fewshot_rows(&dir, spec, |s| {
        read_sst2_jsonl(&split_file(&dir, s)?, malformed)
    })?;
    let pool: &[SentimentExample] = dev.as_deref().unwrap_or(&rows);
    let mut items = Vec::new();
    for x in rows
        .iter()
        .skip(spec.offset)
        .take(spec.limit.unwrap_or(usize::MAX))
    {
        let shots = first_n_except(pool, spec.shots, |s| s.source == x.source);
        if shots.len() < spec.shots {
            return Err(Error::invalid(
                "shots",
                format!(
                    "{} few-shot example(s) asked, sst2 has {}",
                    spec.shots,
                    shots.len()
                ),
            ));
        }
        items.push(TaskItem {
            subject: "sst2".into(),
            row: x.row,
            contexts: vec![sst2_prompt(&shots, x)],
            continuations: sst2_continuations(),
            choices: [Sentiment::Negative, Sentiment::Positive]
                .iter()
                .map(|s| s.word().to_string())
                .collect(),
            gold: x.label.index(),
            source: x.source.clone(),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn mmlu_row(q: &str, subject: &str, answer: usize) -> String {
        format!(
            r#"{{"question": "{q}", "subject": "{subject}", "choices": ["{q}a", "{q}b", "{q}c", "{q}d"], "answer": {answer}}}"#
        ) + "\n"
    }

    fn spec(task: TaskName, dir: &Path) -> TaskSpec {
        TaskSpec {
            task,
            data_dir: dir.to_path_buf(),
            subjects: Subjects::All,
            split: Split::Test,
            limit: None,
            offset: 0,
            shots: 0,
            strict: false,
            format: None,
        }
    }

    /// Two subjects in the SPEX_HOME JSONL layout, each with 3 test rows and 2 dev rows.
    fn mmlu_jsonl(dir: &Path) {
        for s in ["college_physics", "anatomy"] {
            let root = dir.join("mmlu").join(s);
            write(
                &root.join("test.jsonl"),
                &(mmlu_row("T0", s, 0) + &mmlu_row("T1", s, 1) + &mmlu_row("T2", s, 2)),
            );
            write(
                &root.join("dev.jsonl"),
                &(mmlu_row("D0", s, 3) + &mmlu_row("D1", s, 1)),
            );
        }
    }

    /// The same data in the original CSV layout.
    fn mmlu_csv(dir: &Path) {
        for s in ["college_physics", "anatomy"] {
            let row = |q: &str, a: &str| format!("{q},{q}a,{q}b,{q}c,{q}d,{a}\n");
            write(
                &dir.join("data/test").join(format!("{s}_test.csv")),
                &(row("T0", "A") + &row("T1", "B") + &row("T2", "C")),
            );
            write(
                &dir.join("data/dev").join(format!("{s}_dev.csv")),
                &(row("D0", "D") + &row("D1", "B")),
            );
        }
    }

    #[test]
    fn mmlu_few_shot_prompt_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        mmlu_jsonl(dir.path());
        let mut s = spec(TaskName::Mmlu, dir.path());
        s.shots = 2;
        s.limit = Some(2);
        s.subjects = "college_physics".parse().unwrap();
        let t = load_task(&s).unwrap();
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.golds(), [0, 1]);
        assert_eq!(t.items[1].row, 1);
        assert_eq!(
            t.items[1].prompt(),
            "The following are multiple choice questions (with answers) about college physics.\n\n\
             D0\nA. D0a\nB. D0b\nC. D0c\nD. D0d\nAnswer: D\n\n\
             D1\nA. D1a\nB. D1b\nC. D1c\nD. D1d\nAnswer: B\n\n\
             T1\nA. T1a\nB. T1b\nC. T1c\nD. T1d\nAnswer:"
        );
        assert_eq!(t.items[0].continuations, [" A", " B", " C", " D"]);
    }

    #[test]
    fn offset_skips_questions_of_each_subject_before_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        mmlu_jsonl(dir.path());
        let mut s = spec(TaskName::Mmlu, dir.path());
        s.offset = 1;
        s.limit = Some(1);
        let t = load_task(&s).unwrap();
        // One question per subject, the second one (T1, gold 1) of each.
        assert_eq!(t.items.len(), 2);
        assert!(t.items.iter().all(|q| q.row == 1 && q.gold == 1));
        s.limit = None;
        s.offset = 5;
        assert!(load_task(&s).unwrap().items.is_empty());
    }

    #[test]
    fn csv_and_jsonl_layouts_give_the_same_task() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        mmlu_jsonl(a.path());
        mmlu_csv(b.path());
        for shots in [0, 2] {
            let mut sa = spec(TaskName::Mmlu, a.path());
            sa.shots = shots;
            let mut sb = spec(TaskName::Mmlu, b.path());
            sb.shots = shots;
            let (ta, tb) = (load_task(&sa).unwrap(), load_task(&sb).unwrap());
            assert_eq!(ta.items.len(), 6);
            // Subjects sorted by name: anatomy first.
            assert_eq!(ta.items[0].subject, "anatomy");
            let strip = |t: &LoadedTask| {
                t.items
                    .iter()
                    .map(|i| (i.subject.clone(), i.row, i.prompt().to_string(), i.gold))
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&ta), strip(&tb));
        }
    }

    #[test]
    fn malformed_rows_are_reported_or_fatal_under_strict() {
        let dir = tempfile::tempdir().unwrap();
        let test = dir.path().join("mmlu/anatomy/test.jsonl");
        write(
            &test,
            &(mmlu_row("T0", "anatomy", 0)
                + r#"{"question": "bad", "choices": ["a", "b"], "answer": 0}"#
                + "\n"
                + &mmlu_row("T2", "anatomy", 9)
                + &mmlu_row("T3", "anatomy", 3)),
        );
        let s = spec(TaskName::Mmlu, dir.path());
        let t = load_task(&s).unwrap();
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.items[1].source.line, 4);
        assert_eq!(t.items[1].row, 1);
        let lines: Vec<(PathBuf, usize)> = t
            .malformed
            .iter()
            .map(|m| (m.source.file.clone(), m.source.line))
            .collect();
        assert_eq!(lines, [(test.clone(), 2), (test.clone(), 3)]);
        let strict = TaskSpec { strict: true, ..s };
        let err = load_task(&strict).unwrap_err().to_string();
        assert!(
            err.contains("test.jsonl") && err.contains("line 2") && err.contains("2 malformed"),
            "{err}"
        );
    }

    #[test]
    fn selection_errors_name_the_argument() {
        let dir = tempfile::tempdir().unwrap();
        mmlu_jsonl(dir.path());
        let mut s = spec(TaskName::Mmlu, dir.path());
        s.subjects = "anatomy,astrology".parse().unwrap();
        assert!(load_task(&s).unwrap_err().to_string().contains("astrology"));
        let mut s = spec(TaskName::Mmlu, dir.path());
        s.shots = 3;
        assert!(load_task(&s).unwrap_err().to_string().contains("`shots`"));
        let mut s = spec(TaskName::Mmlu, dir.path());
        s.split = Split::Validation;
        assert!(load_task(&s).is_err());
        assert!(load_task(&spec(TaskName::Sst2, dir.path()))
            .unwrap_err()
            .to_string()
            .contains("sst2"));
        assert!("nope".parse::<TaskName>().is_err());
        assert!("".parse::<Subjects>().is_err());
        assert!("train".parse::<Split>().is_err());
    }

    #[test]
    fn arc_shots_come_from_the_same_split_minus_the_question() {
        let dir = tempfile::tempdir().unwrap();
        let row = |q: &str, key: &str| {
            format!(
                r#"{{"id": "{q}", "question": "{q}", "choices": {{"text": ["x", "y", "z"], "label": ["A", "B", "C"]}}, "answerKey": "{key}"}}"#
            ) + "\n"
        };
        write(
            &dir.path().join("arc_easy/validation.jsonl"),
            &(row("Q0", "A") + &row("Q1", "C") + &row("Q2", "B")),
        );
        let mut s = spec(TaskName::ArcEasy, dir.path());
        s.split = Split::Validation;
        s.shots = 1;
        // The default cloze format is zero-shot; the letter format takes shots.
        let err = load_task(&s).unwrap_err().to_string();
        assert!(err.contains("`shots`") && err.contains("letter"), "{err}");
        s.format = Some(Format::Letters);
        let t = load_task(&s).unwrap();
        assert_eq!(
            (t.format, t.scoring),
            (Format::Letters, Scoring::FirstToken)
        );
        assert_eq!(t.golds(), [0, 2, 1]);
        assert_eq!(t.items[0].continuations, [" A", " B", " C"]);
        let desc = "The following are multiple choice questions (with answers) about science.\n\n";
        // Q0's shot is Q1 (itself skipped); the others' shot is Q0.
        assert_eq!(
            t.items[0].prompt(),
            format!("{desc}Q1\nA. x\nB. y\nC. z\nAnswer: C\n\nQ0\nA. x\nB. y\nC. z\nAnswer:")
        );
        assert!(t.items[2].prompt().starts_with(&format!("{desc}Q0\n")));
        assert_eq!(t.items[0].subject, "arc_easy");
    }

    #[test]
    fn sst2_and_sciq_folders() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("sst2/validation.jsonl"),
            concat!(
                r#"{"sentence": "good . ", "label": 1, "idx": 0}"#,
                "\n",
                r#"{"sentence": "bad . ", "label": 0, "idx": 1}"#,
                "\n"
            ),
        );
        let mut s = spec(TaskName::Sst2, dir.path());
        s.split = Split::Validation;
        s.shots = 1;
        let t = load_task(&s).unwrap();
        assert_eq!(t.golds(), [1, 0]);
        assert_eq!(
            t.items[1].prompt(),
            "good . \nQuestion: Is this sentence positive or negative?\nAnswer: positive\n\n\
             bad . \nQuestion: Is this sentence positive or negative?\nAnswer:"
        );
        assert_eq!(t.items[0].continuations, [" negative", " positive"]);

        let sciq = r#"{"question": "Q", "distractor1": "a", "distractor2": "b", "distractor3": "c", "correct_answer": "ok", "support": ""}"#;
        write(
            &dir.path().join("sciq/validation.jsonl"),
            &format!("{sciq}\n{sciq}\n"),
        );
        let mut s = spec(TaskName::Sciq, dir.path());
        s.split = Split::Validation;
        s.format = Some(Format::Letters);
        let t = load_task(&s).unwrap();
        assert_eq!(t.golds(), [0, 1]);
        // The harness's cloze template puts the correct answer last.
        s.format = None;
        let t = load_task(&s).unwrap();
        assert_eq!(
            (t.format, t.scoring),
            (Format::Cloze, Scoring::Continuation)
        );
        assert_eq!(t.golds(), [3, 3]);
        assert_eq!(t.items[0].prompt(), "\nQuestion: Q\nAnswer:");
        assert_eq!(t.items[0].continuations, [" a", " b", " c", " ok"]);
        // SST-2 and MMLU have no other format than their own.
        let mut s = spec(TaskName::Sst2, dir.path());
        s.format = Some(Format::Letters);
        let err = load_task(&s).unwrap_err().to_string();
        assert!(err.contains("`format`") && err.contains("cloze"), "{err}");
    }

    #[test]
    fn generic_jsonl_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.jsonl");
        write(
            &path,
            concat!(
                r#"{"question": "Q0", "A": "a", "B": "b", "answer": "B"}"#,
                "\n",
                r#"{"question": "Q1", "A": "a", "B": "b", "C": "c", "answer": 2, "subject": "x"}"#,
                "\n"
            ),
        );
        let task: TaskName = format!("jsonl:{}", path.display()).parse().unwrap();
        let t = load_task(&spec(task, dir.path())).unwrap();
        assert_eq!(t.items.len(), 2);
        assert_eq!(t.items[0].subject, "mine");
        assert_eq!(t.items[1].subject, "x");
        assert_eq!(t.golds(), [1, 2]);
        assert!(t.items[0].prompt().ends_with("Q0\nA. a\nB. b\nAnswer:"));
    }
}
