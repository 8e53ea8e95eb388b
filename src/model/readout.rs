//! The readout: final-normed hidden states of the read positions through the unembedding (the
//! whole vocabulary, packed once, or the few requested rows) into what each position keeps:
//! every logit, a few logits and the logsumexp (letters), or a target's log-probability
//! (continuations). On the CPU in f32 the last two never write the `[P, V]` logits out.

use candle_core::{DType, Tensor};

use crate::model::arch::attention::softcapped;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::cpu::features::Products;
use crate::model::cpu::log_probs::{self, target_log_probs};
use crate::model::cpu::projection::Projection;
use crate::model::error::{ModelError, ModelResult};
use crate::model::loaded::Model;

/// What to read out at each row's last prompt position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readout {
    /// The whole vocabulary: `[B][V]` logits.
    Full,
    /// Only these token ids, in this order: `[B][K]` logits.
    Tokens(Vec<u32>),
    /// These token ids' logits, then the full-vocabulary logsumexp: `[B][K + 1]` (nats).
    TokensAndLogsumexp(Vec<u32>),
    /// A continuation per prompt, teacher-forced: for prompt `i` of `T` tokens and its `k =
    /// targets[i].len()` targets (`1 <= k <= T`), the log-probabilities (nats, full vocabulary)
    /// of `targets[i][j]` at position `T - k + j`, `j < k`: `[B][k]`. The prompt holds the context
    /// and every target but the last, as lm-evaluation-harness feeds a (context, continuation)
    /// pair; token masks never change the targets.
    Continuations(Vec<Vec<u32>>),
}

/// The unembedding rows a run multiplies by, and what it keeps of each position's logits.
pub(super) struct Unembed<'m> {
    /// The whole vocabulary's product, or only the requested rows.
    pub weight: UnembedRows<'m>,
    /// What a read position yields from its logits.
    pub keep: Keep,
}

/// The rows of the unembedding a readout multiplies by.
pub(super) enum UnembedRows<'m> {
    /// Every row, as the model's packed product ([`Model::full_unembed`]).
    All(&'m Projection),
    /// The requested rows `[K, D]`.
    Picked(Tensor),
}

impl UnembedRows<'_> {
    /// Logits `[P, K]` of the final-normed `hidden [P, D]`.
    fn logits(&self, hidden: &Tensor) -> ModelResult<Tensor> {
        match self {
            UnembedRows::All(product) => product.forward(hidden),
            UnembedRows::Picked(rows) => Ok(hidden.matmul(&rows.t()?)?),
        }
    }
}

/// What one read position yields from its `[K]` logits.
pub(super) enum Keep {
    /// Every logit.
    All,
    /// These columns of the full-vocabulary logits, then their logsumexp.
    PickAndLogsumexp(Vec<usize>),
    /// The log-probability of the job's target token at this position.
    TargetLogProb,
}

/// Which hidden rows a readout reads, and what it scores there.
pub(super) struct Reads<'a> {
    /// Readout row i reads hidden row `order[i]` (repeats allowed: each hidden row is unembedded
    /// once); `None`: row i reads hidden row i.
    pub order: Option<&'a [u32]>,
    /// Output row r takes the next `sizes[r]` readout rows: one each for logits and letters.
    pub sizes: &'a [usize],
    /// The token scored at each readout row ([`Keep::TargetLogProb`]), else empty.
    pub targets: &'a [u32],
}

impl Reads<'_> {
    /// The log-probabilities of the readout rows, in order, cut into output rows.
    fn split(&self, mut values: impl Iterator<Item = f32>) -> Vec<Vec<f32>> {
        self.sizes
            .iter()
            .map(|&k| values.by_ref().take(k).collect())
            .collect()
    }
}

impl Model {
    /// Makes the whole unembedding ready for readouts that need every logit (full logits,
    /// continuations, a logsumexp) now, rather than at the first such readout: on the CPU this
    /// packs it for the kernels (for the default model 49k rows, 113 MB, 0.1-0.4 s), work that
    /// belongs with loading when a run is timed. Does nothing once done.
    pub fn prepare_full_readout(&self) -> ModelResult<()> {
        self.full_unembed().map(|_| ())
    }

    /// The whole unembedding as an f32 product, packed for the CPU kernels at the first call
    /// (the readout's largest product: 49k rows for the default model).
    pub(super) fn full_unembed(&self) -> ModelResult<&Projection> {
        if let Some(product) = self.full_unembed.get() {
            return Ok(product);
        }
        let products = Products {
            features: self.features,
            bf16: false,
        };
        let product = Projection::new(self.decoder.unembed().clone(), None, products)?;
        Ok(self.full_unembed.get_or_init(|| product))
    }

