// The stdin/stdout protocol of the kernel drivers (head_mask_*_driver.cpp), which run a GPU
// kernel's source on the host for the test in src/model/testing/kernels_on_host.rs:
//
//   stdin:  u32 dtype (0 f32, 1 f16, 2 bf16), u32 with_mean, u32 N, H, T, Dh, u32 threads (the
//           launch's threadgroup width or block size), then f32 ctx [N, H, T, Dh], f32 scale
//           [N, H] and, with_mean only, f32 mean [H, Dh], all little-endian
//   stdout: f32 out [N, T, H*Dh]; an element no thread wrote comes back as NaN
//   exit:   0, or 2 on malformed input
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

struct Problem {
    std::uint32_t dtype, with_mean, n, heads, len, head_dim, threads;
    std::vector<float> ctx, scale, mean;

    std::uint32_t rows() const { return n * len; }
    std::uint32_t cols() const { return heads * head_dim; }
};

// Reads one problem from stdin; false (after a message) when the input is malformed.
inline bool read_problem(Problem &p) {
    std::uint32_t head[7];
    if (std::fread(head, sizeof head[0], 7, stdin) != 7 || head[6] == 0) {
        std::fprintf(stderr, "driver: bad header\n");
        return false;
    }
    p.dtype = head[0];
    p.with_mean = head[1];
    p.n = head[2];
    p.heads = head[3];
    p.len = head[4];
    p.head_dim = head[5];
    p.threads = head[6];
    const std::size_t counts[3] = {std::size_t(p.n) * p.heads * p.len * p.head_dim,
                                   std::size_t(p.n) * p.heads,
                                   p.with_mean != 0 ? std::size_t(p.heads) * p.head_dim : 0};
    std::vector<float> *dst[3] = {&p.ctx, &p.scale, &p.mean};
    for (int i = 0; i < 3; ++i) {
        dst[i]->resize(counts[i]);
        if (std::fread(dst[i]->data(), sizeof(float), counts[i], stdin) != counts[i]) {
            std::fprintf(stderr, "driver: input shorter than its header says\n");
            return false;
        }
    }
    return true;
}

// Writes the output, converted to f32, to stdout.
inline void write_floats(const std::vector<float> &out) {
    std::fwrite(out.data(), sizeof(float), out.size(), stdout);
}
