//! The task layer: data sets in MMLU form (MMLU, ARC-Easy, ARC-Challenge, SciQ, any MMLU-form
//! JSONL) and SST-2 sentiment; lm-eval prompt templates; scoring and accuracy tables; and the
//! value functions attribution runs on. Model-free: it works on prompts (strings) and candidate
//! logits (`[M][Q][K]` f32), so it is tested on hand-computed numbers.
//!
//! Flow: [`TaskSpec`] -> [`load_task`] -> [`LoadedTask`] (prompts, continuations, golds) -> a
//! model turns prompts and continuations into [`CandidateLogits`] -> [`evaluate`] (accuracy
//! table, per-question rows) or [`ValueKind::values`] (one number per mask).

pub mod cloze;
pub mod csv;
pub mod load;
pub mod logits;
pub mod prompt;
pub mod question;
pub mod read;
pub mod score;
pub mod value;

pub use cloze::ClozeTemplate;
pub use load::{
    default_data_dir, load_task, Format, LoadedTask, Scoring, Split, Subjects, TaskName, TaskSpec,
};
pub use logits::CandidateLogits;
pub use question::{MalformedRow, McQuestion, Sentiment, SentimentExample, SourceLoc, TaskItem};
pub use score::{evaluate, Evaluation, QuestionScore, SubjectAccuracy};
pub use value::{CandidateValue, ValueKind};
