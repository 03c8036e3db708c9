// The sm80 device functions of GPU-CONTRACT.md (GPU side: cuda/arch/sm80.cuh) on the CPU emulation.
// (GPU-CONTRACT.md lies outside this repository: see cuda/REVIEW.md, "The CPU emulation".)
//
// cp_async_16(dst, src, pred)  cp.async.cg 16 bytes. At the call: dst must be 16-byte aligned and in
//     the window, src 16-byte aligned; the source is read now (pred) or not at all (!pred: zero
//     fill); the 16 destination bytes are overwritten with 0xFF garbage (their content is undefined
//     until the copy completes). The data lands when the thread's cp_async_wait<N> retires the
//     copy's group (commit groups are per thread, oldest first), or when the thread exits: a
//     missing or too weak wait reads the garbage.
// ldmatrix_x{2,4}[_trans](r, row)  warp-collective: lane i gives the address of row i % 8 of matrix
//     i / 8 (x2: lanes 0..15 are used); each row: 8 b16 elements, 16-byte aligned, in the window.
//     Lane l receives, for matrix m, in r[m]: row l/4, columns 2(l%4) (low half) and 2(l%4)+1 (high
//     half); with .trans the element at (row 2(l%4)+j, column l/4), i.e. the transposed matrix.
// mma_16816<T>(d, a, b, c)  warp-collective mma.sync.aligned.m16n8k16.row.col.f32.T.T.f32, with
//     g = lane/4, t = lane%4 (PTX ISA "Matrix Fragments for mma.m16n8k16 with floating point type"):
//     a[0] = A(g, 2t..2t+1), a[1] = A(g+8, 2t..), a[2] = A(g, 2t+8..), a[3] = A(g+8, 2t+8..)
//     b[0] = B(2t..2t+1, g), b[1] = B(2t+8..2t+9, g)       (lower index in the low 16 bits)
//     c/d[0..1] = (g, 2t..2t+1), c/d[2..3] = (g+8, 2t..2t+1).
//     D(i,j) = C(i,j) + sum_k A(i,k)·B(k,j), each product exact in fp32 (bf16/f16 operands), summed in
//     fp32 in ascending k starting from C (one rounding per step). The tensor cores' internal
//     order/rounding is NOT reproduced: results may differ from a GPU in the last bits.
#pragma once

#include "common_emu.h"

