//! Per-row ablation masks: head masks `[B, L, H]` (1 keep, 0 ablate, values in between scale) and
//! token masks `[B, T]` (true keep, false replace by the baseline token).

use super::scales::HeadScales;
use crate::model::error::{ModelError, ModelResult};

/// Head masks for `B` rows over `L` layers and `H` query heads, `[B, L, H]`: one [`HeadScales`]
/// row per batch row.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadMask {
    layers: usize,
    heads: usize,
    rows: Vec<HeadScales>,
}

impl HeadMask {
    /// `rows` all-ones masks (nothing ablated).
    pub fn ones(rows: usize, layers: usize, heads: usize) -> HeadMask {
        HeadMask {
            layers,
            heads,
            rows: vec![HeadScales::ones(layers, heads); rows],
        }
    }

    /// Builds from row-major `[B, L, H]` values; each must be finite.
    pub fn from_values(
        rows: usize,
        layers: usize,
        heads: usize,
        values: Vec<f32>,
    ) -> ModelResult<HeadMask> {
        if values.len() != rows * layers * heads {
            return Err(ModelError::input(
                "head_mask",
                format!(
                    "{} values for shape [{rows}, {layers}, {heads}]",
                    values.len()
                ),
            ));
        }
        let width = (layers * heads).max(1);
        let rows = values
            .chunks(width)
            .take(rows)
            .map(|row| HeadScales::new(layers, heads, row.to_vec()))
            .collect::<ModelResult<Vec<_>>>()?;
        HeadMask::from_rows(layers, heads, rows)
    }

    /// Builds from one [`HeadScales`] row per batch row, each over `layers` x `heads`.
    pub fn from_rows(layers: usize, heads: usize, rows: Vec<HeadScales>) -> ModelResult<HeadMask> {
        for (b, row) in rows.iter().enumerate() {
            row.check_fits(layers, heads, &format!("head_mask rows[{b}]"))?;
        }
        Ok(HeadMask {
            layers,
            heads,
            rows,
        })
    }

    /// One row per list: the listed `(layer, head)` pairs are zeroed, all other heads kept.
    pub fn zeroing(
        layers: usize,
        heads: usize,
        rows: &[Vec<(usize, usize)>],
    ) -> ModelResult<HeadMask> {
        let rows = rows
            .iter()
            .map(|pairs| HeadScales::zeroing(layers, heads, pairs))
            .collect::<ModelResult<Vec<_>>>()?;
        HeadMask::from_rows(layers, heads, rows)
    }

    /// Every row under the rescale ablation ([`HeadScales::rescaled`]).
    pub fn rescaled(&self) -> HeadMask {
        HeadMask {
            layers: self.layers,
            heads: self.heads,
            rows: self.rows.iter().map(HeadScales::rescaled).collect(),
        }
    }

    /// Sets the scale of head `h` in layer `l` of row `b`.
    pub fn set(&mut self, b: usize, l: usize, h: usize, value: f32) -> ModelResult<()> {
        let n = self.rows.len();
        let row = self.rows.get_mut(b).ok_or_else(|| {
            ModelError::input("head_mask", format!("row {b} is outside the {n} rows"))
        })?;
        row.set(l, h, value)
    }

    /// Number of rows B.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of query heads H.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Row `b`: its `[L, H]` scales.
    pub fn row(&self, b: usize) -> &HeadScales {
        &self.rows[b]
    }

    /// The lowest layer whose scales in row `b` are not all 1 (`L` when the row keeps every head).
    pub fn lowest_masked_layer(&self, b: usize) -> usize {
        self.rows[b].lowest_masked_layer()
    }

    /// Checks the shape against a model's `L` layers and `H` heads.
    pub fn check_shape(&self, layers: usize, heads: usize) -> ModelResult<()> {
        if self.layers != layers || self.heads != heads {
            return Err(ModelError::input(
                "head_mask",
                format!(
                    "mask is [B, {}, {}] but the model has {layers} layers of {heads} heads",
                    self.layers, self.heads
                ),
            ));
        }
        Ok(())
    }
}

/// Token masks for `B` rows over `T` prompt positions: `true` keeps the token, `false` replaces it
/// with the baseline token (positions unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMask {
    rows: usize,
    len: usize,
    keep: Vec<bool>,
}

impl TokenMask {
    /// Builds from row-major `[B, T]` keep flags.
    pub fn from_rows(rows: &[Vec<bool>]) -> ModelResult<TokenMask> {
        let len = rows.first().map_or(0, Vec::len);
        if let Some(b) = rows.iter().position(|r| r.len() != len) {
            return Err(ModelError::input(
                "token_mask",
                format!("row {b} has {} positions, row 0 has {len}", rows[b].len()),
            ));
        }
        Ok(TokenMask {
            rows: rows.len(),
            len,
            keep: rows.concat(),
        })
    }

    /// Number of rows B.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of positions T.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask has no positions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `b` as `T` keep flags.
    pub fn row(&self, b: usize) -> &[bool] {
        &self.keep[b * self.len..(b + 1) * self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroing_sets_only_the_listed_heads() {
        let m = HeadMask::zeroing(3, 2, &[vec![(1, 0)], vec![]]).unwrap();
        assert_eq!(&m.row(0)[..], &[1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(m.lowest_masked_layer(0), 1);
        assert_eq!(m.lowest_masked_layer(1), 3);
        assert!(HeadMask::zeroing(3, 2, &[vec![(3, 0)]]).is_err());
    }

    #[test]
    fn token_mask_rows_must_agree() {
        assert!(TokenMask::from_rows(&[vec![true, false], vec![true]]).is_err());
        let m = TokenMask::from_rows(&[vec![true, false], vec![false, true]]).unwrap();
        assert_eq!(m.row(1), &[false, true]);
    }
}
