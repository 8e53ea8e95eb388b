//! [`TaskScorer`]: one model, one fixed question set, many head masks -> candidate logits.

use super::head_players::HeadPlayers;
use super::jobs::JOBS_PER_CALL;
use crate::model::{HeadScales, Job, Model, Readout, RunOptions};
use crate::sparse::{MaskBatch, ValueFunction};
use crate::task::{CandidateLogits, CandidateValue, TaskItem, ValueKind};
use crate::{Error, Result};

/// Scores a fixed set of task items under head masks `[L, H]` (1 keep, 0 ablate).
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

    /// Candidate logits `[M][Q][K_q]` for `M` head-scale rows (each `[L, H]`, or `None` for the
    /// unmasked model), with the full-vocabulary logsumexp `[M][Q]` when `with_logsumexp`.
    pub fn score(
        &self,
        heads: &[Option<HeadScales>],
        with_logsumexp: bool,
    ) -> Result<CandidateLogits> {
        let readout = if with_logsumexp {
            Readout::TokensAndLogsumexp(self.readout_ids.clone())
        } else {
            Readout::Tokens(self.readout_ids.clone())
        };
        let q = self.prompts.len();
        let bar = crate::progress::bar((heads.len() * q) as u64, "forward passes", self.progress);
        let mut data = Vec::with_capacity(heads.len() * q * 4);
        let mut lse = with_logsumexp.then(|| Vec::with_capacity(heads.len() * q));
        // Many masks per call: each question's clean run (layer reuse) serves every mask of the
        // chunk, and a lone mask's questions run batched together.
        let masks_per_call = (JOBS_PER_CALL / q.max(1)).max(1);
        for chunk in heads.chunks(masks_per_call) {
            let jobs: Vec<Job> = chunk
                .iter()
                .flat_map(|mask| {
                    (0..q).map(move |p| Job {
                        prompt: p,
                        heads: mask.clone(),
                        tokens: None,
                    })
                })
                .collect();
            let rows = self
                .model
                .run(&self.prompts, &jobs, &readout, &self.options)?;
            for (k, row) in rows.iter().enumerate() {
                for &c in &self.candidates[k % q] {
                    data.push(row[c]);
                }
                if let Some(l) = lse.as_mut() {
                    l.push(row[self.readout_ids.len()]);
                }
            }
            bar.inc(jobs.len() as u64);
        }
        bar.finish_and_clear();
        let n_choices: Vec<usize> = self.candidates.iter().map(Vec::len).collect();
        CandidateLogits::new(&n_choices, data, lse)
    }

    /// A [`ValueFunction`] over all `L * H` head players: mask bit 1 keeps a head, 0 zeroes it.
    pub fn head_value_function(
        &'m self,
        kind: ValueKind,
        golds: Vec<usize>,
    ) -> impl ValueFunction + 'm {
        let info = self.model.info();
        self.players_value_function(HeadPlayers::all(info.n_layers, info.n_heads), kind, golds)
    }

    /// A [`ValueFunction`] over `players` (bit 1 keeps the head, 0 zeroes it); heads that are not
    /// players are always kept.
    pub fn players_value_function(
        &'m self,
        players: HeadPlayers,
        kind: ValueKind,
        golds: Vec<usize>,
    ) -> impl ValueFunction + 'm {
        CandidateValue::new(players.n(), kind, golds, move |masks: &MaskBatch| {
            let heads: Vec<Option<HeadScales>> = (0..masks.len())
                .map(|r| Some(players.scales(|i| masks.get(r, i))))
                .collect();
            self.score(&heads, kind.needs_logsumexp())
        })
    }
}
