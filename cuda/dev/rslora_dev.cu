// Standalone development harness for the rsLoRA kernels (llm.c dev/cuda style): a CPU reference
// (double accumulation), the kernel families of cuda/kernels.table, validation of every
// configuration against the reference, then CUDA-event timing.
//
//   rslora_dev selftest            CPU only (no GPU needed): Philox known-answer vectors and mask facts
//   rslora_dev mask SEED STEP LAYER P ROW0 ROWS COLS   CPU only: the mask as 0/1 lines (Java compares it)
//   rslora_dev families            the layer-step families of the table, their dtypes and kernels
//   rslora_dev geometry FAMILY DTYPE N D_IN D_OUT R [CAP]  CPU only: the step's launches (grids) at that shape
//   rslora_dev validate [FAMILY [quick]]  the family's whole layer step × dtype × shape × dropout ×
//                                  assign/accumulate × row groups vs the CPU reference (quick: a quarter)
//   rslora_dev bigindex [FAMILY]   n·d > 2^31 elements (64-bit index math): the last row tile and row group
//   rslora_dev adamw [quick|bench]  the fused AdamW and the gradient norm vs host references (adamw_check.cuh)
//   rslora_dev adafactor [quick|dump|bench]  the fused Adafactor vs the CPU update's host mirror (adafactor_check.cuh)
//   rslora_dev seqlogprob [quick|bench] sequence log-probs and their backward vs double (seq_logprob_check.cuh)
//   rslora_dev oracle FAMILY [quick]  GPU only: the family vs v1 on the device at large shapes (oracle.cuh)
//   rslora_dev bench [FAMILY] [JSONL|-] [NxDINxDOUT,...]  median time of each part of the step (bench.cuh)
// FAMILY is v1, v2, ... or 1, 2, ... (default v1). The same source builds for the CPU emulation
// (-DRS_EMULATE, g++, cuda/dev/emu/cuda_emu.h): then validate runs the unchanged kernels on the CPU
// (native-build/cpu-emulate.sh) and bench is refused.
//
// Files (one job each): common.cuh (host helpers), launch.cuh (launch with dynamic shared memory,
// clusters, tensor maps), registry.cuh (the table as kernels), steps.cuh (a layer step of any
// family: buffers, one fill() per params struct, the grid rules), reference.cuh (the double
// reference and the T-rounding bounds), problems.cuh (shapes, inputs, tolerances), validate.cuh,
// bigindex.cuh, bench.cuh, selftest.cuh, adamw_check.cuh, adafactor_check.cuh, seq_logprob_check.cuh.
// Shapes (SPEC.md §1): X [n, d_in], W [d_out, d_in], bias [d_out], A [r, d_in], B [d_out, r],
// U = D(X)·Aᵀ, V = dY·B [n, r]; Y = X·Wᵀ + bias + γ·U·Bᵀ; dB = γ·dYᵀ·U; dA = γ·Vᵀ·D(X);
// dX = dY·W + γ·D'(V·A); merge W ± γ·B·A. Build: make -C cuda/dev (needs nvcc; runs on sm_80+).
#if defined(RS_EMULATE)
#include "emu/cuda_emu.h"  // CPU emulation (no GPU): see that file for what it does and does not cover
#include "emu/launch_ex.h"
#else
#include <cuda_runtime.h>
#endif
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../rslora_kernels.cu"
#include "../rslora_kernels_sm90a.cu"

#include "common.cuh"
#include "launch.cuh"
#include "registry.cuh"
#include "reference.cuh"
#include "problems.cuh"
#include "steps.cuh"

// the table, once: every row a Kernel (the compiler checks each name and its params)
const std::vector<rsdev::Kernel>& rsdev::registry() {
    static const std::vector<Kernel> table = {
#include "../kernels.table"
    };
    return table;
}

#include "validate.cuh"
#include "bigindex.cuh"
#include "bench.cuh"
#include "oracle.cuh"
#include "selftest.cuh"
#include "adamw_check.cuh"  // the `adamw` command: fused AdamW and gradient norm
#include "adafactor_check.cuh"     // the `adafactor` command: fused Adafactor
#include "seq_logprob_check.cuh"   // the `seqlogprob` command: sequence log-probs (DPO)

