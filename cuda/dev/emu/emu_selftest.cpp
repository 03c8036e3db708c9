// Self-tests of the CPU emulation itself (cuda/dev/emu/*.h): for each emulated instruction a tiny
// kernel whose expected result was derived by hand from the PTX ISA tables (which lane holds which
// element after ldmatrix / mma / wgmma, the byte address of an element under each swizzle, a
// descriptor's fields, TMA out-of-bounds fill at a ragged edge, mbarrier phases and tx-count), the
// positive tests in all three thread orders; then death tests (in a child process: the emulation
// must report, not hang or pass) for deadlock, divergence, misuse; and mutation evidence: small,
// deliberately broken kernels (missing cp_async_wait, missing mbarrier wait, a wgmma stage
// overwritten while in flight, a wrong swizzle) must fail under the emulation.
//   build: make -C cuda/dev emu-selftest (g++, ASan + UBSan); run: build/emu_selftest
//   (native-build/cpu-emulate.sh quick runs it). Exit 0: all passed.
#include "cuda_emu.h"

#include <sys/wait.h>

#include <csignal>
#include <functional>

using rs_emu::Site;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    ok ? ++g_pass : ++g_fail;
}

// Runs body in a child process; passes if it dies (abort, or a sanitizer's non-zero exit) with
// `expect` in its stderr.
void death(const std::string& name, const std::string& expect, const std::function<void()>& body) {
    int fds[2];
    if (pipe(fds) != 0) rs_emu::die("pipe");
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        body();
        std::fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, (size_t)n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const bool died = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    bool said = false;  // expect: alternatives separated by '|' (the message depends on the thread order)
    for (size_t a = 0; a <= expect.size();) {
        size_t b = expect.find('|', a);
        if (b == std::string::npos) b = expect.size();
        said = said || out.find(expect.substr(a, b - a)) != std::string::npos;
        a = b + 1;
    }
    std::string first = out.substr(0, out.find('\n', out.find("cuda-emu") == std::string::npos ? 0 : out.find("cuda-emu")));
    if (first.size() > 300) first = first.substr(0, 300) + "...";
    check(died && said, "reported: " + name + (died && said ? "" : std::string(" -- ") + (died ? "message lacks '" + expect + "': " : "it did not die: ") + first));
}

template <typename T>
T* dalloc(size_t n) {
    void* p = nullptr;
    if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) rs_emu::die("cudaMalloc");
    return static_cast<T*>(p);
}

uint16_t to_bf16(float f) {
    __nv_bfloat16 h = __float2bfloat16_rn(f);
    uint16_t b;
    std::memcpy(&b, &h, 2);
    return b;
}
uint16_t to_f16(float f) {
    __half h = __float2half_rn(f);
    uint16_t b;
    std::memcpy(&b, &h, 2);
    return b;
}

void set_order(int o) { rs_emu::st().order = o; }
const char* order_tag() { return rs_emu::order_name(); }

bool launched_ok() { return cudaGetLastError() == cudaSuccess; }

// ---- named barriers, the window, shuffles ---------------------------------------------------------
struct NamedP {
    int* out;
    uint32_t* addr;
};
void k_named(NamedP p) {
    RS_DYNAMIC_SMEM(sm);
    int* v = reinterpret_cast<int*>(sm);
    const unsigned t = threadIdx.x;
    if (t == 0) p.addr[0] = rsarch::smem_addr(sm), p.addr[1] = rsarch::smem_addr(sm + 100);
    if (t < 64) {  // warps 0-1 produce, then arrive without waiting
        v[t] = (int)t * 3;
        rsarch::named_bar_arrive(1, 128);
    } else {  // warps 2-3 wait for them
        rsarch::named_bar_sync(1, 128);
        p.out[t - 64] = v[t - 64] + v[127 - t];
    }
}

struct ShflP {
    int* out;  // [64][5]
};
void k_shfl(ShflP p) {
    const unsigned lane = rsarch::lane_id(), warp = rsarch::warp_id();
    const int v = (int)(lane + 100 * warp);
    float s = (float)v;
    for (int m = 16; m >= 1; m /= 2) s += rsarch::shfl_xor(s, m);
    int* o = p.out + 5 * threadIdx.x;
    o[0] = (int)s;
    o[1] = (int)rsarch::shfl_idx((uint32_t)v, 7);
    o[2] = __shfl_down_sync(0xffffffffu, v, 3, 16);
    o[3] = __shfl_up_sync(0xffffffffu, v, 2);
    rsarch::syncwarp();
    o[4] = __shfl_xor_sync(0xffffffffu, v, 1);
}

void test_sched() {
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        int* out = dalloc<int>(64);
        uint32_t* addr = dalloc<uint32_t>(2);
        RS_LAUNCH_EX(k_named, 1, 128, 512, NamedP{out, addr});
        bool ok = launched_ok();
        for (int j = 0; j < 64; ++j) ok = ok && out[j] == 189;
        check(ok, std::string("named_bar_arrive/sync producer-consumer (") + order_tag() + ")");
        check(addr[0] == 0x400 && addr[1] == 0x464, std::string("smem_addr: window at 0x400, +100 -> 0x464 (") + order_tag() + ")");
        cudaFree(out);
        cudaFree(addr);
        int* so = dalloc<int>(64 * 5);
        RS_LAUNCH(k_shfl, 1, 64, ShflP{so});
        ok = launched_ok();
        for (int t = 0; t < 64; ++t) {
            const int w = t / 32, l = t % 32, v = l + 100 * w;
            const int* r = so + 5 * t;
            const int down = (l % 16) + 3 < 16 ? v + 3 : v, up = l >= 2 ? v - 2 : v;
            ok = ok && r[0] == 496 + 3200 * w && r[1] == 7 + 100 * w && r[2] == down && r[3] == up && r[4] == (l ^ 1) + 100 * w;
        }
        check(ok, std::string("shfl_xor butterfly, shfl_idx, __shfl_down_sync width 16, __shfl_up_sync, syncwarp (") + order_tag() + ")");
        cudaFree(so);
    }
    set_order(0);
}

// ---- ldmatrix -----------------------------------------------------------------------------------------
struct LdmP {
    uint32_t* out;  // [32][4] x4, [32][4] x4.trans, [32][2] x2, [32][2] x2.trans
};
// Matrix m, row j at shared byte (m*8 + 7-j)*32: rows are 32 bytes apart, in reverse order, so only
// the per-lane row addresses can find them. Element (m, j, c) = m*64 + j*8 + c.
void k_ldmatrix(LdmP p) {
    RS_DYNAMIC_SMEM(sm);
    const unsigned l = threadIdx.x;
    uint16_t* e = reinterpret_cast<uint16_t*>(sm);
    for (int i = (int)l; i < 4 * 8 * 8; i += 32) {
        const int m = i / 64, j = i / 8 % 8, c = i % 8;
        e[((m * 8 + 7 - j) * 32) / 2 + c] = (uint16_t)(m * 64 + j * 8 + c);
    }
    __syncthreads();
    const uint32_t base = rsarch::smem_addr(sm);
    const uint32_t row = base + ((l / 8) * 8 + 7 - l % 8) * 32;
    uint32_t r4[4], t4[4], r2[2], t2[2];
    rsarch::ldmatrix_x4(r4, row);
    rsarch::ldmatrix_x4_trans(t4, row);
    const uint32_t row2 = l < 16 ? row : 0xFFFFFFF0u;  // x2: lanes 16..31's addresses are not used
    rsarch::ldmatrix_x2(r2, row2);
    rsarch::ldmatrix_x2_trans(t2, row2);
    for (int m = 0; m < 4; ++m) p.out[l * 4 + m] = r4[m], p.out[128 + l * 4 + m] = t4[m];
    for (int m = 0; m < 2; ++m) p.out[256 + l * 2 + m] = r2[m], p.out[320 + l * 2 + m] = t2[m];
}