namespace rs_emu {

struct CpCopy {
    uint32_t dst;
    unsigned char data[16];
};
struct CpThread {
    std::vector<CpCopy> open;                 // issued since the last commit
    std::vector<std::vector<CpCopy>> groups;  // committed, oldest first
};
inline std::vector<CpThread>& cp_threads() {
    static std::vector<CpThread> v;
    return v;
}
inline bool& cp_used() {  // some thread of the current cluster issued a cp.async (else the hooks have nothing to do)
    static bool used = false;
    return used;
}

inline void cp_land(Cta& c, const std::vector<CpCopy>& copies) {
    for (const CpCopy& k : copies) std::memcpy(shared_ptr(c, k.dst, 16, "cp.async", Site{}), k.data, 16);
}

inline void sm80_cluster_start() {
    if (!cp_used()) return;
    cp_used() = false;
    for (CpThread& t : cp_threads()) {
        t.open.clear();
        t.groups.clear();
    }
}
// a thread that exits lets its copies complete (a GPU does): they land
inline void sm80_thread_exit(Fiber& f) {
    if (!cp_used()) return;
    std::vector<CpThread>& v = cp_threads();
    if (f.idx >= v.size()) return;
    CpThread& t = v[f.idx];
    for (const auto& g : t.groups) cp_land(*f.cta, g);
    cp_land(*f.cta, t.open);
    t.groups.clear();
    t.open.clear();
}
inline bool sm80_registered() {
    static const bool r = [] {
        Hooks h;
        h.cluster_start = sm80_cluster_start;
        h.thread_exit = sm80_thread_exit;
        st().hooks.push_back(h);
        return true;
    }();
    return r;
}
inline const bool sm80_hooks_installed = sm80_registered();

inline CpThread& cp_me() {
    Fiber& f = cur();
    std::vector<CpThread>& v = cp_threads();
    if (v.size() < st().fibers.size()) v.resize(st().fibers.size());
    cp_used() = true;
    return v[f.idx];
}

inline float b16_to_float(uint16_t bits, bool bf16) {
    if (bf16) {
        uint32_t u = (uint32_t)bits << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
    __half_raw r;
    r.x = bits;
    return __half2float(__half(r));
}

template <typename T>
constexpr bool is_bf16() {
    static_assert(std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value,
                  "the tensor-core functions take T = __nv_bfloat16 or __half");
    return std::is_same<T, __nv_bfloat16>::value;
}

template <int NUM, bool TRANS>
inline void ldmatrix(uint32_t* r, uint32_t row_addr, Site site, const char* name) {
    const int kind = (kCollLdmatrix << 8) | (NUM << 1) | (TRANS ? 1 : 0);
    collective(32, kind, name, true, site, &row_addr, r, [site, name](Coll& co) {
        Cta& c = *cur().cta;
        uint16_t m[4][8][8];  // matrix, row, column
        for (int mat = 0; mat < NUM; ++mat) {
            for (int row = 0; row < 8; ++row) {
                const int lane = mat * 8 + row;
                const uint32_t a = *static_cast<const uint32_t*>(co.in[lane]);
                if (a % 16 != 0)
                    die(std::string(name) + ": lane " + std::to_string(lane) + "'s row address " + hex(a) + " is not 16-byte aligned, in " + where() +
                        " at " + site_str(site));
                std::memcpy(m[mat][row], shared_ptr(c, a, 16, name, site), 16);
            }
        }
        for (int lane = 0; lane < 32; ++lane) {
            uint32_t* out = static_cast<uint32_t*>(co.out[lane]);
            const int q = lane / 4, p = 2 * (lane % 4);
            for (int mat = 0; mat < NUM; ++mat) {
                const uint16_t lo = TRANS ? m[mat][p][q] : m[mat][q][p];
                const uint16_t hi = TRANS ? m[mat][p + 1][q] : m[mat][q][p + 1];
                out[mat] = (uint32_t)lo | (uint32_t)hi << 16;
            }
        }
    });
}

struct MmaIn {
    const uint32_t* a;
    const uint32_t* b;
    const float* c;
};

}  // namespace rs_emu

namespace rsarch {

inline void cp_async_16(uint32_t smem_dst, const void* gmem_src, bool pred, RS_EMU_SITE_PARAMS) {
    const ::rs_emu::Site site = RS_EMU_SITE;
    if (smem_dst % 16 != 0)
        ::rs_emu::die("cp_async_16: shared destination " + ::rs_emu::hex(smem_dst) + " is not 16-byte aligned, in " + ::rs_emu::where() + " at " +
                      ::rs_emu::site_str(site));
    unsigned char* dst = ::rs_emu::shared_ptr(smem_dst, 16, "cp_async_16", site);
    ::rs_emu::CpCopy k;
    k.dst = smem_dst;
    if (pred) {
        if (reinterpret_cast<uintptr_t>(gmem_src) % 16 != 0)
            ::rs_emu::die("cp_async_16: global source is not 16-byte aligned, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(site));
        std::memcpy(k.data, gmem_src, 16);  // AddressSanitizer checks the 16 source bytes here
    } else {
        std::memset(k.data, 0, 16);  // src-size 0: nothing is read, the 16 bytes are zero-filled
    }
    std::memset(dst, 0xFF, 16);  // undefined until the copy completes
    ::rs_emu::cp_me().open.push_back(k);
}

inline void cp_async_commit(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    ::rs_emu::CpThread& t = ::rs_emu::cp_me();
    t.groups.push_back(std::move(t.open));
    t.open.clear();
}

// cp.async.wait_group N: every committed group but the N most recent has completed (landed).
template <int N>
inline void cp_async_wait(RS_EMU_SITE_PARAMS) {
    static_assert(N >= 0, "cp_async_wait<N>: N >= 0");
    (void)rs_file_, (void)rs_line_;
    ::rs_emu::CpThread& t = ::rs_emu::cp_me();
    size_t keep = (size_t)N, n = t.groups.size();
    if (n <= keep) return;
    for (size_t g = 0; g < n - keep; ++g) ::rs_emu::cp_land(*::rs_emu::cur().cta, t.groups[g]);
    t.groups.erase(t.groups.begin(), t.groups.begin() + (long)(n - keep));
}

inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_row, RS_EMU_SITE_PARAMS) { ::rs_emu::ldmatrix<4, false>(r, smem_row, RS_EMU_SITE, "ldmatrix_x4"); }
inline void ldmatrix_x2(uint32_t (&r)[2], uint32_t smem_row, RS_EMU_SITE_PARAMS) { ::rs_emu::ldmatrix<2, false>(r, smem_row, RS_EMU_SITE, "ldmatrix_x2"); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_row, RS_EMU_SITE_PARAMS) { ::rs_emu::ldmatrix<4, true>(r, smem_row, RS_EMU_SITE, "ldmatrix_x4_trans"); }
inline void ldmatrix_x2_trans(uint32_t (&r)[2], uint32_t smem_row, RS_EMU_SITE_PARAMS) { ::rs_emu::ldmatrix<2, true>(r, smem_row, RS_EMU_SITE, "ldmatrix_x2_trans"); }

template <typename T>
inline void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4], RS_EMU_SITE_PARAMS) {
    constexpr bool bf16 = ::rs_emu::is_bf16<T>();
    const ::rs_emu::MmaIn in{a, b, c};
    ::rs_emu::collective(32, (::rs_emu::kCollMma << 8) | (bf16 ? 1 : 0), bf16 ? "mma_16816<bf16>" : "mma_16816<f16>", true, RS_EMU_SITE, &in, d,
                         [](::rs_emu::Coll& co) {
        float A[16][16], B[16][8], C[16][8];
        for (int lane = 0; lane < 32; ++lane) {
            const ::rs_emu::MmaIn& m = *static_cast<const ::rs_emu::MmaIn*>(co.in[lane]);
            const int g = lane / 4, t = lane % 4;
            for (int reg = 0; reg < 4; ++reg) {
                const int row = g + ((reg & 1) ? 8 : 0), col = 2 * t + ((reg & 2) ? 8 : 0);
                A[row][col] = ::rs_emu::b16_to_float((uint16_t)(m.a[reg] & 0xFFFF), bf16);
                A[row][col + 1] = ::rs_emu::b16_to_float((uint16_t)(m.a[reg] >> 16), bf16);
            }
            for (int reg = 0; reg < 2; ++reg) {
                const int k = 2 * t + (reg ? 8 : 0);
                B[k][g] = ::rs_emu::b16_to_float((uint16_t)(m.b[reg] & 0xFFFF), bf16);
                B[k + 1][g] = ::rs_emu::b16_to_float((uint16_t)(m.b[reg] >> 16), bf16);
            }
            for (int i = 0; i < 4; ++i) C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = m.c[i];
        }
        for (int lane = 0; lane < 32; ++lane) {  // all inputs are gathered first: d may alias c
            float* out = static_cast<float*>(co.out[lane]);
            const int g = lane / 4, t = lane % 4;
            for (int i = 0; i < 4; ++i) {
                const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
                float s = C[row][col];
                for (int k = 0; k < 16; ++k) s = std::fmaf(A[row][k], B[k][col], s);
                out[i] = s;
            }
        }
    });
}

}  // namespace rsarch
