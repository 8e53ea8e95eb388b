//! Checkpoint weights: safetensors read tensor by tensor (single file or sharded index) or an
//! in-memory tensor map, read with shape checks that name the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, ModelResult};
use super::safetensors_reader::read_safetensors;

/// A source of named weights converted to one dtype on one device.
pub struct Weights {
    tensors: Mutex<HashMap<String, Tensor>>,
    dtype: DType,
    device: Device,
}

impl Weights {
    /// Reads the safetensors of a model folder (`model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`) one tensor at a time, so the weights are held once.
    pub fn from_folder(dir: &Path, dtype: DType, device: &Device) -> ModelResult<Weights> {
        let files = safetensors_files(dir)?;
        let mut tensors = HashMap::new();
        for file in &files {
            read_safetensors(file, dtype, device, &mut tensors)?;
        }
        Ok(Self::from_tensors(tensors, dtype, device))
    }

    /// Wraps tensors already in memory (e.g. dequantized from a GGUF file), keyed by HF names.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Weights {
        Weights {
            tensors: Mutex::new(tensors),
            dtype,
            device: device.clone(),
        }
    }

    /// Whether the checkpoint holds `name` (and it has not been taken).
    pub fn contains(&self, name: &str) -> bool {
        self.map().contains_key(name)
    }

    /// Reads `name`, checking it has `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> ModelResult<Tensor> {
        let t = self.map().get(name).cloned();
        self.checked(name, t, shape)
    }

    /// Reads `name` and drops it from this source, so a copy the caller makes of it (a packed
    /// layout) does not hold the weight twice.
    pub fn take(&self, name: &str, shape: &[usize]) -> ModelResult<Tensor> {
        let t = self.map().remove(name);
        self.checked(name, t, shape)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tensor>> {
        self.tensors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `t` (the tensor named `name`, if present) in this source's dtype and device, with `shape`.
    fn checked(&self, name: &str, t: Option<Tensor>, shape: &[usize]) -> ModelResult<Tensor> {
        let t = t.ok_or_else(|| ModelError::MissingWeight {
            tensor: name.to_string(),
        })?;
        let t = t.to_dtype(self.dtype)?.to_device(&self.device)?;
        if t.dims() != shape {
            return Err(ModelError::WeightShape {
                tensor: name.to_string(),
                expected: shape.to_vec(),
                got: t.dims().to_vec(),
            });
        }
        Ok(t)
    }

    /// Reads `name` with `shape` when present, `None` when absent.
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> ModelResult<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The safetensors files of a model folder, in a stable (sorted) order.
pub fn safetensors_files(dir: &Path) -> ModelResult<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(ModelError::MissingFile {
            path: single,
            what: "weights (model.safetensors or model.safetensors.index.json)".into(),
        });
    }
    let text = std::fs::read_to_string(&index).map_err(|e| ModelError::File {
        path: index.clone(),
        reason: e.to_string(),
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::File {
        path: index.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::File {
            path: index.clone(),
            reason: "field `weight_map` missing or not an object".into(),
        })?;
    let mut shards: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| ModelError::File {
            path: index.clone(),
            reason: format!("field `weight_map.{tensor}` is not a file name"),
        })?;
        shards.push(file.to_string());
    }
    shards.sort();
    shards.dedup();
    let mut files = Vec::with_capacity(shards.len());
    for shard in shards {
        let path = dir.join(&shard);
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path,
                what: format!("weight shard listed in {}", index.display()),
            });
        }
        files.push(path);
    }
    if files.is_empty() {
        return Err(ModelError::File {
            path: index,
            reason: "field `weight_map` lists no shard".into(),
        });
    }
    Ok(files)
}