void test_ldmatrix() {
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        uint32_t* out = dalloc<uint32_t>(384);
        RS_LAUNCH_EX(k_ldmatrix, 1, 32, 4 * 8 * 32, LdmP{out});
        bool ok = launched_ok();
        // PTX ISA (ldmatrix, "fragment layout for one 8x8 matrix"): lane l holds row l/4, columns
        // 2(l%4) (low half) and 2(l%4)+1; .trans: the column-major load, (row 2(l%4)+j, column l/4)
        for (int l = 0; l < 32; ++l) {
            for (int m = 0; m < 4; ++m) {
                const uint32_t lo = (uint32_t)(m * 64 + (l / 4) * 8 + 2 * (l % 4)), tlo = (uint32_t)(m * 64 + 2 * (l % 4) * 8 + l / 4);
                ok = ok && out[l * 4 + m] == (lo | (lo + 1) << 16) && out[128 + l * 4 + m] == (tlo | (tlo + 8) << 16);
                if (m < 2) ok = ok && out[256 + l * 2 + m] == out[l * 4 + m] && out[320 + l * 2 + m] == out[128 + l * 4 + m];
            }
        }
        // literal spot checks: lane 0, matrix 0 = elements 0,1; lane 5 matrix 1 = (1, 2..3) -> 74, 75;
        // trans: lane 5 matrix 1 = (2, 1), (3, 1) -> 64+16+1 = 81, 64+24+1 = 89; lane 31 matrix 3 = (7, 6..7) -> 254, 255
        ok = ok && out[0] == 0x00010000u && out[5 * 4 + 1] == (74u | 75u << 16) && out[128 + 5 * 4 + 1] == (81u | 89u << 16) &&
             out[31 * 4 + 3] == (254u | 255u << 16);
        check(ok, std::string("ldmatrix x4/x2 (+.trans): per-lane rows, fragment layout (") + order_tag() + ")");
        cudaFree(out);
    }
    set_order(0);
}

// ---- mma.m16n8k16 -------------------------------------------------------------------------------------
float A16(int i, int k) { return (float)((i * 3 + k) % 5 - 2); }
float B16(int k, int j) { return (float)((k + 2 * j) % 5 - 2); }
float C16(int i, int j) { return (float)(i - j); }

struct MmaP {
    float* out;  // [32][4]: each lane's d[0..3]
    float* out2;  // [32][4]: the same product with the operands loaded by ldmatrix
    bool bf16;
};
template <typename T>
void k_mma(MmaP p) {
    RS_DYNAMIC_SMEM(sm);
    const unsigned l = threadIdx.x, g = l / 4, t = l % 4;
    auto enc = [&](float v) -> uint32_t { return p.bf16 ? to_bf16(v) : to_f16(v); };
    // fragments packed by hand from the PTX ISA table (lower index in the low 16 bits):
    // a0,a1: (g, 2t..2t+1)  a2,a3: (g+8, 2t..)  a4,a5: (g, 2t+8..)  a6,a7: (g+8, 2t+8..)
    uint32_t a[4] = {enc(A16(g, 2 * t)) | enc(A16(g, 2 * t + 1)) << 16, enc(A16(g + 8, 2 * t)) | enc(A16(g + 8, 2 * t + 1)) << 16,
                     enc(A16(g, 2 * t + 8)) | enc(A16(g, 2 * t + 9)) << 16, enc(A16(g + 8, 2 * t + 8)) | enc(A16(g + 8, 2 * t + 9)) << 16};
    // b0,b1: (k = 2t..2t+1, n = g)  b2,b3: (k = 2t+8..2t+9, n = g)
    uint32_t b[2] = {enc(B16(2 * t, g)) | enc(B16(2 * t + 1, g)) << 16, enc(B16(2 * t + 8, g)) | enc(B16(2 * t + 9, g)) << 16};
    // c0,c1: (g, 2t..2t+1)  c2,c3: (g+8, 2t..2t+1)
    float c[4] = {C16(g, 2 * t), C16(g, 2 * t + 1), C16(g + 8, 2 * t), C16(g + 8, 2 * t + 1)};
    float d[4];
    rsarch::mma_16816<T>(d, a, b, c);
    for (int i = 0; i < 4; ++i) p.out[l * 4 + i] = d[i];
    // the same through ldmatrix: A row-major 16x16 at 0, B row-major [k][n] 16x8 at 512
    uint16_t* sa = reinterpret_cast<uint16_t*>(sm);
    uint16_t* sb = reinterpret_cast<uint16_t*>(sm + 512);
    for (int i = (int)l; i < 256; i += 32) sa[i] = (uint16_t)enc(A16(i / 16, i % 16));
    for (int i = (int)l; i < 128; i += 32) sb[i] = (uint16_t)enc(B16(i / 8, i % 8));
    __syncthreads();
    uint32_t la[4], lb[2];
    rsarch::ldmatrix_x4(la, rsarch::smem_addr(sa + (l % 16) * 16 + (l / 16) * 8));  // m0 rows 0-7, m1 rows 8-15, m2/m3: columns 8-15
    rsarch::ldmatrix_x2_trans(lb, rsarch::smem_addr(sb + (l % 16) * 8));          // k rows 0-7, 8-15, transposed
    rsarch::mma_16816<T>(c, la, lb, c);                                            // d aliases c
    for (int i = 0; i < 4; ++i) p.out2[l * 4 + i] = c[i];
}

void test_mma() {
    double D[16][8];
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 8; ++j) {
            D[i][j] = C16(i, j);
            for (int k = 0; k < 16; ++k) D[i][j] += (double)A16(i, k) * B16(k, j);
        }
    for (int bf = 0; bf < 2; ++bf) {
        for (int o = 0; o < 4; ++o) {
            set_order(o);
            float* out = dalloc<float>(128);
            float* out2 = dalloc<float>(128);
            if (bf) RS_LAUNCH_EX(k_mma<__nv_bfloat16>, 1, 32, 1024, MmaP{out, out2, true});
            else RS_LAUNCH_EX(k_mma<__half>, 1, 32, 1024, MmaP{out, out2, false});
            bool ok = launched_ok();
            // d_i of lane l is D(l/4 + 8*(i>=2), 2*(l%4) + i%2)
            for (int l = 0; l < 32; ++l)
                for (int i = 0; i < 4; ++i) {
                    const double want = D[l / 4 + (i >= 2 ? 8 : 0)][2 * (l % 4) + i % 2];
                    ok = ok && out[l * 4 + i] == want && out2[l * 4 + i] == want;
                }
            // literal: lane 5 holds D(1,2), D(1,3), D(9,2), D(9,3); lane 31 holds D(7,6), D(7,7), D(15,6), D(15,7)
            ok = ok && out[20] == D[1][2] && out[21] == D[1][3] && out[22] == D[9][2] && out[23] == D[9][3] && out[127] == D[15][7];
            check(ok, std::string("mma_16816<") + (bf ? "bf16" : "f16") + ">: fragment layouts, D = A*B + C, and via ldmatrix (" + order_tag() + ")");
            cudaFree(out);
            cudaFree(out2);
        }
    }
    set_order(0);
}

