// `selftest` and `mask`: the CPU-only commands (no GPU, no kernel launch): Philox known-answer
// vectors and dropout facts, and the mask as 0/1 lines for the Java tests.
#pragma once

// CPU-only self test: Philox known-answer vectors (SPEC.md §4) and dropout facts
static int selftest() {
    struct Kat { uint32_t c[4], k[2], out[4]; };
    const Kat kats[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    int pass = 0, fail = 0;
    for (const Kat& k : kats) {
        RsU32x4 o = rs_philox4x32_10(k.c[0], k.c[1], k.c[2], k.c[3], k.k[0], k.k[1]);
        bool ok = std::memcmp(o.v, k.out, sizeof o.v) == 0;
        std::printf("%s philox KAT %08x %08x %08x %08x\n", ok ? "ok  " : "FAIL", o.v[0], o.v[1], o.v[2], o.v[3]);
        ok ? ++pass : ++fail;
    }
    // threshold = ceil(p·2^24) equals the float comparison u >= p for every 24-bit draw near it
    for (float p : {0.1f, 0.5f, 0.25f, 1e-7f, 0.9999f}) {
        RsDropout d = make_dropout(1, 2, 3, p, true);
        bool ok = true;
        for (int64_t q = (int64_t)d.threshold - 3; q <= (int64_t)d.threshold + 3; ++q) {
            if (q < 0 || q >= (1 << 24)) continue;
            bool by_int = (uint32_t)q >= d.threshold;
            bool by_float = (float)q * 0x1p-24f >= p;
            ok = ok && by_int == by_float;
        }
        std::printf("%s threshold p=%g -> %u\n", ok ? "ok  " : "FAIL", p, d.threshold);
        ok ? ++pass : ++fail;
    }
    // keep rate of p = 0.1 over 400k elements within 5 sigma of 0.9
    RsDropout d = make_dropout(0x1234567890abcdefULL, 7, 2, 0.1f, true);
    long kept = 0, total = 0;
    for (uint32_t i = 0; i < 400; ++i)
        for (uint32_t c = 0; c < 1000; ++c, ++total) kept += rs_dropout_one(d, i, c) != 0.0f;
    double rate = (double)kept / total, sigma = std::sqrt(0.09 / total);
    bool ok = std::fabs(rate - 0.9) < 5 * sigma;
    std::printf("%s keep rate %.5f (p=0.1)\n", ok ? "ok  " : "FAIL", rate);
    ok ? ++pass : ++fail;
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

// CPU only: the mask of rows [row0, row0 + rows) × columns [0, cols) as one line of '1' (kept) and
// '0' (dropped) per row, from the kernels' own rs_dropout_one. The Java tests compare it with
// dev.rslora.dropout.DropoutMask (the CPU backends' mask) bit for bit, without a GPU.
static int print_mask(int argc, char** argv) {
    if (argc != 9) {
        std::fprintf(stderr, "usage: %s mask SEED STEP LAYER P ROW0 ROWS COLS\n", argv[0]);
        return 2;
    }
    const uint64_t seed = std::strtoull(argv[2], nullptr, 0), step = std::strtoull(argv[3], nullptr, 0);
    const uint32_t layer = (uint32_t)std::strtoul(argv[4], nullptr, 0);
    const float p = std::strtof(argv[5], nullptr);
    const uint32_t row0 = (uint32_t)std::strtoul(argv[6], nullptr, 0);
    const int rows = std::atoi(argv[7]), cols = std::atoi(argv[8]);
    const RsDropout d = make_dropout(seed, step, layer, p, true);
    std::printf("threshold %u scale %.9g\n", d.threshold, d.scale);
    std::string line((size_t)cols, '0');
    for (int i = 0; i < rows; ++i) {
        for (int c = 0; c < cols; ++c) line[(size_t)c] = rs_dropout_one(d, row0 + (uint32_t)i, (uint32_t)c) != 0.0f ? '1' : '0';
        std::printf("%s\n", line.c_str());
    }
    return 0;
}

