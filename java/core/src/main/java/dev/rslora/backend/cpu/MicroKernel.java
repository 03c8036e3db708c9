package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import dev.rslora.simd.VectorRegisters;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The register tile every GEMM of the cpu backend is built from, in the shape that suits the
 * vector length, chosen once when this class is initialised:
 * <pre>
 *   C[MR, NR] = Σ_{k&lt;K} a[aOff + m·lda + k] · panel[k][0..NR)          (mma)
 *   C[MR, NR] = C + Σ_{k&lt;K} …, the sum formed first, then added            (mmaAdd)
 * </pre>
 * A is a heap float[] read row-major (K contiguous, rows {@code lda} apart; the caller pads A to
 * MR rows so pad rows may hold stale values: they only reach pad rows of C). A packed A ([K][MR],
 * one stream and constant broadcast offsets instead of MR row addresses, some kept on the stack)
 * was tried and not kept (2026-12-06, 512-bit tile, one thread): alone, 64 rows through all of a
 * d = 1024 W, it ran 1.04–1.20× faster in three runs of 30–60 alternated rounds, but the frozen
 * base step (N = 512, d = 1024) took 10.9–11.5 ms with it against 10.6–12.0 ms without, five
 * alternated runs each, the step already at about 93 % of the FMA ceiling. The B operand is a
 * packed panel in native memory: K consecutive groups of NR floats (see {@link Panels}); its
 * constant stride lets the JIT drop the per-load range checks (a B operand read with a run-time
 * row stride measured 15% slower). C is an MR×NR tile in a heap float[], row m at
 * {@code cOff + m·ldc}: ldc = NR for a contiguous tile, or a chunk buffer's row length for a tile
 * written in place among the chunk's output rows (Y and dX); C is written only after the k loop,
 * so its stride costs nothing there. The tiles start from zero and never load C: with C's
 * 16–24 vector loads as well, C2's graph of the 512-bit tile (-XX:-UseFMA) and of the 128-bit
 * tile passed HotSpot's inlining cutoff before their multiply-adds were all parsed, and C2
 * delayed those (GraphSizeTest explains why that can box vectors); {@link #mmaAdd} adds the
 * finished tile to C instead (JMH, 2026-12-07, old and new alternated: the training step at
 * N = 512, d = 1024, r = 64 and 256 ran as fast as with C loaded into the accumulators, R 1.246
 * and 1.863 against 1.247 and 1.858 on the 512-bit tile, 1.254 and 1.869 against 1.260 and 1.857
 * on the 256-bit one; the 128-bit tile's step pair took 49–52 ms against 53–56 ms on this x86).
 *
 * <p>Shapes (MR rows × NV vectors; per k: NV panel loads, MR broadcasts, MR·NV FMAs), each sized
 * to leave its accumulators, panel vectors and broadcast in registers:
 * <pre>
 *   512-bit (AVX-512, 32 zmm)       8 × 2 vectors = 8×32 floats   16 + 2 + 1 = 19 registers
 *   256-bit, 32 registers (SVE-256) 8 × 2 vectors = 8×16 floats   16 + 2 + 1 = 19 registers
 *   256-bit (AVX2, 16 ymm)          6 × 2 vectors = 6×16 floats   12 + 2 + 1 = 15 registers
 *   128-bit (NEON, 32 v-registers)  8 × 3 vectors = 8×12 floats   24 + 3 + 1 = 28 registers
 *   128-bit, 16 registers (x86)     6 × 2 vectors = 6×8 floats    12 + 2 + 1 = 15 registers
 *   128-bit without FMA (x86, 16)   5 × 2 vectors = 5×8 floats    10 + 2 + 1 = 13, + 1 product
 *   scalar  (no usable vectors)     4 × 4 floats                  16 + 4 + 1 = 21 FP registers
 * </pre>
 * (8×2 with 256-bit vectors would need 19 of AVX2's 16 registers: that is what the 6×2 shape
 * avoids there.) As compiled, checked by {@code TileCodeTest} at each shape in the build: no loop of the
 * tile or of its one-row form moves a vector register to or from the stack or calls out. C2's
 * steady-state k loop on JDK 25 (x86-64, 2026-12-06): 46 instructions for the 16 FMAs of the
 * 512-bit tile, 37 for 12 (256-bit), 68 for 24 (128-bit), 40 for 16 (scalar), with 3, 2, 8 and 2
 * of A's row offsets reloaded from the stack (general registers run short; a load each); the
 * 8×16 tile, 46 for 16 with 3 (2026-12-07). The
 * width is the JIT's preferred float vector width, or smaller when the system property
 * {@code rslora.cpu.vectorBits} (512, 256, 128 or 0 = scalar) asks for it; a request
 * above the preferred width is lowered to it (a species wider than the hardware's runs unintrinsified).
 * {@link #mmaRow} is the one-row form of the same contract (decoding: N = 1).
 * On an AVX-512 machine, {@code -XX:MaxVectorSize=32} keeps C2's EVEX code (ymm16–31): 32
 * registers, as SVE has, so the 256-bit tile there is 8×16 ({@link #mma256x8}). The 6×16 tile ran
 * 97–99 GFLOP/s as EVEX code against 114 compiled for AVX2 ({@code -XX:UseAVX=2}, as an AVX2
 * machine runs it; one thread, in cache, Zen 4, 2026-12-07). A k loop counting A's offset instead of k
 * ran 113 under EVEX, but under {@code -XX:UseAVX=2} it kept vectors on the stack ({@code TileCodeTest})
 * and was no faster, so it was not kept (jmh/README.md).
 */
final class MicroKernel {
    /** Multiply-adds fused, or a multiply then an add where the JIT has no FMA instructions ({@link Fma}). */
    private static final boolean FUSED = Fma.FUSED;
    /** Vector registers the JIT allocates: 32 (aarch64, x86 with AVX-512) or 16 (x86 otherwise). */
    static final int REGISTERS = VectorRegisters.COUNT;
    /** The system property that forces a narrower tile shape. */
    static final String PROPERTY = "rslora.cpu.vectorBits";
    private static final VectorSpecies<Float> S512 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Float> S256 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Float> S128 = FloatVector.SPECIES_128;
    private static final int L512 = 16;
    private static final int L256 = 8;
    private static final int L128 = 4;

    /** The JIT's preferred float vector width in bits, as a tile shape (512, 256, 128, or 0 below 128). */
    static final int PREFERRED_BITS = shapeBits(FloatVector.SPECIES_PREFERRED.vectorBitSize());
    /** Why {@link #PROPERTY} was rejected (the backend refuses to start), or null. */
    static final String CONFIG_ERROR = configError(System.getProperty(PROPERTY));
    /** Vector bits of the tiles: 512, 256, 128, or 0 for scalar code. */
    static final int BITS = chooseBits(System.getProperty(PROPERTY), PREFERRED_BITS);
    static final boolean SCALAR = BITS == 0;
    /**
     * 128-bit tiles: vector code uses plain loads and stores only, no masked loads or stores and no
     * gathers; tails go through scalar code or a staging copy instead. A 128-bit tile is what NEON
     * machines get (Apple silicon, Graviton 2, Ampere Altra) and x86 with AVX but not AVX2, and
     * there C2 compiles none of those operations (JDK 25: aarch64 needs SVE for them, x86 AVX2 for
     * gathers); the Vector API's Java fallback then boxes every vector, and a training step at
     * N = 200, d = 256, r = 64 allocated 2.2 MB (the gathers of {@link TileOps#transpose}; under
     * qemu as a Neoverse N1, 2026-12-07). Wider tiles come only with AVX2, AVX-512 or SVE, which
     * compile them. x86 forced to 16-byte vectors ({@code -XX:MaxVectorSize=16}) takes this route
     * too, which is how the test suite runs it.
     */
    static final boolean PLAIN_MEMORY = BITS == 128;
    /** The species of every vector loop of the backend (never used when {@link #SCALAR}). */
    static final VectorSpecies<Float> SPECIES = switch (BITS) {
        case 512 -> S512;
        case 256 -> S256;
        default -> S128;
    };
    /** Lanes per vector (1 for scalar code). */
    static final int L = lanesFor(BITS);
    /** Rows of the register tile. */
    static final int MR = rowsFor(BITS);
    /** Vectors per tile row. */
    static final int NV = vectorsFor(BITS);
    /** Columns of the register tile and width of every packed panel. */
    static final int NR = NV * L;
    /** Bytes of one packed panel row (NR floats). */
    static final long PANEL_ROW_BYTES = NR * 4L;
    static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private MicroKernel() {
    }

    /**
     * The name of the tile method in use: mma512, mma256x8 (32 registers), mma256 (16), mma128,
     * mma128x6 (16 registers), mma128x5 (no FMA) or mmaScalar.
     */
    static String tileMethod() {
        if (SCALAR) {
            return "mmaScalar";
        }
        String rows = switch (BITS) {
            case 256 -> MR == 8 ? "x8" : "";
            case 128 -> !FUSED ? "x5" : NV == 2 ? "x6" : "";
            default -> "";
        };
        return "mma" + BITS + rows;
    }

    /** The name of the one-row method in use: row512, row256, row128, row128x2 (two vectors a row) or rowScalar. */
    static String rowMethod() {
        return "row" + (SCALAR ? "Scalar" : BITS + (BITS == 128 && NV == 2 ? "x2" : ""));
    }

    /** The largest tile width ≤ {@code bits}. */
    static int shapeBits(int bits) {
        return bits >= 512 ? 512 : bits >= 256 ? 256 : bits >= 128 ? 128 : 0;
    }

    /** The error message for a bad {@link #PROPERTY} value, or null when it is absent or valid. */
    static String configError(String requested) {
        if (requested == null) {
            return null;
        }
        return switch (requested.strip()) {
            case "512", "256", "128", "0" -> null;
            default -> "-D" + PROPERTY + "=" + requested + " is not a tile width: expected 512, 256, 128 or 0 (scalar)";
        };
    }

    /** The tile width for a request (null: none) on a JIT whose preferred width is {@code preferred}. */
    static int chooseBits(String requested, int preferred) {
        if (requested == null || configError(requested) != null) {
            return preferred;
        }
        return Math.min(Integer.parseInt(requested.strip()), preferred);
    }

    /** Tile rows of the shape for {@code bits} (512, 256, 128, 0). */
    static int rowsFor(int bits) {
        return rowsFor(bits, FUSED, REGISTERS);
    }

    /** Tile rows for {@code bits} on a JIT with or without FMA and with {@code registers} vector registers. */
    static int rowsFor(int bits, boolean fused, int registers) {
        if (bits == 128) {
            return !fused ? 5 : registers < 32 ? 6 : 8;
        }
        if (bits == 256) {
            return fused && registers >= 32 ? 8 : 6;
        }
        return bits == 0 ? 4 : 8;
    }

    /** Vectors per tile row of the shape for {@code bits}. */
    static int vectorsFor(int bits) {
        return vectorsFor(bits, FUSED, REGISTERS);
    }

    /** Vectors per tile row for {@code bits} on a JIT with or without FMA and with {@code registers} vector registers. */
    static int vectorsFor(int bits, boolean fused, int registers) {
        return bits == 128 ? (fused && registers >= 32 ? 3 : 2) : bits == 0 ? 4 : 2;
    }

    /** fp32 lanes per vector for {@code bits} (1: scalar). */
    static int lanesFor(int bits) {
        return bits == 0 ? 1 : bits / 32;
    }

    /** "512-bit vectors, 8×32 tile", "scalar, 4×4 tile", … for a tile width. */
    static String shapeName(int bits) {
        return shapeName(bits, FUSED, REGISTERS);
    }

    /** {@link #shapeName(int)} on a JIT with or without FMA and with {@code registers} vector registers. */
    static String shapeName(int bits, boolean fused, int registers) {
        if (bits != 512 && bits != 256 && bits != 128 && bits != 0) {
            throw new IllegalArgumentException("no tile shape for " + bits + " bits: expected 512, 256, 128 or 0");
        }
        return (bits == 0 ? "scalar" : bits + "-bit vectors") + ", " + rowsFor(bits, fused, registers) + "×"
                + vectorsFor(bits, fused, registers) * lanesFor(bits) + " tile";
    }

    /** The shape in use, plus why when it differs from the JIT's preferred width. */
    static String describe() {
        String what = shapeName(BITS);
        String requested = System.getProperty(PROPERTY);
        if (BITS < PREFERRED_BITS) {
            what += " (" + PROPERTY + "=" + requested + "; the JIT's widest is " + PREFERRED_BITS + ")";
        } else if (requested != null && CONFIG_ERROR == null && Integer.parseInt(requested.strip()) > BITS) {
            what += " (" + PROPERTY + "=" + requested + " lowered to the JIT's widest)";
        }
        if (!Fma.FUSED) {
            what += ", multiply then add (the JIT has no FMA instructions)";
        }
        return what;
    }

    /** C tile = A[MR, K]·panel[K, NR], the tile contiguous (row m at cOff + m·NR). */
    static void mma(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff) {
        mma(a, aOff, lda, b, bOff, k, c, cOff, NR);
    }

    /** C tile = A[MR, K]·panel[K, NR], tile row m at cOff + m·ldc (ldc ≥ NR). */
    static void mma(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff, int ldc) {
        switch (BITS) {
            case 512 -> mma512(a, aOff, lda, b, bOff, k, c, cOff, ldc);
            case 256 -> {
                if (MR == 8) {
                    mma256x8(a, aOff, lda, b, bOff, k, c, cOff, ldc);
                } else {
                    mma256(a, aOff, lda, b, bOff, k, c, cOff, ldc);
                }
            }
            case 128 -> {
                if (!FUSED) {
                    mma128x5(a, aOff, lda, b, bOff, k, c, cOff, ldc);
                } else if (NV == 3) {
                    mma128(a, aOff, lda, b, bOff, k, c, cOff, ldc);
                } else {
                    mma128x6(a, aOff, lda, b, bOff, k, c, cOff, ldc);
                }
            }
            default -> mmaScalar(a, aOff, lda, b, bOff, k, c, cOff, ldc);
        }
    }

    /**
     * C tile += A[MR, K]·panel[K, NR], tile row m at cOff + m·ldc (ldc ≥ NR): the product into
     * {@code tmp} (MR·NR floats), then added to C: C + (A·panel), the product's sums in fp32 first.
     * The tiles themselves never load C: 16–24 vector loads more would take the 512- and 128-bit
     * tiles past C2's inlining cutoff ({@code GraphSizeTest}), and an add over the finished tile
     * costs MR·NV loads, adds and stores against MR·NV·K multiply-adds.
     */
    static void mmaAdd(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff, int ldc,
                       float[] tmp) {
        mma(a, aOff, lda, b, bOff, k, tmp, 0, NR);
        for (int m = 0; m < MR; m++) {
            TileOps.addPadded(c, cOff + m * ldc, tmp, m * NR, NR);
        }
    }

    /** One row: c[cOff .. cOff+NR) (=|+=) a[aOff .. aOff+K)·panel[K, NR]. */
    static void mmaRow(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        switch (BITS) {
            case 512 -> row512(a, aOff, b, bOff, k, c, cOff, accumulate);
            case 256 -> row256(a, aOff, b, bOff, k, c, cOff, accumulate);
            case 128 -> {
                if (NV == 3) {
                    row128(a, aOff, b, bOff, k, c, cOff, accumulate);
                } else {
                    row128x2(a, aOff, b, bOff, k, c, cOff, accumulate);
                }
            }
            default -> rowScalar(a, aOff, b, bOff, k, c, cOff, accumulate);
        }
    }

    /** 8×2 vectors of 512 bits: 16 accumulators + 2 panel vectors + 1 broadcast = 19 registers. */
    private static void mma512(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                               int ldc) {
        final int nr = 2 * L512;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        FloatVector z = FloatVector.zero(S512);
        c00 = z; c01 = z;
        c10 = z; c11 = z;
        c20 = z; c21 = z;
        c30 = z; c31 = z;
        c40 = z; c41 = z;
        c50 = z; c51 = z;
        c60 = z; c61 = z;
        c70 = z; c71 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S512, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S512, b, bp + L512 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S512, a[ai]);
            c00 = FUSED ? x.fma(b0, c00) : x.mul(b0).add(c00); c01 = FUSED ? x.fma(b1, c01) : x.mul(b1).add(c01); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c10 = FUSED ? x.fma(b0, c10) : x.mul(b0).add(c10); c11 = FUSED ? x.fma(b1, c11) : x.mul(b1).add(c11); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c20 = FUSED ? x.fma(b0, c20) : x.mul(b0).add(c20); c21 = FUSED ? x.fma(b1, c21) : x.mul(b1).add(c21); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c30 = FUSED ? x.fma(b0, c30) : x.mul(b0).add(c30); c31 = FUSED ? x.fma(b1, c31) : x.mul(b1).add(c31); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c40 = FUSED ? x.fma(b0, c40) : x.mul(b0).add(c40); c41 = FUSED ? x.fma(b1, c41) : x.mul(b1).add(c41); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c50 = FUSED ? x.fma(b0, c50) : x.mul(b0).add(c50); c51 = FUSED ? x.fma(b1, c51) : x.mul(b1).add(c51); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c60 = FUSED ? x.fma(b0, c60) : x.mul(b0).add(c60); c61 = FUSED ? x.fma(b1, c61) : x.mul(b1).add(c61); ai += lda;
            x = FloatVector.broadcast(S512, a[ai]);
            c70 = FUSED ? x.fma(b0, c70) : x.mul(b0).add(c70); c71 = FUSED ? x.fma(b1, c71) : x.mul(b1).add(c71);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L512); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L512); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L512); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L512); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L512); o += ldc;
        c50.intoArray(c, o); c51.intoArray(c, o + L512); o += ldc;
        c60.intoArray(c, o); c61.intoArray(c, o + L512); o += ldc;
        c70.intoArray(c, o); c71.intoArray(c, o + L512);
    }

    /**
     * 8×2 vectors of 256 bits, the 256-bit tile where the JIT has 32 vector registers and FMA (SVE
     * with 256-bit vectors, e.g. Graviton 3, whose JIT prefers 256 bits; an AVX-512 JIT limited to
     * 256 bits, {@code -XX:MaxVectorSize=32}): 16 accumulators + 2 panel vectors + 1 broadcast = 19
     * registers, 16 FMAs per 2 panel loads and 8 broadcasts against {@link #mma256}'s 12 per 2 and 6.
     * Scratch harness, one thread, 72 rows of X [72, 1024] through the 64 panels of a packed W
     * [1024, 1024] as {@code ForwardPass.computeY} runs them, -XX:MaxVectorSize=32, 15 alternated
     * rounds (Zen 4, 2026-12-07): 109.7 GFLOP/s median against 94.2 for 6×2 (8×3 106.2, 12×2 106.8,
     * so the smallest of the three is kept).
     */
    private static void mma256x8(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                                 int ldc) {
        final int nr = 2 * L256;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        FloatVector z = FloatVector.zero(S256);
        c00 = z; c01 = z;
        c10 = z; c11 = z;
        c20 = z; c21 = z;
        c30 = z; c31 = z;
        c40 = z; c41 = z;
        c50 = z; c51 = z;
        c60 = z; c61 = z;
        c70 = z; c71 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S256, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S256, b, bp + L256 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S256, a[ai]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c60 = x.fma(b0, c60); c61 = x.fma(b1, c61); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c70 = x.fma(b0, c70); c71 = x.fma(b1, c71);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L256); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L256); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L256); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L256); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L256); o += ldc;
        c50.intoArray(c, o); c51.intoArray(c, o + L256); o += ldc;
        c60.intoArray(c, o); c61.intoArray(c, o + L256); o += ldc;
        c70.intoArray(c, o); c71.intoArray(c, o + L256);
    }

    /**
     * 6×2 vectors of 256 bits, the 256-bit tile where the JIT has 16 registers (x86 with AVX2, no
     * AVX-512) or no FMA: 12 accumulators + 2 panel vectors + 1 broadcast = 15 registers.
     */
    private static void mma256(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                               int ldc) {
        final int nr = 2 * L256;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        FloatVector z = FloatVector.zero(S256);
        c00 = z; c01 = z;
        c10 = z; c11 = z;
        c20 = z; c21 = z;
        c30 = z; c31 = z;
        c40 = z; c41 = z;
        c50 = z; c51 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S256, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S256, b, bp + L256 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S256, a[ai]);
            c00 = FUSED ? x.fma(b0, c00) : x.mul(b0).add(c00); c01 = FUSED ? x.fma(b1, c01) : x.mul(b1).add(c01); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c10 = FUSED ? x.fma(b0, c10) : x.mul(b0).add(c10); c11 = FUSED ? x.fma(b1, c11) : x.mul(b1).add(c11); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c20 = FUSED ? x.fma(b0, c20) : x.mul(b0).add(c20); c21 = FUSED ? x.fma(b1, c21) : x.mul(b1).add(c21); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c30 = FUSED ? x.fma(b0, c30) : x.mul(b0).add(c30); c31 = FUSED ? x.fma(b1, c31) : x.mul(b1).add(c31); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c40 = FUSED ? x.fma(b0, c40) : x.mul(b0).add(c40); c41 = FUSED ? x.fma(b1, c41) : x.mul(b1).add(c41); ai += lda;
            x = FloatVector.broadcast(S256, a[ai]);
            c50 = FUSED ? x.fma(b0, c50) : x.mul(b0).add(c50); c51 = FUSED ? x.fma(b1, c51) : x.mul(b1).add(c51);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L256); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L256); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L256); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L256); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L256); o += ldc;
        c50.intoArray(c, o); c51.intoArray(c, o + L256);
    }

    /** 8×3 vectors of 128 bits: 24 accumulators + 3 panel vectors + 1 broadcast = 28 registers. */
    private static void mma128(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                               int ldc) {
        final int nr = 3 * L128;
        FloatVector c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32, c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
        FloatVector z = FloatVector.zero(S128);
        c00 = z; c01 = z; c02 = z;
        c10 = z; c11 = z; c12 = z;
        c20 = z; c21 = z; c22 = z;
        c30 = z; c31 = z; c32 = z;
        c40 = z; c41 = z; c42 = z;
        c50 = z; c51 = z; c52 = z;
        c60 = z; c61 = z; c62 = z;
        c70 = z; c71 = z; c72 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            FloatVector b2 = FloatVector.fromMemorySegment(S128, b, bp + 2 * L128 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S128, a[ai]);
            c00 = FUSED ? x.fma(b0, c00) : x.mul(b0).add(c00); c01 = FUSED ? x.fma(b1, c01) : x.mul(b1).add(c01);
            c02 = FUSED ? x.fma(b2, c02) : x.mul(b2).add(c02); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c10 = FUSED ? x.fma(b0, c10) : x.mul(b0).add(c10); c11 = FUSED ? x.fma(b1, c11) : x.mul(b1).add(c11);
            c12 = FUSED ? x.fma(b2, c12) : x.mul(b2).add(c12); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c20 = FUSED ? x.fma(b0, c20) : x.mul(b0).add(c20); c21 = FUSED ? x.fma(b1, c21) : x.mul(b1).add(c21);
            c22 = FUSED ? x.fma(b2, c22) : x.mul(b2).add(c22); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c30 = FUSED ? x.fma(b0, c30) : x.mul(b0).add(c30); c31 = FUSED ? x.fma(b1, c31) : x.mul(b1).add(c31);
            c32 = FUSED ? x.fma(b2, c32) : x.mul(b2).add(c32); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c40 = FUSED ? x.fma(b0, c40) : x.mul(b0).add(c40); c41 = FUSED ? x.fma(b1, c41) : x.mul(b1).add(c41);
            c42 = FUSED ? x.fma(b2, c42) : x.mul(b2).add(c42); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c50 = FUSED ? x.fma(b0, c50) : x.mul(b0).add(c50); c51 = FUSED ? x.fma(b1, c51) : x.mul(b1).add(c51);
            c52 = FUSED ? x.fma(b2, c52) : x.mul(b2).add(c52); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c60 = FUSED ? x.fma(b0, c60) : x.mul(b0).add(c60); c61 = FUSED ? x.fma(b1, c61) : x.mul(b1).add(c61);
            c62 = FUSED ? x.fma(b2, c62) : x.mul(b2).add(c62); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c70 = FUSED ? x.fma(b0, c70) : x.mul(b0).add(c70); c71 = FUSED ? x.fma(b1, c71) : x.mul(b1).add(c71);
            c72 = FUSED ? x.fma(b2, c72) : x.mul(b2).add(c72);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L128); c02.intoArray(c, o + 2 * L128); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L128); c12.intoArray(c, o + 2 * L128); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L128); c22.intoArray(c, o + 2 * L128); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L128); c32.intoArray(c, o + 2 * L128); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L128); c42.intoArray(c, o + 2 * L128); o += ldc;
        c50.intoArray(c, o); c51.intoArray(c, o + L128); c52.intoArray(c, o + 2 * L128); o += ldc;
        c60.intoArray(c, o); c61.intoArray(c, o + L128); c62.intoArray(c, o + 2 * L128); o += ldc;
        c70.intoArray(c, o); c71.intoArray(c, o + L128); c72.intoArray(c, o + 2 * L128);
    }

    /**
     * 6×2 vectors of 128 bits, the 128-bit tile where the JIT has 16 registers (x86 without AVX-512:
     * AVX with FMA3 but not AVX2, or AVX2 limited to 128 bits): 12 accumulators + 2 panel vectors +
     * 1 broadcast = 15 (only where the JIT has FMA: without, {@link #mma128x5}). The 8×3 tile kept vectors on the stack there (-XX:UseAVX=1, TileCodeTest:
     * 28 stack accesses a loop); JMH loraThenBaseCpu, one thread, N = 512, d = 1024, r = 64, four
     * alternated rounds (Zen 4 VM, 2026-12-07): base step 45–51 CPU-ms against 80–88 with the 8×3
     * tile, LoRA step 55–61 against 96–107.
     */
    private static void mma128x6(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                               int ldc) {
        final int nr = 2 * L128;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        FloatVector z = FloatVector.zero(S128);
        c00 = z; c01 = z;
        c10 = z; c11 = z;
        c20 = z; c21 = z;
        c30 = z; c31 = z;
        c40 = z; c41 = z;
        c50 = z; c51 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S128, a[ai]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L128); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L128); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L128); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L128); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L128); o += ldc;
        c50.intoArray(c, o); c51.intoArray(c, o + L128);
    }

    /**
     * 5×2 vectors of 128 bits, multiply then add: the 128-bit tile where the JIT has no FMA
     * instructions (x86 before Haswell: AVX or SSE, 16 xmm registers; NEON always has FMA):
     * 10 accumulators + 2 panel vectors + 1 broadcast + 1 product = 14 registers. The 8-row tile's
     * 24 multiplies and 24 adds per k took C2's graph past its inlining cutoff, where C2 delayed
     * multiply-adds (GraphSizeTest). The 4×3 tile used before (12 + 3 + 1, + 1 product = 17) kept
     * vectors on the stack in its loops once C2 had only 16 registers (-XX:UseAVX=1 -XX:-UseFMA,
     * TileCodeTest, 2026-12-07): the build had run it with -XX:MaxVectorSize=16 on an AVX-512 host,
     * whose EVEX code has 32; 3×3 and 4×2 also fit, 5×2 does the most multiply-adds per k of them.
     * With SSE's two-operand code (-XX:UseAVX=0) 5×2 still moves 8–13 vectors to or from the stack
     * per loop and 4×2 none, but 4×2 ran 10–15 % slower under -XX:UseAVX=1 (base step 78–92 against
     * 66–76 CPU-ms, four alternated rounds), and an SSE-only JIT boxes other vector code of the
     * backend anyway (the allocation tests time out under -XX:UseAVX=0): 5×2 stays.
     * JMH loraThenBaseCpu under -XX:UseAVX=1 -XX:-UseFMA (one thread, N = 512, d = 1024, r = 64, four
     * alternated rounds, on the Zen 4 development VM): the frozen base step took 59–72 CPU-ms against
     * 88–100 with the 4×3 tile, the LoRA step 73–86 against 106–122.
     */
    private static void mma128x5(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                                 int ldc) {
        final int nr = 2 * L128;
        FloatVector z = FloatVector.zero(S128);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += nr * 4L) {
            FloatVector b0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(S128, a[ai]);
            c00 = x.mul(b0).add(c00); c01 = x.mul(b1).add(c01); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c10 = x.mul(b0).add(c10); c11 = x.mul(b1).add(c11); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c20 = x.mul(b0).add(c20); c21 = x.mul(b1).add(c21); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c30 = x.mul(b0).add(c30); c31 = x.mul(b1).add(c31); ai += lda;
            x = FloatVector.broadcast(S128, a[ai]);
            c40 = x.mul(b0).add(c40); c41 = x.mul(b1).add(c41);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L128); o += ldc;
        c10.intoArray(c, o); c11.intoArray(c, o + L128); o += ldc;
        c20.intoArray(c, o); c21.intoArray(c, o + L128); o += ldc;
        c30.intoArray(c, o); c31.intoArray(c, o + L128); o += ldc;
        c40.intoArray(c, o); c41.intoArray(c, o + L128);
    }

    /** 4×4 scalars: 16 accumulators + 4 panel values + 1 A value = 21 FP registers. */
    private static void mmaScalar(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                                  int ldc) {
        final int o1 = cOff + ldc, o2 = o1 + ldc, o3 = o2 + ldc;
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += 4 * 4L) {
            float b0 = b.get(ValueLayout.JAVA_FLOAT, bp);
            float b1 = b.get(ValueLayout.JAVA_FLOAT, bp + 4);
            float b2 = b.get(ValueLayout.JAVA_FLOAT, bp + 8);
            float b3 = b.get(ValueLayout.JAVA_FLOAT, bp + 12);
            int ai = aOff + kk;
            float x;
            x = a[ai]; c00 = Fma.fma(x, b0, c00); c01 = Fma.fma(x, b1, c01); c02 = Fma.fma(x, b2, c02); c03 = Fma.fma(x, b3, c03); ai += lda;
            x = a[ai]; c10 = Fma.fma(x, b0, c10); c11 = Fma.fma(x, b1, c11); c12 = Fma.fma(x, b2, c12); c13 = Fma.fma(x, b3, c13); ai += lda;
            x = a[ai]; c20 = Fma.fma(x, b0, c20); c21 = Fma.fma(x, b1, c21); c22 = Fma.fma(x, b2, c22); c23 = Fma.fma(x, b3, c23); ai += lda;
            x = a[ai]; c30 = Fma.fma(x, b0, c30); c31 = Fma.fma(x, b1, c31); c32 = Fma.fma(x, b2, c32); c33 = Fma.fma(x, b3, c33);
        }
        c[cOff] = c00; c[cOff + 1] = c01; c[cOff + 2] = c02; c[cOff + 3] = c03;
        c[o1] = c10; c[o1 + 1] = c11; c[o1 + 2] = c12; c[o1 + 3] = c13;
        c[o2] = c20; c[o2 + 1] = c21; c[o2 + 2] = c22; c[o2 + 3] = c23;
        c[o3] = c30; c[o3 + 1] = c31; c[o3 + 2] = c32; c[o3 + 3] = c33;
    }

    /** One row × 2 vectors of 512 bits, two accumulator sets (even and odd k) to hide the FMA latency. */
    private static void row512(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        final long row = 2 * L512 * 4L;
        FloatVector z = FloatVector.zero(S512);
        FloatVector e0 = z, e1 = z, d0 = z, d1 = z;
        if (accumulate) {
            e0 = FloatVector.fromArray(S512, c, cOff);
            e1 = FloatVector.fromArray(S512, c, cOff + L512);
        }
        long bp = bOff;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, bp += 2 * row) {
            FloatVector x = FloatVector.broadcast(S512, a[aOff + kk]);
            FloatVector y = FloatVector.broadcast(S512, a[aOff + kk + 1]);
            FloatVector p0 = FloatVector.fromMemorySegment(S512, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector q0 = FloatVector.fromMemorySegment(S512, b, bp + row, ORDER);
            d0 = FUSED ? y.fma(q0, d0) : y.mul(q0).add(d0);
            FloatVector p1 = FloatVector.fromMemorySegment(S512, b, bp + L512 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
            FloatVector q1 = FloatVector.fromMemorySegment(S512, b, bp + row + L512 * 4L, ORDER);
            d1 = FUSED ? y.fma(q1, d1) : y.mul(q1).add(d1);
        }
        if (kk < k) {
            FloatVector x = FloatVector.broadcast(S512, a[aOff + kk]);
            FloatVector p0 = FloatVector.fromMemorySegment(S512, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector p1 = FloatVector.fromMemorySegment(S512, b, bp + L512 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
        }
        e0.add(d0).intoArray(c, cOff);
        e1.add(d1).intoArray(c, cOff + L512);
    }

    /** One row × 2 vectors of 256 bits, two accumulator sets (even and odd k) to hide the FMA latency. */
    private static void row256(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        final long row = 2 * L256 * 4L;
        FloatVector z = FloatVector.zero(S256);
        FloatVector e0 = z, e1 = z, d0 = z, d1 = z;
        if (accumulate) {
            e0 = FloatVector.fromArray(S256, c, cOff);
            e1 = FloatVector.fromArray(S256, c, cOff + L256);
        }
        long bp = bOff;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, bp += 2 * row) {
            FloatVector x = FloatVector.broadcast(S256, a[aOff + kk]);
            FloatVector y = FloatVector.broadcast(S256, a[aOff + kk + 1]);
            FloatVector p0 = FloatVector.fromMemorySegment(S256, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector q0 = FloatVector.fromMemorySegment(S256, b, bp + row, ORDER);
            d0 = FUSED ? y.fma(q0, d0) : y.mul(q0).add(d0);
            FloatVector p1 = FloatVector.fromMemorySegment(S256, b, bp + L256 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
            FloatVector q1 = FloatVector.fromMemorySegment(S256, b, bp + row + L256 * 4L, ORDER);
            d1 = FUSED ? y.fma(q1, d1) : y.mul(q1).add(d1);
        }
        if (kk < k) {
            FloatVector x = FloatVector.broadcast(S256, a[aOff + kk]);
            FloatVector p0 = FloatVector.fromMemorySegment(S256, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector p1 = FloatVector.fromMemorySegment(S256, b, bp + L256 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
        }
        e0.add(d0).intoArray(c, cOff);
        e1.add(d1).intoArray(c, cOff + L256);
    }

    /** One row × 3 vectors of 128 bits, two accumulator sets (even and odd k) to hide the FMA latency. */
    private static void row128(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        final long row = 3 * L128 * 4L;
        FloatVector z = FloatVector.zero(S128);
        FloatVector e0 = z, e1 = z, e2 = z, d0 = z, d1 = z, d2 = z;
        if (accumulate) {
            e0 = FloatVector.fromArray(S128, c, cOff);
            e1 = FloatVector.fromArray(S128, c, cOff + L128);
            e2 = FloatVector.fromArray(S128, c, cOff + 2 * L128);
        }
        long bp = bOff;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, bp += 2 * row) {
            FloatVector x = FloatVector.broadcast(S128, a[aOff + kk]);
            FloatVector y = FloatVector.broadcast(S128, a[aOff + kk + 1]);
            FloatVector p0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector q0 = FloatVector.fromMemorySegment(S128, b, bp + row, ORDER);
            d0 = FUSED ? y.fma(q0, d0) : y.mul(q0).add(d0);
            FloatVector p1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
            FloatVector q1 = FloatVector.fromMemorySegment(S128, b, bp + row + L128 * 4L, ORDER);
            d1 = FUSED ? y.fma(q1, d1) : y.mul(q1).add(d1);
            FloatVector p2 = FloatVector.fromMemorySegment(S128, b, bp + 2 * L128 * 4L, ORDER);
            e2 = FUSED ? x.fma(p2, e2) : x.mul(p2).add(e2);
            FloatVector q2 = FloatVector.fromMemorySegment(S128, b, bp + row + 2 * L128 * 4L, ORDER);
            d2 = FUSED ? y.fma(q2, d2) : y.mul(q2).add(d2);
        }
        if (kk < k) {
            FloatVector x = FloatVector.broadcast(S128, a[aOff + kk]);
            FloatVector p0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector p1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
            FloatVector p2 = FloatVector.fromMemorySegment(S128, b, bp + 2 * L128 * 4L, ORDER);
            e2 = FUSED ? x.fma(p2, e2) : x.mul(p2).add(e2);
        }
        e0.add(d0).intoArray(c, cOff);
        e1.add(d1).intoArray(c, cOff + L128);
        e2.add(d2).intoArray(c, cOff + 2 * L128);
    }

    /** One row × 2 vectors of 128 bits (the 16-register tiles' panels), two accumulator sets (even and odd k). */
    private static void row128x2(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        final long row = 2 * L128 * 4L;
        FloatVector z = FloatVector.zero(S128);
        FloatVector e0 = z, e1 = z, d0 = z, d1 = z;
        if (accumulate) {
            e0 = FloatVector.fromArray(S128, c, cOff);
            e1 = FloatVector.fromArray(S128, c, cOff + L128);
        }
        long bp = bOff;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, bp += 2 * row) {
            FloatVector x = FloatVector.broadcast(S128, a[aOff + kk]);
            FloatVector y = FloatVector.broadcast(S128, a[aOff + kk + 1]);
            FloatVector p0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector q0 = FloatVector.fromMemorySegment(S128, b, bp + row, ORDER);
            d0 = FUSED ? y.fma(q0, d0) : y.mul(q0).add(d0);
            FloatVector p1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
            FloatVector q1 = FloatVector.fromMemorySegment(S128, b, bp + row + L128 * 4L, ORDER);
            d1 = FUSED ? y.fma(q1, d1) : y.mul(q1).add(d1);
        }
        if (kk < k) {
            FloatVector x = FloatVector.broadcast(S128, a[aOff + kk]);
            FloatVector p0 = FloatVector.fromMemorySegment(S128, b, bp, ORDER);
            e0 = FUSED ? x.fma(p0, e0) : x.mul(p0).add(e0);
            FloatVector p1 = FloatVector.fromMemorySegment(S128, b, bp + L128 * 4L, ORDER);
            e1 = FUSED ? x.fma(p1, e1) : x.mul(p1).add(e1);
        }
        e0.add(d0).intoArray(c, cOff);
        e1.add(d1).intoArray(c, cOff + L128);
    }

    /**
     * One row × 4 scalars, two accumulator sets (even and odd k) as the vector forms: eight FMA
     * chains instead of four, and no spill once C2 unrolls the loop (with one set, its 16-fold
     * unroll kept a float on the stack: {@code TileCodeTest}).
     */
    private static void rowScalar(float[] a, int aOff, MemorySegment b, long bOff, int k, float[] c, int cOff, boolean accumulate) {
        final long row = 4 * 4L;
        float e0 = accumulate ? c[cOff] : 0f, e1 = accumulate ? c[cOff + 1] : 0f;
        float e2 = accumulate ? c[cOff + 2] : 0f, e3 = accumulate ? c[cOff + 3] : 0f;
        float d0 = 0f, d1 = 0f, d2 = 0f, d3 = 0f;
        long bp = bOff;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, bp += 2 * row) {
            float x = a[aOff + kk];
            float y = a[aOff + kk + 1];
            e0 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp), e0);
            d0 = Fma.fma(y, b.get(ValueLayout.JAVA_FLOAT, bp + row), d0);
            e1 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 4), e1);
            d1 = Fma.fma(y, b.get(ValueLayout.JAVA_FLOAT, bp + row + 4), d1);
            e2 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 8), e2);
            d2 = Fma.fma(y, b.get(ValueLayout.JAVA_FLOAT, bp + row + 8), d2);
            e3 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 12), e3);
            d3 = Fma.fma(y, b.get(ValueLayout.JAVA_FLOAT, bp + row + 12), d3);
        }
        if (kk < k) {
            float x = a[aOff + kk];
            e0 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp), e0);
            e1 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 4), e1);
            e2 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 8), e2);
            e3 = Fma.fma(x, b.get(ValueLayout.JAVA_FLOAT, bp + 12), e3);
        }
        c[cOff] = e0 + d0; c[cOff + 1] = e1 + d1; c[cOff + 2] = e2 + d2; c[cOff + 3] = e3 + d3;
    }
}
