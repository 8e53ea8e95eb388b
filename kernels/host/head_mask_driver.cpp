// Runs kernels/head_mask.metal's kernels on the host, one call per thread of the grid the Metal
// launch dispatches (src/model/head_mask/metal.rs), for the test in src/model/metal_kernel_host.rs.
//
//   stdin:  u32 dtype (0 float, 1 half, 2 bfloat), u32 with_mean, u32 N, H, T, Dh,
//           u32 threadgroup width, then f32 ctx [N, H, T, Dh], f32 scale [N, H] and, with_mean
//           only, f32 mean [H, Dh], all little-endian
//   stdout: f32 out [N, T, H*Dh]; an element no thread wrote comes back as NaN
//   exit:   0, or 2 on malformed input
//
// Build: c++ -std=c++17 -ffp-contract=off -Wno-attributes -I kernels/host head_mask_driver.cpp

#include "../head_mask.metal"

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

bool read_u32s(std::uint32_t *dst, std::size_t count) {
    return std::fread(dst, sizeof(std::uint32_t), count, stdin) == count;
}

bool read_floats(std::vector<float> &dst, std::size_t count) {
    dst.resize(count);
    return std::fread(dst.data(), sizeof(float), count, stdin) == count;
}

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
using ZeroKernel = void (*)(const T *, const T *, T *, const uint4 &, uint2);
template <typename T>
using MeanKernel = void (*)(const T *, const T *, const T *, T *, const uint4 &, uint2);

// Every thread of the grid: x over ceil(cols / width) threadgroups of `width`, y over the rows.
template <typename T>
int run(ZeroKernel<T> zero, MeanKernel<T> with_mean, const std::uint32_t *head,
        const std::vector<float> &ctx_f, const std::vector<float> &scale_f,
        const std::vector<float> &mean_f) {
    const uint n = head[2], heads = head[3], len = head[4], head_dim = head[5], width = head[6];
    const uint rows = n * len, cols = heads * head_dim;
    const std::vector<T> ctx = to_type<T>(ctx_f), scale = to_type<T>(scale_f);
    const std::vector<T> mean = to_type<T>(mean_f);
    std::vector<T> out(std::size_t(rows) * cols, T(NAN));
    const uint4 sizes{rows, heads, len, head_dim};
    const uint grid_x = (cols + width - 1) / width * width;
    for (uint y = 0; y < rows; ++y) {
        for (uint x = 0; x < grid_x; ++x) {
            const uint2 at{x, y};
            if (head[1] != 0) {
                with_mean(ctx.data(), scale.data(), mean.data(), out.data(), sizes, at);
            } else {
                zero(ctx.data(), scale.data(), out.data(), sizes, at);
            }
        }
    }
    for (const T &v : out) {
        const float f = float(v);
        std::fwrite(&f, sizeof f, 1, stdout);
    }
    return 0;
}

}  // namespace

int main() {
    std::uint32_t head[7];
    if (!read_u32s(head, 7) || head[6] == 0) {
        std::fprintf(stderr, "head_mask_driver: bad header\n");
        return 2;
    }
    const std::size_t n = head[2], heads = head[3], len = head[4], head_dim = head[5];
    std::vector<float> ctx, scale, mean;
    if (!read_floats(ctx, n * heads * len * head_dim) || !read_floats(scale, n * heads) ||
        !read_floats(mean, head[1] != 0 ? heads * head_dim : 0)) {
        std::fprintf(stderr, "head_mask_driver: input shorter than its header says\n");
        return 2;
    }
    switch (head[0]) {
        case 0:
            return run<float>(head_mask_merge_f32, head_mask_merge_mean_f32, head, ctx, scale, mean);
        case 1:
            return run<half>(head_mask_merge_f16, head_mask_merge_mean_f16, head, ctx, scale, mean);
        case 2:
            return run<bfloat>(head_mask_merge_bf16, head_mask_merge_mean_bf16, head, ctx, scale,
                               mean);
        default:
            std::fprintf(stderr, "head_mask_driver: unknown dtype %u\n", head[0]);
            return 2;
    }
}
