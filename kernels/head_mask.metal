// Fused head op + head merge on Metal: the o_proj input from the per-head attention context.
//
//   out[n, t, h*Dh + d] = ctx[n, h, t, d] * s[n, h] + (1 - s[n, h]) * mean[h, d]
//
// The contract of head_mask.cu: ctx [N, H, T, Dh], s [N, H], mean [H, Dh] (the `_mean` kernels;
// the others drop the mean term, i.e. zero ablation), out [N, T, H*Dh]; all contiguous and of one
// type: float, half, or bfloat where the Metal language has it (MSL 3.1, macOS 14). Arithmetic is
// in float with one rounding at the store.
//
// Compiled at run time from this source (src/model/gpu/metal.rs). Grid: x over the H*Dh
// columns in threadgroups of up to 256 threads, y over the N*T output rows; threads past the last
// column return. The scalar sizes come in one uint4: (rows N*T, heads H, positions T, head_dim Dh).
//
// Tests: src/model/testing/kernels_on_host.rs compiles this file as C++ (kernels/host/) and
// compares it with the CPU's plain ops; tests/gpu.rs runs it on a Metal GPU.

#include <metal_stdlib>
using namespace metal;

template <typename T, bool MEAN>
void head_mask_merge(
    const device T *ctx,
    const device T *scale,
    const device T *mean,
    device T *out,
    const uint4 sizes,
    const uint2 at) {
    const uint rows = sizes.x;
    const uint heads = sizes.y;
    const uint len = sizes.z;
    const uint head_dim = sizes.w;
    const uint cols = heads * head_dim;
    const uint c = at.x;
    const uint row = at.y;  // n * T + t
    if (c >= cols || row >= rows) {
        return;
    }
    const uint n = row / len;
    const uint t = row - n * len;
    const uint h = c / head_dim;
    const uint d = c - h * head_dim;
    const ulong from = (ulong(n * heads + h) * len + t) * head_dim + d;
    const float s = float(scale[n * heads + h]);
    float v = float(ctx[from]) * s;
    if (MEAN) {
        v += (1.0f - s) * float(mean[c]);
    }
    out[ulong(row) * cols + c] = T(v);
}

#define HEAD_MASK_MERGE(NAME, T)                                                             \
    kernel void head_mask_merge_##NAME(                                                      \
        const device T *ctx [[buffer(0)]],                                                   \
        const device T *scale [[buffer(1)]],                                                 \
        device T *out [[buffer(2)]],                                                         \
        constant uint4 &sizes [[buffer(3)]],                                                 \
        uint2 at [[thread_position_in_grid]]) {                                              \
        head_mask_merge<T, false>(ctx, scale, ctx, out, sizes, at);                          \
    }                                                                                        \
    kernel void head_mask_merge_mean_##NAME(                                                 \
        const device T *ctx [[buffer(0)]],                                                   \
        const device T *scale [[buffer(1)]],                                                 \
        const device T *mean [[buffer(2)]],                                                  \
        device T *out [[buffer(3)]],                                                         \
        constant uint4 &sizes [[buffer(4)]],                                                 \
        uint2 at [[thread_position_in_grid]]) {                                              \
        head_mask_merge<T, true>(ctx, scale, mean, out, sizes, at);                          \
    }

HEAD_MASK_MERGE(f32, float)
HEAD_MASK_MERGE(f16, half)
#if defined(__HAVE_BFLOAT__)
HEAD_MASK_MERGE(bf16, bfloat)
#endif
