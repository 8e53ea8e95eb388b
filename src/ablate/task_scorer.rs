//! [`TaskScorer`]: one model, one fixed question set, many head masks -> candidate logits.

use indicatif::{ProgressBar, ProgressStyle};

use crate::model::{Job, Model, Readout, RunOptions};
use crate::sparse::{MaskBatch, ValueFunction};
use crate::task::{CandidateLogits, CandidateValue, TaskItem, ValueKind};
use crate::{Error, Result};

/// Scores a fixed set of task items under head masks `[L * H]` (1 keep, 0 ablate).
///
/// Each continuation is scored by its first token at the prompt's last position, so one forward
/// pass per (mask, question) scores every candidate, as lm-evaluation-harness does for one-token
/// continuations.
pub struct TaskScorer<'m> {
    model: &'m Model,
    prompts: Vec<Vec<u32>>,
    /// Per question: index into `readout_ids` of each candidate's first token.
    candidates: Vec<Vec<usize>>,
    readout_ids: Vec<u32>,
    options: RunOptions,
    progress: bool,
}

impl<'m> TaskScorer<'m> {
    /// Tokenizes every item's prompt and the first token of each continuation.
    pub fn new(model: &'m Model, items: &[TaskItem], options: RunOptions) -> Result<Self> {
        let mut readout_ids: Vec<u32> = Vec::new();
        let mut prompts = Vec::with_capacity(items.len());
        let mut candidates = Vec::with_capacity(items.len());
        for item in items {
            prompts.push(model.encode(&item.prompt)?);
            let mut cand = Vec::with_capacity(item.continuations.len());
            for c in &item.continuations {
                let ids = model.encode(c)?;
                let first = *ids.first().ok_or_else(|| {
                    Error::invalid(
                        "continuation",
                        format!(
                            "`{c}` of {} row {} encodes to no token",
                            item.subject, item.row
                        ),
                    )
                })?;
                let pos = match readout_ids.iter().position(|&t| t == first) {
                    Some(p) => p,
                    None => {
                        readout_ids.push(first);
                        readout_ids.len() - 1
                    }
                };
                cand.push(pos);
            }
            candidates.push(cand);
        }
        Ok(TaskScorer {
            model,
            prompts,
            candidates,
            readout_ids,
            options,
            progress: false,
        })
    }

    /// Shows a progress bar on stderr while scoring (when stderr is a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Number of questions Q.
    pub fn n_questions(&self) -> usize {
        self.prompts.len()
    }

    /// Candidate logits `[M][Q][K_q]` for `M` head-scale rows (each `[L * H]`, or `None` for the
    /// unmasked model), with the full-vocabulary logsumexp `[M][Q]` when `with_logsumexp`.
    pub fn score(
        &self,
        heads: &[Option<Vec<f32>>],
        with_logsumexp: bool,
    ) -> Result<CandidateLogits> {
        let info = self.model.info();
        let width = info.n_layers * info.n_heads;
        if let Some(bad) = heads.iter().flatten().find(|h| h.len() != width) {
            return Err(Error::invalid(
                "head mask",
                format!(
                    "{} entries, but the model has {} layers x {} heads = {width}",
                    bad.len(),
                    info.n_layers,
                    info.n_heads
                ),
            ));
        }
        let readout = if with_logsumexp {
            Readout::Full
        } else {
            Readout::Tokens(self.readout_ids.clone())
        };
        let q = self.prompts.len();
        let bar = self.progress_bar((heads.len() * q) as u64);
        let mut data = Vec::with_capacity(heads.len() * q * 4);
        let mut lse = with_logsumexp.then(|| Vec::with_capacity(heads.len() * q));
        // One mask at a time over every question: the engine batches the questions, and layer
        // reuse keeps each prompt's clean run across the mask's jobs.
        for mask in heads {
            let jobs: Vec<Job> = (0..q)
                .map(|p| Job {
                    prompt: p,
                    heads: mask.clone(),
                    tokens: None,
                })
                .collect();
            let rows = self
                .model
                .run(&self.prompts, &jobs, &readout, &self.options)?;
            for (row, cand) in rows.iter().zip(&self.candidates) {
                for &c in cand {
                    let col = if with_logsumexp {
                        self.readout_ids[c] as usize
                    } else {
                        c
                    };
                    data.push(row[col]);
                }
                if let Some(l) = lse.as_mut() {
                    l.push(logsumexp(row));
                }
            }
            bar.inc(q as u64);
        }
        bar.finish_and_clear();
        let n_choices: Vec<usize> = self.candidates.iter().map(Vec::len).collect();
        CandidateLogits::new(&n_choices, data, lse)
    }

    /// A [`ValueFunction`] over `L * H` head players: mask bit 1 keeps a head, 0 zeroes it.
    pub fn head_value_function(
        &'m self,
        kind: ValueKind,
        golds: Vec<usize>,
    ) -> impl ValueFunction + 'm {
        let info = self.model.info();
        let n = info.n_layers * info.n_heads;
        CandidateValue::new(n, kind, golds, move |masks: &MaskBatch| {
            let heads: Vec<Option<Vec<f32>>> = (0..masks.len())
                .map(|r| Some((0..n).map(|i| masks.get(r, i) as u8 as f32).collect()))
                .collect();
            self.score(&heads, kind.needs_logsumexp())
        })
    }

    fn progress_bar(&self, total: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} forward passes ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}

/// `log(sum(exp(x)))` over a row of logits, computed stably in f64.
fn logsumexp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    (max + sum.ln()) as f32
}

#[cfg(test)]
mod tests {
    use super::logsumexp;

    #[test]
    fn logsumexp_matches_the_definition() {
        let row = [1.0f32, 2.0, 3.0];
        let direct = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((logsumexp(&row) as f64 - direct).abs() < 1e-6);
        assert!((logsumexp(&[1000.0, 1000.0]) as f64 - (1000.0 + 2f64.ln())).abs() < 1e-3);
    }
}
