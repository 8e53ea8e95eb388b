// Fused head op + head merge: the o_proj input from the per-head attention context.
//
//   out[n, t, h*Dh + d] = ctx[n, h, t, d] * s[n, h] + (1 - s[n, h]) * mean[h, d]
//
// ctx [N, H, T, Dh], s [N, H], mean [H, Dh] (the `_mean` kernels; the others drop the mean term,
// i.e. zero ablation), out [N, T, H*Dh]; all contiguous and of one dtype (f32, f16 or bf16).
// Arithmetic is in f32 with one rounding at the store.
//
// Compiled at run time by NVRTC (src/model/gpu/cuda.rs), so it includes no header: f16
// values move through 16-bit PTX conversions and bf16 values through bit operations. The tests
// also compile it as host C++ (kernels/host/cuda_runtime_host.h,
// src/model/testing/kernels_on_host.rs).
//
// Launch: one block per output row (n, t), grid.x = N*T; the block's threads stride over the
// H*Dh columns, so stores are contiguous and each head's Dh reads are too.

struct F32 {
    typedef float storage;
    static __device__ float load(float x) { return x; }
    static __device__ float store(float x) { return x; }
};

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
struct F16 {
    typedef unsigned short storage;
    static __device__ float load(unsigned short x) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
        return f;
    }
    static __device__ unsigned short store(float f) {
        unsigned short x;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(x) : "f"(f));
        return x;
    }
};
#else
// The host build of the tests (kernels/host/): the same IEEE conversions through _Float16, which
// rounds to nearest even as cvt.rn does.
struct F16 {
    typedef unsigned short storage;
    static float load(unsigned short x) {
        _Float16 h;
        memcpy(&h, &x, sizeof h);
        return (float)h;
    }
    static unsigned short store(float f) {
        const _Float16 h = (_Float16)f;
        unsigned short x;
        memcpy(&x, &h, sizeof x);
        return x;
    }
};
#endif

struct BF16 {
    typedef unsigned short storage;
    static __device__ float load(unsigned short x) {
        return __uint_as_float(((unsigned int)x) << 16);
    }
    // Round to nearest, ties to even; NaN stays a (quiet) NaN.
    static __device__ unsigned short store(float f) {
        unsigned int u = __float_as_uint(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            return (unsigned short)((u >> 16) | 0x40u);
        }
        u += 0x7fffu + ((u >> 16) & 1u);
        return (unsigned short)(u >> 16);
    }
};

template <typename D, bool MEAN>
__device__ void head_mask_merge(
    const typename D::storage* __restrict__ ctx,
    const typename D::storage* __restrict__ scale,
    const typename D::storage* __restrict__ mean,
    typename D::storage* __restrict__ out,
    unsigned int heads,
    unsigned int len,
    unsigned int head_dim) {
    const unsigned int row = blockIdx.x;  // n * T + t
    const unsigned int n = row / len;
    const unsigned int t = row - n * len;
    const unsigned int cols = heads * head_dim;
    for (unsigned int c = threadIdx.x; c < cols; c += blockDim.x) {
        const unsigned int h = c / head_dim;
        const unsigned int d = c - h * head_dim;
        const size_t at = ((size_t)(n * heads + h) * len + t) * head_dim + d;
        const float s = D::load(scale[n * heads + h]);
        float v = D::load(ctx[at]) * s;
        if (MEAN) {
            v += (1.0f - s) * D::load(mean[c]);
        }
        out[(size_t)row * cols + c] = D::store(v);
    }
}

#define HEAD_MASK_MERGE(NAME, D)                                                              \
    extern "C" __global__ void head_mask_merge_##NAME(                                        \
        const D::storage* ctx, const D::storage* scale, D::storage* out, unsigned int heads,  \
        unsigned int len, unsigned int head_dim) {                                            \
        head_mask_merge<D, false>(ctx, scale, 0, out, heads, len, head_dim);                  \
    }                                                                                         \
    extern "C" __global__ void head_mask_merge_mean_##NAME(                                   \
        const D::storage* ctx, const D::storage* scale, const D::storage* mean,               \
        D::storage* out, unsigned int heads, unsigned int len, unsigned int head_dim) {       \
        head_mask_merge<D, true>(ctx, scale, mean, out, heads, len, head_dim);                \
    }

HEAD_MASK_MERGE(f32, F32)
HEAD_MASK_MERGE(f16, F16)
HEAD_MASK_MERGE(bf16, BF16)
