// Runs kernels/head_mask.metal's kernels on the host, one call per thread of the grid the Metal
// launch dispatches (src/model/gpu/metal.rs: x over ceil(H*Dh / width) threadgroups of
// `width` threads, y over the N*T rows). Protocol: driver_io.h, `threads` = the width.
//
// Build: c++ -std=c++17 -ffp-contract=off -Wno-attributes -I kernels/host head_mask_metal_driver.cpp

#include "../head_mask.metal"

#include <cmath>

#include "driver_io.h"

namespace {

template <typename T>
using ZeroKernel = void (*)(const T *, const T *, T *, const uint4 &, uint2);
template <typename T>
using MeanKernel = void (*)(const T *, const T *, const T *, T *, const uint4 &, uint2);

template <typename T>
std::vector<T> to_type(const std::vector<float> &values) {
    std::vector<T> out;
    out.reserve(values.size());
    for (float v : values) {
        out.push_back(T(v));
    }
    return out;
}

template <typename T>
std::vector<float> run(ZeroKernel<T> zero, MeanKernel<T> with_mean, const Problem &p) {
    const std::vector<T> ctx = to_type<T>(p.ctx), scale = to_type<T>(p.scale);
    const std::vector<T> mean = to_type<T>(p.mean);
    std::vector<T> out(std::size_t(p.rows()) * p.cols(), T(NAN));
    const uint4 sizes{p.rows(), p.heads, p.len, p.head_dim};
    const uint grid_x = (p.cols() + p.threads - 1) / p.threads * p.threads;
    for (uint y = 0; y < p.rows(); ++y) {
        for (uint x = 0; x < grid_x; ++x) {
            const uint2 at{x, y};
            if (p.with_mean != 0) {
                with_mean(ctx.data(), scale.data(), mean.data(), out.data(), sizes, at);
            } else {
                zero(ctx.data(), scale.data(), out.data(), sizes, at);
            }
        }
    }
    std::vector<float> values;
    values.reserve(out.size());
    for (const T &v : out) {
        values.push_back(float(v));
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
            write_floats(run<float>(head_mask_merge_f32, head_mask_merge_mean_f32, p));
            return 0;
        case 1:
            write_floats(run<half>(head_mask_merge_f16, head_mask_merge_mean_f16, p));
            return 0;
        case 2:
            write_floats(run<bfloat>(head_mask_merge_bf16, head_mask_merge_mean_bf16, p));
            return 0;
        default:
            std::fprintf(stderr, "driver: unknown dtype %u\n", p.dtype);
            return 2;
    }
}
