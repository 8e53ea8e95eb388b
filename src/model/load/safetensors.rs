//! Reads a safetensors file one tensor at a time, so loading holds the weights once.
//!
//! candle's CPU tensors own their storage, so a memory-mapped checkpoint is copied anyway; with a
//! map the file's pages stay resident while they are copied, which doubles the peak. Reading each
//! tensor's byte range into a buffer, converting it and dropping the buffer bounds the peak at the
//! weights plus twice the largest tensor.
//!
//! Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the header),
//! then the data. A sharded checkpoint's `model.safetensors.index.json` names its shards
//! ([`index_shards`]).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::model::error::{ModelError, ModelResult};

/// Largest header accepted (bytes); real headers are a few hundred KB.
const MAX_HEADER: u64 = 100 << 20;

/// Reads every tensor of the safetensors file `path` into `out`, converted to `dtype` on `device`.
pub fn read_safetensors(
    path: &Path,
    dtype: DType,
    device: &Device,
    out: &mut HashMap<String, Tensor>,
) -> ModelResult<()> {
    let bad = |reason: String| ModelError::File {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| bad(format!("cannot stat: {e}")))?
        .len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| {
        bad("cannot read safetensors: shorter than its 8-byte header length".into())
    })?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || 8 + header_len > size {
        return Err(bad(format!(
            "cannot read safetensors: header length {header_len} does not fit a file of {size} bytes"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("cannot read safetensors header: {e}")))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| {
            bad(format!(
                "cannot read safetensors: header is not a JSON object: {e}"
            ))
        })?;
    let data_start = 8 + header_len;
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let field = |what: &str| {
            bad(format!(
                "tensor `{name}`: field `{what}` missing or invalid"
            ))
        };
        let stored = info
            .get("dtype")
            .and_then(|v| v.as_str())
            .ok_or_else(|| field("dtype"))?;
        let stored = dtype_of(stored)
            .ok_or_else(|| bad(format!("tensor `{name}`: unsupported dtype `{stored}`")))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|v| v.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| field("shape"))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .and_then(|a| a.iter().map(|o| o.as_u64()).collect())
            .filter(|o: &Vec<u64>| o.len() == 2 && o[0] <= o[1])
            .ok_or_else(|| field("data_offsets"))?;
        let bytes = offsets[1] - offsets[0];
        let expected = shape.iter().product::<usize>() as u64 * stored.size_in_bytes() as u64;
        if bytes != expected || data_start + offsets[1] > size {
            return Err(bad(format!(
                "tensor `{name}`: {bytes} bytes at offsets {offsets:?} for shape {shape:?} \
                 ({expected} expected) in a file of {size} bytes"
            )));
        }
        let mut buf = vec![0u8; bytes as usize];
        file.read_exact_at(&mut buf, data_start + offsets[0])
            .map_err(|e| bad(format!("tensor `{name}`: cannot read its data: {e}")))?;
        let tensor = Tensor::from_raw_buffer(&buf, stored, &shape, &Device::Cpu)?;
        drop(buf);
        out.insert(name.clone(), tensor.to_dtype(dtype)?.to_device(device)?);
    }
    Ok(())
}

/// The candle dtype of a safetensors dtype name, for the float and integer types models use.
fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        _ => return None,
    })
}

/// The shard file names `model.safetensors.index.json` at `index` lists (sorted, unique; each a
/// plain file name).
pub(super) fn index_shards(index: &Path) -> ModelResult<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::File {
        path: index.to_path_buf(),
        reason: e.to_string(),
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::File {
        path: index.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })?;
    let field_error = |reason: &str| ModelError::Field {
        path: index.to_path_buf(),
        field: "weight_map".to_string(),
        reason: reason.to_string(),
    };
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| field_error("missing or not an object"))?;
    let mut shards = BTreeSet::new();
    for value in map.values() {
        let name = value
            .as_str()
            .ok_or_else(|| field_error("a value is not a file name"))?;
        let plain = Path::new(name).file_name().is_some_and(|f| f == name);
        if !plain {
            return Err(field_error(&format!("`{name}` is not a plain file name")));
        }
        shards.insert(name.to_string());
    }
    if shards.is_empty() {
        return Err(field_error("lists no shard"));
    }
    Ok(shards.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, path).unwrap();
    }

    #[test]
    fn reads_what_candle_writes_in_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let b = a.to_dtype(DType::BF16).unwrap();
        let c = Tensor::new(&[7u32, 9], &Device::Cpu).unwrap();
        write(&path, &[("a", a.clone()), ("b", b), ("c", c)]);
        let mut out = HashMap::new();
        read_safetensors(&path, DType::F32, &Device::Cpu, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out["a"].to_vec2::<f32>().unwrap(),
            a.to_vec2::<f32>().unwrap()
        );
        assert_eq!(
            out["b"].to_vec2::<f32>().unwrap(),
            a.to_vec2::<f32>().unwrap()
        );
        assert_eq!(out["c"].to_vec1::<f32>().unwrap(), vec![7.0, 9.0]);
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        write(&path, &[("t", t)]);
        let full = std::fs::read(&path).unwrap();
        for (what, bytes) in [
            ("short", full[..4].to_vec()),
            ("truncated data", full[..full.len() - 3].to_vec()),
            (
                "huge header",
                [&u64::MAX.to_le_bytes()[..], &full[8..]].concat(),
            ),
            (
                "not json",
                [&full[..8], &vec![b'x'; full.len() - 8][..]].concat(),
            ),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let err = read_safetensors(&path, DType::F32, &Device::Cpu, &mut HashMap::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("bad.safetensors"), "{what}: {err}");
        }
    }
}
