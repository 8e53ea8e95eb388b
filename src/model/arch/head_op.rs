//! A layer's head ablation, applied to the per-head context before `o_proj`: its own file so that
//! the decoder interface and the layout moves ([`super::ragged`]) can both use it.

use candle_core::Tensor;

use crate::model::error::ModelResult;

/// How one layer's query-head outputs are changed before `o_proj`.
pub(crate) struct HeadOp {
    /// Per-row, per-head scale `[N, H, 1, 1]` (1 keeps, 0 removes).
    pub scale: Tensor,
    /// Mean-ablation target `[1, H, 1, Dh]`, blended in as `ctx * s + (1 - s) * mean`; zero ablation when `None`.
    pub mean: Option<Tensor>,
}

impl HeadOp {
    /// Applies the op to the per-head context `ctx [N, H, T, Dh]`.
    pub fn apply(&self, ctx: &Tensor) -> ModelResult<Tensor> {
        let scaled = ctx.broadcast_mul(&self.scale)?;
        Ok(match &self.mean {
            None => scaled,
            Some(mean) => {
                let rest = self.scale.affine(-1.0, 1.0)?;
                scaled.broadcast_add(&mean.broadcast_mul(&rest)?)?
            }
        })
    }
}
