package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backward's row path ({@link AdapterRows}: V and dX's adapter term as fma chains over the
 * rows of B and A, or from {@link AdapterRows#TILE_MIN_ROWS} rows on as register tiles over a panel
 * each unit packs) gives the bits of the panel route, which {@code -Drslora.cpu.adapterRows=off}
 * keeps at every N: the one-row kernel's even/odd chains at N = 1, the tiles' single chains
 * above. Both backwards get the same U (the panel forward's), so the forwards drop out (they differ
 * below {@link AdapterRows#FORWARD_TILE_MIN_ROWS} rows; {@link #trainingForwardTilesGiveThePanelRoutesBits}
 * holds them to the panel route's bits from there). r and d are chosen so that the axpys have
 * whole blocks of four vectors, single vectors, a masked tail and, at r = 1, nothing but the tail;
 * K odd and even for the split chains; the tiles get N at their threshold, a partial second tile
 * (N = 7 with the 256-bit shape's six rows) and one-column panels (r = 1).
 */
class AdapterRowsTest {
    private static CpuBackend rows;
    private static CpuBackend panels;

    @BeforeAll
    static void start() {
        rows = new CpuBackend(2);
        System.setProperty(AdapterRows.PROPERTY, "off");
        try {
            panels = new CpuBackend(2);
        } finally {
            System.clearProperty(AdapterRows.PROPERTY);
        }
    }

    @AfterAll
    static void stop() {
        rows.close();
        panels.close();
    }

    @ParameterizedTest(name = "n={0} d_in={1} d_out={2} r={3} {4} p={5} {6}")
    @CsvSource({
            "1, 1024, 1024, 64, F32, 0, ASSIGN", "1, 129, 71, 24, F32, 0.1, ACCUMULATE", "1, 300, 129, 1, BF16, 0, ASSIGN",
            "1, 64, 257, 33, F16, 0.1, ACCUMULATE", "2, 37, 1000, 256, BF16, 0, ACCUMULATE", "2, 1024, 3, 16, F32, 0.1, ASSIGN",
            "3, 129, 70, 24, F32, 0.1, ACCUMULATE", "8, 1024, 1024, 64, F32, 0, ASSIGN",
            "5, 64, 257, 33, BF16, 0.1, ASSIGN", "8, 300, 129, 1, F16, 0, ACCUMULATE",
            "3, 300, 129, 1, F16, 0.1, ACCUMULATE", "4, 129, 70, 24, F32, 0.1, ACCUMULATE",
            "7, 300, 129, 1, BF16, 0.1, ASSIGN", "6, 1024, 1024, 64, F32, 0, ASSIGN"})
    void backwardRowsGiveThePanelRoutesBits(int n, int dIn, int dOut, int r, DType dtype, float p, GradMode mode) {
        long seed = 0xAD0A7L + n * 131L + dIn * 7L + dOut + r;
        try (LayerFixture f = new LayerFixture(n, dIn, dOut, r, dtype, p, mode, (n + dIn) % 2 == 0, seed)) {
            Tensor u = f.poisoned(DType.F32, n, r);
            try (FrozenWeight fw = panels.prepare(f.w, f.bias)) {
                panels.forward(f.params, fw, f.x, f.a, f.b, u, f.poisoned(dtype, n, dOut));
            }
            Step want = backward(panels, f, u);
            Step got = backward(rows, f, u);
            String ctx = f.describe() + ": row backward against panel backward";
            assertEquals(2, want.packs, "the panel backward packs B and γA");
            assertEquals(0, got.packs, "the row backward packs nothing");
            Compare.bitEqual("dX", got.dx, want.dx, ctx);
            Compare.bitEqual("dA", got.gradA, want.gradA, ctx);
            Compare.bitEqual("dB", got.gradB, want.gradB, ctx);
            assertTrue(n <= RowGrads.MAX_ROWS);
        }
    }

    /**
     * From {@link AdapterRows#FORWARD_TILE_MIN_ROWS} rows a training forward's row path computes U
     * and Y's adapter term on tiles over an Aᵀ or (γB)ᵀ panel each unit packs (none cached): the
     * panel route's bits. N at the threshold and up to {@link AdapterRows#TRAINING_FORWARD_MAX_ROWS};
     * ranks of one column, below, at and past a panel; d_in below one vector (every transposed
     * block a column edge); dropout; BF16 and F16 adapters (packed through the staged copy).
     */
    @ParameterizedTest(name = "n={0} d_in={1} d_out={2} r={3} {4} p={5}")
    @CsvSource({"4, 129, 70, 24, F32, 0.1", "5, 64, 257, 33, BF16, 0.1", "7, 300, 129, 1, F16, 0",
            "8, 1024, 1024, 64, F32, 0", "6, 37, 1000, 256, BF16, 0.1", "8, 3, 129, 16, F16, 0.1"})
    void trainingForwardTilesGiveThePanelRoutesBits(int n, int dIn, int dOut, int r, DType dtype, float p) {
        assertTrue(n >= AdapterRows.FORWARD_TILE_MIN_ROWS && n <= AdapterRows.TRAINING_FORWARD_MAX_ROWS);
        long seed = 0xF0A7L + n * 131L + dIn * 7L + dOut + r;
        try (LayerFixture f = new LayerFixture(n, dIn, dOut, r, dtype, p, GradMode.ASSIGN, (n + dIn) % 2 == 0, seed)) {
            assertTrue(f.params.training());
            Tensor uWant = f.poisoned(DType.F32, n, r);
            Tensor yWant = f.poisoned(dtype, n, dOut);
            Tensor uGot = f.poisoned(DType.F32, n, r);
            Tensor yGot = f.poisoned(dtype, n, dOut);
            try (FrozenWeight fw = panels.prepare(f.w, f.bias)) {
                panels.forward(f.params, fw, f.x, f.a, f.b, uWant, yWant);
            }
            try (FrozenWeight fw = rows.prepare(f.w, f.bias)) {
                rows.forward(f.params, fw, f.x, f.a, f.b, uGot, yGot);
                assertEquals(0, ((CpuFrozenWeight) fw).adapter.packs, "the row forward caches no panels");
            }
            String ctx = f.describe() + ": tiled row forward against panel forward";
            Compare.bitEqual("U", uGot, uWant, ctx);
            Compare.bitEqual("Y", yGot, yWant, ctx);
        }
    }

    /**
     * {@link AdapterRows#addGroup}: output q gets row q's dot product added (the tree's lanes put back
     * in order), within fp32 rounding of a double sum, for lengths with whole vectors only, a masked
     * tail only (len &lt; L) and both; a second call adds the same sums again (exactly twice them).
     */
    @ParameterizedTest(name = "len={0}")
    @CsvSource({"1", "3", "8", "15", "16", "17", "33", "64", "100"})
    void groupSumsEachRowIntoItsLane(int len) {
        if (MicroKernel.SCALAR) {
            return;  // the scalar shape adds Y's term one output at a time (AdapterRows.dot)
        }
        int lanes = MicroKernel.L;
        java.util.SplittableRandom rng = new java.util.SplittableRandom(len * 31L + lanes);
        float[] x = new float[len + 3 + lanes];  // L to spare after the tail, as addGroup's callers keep
        for (int c = 0; c < x.length; c++) {
            x[c] = (float) rng.nextDouble(-1, 1);
        }
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            long ld = 4L * (len + 5);  // rows further apart than len: the tail mask must stop at len
            java.lang.foreign.MemorySegment y = arena.allocate(ld * lanes + 64);
            for (long at = 0; at + 4 <= y.byteSize(); at += 4) {
                y.set(DType.LE_FLOAT, at, (float) rng.nextDouble(-1, 1));
            }
            float[] out = new float[lanes + 2];
            AdapterRows.addGroup(x, 3, y, 8, ld, len, out, 1);
            float[] got = java.util.Arrays.copyOfRange(out, 1, 1 + lanes);
            AdapterRows.addGroup(x, 3, y, 8, ld, len, out, 1);
            assertEquals(0f, out[0], "before the group");
            assertEquals(0f, out[lanes + 1], "after the group");
            for (int q = 0; q < lanes; q++) {
                assertEquals(2 * got[q], out[1 + q], "row " + q + ": the second call adds its sum again");
                double want = 0;
                double mag = 0;
                for (int c = 0; c < len; c++) {
                    double t = (double) x[3 + c] * y.get(DType.LE_FLOAT, 8 + q * ld + 4L * c);
                    want += t;
                    mag += Math.abs(t);
                }
                assertTrue(Math.abs(got[q] - want) <= 1e-6 * (mag + 1e-30) * (len + 1),
                        "row " + q + " of " + lanes + ", len " + len + ": " + got[q] + " against " + want);
            }
        }
    }

    /**
     * {@link AdapterRows#addY} where the masked tail of B's last row would reach past the end of B
     * (r mod L ≠ 0, B exactly [d_out, r]): those groups' rows go through a copy, with the same bits
     * as when B has rows to spare after them (no copy), and each output within fp32 rounding of a
     * double sum. r = 16 has no tail; d_out = 70 leaves outputs for the one-by-one dot products.
     */
    @ParameterizedTest(name = "n={0} r={1} d_out={2}")
    @CsvSource({"1, 8, 64", "3, 8, 64", "1, 24, 70", "2, 1, 64", "1, 33, 64", "3, 16, 64", "2, 3, 70"})
    void addYCopiesTheGroupsWhoseTailReachesPastB(int n, int r, int dOut) {
        int lanes = MicroKernel.L;
        java.util.SplittableRandom rng = new java.util.SplittableRandom(n * 1009L + r * 31L + dOut);
        float[] gu = new float[Split.padRows(n) * r + lanes];
        for (int c = 0; c < n * r; c++) {
            gu[c] = (float) rng.nextDouble(-1, 1);
        }
        int spare = lanes;
        float[] bValues = new float[(dOut + spare) * r];
        for (int c = 0; c < bValues.length; c++) {
            bValues[c] = (float) rng.nextDouble(-1, 1);
        }
        int ldy = Split.ld(dOut);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined(); Scratch s = new Scratch()) {
            Tensor exact = Tensor.of(arena, DType.F32, java.util.Arrays.copyOf(bValues, dOut * r), dOut, r);
            Tensor roomy = Tensor.of(arena, DType.F32, bValues, dOut + spare, r);
            float[] got = new float[n * ldy];
            float[] want = new float[n * ldy];
            AdapterRows.addY(gu, n, r, AdapterRows.Source.of(exact), 0, dOut, s, got, ldy);
            AdapterRows.addY(gu, n, r, AdapterRows.Source.of(roomy), 0, dOut, s, want, ldy);
            for (int i = 0; i < n; i++) {
                for (int o = 0; o < dOut; o++) {
                    float g = got[i * ldy + o];
                    assertEquals(Float.floatToRawIntBits(want[i * ldy + o]), Float.floatToRawIntBits(g),
                            "row " + i + ", output " + o + ": B exactly [d_out, r] against B with rows to spare");
                    double sum = 0;
                    double mag = 0;
                    for (int c = 0; c < r; c++) {
                        double t = (double) gu[i * r + c] * bValues[o * r + c];
                        sum += t;
                        mag += Math.abs(t);
                    }
                    assertTrue(Math.abs(g - sum) <= 1e-6 * (mag + 1e-30) * (r + 1), "row " + i + ", output " + o + ": " + g
                            + " against " + sum);
                }
            }
        }
    }

    private record Step(Tensor dx, Tensor gradA, Tensor gradB, long packs) {
    }

    private static Step backward(CpuBackend cpu, LayerFixture f, Tensor u) {
        try (FrozenWeight fw = cpu.prepare(f.w, f.bias)) {
            Tensor dx = f.poisoned(f.dtype, f.n, f.dIn);
            Tensor gA = f.poisoned(f.dtype, f.r, f.dIn);
            Tensor gB = f.poisoned(f.dtype, f.dOut, f.r);
            if (f.gradA0 != null) {
                gA.copyFrom(f.gradA0);
                gB.copyFrom(f.gradB0);
            }
            cpu.backward(f.params, fw, f.x, f.a, f.b, u, f.dy, dx, gA, gB);
            return new Step(dx, gA, gB, ((CpuFrozenWeight) fw).adapter.packs);
        }
    }
}
