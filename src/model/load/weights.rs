//! Checkpoint weights: the safetensors files a [`ModelSource`](crate::model::ModelSource) resolved,
//! read tensor by tensor, or an in-memory tensor map; read with shape checks that name the
//! checkpoint and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use super::safetensors::read_safetensors;
use crate::model::cpu::features::Products;
use crate::model::error::{ModelError, ModelResult};

/// A source of named weights converted to one dtype on one device.
pub struct Weights {
    tensors: Mutex<HashMap<String, Tensor>>,
    /// The checkpoint the tensors came from (a model folder or a GGUF file), named in errors.
    origin: PathBuf,
    dtype: DType,
    device: Device,
    /// How the projections built from these weights multiply on the CPU.
    products: Products,
}

impl Weights {
    /// Reads safetensors `files` (as [`ModelSource::Folder`](crate::model::ModelSource::Folder)
    /// lists them) one tensor at a time, so the weights are held once; errors name their folder.
    pub fn from_files(files: &[PathBuf], dtype: DType, device: &Device) -> ModelResult<Weights> {
        let mut tensors = HashMap::new();
        for file in files {
            read_safetensors(file, dtype, device, &mut tensors)?;
        }
        let origin = files
            .first()
            .and_then(|f| f.parent())
            .unwrap_or_else(|| Path::new("."));
        Ok(Self::from_tensors(tensors, origin, dtype, device))
    }

    /// Wraps tensors already in memory (e.g. dequantized from a GGUF file), keyed by HF names;
    /// `origin` (the file they came from) is named in errors.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        origin: &Path,
        dtype: DType,
        device: &Device,
    ) -> Weights {
        Weights {
            tensors: Mutex::new(tensors),
            origin: origin.to_path_buf(),
            dtype,
            device: device.clone(),
            products: Products::f32_detected(),
        }
    }

    /// These weights with the CPU products their projections use (default: f32 with every
    /// feature this CPU has).
    pub fn with_products(mut self, products: Products) -> Weights {
        self.products = products;
        self
    }

    /// The dtype every tensor read from these weights has.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// How the projections built from these weights multiply on the CPU.
    pub fn products(&self) -> Products {
        self.products
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
        let t = t.ok_or_else(|| self.missing(name))?;
        let t = t.to_dtype(self.dtype)?.to_device(&self.device)?;
        if t.dims() != shape {
            return Err(ModelError::WeightShape {
                path: self.origin.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                got: t.dims().to_vec(),
            });
        }
        Ok(t)
    }

    /// The error for a tensor `name` this checkpoint lacks.
    pub fn missing(&self, name: &str) -> ModelError {
        ModelError::MissingWeight {
            path: self.origin.clone(),
            tensor: name.to_string(),
        }
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
