// Philox4x32-10 (Salmon et al., SC'11) and the dropout mask of SPEC.md §4, shared by every kernel
// and by the CPU references in cuda/dev. Host and device code: the host build is how the known-
// answer vectors and the Java masks are checked on machines without a GPU (cuda/dev selftest).
// Must stay bit-identical to dev.rslora.dropout.Philox4x32 / DropoutMask.
#pragma once
#include <stdint.h>
#include "rslora_params.h"

#if defined(__CUDACC__)
#define RS_HD __host__ __device__ __forceinline__
#else
#define RS_HD inline
#endif

struct RsU32x4 {
    uint32_t v[4];
};

RS_HD uint32_t rs_mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * (uint64_t)b) >> 32);
#endif
}

// Ten rounds on counter (c0..c3) with key (k0, k1); the key is bumped before rounds 1..9.
RS_HD RsU32x4 rs_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += W0;
            k1 += W1;
        }
        uint32_t hi0 = rs_mulhi32(M0, c0), lo0 = M0 * c0;
        uint32_t hi1 = rs_mulhi32(M1, c2), lo1 = M1 * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    RsU32x4 out;
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

// The dropout multipliers of X[row, col4 .. col4+3] (col4 % 4 == 0: the four columns of one
// Philox call): m[e] = scale where kept, 0 where dropped. Caller checks d.enabled.
RS_HD void rs_dropout_quad(const RsDropout& d, uint32_t row, uint32_t col4, float m[4]) {
    RsU32x4 bits = rs_philox4x32_10(col4 >> 2, row, d.layer, d.step, d.key_lo, d.key_hi);
    for (int e = 0; e < 4; ++e) {
        m[e] = (bits.v[e] >> 8) >= d.threshold ? d.scale : 0.0f;
    }
}

// The multiplier of one element X[row, col]: scale or 0 (identity 1 when disabled).
RS_HD float rs_dropout_one(const RsDropout& d, uint32_t row, uint32_t col) {
    if (!d.enabled) {
        return 1.0f;
    }
    RsU32x4 bits = rs_philox4x32_10(col >> 2, row, d.layer, d.step, d.key_lo, d.key_hi);
    return (bits.v[col & 3u] >> 8) >= d.threshold ? d.scale : 0.0f;
}
