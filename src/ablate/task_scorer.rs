//! [`TaskScorer`]: one model, one fixed question set, many head masks -> candidate scores.

use super::head_players::HeadPlayers;
use super::jobs::JOBS_PER_CALL;
use crate::model::{HeadScales, Job, Model, Readout, RunOptions};
use crate::sparse::{MaskBatch, ValueFunction};
use crate::task::prompt::is_py_space;
use crate::task::{CandidateLogits, CandidateValue, Scoring, TaskItem, ValueKind};
use crate::{Error, Result};

/// Scores a fixed set of task items under head masks `[L, H]` (1 keep, 0 ablate).
///
/// Letters ([`Scoring::FirstToken`]): each continuation is scored by its first token at the
/// prompt's last position, so one forward pass per (mask, question) scores every candidate, as
/// lm-evaluation-harness does for one-token continuations. Cloze ([`Scoring::Continuation`]): one
/// request per (mask, question, choice), its continuation's log-likelihood summed over its tokens
/// from one teacher-forced pass; the choices of a question share their context's pass.
pub struct TaskScorer<'m> {
    model: &'m Model,
    prompts: Vec<Vec<u32>>,
    layout: Layout,
    options: RunOptions,
    progress: bool,
    rescale: bool,
}

/// How a scorer's passes map onto candidates.
enum Layout {
    /// One prompt per question; `candidates[q][k]` indexes `readout_ids`.
    FirstToken {
        candidates: Vec<Vec<usize>>,
        readout_ids: Vec<u32>,
    },
    /// One prompt per (question, choice), in order; `targets[r]` are request r's continuation
    /// tokens, `n_choices[q]` the requests of question q, `lengths` each answer's characters.
    Continuation {
        targets: Vec<Vec<u32>>,
        n_choices: Vec<usize>,
        lengths: Vec<f64>,
    },
}

/// lm-evaluation-harness's tokenisation of a (context, continuation) pair (`_encode_pair`):
/// the context's trailing white space moves to the continuation, the whole string is encoded,
/// and the continuation is what follows the context's own encoding. An empty context is the
/// model's prefix token (BOS, else EOS). Returns (context ids, continuation ids).
pub fn encode_pair(
    model: &Model,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>)> {
    if context.is_empty() {
        let special = &model.info().special;
        let prefix = special.bos.or(special.eos).ok_or_else(|| {
            Error::invalid(
                "context",
                "an empty context needs the model's BOS or EOS token, and it has neither",
            )
        })?;
        return Ok((vec![prefix], model.encode(continuation)?));
    }
    let kept = context.trim_end_matches(is_py_space);
    let moved = &context[kept.len()..];
    let whole = model.encode(&format!("{kept}{moved}{continuation}"))?;
    let context_ids = model.encode(kept)?;
    let split = context_ids.len().min(whole.len());
    Ok((context_ids, whole[split..].to_vec()))
}

impl<'m> TaskScorer<'m> {
    /// Tokenizes every item's requests for `scoring`.
    pub fn new(
        model: &'m Model,
        items: &[TaskItem],
        scoring: Scoring,
        options: RunOptions,
    ) -> Result<Self> {
        let (prompts, layout) = match scoring {
            Scoring::FirstToken => first_token_layout(model, items)?,
            Scoring::Continuation => continuation_layout(model, items)?,
        };
        Ok(TaskScorer {
            model,
            prompts,
            layout,
            options,
            progress: false,
            rescale: false,
        })
    }

    /// Shows a progress bar on stderr while scoring (when stderr is a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Runs every head-scale row under the rescale ablation ([`HeadScales::rescaled`]): each
    /// layer's kept heads scaled by (heads in the layer) / (heads kept in it). Off by default.
    pub fn with_rescale(mut self, on: bool) -> Self {
        self.rescale = on;
        self
    }

    /// Number of questions Q.
    pub fn n_questions(&self) -> usize {
        match &self.layout {
            Layout::FirstToken { candidates, .. } => candidates.len(),
            Layout::Continuation { n_choices, .. } => n_choices.len(),
        }
    }