// ---- cp.async -----------------------------------------------------------------------------------------
struct CpP {
    const unsigned char* src;  // 32 * 16 bytes
    int* out;                  // [32][4] flags
    float* sum;                // mutation: a missing wait
    bool skip_wait;
};
void k_cpasync(CpP p) {
    RS_DYNAMIC_SMEM(sm);
    const unsigned l = threadIdx.x;
    const uint32_t a0 = rsarch::smem_addr(sm + l * 16), a1 = rsarch::smem_addr(sm + 512 + l * 16);
    const bool pred = l % 4 != 3;
    rsarch::cp_async_16(a0, p.src + l * 16, pred);
    rsarch::cp_async_commit();
    rsarch::cp_async_16(a1, p.src + (31 - l) * 16, true);
    rsarch::cp_async_commit();
    auto is = [&](const unsigned char* s, const unsigned char* want) { return std::memcmp(s, want, 16) == 0; };
    unsigned char ff[16], zero[16];
    std::memset(ff, 0xFF, 16);
    std::memset(zero, 0, 16);
    int* o = p.out + 4 * l;
    o[0] = is(sm + l * 16, ff) && is(sm + 512 + l * 16, ff);  // nothing has landed before a wait
    rsarch::cp_async_wait<1>();
    o[1] = (pred ? is(sm + l * 16, p.src + l * 16) : is(sm + l * 16, zero)) && is(sm + 512 + l * 16, ff);  // the older group landed
    rsarch::cp_async_wait<0>();
    o[2] = is(sm + 512 + l * 16, p.src + (31 - l) * 16);
    o[3] = 1;
    // mutation: a kernel that reads data another thread copied, with or without the wait
    rsarch::cp_async_16(rsarch::smem_addr(sm + 1024 + l * 16), p.src + l * 16, true);
    rsarch::cp_async_commit();
    if (!p.skip_wait) rsarch::cp_async_wait<0>();
    __syncthreads();
    if (l == 0) {
        float s = 0;
        for (int i = 0; i < 32 * 4; ++i) s += reinterpret_cast<const float*>(sm + 1024)[i];
        *p.sum = s;
    }
}

void test_cpasync() {
    unsigned char* src = dalloc<unsigned char>(512);
    for (int i = 0; i < 128; ++i) reinterpret_cast<float*>(src)[i] = (float)i;  // sum 8128
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        int* out = dalloc<int>(128);
        float* sum = dalloc<float>(1);
        RS_LAUNCH_EX(k_cpasync, 1, 32, 1536, CpP{src, out, sum, false});
        bool ok = launched_ok();
        for (int i = 0; i < 128; ++i) ok = ok && out[i] == 1;
        check(ok && *sum == 8128.0f, std::string("cp.async: garbage until the wait, wait_group 1 retires the older group, zero fill (") + order_tag() + ")");
        RS_LAUNCH_EX(k_cpasync, 1, 32, 1536, CpP{src, out, sum, true});
        check(launched_ok() && !(*sum == 8128.0f), std::string("mutation caught: a missing cp_async_wait gives a wrong sum (") + order_tag() + ")");
        cudaFree(out);
        cudaFree(sum);
    }
    cudaFree(src);
    set_order(0);
}

