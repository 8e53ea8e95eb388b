//! A GGUF file's metadata with typed accessors whose errors name the file and the key.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::quantized::gguf_file::Value;

use crate::model::error::{ModelError, ModelResult};

/// A GGUF file's metadata (key -> value) with typed accessors whose errors name the file and key.
#[derive(Debug)]
pub struct GgufMetadata {
    /// The GGUF file the metadata came from.
    pub path: PathBuf,
    /// The raw key/value pairs.
    pub values: HashMap<String, Value>,
}

impl GgufMetadata {
    /// The value at `key`, or an error naming the missing key.
    pub fn get(&self, key: &str) -> ModelResult<&Value> {
        self.values
            .get(key)
            .ok_or_else(|| self.field_error(key, "missing"))
    }

    /// An error about field `key` of this file.
    pub fn field_error(&self, key: &str, reason: &str) -> ModelError {
        ModelError::Field {
            path: self.path.clone(),
            field: key.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A required string.
    pub fn string(&self, key: &str) -> ModelResult<&str> {
        as_str(self.get(key)?).ok_or_else(|| self.field_error(key, "not a string"))
    }

    /// An optional string (an error if present with another type).
    pub fn opt_string(&self, key: &str) -> ModelResult<Option<&str>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(_) => self.string(key).map(Some),
        }
    }

    /// A required non-negative integer.
    pub fn usize(&self, key: &str) -> ModelResult<usize> {
        let value = self.get(key)?;
        as_u64(value)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.field_error(key, &format!("not a non-negative integer: {value:?}")))
    }

    /// An optional non-negative integer.
    pub fn opt_usize(&self, key: &str) -> ModelResult<Option<usize>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(_) => self.usize(key).map(Some),
        }
    }

    /// A required number (f32 values widened exactly, as Python's converters do).
    pub fn f64(&self, key: &str) -> ModelResult<f64> {
        let value = self.get(key)?;
        let number = match value {
            Value::F32(v) => Some(f64::from(*v)),
            Value::F64(v) => Some(*v),
            other => as_u64(other).map(|v| v as f64),
        };
        number
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.field_error(key, &format!("not a finite number: {value:?}")))
    }

    /// An optional number.
    pub fn opt_f64(&self, key: &str) -> ModelResult<Option<f64>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(_) => self.f64(key).map(Some),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> ModelResult<Option<bool>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.field_error(key, "not a boolean")),
        }
    }

    /// A required array of strings.
    pub fn strings(&self, key: &str) -> ModelResult<Vec<&str>> {
        self.array(key, "a string", as_str)
    }

    /// A required array of integers.
    pub fn integers(&self, key: &str) -> ModelResult<Vec<i64>> {
        self.array(key, "an integer", as_i64)
    }

    /// A required array whose every item `convert` accepts; errors name the key and the item.
    fn array<'a, T>(
        &'a self,
        key: &str,
        what: &str,
        convert: impl Fn(&'a Value) -> Option<T>,
    ) -> ModelResult<Vec<T>> {
        let Value::Array(items) = self.get(key)? else {
            return Err(self.field_error(key, "not an array"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                convert(item)
                    .ok_or_else(|| self.field_error(key, &format!("item {i} is not {what}")))
            })
            .collect()
    }
}

fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    as_i64(value).and_then(|v| u64::try_from(v).ok())
}