    pub(super) fn unembed_rows(&self, readout: &Readout) -> ModelResult<Unembed<'_>> {
        let w = self.decoder.unembed();
        match readout {
            Readout::Full => Ok(Unembed {
                weight: UnembedRows::All(self.full_unembed()?),
                keep: Keep::All,
            }),
            Readout::Continuations(_) => Ok(Unembed {
                weight: UnembedRows::All(self.full_unembed()?),
                keep: Keep::TargetLogProb,
            }),
            Readout::Tokens(ids) | Readout::TokensAndLogsumexp(ids) => {
                if ids.is_empty() {
                    return Err(ModelError::input("readout", "no token ids to read out"));
                }
                self.check_ids(ids, "readout")?;
                if matches!(readout, Readout::TokensAndLogsumexp(_)) {
                    return Ok(Unembed {
                        weight: UnembedRows::All(self.full_unembed()?),
                        keep: Keep::PickAndLogsumexp(ids.iter().map(|&i| i as usize).collect()),
                    });
                }
                let idx = Tensor::new(ids.as_slice(), &self.device)?;
                Ok(Unembed {
                    weight: UnembedRows::Picked(w.index_select(&idx, 0)?),
                    keep: Keep::All,
                })
            }
        }
    }

    /// Readout rows from hidden states `[P, D]` (before the final norm), as `reads` says.
    pub(super) fn read_out(
        &self,
        hidden: &Tensor,
        reads: &Reads,
        unembed: &Unembed,
    ) -> ModelResult<Vec<Vec<f32>>> {
        let hidden = self.decoder.final_norm(hidden)?;
        #[cfg(target_arch = "x86_64")]
        if let Some(rows) = self.fused_read_out(&hidden, reads, unembed)? {
            return Ok(rows);
        }
        let logits = unembed.weight.logits(&hidden)?.to_dtype(DType::F32)?;
        let logits = match self.decoder.logit_softcap() {
            Some(cap) => softcapped(&logits, cap)?,
            None => logits,
        };
        let logits = match reads.order {
            Some(order) => logits.index_select(&Tensor::new(order, logits.device())?, 0)?,
            None => logits,
        };
        match &unembed.keep {
            Keep::All => Ok(logits.to_vec2::<f32>()?),
            Keep::PickAndLogsumexp(ids) => Ok(logits
                .to_vec2::<f32>()?
                .iter()
                .map(|row| {
                    let mut out: Vec<f32> = ids.iter().map(|&i| row[i]).collect();
                    out.push(log_probs::logsumexp(row, self.features) as f32);
                    out
                })
                .collect()),
            Keep::TargetLogProb => {
                let lp = target_log_probs(&logits, reads.targets, self.features)?;
                Ok(reads.split(lp.into_iter()))
            }
        }
    }

    /// [`Model::read_out`] of the final-normed `hidden` without the `[P, V]` logits written out
    /// ([`log_probs::picked_logits_and_logsumexp`]), to the same bits: for f32 on the CPU, the
    /// whole packed unembedding, no soft cap, and a readout that keeps a few logits of each
    /// position; `None` elsewhere.
    #[cfg(target_arch = "x86_64")]
    fn fused_read_out(
        &self,
        hidden: &Tensor,
        reads: &Reads,
        unembed: &Unembed,
    ) -> ModelResult<Option<Vec<Vec<f32>>>> {
        let UnembedRows::All(product) = &unembed.weight else {
            return Ok(None);
        };
        let Some(weight) = product.packed() else {
            return Ok(None);
        };
        if self.decoder.logit_softcap().is_some() || !is_cpu_f32(hidden) {
            return Ok(None);
        }
        let positions = hidden.dim(0)?;
        // Readout row i reads position order[i].
        let order: Vec<usize> = match reads.order {
            Some(order) => order.iter().map(|&u| u as usize).collect(),
            None => (0..positions).collect(),
        };
        let mut columns: Vec<Vec<u32>> = vec![Vec::new(); positions];
        let read = |columns: &[Vec<u32>]| {
            with_values(hidden, |h| {
                log_probs::picked_logits_and_logsumexp(weight, h, columns, self.features)
            })?
        };
        match &unembed.keep {
            Keep::All => Ok(None),
            Keep::PickAndLogsumexp(ids) => {
                columns.fill(ids.iter().map(|&i| i as u32).collect());
                let read = read(&columns)?;
                Ok(Some(
                    order
                        .iter()
                        .map(|&u| {
                            let (logits, lse) = &read[u];
                            logits.iter().copied().chain([*lse as f32]).collect()
                        })
                        .collect(),
                ))
            }
            Keep::TargetLogProb => {
                if reads.targets.len() != order.len() {
                    return Err(ModelError::input(
                        "targets",
                        format!(
                            "{} targets for {} read positions",
                            reads.targets.len(),
                            order.len()
                        ),
                    ));
                }
                // Where readout row i's target sits among its position's columns.
                let slot: Vec<usize> = order
                    .iter()
                    .zip(reads.targets)
                    .map(|(&u, &t)| {
                        columns[u].push(t);
                        columns[u].len() - 1
                    })
                    .collect();
                let read = read(&columns)?;
                let lp = order
                    .iter()
                    .zip(&slot)
                    .map(|(&u, &i)| (f64::from(read[u].0[i]) - read[u].1) as f32);
                Ok(Some(reads.split(lp)))
            }
        }
    }
}
