//! The Metal half of the fused head-mask merge: `kernels/head_mask.metal`, compiled from source
//! once per process and device (the library and each function's pipeline are cached), launched on
//! Metal storages on the device's shared command encoder.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use candle_core::backend::BackendStorage;
use candle_core::metal_backend::DeviceId;
use candle_core::{Layout, MetalDevice, MetalStorage, Shape};
use candle_metal_kernels::metal::{ComputeCommandEncoder, ComputePipeline, Library};
use objc2_metal::MTLSize;

use super::launch::{kernel_name, Dims};

const SOURCE: &str = include_str!("../../../kernels/head_mask.metal");
/// Threads per threadgroup along the columns, at most.
const GROUP_WIDTH: usize = 256;

/// Launches the kernel for the storages' dtype; shapes were checked by `head_mask_merge`, the
/// layouts (contiguity, element counts) are checked here again before any buffer is bound.
pub(super) fn forward(
    ctx: &MetalStorage,
    l_ctx: &Layout,
    scale: &MetalStorage,
    l_scale: &Layout,
    mean: Option<(&MetalStorage, &Layout)>,
) -> candle_core::Result<(MetalStorage, Shape)> {
    let d = Dims::of(l_ctx, l_scale, mean.map(|(_, l)| l))?;
    let dtype = ctx.dtype();
    for (what, other) in [("scale", Some(scale)), ("mean", mean.map(|(m, _)| m))] {
        if let Some(o) = other.filter(|o| o.dtype() != dtype) {
            candle_core::bail!(
                "head-mask merge: {what} is {:?} but ctx is {dtype:?}",
                o.dtype()
            )
        }
    }
    let name = kernel_name(dtype, mean.is_some())?;
    let device = ctx.device();
    let (rows, cols) = (d.rows(), d.cols());
    let out = device
        .new_buffer_builder()
        .with_size_for(rows * cols, dtype)
        .with_label("head-mask-merge")
        .build()?;
    if rows * cols > 0 {
        let pipeline = pipeline(device, &name)?;
        let guard = device.command_encoder()?;
        let encoder: &ComputeCommandEncoder = guard.as_ref();
        encoder.set_compute_pipeline_state(&pipeline);
        let mut slot = 0;
        let mut bind_input = |storage: &MetalStorage, layout: &Layout| {
            let offset = layout.start_offset() * dtype.size_in_bytes();
            encoder.set_input_buffer(slot, Some(storage.buffer()), offset);
            slot += 1;
        };
        bind_input(ctx, l_ctx);
        bind_input(scale, l_scale);
        if let Some((m, l)) = mean {
            bind_input(m, l);
        }
        encoder.set_output_buffer(slot, Some(&out), 0);
        let sizes = [rows, d.h, d.t, d.dh].map(|x| x as u32);
        encoder.set_bytes(slot + 1, &sizes);
        let width = cols
            .min(GROUP_WIDTH)
            .min(pipeline.max_total_threads_per_threadgroup());
        let groups = MTLSize {
            width: cols.div_ceil(width),
            height: rows,
            depth: 1,
        };
        let group = MTLSize {
            width,
            height: 1,
            depth: 1,
        };
        encoder.dispatch_thread_groups(groups, group);
    }
    let storage = MetalStorage::new(out, device.clone(), rows * cols, dtype);
    Ok((storage, d.out_shape()))
}

/// A device's compiled `kernels/head_mask.metal` and the pipelines built from it so far.
struct Compiled {
    library: Library,
    pipelines: HashMap<String, ComputePipeline>,
}

/// The pipeline of kernel `name` on `device`: the source is compiled once per process and device,
/// each kernel's pipeline built on first use.
fn pipeline(device: &MetalDevice, name: &str) -> candle_core::Result<ComputePipeline> {
    static COMPILED: OnceLock<Mutex<HashMap<DeviceId, Compiled>>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| candle_core::Error::Msg("head-mask merge: kernel cache poisoned".into()))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        candle_core::Error::Msg(format!("kernels/head_mask.metal: {what}: {e}"))
    };
    let entry = match compiled.entry(device.id()) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(v) => {
            let library = device
                .metal_device()
                .new_library_with_source(SOURCE, None)
                .map_err(|e| fail("compiling", &e))?;
            v.insert(Compiled {
                library,
                pipelines: HashMap::new(),
            })
        }
    };
    if let Some(p) = entry.pipelines.get(name) {
        return Ok(p.clone());
    }
    let function = entry.library.get_function(name, None).map_err(|e| {
        let why = match name.ends_with("bf16") {
            true => "bfloat needs Metal 3.1 (macOS 14); use f16",
            false => "missing",
        };
        fail(&format!("function {name} ({why})"), &e)
    })?;
    let pipeline = device
        .metal_device()
        .new_compute_pipeline_state_with_function(&function)
        .map_err(|e| fail(name, &e))?;
    entry.pipelines.insert(name.to_string(), pipeline.clone());
    Ok(pipeline)
}
