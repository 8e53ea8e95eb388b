//! `--device cpu|cuda|metal|auto` parsing and the dtype each device computes in.

use candle_core::{DType, Device};

use super::error::{ModelError, ModelResult};

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
                "--device",
                format!("`{other}` is not one of cpu, cuda, metal, auto"),
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
                    reason: format!("no usable CUDA GPU 0: {e}"),
                })
            }
            DeviceChoice::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(not_compiled("metal"));
                }
                Device::new_metal(0).map_err(|e| ModelError::Device {
                    device: "metal".into(),
                    reason: format!("no usable Metal GPU 0: {e}"),
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
            .contains("--device"));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let err = DeviceChoice::Cuda.open().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
