//! Head masks as people write them, parsed into [`HeadScales`]: a `LAYER:HEAD,...` spec
//! (`LAYER:*` for a whole layer) or a JSON file holding `[[layer, head], ...]` (heads to zero) or
//! an `[L][H]` matrix of scales. Errors name the field or element at fault (`head_mask[3][1]`).

use std::path::Path;

use serde_json::Value;

use super::scales::{check_scale, HeadScales, FIELD};
use crate::model::error::{ModelError, ModelResult};

impl HeadScales {
    /// Parses a head mask for a model of `layers` x `heads`: the path of an existing JSON file
    /// (see [`HeadScales::from_json`]), else a `LAYER:HEAD,...` spec of heads to zero.
    pub fn parse(spec: &str, layers: usize, heads: usize) -> ModelResult<HeadScales> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Err(ModelError::input(
                FIELD,
                format!("{spec} is a folder; a head mask is a JSON file or a LAYER:HEAD,... list"),
            ));
        }
        if path.is_file() {
            let text =
                std::fs::read_to_string(path).map_err(|e| ModelError::file(path, e.to_string()))?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::file(path, format!("not valid JSON: {e}")))?;
            return HeadScales::from_json(&value, layers, heads);
        }
        let mut pairs = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (l, h) = item.split_once(':').ok_or_else(|| {
                ModelError::input(
                    FIELD,
                    format!("`{item}` is not LAYER:HEAD (and no file {spec} exists)"),
                )
            })?;
            let l: usize = l.parse().map_err(|_| {
                ModelError::input(FIELD, format!("layer `{l}` in `{item}` is not a number"))
            })?;
            if h == "*" {
                pairs.extend((0..heads).map(|h| (l, h)));
            } else {
                let h: usize = h.parse().map_err(|_| {
                    ModelError::input(FIELD, format!("head `{h}` in `{item}` is not a number"))
                })?;
                pairs.push((l, h));
            }
        }
        HeadScales::zeroing(layers, heads, &pairs)
    }

    /// From JSON: `[[layer, head], ...]` (the heads to zero), or an `[L][H]` matrix of scales
    /// (an array that is both is read as the matrix).
    pub fn from_json(value: &Value, layers: usize, heads: usize) -> ModelResult<HeadScales> {
        let rows = value
            .as_array()
            .ok_or_else(|| ModelError::input(FIELD, "expected a JSON array"))?;
        let is_pairs = rows.iter().all(|r| {
            r.as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(Value::is_u64))
        });
        if is_pairs && !(rows.len() == layers && heads == 2) {
            let mut scales = HeadScales::ones(layers, heads);
            for (i, r) in rows.iter().enumerate() {
                let index = |k: usize| {
                    r[k].as_u64()
                        .and_then(|v| usize::try_from(v).ok())
                        .unwrap_or(usize::MAX)
                };
                let (l, h) = (index(0), index(1));
                scales.check_head(l, h, &format!("{FIELD}[{i}]"))?;
                scales.set(l, h, 0.0)?;
            }
            return Ok(scales);
        }
        if rows.len() != layers {
            return Err(ModelError::input(
                FIELD,
                format!("an [L][H] matrix needs {layers} rows, found {}", rows.len()),
            ));
        }
        let mut values = Vec::with_capacity(layers * heads);
        for (l, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .ok_or_else(|| ModelError::input(format!("{FIELD}[{l}]"), "not an array"))?;
            if row.len() != heads {
                return Err(ModelError::input(
                    format!("{FIELD}[{l}]"),
                    format!("{} scales, the model has {heads} heads", row.len()),
                ));
            }
            for (h, v) in row.iter().enumerate() {
                let x = v.as_f64().ok_or_else(|| {
                    ModelError::input(
                        format!("{FIELD}[{l}][{h}]"),
                        format!("layer {l}, head {h}: {v} is not a number"),
                    )
                })?;
                values.push(check_scale(l, h, x, 1.0)?);
            }
        }
        HeadScales::new(layers, heads, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_zero_the_listed_heads_and_whole_layers() {
        let s = HeadScales::parse("0:1, 2:*", 3, 2).unwrap();
        assert_eq!(s.masked(), vec![(0, 1), (2, 0), (2, 1)]);
        assert_eq!(HeadScales::parse("", 3, 2).unwrap(), HeadScales::ones(3, 2));
        for (spec, needle) in [
            ("40:1", "layer 40"),
            ("1:9", "head 9"),
            ("zero:1", "zero"),
            ("1-2", "LAYER:HEAD"),
            ("1:x", "head `x`"),
            ("7:*", "layer 7"),
        ] {
            let err = HeadScales::parse(spec, 3, 2).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("head_mask"),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn json_pairs_and_matrices_name_the_element_at_fault() {
        let pairs = HeadScales::from_json(&json!([[1, 0], [2, 1]]), 3, 3).unwrap();
        assert_eq!(pairs.masked(), vec![(1, 0), (2, 1)]);
        let matrix = json!([[1.0, 0.5], [0.0, 1.0], [1.0, 1.0]]);
        let m = HeadScales::from_json(&matrix, 3, 2).unwrap();
        assert_eq!(&m[..], &[1.0, 0.5, 0.0, 1.0, 1.0, 1.0]);
        let cases = [
            (json!([[0, 0], [5, 1]]), 3, 3, "head_mask[1]"),
            (json!([[1.0, "x"], [1.0, 1.0]]), 2, 2, "head_mask[0][1]"),
            (json!([[1.0, 1.0], [1e39, 1.0]]), 2, 2, "head_mask[1][0]"),
            (json!([[1.0, 1.0], [1.0]]), 2, 2, "head_mask[1]"),
            (json!([[1.0, 1.0]]), 2, 2, "2 rows"),
            (json!({"a": 1}), 2, 2, "array"),
        ];
        for (value, layers, heads, needle) in cases {
            let err = HeadScales::from_json(&value, layers, heads)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
        let err = HeadScales::from_json(&json!([[1.0, 1.0], [1e39, 1.0]]), 2, 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 1, head 0") && err.contains("f32's range") && err.contains("3.4"),
            "{err}"
        );
        let err = HeadScales::from_json(&json!([[1.0, -0.5], [1.0, 1.0]]), 2, 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 0, head 1") && err.contains("[0, 1]"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_is_named_as_one() {
        let tmp = tempfile::tempdir().unwrap();
        let err = HeadScales::parse(tmp.path().to_str().unwrap(), 2, 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a folder") && err.contains("head_mask"),
            "{err}"
        );
    }

    #[test]
    fn a_json_file_is_read_before_the_spec_form() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("mask.json");
        std::fs::write(&file, "[[0, 1]]").unwrap();
        let s = HeadScales::parse(file.to_str().unwrap(), 2, 2).unwrap();
        assert_eq!(s.masked(), vec![(0, 1)]);
        std::fs::write(&file, "[[0, 1]").unwrap();
        let err = HeadScales::parse(file.to_str().unwrap(), 2, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mask.json") && err.contains("JSON"), "{err}");
    }
}
