//! [`TokenScorer`]: one model, one prompt, one target continuation; masks over the prompt's
//! players (tokens or words) -> log-probability of the target after the masked prompt.
//!
//! Removed tokens are replaced by the baseline token with positions unchanged. A target of `k`
//! tokens is scored teacher-forced: pass `j` reads `log p(t_j | prompt, t_0..t_{j-1})` at the
//! last position of `prompt + t_0..t_{j-1}`, and the value is the sum over the `k` passes.

use super::jobs::JOBS_PER_CALL;
use crate::model::{Job, Model, Readout, RunOptions};
use crate::sparse::{MaskBatch, ValueFunction};
use crate::{Error, Result};

/// Scores a target continuation under token masks over a prompt's players.
pub struct TokenScorer<'m> {
    model: &'m Model,
    /// `prompt + target[..j]` for `j = 0..k`.
    prompts: Vec<Vec<u32>>,
    /// Distinct target ids, the readout.
    readout: Vec<u32>,
    /// Index into `readout` of each target token.
    target_at: Vec<usize>,
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
        let mut readout: Vec<u32> = Vec::new();
        let target_at = target
            .iter()
            .map(|&t| match readout.iter().position(|&r| r == t) {
                Some(k) => k,
                None => {
                    readout.push(t);
                    readout.len() - 1
                }
            })
            .collect();
        let prompts = (0..target.len())
            .map(|j| prompt.iter().chain(&target[..j]).copied().collect())
            .collect();
        Ok(TokenScorer {
            model,
            prompt_len: prompt.len(),
            prompts,
            readout,
            target_at,
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
        let k = self.prompts.len();
        let readout = Readout::TokensAndLogsumexp(self.readout.clone());
        let lse = self.readout.len();
        let mut out = Vec::with_capacity(masks.len());
        let per_call = (JOBS_PER_CALL / k).max(1);
        let rows: Vec<usize> = (0..masks.len()).collect();
        for chunk in rows.chunks(per_call) {
            let jobs: Vec<Job> = chunk
                .iter()
                .flat_map(|&r| {
                    let keep = self.keep_flags(masks, r);
                    (0..k).map(move |j| {
                        let mut tokens = keep.clone();
                        tokens.resize(self.prompt_len + j, true);
                        Job {
                            prompt: j,
                            heads: None,
                            tokens: Some(tokens),
                        }
                    })
                })
                .collect();
            let logits = self
                .model
                .run(&self.prompts, &jobs, &readout, &self.options)?;
            for row in logits.chunks(k) {
                let sum: f64 = row
                    .iter()
                    .zip(&self.target_at)
                    .map(|(l, &t)| f64::from(l[t]) - f64::from(l[lse]))
                    .sum();
                out.push(sum);
            }
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
