//! The `device` (cpu, cuda, metal, auto) and `dtype` (auto, f32, f16, bf16) choices, parsed
//! from text, and the dtype each device computes in.

use candle_core::{DType, Device};

use crate::model::error::{candle_message, ModelError, ModelResult};

/// The device a user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU (f32).
    Cpu,
    /// CUDA GPU 0 (bf16); needs the `cuda` feature.
    Cuda,
    /// Metal GPU 0 (f16); needs the `metal` feature.
    Metal,
    /// CUDA if compiled and present, else Metal if compiled and present, else the CPU.
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = ModelError;

    fn from_str(s: &str) -> ModelResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            "metal" => Ok(DeviceChoice::Metal),
            "auto" => Ok(DeviceChoice::Auto),
            other => Err(ModelError::input(
                "device",
                format!("`{other}` is not one of cpu, cuda (or gpu), metal, auto"),
            )),
        }
    }
}

impl DeviceChoice {
    /// Opens the device; a clear error when the build lacks the feature or the machine the GPU.
    pub fn open(self) -> ModelResult<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda => {
                if !cfg!(feature = "cuda") {
                    return Err(not_compiled("cuda"));
                }
                Device::new_cuda(0).map_err(|e| ModelError::Device {
                    device: "cuda".into(),
                    reason: format!("no usable CUDA GPU 0: {}", candle_message(&e)),
                })
            }
            DeviceChoice::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(not_compiled("metal"));
                }
                Device::new_metal(0).map_err(|e| ModelError::Device {
                    device: "metal".into(),
                    reason: format!("no usable Metal GPU 0: {}", candle_message(&e)),
                })
            }
            DeviceChoice::Auto => {
                if cfg!(feature = "cuda") {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                }
                if cfg!(feature = "metal") {
                    if let Ok(d) = Device::new_metal(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

fn not_compiled(feature: &str) -> ModelError {
    ModelError::Device {
        device: feature.into(),
        reason: format!("this spex was built without the `{feature}` feature (rebuild with `--features {feature}`)"),
    }
}

/// The compute dtype for a device: f32 on the CPU (candle has no bf16 GEMM there), bf16 on CUDA, f16 on Metal.
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cuda() {
        DType::BF16
    } else if device.is_metal() {
        DType::F16
    } else {
        DType::F32
    }
}

/// The compute dtype a user asked for (field `dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DTypeChoice {
    /// The device's default ([`default_dtype`]).
    Auto,
    /// f32 anywhere.
    F32,
    /// f16, on GPUs only.
    F16,
    /// bf16: on GPUs the whole model; on the CPU the projections' products (f32 sums, f32
    /// norms, attention and softmax).
    BF16,
}

impl std::str::FromStr for DTypeChoice {
    type Err = ModelError;

    fn from_str(s: &str) -> ModelResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DTypeChoice::Auto),
            "f32" | "float32" => Ok(DTypeChoice::F32),
            "f16" | "float16" | "half" => Ok(DTypeChoice::F16),
            "bf16" | "bfloat16" => Ok(DTypeChoice::BF16),
            other => Err(ModelError::input(
                "dtype",
                format!("`{other}` is not one of auto, f32 (float32), f16 (float16, half), bf16 (bfloat16)"),
            )),
        }
    }
}

impl DTypeChoice {
    /// The dtype to compute in on `device`; f16 on the CPU is an error (its kernels are f32 or
    /// bf16, and candle's CPU half-precision matrix products are slow).
    pub fn resolve(self, device: &Device) -> ModelResult<DType> {
        let dtype = match self {
            DTypeChoice::Auto => return Ok(default_dtype(device)),
            DTypeChoice::F32 => DType::F32,
            DTypeChoice::F16 => DType::F16,
            DTypeChoice::BF16 => DType::BF16,
        };
        if device.is_cpu() && dtype == DType::F16 {
            return Err(ModelError::input(
                "dtype",
                "f16 needs a GPU (device cuda or metal): the CPU computes in f32 or bf16",
            ));
        }
        Ok(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_opens_cpu() {
        let d: DeviceChoice = "CPU".parse().unwrap();
        assert!(matches!(d.open().unwrap(), Device::Cpu));
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
        assert!("tpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .to_string()
            .contains("`device`"));
    }

    #[test]
    fn dtype_choices_resolve_per_device() {
        let cpu = Device::Cpu;
        for (text, want) in [
            ("auto", DType::F32),
            ("F32", DType::F32),
            ("float32", DType::F32),
            ("bf16", DType::BF16),
        ] {
            let choice: DTypeChoice = text.parse().unwrap();
            assert_eq!(choice.resolve(&cpu).unwrap(), want, "{text}");
        }
        for text in ["f16", "half"] {
            let err = text
                .parse::<DTypeChoice>()
                .unwrap()
                .resolve(&cpu)
                .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("`dtype`") && msg.contains("f16") && msg.contains("GPU"),
                "{msg}"
            );
        }
        let err = "int8".parse::<DTypeChoice>().unwrap_err().to_string();
        assert!(err.contains("`dtype`") && err.contains("int8"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let err = DeviceChoice::Cuda.open().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