    /// Candidate scores `[M][Q][K_q]` for `M` head-scale rows (each `[L, H]`, or `None` for the
    /// unmasked model): letter logits (with the full-vocabulary logsumexp `[M][Q]` when
    /// `with_logsumexp`), or the choices' log-likelihoods.
    pub fn score(
        &self,
        heads: &[Option<HeadScales>],
        with_logsumexp: bool,
    ) -> Result<CandidateLogits> {
        let readout = match &self.layout {
            Layout::FirstToken { readout_ids, .. } if with_logsumexp => {
                Readout::TokensAndLogsumexp(readout_ids.clone())
            }
            Layout::FirstToken { readout_ids, .. } => Readout::Tokens(readout_ids.clone()),
            Layout::Continuation { targets, .. } => Readout::Continuations(targets.clone()),
        };
        let rows = self.run(heads, &readout)?;
        match &self.layout {
            Layout::FirstToken {
                candidates,
                readout_ids,
            } => {
                let mut data = Vec::with_capacity(rows.len() * 4);
                let mut lse = with_logsumexp.then(|| Vec::with_capacity(rows.len()));
                for (k, row) in rows.iter().enumerate() {
                    data.extend(candidates[k % candidates.len()].iter().map(|&c| row[c]));
                    if let Some(l) = lse.as_mut() {
                        l.push(row[readout_ids.len()]);
                    }
                }
                let n_choices: Vec<usize> = candidates.iter().map(Vec::len).collect();
                CandidateLogits::new(&n_choices, data, lse)
            }
            Layout::Continuation {
                n_choices, lengths, ..
            } => {
                let data = rows
                    .iter()
                    .map(|row| row.iter().map(|&x| f64::from(x)).sum::<f64>() as f32)
                    .collect();
                CandidateLogits::loglikelihoods(n_choices, data, lengths.clone())
            }
        }
    }

    /// Runs every prompt under every head-scale row (rescaled first with
    /// [`TaskScorer::with_rescale`]): `[M * prompts]` readout rows, mask-major. Rows with a scale
    /// above 1 are refused under mean ablation ([`HeadScales::check_blendable`]).
    fn run(&self, heads: &[Option<HeadScales>], readout: &Readout) -> Result<Vec<Vec<f32>>> {
        let rescaled: Vec<Option<HeadScales>>;
        let heads = match self.rescale {
            true => {
                rescaled = heads
                    .iter()
                    .map(|r| r.as_ref().map(HeadScales::rescaled))
                    .collect();
                &rescaled[..]
            }
            false => heads,
        };
        if self.options.means.is_some() {
            for row in heads.iter().flatten() {
                row.check_blendable()?;
            }
        }
        let q = self.prompts.len();
        let bar = crate::progress::bar((heads.len() * q) as u64, "forward passes", self.progress);
        let mut rows = Vec::with_capacity(heads.len() * q);
        // Many masks per call: each prompt's clean run (layer reuse) serves every mask of the
        // chunk, and a lone mask's prompts run batched together.
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
            rows.extend(
                self.model
                    .run(&self.prompts, &jobs, readout, &self.options)?,
            );
            bar.inc(jobs.len() as u64);
        }
        bar.finish_and_clear();
        Ok(rows)
    }

    /// A [`ValueFunction`] over all `L * H` head players: mask bit 1 keeps a head, 0 zeroes it
    /// (and rescales its layer's kept heads with [`TaskScorer::with_rescale`]).
    pub fn head_value_function(
        &'m self,
        kind: ValueKind,
        golds: Vec<usize>,
    ) -> impl ValueFunction + 'm {
        let info = self.model.info();
        self.players_value_function(HeadPlayers::all(info.n_layers, info.n_heads), kind, golds)
    }

    /// A [`ValueFunction`] over `players` (bit 1 keeps the head, 0 zeroes it, rescaling its
    /// layer's kept heads with [`TaskScorer::with_rescale`]); heads that are not players are
    /// always kept.
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

/// Prompts and layout of the letter scoring: each prompt, each continuation's first token.
fn first_token_layout(model: &Model, items: &[TaskItem]) -> Result<(Vec<Vec<u32>>, Layout)> {
    let mut readout_ids: Vec<u32> = Vec::new();
    let mut prompts = Vec::with_capacity(items.len());
    let mut candidates = Vec::with_capacity(items.len());
    for item in items {
        prompts.push(model.encode(item.prompt())?);
        let mut cand = Vec::with_capacity(item.n_choices());
        for k in 0..item.n_choices() {
            let c = item.continuation(k);
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
    Ok((
        prompts,
        Layout::FirstToken {
            candidates,
            readout_ids,
        },
    ))
}

/// Prompts and layout of the cloze scoring: per (question, choice), the context and every
/// continuation token but the last, and the continuation tokens as targets.
fn continuation_layout(model: &Model, items: &[TaskItem]) -> Result<(Vec<Vec<u32>>, Layout)> {
    let mut prompts = Vec::new();
    let mut targets = Vec::new();
    let mut lengths = Vec::new();
    for item in items {
        for k in 0..item.n_choices() {
            let (mut context, continuation) =
                encode_pair(model, item.context(k), item.continuation(k))?;
            if continuation.is_empty() {
                return Err(Error::invalid(
                    "continuation",
                    format!(
                        "choice {k} of {} row {} ({}) encodes to no token",
                        item.subject, item.row, item.source
                    ),
                ));
            }
            context.extend_from_slice(&continuation[..continuation.len() - 1]);
            prompts.push(context);
            targets.push(continuation);
            lengths.push(item.choices[k].chars().count() as f64);
        }
    }
    let n_choices = items.iter().map(TaskItem::n_choices).collect();
    Ok((
        prompts,
        Layout::Continuation {
            targets,
            n_choices,
            lengths,
        },
    ))
}
