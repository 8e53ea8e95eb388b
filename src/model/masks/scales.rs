//! [`HeadScales`]: one row of head scales `[L, H]`, validated once where it is built (width
//! `L * H`, every value finite), then carried unchanged by jobs to the engine's head-op tensor.

use std::ops::Deref;

use crate::model::error::{ModelError, ModelResult};

/// The field name errors about head scales use.
pub(super) const FIELD: &str = "head_mask";

/// One row of head scales over `L` layers x `H` query heads, row-major `[L, H]` (1 keeps a head,
/// 0 ablates it, values in between scale it); every value is in `[0, 1]`. Reads as a `[f32]` slice.
///
/// A scale is the share of a head kept: zero ablation multiplies the head's output by it, mean
/// ablation blends `s * output + (1 - s) * mean`. Values outside `[0, 1]` would extrapolate past
/// the head (or past its mean) and are refused.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadScales {
    layers: usize,
    heads: usize,
    values: Vec<f32>,
}

impl HeadScales {
    /// All ones over `[L, H]`: every head kept.
    pub fn ones(layers: usize, heads: usize) -> HeadScales {
        HeadScales {
            layers,
            heads,
            values: vec![1.0; layers * heads],
        }
    }

    /// From row-major `[L, H]` scales: exactly `layers * heads` of them, each in `[0, 1]`.
    pub fn new(layers: usize, heads: usize, values: Vec<f32>) -> ModelResult<HeadScales> {
        if values.len() != layers * heads {
            return Err(ModelError::input(
                FIELD,
                format!(
                    "{} scales, but {layers} layers x {heads} heads need {}",
                    values.len(),
                    layers * heads
                ),
            ));
        }
        for (i, &v) in values.iter().enumerate() {
            check_scale(i / heads.max(1), i % heads.max(1), f64::from(v))?;
        }
        Ok(HeadScales {
            layers,
            heads,
            values,
        })
    }

    /// 1 where `keep(layer, head)`, 0 elsewhere, over `[L, H]`.
    pub fn from_keep(layers: usize, heads: usize, keep: impl Fn(usize, usize) -> bool) -> Self {
        let values = (0..layers)
            .flat_map(|l| (0..heads).map(move |h| (l, h)))
            .map(|(l, h)| f32::from(u8::from(keep(l, h))))
            .collect();
        HeadScales {
            layers,
            heads,
            values,
        }
    }

    /// All ones except the listed `(layer, head)` pairs, which are 0; a pair outside `[L, H]` is
    /// an error naming it.
    pub fn zeroing(layers: usize, heads: usize, pairs: &[(usize, usize)]) -> ModelResult<Self> {
        let mut scales = HeadScales::ones(layers, heads);
        for &(l, h) in pairs {
            scales.set(l, h, 0.0)?;
        }
        Ok(scales)
    }

    /// Sets the scale of head `head` in layer `layer`; the pair must be inside `[L, H]` and the
    /// value in `[0, 1]`.
    pub fn set(&mut self, layer: usize, head: usize, value: f32) -> ModelResult<()> {
        self.check_head(layer, head, FIELD)?;
        check_scale(layer, head, f64::from(value))?;
        self.values[layer * self.heads + head] = value;
        Ok(())
    }

