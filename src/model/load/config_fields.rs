//! Fields that several architectures' configs read alike: special token ids, RoPE settings (in
//! transformers 4 and 5 spellings), positive sizes, and serde errors turned into named fields.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::model::error::{ModelError, ModelResult};

/// Most `max_position_embeddings x head_dim` entries of the RoPE tables built at load (2^32:
/// 24 GiB over the three f32 tables of half that many values; real models stay far below, e.g.
/// 131072 x 128 = 2^24).
const MAX_ROPE_ENTRIES: u128 = 1 << 32;

/// RoPE frequency scaling, from `rope_scaling` (units: factors are dimensionless).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.x scaling: low frequencies divided by `factor`, a smooth band in between.
    Llama3 {
        /// Divisor applied to the low frequencies.
        factor: f64,
        /// Wavelength threshold factor for the low band.
        low_freq_factor: f64,
        /// Wavelength threshold factor for the high band.
        high_freq_factor: f64,
        /// Context length (tokens) the model was trained with before scaling.
        original_max_position_embeddings: f64,
    },
    /// Linear position interpolation: every frequency divided by `factor`.
    Linear {
        /// Divisor applied to every frequency.
        factor: f64,
    },
}

/// Special token ids as config.json states them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialIds {
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id (the first one when config.json lists several).
    pub eos: Option<u32>,
    /// Padding id.
    pub pad: Option<u32>,
}

/// `value` as the config struct `T`, errors naming the field serde names.
pub fn deserialize<T: for<'de> Deserialize<'de>>(value: &Value, origin: &Path) -> ModelResult<T> {
    // serde_json's message names the field ("missing field `hidden_size`", "invalid type ...").
    T::deserialize(value).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("missing field"))
            .unwrap_or("?")
            .to_string();
        ModelError::Field {
            path: origin.to_path_buf(),
            field,
            reason: msg,
        }
    })
}

/// `v`, or an error naming `field` if it is zero.
pub fn positive(v: usize, field: &str, origin: &Path) -> ModelResult<usize> {
    if v == 0 {
        return Err(ModelError::field(origin, field, "must be positive"));
    }
    Ok(v)
}

/// RoPE settings as config.json states them: transformers 5 writes one `rope_parameters` object
/// (`rope_type`, `rope_theta`, `partial_rotary_factor`, the scaling's own keys); older files a
/// top-level base (`rope_theta`, GPT-NeoX's `rotary_emb_base`), `rope_scaling` and GPT-NeoX's
/// `rotary_pct`.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeFields {
    /// The base of the inverse frequencies.
    pub theta: f64,
    /// Frequency scaling, if any.
    pub scaling: Option<RopeScaling>,
    /// The fraction of each head's dimensions rotated.
    pub partial: f64,
}

impl RopeFields {
    /// Reads them from `value`, with `theta_key` and `partial_key` as the older top-level names.
    pub fn read(
        value: &Value,
        origin: &Path,
        theta_key: &str,
        partial_key: Option<&str>,
    ) -> ModelResult<RopeFields> {
        let params = value.get("rope_parameters").filter(|v| !v.is_null());
        let number = |object: Option<&Value>, key: &str, field: &str| -> ModelResult<Option<f64>> {
            match object.and_then(|o| o.get(key)).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| ModelError::field(origin, field, format!("not a number: {v}"))),
            }
        };
        let nested = |key: &str| format!("rope_parameters.{key}");
        let theta = match number(params, "rope_theta", &nested("rope_theta"))? {
            Some(t) => t,
            None => number(Some(value), theta_key, theta_key)?.unwrap_or(10_000.0),
        };
        let partial = match number(
            params,
            "partial_rotary_factor",
            &nested("partial_rotary_factor"),
        )? {
            Some(p) => p,
            None => match partial_key {
                Some(key) => number(Some(value), key, key)?.unwrap_or(1.0),
                None => 1.0,
            },
        };
        let scaling = match params {
            Some(p) => rope_scaling(Some(p), "rope_parameters", origin)?,
            None => rope_scaling(value.get("rope_scaling"), "rope_scaling", origin)?,
        };
        if !(theta > 0.0 && theta.is_finite()) {
            return Err(ModelError::field(
                origin,
                theta_key,
                format!("{theta} is not a positive base"),
            ));
        }
        if !(partial > 0.0 && partial <= 1.0) {
            return Err(ModelError::field(
                origin,
                partial_key.unwrap_or("rope_parameters.partial_rotary_factor"),
                format!("{partial} is not in (0, 1]"),
            ));
        }
        Ok(RopeFields {
            theta,
            scaling,
            partial,
        })
    }
}

impl RopeFields {
    /// How many of a `head_dim`-wide head's dimensions RoPE rotates, as transformers counts them
    /// (`int(head_dim * partial_rotary_factor)`); an odd or zero count is an error naming
    /// `field`.
    pub fn rotary_dims(&self, head_dim: usize, field: &str, origin: &Path) -> ModelResult<usize> {
        let dims = (head_dim as f64 * self.partial) as usize;
        if dims == 0 || !dims.is_multiple_of(2) {
            return Err(ModelError::field(
                origin,
                field,
                format!(
                    "{} of a {head_dim}-wide head rotates {dims} dimensions: must be even and positive",
                    self.partial
                ),
            ));
        }
        Ok(dims)
    }
}

/// The scaling a `rope_scaling` or `rope_parameters` object (named `name` in errors) asks for.
fn rope_scaling(
    raw: Option<&Value>,
    name: &str,
    origin: &Path,
) -> ModelResult<Option<RopeScaling>> {
    let Some(obj) = raw.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    // transformers 5 treats a `rope_parameters` without a type as the default RoPE.
    let kind = match obj.get("rope_type").or_else(|| obj.get("type")) {
        Some(kind) => kind.as_str().ok_or_else(|| {
            ModelError::field(origin, &format!("{name}.rope_type"), "not a string")
        })?,
        None if name == "rope_parameters" => "default",
        None => {
            return Err(ModelError::field(
                origin,
                &format!("{name}.rope_type"),
                "missing",
            ))
        }
    };
    let num = |key: &str| -> ModelResult<f64> {
        obj.get(key).and_then(Value::as_f64).ok_or_else(|| {
            ModelError::field(origin, &format!("{name}.{key}"), "missing or not a number")
        })
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: num("factor")?,
        })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        })),
        other => Err(ModelError::field(
            origin,
            &format!("{name}.rope_type"),
            format!("`{other}` is not supported (supported: default, linear, llama3)"),
        )),
    }
}

/// An error naming `max_position_embeddings` unless RoPE tables for `positions` positions of a
/// `head_dim`-wide head stay within [`MAX_ROPE_ENTRIES`].
pub fn rope_tables_fit(positions: usize, head_dim: usize, origin: &Path) -> ModelResult<()> {
    if positions as u128 * head_dim as u128 > MAX_ROPE_ENTRIES {
        return Err(ModelError::field(
            origin,
            "max_position_embeddings",
            format!(
                "{positions} positions x head dimension {head_dim}: RoPE tables over more than {MAX_ROPE_ENTRIES} entries (24 GiB) are not built"
            ),
        ));
    }
    Ok(())
}
