// Tile configurations of the sm_80-family GEMM core (cuda/cores/sm80_gemm.cuh), as constexpr
// numbers that host code (launchers, the dev harness, the kernel table) and device code share.
// Host + device, no CUDA headers needed.
//
// Block tile BM × BN, K-tile BK = 32 (16-bit elements: 64-byte rows in shared memory), WARPS_M ×
// WARPS_N warps, each owning a (BM/WARPS_M) × (BN/WARPS_N) warp tile of m16n8k16 fragments,
// STAGES-deep cp.async ring. Dynamic shared memory = max(the ring, the fp32 epilogue staging of
// one warp-row of the tile).
#pragma once

namespace rs4 {

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct Config {
    static constexpr int BM = BM_, BN = BN_, BK = 32;
    static constexpr int WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int MIN_BLOCKS = MIN_BLOCKS_;  // __launch_bounds__ minimum blocks per SM
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;  // warp tile
    static constexpr int MT = WTM / 16, NT = WTN / 8;             // m16 × n8 fragments per warp
    static constexpr int P_BYTES = BM * BK * 2;                   // P tile [BM][BK], K-major
    static constexpr int Q_BYTES = BN * BK * 2;                   // Q tile [BN][BK] or [BK][BN]
    static constexpr int STAGE_BYTES = P_BYTES + Q_BYTES;
    static constexpr int PIPE_BYTES = STAGES * STAGE_BYTES;
    static constexpr int C_LD = BN + 8;                           // fp32 staging row (floats)
    static constexpr int EPI_BYTES = WTM * C_LD * 4;              // one warp-row of the tile per pass
    static constexpr int SMEM_BYTES = PIPE_BYTES > EPI_BYTES ? PIPE_BYTES : EPI_BYTES;

    static_assert(BM % (16 * WARPS_M) == 0 && BN % (16 * WARPS_N) == 0, "warp tiles of whole m16 × n16");
    static_assert(BN % 64 == 0, "MN-major Q rows span whole 128-byte swizzle groups");
    static_assert((BM * BK / 8) % THREADS == 0 && (BN * BK / 8) % THREADS == 0, "16-byte chunks per thread");
    static_assert((WTM * BN / 8) % THREADS == 0, "epilogue chunks per thread");
    static_assert(P_BYTES % 1024 == 0 && STAGE_BYTES % 1024 == 0, "1024-byte aligned tiles");
    static_assert(STAGES >= 2, "a ring of at least two stages");
};

// The fused forward / dX GEMMs: 128×256 tiles, 8 warps of 64×64, 4 stages (96 KiB: fits the
// 99 KiB per-block limit of sm_86/sm_89), one block per SM (≤ 255 registers per thread).
typedef Config<128, 256, 2, 4, 4, 1> BigTile;
// The LoRA-only read-modify-write kernels (K = r): 128×128 tiles, 8 warps of 64×32, 3 stages
// (48 KiB, no opt-in needed), two blocks per SM (≤ 128 registers).
typedef Config<128, 128, 2, 4, 3, 2> SmallTile;

// The grouped tile order of every v4 kernel (1-D grid of tiles_m · tiles_n blocks): GROUP_M row
// tiles share each column sweep, so a wave of blocks reuses W (or Bt, At) from L2.
constexpr int kGroupM = 8;

}  // namespace rs4
