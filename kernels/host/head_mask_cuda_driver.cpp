// Runs kernels/head_mask.cu's kernels on the host, one call per thread of the launch
// src/model/gpu/cuda.rs makes: a block per output row (grid.x = N*T), `threads` threads per
// block striding over the H*Dh columns. Protocol: driver_io.h, `threads` = the block size.
//
// Build: c++ -std=c++17 -ffp-contract=off -I kernels/host head_mask_cuda_driver.cpp

#include "cuda_runtime_host.h"

#include "../head_mask.cu"

#include <cmath>

#include "driver_io.h"

dim3 blockIdx, threadIdx, blockDim;

namespace {

template <typename D>
using ZeroKernel = void (*)(const typename D::storage *, const typename D::storage *,
                            typename D::storage *, unsigned int, unsigned int, unsigned int);
template <typename D>
using MeanKernel = void (*)(const typename D::storage *, const typename D::storage *,
                            const typename D::storage *, typename D::storage *, unsigned int,
                            unsigned int, unsigned int);

template <typename D>
std::vector<typename D::storage> to_storage(const std::vector<float> &values) {
    std::vector<typename D::storage> out;
    out.reserve(values.size());
    for (float v : values) {
        out.push_back(D::store(v));
    }
    return out;
}

template <typename D>
std::vector<float> run(ZeroKernel<D> zero, MeanKernel<D> with_mean, const Problem &p) {
    const auto ctx = to_storage<D>(p.ctx), scale = to_storage<D>(p.scale);
    const auto mean = to_storage<D>(p.mean);
    std::vector<typename D::storage> out(std::size_t(p.rows()) * p.cols(), D::store(NAN));
    blockDim = dim3{p.threads, 1, 1};
    for (unsigned int b = 0; b < p.rows(); ++b) {
        blockIdx = dim3{b, 0, 0};
        for (unsigned int t = 0; t < p.threads; ++t) {
            threadIdx = dim3{t, 0, 0};
            if (p.with_mean != 0) {
                with_mean(ctx.data(), scale.data(), mean.data(), out.data(), p.heads, p.len,
                          p.head_dim);
            } else {
                zero(ctx.data(), scale.data(), out.data(), p.heads, p.len, p.head_dim);
            }
        }
    }
    std::vector<float> values;
    values.reserve(out.size());
    for (const auto v : out) {
        values.push_back(D::load(v));
    }
    return values;
}

}  // namespace

int main() {
    Problem p;
    if (!read_problem(p)) {
        return 2;
    }
    switch (p.dtype) {
        case 0:
            write_floats(run<F32>(head_mask_merge_f32, head_mask_merge_mean_f32, p));
            return 0;
        case 1:
            write_floats(run<F16>(head_mask_merge_f16, head_mask_merge_mean_f16, p));
            return 0;
        case 2:
            write_floats(run<BF16>(head_mask_merge_bf16, head_mask_merge_mean_bf16, p));
            return 0;
        default:
            std::fprintf(stderr, "driver: unknown dtype %u\n", p.dtype);
            return 2;
    }
}
