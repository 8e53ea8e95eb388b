// A stand-in for the CUDA built-ins that kernels/*.cu use, so that a kernel compiles as C++17 on
// a machine without a GPU and its indexing and arithmetic can be tested on the host
// (src/model/testing/kernels_on_host.rs): the qualifiers (dropped), the launch coordinates
// (globals the driver sets before each call) and the bit casts. Nothing more.
#pragma once

#include <cstddef>
#include <cstring>

#define __device__
#define __global__

struct dim3 {
    unsigned int x, y, z;
};

// The coordinates of the thread being run; set by the driver before each call.
extern dim3 blockIdx, threadIdx, blockDim;

inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