// the families and the kernels of their step at r = 64 (other ranks may pick other rank classes)
static int list_families() {
    for (const std::string& f : rsdev::families()) {
        std::printf("%s:", f.c_str());
        for (DT d : rsdev::family_dtypes(f)) std::printf(" %s", dt_name(d));
        std::printf("\n");
        for (DT d : rsdev::family_dtypes(f))
            for (const auto& rk : rsdev::step_plan(f, d, 64))
                std::printf("  %-4s %-11s %-36s %4d thr %6zu B smem  %-6s %-5s %s\n", dt_name(d), rsdev::role_name(rk.first),
                            rk.second->row.name.c_str(), rk.second->row.threads, rk.second->row.smem, rk.second->row.arch.c_str(),
                            rk.second->row.image.c_str(), rk.second->row.grid.c_str());
    }
    return 0;
}

static int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s selftest | mask ... | families | geometry FAMILY DTYPE N D_IN D_OUT R [CAP] | validate [FAMILY [quick]] | bigindex [FAMILY] | "
                 "bench [FAMILY] [JSONL|-] [NxDINxDOUT,...] | oracle FAMILY [quick] | adamw [quick|bench] | "
                 "adafactor [quick|dump|bench] | seqlogprob [quick|bench]\n(families in the table: %s)\n",
                 argv0, rsdev::family_list().c_str());
    return 2;
}

int main(int argc, char** argv) {
    const std::string cmd = argc > 1 ? argv[1] : "validate";
    if (cmd == "selftest") return selftest();
    if (cmd == "mask") return print_mask(argc, argv);
    if (cmd == "families") return list_families();
    if (cmd == "geometry") return rsdev::print_geometry(argc, argv);
    const bool family_cmd = cmd == "validate" || cmd == "bigindex" || cmd == "bench" || cmd == "oracle";
    std::string family;
    if (family_cmd) {
        family = rsdev::family_arg(argc > 2 ? argv[2] : "v1");
        if (family.empty()) {
            std::printf("family %s is not in the kernel table (available: %s)\n", argv[2], rsdev::family_list().c_str());
            return 2;
        }
    }
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device: '%s' needs a GPU (selftest runs without one)\n", cmd.c_str());
        return 3;
    }
    const std::string mode = argc > 2 ? argv[2] : "";
#if defined(RS_EMULATE)
    const bool optimizer_cmd = cmd == "adamw" || cmd == "adafactor" || cmd == "seqlogprob";
    if (cmd == "bench" || cmd == "oracle" || (optimizer_cmd && mode == "bench")) {
        std::printf("%s needs a GPU (this is the CPU emulation build)\n", cmd.c_str());
        return 3;
    }
    if (cmd == "validate" || optimizer_cmd)
        std::printf("CPU emulation (cuda/dev/emu/cuda_emu.h), thread order %s between barriers\n", rs_emu::order_name());
#endif
    int rc = -1;
    if (cmd == "adamw") {
#if !defined(RS_EMULATE)
        if (mode == "bench") return adamw_dev::bench();
#endif
        rc = adamw_dev::validate(mode == "quick");
    } else if (cmd == "adafactor") {
#if !defined(RS_EMULATE)
        if (mode == "bench") return adafactor_dev::bench();
#endif
        rc = mode == "dump" ? adafactor_dev::dump() : adafactor_dev::validate(mode == "quick");
    } else if (cmd == "seqlogprob") {
#if !defined(RS_EMULATE)
        if (mode == "bench") return seqlp_dev::bench();
#endif
        rc = seqlp_dev::validate(mode == "quick");
    } else if (cmd == "validate") {
        rc = rsdev::validate(family, argc > 3 && std::string(argv[3]) == "quick");
    } else if (cmd == "bigindex") {
        rc = rsdev::bigindex(family);
#if !defined(RS_EMULATE)
    } else if (cmd == "bench") {
        rc = rsdev::bench(family, argc > 3 ? argv[3] : nullptr, argc > 4 ? argv[4] : nullptr);
    } else if (cmd == "oracle") {
        rc = rsdev::oracle(family, argc > 3 && std::string(argv[3]) == "quick");
#endif
    } else {
        return usage(argv[0]);
    }
#if defined(RS_EMULATE)
    if (cmd == "validate")
        std::printf("emulated %llu launches, %llu blocks, %llu block barriers\n", (unsigned long long)rs_emu::st().launches,
                    (unsigned long long)rs_emu::st().blocks, (unsigned long long)rs_emu::st().barriers);
#endif
    return rc;
}
