package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The backward's row path ({@link AdapterRows}: V and dX's adapter term as fma chains over the
 * rows of B and A) gives the bits of the panel route, which {@code -Drslora.cpu.adapterRows=off}
 * keeps at every N. With more than {@link AdapterRows#FORWARD_MAX_ROWS} rows both forwards run on
 * panels, so every output of the step must match bit for bit; r and d are chosen so that the
 * axpys have full vectors, a masked tail and, at r = 1, nothing but the tail.
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
            "3, 129, 70, 24, F32, 0.1, ACCUMULATE", "8, 1024, 1024, 64, F32, 0, ASSIGN",
            "5, 64, 257, 33, BF16, 0.1, ASSIGN", "8, 300, 129, 1, F16, 0, ACCUMULATE",
            "4, 37, 1000, 256, BF16, 0, ACCUMULATE", "7, 1024, 3, 16, F32, 0.1, ASSIGN"})
    void backwardRowsGiveThePanelRoutesBits(int n, int dIn, int dOut, int r, DType dtype, float p, GradMode mode) {
        assertEquals(true, n > AdapterRows.FORWARD_MAX_ROWS && n <= RowGrads.MAX_ROWS, "a row backward after a panel forward");
        long seed = 0xAD0A7L + n * 131L + dIn * 7L + dOut + r;
        try (LayerFixture f = new LayerFixture(n, dIn, dOut, r, dtype, p, mode, (n + dIn) % 2 == 0, seed)) {
            LayerFixture.Outputs want = f.run(panels);
            LayerFixture.Outputs got = f.run(rows);
            String ctx = f.describe() + ": row backward against panel backward";
            Compare.bitEqual("Y", got.y(), want.y(), ctx);
            Compare.bitEqual("U", got.u(), want.u(), ctx);
            Compare.bitEqual("dX", got.dx(), want.dx(), ctx);
            Compare.bitEqual("dA", got.gradA(), want.gradA(), ctx);
            Compare.bitEqual("dB", got.gradB(), want.gradB(), ctx);
        }
    }
}