    /// An error naming `field` unless `(layer, head)` is inside `[L, H]`.
    pub(super) fn check_head(&self, layer: usize, head: usize, field: &str) -> ModelResult<()> {
        if layer >= self.layers {
            return Err(ModelError::input(
                field,
                format!(
                    "layer {layer} is out of range: the model has {} layers (0-{})",
                    self.layers,
                    self.layers.saturating_sub(1)
                ),
            ));
        }
        if head >= self.heads {
            return Err(ModelError::input(
                field,
                format!(
                    "head {head} is out of range: layer {layer} has {} heads (0-{})",
                    self.heads,
                    self.heads.saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of query heads per layer H.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The scales of layer `l`, `[H]`.
    pub fn layer(&self, l: usize) -> &[f32] {
        &self.values[l * self.heads..(l + 1) * self.heads]
    }

    /// The lowest layer with a scale other than 1 (`L` when every head is kept).
    pub fn lowest_masked_layer(&self) -> usize {
        self.values
            .iter()
            .position(|&v| v != 1.0)
            .map_or(self.layers, |i| i / self.heads)
    }

    /// The `(layer, head)` pairs whose scale is not 1, layer-major.
    pub fn masked(&self) -> Vec<(usize, usize)> {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 1.0)
            .map(|(i, _)| (i / self.heads, i % self.heads))
            .collect()
    }

    /// An error naming `field` unless these scales are for a model of `layers` x `heads`.
    pub fn check_fits(&self, layers: usize, heads: usize, field: &str) -> ModelResult<()> {
        if (self.layers, self.heads) != (layers, heads) {
            return Err(ModelError::input(
                field,
                format!(
                    "scales for {} layers x {} heads, but the model has {layers} layers x {heads} heads",
                    self.layers, self.heads
                ),
            ));
        }
        Ok(())
    }
}

/// `value` as the f32 scale of head `head` in layer `layer`: in `[0, 1]` (and so inside f32's
/// range); errors name the element, the layer and the head.
pub(super) fn check_scale(layer: usize, head: usize, value: f64) -> ModelResult<f32> {
    let field = format!("{FIELD}[{layer}][{head}]");
    let scale = value as f32;
    if value.is_finite() && !scale.is_finite() {
        return Err(ModelError::input(
            field,
            format!(
                "layer {layer}, head {head}: scale {value} is outside f32's range (±{:e}); a scale is in [0, 1]",
                f32::MAX
            ),
        ));
    }
    if !(0.0..=1.0).contains(&value) {
        return Err(ModelError::input(
            field,
            format!(
                "layer {layer}, head {head}: scale {value} is outside [0, 1] (1 keeps the head, 0 ablates it, values between scale it)"
            ),
        ));
    }
    Ok(scale)
}

impl Deref for HeadScales {
    type Target = [f32];

    /// The row-major `[L, H]` scales.
    fn deref(&self) -> &[f32] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_checks_width_range_and_finiteness() {
        let s = HeadScales::zeroing(3, 2, &[(1, 0)]).unwrap();
        assert_eq!(&s[..], &[1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(s.lowest_masked_layer(), 1);
        assert_eq!(s.masked(), vec![(1, 0)]);
        assert_eq!(HeadScales::ones(3, 2).lowest_masked_layer(), 3);
        let err = HeadScales::zeroing(3, 2, &[(3, 0)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 3") && err.contains("head_mask"),
            "{err}"
        );
        let err = HeadScales::new(3, 2, vec![1.0; 5]).unwrap_err().to_string();
        assert!(err.contains("5 scales"), "{err}");
        for bad in [f32::NAN, -0.5, 1.5, f32::INFINITY] {
            let mut values = vec![1.0; 6];
            values[3] = bad;
            let err = HeadScales::new(3, 2, values).unwrap_err().to_string();
            assert!(
                err.contains("head_mask[1][1]")
                    && err.contains("layer 1, head 1")
                    && err.contains("[0, 1]"),
                "{bad}: {err}"
            );
        }
        let mut s = HeadScales::ones(3, 2);
        assert!(s.set(0, 0, 0.25).is_ok());
        assert!(s.set(0, 0, -0.0).is_ok());
        assert!(s
            .set(0, 1, 2.0)
            .unwrap_err()
            .to_string()
            .contains("outside [0, 1]"));
        assert!(HeadScales::ones(3, 2).check_fits(3, 3, "heads").is_err());
        let keep = HeadScales::from_keep(2, 2, |l, h| l != h);
        assert_eq!(&keep[..], &[0.0, 1.0, 1.0, 0.0]);
    }
}
