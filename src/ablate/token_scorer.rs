//! [`TokenScorer`]: one model, one prompt, one target continuation; masks over the prompt's
//! players (tokens or words) -> log-probability of the target after the masked prompt.
//!
//! Removed tokens are replaced by the baseline token with positions unchanged. A target of `k`
//! tokens is scored teacher-forced in one pass over `prompt + t_0..t_{k-2}`: position
//! `prompt.len() - 1 + j` gives `log p(t_j | prompt, t_0..t_{j-1})`, and the value is their sum.

use super::jobs::JOBS_PER_CALL;
use crate::model::{Job, Model, Readout, RunOptions};
use crate::sparse::{MaskBatch, ValueFunction};
use crate::{Error, Result};

/// Scores a target continuation under token masks over a prompt's players.
pub struct TokenScorer<'m> {
    model: &'m Model,
    /// `prompt + target[..k - 1]`: the one prompt every pass runs.
    prompt: Vec<u32>,
    /// The target's `k` tokens.
    target: Vec<u32>,
    /// Prompt positions of each player.
    players: Vec<Vec<usize>>,
    prompt_len: usize,
    options: RunOptions,
}

impl<'m> TokenScorer<'m> {
    /// `players[i]` lists the prompt positions player `i` covers (disjoint, each `< prompt.len()`).
    pub fn new(
        model: &'m Model,
        prompt: Vec<u32>,
        target: &[u32],
        players: Vec<Vec<usize>>,
        options: RunOptions,
    ) -> Result<Self> {
        if target.is_empty() {
            return Err(Error::invalid("target", "the target encodes to no token"));
        }
        if players.is_empty() {
            return Err(Error::invalid("prompt", "the prompt has no token to mask"));
        }
        let mut owner = vec![None; prompt.len()];
        for (i, positions) in players.iter().enumerate() {
            for &p in positions {
                match owner.get_mut(p) {
                    Some(slot @ None) => *slot = Some(i),
                    Some(Some(j)) => {
                        return Err(Error::invalid(
                            "players",
                            format!("position {p} belongs to players {j} and {i}"),
                        ))
                    }
                    None => {
                        return Err(Error::invalid(
                            "players",
                            format!(
                                "player {i} covers position {p}, past the {}-token prompt",
                                prompt.len()
                            ),
                        ))
                    }
                }
            }
        }
        let prompt_len = prompt.len();
        let prompt = [&prompt[..], &target[..target.len() - 1]].concat();
        Ok(TokenScorer {
            model,
            prompt_len,
            prompt,
            target: target.to_vec(),
            players,
            options,
        })
    }

    /// `log p(target | masked prompt)` in nats, one per mask row `[M]`.
    pub fn log_probs(&self, masks: &MaskBatch) -> Result<Vec<f64>> {
        if masks.n_players() != self.players.len() {
            return Err(Error::invalid(
                "mask",
                format!(
                    "masks have {} players but the prompt has {}",
                    masks.n_players(),
                    self.players.len()
                ),
            ));
        }
        let readout = Readout::Continuations(vec![self.target.clone()]);
        let prompts = std::slice::from_ref(&self.prompt);
        let mut out = Vec::with_capacity(masks.len());
        let rows: Vec<usize> = (0..masks.len()).collect();
        for chunk in rows.chunks(JOBS_PER_CALL) {
            let jobs: Vec<Job> = chunk
                .iter()
                .map(|&r| {
                    let mut tokens = self.keep_flags(masks, r);
                    tokens.resize(self.prompt.len(), true);
                    Job {
                        prompt: 0,
                        heads: None,
                        tokens: Some(tokens),
                    }
                })
                .collect();
            let rows = self.model.run(prompts, &jobs, &readout, &self.options)?;
            out.extend(
                rows.iter()
                    .map(|row| row.iter().map(|&x| f64::from(x)).sum::<f64>()),
            );
        }
        crate::sparse::error::check_finite(&out)?;
        Ok(out)
    }

    /// Token keep flags `[prompt_len]` for mask row `r`: positions of removed players are false.
    fn keep_flags(&self, masks: &MaskBatch, r: usize) -> Vec<bool> {
        let mut keep = vec![true; self.prompt_len];
        for (i, positions) in self.players.iter().enumerate() {
            if !masks.get(r, i) {
                for &p in positions {
                    keep[p] = false;
                }
            }
        }
        keep
    }
}

impl ValueFunction for TokenScorer<'_> {
    fn n_players(&self) -> usize {
        self.players.len()
    }

    fn values(&mut self, masks: &MaskBatch) -> crate::sparse::Result<Vec<f64>> {
        Ok(self.log_probs(masks)?)
    }
}
