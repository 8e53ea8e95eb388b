//! [`HeadScales`]: one row of head scales `[L, H]`, validated once where it is built (width
//! `L * H`, every value finite), then carried unchanged by jobs to the engine's head-op tensor.

use std::ops::Deref;

use crate::model::error::{ModelError, ModelResult};

/// The field name errors about head scales use.
pub(super) const FIELD: &str = "head_mask";

/// One row of head scales over `L` layers x `H` query heads, row-major `[L, H]` (1 keeps a head,
/// 0 ablates it, values in between scale it). Reads as a `[f32]` slice.
///
/// A scale is the share of a head kept: zero ablation multiplies the head's output by it, mean
/// ablation blends `s * output + (1 - s) * mean`. Every constructor but two keeps the values in
/// `[0, 1]`: outside it a blend would extrapolate past the head (or past its mean). The rescale
/// ablation's scales ([`HeadScales::rescaled`], or by hand [`HeadScales::new_amplifying`]) go up
/// to `H`; they are for zero-style ablation only, and a [`crate::ablate::TaskScorer`] with
/// mean-ablation targets refuses them ([`HeadScales::check_blendable`]).
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
            check_scale(i / heads.max(1), i % heads.max(1), f64::from(v), 1.0)?;
        }
        Ok(HeadScales {
            layers,
            heads,
            values,
        })
    }

    /// Like [`HeadScales::new`], but each scale may be up to `H` (`heads`), the largest factor the
    /// rescale ablation applies: for zero-style ablation only, where a scale above 1 amplifies the
    /// head's output (mean ablation would extrapolate past the head; see
    /// [`HeadScales::check_blendable`]).
    pub fn new_amplifying(layers: usize, heads: usize, values: Vec<f32>) -> ModelResult<Self> {
        let mut scales = HeadScales::new(layers, heads, vec![1.0; values.len()])?;
        for (i, &v) in values.iter().enumerate() {
            check_scale(i / heads, i % heads, f64::from(v), heads as f64)?;
        }
        scales.values = values;
        Ok(scales)
    }

    /// The rescale ablation (ProxySPEX, appendix C.2) of these scales: each layer's scales are
    /// multiplied by `H / sum(layer's scales)`, so that the layer's concatenated head output
    /// (the `o_proj` input) is restored to `H` heads' worth. For a keep-mask of 0s and 1s: in a
    /// layer keeping `k` of its `H` heads, the kept heads get `H / k` and the removed ones 0; a
    /// layer keeping every head is untouched (factor 1, so layer reuse still starts above it).
    ///
    /// A layer that keeps no head (every scale 0) stays all 0: its attention contributes nothing,
    /// exactly as under zero ablation (nothing to rescale; no division by zero, no NaN). Every
    /// result lies in `[0, H]` (a head's scale never exceeds its layer's sum).
    pub fn rescaled(&self) -> HeadScales {
        let h = self.heads;
        let mut values = self.values.clone();
        for layer in values.chunks_mut(h.max(1)) {
            let sum: f64 = layer.iter().map(|&v| f64::from(v)).sum();
            if sum > 0.0 {
                let factor = h as f64 / sum;
                for v in layer {
                    *v = ((f64::from(*v) * factor) as f32).min(h as f32);
                }
            }
        }
        HeadScales {
            layers: self.layers,
            heads: h,
            values,
        }
    }

    /// An error naming `head_mask[l][h]` unless every scale is in `[0, 1]`, as mean ablation needs
    /// (it blends `s * output + (1 - s) * mean`; a scale above 1, as the rescale ablation makes,
    /// would extrapolate past the head).
    pub fn check_blendable(&self) -> ModelResult<()> {
        for (i, &v) in self.values.iter().enumerate() {
            let (l, h) = (i / self.heads, i % self.heads);
            if v > 1.0 {
                return Err(ModelError::input(
                    format!("{FIELD}[{l}][{h}]"),
                    format!(
                        "layer {l}, head {h}: scale {v} is above 1, which mean ablation cannot blend (scales above 1 are the rescale ablation's, for zero-style ablation only)"
                    ),
                ));
            }
        }
        Ok(())
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
        check_scale(layer, head, f64::from(value), 1.0)?;
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

/// `value` as the f32 scale of head `head` in layer `layer`: in `[0, max]` (`max` is 1, or `H`
/// for the rescale ablation's scales; so inside f32's range); errors name the element, the layer
/// and the head.
pub(super) fn check_scale(layer: usize, head: usize, value: f64, max: f64) -> ModelResult<f32> {
    let field = format!("{FIELD}[{layer}][{head}]");
    let scale = value as f32;
    if value.is_finite() && !scale.is_finite() {
        return Err(ModelError::input(
            field,
            format!(
                "layer {layer}, head {head}: scale {value} is outside f32's range (±{:e}); a scale is in [0, {max}]",
                f32::MAX
            ),
        ));
    }
    if !(0.0..=max).contains(&value) {
        let meaning = if max > 1.0 {
            "1 keeps the head, 0 ablates it, above 1 amplifies it, up to the largest rescale factor"
        } else {
            "1 keeps the head, 0 ablates it, values between scale it"
        };
        return Err(ModelError::input(
            field,
            format!("layer {layer}, head {head}: scale {value} is outside [0, {max}] ({meaning})"),
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

    #[test]
    fn rescale_restores_each_layer_to_h_heads_and_leaves_empty_layers_at_zero() {
        // Layer 0 keeps all four heads, layer 1 three of four, layer 2 one, layer 3 none.
        let keep = HeadScales::from_keep(4, 4, |l, h| match l {
            0 => true,
            1 => h != 2,
            2 => h == 3,
            _ => false,
        });
        let r = keep.rescaled();
        let third = 4.0f32 / 3.0;
        assert_eq!(r.layer(0), &[1.0; 4]);
        assert_eq!(r.layer(1), &[third, third, 0.0, third]);
        assert_eq!(r.layer(2), &[0.0, 0.0, 0.0, 4.0]);
        assert_eq!(r.layer(3), &[0.0; 4]);
        assert!(r.iter().all(|v| v.is_finite()));
        assert_eq!(r.lowest_masked_layer(), 1);
        assert_eq!(HeadScales::ones(3, 2).rescaled(), HeadScales::ones(3, 2));
        // Fractional scales: the layer's sum is restored to H.
        let half = HeadScales::new(1, 2, vec![0.5, 1.0]).unwrap().rescaled();
        assert_eq!(&half[..], &[2.0 / 3.0, 4.0 / 3.0]);
        // The rescaled scales are what one builds by hand, and mean ablation cannot blend them.
        let by_hand = HeadScales::new_amplifying(4, 4, r.to_vec()).unwrap();
        assert_eq!(by_hand, r);
        let err = r.check_blendable().unwrap_err().to_string();
        assert!(
            err.contains("head_mask[1][0]") && err.contains("above 1"),
            "{err}"
        );
        assert!(keep.check_blendable().is_ok());
    }

    #[test]
    fn amplifying_scales_stop_at_h() {
        assert!(HeadScales::new_amplifying(1, 4, vec![4.0, 0.0, 0.0, 0.0]).is_ok());
        for bad in [4.5, -0.1, f32::NAN] {
            let err =
                HeadScales::new_amplifying(2, 4, vec![1.0, 1.0, 1.0, 1.0, 1.0, bad, 1.0, 1.0])
                    .unwrap_err()
                    .to_string();
            assert!(
                err.contains("head_mask[1][1]") && err.contains("[0, 4]"),
                "{bad}: {err}"
            );
        }
        let err = HeadScales::new_amplifying(2, 4, vec![1.0; 7])
            .unwrap_err()
            .to_string();
        assert!(err.contains("7 scales"), "{err}");
        // `new` still refuses them.
        assert!(HeadScales::new(1, 2, vec![2.0, 1.0]).is_err());
    }
}