// ---- tensor maps, TMA, mbarriers ------------------------------------------------------------------------
CUresult encode2d(CUtensorMap* m, void* base, CUtensorMapDataType dt, uint64_t cols, uint64_t rows, uint64_t pitch_bytes, uint32_t box0, uint32_t box1,
                  CUtensorMapSwizzle sw) {
    const cuuint64_t dim[2] = {cols, rows}, stride[1] = {pitch_bytes};
    const cuuint32_t box[2] = {box0, box1}, es[2] = {1, 1};
    return cuTensorMapEncodeTiled(m, dt, 2, base, dim, stride, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

void test_encode() {
    CUtensorMap m;
    uint16_t* g = dalloc<uint16_t>(64 * 128);
    const auto T = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    bool ok = encode2d(&m, g, T, 128, 64, 256, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_SUCCESS;
    ok = ok && encode2d(&m, (char*)g + 8, T, 128, 64, 256, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_ERROR_INVALID_VALUE;  // base not 16-aligned
    ok = ok && encode2d(&m, g, T, 128, 64, 250, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_ERROR_INVALID_VALUE;            // stride % 16
    ok = ok && encode2d(&m, g, T, 128, 64, 1ull << 40, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_ERROR_INVALID_VALUE;     // stride >= 2^40
    ok = ok && encode2d(&m, g, T, 128, 64, 256, 64, 257, CU_TENSOR_MAP_SWIZZLE_NONE) == CUDA_ERROR_INVALID_VALUE;           // box > 256
    ok = ok && encode2d(&m, g, T, 128, 64, 256, 128, 8, CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_ERROR_INVALID_VALUE;           // 256 B > span
    ok = ok && encode2d(&m, g, T, 128, 64, 256, 64, 8, CU_TENSOR_MAP_SWIZZLE_64B) == CUDA_ERROR_INVALID_VALUE;             // 128 B > 64
    ok = ok && encode2d(&m, g, T, 128, 64, 256, 4, 8, CU_TENSOR_MAP_SWIZZLE_NONE) == CUDA_ERROR_INVALID_VALUE;             // 8 B inner box
    ok = ok && encode2d(&m, g, T, 0, 64, 256, 64, 8, CU_TENSOR_MAP_SWIZZLE_NONE) == CUDA_ERROR_INVALID_VALUE;              // dim 0
    ok = ok && encode2d(&m, g, CU_TENSOR_MAP_DATA_TYPE_FLOAT64, 16, 64, 256, 4, 8, CU_TENSOR_MAP_SWIZZLE_NONE) == CUDA_ERROR_NOT_SUPPORTED;
    ok = ok && encode2d(reinterpret_cast<CUtensorMap*>(reinterpret_cast<char*>(&m) + 0) , g, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 64, 64, 256, 32, 8,
                        CU_TENSOR_MAP_SWIZZLE_128B) == CUDA_SUCCESS;
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q;
    ok = ok && cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) == cudaSuccess && q == cudaDriverEntryPointSuccess &&
         fn == reinterpret_cast<void*>(&cuTensorMapEncodeTiled);
    check(ok, "cuTensorMapEncodeTiled validates like the driver documents (alignment, strides, box, swizzle span, types); entry point");
    cudaFree(g);
}

// swizzled byte offset of (row r, element c) of a box with `pitch`-byte rows: hand-written from the
// rule "16-byte chunk bits [4,4+b) ^= bits [7,7+b)" (b = 3, 2, 1 for 128, 64, 32 B)
uint32_t swz_off(int r, int c, int pitch, int span) {
    const uint32_t a = (uint32_t)(r * pitch + 2 * c);
    const uint32_t bits = span == 128 ? 7u : span == 64 ? 3u : span == 32 ? 1u : 0u;
    return a ^ (((a >> 7) & bits) << 4);
}

struct TmaP {
    const CUtensorMap* map;  // not used: maps are kernel parameters (below)
    uint16_t* out;           // the raw smem image
    int bytes, c0, c1;
    int64_t* st;  // mbarrier state snapshots
};
void k_tma_load(TmaP p, const CUtensorMap map) {
    RS_DYNAMIC_SMEM(sm);
    const uint32_t bar = rsarch::smem_addr(sm), dst = rsarch::smem_addr(sm + 1024);
    if (threadIdx.x == 0) {
        rsarch::mbar_init(bar, 1);
        rsarch::fence_mbarrier_init();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        rsarch::mbar_arrive_expect_tx(bar, (uint32_t)p.bytes);
        rsarch::tma_load_2d(dst, &map, bar, p.c0, p.c1);
    }
    rsarch::mbar_wait_parity(bar, 0);
    for (int i = (int)threadIdx.x; i < p.bytes / 2; i += (int)blockDim.x) p.out[i] = reinterpret_cast<uint16_t*>(sm + 1024)[i];
}

void test_tma_load() {
    // T[5][70] bf16 bits, value r*128 + c + 1, rows 160 bytes apart (pitch a multiple of 16)
    const int rows = 5, cols = 70, pitch = 160;
    uint16_t* g = dalloc<uint16_t>(rows * pitch / 2);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < pitch / 2; ++c) g[r * pitch / 2 + c] = c < cols ? (uint16_t)(r * 128 + c + 1) : 0xDEAD;
    struct Mode {
        CUtensorMapSwizzle sw;
        int span, box0;
    } modes[] = {{CU_TENSOR_MAP_SWIZZLE_NONE, 0, 64}, {CU_TENSOR_MAP_SWIZZLE_32B, 32, 16}, {CU_TENSOR_MAP_SWIZZLE_64B, 64, 32},
                 {CU_TENSOR_MAP_SWIZZLE_128B, 128, 64}};
    for (const Mode& md : modes) {
        CUtensorMap map;
        const int box1 = 8, c0 = 70 - md.box0 / 2 - 3, c1 = -1;  // ragged: past the last column, one row above the first, past the last row
        if (encode2d(&map, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, cols, rows, pitch, (uint32_t)md.box0, box1, md.sw) != CUDA_SUCCESS) {
            check(false, "encode for the TMA load test");
            continue;
        }
        const int bytes = md.box0 * box1 * 2;
        for (int o = 0; o < 4; ++o) {
            set_order(o);
            uint16_t* out = dalloc<uint16_t>(bytes / 2);
            RS_LAUNCH_EX(k_tma_load, 1, 64, 1024 + bytes, TmaP{nullptr, out, bytes, c0, c1, nullptr}, map);
            bool ok = launched_ok();
            for (int j = 0; j < box1; ++j)
                for (int i = 0; i < md.box0; ++i) {
                    const int r = c1 + j, c = c0 + i;
                    const uint16_t want = (r >= 0 && r < rows && c >= 0 && c < cols) ? (uint16_t)(r * 128 + c + 1) : 0;
                    ok = ok && out[swz_off(j, i, md.box0 * 2, md.span) / 2] == want;
                }
            check(ok, "TMA load, swizzle " + std::to_string(md.span) + " B: box at a ragged corner, OOB zero fill, full box counted by complete_tx (" + order_tag() + ")");
            cudaFree(out);
        }
    }
    // literal byte offsets worked out by hand: 128 B swizzle, (row 3, element 1) -> 3*128 + (0^3)*16 + 2 = 434;
    // (1, 5) -> 128 + (0^1)*16 + 10 = 154; 64 B, (3, 9) at logical 210 -> 210 ^ 16 = 194; 32 B, (5, 3) at 166 -> 166 ^ 16 = 182;
    // no swizzle: (7, 63) -> 7*128 + 126 = 1022
    check(swz_off(3, 1, 128, 128) == 434 && swz_off(1, 5, 128, 128) == 154 && swz_off(3, 9, 64, 64) == 194 && swz_off(5, 3, 32, 32) == 182 &&
              swz_off(7, 63, 128, 0) == 1022 && rs_emu::swizzle(0x400 + 3 * 128 + 2, 128) == 0x400 + 434 && rs_emu::swizzle(0x400 + 210, 64) == 0x400 + 194,
          "swizzle: hand-computed byte addresses of elements under 128/64/32 B and none");
    cudaFree(g);
    set_order(0);
}

// mbarrier state machine, white box: the state after each step
void k_mbar_states(TmaP p, const CUtensorMap map, const CUtensorMap map64) {
    RS_DYNAMIC_SMEM(sm);
    const uint32_t bar = rsarch::smem_addr(sm + 8), dst = rsarch::smem_addr(sm + 1024);
    int64_t* s = p.st;
    auto snap = [&](int k) {
        const rs_emu::Mbar& m = rs_emu::sm90().mbars[0].at(bar);
        s[3 * k] = m.phase, s[3 * k + 1] = m.pending, s[3 * k + 2] = m.tx;
    };
    rsarch::mbar_init(bar, 2);
    snap(0);  // phase 0, pending 2, tx 0
    rsarch::mbar_arrive(bar);
    snap(1);  // 0, 1, 0
    rsarch::tma_load_2d(dst, &map, bar, 0, 0);
    snap(2);  // its complete-tx before the expect-tx: 0, 1, -1024
    rsarch::mbar_arrive_expect_tx(bar, 1024);
    snap(3);  // pending 0 and tx 0: phase 0 completes, pending back to 2: 1, 2, 0
    s[30] = rsarch::mbar_try_wait_parity(bar, 0);  // the phase with parity 0 has completed: true without waiting
    rsarch::mbar_arrive(bar);
    snap(4);  // 1, 1, 0
    rsarch::mbar_arrive_expect_tx(bar, 64);
    snap(5);  // pending 0 but tx 64: not complete: 1, 0, 64
    rsarch::tma_load_2d(dst, &map64, bar, 0, 0);
    snap(6);  // 64 bytes: tx 0, phase 1 completes: 2, 2, 0
    s[31] = rsarch::mbar_try_wait_parity(bar, 1);
}

void k_mbar_unfinished(TmaP, const CUtensorMap map) {
    RS_DYNAMIC_SMEM(sm);
    const uint32_t bar = rsarch::smem_addr(sm);
    rsarch::mbar_init(bar, 1);
    rsarch::tma_load_2d(rsarch::smem_addr(sm + 1024), &map, bar, 0, 0);  // no expect_tx, no arrival: the phase never completes
}

void test_mbarrier() {
    uint16_t* g = dalloc<uint16_t>(64 * 8);
    for (int i = 0; i < 64 * 8; ++i) g[i] = (uint16_t)i;
    CUtensorMap map, map64;
    encode2d(&map, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 64, 8, 128, 64, 8, CU_TENSOR_MAP_SWIZZLE_NONE);
    encode2d(&map64, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 64, 8, 128, 32, 1, CU_TENSOR_MAP_SWIZZLE_NONE);
    int64_t* s = dalloc<int64_t>(32);
    RS_LAUNCH_EX(k_mbar_states, 1, 1, 1024 + 1024, TmaP{nullptr, nullptr, 1024, 0, 0, s}, map, map64);
    const int64_t want[] = {0, 2, 0, 0, 1, 0, 0, 1, -1024, 1, 2, 0, 1, 1, 0, 1, 0, 64, 2, 2, 0};
    bool ok = launched_ok();
    for (int i = 0; i < 21; ++i) ok = ok && s[i] == want[i];
    check(ok && s[30] == 1 && s[31] == 1,
          "mbarrier: init count, arrive, complete-tx before expect-tx (tx < 0), phase completes only at pending 0 and tx 0, try_wait parity");
    death("a TMA load whose mbarrier phase never completes before the block ends", "whose phase never completed",
          [&] { RS_LAUNCH_EX(k_mbar_unfinished, 1, 1, 2048, TmaP{nullptr, nullptr, 1024, 0, 0, s}, map); });
    cudaFree(s);
    cudaFree(g);
}

// ---- wgmma ------------------------------------------------------------------------------------------
// A [64][K] and B ([N][K] K-major, or [K][N] N-major for TRANS_B 1) in global memory, loaded by TMA in
// boxes of S/2 elements (S = swizzle span; 8 elements without swizzle), one warpgroup computes
// D = A·B over K = 64 in 4 k16 steps, and dumps its raw accumulator registers.
constexpr int kK = 64;
float Aw(int i, int k) { return (float)((i * 7 + k * 3) % 9 - 4); }
float Bw(int k, int j) { return (float)((k * 5 + j * 3) % 7 - 3); }

enum Mutation { kNone, kNoWait, kOverwriteStage, kWrongSwizzle, kWriteAcc, kNoFence, kNonUniform, kReservedBit };

struct WgP {
    float* dump;  // [128][N/2], then 2 flags per thread
    int span;     // 0, 32, 64, 128
    int box0;     // elements per box row
    int nbox_a, nbox_b;
    uint32_t box_bytes_a, box_bytes_b;
    int mutation;
};

inline int desc_mode(int span) { return span == 128 ? 1 : span == 64 ? 2 : span == 32 ? 3 : 0; }

template <int N, typename T, int TRANS_B>
void k_wgmma(WgP p, const CUtensorMap ma, const CUtensorMap mb) {
    RS_DYNAMIC_SMEM(sm);
    const unsigned t = threadIdx.x;
    const uint32_t bar = rsarch::smem_addr(sm), ta = rsarch::smem_addr(sm + 1024);
    const uint32_t tb = ta + (uint32_t)p.nbox_a * p.box_bytes_a;  // 1024-aligned: 64·K·2 bytes
    const uint32_t bytes = (uint32_t)p.nbox_a * p.box_bytes_a + (uint32_t)p.nbox_b * p.box_bytes_b;
    if (t == 0) {
        rsarch::mbar_init(bar, 1);
        rsarch::fence_mbarrier_init();
    }
    __syncthreads();
    if (t == 0) {
        rsarch::mbar_arrive_expect_tx(bar, bytes);
        for (int b = 0; b < p.nbox_a; ++b) rsarch::tma_load_2d(ta + b * p.box_bytes_a, &ma, bar, b * p.box0, 0);
        for (int b = 0; b < p.nbox_b; ++b) rsarch::tma_load_2d(tb + b * p.box_bytes_b, &mb, bar, b * p.box0, 0);
    }
    if (p.mutation != kNoWait) rsarch::mbar_wait_parity(bar, 0);
    const int S = p.span;
    auto desc_a = [&](int s) {
        if (S == 0) return rsarch::make_smem_desc(ta + 2 * s * p.box_bytes_a, p.box_bytes_a, 128, 0);
        const int b = 16 * s / (S / 2), off = (16 * s % (S / 2)) * 2;
        return rsarch::make_smem_desc(ta + b * p.box_bytes_a + off, 16, 8 * S, desc_mode(S));
    };
    auto desc_b = [&](int s) {
        if (TRANS_B == 0) {
            if (S == 0) return rsarch::make_smem_desc(tb + 2 * s * p.box_bytes_b, p.box_bytes_b, 128, 0);
            const int b = 16 * s / (S / 2), off = (16 * s % (S / 2)) * 2;
            return rsarch::make_smem_desc(tb + b * p.box_bytes_b + off, 16, 8 * S, desc_mode(S));
        }
        if (S == 0) return rsarch::make_smem_desc(tb + 256 * s, 128, p.box_bytes_b, 0);
        return rsarch::make_smem_desc(tb + 16 * s * S, p.box_bytes_b, 8 * S, desc_mode(S));
    };
    float d[N / 2];
    if (p.mutation != kNoFence) rsarch::wgmma_fence();
    for (int s = 0; s < kK / 16; ++s) {
        uint64_t da = desc_a(s), db = desc_b(s);
        if (p.mutation == kWrongSwizzle) da = (da & ~(3ull << 62)) | (uint64_t)(S == 64 ? 1 : 2) << 62;
        if (p.mutation == kNonUniform && t == 77) da += 1;
        if (p.mutation == kReservedBit) db |= 1ull << 47;
        rsarch::wgmma_ss<N, T, TRANS_B>(d, da, db, s > 0);
        if (p.mutation == kWriteAcc && s == 1) d[3] = 0.0f;
        if (p.mutation == kOverwriteStage && s == 3 && t == 0) {
            rsarch::mbar_arrive_expect_tx(bar, p.box_bytes_a);  // reloads A's first box while the wgmmas still read it
            rsarch::tma_load_2d(ta, &ma, bar, 0, 0);
        }
    }
    rsarch::wgmma_commit();
    rsarch::wgmma_wait<0>();
    for (int i = 0; i < N / 2; ++i) p.dump[t * (N / 2) + i] = d[i];
    // two groups in flight: wait<1> retires the older one only
    float e0[N / 2], e1[N / 2];
    rsarch::wgmma_fence();
    rsarch::wgmma_ss<N, T, TRANS_B>(e0, desc_a(0), desc_b(0), 0);
    rsarch::wgmma_commit();
    rsarch::wgmma_ss<N, T, TRANS_B>(e1, desc_a(1), desc_b(1), 0);
    rsarch::wgmma_commit();
    rsarch::wgmma_wait<1>();
    const bool older_done = !std::isnan(e0[0]), newer_pending = std::isnan(e1[0]);
    rsarch::wgmma_wait<0>();
    p.dump[128 * (N / 2) + 2 * t] = older_done && newer_pending;
    p.dump[128 * (N / 2) + 2 * t + 1] = !std::isnan(e1[0]);
}

struct WgCase {
    int n, span, trans;
    bool bf16;
};

// runs one case; returns true if the accumulators are D = A·B in the PTX fragment layout
template <int N, int TRANS_B>
bool run_wgmma(int span, bool bf16, int mutation, const std::string& label, bool report = true) {
    const int S = span, box0 = S ? S / 2 : 8;
    const bool bmn = TRANS_B == 1;
    uint16_t* ga = dalloc<uint16_t>(64 * kK);
    uint16_t* gb = dalloc<uint16_t>(N * kK);
    auto enc = [&](float v) { return bf16 ? to_bf16(v) : to_f16(v); };
    for (int i = 0; i < 64; ++i)
        for (int k = 0; k < kK; ++k) ga[i * kK + k] = enc(Aw(i, k));
    for (int k = 0; k < kK; ++k)
        for (int j = 0; j < N; ++j) (bmn ? gb[k * N + j] : gb[j * kK + k]) = enc(Bw(k, j));
    const auto dt = bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    const CUtensorMapSwizzle sw = S == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : S == 64 ? CU_TENSOR_MAP_SWIZZLE_64B : S == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                                                                           : CU_TENSOR_MAP_SWIZZLE_NONE;
    CUtensorMap ma, mb;
    bool ok = encode2d(&ma, ga, dt, kK, 64, kK * 2, (uint32_t)box0, 64, sw) == CUDA_SUCCESS;
    ok = ok && (bmn ? encode2d(&mb, gb, dt, N, kK, N * 2, (uint32_t)box0, kK, sw) : encode2d(&mb, gb, dt, kK, N, kK * 2, (uint32_t)box0, N, sw)) == CUDA_SUCCESS;
    WgP p;
    p.span = S;
    p.box0 = box0;
    p.nbox_a = kK / box0;
    p.box_bytes_a = (uint32_t)(64 * box0 * 2);
    p.nbox_b = bmn ? N / box0 : kK / box0;
    p.box_bytes_b = (uint32_t)((bmn ? kK : N) * box0 * 2);
    p.mutation = mutation;
    p.dump = dalloc<float>(128 * (N / 2) + 256);
    const size_t smem = 1024 + (size_t)p.nbox_a * p.box_bytes_a + (size_t)p.nbox_b * p.box_bytes_b;
    cudaFuncSetAttribute(k_wgmma<N, __nv_bfloat16, TRANS_B>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    cudaFuncSetAttribute(k_wgmma<N, __half, TRANS_B>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (bf16) RS_LAUNCH_EX((k_wgmma<N, __nv_bfloat16, TRANS_B>), 1, 128, smem, p, ma, mb);
    else RS_LAUNCH_EX((k_wgmma<N, __half, TRANS_B>), 1, 128, smem, p, ma, mb);
    ok = ok && launched_ok();
    // PTX ISA figure "WGMMA .m64nNk16 register fragment layout for accumulator matrix D": thread t = 32w + l,
    // d[i] = D(16w + l/4 + 8*((i/2)%2), 8*(i/4) + 2*(l%4) + i%2)
    for (int t = 0; t < 128 && ok; ++t)
        for (int i = 0; i < N / 2; ++i) {
            const int row = 16 * (t / 32) + (t % 32) / 4 + 8 * ((i / 2) % 2), col = 8 * (i / 4) + 2 * (t % 4) + i % 2;
            double want = 0;
            for (int k = 0; k < kK; ++k) want += (double)Aw(row, k) * Bw(k, col);
            ok = ok && p.dump[t * (N / 2) + i] == want;
        }
    // literal: thread 37 (warp 1, lane 5) register 6 holds D(25, 10); thread 0 register 3 holds D(8, 1)
    if (ok && N >= 16) {
        double d25_10 = 0, d8_1 = 0;
        for (int k = 0; k < kK; ++k) d25_10 += (double)Aw(25, k) * Bw(k, 10), d8_1 += (double)Aw(8, k) * Bw(k, 1);
        ok = p.dump[37 * (N / 2) + 6] == d25_10 && p.dump[3] == d8_1;
    }
    for (int t = 0; t < 128 && ok; ++t) ok = p.dump[128 * (N / 2) + 2 * t] == 1 && p.dump[128 * (N / 2) + 2 * t + 1] == 1;
    if (report) check(ok, label);
    cudaFree(ga);
    cudaFree(gb);
    cudaFree(p.dump);
    return ok;
}

template <int N, int TRANS_B>
void wg_case(int span, bool bf16) {
    const std::string label = std::string("wgmma_ss m64n") + std::to_string(N) + "k16 " + (bf16 ? "bf16" : "f16") + ", B " + (TRANS_B ? "N-major" : "K-major") +
                              ", swizzle " + (span ? std::to_string(span) + " B" : std::string("none")) + ": descriptors, canonical layout, fragment layout, wait<1> (" +
                              order_tag() + ")";
    run_wgmma<N, TRANS_B>(span, bf16, kNone, label);
}

void test_wgmma() {
    // the descriptor bit for bit: start 0x1400 >> 4 = 0x140, LBO 16 >> 4 = 1 at bit 16, SBO 1024 >> 4 = 0x40 at bit 32, 128 B = 1 at bit 62
    rs_emu::st().cur = nullptr;
    const rs_emu::Desc dd = rs_emu::decode_desc(0x4000004000010140ull);
    check(dd.start == 0x1400 && dd.lbo == 16 && dd.sbo == 1024 && dd.span == 128 && dd.base_offset == 0 &&
              rs_emu::decode_desc(0x8000000400200000ull | (5ull << 49)).base_offset == 5 && rs_emu::decode_desc(0xC000000000000000ull).span == 32 &&
              rs_emu::decode_desc(0x8000000000000000ull).span == 64,
          "matrix descriptor decoded bit for bit (start, LBO, SBO, base offset, swizzle mode)");
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        wg_case<64, 0>(128, true);
        wg_case<64, 1>(128, true);
    }
    set_order(0);
    for (int span : {0, 32, 64}) {
        wg_case<64, 0>(span, true);
        wg_case<64, 1>(span, true);
    }
    wg_case<8, 0>(128, true);
    wg_case<8, 1>(0, true);
    wg_case<24, 1>(0, false);
    wg_case<24, 0>(32, true);
    wg_case<128, 0>(128, false);
    wg_case<128, 1>(64, false);
    wg_case<256, 0>(128, true);
    wg_case<256, 1>(128, true);
}

// ---- TMA store ----------------------------------------------------------------------------------------
struct StoreP {
    int c0, c1;
    bool overwrite, no_fence;
};
void k_tma_store(StoreP p, const CUtensorMap map) {
    RS_DYNAMIC_SMEM(sm);
    uint16_t* tile = reinterpret_cast<uint16_t*>(sm);
    for (int e = (int)threadIdx.x; e < 64 * 8; e += (int)blockDim.x) {
        const int j = e / 64, i = e % 64;
        tile[swz_off(j, i, 128, 128) / 2] = (uint16_t)(j * 128 + i + 1);  // written in the map's 128 B swizzled layout
    }
    if (!p.no_fence) rsarch::fence_proxy_async_shared();
    __syncthreads();
    if (threadIdx.x == 0) {
        rsarch::tma_store_2d(&map, rsarch::smem_addr(sm), p.c0, p.c1);
        rsarch::tma_store_commit();
        if (p.overwrite) tile[5] = 0;  // before the read is known to be complete
        rsarch::tma_store_wait_read<0>();
    }
}

void test_tma_store() {
    const int rows = 5, cols = 70, pitch = 160;
    uint16_t* g = dalloc<uint16_t>(rows * pitch / 2);
    CUtensorMap map;
    encode2d(&map, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, cols, rows, pitch, 64, 8, CU_TENSOR_MAP_SWIZZLE_128B);
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        for (int i = 0; i < rows * pitch / 2; ++i) g[i] = 0xABCD;
        RS_LAUNCH_EX(k_tma_store, 1, 64, 2048, StoreP{10, 1, false, false}, map);
        bool ok = launched_ok();
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < pitch / 2; ++c) {
                const bool in = r >= 1 && c >= 10 && c < cols;  // box rows 1..8, columns 10..73, clipped to 5 x 70
                ok = ok && g[r * pitch / 2 + c] == (in ? (uint16_t)((r - 1) * 128 + (c - 10) + 1) : 0xABCD);
            }
        check(ok, std::string("TMA store: 128 B swizzled tile to global, clipped at the tensor's ragged edge (") + order_tag() + ")");
    }
    set_order(0);
    death("a TMA store's shared source overwritten before tma_store_wait_read", "was overwritten before tma_store_wait_read",
          [&] { RS_LAUNCH_EX(k_tma_store, 1, 64, 2048, StoreP{10, 1, true, false}, map); });
    death("mutation: threads' stores read by a TMA store without fence_proxy_async_shared()", "without fence.proxy.async",
          [&] { RS_LAUNCH_EX(k_tma_store, 1, 64, 2048, StoreP{10, 1, false, true}, map); });
    cudaFree(g);
}

// ---- clusters -----------------------------------------------------------------------------------------
struct ClusterP {
    uint32_t* out;  // per CTA: rank, data ok, remote arrive seen
};
void k_cluster(ClusterP p, const CUtensorMap map) {
    RS_DYNAMIC_SMEM(sm);
    const uint32_t rank = rsarch::cluster_ctarank();
    const uint32_t bar = rsarch::smem_addr(sm), bar2 = rsarch::smem_addr(sm + 8), dst = rsarch::smem_addr(sm + 1024);
    if (threadIdx.x == 0) {
        rsarch::mbar_init(bar, 1);
        rsarch::mbar_init(bar2, 1);
        rsarch::fence_mbarrier_init();
    }
    rsarch::cluster_sync();  // both CTAs' barriers exist before anyone arrives remotely
    if (threadIdx.x == 0) {
        rsarch::mbar_arrive_expect_tx(bar, 1024);
        if (rank == 0) rsarch::tma_load_2d_multicast(dst, &map, bar, 0, 0, 0x3);  // lands in both CTAs
        rsarch::mbar_arrive_cluster(bar2, rank ^ 1);                            // the other CTA's barrier
    }
    rsarch::mbar_wait_parity(bar, 0);
    rsarch::mbar_wait_parity(bar2, 0);
    if (threadIdx.x == 0) {
        bool ok = true;
        for (int i = 0; i < 512; ++i) ok = ok && reinterpret_cast<uint16_t*>(sm + 1024)[i] == (uint16_t)(i + 1);
        p.out[3 * blockIdx.x] = rank;
        p.out[3 * blockIdx.x + 1] = ok;
        p.out[3 * blockIdx.x + 2] = 1;
    }
    rsarch::cluster_sync();
}

void test_cluster() {
    uint16_t* g = dalloc<uint16_t>(512);
    for (int i = 0; i < 512; ++i) g[i] = (uint16_t)(i + 1);
    CUtensorMap map;
    encode2d(&map, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 64, 8, 128, 64, 8, CU_TENSOR_MAP_SWIZZLE_NONE);
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        uint32_t* out = dalloc<uint32_t>(12);
        RS_LAUNCH_CLUSTER(k_cluster, 4, 64, 2048, 2, ClusterP{out}, map);
        bool ok = launched_ok();
        for (int b = 0; b < 4; ++b) ok = ok && out[3 * b] == (uint32_t)(b % 2) && out[3 * b + 1] == 1 && out[3 * b + 2] == 1;
        check(ok, std::string("clusters of 2: ctarank, cluster_sync, TMA multicast into both CTAs, remote mbarrier arrive (") + order_tag() + ")");
        cudaFree(out);
    }
    set_order(0);
    cudaFree(g);
}

// ---- launch configuration -------------------------------------------------------------------------------
void k_empty(int) { RS_DYNAMIC_SMEM(sm); sm[0] = 1; }
void k_empty2(int) { RS_DYNAMIC_SMEM(sm); sm[0] = 1; }

void test_launch() {
    RS_LAUNCH_EX(k_empty, 1, 32, 100 * 1024, 0);
    const bool refused = cudaGetLastError() == cudaErrorInvalidValue;
    const bool set = cudaFuncSetAttribute(k_empty, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024) == cudaSuccess;
    RS_LAUNCH_EX(k_empty, 1, 32, 100 * 1024, 0);
    const bool ran = cudaGetLastError() == cudaSuccess;
    const bool too_big = cudaFuncSetAttribute(k_empty2, cudaFuncAttributeMaxDynamicSharedMemorySize, 232448 + 16) == cudaErrorInvalidValue;
    RS_LAUNCH_EX(k_empty2, 1, 32, 48 * 1024, 0);
    const bool small_ok = cudaGetLastError() == cudaSuccess;
    int sms = 0, optin = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
    check(refused && set && ran && too_big && small_ok && sms > 0 && optin == 232448,
          "launch: > 48 KiB dynamic shared memory needs cudaFuncAttributeMaxDynamicSharedMemorySize, at most 232448 B; device attributes");
}

// ---- kernels for the death tests ------------------------------------------------------------------------
struct DP {
    int which;
};
__shared__ float g_static_tile[16];
void k_die(DP p) {
    RS_DYNAMIC_SMEM(sm);
    const unsigned t = threadIdx.x, l = t % 32;
    uint32_t r[4];
    switch (p.which) {
        case 0: {  // mbarrier nobody arrives at
            if (t == 0) rsarch::mbar_init(rsarch::smem_addr(sm), 1);
            __syncthreads();
            rsarch::mbar_wait_parity(rsarch::smem_addr(sm), 0);
            break;
        }
        case 1:  // a named barrier short of threads
            if (t < 64) rsarch::named_bar_sync(1, 128);
            break;
        case 2:  // __syncthreads after some threads exited
            if (t < 32) return;
            __syncthreads();
            break;
        case 3:  // lanes of one warp at two different ldmatrix instructions
            if (l < 16) rsarch::ldmatrix_x4(r, rsarch::smem_addr(sm));
            else rsarch::ldmatrix_x4(r, rsarch::smem_addr(sm));
            break;
        case 4:  // half a warp at a shuffle, half at syncwarp
            if (l < 16) (void)rsarch::shfl_idx(1u, 0);
            else rsarch::syncwarp();
            break;
        case 5:  // a lane exits while the others wait at a collective
            if (l == 7) return;
            rsarch::syncwarp();
            break;
        case 6:  // the named barrier's thread count differs between arrivals
            rsarch::named_bar_sync(2, t < 32 ? 64 : 96);
            break;
        case 7:  // ldmatrix row address past the end of the window
            rsarch::ldmatrix_x4(r, rsarch::smem_addr(sm) + (l == 9 ? 1024u : 0u));
            break;
        case 8:  // a static __shared__ array has no address in the window
            (void)rsarch::smem_addr(g_static_tile);
            break;
        case 9:  // an mbarrier overwritten by a plain store
            if (t == 0) {
                rsarch::mbar_init(rsarch::smem_addr(sm + 64), 1);
                sm[64] = 0;
                rsarch::mbar_arrive(rsarch::smem_addr(sm + 64));
            }
            break;
        case 10:  // setmaxnreg while a warp of the warpgroup has exited
            if (t >= 96) return;
            rsarch::setmaxnreg_dec<40>();
            break;
        case 11:  // more arrivals than the mbarrier's count in one phase
            if (t == 0) {
                const uint32_t b = rsarch::smem_addr(sm + 64);
                rsarch::mbar_init(b, 1);
                rsarch::mbar_arrive_expect_tx(b, 16);
                rsarch::mbar_arrive(b);
            }
            break;
        case 12:  // a warp collective in a partial warp
            rsarch::syncwarp();
            break;
        case 13:  // a write past the end of the dynamic window: AddressSanitizer
            if (t == 0) sm[1024] = 1;
            break;
        case 14:  // a TMA destination off the 128 B swizzle pattern's 1024-byte alignment
            break;
        default:
            break;
    }
}
void k_die_tma(DP, const CUtensorMap map) {
    RS_DYNAMIC_SMEM(sm);
    if (threadIdx.x == 0) {
        rsarch::mbar_init(rsarch::smem_addr(sm), 1);
        rsarch::tma_load_2d(rsarch::smem_addr(sm + 512), &map, rsarch::smem_addr(sm), 0, 0);
    }
}

void test_deaths() {
    auto run = [](int which, unsigned threads) { RS_LAUNCH_EX(k_die, 1, threads, 1024, DP{which}); };
    death("deadlock: an mbarrier wait nobody completes (who waits on what)", "threads 0-63: mbar_wait_parity(bar 0x400, parity 0)", [&] { run(0, 64); });
    death("deadlock: a named barrier short of threads", "named_bar_sync(1, 128) at emu_selftest.cpp", [&] { run(1, 128); });
    death("__syncthreads() after some threads exited", "while 32 had exited", [&] { run(2, 64); });
    death("divergence: lanes at two different ldmatrix instructions (.aligned)", "divergence in warp 0", [&] { run(3, 32); });
    death("divergence: half a warp at shfl, half at syncwarp", "divergence in warp 0", [&] { run(4, 32); });
    death("a lane exits while the warp waits at a collective", "exited while thread(s)", [&] { run(5, 32); });
    death("named barrier thread count mismatch", "used with thread count", [&] { run(6, 128); });
    death("ldmatrix row outside the shared window", "outside the dynamic shared memory window", [&] { run(7, 32); });
    death("smem_addr of a static __shared__ array", "not inside this block's dynamic shared memory", [&] { run(8, 32); });
    death("an mbarrier overwritten by a plain store", "were overwritten after mbar_init", [&] { run(9, 32); });
    death("setmaxnreg with an exited warp in the warpgroup", "have exited|exited while thread(s) 0-95 wait for it at setmaxnreg_dec", [&] { run(10, 128); });
    death("more mbarrier arrivals than its count", "more arrivals than the count 1", [&] { run(11, 32); });
    death("a warp collective in a partial warp", "has only 16 thread(s)", [&] { run(12, 16); });
#if RS_EMU_ASAN
    death("a store past the end of the dynamic window (AddressSanitizer)", "AddressSanitizer", [&] { run(13, 32); });
#endif
    uint16_t* g = dalloc<uint16_t>(64 * 8);
    CUtensorMap map;
    encode2d(&map, g, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 64, 8, 128, 64, 8, CU_TENSOR_MAP_SWIZZLE_128B);
    death("a TMA destination not on the 1024-byte swizzle pattern", "is not 1024-byte aligned", [&] { RS_LAUNCH_EX(k_die_tma, 1, 32, 2048, DP{0}, map); });
    cudaFree(g);
    // wgmma misuse and mutations
    death("mutation: a TMA reloads a stage while a wgmma still reads it", "a stage was overwritten while a wgmma still read it",
          [] { run_wgmma<64, 0>(128, true, kOverwriteStage, "", false); });
    death("accumulator registers written while the wgmma is in flight", "were written while it was in flight",
          [] { run_wgmma<64, 0>(128, true, kWriteAcc, "", false); });
    death("wgmma without wgmma_fence", "without a wgmma_fence()", [] { run_wgmma<64, 0>(128, true, kNoFence, "", false); });
    death("wgmma descriptors not uniform over the warpgroup", "must be the same in all 128 threads", [] { run_wgmma<64, 0>(128, true, kNonUniform, "", false); });
    death("wgmma descriptor with a reserved bit set", "has reserved bits set", [] { run_wgmma<64, 0>(128, true, kReservedBit, "", false); });
}

void test_mutations() {
    for (int o = 0; o < 4; ++o) {
        set_order(o);
        check(!run_wgmma<64, 0>(128, true, kNoWait, "", false), std::string("mutation caught: consumers that skip the mbarrier wait compute garbage (") + order_tag() + ")");
        check(!run_wgmma<64, 0>(128, true, kWrongSwizzle, "", false),
              std::string("mutation caught: a descriptor with the wrong swizzle (64 B for a 128 B TMA tile) gives a wrong D (") + order_tag() + ")");
        check(!run_wgmma<64, 1>(64, true, kWrongSwizzle, "", false),
              std::string("mutation caught: wrong swizzle on an N-major B (128 B for a 64 B tile) (") + order_tag() + ")");
    }
    set_order(0);
}

}  // namespace

int main() {
    std::printf("CPU emulation self-test (cuda/dev/emu)\n");
    test_sched();
    test_ldmatrix();
    test_mma();
    test_cpasync();
    test_encode();
    test_tma_load();
    test_mbarrier();
    test_wgmma();
    test_tma_store();
    test_cluster();
    test_launch();
    test_deaths();
    test_mutations();
    const rs_emu::State& s = rs_emu::st();
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    std::printf("emulated %llu launches, %llu blocks, %llu block barriers, %llu collectives, %llu wgmmas, %llu TMA loads, %llu TMA stores\n",
                (unsigned long long)s.launches, (unsigned long long)s.blocks, (unsigned long long)s.barriers, (unsigned long long)s.collectives,
                (unsigned long long)rs_emu::sm90_state().wgmmas, (unsigned long long)rs_emu::sm90_state().tma_loads,
                (unsigned long long)rs_emu::sm90_state().tma_stores);
    return g_fail ? 1 : 0;
}
